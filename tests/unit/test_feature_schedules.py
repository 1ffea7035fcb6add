"""F1 and M3: the shared learning-rate schedules against their formulas, LARS against NumPy,
the weight-decay rule, option checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from patchwork_widget.models.optim import (  # noqa: E402
    LARS,
    DecaySchedule,
    build_optimizer,
    make_schedule,
)

STEPS = [0, 1, 7, 50, 99, 100, 101, 150, 250, 1000]
LR, DECAY, WARM = 0.2, 100, 20


def expected(kind: str, step: int) -> float:
    if kind == "constant":
        return LR
    if kind == "exponential":
        return LR * 0.5 ** (step / DECAY)
    if kind == "staircase":
        return LR * 0.5 ** (step // DECAY)
    if kind == "cosine":
        return LR * 0.5 * (1 + math.cos(math.pi * min(step, DECAY) / DECAY))
    if step < WARM:
        return LR * step / WARM
    return LR * 0.5 * (1 + math.cos(math.pi * min(step - WARM, DECAY) / DECAY))


@pytest.mark.parametrize("kind", ["constant", "exponential", "staircase", "cosine",
                                  "warmup_cosine"])
def test_schedule_matches_formula(kind):
    sched = DecaySchedule(LR, kind, None if kind == "constant" else DECAY,
                          WARM if kind == "warmup_cosine" else 0)
    got = [float(sched(s)) for s in STEPS]
    np.testing.assert_allclose(got, [expected(kind, s) for s in STEPS], rtol=1e-5, atol=1e-7)


def test_schedule_landmarks():
    assert float(DecaySchedule(1.0, "exponential", 10)(10)) == pytest.approx(0.5)
    assert float(DecaySchedule(1.0, "staircase", 10)(19)) == pytest.approx(0.5)
    assert float(DecaySchedule(1.0, "cosine", 10)(5)) == pytest.approx(0.5)
    assert float(DecaySchedule(1.0, "warmup_cosine", 10, 4)(4)) == pytest.approx(1.0)
    cfg = DecaySchedule(1.0, "cosine", 10).get_config()
    assert DecaySchedule(**cfg).get_config() == cfg


@pytest.mark.parametrize("kwargs,match", [
    (dict(lr=0.1, schedule="linear"), "schedule must be one of"),
    (dict(lr=0.1, schedule="cosine"), "needs decay_steps >= 1"),
    (dict(lr=0.1, schedule="warmup_cosine", decay_steps=10), "warmup_steps >= 1"),
    (dict(lr=-1.0), "lr must be a finite number > 0"),
    (dict(lr=float("nan")), "lr must be a finite number"),
    (dict(lr=0.1, schedule="exponential", decay_steps=1.5), "decay_steps must be an int"),
])
def test_schedule_rejects_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DecaySchedule(**kwargs)


def test_build_optimizer_kinds_and_errors():
    w, b = keras.Variable(np.ones((3, 2), np.float32)), keras.Variable(np.ones(2, np.float32))
    assert isinstance(build_optimizer("adam", 0.1, [w, b]), keras.optimizers.Adam)
    sgd = build_optimizer("sgd", 0.1, [w, b], weight_decay=1e-4)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.momentum == 0.9
    assert isinstance(build_optimizer("lars", 0.1, [w, b]), LARS)
    assert isinstance(build_optimizer("rmsprop", 0.1, [w, b]), keras.optimizers.RMSprop)
    # the original project's "momentum" is an alias of sgd (options/legacy.py)
    assert isinstance(build_optimizer("momentum", 0.1, [w, b]), keras.optimizers.SGD)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        build_optimizer("nesterov", 0.1, [w, b])
    with pytest.raises(ValueError, match="weight_decay"):
        build_optimizer("adam", 0.1, [w, b], weight_decay=-1)


@pytest.mark.parametrize("kind", ["adam", "adamw", "sgd", "rmsprop", "lars"])
def test_weight_decay_skips_biases_and_batch_norm_for_every_optimizer(kind):
    """One rule for fine-tuning and the feature trainers: with a zero gradient, only the
    matrices shrink."""
    w = keras.Variable(np.ones((3, 2), np.float32))
    b = keras.Variable(np.ones(2, np.float32))
    opt = build_optimizer(kind, 0.1, [w, b], weight_decay=0.1)
    for _ in range(3):
        opt.apply_gradients([(tf.zeros((3, 2)), w), (tf.zeros(2), b)])
    assert np.all(np.asarray(w) < 1.0)
    np.testing.assert_array_equal(np.asarray(b), 1.0)


def test_make_schedule_spans_the_run():
    assert float(make_schedule("cosine", 1.0, 100, 10)(100)) == pytest.approx(0.0, abs=1e-6)
    assert float(make_schedule("staircase", 1.0, 100, 10)(10)) == pytest.approx(0.5)
    warm = make_schedule("warmup_cosine", 1.0, 100, 10)
    assert float(warm(5)) == pytest.approx(0.5) and float(warm(10)) == pytest.approx(1.0)
    assert float(make_schedule("constant", 0.3, 100, 10)(77)) == pytest.approx(0.3)


def test_lars_matches_numpy():
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((3, 4)).astype(np.float32)
    b0 = rng.standard_normal(4).astype(np.float32)
    grads = [(rng.standard_normal((3, 4)).astype(np.float32),
              rng.standard_normal(4).astype(np.float32)) for _ in range(3)]
    lr, mom, wd, eta = 0.5, 0.9, 1e-2, 0.01
    w, b = keras.Variable(w0), keras.Variable(b0)
    opt = LARS(lr, momentum=mom, weight_decay=wd, eta=eta)
    for gw, gb in grads:
        opt.apply_gradients([(tf.constant(gw), w), (tf.constant(gb), b)])

    ew, eb = w0.astype(np.float64), b0.astype(np.float64)
    vw, vb = np.zeros_like(ew), np.zeros_like(eb)
    for gw, gb in grads:
        g = gw + wd * ew
        trust = eta * np.linalg.norm(ew) / np.linalg.norm(g)
        vw = mom * vw + lr * trust * g
        ew = ew - vw
        vb = mom * vb + lr * gb            # vectors: no decay, no trust ratio
        eb = eb - vb
    np.testing.assert_allclose(np.asarray(w), ew, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(b), eb, rtol=1e-5, atol=1e-6)
    assert LARS.from_config(opt.get_config()).eta == eta


def test_lars_rejects_bad_options():
    with pytest.raises(ValueError, match="momentum"):
        LARS(0.1, momentum=1.0)
    with pytest.raises(ValueError, match="eta"):
        LARS(0.1, eta=0)
