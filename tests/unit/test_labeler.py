"""The Labeler widget in the kernel: traits and replies, without a browser."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from widget_comm import browser_sends, browser_updates, install, replies, state_updates

from patchwork_widget.labels import prep_label_dataframe
from patchwork_widget.labels.remote import RemoteChange
from patchwork_widget.widget import GUI, PatchworkWidget


@pytest.fixture
def widget(tmp_path, image_paths, monkeypatch):
    install(monkeypatch)
    df = prep_label_dataframe(image_paths, ["cat", "<img src=x onerror=alert(1)>"])
    return PatchworkWidget(df, outfile=tmp_path / "labels.parquet", imshape=(64, 64), seed=0)


def request(widget, content):
    """Send ``content`` from the browser; return every reply the kernel sent so far."""
    browser_sends(widget.labeler, content)
    return replies(widget.labeler)


def test_widget_exposes_the_live_table_and_starts_with_a_sample(widget):
    assert GUI is PatchworkWidget
    assert widget.df is widget.session.df is widget.session.store.df
    assert len(widget.labeler.queue) == 40  # the default sample: up to 50 unlabeled rows
    assert widget.labeler.classes == ["cat", "<img src=x onerror=alert(1)>"]
    assert widget.labeler.thumb_size == [64, 64]
    assert widget.labeler.outfile.endswith("labels.parquet")


def test_an_annotation_is_acknowledged_then_counts_and_pace_follow(widget):
    row = widget.labeler.queue[0]
    sent = request(widget, {"type": "annotate", "id": "a:1", "rows": [row], "changes": {"cat": 1}, "seconds": 6.0})
    assert sent[0][0]["type"] == "ack" and sent[0][0]["rows"][0]["labels"] == [1.0, None]
    counts = widget.labeler.counts
    cat = counts["index"].index("cat")
    assert counts["data"][cat][counts["columns"].index("train yes")] == 1
    assert widget.labeler.stats["images_per_minute"] == pytest.approx(10.0)  # images, as people count
    assert widget.labeler.stats["online"]["images_since_update"] == 1  # one image, two classes
    assert widget.df.at[row, "cat"] == 1.0


def test_sampling_replaces_the_queue_trait(widget):
    request(widget, {"type": "annotate", "id": 1, "rows": [5, 6], "changes": {"cat": 1}})
    request(widget, {"type": "sample", "id": 2, "subset": {"kind": "contains", "cls": "cat"}, "order": "random", "count": 10})
    assert sorted(widget.labeler.queue) == [5, 6]


def test_class_edits_update_the_class_trait_and_subset_menu(widget):
    request(widget, {"type": "class", "id": 1, "action": "add", "name": "dog"})
    assert widget.labeler.classes[-1] == "dog"
    assert {"kind": "contains", "cls": "dog", "title": "contains: dog"} in widget.labeler.subsets
    request(widget, {"type": "class", "id": 2, "action": "rename", "name": "dog", "new": "hound"})
    assert widget.df.columns[-1] == "hound" and widget.labeler.classes[-1] == "hound"


def test_an_error_reply_leaves_the_traits_alone(widget):
    before = dict(widget.labeler.counts)
    sent = request(widget, {"type": "annotate", "id": 1, "rows": [1], "changes": {"cat": 7}})
    assert sent[-1][0]["type"] == "error"
    assert widget.labeler.counts == before


def test_sample_from_python_updates_the_view(widget):
    widget.session.annotate([3, 4], {"cat": 0})
    queue = widget.sample({"kind": "not_contains", "cls": "cat"}, count=5)
    assert sorted(queue) == [3, 4] and widget.labeler.queue == queue


def test_the_browser_cannot_overwrite_kernel_owned_traits(widget):
    labeler = widget.labeler
    before = {name: getattr(labeler, name) for name in ("outfile", "classes", "queue", "counts")}
    browser_updates(labeler, {"outfile": "/tmp/elsewhere.csv", "classes": ["x"], "queue": [1],
                              "counts": {}})
    assert {name: getattr(labeler, name) for name in before} == before
    assert state_updates(labeler)[-1]["outfile"] == before["outfile"]  # the view is put back


def test_a_request_whose_type_is_not_a_string_gets_a_validation_error(widget):
    sent = request(widget, {"type": ["annotate"], "id": 3})
    assert sent[-1][0]["type"] == "error" and "unknown request type" in sent[-1][0]["message"]


def test_thumbnails_travel_as_binary_buffers(widget):
    sent = request(widget, {"type": "thumbs", "id": 4, "rows": [0, 1]})
    assert [c["row"] for c, _ in sent] == [0, 1]
    assert all(len(b) == 1 and bytes(b[0])[:4] in (b"\xff\xd8\xff\xe0", b"\x89PNG") for _, b in sent)


def test_a_class_edit_tells_the_view_what_happened_to_the_suggestions(widget):
    widget.session.set_predictions(pd.DataFrame(np.full((40, 2), 0.9), columns=widget.session.classes))
    revision = widget.labeler.revision
    sent = request(widget, {"type": "class", "id": 5, "action": "add", "name": "dog"})
    assert sent[-1][0]["type"] == "classes" and any("train again" in n for n in sent[-1][0]["notices"])
    assert widget.labeler.notices == sent[-1][0]["notices"] and widget.labeler.revision > revision
    assert widget.train_tab.hist_class.options[-1] == "dog"
    assert widget.propagate_tab.hist_class.options[-1] == "dog"


def test_the_view_tells_saved_from_exported_and_close_releases_the_project(widget, tmp_path):
    row = widget.labeler.queue[0]
    request(widget, {"type": "annotate", "id": 9, "rows": [row], "changes": {"cat": 1}})
    assert widget.labeler.stats["export"]["state"] in ("pending", "exported")
    assert widget.session.store.wait_exported(10)
    widget.labeler.refresh()  # in a kernel its loop looks again every second while pending
    assert widget.labeler.stats["export"]["state"] == "exported"
    widget.close()
    again = PatchworkWidget(tmp_path / "labels.parquet", imshape=(64, 64))  # the file holds it
    assert again.df.at[row, "cat"] == 1.0
    again.close()


def test_unreadable_images_are_listed_with_their_cause_and_take_only_exclude(tmp_path, image_paths, monkeypatch):
    install(monkeypatch)
    broken = image_paths[::10]  # 10% of the folder
    for path in broken:
        with open(path, "wb") as f:
            f.write(b"not a png at all")
    w = PatchworkWidget(prep_label_dataframe(image_paths, ["cat"]), outfile=tmp_path / "l.csv", seed=0)
    sent = request(w, {"type": "thumbs", "id": 1, "rows": list(range(40))[:32]})
    sent = request(w, {"type": "thumbs", "id": 2, "rows": list(range(32, 40))})
    errors = {c["row"]: c["error"] for c, _ in sent if "error" in c}
    assert sorted(errors) == [0, 10, 20, 30]
    table = w.session.unreadable
    assert table["row"].tolist() == [0, 10, 20, 30] and table["filepath"].tolist() == broken
    assert all(table["cause"]) and list(table["cause"]) == [errors[r] for r in table["row"]]
    refused = request(w, {"type": "annotate", "id": 3, "rows": [10], "changes": {"cat": 1}})[-1][0]
    assert refused["type"] == "error" and "only 'exclude' can be set" in refused["message"]
    ok = request(w, {"type": "annotate", "id": 4, "rows": [10], "changes": {"exclude": True}})[-1][0]
    assert ok["type"] == "ack"
    assert sorted(w.sample({"kind": "unreadable"}, count=10)) == [0, 10, 20, 30]


def test_unknown_arguments_and_meaningless_original_values_are_refused_before_opening(tmp_path, image_paths):
    df = prep_label_dataframe(image_paths, ["cat"])
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['outfiel'\]"):
        PatchworkWidget(df, outfiel=tmp_path / "l.csv")
    with pytest.raises(TypeError, match=r"tracking_uri \(the original GUI's\): the widget does not log to MLflow"):
        PatchworkWidget(df, outfile=tmp_path / "l.csv", tracking_uri="http://mlflow")
    with pytest.warns(DeprecationWarning, match=r"norm=\.\.\.\) is the original GUI's keyword"), \
            pytest.raises(ValueError, match=r"norm=2\.0 cannot be honoured: the widget divides"):
        PatchworkWidget(df, outfile=tmp_path / "l.csv", norm=2.0)
    with pytest.warns(DeprecationWarning), pytest.raises(TypeError, match="not both"):
        PatchworkWidget(df, outfile=tmp_path / "l.csv", features=np.zeros((40, 2)),
                        feature_vecs=np.zeros((40, 2)))
    assert not (tmp_path / "l.csv.journal.sqlite").exists()  # nothing was opened


def test_the_table_is_source_and_its_old_name_df_or_path_still_works_with_a_warning(tmp_path, image_paths):
    df = prep_label_dataframe(image_paths, ["cat"])
    with pytest.warns(DeprecationWarning, match=r"PatchworkWidget\(df_or_path=\.\.\.\) is now "
                                                r"PatchworkWidget\(source=\.\.\.\)"):
        w = PatchworkWidget(df_or_path=df, outfile=tmp_path / "l.csv")
    assert w.df["filepath"].tolist() == df["filepath"].tolist()
    w.close()
    with pytest.raises(TypeError, match="give source= only"):
        PatchworkWidget(df, df_or_path=df, outfile=tmp_path / "m.csv")
    with pytest.raises(TypeError, match="missing its argument 'source'"):
        PatchworkWidget(outfile=tmp_path / "m.csv")
    assert not (tmp_path / "m.csv.journal.sqlite").exists()


def test_progress_follows_acknowledged_labels_jumps_and_other_annotators(widget):
    classes = widget.session.classes
    queue = list(widget.labeler.queue)
    assert widget.labeler.progress == {"queue": {"labeled": 0, "total": 40}, "all": {"labeled": 0, "total": 40}}
    request(widget, {"type": "annotate", "id": 1, "rows": [queue[0]], "changes": {c: 0 for c in classes}})
    assert widget.labeler.progress["queue"]["labeled"] == 1
    # Another annotator's label reaches the table (here written to the store directly, as a team
    # journal's listener applies it); then the session's handler of remote changes runs.
    widget.session.store.annotate(queue[1], {"exclude": True})
    widget.session._remote_changed(RemoteChange(actions=1, upto=0, annotators=("bo",), class_edits=False))
    assert widget.labeler.progress["all"] == {"labeled": 2, "total": 40}


def test_team_arguments_reach_the_session_and_bad_ones_are_named(tmp_path, image_paths):
    df = prep_label_dataframe(image_paths, ["cat"])
    with pytest.raises(ValueError, match="resolution must be one of 'latest', 'majority'"):
        PatchworkWidget(df, outfile=tmp_path / "a.csv", resolution="vote")
    with pytest.raises(ValueError, match="claim_overlap"):
        PatchworkWidget(df, outfile=tmp_path / "b.csv", claim_overlap=2.0)
    w = PatchworkWidget(df, outfile=tmp_path / "c.csv", resolution="majority", claim_lease=60.0)
    assert w.session.store._resolution.rule == "majority" and w.session.claims.lease == 60.0
    w.close()


def test_the_cursor_trait_keeps_where_the_view_was_for_a_view_that_renders_again(widget):
    assert widget.labeler.cursor == 0
    request(widget, {"type": "cursor", "id": "c:1", "index": 7})
    assert widget.labeler.cursor == widget.session.cursor == 7
    request(widget, {"type": "sample", "id": "c:2", "subset": {"kind": "all", "cls": None}, "order": "random", "count": 10})
    assert widget.labeler.cursor == 0, "a new sample starts at its first image"
    widget.session.cursor = 3  # a script moved it: the next queue event carries it
    widget.sample(count=12)
    assert widget.labeler.cursor == widget.session.cursor == 0
