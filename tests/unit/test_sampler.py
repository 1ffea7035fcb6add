"""I4: the stratified sampler draws strata with the requested weights, within a binomial bound,
and never yields validation, excluded or unlabelled rows."""

import numpy as np
import pandas as pd
import pytest

from patchwork_widget.labels.sampler import StratifiedSampler, Weighting

NAN = np.nan
DRAWS = 40_000
Z = 5.0  # 5 binomial standard deviations: a false alarm has probability < 1e-6 per stratum


def make_labels(seed=0):
    """3 classes with very different stratum sizes and missing labels (200 rows)."""
    rng = np.random.default_rng(seed)
    n = 200
    y = np.full((n, 3), NAN)
    y[:, 0] = (rng.random(n) < 0.05).astype(float)           # rare positives, all labelled
    y[:100, 1] = (rng.random(100) < 0.5).astype(float)       # half the rows labelled
    y[rng.choice(n, 12, replace=False), 2] = 1.0             # only a few positives
    return y


def within_binomial_bound(counts, probs, draws):
    expected = draws * probs
    sd = np.sqrt(draws * probs * (1 - probs))
    return np.abs(counts - expected) <= Z * sd + 1


@pytest.mark.parametrize("weighting", ["uniform", "proportional", "sqrt"])
def test_stratum_frequencies_match_the_weights(weighting):
    y = make_labels()
    s = StratifiedSampler(y, weighting=weighting, seed=1)
    sizes = s.sizes.astype(float)
    want = {"uniform": np.ones_like(sizes), "proportional": sizes, "sqrt": np.sqrt(sizes)}
    probs = want[weighting] / want[weighting].sum()
    np.testing.assert_allclose(s.probabilities, probs)
    rows, strata = s.sample_with_strata(DRAWS)
    counts = np.bincount(strata, minlength=len(sizes))
    assert within_binomial_bound(counts, probs, DRAWS).all(), (counts, DRAWS * probs)
    # the drawn row really is in the drawn stratum
    for k, (cls, value) in enumerate(s.strata):
        assert (y[rows[strata == k], cls] == value).all()


def test_row_frequencies_match_row_probabilities():
    y = make_labels(seed=2)
    s = StratifiedSampler(y, weighting="sqrt", seed=3)
    p = s.row_probabilities(len(y))
    assert p.sum() == pytest.approx(1.0)
    counts = np.bincount(s.sample(DRAWS), minlength=len(y))
    assert within_binomial_bound(counts, p, DRAWS).all()


def test_validation_excluded_and_unlabelled_rows_are_never_drawn():
    y = make_labels()
    df = pd.DataFrame({"filepath": [f"{i}.png" for i in range(len(y))],
                       "exclude": False, "validation": False})
    for j, c in enumerate("abc"):
        df[c] = y[:, j]
    df.loc[::5, "validation"] = True
    df.loc[1::7, "exclude"] = True
    df.loc[3, ["a", "b", "c"]] = NAN                      # one row with no label at all
    s = StratifiedSampler.from_table(df, ["a", "b", "c"], seed=0)
    drawn = np.unique(np.concatenate([next(s.batches(64)) for _ in range(300)]))
    forbidden = df.index[df.validation | df.exclude | df[["a", "b", "c"]].isna().all(axis=1)]
    assert not set(drawn) & set(forbidden)
    assert s.strata[0] == ("a", 0) and set(drawn) == set(np.flatnonzero(
        ~df.validation & ~df.exclude & df[["a", "b", "c"]].notna().any(axis=1)))


def test_missing_labels_stay_missing():
    y = np.array([[1.0, NAN], [0.0, NAN], [NAN, 1.0], [NAN, 0.0]])
    s = StratifiedSampler(y, seed=0)
    assert s.strata == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert s.sizes.tolist() == [1, 1, 1, 1]
    rows = s.sample(1000)
    assert set(rows) == {0, 1, 2, 3}


def test_batches_is_an_endless_generator_of_index_arrays():
    s = StratifiedSampler(make_labels(), seed=0)
    gen = s.batches(32)
    for _ in range(5):
        b = next(gen)
        assert b.shape == (32,) and b.dtype == np.int64


def test_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match="no training labels"):
        StratifiedSampler(np.full((4, 2), NAN))
    with pytest.raises(ValueError, match="no training labels"):
        StratifiedSampler(np.ones((4, 2)), train_mask=np.zeros(4, bool))
    with pytest.raises(ValueError, match="'uniform', 'proportional', 'sqrt'"):
        StratifiedSampler(np.ones((4, 2)), weighting="balanced")
    with pytest.raises(ValueError, match="row 1, column 0"):
        StratifiedSampler(np.array([[1.0], [0.5]]))
    with pytest.raises(ValueError, match="batch_size"):
        next(StratifiedSampler(np.ones((4, 2))).batches(0))
    assert Weighting.parse("sqrt") is Weighting.SQRT
