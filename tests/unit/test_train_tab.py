"""The Model and Train tabs, driven like a user: defaults from the options, a run reported on
the kernel thread, failures shown, never a stuck status."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from patchwork_widget.labels import prep_label_dataframe  # noqa: E402
from patchwork_widget.options import Optimizer, TrainOptions  # noqa: E402
from patchwork_widget.widget import PatchworkWidget  # noqa: E402
from widget_comm import install  # noqa: E402


@pytest.fixture
def widget(tmp_path, image_paths, monkeypatch):
    install(monkeypatch)
    rng = np.random.default_rng(0)
    cat = np.arange(40) % 2
    features = (np.stack([cat, 1 - cat], axis=1) * 3 + rng.normal(size=(40, 2))).astype(np.float32)
    w = PatchworkWidget(prep_label_dataframe(image_paths, ["cat"]), features=features,
                        outfile=tmp_path / "l.csv", seed=0)
    for row in range(20):
        w.session.annotate(row, {"cat": float(cat[row]), "validation": row % 4 == 0})
    return w


def test_the_forms_start_at_the_library_defaults(widget):
    tab, default = widget.train_tab, TrainOptions()
    assert tab.sampling.value == default.sampling.value and tab.solver.value == default.solver.value
    assert [v for _, v in tab.optimizer.options] == Optimizer.values()
    assert TrainOptions.from_dict(tab.options()) == default


def test_train_from_the_tab_then_histograms_and_suggestions(widget):
    widget.model_tab.build.click()
    assert "Built:" in widget.model_tab.status.value
    revision = widget.labeler.revision
    widget.train_tab.epochs.value = 2
    widget.train_tab.train_button.click()
    assert widget.train_tab.train_button.disabled
    widget.session.job.result(timeout=120)
    assert "Training done" in widget.train_tab.status.value and not widget.train_tab.train_button.disabled
    assert widget.labeler.revision > revision  # the view fetches fresh suggestions
    assert "max entropy" in [o["name"] for o in widget.labeler.orders]
    x, shares = widget.train_tab.hist_figure.data
    assert len(x) == 20 and sum(shares[0]) == pytest.approx(1.0)


def test_a_failed_run_says_so_and_frees_the_button(widget, monkeypatch):
    from patchwork_widget import models

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(models, "fit", broken)
    widget.model_tab.build.click()
    widget.train_tab.train_button.click()
    with pytest.raises(RuntimeError):
        widget.session.job.result(timeout=60)
    assert "Training failed: out of memory" in widget.train_tab.status.value
    assert not widget.train_tab.train_button.disabled and widget.train_tab.cancel_button.disabled


@pytest.mark.parametrize("model_imshape", [None, (12, 12)])
def test_a_fixed_input_extractor_trains_at_its_size_whatever_the_display_size(
        tmp_path, image_paths, monkeypatch, model_imshape):
    """Issue 25.9: the display size (32 px here) was also the model's input size, so an
    extractor built for 16 x 16 images failed at training. The model's input size is its own
    setting and defaults to the extractor's input size."""
    import keras

    install(monkeypatch)
    size = model_imshape or (16, 16)
    extractor = keras.Sequential([keras.Input((*size, 3)),
                                  keras.layers.Conv2D(4, 3, activation="relu")])
    w = PatchworkWidget(prep_label_dataframe(image_paths, ["cat"]), feature_extractor=extractor,
                        imshape=(32, 32), model_imshape=model_imshape, outfile=tmp_path / "l.csv")
    assert w.session.context.model_input_size() == size
    for row in range(12):
        w.session.annotate(row, {"cat": float(row % 2), "validation": row % 4 == 0})
    w.model_tab.build.click()
    w.train_tab.epochs.value = 1
    w.train_tab.batch_size.value = 4
    w.session.train({**w.train_tab.options(), "min_steps": 2}).result(timeout=300)
    assert w.session.predictions.shape == (40, 1)
    assert w.session.thumbnails.options.size == (32, 32)
    w.close()
