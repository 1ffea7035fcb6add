"""Contrastive losses: NT-Xent (SimCLR), hard-negative and decoupled variants (HCL, DCL),
MoCo's InfoNCE with the EqCo margin, and MoCHi's synthetic hard negatives.

Every function works on L2-normalised embeddings. The SimCLR-family losses take the *local*
embeddings of this replica (the anchors) and the *global* ones gathered from every replica (the
candidates), so under a ``tf.distribute`` strategy each anchor is contrasted with the whole
global batch (feature F11); on one device the two are the same tensors.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import tensorflow as tf

__all__ = [
    "contrastive_logits",
    "hcl_loss",
    "mochi_negatives",
    "moco_logits",
    "moco_loss",
    "nt_xent_loss",
]


def contrastive_logits(
    z1: tf.Tensor, z2: tf.Tensor, all_z1: tf.Tensor, all_z2: tf.Tensor,
    temperature: float, offset: tf.Tensor | int = 0,
) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Similarities of each local anchor to every global view, and where its pair sits.

    Parameters
    ----------
    z1, z2 : tf.Tensor
        ``(b, d)`` normalised embeddings of the two views of this replica's images.
    all_z1, all_z2 : tf.Tensor
        ``(B, d)`` the same for the global batch (``B = b`` on one device).
    temperature : float
        Divides the cosine similarities.
    offset : int or scalar tensor
        Row of ``z1[0]`` inside ``all_z1`` (``replica_id * b``).

    Returns
    -------
    logits : tf.Tensor
        ``(2b, 2B)``: rows are the anchors ``[z1; z2]``, columns the candidates
        ``[all_z1; all_z2]``, values ``cos / temperature``.
    positive : tf.Tensor
        ``(2b,)`` int32 column of each anchor's other view.
    self_mask : tf.Tensor
        ``(2b, 2B)`` bool, True at each anchor's own column (never a negative).
    """
    b = tf.shape(z1)[0]
    big_b = tf.shape(all_z1)[0]
    anchors = tf.concat([z1, z2], axis=0)
    candidates = tf.concat([all_z1, all_z2], axis=0)
    logits = tf.matmul(anchors, candidates, transpose_b=True) / temperature
    local = tf.range(b, dtype=tf.int32) + tf.cast(offset, tf.int32)
    own = tf.concat([local, local + big_b], axis=0)
    positive = tf.concat([local + big_b, local], axis=0)
    self_mask = tf.one_hot(own, 2 * big_b, on_value=True, off_value=False)
    return logits, positive, self_mask


def nt_xent_loss(
    z1: tf.Tensor, z2: tf.Tensor, temperature: float = 0.1,
    all_z1: Optional[tf.Tensor] = None, all_z2: Optional[tf.Tensor] = None,
    offset: tf.Tensor | int = 0,
) -> Tuple[tf.Tensor, tf.Tensor]:
    """NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR.

    For anchor ``i`` with positive ``p``: ``-log(exp(s_ip) / sum_{k != i} exp(s_ik))`` with
    ``s = cos / temperature`` over the ``2B - 1`` other views, averaged over the local anchors
    (Chen et al. 2020, https://arxiv.org/abs/2002.05709, eq. 1).

    Returns
    -------
    (loss, accuracy)
        Mean loss over this replica's ``2b`` anchors, and the share of anchors whose most
        similar candidate is their positive.
    """
    all_z1 = z1 if all_z1 is None else all_z1
    all_z2 = z2 if all_z2 is None else all_z2
    logits, positive, self_mask = contrastive_logits(z1, z2, all_z1, all_z2, temperature, offset)
    logits = tf.where(self_mask, tf.cast(-1e9, logits.dtype), logits)
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(positive, logits)
    hits = tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), positive)
    return tf.reduce_mean(loss), tf.reduce_mean(tf.cast(hits, tf.float32))


def hard_negative_term(logits: tf.Tensor, s_pos: tf.Tensor, neg_mask: tf.Tensor, n_neg: "tf.Tensor | float",
                       beta: float, tau_plus: float, temperature: float) -> tf.Tensor:
    """HCL's log of the reweighted, debiased negative sum per anchor (Robinson et al. 2021):
    ``log R = logsumexp((1 + beta) s_n) - logsumexp(beta s_n) + log N`` over the negatives in
    ``neg_mask``, debiased by ``tau_plus`` and clamped below at ``log N - 1 / temperature``.
    ``n_neg`` is the number of negatives (a scalar, or one per anchor)."""
    very_small = tf.cast(-1e9, logits.dtype)

    def masked_lse(x: tf.Tensor) -> tf.Tensor:
        return tf.reduce_logsumexp(tf.where(neg_mask, x, very_small), axis=1)

    log_n = tf.math.log(n_neg)
    log_r = masked_lse((1.0 + beta) * logits) - masked_lse(beta * logits) + log_n
    if tau_plus > 0:
        # exp(s_pos - log R) is capped so its gradient stays finite where the clamp takes over
        ratio = tf.exp(tf.minimum(s_pos - log_r, 60.0))
        rest = 1.0 - tau_plus * n_neg * ratio
        ok = rest > 0
        log_ng = tf.where(
            ok, log_r + tf.math.log(tf.where(ok, rest, 1.0)) - math.log(1.0 - tau_plus),
            very_small,
        )
    else:
        log_ng = log_r
    return tf.maximum(log_ng, log_n - 1.0 / temperature)


def hcl_loss(
    z1: tf.Tensor, z2: tf.Tensor, temperature: float = 0.1, beta: float = 0.0,
    tau_plus: float = 0.0, decoupled: bool = False,
    all_z1: Optional[tf.Tensor] = None, all_z2: Optional[tf.Tensor] = None,
    offset: tf.Tensor | int = 0,
) -> Tuple[tf.Tensor, tf.Tensor]:
    """Hard-negative contrastive loss (HCL), optionally decoupled (DCL).

    With ``N = 2B - 2`` negatives ``n`` of an anchor and ``s = cos / temperature``:

    - importance weights ``w_n = exp(beta * s_n)``; ``R = sum_n w_n exp(s_n) / mean_n w_n``;
    - debiased negative mass ``Ng = (R - tau_plus * N * exp(s_pos)) / (1 - tau_plus)``,
      clamped below at ``N * exp(-1 / temperature)``;
    - loss ``-log(exp(s_pos) / (exp(s_pos) + Ng))``, or with ``decoupled=True`` the positive
      leaves the denominator: ``-log(exp(s_pos) / Ng)``.

    Robinson et al. 2021, https://arxiv.org/abs/2010.04592 (eq. 6 and their reference code);
    decoupled: Yeh et al. 2021, https://arxiv.org/abs/2110.06848. At ``beta = tau_plus = 0``
    and ``decoupled=False`` this is NT-Xent. Computed in log space, so small temperatures do
    not overflow.

    Returns
    -------
    (loss, accuracy)
        As :func:`nt_xent_loss`.
    """
    if not 0.0 <= tau_plus < 1.0:
        raise ValueError(f"tau_plus must be in [0, 1); got {tau_plus!r}")
    all_z1 = z1 if all_z1 is None else all_z1
    all_z2 = z2 if all_z2 is None else all_z2
    logits, positive, self_mask = contrastive_logits(z1, z2, all_z1, all_z2, temperature, offset)
    n_cand = tf.shape(logits)[1]
    pos_mask = tf.one_hot(positive, n_cand, on_value=True, off_value=False)
    neg_mask = tf.logical_not(tf.logical_or(self_mask, pos_mask))
    n_neg = tf.cast(n_cand - 2, logits.dtype)
    s_pos = tf.gather(logits, positive, axis=1, batch_dims=1)
    very_small = tf.cast(-1e9, logits.dtype)
    log_ng = hard_negative_term(logits, s_pos, neg_mask, n_neg, beta, tau_plus, temperature)
    if decoupled:
        loss = log_ng - s_pos
    else:
        loss = tf.reduce_logsumexp(tf.stack([s_pos, log_ng], axis=1), axis=1) - s_pos
    others = tf.where(self_mask, very_small, logits)
    hits = tf.equal(tf.argmax(others, axis=1, output_type=tf.int32), positive)
    return tf.reduce_mean(loss), tf.reduce_mean(tf.cast(hits, tf.float32))


def mochi_negatives(
    q: tf.Tensor, queue: tf.Tensor, n_hardest: int, s: int, s_prime: int,
) -> tf.Tensor:
    """MoCHi's synthetic hard negatives for each query (no gradient flows through them).

    From each query's ``n_hardest`` most similar queue entries ``n``: ``s`` mixes
    ``normalize(a n_i + (1 - a) n_j)`` with ``a ~ U(0, 1)``, and ``s_prime`` mixes
    ``normalize(b q + (1 - b) n_j)`` with ``b ~ U(0, 0.5)`` (Kalantidis et al. 2020,
    https://arxiv.org/abs/2010.01028, section 4).

    Returns
    -------
    tf.Tensor
        ``(batch, s + s_prime, d)`` normalised synthetic negatives.
    """
    q = tf.stop_gradient(q)
    batch = tf.shape(q)[0]
    _, hardest = tf.math.top_k(tf.matmul(q, queue, transpose_b=True), k=n_hardest)

    def draw(count: int) -> tf.Tensor:
        pick = tf.random.uniform([batch, count], 0, n_hardest, dtype=tf.int32)
        return tf.gather(queue, tf.gather(hardest, pick, batch_dims=1))   # (batch, count, d)

    parts = []
    if s > 0:
        a = tf.random.uniform([batch, s, 1])
        parts.append(a * draw(s) + (1.0 - a) * draw(s))
    if s_prime > 0:
        b = tf.random.uniform([batch, s_prime, 1], 0.0, 0.5)
        parts.append(b * q[:, None, :] + (1.0 - b) * draw(s_prime))
    return tf.stop_gradient(tf.math.l2_normalize(tf.concat(parts, axis=1), axis=-1))


def moco_logits(
    q: tf.Tensor, k: tf.Tensor, queue: tf.Tensor, temperature: float = 0.07,
    margin: float = 0.0, extra_negatives: Optional[tf.Tensor] = None,
) -> tf.Tensor:
    """Logits of MoCo's (K+1)-way task: column 0 is the positive key, then the queue.

    ``(q.k - margin) / temperature`` for the positive and ``q.n / temperature`` for each
    negative. A margin ``m`` is EqCo's rescaling of the negatives' mass by ``alpha / K`` written
    as a shift of the positive logit: ``m = temperature * log(alpha / K)`` (Zhu et al. 2020,
    https://arxiv.org/abs/2010.01929); ``extra_negatives`` ``(batch, e, d)`` (e.g. from
    :func:`mochi_negatives`) are appended after the queue.
    """
    pos = tf.reduce_sum(q * k, axis=1, keepdims=True) - margin
    parts = [pos, tf.matmul(q, queue, transpose_b=True)]
    if extra_negatives is not None:
        parts.append(tf.einsum("bd,bed->be", q, extra_negatives))
    return tf.concat(parts, axis=1) / temperature


def moco_loss(
    q: tf.Tensor, k: tf.Tensor, queue: tf.Tensor, temperature: float = 0.07,
    margin: float = 0.0, extra_negatives: Optional[tf.Tensor] = None,
) -> Tuple[tf.Tensor, tf.Tensor]:
    """InfoNCE of MoCo (He et al. 2020, https://arxiv.org/abs/1911.05722, eq. 1) on
    :func:`moco_logits`: ``-log(exp(l_0) / sum_j exp(l_j))`` averaged over the queries.

    Returns
    -------
    (loss, accuracy)
        Mean loss, and the share of queries whose largest logit is the positive.
    """
    logits = moco_logits(q, k, queue, temperature, margin, extra_negatives)
    labels = tf.zeros(tf.shape(q)[:1], dtype=tf.int32)
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
    hits = tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), 0)
    return tf.reduce_mean(loss), tf.reduce_mean(tf.cast(hits, tf.float32))
