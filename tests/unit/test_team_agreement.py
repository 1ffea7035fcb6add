"""Agreement between annotators (issue 16): Cohen's kappa equal to scikit-learn's, nominal
Krippendorff's alpha on the published example, and both from a team store's history."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from patchwork_widget.labels import (
    LabelStore,
    krippendorff_alpha,
    pairwise_kappa,
    prep_label_dataframe,
)
from patchwork_widget.labels.agreement import cohen_kappa

sys.path.insert(0, str(Path(__file__).parent))
from postgres_server import postgres  # noqa: E402,F401  (the fixture)


def history(cells: list[tuple[str, int, str, float]], undone: set[int] = frozenset()):
    """A history frame: one annotate action per (user, row, field, value)."""
    return pd.DataFrame(
        {
            "action": range(1, len(cells) + 1),
            "kind": "annotate",
            "user": [c[0] for c in cells],
            "row": [c[1] for c in cells],
            "field": [c[2] for c in cells],
            "new": [c[3] for c in cells],
            "undone": [i + 1 in undone for i in range(len(cells))],
        }
    )


@pytest.mark.parametrize("seed", range(5))
def test_kappa_equals_scikit_learns(seed) -> None:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2, 60).astype(float)
    b = np.where(rng.random(60) < 0.7, a, 1 - a)
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))


def test_pairwise_kappa_uses_each_annotators_standing_value() -> None:
    rng = np.random.default_rng(3)
    ana = rng.integers(0, 2, 40).astype(float)
    bob = np.where(rng.random(40) < 0.8, ana, 1 - ana)
    cells = [("ana", r, "cat", v) for r, v in enumerate(ana)]
    cells += [("bob", r, "cat", 1 - v) for r, v in enumerate(bob)]  # corrected below
    cells += [("bob", r, "cat", v) for r, v in enumerate(bob)]
    cells += [("bob", 50, "cat", 1.0), ("ana", 51, "cat", np.nan)]  # no pair: left out
    cells += [("eve", 0, "cat", 0.0)]  # undone: not eve's value
    table = pairwise_kappa(history(cells, undone={len(cells)}))
    assert table.values.tolist() == [
        ["cat", "ana", "bob", 40, pytest.approx(cohen_kappa_score(ana, bob))]
    ]


def test_alpha_matches_krippendorffs_worked_example() -> None:
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 coders, 12
    # units, nominal alpha = 0.743 (None: not coded)
    coders = {
        "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    }
    cells = [(c, u, "x", float(v)) for c, vs in coders.items() for u, v in enumerate(vs)
             if v is not None]
    table = krippendorff_alpha(history(cells))
    assert table["class"].tolist() == ["x", "(all)"]
    assert table["items"].tolist() == [11, 11]  # unit 12 has one value: not pairable
    assert table["alpha"].tolist() == pytest.approx([0.743, 0.743], abs=5e-4)


def test_agreement_from_a_team_stores_history(postgres, tmp_path) -> None:  # noqa: F811
    base = prep_label_dataframe([f"img{i}.png" for i in range(30)], ["cat", "dog"])
    project = f"agree-{uuid.uuid4().hex[:8]}"
    stores = {
        name: LabelStore.open(tmp_path / f"{name}.csv", df=base, autosave=None,
                              journal=postgres.url, project=project, annotator=name)
        for name in ("ana", "bob")
    }
    try:
        rng = np.random.default_rng(0)
        ana = rng.integers(0, 2, 30)
        bob = np.where(rng.random(30) < 0.75, ana, 1 - ana)
        for row in range(30):
            stores["ana"].annotate(row, {"cat": int(ana[row])})
            stores["bob"].annotate(row, {"cat": int(bob[row])})
        history = stores["ana"].history()
        kappa = pairwise_kappa(history)
        assert kappa.loc[0, "kappa"] == pytest.approx(cohen_kappa_score(ana, bob))
        assert kappa.loc[0, "items"] == 30
        alpha = krippendorff_alpha(history).set_index("class")
        assert alpha.loc["cat", "items"] == 30 and -1 <= alpha.loc["cat", "alpha"] <= 1
    finally:
        for store in stores.values():
            store.close()


def test_disagreements_list_the_cells_annotators_differ_on() -> None:
    from patchwork_widget.labels import disagreements

    cells = [
        ("ana", 1, "cat", 1.0), ("bob", 1, "cat", 0.0),  # differ
        ("ana", 2, "cat", 1.0), ("bob", 2, "cat", 1.0),  # agree
        ("ana", 3, "dog", 0.0), ("bob", 3, "dog", 1.0), ("bob", 3, "dog", 0.0),  # now agree
        ("ana", 4, "dog", 1.0), ("eve", 4, "dog", 0.0),  # differ
        ("ana", 5, "cat", 1.0),  # one annotator only
    ]
    table = disagreements(history(cells))
    assert table.columns.tolist() == ["row", "field", "ana", "bob", "eve"]
    assert table[["row", "field"]].values.tolist() == [[1, "cat"], [4, "dog"]]
    assert table.loc[1, ["ana", "eve"]].tolist() == [1.0, 0.0] and np.isnan(table.loc[1, "bob"])
