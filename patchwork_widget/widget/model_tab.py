"""The Model tab: fine-tuning model, output loss and FixMatch choices (W4; M1, M2, M4)."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets

from patchwork_widget.options import FineTuneOptions, FixMatchOptions, HeadKind, LossKind, LossOptions, Pooling
from patchwork_widget.options.params import form_bounds
from patchwork_widget.session import Session
from patchwork_widget.widget.forms import Status

logger = logging.getLogger(__name__)


def missing_ml_packages() -> list[str]:
    """Packages the Model and Train tabs need that are not installed."""
    return [name for name in ("tensorflow", "keras") if importlib.util.find_spec(name) is None]


class ModelTab(widgets.VBox):
    """Choose and build the fine-tuning and output models.

    ``fixmatch`` holds FixMatch options the form does not show (e.g. ``strong_aug`` from the
    original GUI's keyword); they go into every build. Bounds of the number fields are the
    options' declared limits (``CONSTRAINTS``).
    """

    def __init__(self, session: Session, fixmatch: Mapping[str, Any] | None = None) -> None:
        self.session = session
        self.fixmatch_extra = dict(fixmatch or {})
        style = {"description_width": "140px"}
        head, loss = FineTuneOptions(), LossOptions()  # the defaults
        fixmatch = FixMatchOptions.from_dict(self.fixmatch_extra)
        self.kind = widgets.ToggleButtons(options=HeadKind.choices(), value=head.kind.value,
                                          description="fine-tuning", style=style)
        self.pooling = widgets.Dropdown(options=Pooling.choices(), value=head.pooling.value,
                                        description="pooling", style=style)
        self.spec = widgets.Text(value=head.spec, description="convnet layers", style=style)
        self.kernel_size = widgets.BoundedIntText(value=head.kernel_size, **form_bounds(FineTuneOptions, "kernel_size"), step=2, description="kernel size", style=style)
        self.dropout = widgets.FloatSlider(value=head.dropout_rate, **form_bounds(FineTuneOptions, "dropout_rate"), step=0.05, description="dropout rate", style=style)
        self.loss = widgets.Dropdown(options=LossKind.choices(), value=loss.kind.value, description="output", style=style)
        self.smoothing = widgets.BoundedFloatText(value=loss.label_smoothing, **form_bounds(LossOptions, "label_smoothing", 0.01), step=0.05, description="label smoothing", style=style)
        self.gamma = widgets.BoundedFloatText(value=loss.gamma, **form_bounds(LossOptions, "gamma"), step=0.5, description="focal gamma", style=style)
        self.lam = widgets.BoundedFloatText(value=fixmatch.lam, **form_bounds(FixMatchOptions, "lam"), step=0.5, description="FixMatch lambda", style=style)
        self.tau = widgets.BoundedFloatText(value=fixmatch.tau, **form_bounds(FixMatchOptions, "tau", 0.01), step=0.01, description="FixMatch tau", style=style)
        self.mu = widgets.BoundedIntText(value=fixmatch.mu, **form_bounds(FixMatchOptions, "mu"), description="FixMatch mu", style=style)
        self.build = widgets.Button(description="Build model", button_style="primary")
        self.status = Status()
        self.build.on_click(lambda _: self.build_model())
        self.kind.observe(lambda _: self._show_fields(), names="value")
        self.loss.observe(lambda _: self._show_fields(), names="value")
        spec_help = widgets.HTML(
            "<small>convnet layers: a number is a convolution with that many filters, "
            "<code>p</code> 2x2 max-pool, <code>d</code> spatial dropout, <code>r</code> residual block</small>"
        )
        self.convnet_fields = widgets.VBox([self.spec, spec_help, self.kernel_size, self.dropout])
        super().__init__(
            [
                widgets.HTML("<b>Fine-tuning model</b> (features to vector)"),
                self.kind, self.pooling, self.convnet_fields,
                widgets.HTML("<b>Output model</b> (vector to class probabilities)"),
                self.loss, self.smoothing, self.gamma,
                widgets.HTML("<b>Semi-supervised</b> (FixMatch; lambda 0 turns it off)"),
                self.lam, self.tau, self.mu,
                widgets.HBox([self.build, self.status]),
            ]
        )
        self._show_fields()
        missing = missing_ml_packages()
        if missing:
            self.build.disabled = True
            self.status.say(f"Models need {' and '.join(missing)}: pip install 'patchwork_widget[all]'")

    def _show_fields(self) -> None:
        self.convnet_fields.layout.display = "" if self.kind.value == HeadKind.CONVNET else "none"
        self.gamma.layout.display = "" if self.loss.value == LossKind.FOCAL else "none"

    def build_from_form(self) -> Any:
        """Build the models the form describes and say so; returns them. Raises ValueError
        (bad settings, no features). Building takes seconds (TensorFlow loads on the first
        build): the button shows a busy state meanwhile."""
        self.build.disabled, self.build.description = True, "Building…"
        self.status.say("Building the model (TensorFlow loads on the first build)…")
        try:
            model = self.session.build_model(
                finetune={
                    "kind": self.kind.value, "pooling": self.pooling.value, "spec": self.spec.value,
                    "kernel_size": self.kernel_size.value, "dropout_rate": self.dropout.value,
                },
                loss={"kind": self.loss.value, "label_smoothing": self.smoothing.value, "gamma": self.gamma.value},
                fixmatch={**self.fixmatch_extra, "lam": self.lam.value, "tau": self.tau.value, "mu": self.mu.value},
            )
        except ValueError as err:
            self.status.say(str(err), error=True)
            raise
        finally:
            self.build.disabled, self.build.description = False, "Build model"
        params = model.fine_tuning.count_params() + model.output.count_params()
        self.status.say(f"Built: {params:,} trainable parameters for {len(model.classes)} classes. "
                        f"Output: {self.session.output_mode()}.")
        return model

    def build_model(self) -> None:
        """Build the models from the form (the Build button); an error is shown, not raised."""
        try:
            self.build_from_form()
        except ValueError:
            return
