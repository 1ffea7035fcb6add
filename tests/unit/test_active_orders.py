"""Sampling orders: each ranking against a hand-computed case (FEATURES A2, B4)."""

from __future__ import annotations

import numpy as np
import pytest

from patchwork_widget.active.orders import disagreement_scores, weighted_permutation
from patchwork_widget.active.registry import (
    ORDERS,
    OrderChoice,
    available_orders,
    mix_random,
    order_options,
    rank,
)
from patchwork_widget.active.uncertainty import binary_entropy, entropy, least_confidence, margin

NAN = np.nan
ALL5 = np.ones(5, dtype=bool)
PROBS = np.array([[0.5, 0.9], [0.9, 0.9], [0.2, 0.5], [0.99, 0.01], [0.6, 0.3]])


def ranked(order, candidates=ALL5, count=5, seed=0, **arrays):
    return rank(order, candidates, count, rng=np.random.default_rng(seed), **arrays).tolist()


def test_uncertainty_scores_by_hand():
    np.testing.assert_allclose(binary_entropy([0.0, 0.5, 1.0, 0.25]),
                               [0.0, 1.0, 0.0, 0.8112781244591328])
    p = np.array([[0.5, 0.3, 0.2], [0.9, 0.05, 0.05]])
    np.testing.assert_allclose(least_confidence(p), [0.5, 0.1])
    np.testing.assert_allclose(margin(p), [0.8, 0.15])
    np.testing.assert_allclose(entropy(p), [1.4854752972273344, 0.5689955935892812])


def test_max_entropy_is_the_mean_binary_entropy_over_classes():
    # mean binary entropies: row0 (1 + .469)/2 = .734, row1 .469, row2 (.722 + 1)/2 = .861,
    # row3 .081, row4 (.971 + .881)/2 = .926
    assert ranked("max entropy", probs=PROBS) == [4, 2, 0, 1, 3]
    labels = np.full((5, 2), NAN)
    labels[4, 0] = 1.0  # row 4 keeps only class 1: .881
    labels[2] = [0.0, 1.0]  # row 2 fully labeled: 0
    assert ranked("max entropy", probs=PROBS, labels=labels) == [4, 0, 1, 3, 2]


def test_per_class_orders_by_hand():
    assert ranked("maxent", probs=PROBS, cls=0) == [0, 4, 2, 1, 3]
    assert ranked("maxent", probs=PROBS, cls=1) == [2, 4, 0, 1, 3]  # ties keep row order
    assert ranked("highest", probs=PROBS, cls=0) == [3, 1, 4, 0, 2]
    assert ranked("lowest", probs=PROBS, cls=1) == [3, 4, 2, 0, 1]
    candidates = np.array([True, False, True, True, False])
    assert ranked("highest", candidates, probs=PROBS, cls=0) == [3, 0, 2]
    assert ranked("lowest", candidates, count=2, probs=PROBS, cls=0) == [2, 0]


def test_high_and_low_sample_with_weights_p4():
    probs = np.array([[0.0], [0.5], [1.0], [0.0]])
    # weights p^4 = [0, 1/16, 1, 0]: zero weights always last; P(row 2 before row 1) = 16/17
    firsts = [ranked("high", np.ones(4, bool), 4, seed, probs=probs, cls=0) for seed in range(400)]
    assert all(sorted(r[2:]) == [0, 3] for r in firsts)
    share = np.mean([r[0] == 2 for r in firsts])
    assert abs(share - 16 / 17) < 0.04
    lows = [ranked("low", np.ones(4, bool), 4, seed, probs=probs, cls=0) for seed in range(400)]
    assert all(r[3] == 2 for r in lows)  # (1 - p)^4 = [1, 1/16, 0, 1]
    # the 1/16 row comes after both weight-1 rows with probability (2 / 2.0625) (1 / 1.0625)
    assert abs(np.mean([r[2] == 1 for r in lows]) - 0.912656) < 0.05
    rows = np.arange(3)
    shares = np.bincount([weighted_permutation(rows, np.array([1.0, 2.0, 5.0]),
                                               np.random.default_rng(s))[0] for s in range(4000)],
                         minlength=3) / 4000
    np.testing.assert_allclose(shares, [0.125, 0.25, 0.625], atol=0.03)


def test_diversity_picks_one_row_per_tight_cluster():
    rng = np.random.default_rng(0)
    centres = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    features = np.repeat(centres, 10, axis=0) + 1e-3 * rng.normal(size=(30, 3))
    for seed in range(5):
        picks = ranked("diversity", np.ones(30, bool), 3, seed, features=features)
        assert sorted(p // 10 for p in picks) == [0, 1, 2]


def test_coreset_is_greedy_k_center_from_the_labeled_rows():
    # unit vectors at angles 0, 10, 20, 90, 180 degrees; row 0 labeled
    angles = np.radians([0, 10, 20, 90, 180])
    features = np.c_[np.cos(angles), np.sin(angles)]
    labels = np.full((5, 1), NAN)
    labels[0] = 1.0
    candidates = np.array([False, True, True, True, True])
    # farthest from {0}: 180; then from {0, 180}: 90; then 20, then 10
    assert ranked("coreset", candidates, 4, features=features, labels=labels) == [4, 3, 2, 1]


def test_disagreement_ranks_label_errors_first():
    labels = np.array([[1.0, 0.0], [1.0, NAN], [NAN, NAN], [0.0, 0.0], [NAN, 1.0]])
    probs = np.array([[0.9, 0.1], [0.2, 0.5], [0.9, 0.1], [0.4, 0.1], [0.5, 0.5]])
    scores = np.array([[0.8, 0.3], [0.4, 0.5], [0.2, 0.1], [0.6, 0.1], [0.5, 0.4]])
    # row0: max(mean(.1, .2), mean(.1, .3)) = .2; row1: max(mean(.8, .6), |.5-.5|) = .7
    # row2: unlabeled: max(|.9-.2|, 0) = .7; row3: max(mean(.4, .6), .1) = .5; row4: max(0, .55)
    np.testing.assert_allclose(disagreement_scores(labels, probs, scores),
                               [0.2, 0.7, 0.7, 0.5, 0.55])
    assert ranked("disagreement", labels=labels, probs=probs, propagation=scores) == [1, 2, 4, 3, 0]
    # with the model only, unlabeled entries carry no evidence and row 2 drops out
    np.testing.assert_allclose(disagreement_scores(labels, probs), [0.1, 0.8, NAN, 0.4, 0.5])
    assert ranked("disagreement", labels=labels, probs=probs) == [1, 4, 3, 0]
    assert ranked("disagreement", labels=labels, propagation=scores, cls=0) == [1, 3, 0]


def test_badge_order_passes_count_and_class():
    rng = np.random.default_rng(1)
    probs, emb = rng.random((40, 3)), rng.normal(size=(40, 4))
    labels = np.full((40, 3), NAN)
    labels[:10, 1] = 1.0
    picks = ranked("badge", np.ones(40, bool), 7, probs=probs, embeddings=emb)
    assert len(picks) == len(set(picks)) == 7
    picks = rank(OrderChoice("badge", "b"), np.ones(40, bool), 5, rng=np.random.default_rng(0),
                 classes=["a", "b", "c"], probs=probs, embeddings=emb, labels=labels)
    assert len(picks) == 5 and np.all(picks >= 10)


def test_missing_arrays_name_what_is_missing_and_how_to_get_it():
    with pytest.raises(ValueError, match="order 'max entropy' needs 'probs': train a model"):
        ranked("max entropy")
    with pytest.raises(ValueError, match="needs 'embeddings'.*update BADGE embeddings"):
        ranked("badge", probs=PROBS)
    with pytest.raises(ValueError, match="needs 'features'"):
        ranked("coreset")
    with pytest.raises(ValueError, match="'disagreement' needs 'probs' or 'propagation'"):
        ranked("disagreement", labels=np.zeros((5, 2)))
    with pytest.raises(ValueError, match="order 'maxent' needs a class"):
        ranked("maxent", probs=PROBS)
    with pytest.raises(ValueError, match="unknown order 'bald'; available: random, max"):
        ranked("bald")


def test_order_choices_are_structured_not_parsed():
    tricky = ["maxent: x", "cat"]
    menu = order_options(tricky)
    titles = [o.title for o in menu]
    assert titles[:7] == ["random", "max entropy", "least confidence", "margin", "knn confidence",
                          "maxent: maxent: x", "maxent: cat"]
    assert "badge" in titles and "badge: cat" in titles and "diversity: cat" not in titles
    choice = OrderChoice.from_dict(menu[5].to_dict())
    assert choice == OrderChoice("maxent", "maxent: x")
    picked = rank(choice.to_dict(), ALL5, 2, rng=np.random.default_rng(0), classes=tricky,
                  probs=PROBS)
    assert picked.tolist() == [0, 4]  # class 0 is the one called "maxent: x"
    with pytest.raises(ValueError, match="needs a class name"):
        OrderChoice("highest")
    with pytest.raises(ValueError, match="takes no class"):
        OrderChoice("random", "cat")
    with pytest.raises(ValueError, match="unknown class 'dog'"):
        rank(OrderChoice("highest", "dog"), ALL5, 2, rng=np.random.default_rng(0),
             classes=tricky, probs=PROBS)


def test_available_orders_follow_the_arrays_present():
    assert available_orders() == ["random"]
    assert set(available_orders(probs=PROBS)) == {
        "random", "max entropy", "least confidence", "margin", "maxent", "highest", "lowest",
        "high", "low"}
    every = available_orders(probs=PROBS, embeddings=PROBS, features=PROBS, labels=PROBS,
                             propagation=PROBS)
    assert every == list(ORDERS)
    assert {"disagreement", "propagation score"} <= set(available_orders(labels=PROBS, propagation=PROBS))
    assert "propagation score" not in available_orders(probs=PROBS, labels=PROBS)


def test_propagation_scores_old_name_scores_still_works_with_a_warning():
    scores = np.array([[0.2], [0.9], [0.5], [0.7], [0.1]])
    with pytest.warns(DeprecationWarning, match=r"rank\(scores=\.\.\.\) is now rank\(propagation="):
        assert ranked("propagation score", scores=scores, cls=0) == [1, 3, 2, 0, 4]
    assert ranked("propagation score", propagation=scores, cls=0) == [1, 3, 2, 0, 4]
    with pytest.warns(DeprecationWarning, match=r"available_orders\(scores=\.\.\.\)"):
        assert "propagation score" in available_orders(scores=scores)
    with pytest.raises(TypeError, match="give propagation= only"):
        ranked("propagation score", scores=scores, propagation=scores, cls=0)


def test_a_random_fraction_mixes_uniform_picks_into_any_order():
    probs = np.linspace(0.01, 0.99, 100)[:, None]
    everything = np.ones(100, dtype=bool)
    picks = rank(OrderChoice("highest", "c", random_fraction=0.3), everything, 10,
                 rng=np.random.default_rng(0), classes=["c"], probs=probs)
    assert len(set(picks)) == 10
    top = set(range(93, 100))  # the 7 ranked picks are the 7 highest
    assert top <= set(picks.tolist()) and len(set(picks.tolist()) - top) == 3
    assert OrderChoice("margin", random_fraction=0.2).title == "margin + 20% random"
    with pytest.raises(ValueError, match="random_fraction must be a number in \\[0, 1\\]"):
        OrderChoice("margin", random_fraction=1.5)


def test_mix_random_spreads_distinct_extra_rows_among_the_picks():
    out = mix_random(np.array([5, 6, 7]), np.ones(50, dtype=bool), 20, np.random.default_rng(1))
    assert len(out) == 23 and len(set(out.tolist())) == 23
    assert [r for r in out if r in (5, 6, 7)] == [5, 6, 7]  # the ranked rows keep their order


@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
def test_least_confidence_and_margin_orders_match_their_scores(output):
    probs = np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25], [0.9, 0.05, 0.05], [0.5, 0.45, 0.05]])
    from patchwork_widget.active.uncertainty import score
    for name, kind in (("least confidence", "least confidence"), ("margin", "margin"),
                       ("max entropy", "entropy")):
        expected = np.argsort(-score(kind, probs, output), kind="stable").tolist()
        assert ranked(name, np.ones(4, dtype=bool), 4, probs=probs, output=output) == expected


@pytest.mark.parametrize("name", ["max entropy", "margin", "least confidence", "highest", "lowest",
                                  "maxent", "high", "low", "random"])
def test_a_count_gives_the_first_rows_of_the_full_ranking(name):
    """Orders stop sorting at ``count`` (partial selection): same rows, same order, ties too."""
    rng = np.random.default_rng(3)
    probs = np.round(rng.random((500, 3)), 1)  # many ties
    probs[7] = np.nan  # a row without outputs is left out
    labels = np.where(rng.random((500, 3)) < 0.2, 1.0, np.nan)
    arrays = {"probs": probs, "labels": labels, "cls": 1}
    full = ORDERS[name].order(ALL500, rng=np.random.default_rng(0), **arrays)
    for count in (1, 10, 77):
        part = ORDERS[name].order(ALL500, rng=np.random.default_rng(0), count=count, **arrays)
        if name == "random":
            assert len(part) == count and len(set(part)) == count
        else:
            assert part.tolist() == full[:count].tolist()
    if name != "random":
        assert 7 not in full


ALL500 = np.ones(500, dtype=bool)


def test_uncertainty_scores_use_a_cache_the_caller_clears():
    probs = np.array([[0.5, 0.9], [0.1, 0.2]])
    cache: dict = {}
    first = ranked("max entropy", np.ones(2, dtype=bool), 2, probs=probs, cache=cache)
    assert first == [0, 1] and any(key[0] == "per class" for key in cache)
    cache[("per class", "entropy", "sigmoid")] = np.array([[0.0, 0.0], [1.0, 1.0]])  # stale on purpose
    assert ranked("max entropy", np.ones(2, dtype=bool), 2, probs=probs, cache=cache) == [1, 0]


def test_disagreement_scores_labeled_rows_with_out_of_fold_predictions():
    from scipy.special import softmax

    from patchwork_widget.models.convex import fit_multinomial, out_of_fold

    # 60 rows, 3 classes, 60 noise dimensions, almost no L2: a head fitted on every label
    # memorises the 6 flipped ones; out-of-fold predictions come from heads that never saw them
    rng = np.random.default_rng(0)
    truth = np.arange(60) % 3
    x = np.hstack([np.eye(3)[truth] * 3.0, 0.5 * rng.normal(size=(60, 60))])
    flipped = np.zeros(60, dtype=bool)
    flipped[rng.choice(60, 6, replace=False)] = True
    given = np.where(flipped, (truth + 1) % 3, truth)
    labels = np.eye(3)[given]
    fit = fit_multinomial(x, labels, l2=1e-6)
    inside = softmax(x @ fit.kernel.astype(np.float64) + fit.bias, axis=1)
    held = out_of_fold(x, labels, l2=1e-6, single_label=True)
    all60 = np.ones(60, dtype=bool)
    by_model = ranked("disagreement", all60, 6, labels=labels, probs=inside)
    by_heldout = ranked("disagreement", all60, 6, labels=labels, probs=inside, heldout=held)
    assert flipped[by_heldout].all() and flipped[by_model].sum() <= 3
    # heldout replaces probs only on labeled entries it covers: exactly the OOF scores
    partial = np.where(np.arange(60)[:, None] < 30, held, NAN)
    expected = np.r_[np.abs(labels - held)[:30].max(axis=1),
                     np.abs(labels - inside)[30:].max(axis=1)]
    np.testing.assert_allclose(disagreement_scores(labels, inside, heldout=partial), expected)
    with pytest.raises(ValueError, match=r"heldout predictions have shape \(60, 2\)"):
        disagreement_scores(labels, inside, heldout=held[:, :2])
