"""Label propagation from the Session and the Propagate tab, without a browser."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from patchwork_widget.labels import prep_label_dataframe
from patchwork_widget.widget import PatchworkWidget


@pytest.fixture
def widget(tmp_path, image_paths):
    rng = np.random.default_rng(0)
    centres = np.array([[5.0, 0.0], [0.0, 5.0]])
    group = np.arange(40) % 2  # two clusters of 20: group 0 is "cat", group 1 is not
    features = (centres[group] + rng.normal(scale=0.3, size=(40, 2))).astype(np.float32)
    df = prep_label_dataframe(image_paths, ["cat"])
    w = PatchworkWidget(df, features=features, outfile=tmp_path / "labels.csv", seed=0)
    w.session.annotate([0, 2], {"cat": 1})  # two of group 0
    w.session.annotate([1, 3], {"cat": 0})  # two of group 1
    w.group = group
    return w


def test_propagation_separates_the_clusters_and_feeds_the_orders(widget):
    tab = widget.propagate_tab
    tab.k.value = 10
    tab.build_button.click()
    assert "Graph built: 40 images" in tab.status.value
    tab.propagate_button.click()
    scores = widget.session.propagation["cat"].to_numpy()
    assert (scores[widget.group == 0] > 0.5).all() and (scores[widget.group == 1] < 0.5).all()
    assert any(o["name"] == "disagreement" for o in widget.labeler.orders)
    x, (yes, no, unlabeled) = tab.figure.data  # shares of each group, drawn once the tab shows
    assert sum(yes) == sum(no) == sum(unlabeled) == pytest.approx(1.0)
    assert x[np.argmax(yes)] > 0.5 > x[np.argmax(no)]
    assert tab.figure.lines is None
    widget.tabs.selected_index = 3
    assert list(tab.figure.lines.y[2]) == list(unlabeled)


def test_pseudo_labels_keep_own_labels_and_export(widget, tmp_path):
    widget.session.build_graph(k=5)
    widget.session.propagate("bai")
    widget.session.annotate(4, {"cat": 0})  # a label that disagrees with its cluster
    pseudo = widget.session.pseudo_labels(threshold=0.6)
    assert pseudo.loc[4, "cat"] == 0.0 and pseudo.loc[0, "cat"] == 1.0
    widget.propagate_tab.threshold.value = 0.6
    widget.propagate_tab.export_button.click()
    written = pd.read_csv(tmp_path / "labels_pseudo_labels.csv")
    assert list(written.columns) == ["filepath", "cat"] and len(written) == 40


def test_propagation_needs_features_and_a_graph(tmp_path, image_paths):
    w = PatchworkWidget(prep_label_dataframe(image_paths, ["cat"]), outfile=tmp_path / "l.csv")
    assert w.propagate_tab.build_button.disabled
    with pytest.raises(ValueError, match="needs pre-extracted features"):
        w.session.build_graph()
    with pytest.raises(ValueError, match="build the graph first"):
        w.session.propagate()


def test_propagation_scores_become_a_per_class_order(widget):
    widget.session.build_graph(k=10)
    widget.session.propagate()
    assert "propagation score: cat" in [o["title"] for o in widget.labeler.orders]  # told at once
    queue = widget.sample({"kind": "unlabeled"}, {"name": "propagation score", "cls": "cat"}, count=36)
    scores = widget.session.propagation["cat"].to_numpy()
    assert list(scores[queue]) == sorted(scores[queue], reverse=True)
    assert set(queue[:18]) == set(np.flatnonzero(widget.group == 0)) - {0, 2}


def test_the_graph_reports_the_recall_of_its_neighbours(widget):
    widget.propagate_tab.build_button.click()
    assert "exact search, recall 1.000" in widget.propagate_tab.status.value
    assert widget.session.build_graph(k=5, recall=0.9).search.recall == 1.0  # exact below 20,000 rows
