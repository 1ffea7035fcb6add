"""The near-duplicates subset (issue 22): groups of near-identical images sampled whole and
consecutive, so that one multi-select labels a group; the labeler shows each row's group."""

from __future__ import annotations

import numpy as np
import pytest
from widget_comm import install

from patchwork_widget.active.duplicates import duplicate_group_ids, group_ranked
from patchwork_widget.active.subsets import Subset, SubsetKind, subset_mask, subset_options
from patchwork_widget.labels import prep_label_dataframe
from patchwork_widget.widget import PatchworkWidget

CLASSES = ["cat", "dog"]
# Rows planted as copies: (original, copies); row 5 and its two copies, 12 and its copy, ...
PLANTED = {5: [30, 31], 12: [32], 20: [33], 25: [34, 35, 36]}


def planted_features(n: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 32))
    for row, copies in PLANTED.items():
        x[copies] = x[row] + 1e-4 * rng.normal(size=(len(copies), 32))
    return x.astype(np.float32)


def test_group_ranked_keeps_groups_whole_in_the_order_of_their_best_row():
    ids = duplicate_group_ids([np.array([1, 4, 7]), np.array([2, 9]), np.array([3, 8])], 10)
    assert ids.tolist() == [-1, 0, 1, 2, 0, -1, -1, 0, 2, 1]
    ranked = np.array([9, 0, 4, 8, 1, 5, 2, 3, 7])  # 0 and 5 are in no group
    assert [g.tolist() for g in group_ranked(ranked, ids, 10)] == [[9, 2], [4, 1, 7], [8, 3]]
    # never split: the group of three does not fit in 4, the next group of two does
    assert [g.tolist() for g in group_ranked(ranked, ids, 4)] == [[9, 2], [8, 3]]
    assert [g.tolist() for g in group_ranked(ranked, ids, 1)] == [[9, 2]]  # never empty
    assert group_ranked(np.array([0, 5]), ids, 5) == []


def test_the_subset_holds_groups_with_a_row_to_label_and_the_labeled_rows_of_them():
    df = prep_label_dataframe([f"{i}.png" for i in range(6)], CLASSES)
    ids = np.array([0, 0, 1, 1, -1, 2])
    df.loc[[2, 3], CLASSES] = 1.0  # group 1 is labeled: it is done
    df.loc[0, CLASSES] = 0.0  # group 0 still has row 1 to label: row 0 comes with it
    df.loc[5, "exclude"] = True  # an excluded row stays out, and alone makes no group
    near = Subset(SubsetKind.NEAR_DUPLICATES)
    assert near.title == "near-duplicates"
    assert subset_mask(df, CLASSES, near, duplicates=ids).tolist() == [True, True] + [False] * 4
    with pytest.raises(ValueError, match="needs each row's group: pass duplicates="):
        subset_mask(df, CLASSES, near)
    with pytest.raises(ValueError, match=r"one group id per row \(6\); got shape \(2,\)"):
        subset_mask(df, CLASSES, near, duplicates=ids[:2])
    assert near not in subset_options(CLASSES) and near in subset_options(CLASSES, features=True)


def test_a_sample_of_near_duplicates_shows_each_group_together(tmp_path, image_paths, monkeypatch):
    install(monkeypatch)
    df = prep_label_dataframe(image_paths, CLASSES)
    widget = PatchworkWidget(df, features=planted_features(), outfile=tmp_path / "l.csv",
                             imshape=(32, 32), seed=0)
    assert {"kind": "near_duplicates", "cls": None, "title": "near-duplicates"} in widget.labeler.subsets
    queue = widget.sample(Subset(SubsetKind.NEAR_DUPLICATES), "random", count=50)
    groups = widget.session.queue_groups
    planted = sorted(sorted([row, *copies]) for row, copies in PLANTED.items())
    assert sorted(queue) == sorted(r for g in planted for r in g)  # every planted group, no other row
    numbers = [groups[r] for r in queue]
    assert numbers == sorted(numbers) and set(numbers) == {1, 2, 3, 4}  # consecutive, numbered
    found = sorted(sorted(r for r in queue if groups[r] == n) for n in set(numbers))
    assert found == planted
    assert widget.labeler.groups == {str(r): n for r, n in groups.items()}
    assert widget.labeler.queue == queue

    # Label the first group with one multi-row annotation: it leaves the subset.
    first = [r for r in queue if groups[r] == 1]
    for row in first:
        widget.session.annotate(row, {"cat": 1.0, "dog": 0.0})
    again = widget.session.sample({"kind": "near_duplicates"}, "random", count=3)
    assert not set(first) & set(again) and len(set(widget.session.queue_groups.values())) == 1

    widget.sample({"kind": "unlabeled"}, "random", count=5)  # another subset: no groups
    assert widget.session.queue_groups == {} and widget.labeler.groups == {}
    widget.session.close()


def test_without_features_the_subset_is_refused_and_not_offered(tmp_path, image_paths, monkeypatch):
    install(monkeypatch)
    widget = PatchworkWidget(prep_label_dataframe(image_paths, CLASSES), outfile=tmp_path / "l.csv",
                             imshape=(32, 32), seed=0)
    assert all(s["kind"] != "near_duplicates" for s in widget.labeler.subsets)
    with pytest.raises(ValueError, match="the near-duplicates subset needs features"):
        widget.session.sample({"kind": "near_duplicates"})
    widget.session.close()


def test_bad_counts_name_the_argument(tmp_path, image_paths, monkeypatch):
    ids = duplicate_group_ids([np.array([0, 1])], 3)
    with pytest.raises(ValueError, match="count"):
        group_ranked(np.array([0, 1]), ids, 0)
    with pytest.raises(ValueError, match="n"):
        duplicate_group_ids([], -1)
    install(monkeypatch)
    widget = PatchworkWidget(prep_label_dataframe(image_paths, CLASSES), features=planted_features(),
                             outfile=tmp_path / "l.csv", imshape=(32, 32), seed=0)
    with pytest.raises(ValueError, match="count"):
        widget.session.sample({"kind": "near_duplicates"}, count=0)
    widget.session.close()


def test_features_read_from_storage_offer_the_subset_while_they_fit_in_memory(
        tmp_path, image_paths, monkeypatch):
    """The kNN search holds every row in memory: stored features larger than IN_MEMORY_BYTES
    do not offer the subset (and sampling it is refused, saying why)."""
    from patchwork_widget.options import checks

    install(monkeypatch)
    np.save(tmp_path / "f.npy", planted_features())
    stored = np.load(tmp_path / "f.npy", mmap_mode="r")
    widget = PatchworkWidget(prep_label_dataframe(image_paths, CLASSES), features=stored,
                             outfile=tmp_path / "l.csv", imshape=(32, 32), seed=0)
    assert any(s["kind"] == "near_duplicates" for s in widget.labeler.subsets)
    assert len(widget.sample({"kind": "near_duplicates"}, count=50)) == 11  # the planted rows
    widget.session.close()

    monkeypatch.setattr(checks, "IN_MEMORY_BYTES", stored.nbytes // 2)
    again = PatchworkWidget(tmp_path / "l.csv", features=stored, imshape=(32, 32), seed=0)
    assert all(s["kind"] != "near_duplicates" for s in again.labeler.subsets)
    with pytest.raises(ValueError, match="features: a kNN search holds every row in memory"):
        again.session.sample({"kind": "near_duplicates"})
    again.session.close()
