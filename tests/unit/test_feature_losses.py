"""F4-F6: contrastive losses against independent NumPy implementations of the papers' formulas."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from patchwork_widget.feature.losses import (  # noqa: E402
    hcl_loss,
    mochi_negatives,
    moco_loss,
    nt_xent_loss,
)

TOL = 1e-5


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    z = rng.standard_normal((n, d))
    return z / np.linalg.norm(z, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(0)
    z1 = unit(rng, 6, 5)
    z2 = unit(rng, 6, 5) + 0.6 * z1      # positives a bit closer than chance
    return z1, z2 / np.linalg.norm(z2, axis=1, keepdims=True)


def np_nt_xent(z1, z2, t):
    """SimCLR eq. 1: l(i, j) = -log exp(s_ij / t) / sum_{k != i} exp(s_ik / t), averaged over
    the 2N ordered pairs, written with explicit loops."""
    z = np.concatenate([z1, z2])
    n2 = len(z)
    b = len(z1)
    total = 0.0
    for i in range(n2):
        j = (i + b) % n2
        sims = [np.dot(z[i], z[k]) / t for k in range(n2)]
        denom = sum(np.exp(sims[k]) for k in range(n2) if k != i)
        total += -np.log(np.exp(sims[j]) / denom)
    return total / n2


def np_hcl(z1, z2, t, beta, tau_plus, decoupled=False):
    """Robinson et al. 2021 (their reference code), per anchor, with explicit loops."""
    z = np.concatenate([z1, z2])
    n2 = len(z)
    b = len(z1)
    n_neg = n2 - 2
    total = 0.0
    for i in range(n2):
        j = (i + b) % n2
        pos = np.exp(np.dot(z[i], z[j]) / t)
        neg = np.array([np.exp(np.dot(z[i], z[k]) / t) for k in range(n2) if k not in (i, j)])
        imp = np.exp(beta * np.log(neg))
        reweight = (imp * neg).sum() / imp.mean()
        ng = (-tau_plus * n_neg * pos + reweight) / (1 - tau_plus)
        ng = max(ng, n_neg * np.exp(-1 / t))
        total += -np.log(pos / ng) if decoupled else -np.log(pos / (pos + ng))
    return total / n2


def np_moco(q, k, queue, t, margin):
    """He et al. 2020 eq. 1 with EqCo's margin on the positive: per query
    -log exp((q.k - m)/t) / (exp((q.k - m)/t) + sum_n exp(q.n / t))."""
    total = 0.0
    for qi, ki in zip(q, k):
        pos = np.exp((np.dot(qi, ki) - margin) / t)
        neg = sum(np.exp(np.dot(qi, n) / t) for n in queue)
        total += -np.log(pos / (pos + neg))
    return total / len(q)


@pytest.mark.parametrize("t", [0.1, 0.5, 1.0])
def test_nt_xent_matches_numpy(pair, t):
    z1, z2 = pair
    loss, acc = nt_xent_loss(tf.constant(z1, tf.float32), tf.constant(z2, tf.float32), t)
    assert float(loss) == pytest.approx(np_nt_xent(z1, z2, t), abs=TOL)
    assert 0.0 <= float(acc) <= 1.0


@pytest.mark.parametrize("beta,tau_plus,decoupled", [
    (0.5, 0.1, False), (1.0, 0.0, False), (0.0, 0.2, False), (0.5, 0.1, True), (0.0, 0.0, True),
])
def test_hcl_matches_numpy(pair, beta, tau_plus, decoupled):
    z1, z2 = pair
    t = 0.5
    loss, _ = hcl_loss(tf.constant(z1, tf.float32), tf.constant(z2, tf.float32), t, beta,
                       tau_plus, decoupled)
    assert float(loss) == pytest.approx(np_hcl(z1, z2, t, beta, tau_plus, decoupled), abs=TOL)


def test_hcl_clamp_matches_numpy():
    """Large tau_plus drives the debiased mass below its floor: the clamp must match."""
    rng = np.random.default_rng(3)
    z1 = unit(rng, 4, 3)
    z2 = z1 + 0.01 * rng.standard_normal(z1.shape)
    z2 /= np.linalg.norm(z2, axis=1, keepdims=True)
    t, beta, tau_plus = 0.5, 0.3, 0.9
    loss, _ = hcl_loss(tf.constant(z1, tf.float32), tf.constant(z2, tf.float32), t, beta,
                       tau_plus)
    assert float(loss) == pytest.approx(np_hcl(z1, z2, t, beta, tau_plus), abs=TOL)


@pytest.mark.parametrize("t", [0.05, 0.2])
def test_hcl_at_zero_is_simclr(pair, t):
    z1, z2 = (tf.constant(z, tf.float32) for z in pair)
    simclr, acc_s = nt_xent_loss(z1, z2, t)
    hcl, acc_h = hcl_loss(z1, z2, t, beta=0.0, tau_plus=0.0)
    assert float(hcl) == pytest.approx(float(simclr), abs=TOL)
    assert float(acc_h) == float(acc_s)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(z1)
        a = nt_xent_loss(z1, z2, t)[0]
        b = hcl_loss(z1, z2, t, 0.0, 0.0)[0]
    np.testing.assert_allclose(tape.gradient(a, z1), tape.gradient(b, z1), atol=1e-5)


def test_hcl_small_temperature_is_finite(pair):
    z1, z2 = (tf.constant(z, tf.float32) for z in pair)
    with tf.GradientTape() as tape:
        tape.watch(z1)
        loss = hcl_loss(z1, z2, 0.005, beta=1.0, tau_plus=0.1)[0]
    assert np.isfinite(float(loss))
    assert np.all(np.isfinite(tape.gradient(loss, z1).numpy()))


@pytest.mark.parametrize("fn", ["nt_xent", "hcl"])
def test_gathered_replica_losses_average_to_full_batch(pair, fn):
    """Two 'replicas' with half the anchors each and the full batch as candidates average to
    the one-device loss (what the all-gather in the trainers relies on)."""
    z1, z2 = (tf.constant(z, tf.float32) for z in pair)

    def loss(a1, a2, offset):
        if fn == "nt_xent":
            return nt_xent_loss(a1, a2, 0.3, z1, z2, offset)[0]
        return hcl_loss(a1, a2, 0.3, 0.5, 0.1, False, z1, z2, offset)[0]

    full = loss(z1, z2, 0)
    halves = [loss(z1[:3], z2[:3], 0), loss(z1[3:], z2[3:], 3)]
    assert float(np.mean(halves)) == pytest.approx(float(full), abs=TOL)


@pytest.mark.parametrize("margin", [0.0, 0.3, -0.2])
def test_moco_eqco_matches_numpy(margin):
    rng = np.random.default_rng(1)
    q, k, queue = unit(rng, 5, 4), unit(rng, 5, 4), unit(rng, 12, 4)
    t = 0.2
    loss, acc = moco_loss(*(tf.constant(a, tf.float32) for a in (q, k, queue)), t, margin)
    assert float(loss) == pytest.approx(np_moco(q, k, queue, t, margin), abs=TOL)
    assert 0.0 <= float(acc) <= 1.0


def test_eqco_margin_equals_scaled_negatives():
    """EqCo: scaling the negatives' mass by alpha/K is the margin tau * log(alpha / K)."""
    rng = np.random.default_rng(2)
    q, k, queue = unit(rng, 4, 3), unit(rng, 4, 3), unit(rng, 20, 3)
    t, alpha, big_k = 0.1, 5, len(queue)
    loss, _ = moco_loss(*(tf.constant(a, tf.float32) for a in (q, k, queue)), t,
                        margin=t * np.log(alpha / big_k))
    expected = np.mean([
        -np.log(np.exp(qi @ ki / t) / (np.exp(qi @ ki / t)
                                       + alpha / big_k * np.exp(queue @ qi / t).sum()))
        for qi, ki in zip(q, k)])
    assert float(loss) == pytest.approx(expected, abs=TOL)


def test_mochi_negatives_are_mixes_of_hardest():
    rng = np.random.default_rng(4)
    q = tf.constant(unit(rng, 3, 6), tf.float32)
    queue = tf.constant(unit(rng, 30, 6), tf.float32)
    tf.random.set_seed(0)
    extra = mochi_negatives(q, queue, n_hardest=4, s=5, s_prime=2).numpy()
    assert extra.shape == (3, 7, 6)
    np.testing.assert_allclose(np.linalg.norm(extra, axis=-1), 1.0, atol=1e-5)
    sims = q.numpy() @ queue.numpy().T
    for i in range(3):
        hardest = queue.numpy()[np.argsort(-sims[i])[:4]]
        # each synthetic negative lies in the span of the hardest keys (and the query for s')
        basis = np.concatenate([hardest, q.numpy()[i:i + 1]])
        coef, *_ = np.linalg.lstsq(basis.T, extra[i].T, rcond=None)
        np.testing.assert_allclose(basis.T @ coef, extra[i].T, atol=1e-4)
        assert np.allclose(coef[4, :5], 0, atol=1e-4)       # s mixes: no query component
    loss, _ = moco_loss(q, q, queue, 0.1, 0.0, tf.constant(extra))
    assert np.isfinite(float(loss))


def test_hcl_rejects_bad_tau_plus(pair):
    z1, z2 = (tf.constant(z, tf.float32) for z in pair)
    with pytest.raises(ValueError, match="tau_plus"):
        hcl_loss(z1, z2, 0.1, 0.5, 1.0)
