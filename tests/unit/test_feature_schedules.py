"""F1: learning-rate schedules against their formulas, LARS against NumPy, option checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from patchwork_widget.feature.schedules import LARS, DecaySchedule, build_optimizer  # noqa: E402

STEPS = [0, 1, 7, 50, 99, 100, 101, 150, 250, 1000]
LR, DECAY, WARM = 0.2, 100, 20


def expected(kind: str, step: int) -> float:
    if kind == "none":
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


@pytest.mark.parametrize("kind", ["none", "exponential", "staircase", "cosine", "warmup_cosine"])
def test_schedule_matches_formula(kind):
    sched = DecaySchedule(LR, kind, 0 if kind == "none" else DECAY,
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
    (dict(lr=0.1, decay_type="linear"), "decay_type must be one of"),
    (dict(lr=0.1, decay_type="cosine"), "needs lr_decay > 0"),
    (dict(lr=0.1, decay_type="warmup_cosine", lr_decay=10), "warmup_steps >= 1"),
    (dict(lr=-1.0), "lr must be a positive number"),
    (dict(lr=0.1, decay_type="exponential", lr_decay=1.5), "lr_decay must be an int"),
])
def test_schedule_rejects_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DecaySchedule(**kwargs)


def test_build_optimizer_kinds_and_errors():
    assert isinstance(build_optimizer("adam", 0.1), keras.optimizers.Adam)
    sgd = build_optimizer("momentum", 0.1, weight_decay=1e-4)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.momentum == 0.9
    assert isinstance(build_optimizer("lars", 0.1), LARS)
    with pytest.raises(ValueError, match="opt_type must be one of"):
        build_optimizer("rmsprop", 0.1)
    with pytest.raises(ValueError, match="weight_decay"):
        build_optimizer("adam", 0.1, weight_decay=-1)


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
