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


def test_train_without_a_model_builds_the_model_tabs_model_first(widget):
    assert widget.session.model is None
    widget.model_tab.smoothing.value = 0.1  # the Model tab's form, not the library default
    widget.train_tab.train_button.click()
    assert widget.session.model is not None and "Built:" in widget.model_tab.status.value
    assert widget.train_tab.train_button.description == "Train" and widget.train_tab.train_button.disabled
    widget.session.job.result(timeout=120)
    assert "Training done" in widget.train_tab.status.value
    assert widget.session.loss.label_smoothing == pytest.approx(0.1)


def test_a_build_that_fails_from_train_says_why_and_frees_the_button(widget):
    widget.model_tab.kind.value, widget.model_tab.spec.value = "convnet", "64,q"  # no such layer
    widget.train_tab.train_button.click()
    assert "Could not build a model: bad token &#x27;q&#x27;" in widget.train_tab.status.value
    assert "bad token &#x27;q&#x27;" in widget.model_tab.status.value
    assert not widget.train_tab.train_button.disabled and widget.session.job is None


def test_build_model_shows_a_busy_state_while_it_builds(widget):
    seen = []
    widget.model_tab.build.observe(lambda change: seen.append((change["name"], change["new"])),
                                   names=["description", "disabled"])
    widget.model_tab.build.click()
    assert ("description", "Building…") in seen and ("disabled", True) in seen
    assert widget.model_tab.build.description == "Build model" and not widget.model_tab.build.disabled


def test_the_lbfgs_solver_says_what_it_did_instead_of_a_one_point_curve(widget):
    widget.model_tab.build.click()
    widget.train_tab.epochs.value = 10  # the automatic solver picks L-BFGS here: no epochs
    widget.train_tab.train_button.click()
    result = widget.session.job.result(timeout=120)
    assert result.solver == "lbfgs"
    iterations = int(result.history["iterations"].iloc[-1])
    status = widget.train_tab.status.value
    assert f"L-BFGS (full batch): converged in {iterations} iteration(s)" in status
    assert "validation loss" in status and "epoch(s)" not in status
    assert widget.train_tab.loss_figure.layout.display == "none"


def test_minibatch_without_validation_rows_draws_only_the_training_loss(widget):
    for row in range(0, 20, 4):
        widget.session.annotate(row, {"validation": False})
    widget.model_tab.build.click()
    widget.train_tab.solver.value = "minibatch"
    widget.train_tab.epochs.value = 3
    widget.train_tab.train_button.click()
    widget.session.job.result(timeout=120)
    x, ys = widget.train_tab.loss_figure.data
    assert list(x) == [1.0, 2.0, 3.0] and len(ys) == 1 and np.isfinite(ys[0]).all()
    assert widget.train_tab.loss_figure.layout.display == ""
    assert "no validation rows" in widget.train_tab.status.value or "Training done" in widget.train_tab.status.value
