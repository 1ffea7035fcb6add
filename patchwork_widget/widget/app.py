"""``PatchworkWidget`` (alias ``GUI``): the labeling app, as an ipywidgets container (W1)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd

from patchwork_widget.active.subsets import Subset, SubsetKind
from patchwork_widget.active.suggest import DEFAULT_NO, DEFAULT_YES
from patchwork_widget.images.thumbnails import DisplayOptions
from patchwork_widget.options.legacy import take_renamed, translate_gui_keywords
from patchwork_widget.options.params import Shape
from patchwork_widget.session import Session
from patchwork_widget.session.arguments import check_open_arguments
from patchwork_widget.session.claims import DEFAULT_LEASE, DEFAULT_OVERLAP
from patchwork_widget.widget.keys import KeyChoice
from patchwork_widget.widget.labeler import Labeler
from patchwork_widget.widget.model_tab import ModelTab
from patchwork_widget.widget.online_tab import OnlineTab
from patchwork_widget.widget.propagate_tab import PropagateTab
from patchwork_widget.widget.train_tab import TrainTab


class PatchworkWidget(widgets.VBox):
    """Label images in a notebook; ``.df`` is the live label table.

    Parameters
    ----------
    source : DataFrame or str or PathLike
        The label table (see ``prep_label_dataframe``) or a CSV / Parquet file holding one
        (``df_or_path``, its old name, is a deprecated alias).
    features : np.ndarray, np.memmap or zarr.Array, optional
        Pre-extracted features, one row per table row; a memmap or Zarr array is read in
        chunks, never whole (see :class:`~patchwork_widget.session.Session`).
    feature_extractor : str, Backbone, path or keras.Model, optional
        A pretrained backbone by name (``"mobilenet_v3_small"``, ``"efficientnet_b0"``, ...;
        ``patchwork_widget.options.backbones.BACKBONES``), a ``Backbone`` (weights, image
        size) or a ``.keras`` file: its features are extracted once and cached beside the
        outfile (docs/images.md). A Keras model object is used as is, on images.
    imshape : (int, int)
        Display size of an image (height, width); the display only (see ``model_imshape``).
    num_channels : int
        Channels of the model input when training on images.
    model_imshape : (int, int), optional
        Size images are resized to for the model when training on images, separate from the
        display size ``imshape``; None: the extractor's input size when it is fixed, else
        ``imshape``.
    outfile : str or PathLike, optional
        Where labels are saved (CSV or Parquet); the journal lives beside it. Defaults to the
        table's own file, or ``patchwork_labels.csv`` for an in-memory table; with a team
        ``journal``, the annotator's own file beside it (``patchwork_labels.ana.csv``).
    classes : sequence of str, optional
        Class names, when they differ from the table's class columns at creation.
    bands, stretch : optional
        Band choice and percentile stretch for 16-bit or multispectral images.
    seed : int, optional
        Seed for random sampling.
    suggest_yes, suggest_no : float
        The suggestion rule: ``a`` writes "yes" where the model's p >= ``suggest_yes`` (and the
        class has positive training labels), "no" where p <= ``suggest_no``, nothing else; a
        model trained as one label per image writes the arg-max "yes" and the rest "no".
    suggest_target : float, optional
        Thresholds per class chosen for this precision per accepted row instead
        (``Session.suggestion_quality``); None: the fixed thresholds.
    single_label : bool, optional
        One label per image (a softmax output): True declares it, False declares several
        labels per image, None decides from the labels at every training run (the Model tab
        says which).
    journal, project, annotator : str, optional
        Team labeling (docs/team.md): ``journal`` a ``postgresql://`` URL (None: the SQLite
        journal beside the outfile), the ``project`` on that server, and who is labeling.
    resolution : {"latest", "majority"}
        Which value a cell several annotators labeled shows (docs/team.md).
    claim_lease, claim_overlap : float
        Team sampling: how many seconds the images handed to this annotator stay theirs
        (renewed while labeling), and the share of a sample that may go to a second annotator
        as well, to measure agreement (docs/team.md).
    keys : mapping, optional
        Keys people choose: an action (``exclude``, ``validation``, ``accept``,
        ``accept_next``, ``undo``, ``rest_negative``, ``full``, ``similar``, ``find``,
        ``next``, ``leave``) or a class name -> a key (``KeyboardEvent.key``: one character,
        or ``"Enter"``, ``"Escape"``, ...; an action may take a list), e.g.
        ``{"exclude": "e", "cat": "c"}``. Refused when one key would do two things or a name
        is unknown. The choice is kept beside the outfile (``<outfile>.keys.json``), so a
        reopen without ``keys=`` uses it; ``keys={}`` goes back to the defaults
        (docs/widget.md, "Keys").
    **original
        The original GUI's keywords (``feature_vecs``, ``norm``, ``aug``,
        ``strong_aug``, ``fixmatch_aug``, ``logdir``, ``num_parallel_calls``) are taken as
        deprecated aliases of what they mean here, one ``DeprecationWarning`` each
        (:data:`patchwork_widget.options.legacy.GUI_KEYWORDS`, docs/migrating.md), as is this
        project's old ``df_or_path`` (:data:`~patchwork_widget.options.legacy.RENAMED`); any
        other keyword is a ``TypeError``.
    """

    def __init__(
        self,
        source: pd.DataFrame | str | os.PathLike | None = None,
        features: np.ndarray | None = None,
        feature_extractor: Any = None,
        imshape: tuple[int, int] = (256, 256),
        outfile: str | os.PathLike | None = None,
        classes: Sequence[str] | None = None,
        bands: tuple[int, ...] | None = None,
        stretch: tuple[float, float] | None = None,
        seed: int | None = None,
        suggest_yes: float = DEFAULT_YES,
        suggest_no: float = DEFAULT_NO,
        suggest_target: float | None = None,
        single_label: bool | None = None,
        journal: str | None = None,
        project: str | None = None,
        annotator: str | None = None,
        resolution: str = "latest",
        claim_lease: float = DEFAULT_LEASE,
        claim_overlap: float = DEFAULT_OVERLAP,
        num_channels: int = 3,
        model_imshape: tuple[int, int] | None = None,
        keys: Mapping[str, KeyChoice] | None = None,
        **original: Any,
    ) -> None:
        source = take_renamed("PatchworkWidget", {"source": source}, original,
                              required=("source",), others=True)["source"]
        legacy = translate_gui_keywords(original)
        if "features" in legacy:
            if features is not None:
                raise TypeError("give features=... or the original's feature_vecs=..., not both")
            features = legacy["features"]
        if "outfile" in legacy and outfile is None:  # an explicit outfile wins over logdir
            outfile = legacy["outfile"]
        check_open_arguments(source, "source", features=features, outfile=outfile,
                             classes=classes, seed=seed, feature_extractor=feature_extractor)
        display = DisplayOptions(size=Shape().check("imshape", imshape, False), bands=bands,
                                 stretch=stretch)
        self.session = Session.open(
            source, outfile=outfile, classes=classes, journal=journal, project=project,
            annotator=annotator, resolution=resolution, claim_lease=claim_lease,
            claim_overlap=claim_overlap, features=features,
            feature_extractor=feature_extractor, display=display, seed=seed,
            suggest_yes=suggest_yes, suggest_no=suggest_no, suggest_target=suggest_target,
            single_label=single_label, num_channels=num_channels, model_imshape=model_imshape,
        )
        if not self.session.queue:
            self.session.sample()
        try:
            self.labeler = Labeler(self.session, keys=keys)
        except ValueError:
            self.session.close()  # a refused choice of keys leaves the journal free
            raise
        self.model_tab = ModelTab(self.session, fixmatch=_fields(legacy, "fixmatch"))
        self.train_tab = TrainTab(self.session, train=_fields(legacy, "train"),
                                  build=self.model_tab.build_from_form)
        self.propagate_tab = PropagateTab(self.session)
        self.online_tab = OnlineTab(self.session)
        self.tabs = widgets.Tab(
            children=[self.labeler, self.model_tab, self.train_tab, self.propagate_tab, self.online_tab],
            titles=["Label", "Model", "Train", "Propagate", "Online"],
        )
        self.tabs.observe(self._tab_shown, names="selected_index")
        super().__init__(children=[self.tabs])

    def _tab_shown(self, change: dict[str, Any]) -> None:
        """Draw a tab's figures the first time it is shown (bqplot cannot lay them out hidden)."""
        shown = self.tabs.children[change["new"]] if change["new"] is not None else None
        if isinstance(shown, (TrainTab, PropagateTab, OnlineTab)):
            shown.show()

    @property
    def df(self) -> pd.DataFrame:
        """The live label table (the same object as ``session.df``)."""
        return self.session.df

    @property
    def models(self) -> dict[str, Any]:
        """Models built so far (filled by the Model tab)."""
        return self.session.models

    @property
    def predictions(self) -> pd.DataFrame | None:
        """Model outputs per row and class, or None before training."""
        return self.session.predictions

    @property
    def history(self) -> pd.DataFrame:
        """The annotation log (time, row, field, old, new, seconds, ...)."""
        return self.session.history

    def sample(
        self, subset: Subset | Mapping[str, Any] = Subset(SubsetKind.UNLABELED),
        order: str = "random", count: int = 50,
    ) -> list[int]:
        """Draw a new queue (as the Sample button does) and show it; returns its rows."""
        queue = self.session.sample(subset, order, count)
        self.labeler.refresh()
        return queue

    def save(self, path: str | os.PathLike | None = None) -> str:
        """Write the labels atomically now; returns the path written (the outfile is also
        kept current in the background)."""
        return self.session.save(path)

    def panel(self) -> PatchworkWidget:
        """The displayable app (this widget), for code written for the original's ``panel()``."""
        return self

    def serve(self, **kwargs: Any) -> Any:
        """Serve this project as a standalone web app (Voila) and return its
        :class:`~patchwork_widget.widget.serve.ServedApp` (``.url`` carries the token).

        One writer holds a journal at a time, so this widget's session is closed first; the
        app writes to the same journal. In-memory features are saved beside the label file
        as ``<outfile>.features.npy``. Keyword arguments go to
        :func:`~patchwork_widget.widget.serve.serve` (``port``, ``ip``, ``token``, ...; with a
        team journal give ``journal``, ``project_name`` and ``annotator`` again).
        """
        from patchwork_widget.widget.serve import serve

        outfile = self.session.store.path
        features = self.session.features
        kwargs.setdefault("imshape", self.session.thumbnails.options.size)
        path = getattr(features, "filename", None)
        if features is not None and path is None:
            path = f"{outfile}.features.npy"
            np.save(path, np.asarray(features))
        self.close()
        return serve(outfile, path, **kwargs)

    def close(self) -> None:
        """Close the session (outfile written, journal released), then the widget."""
        session = getattr(self, "session", None)  # None when the constructor failed
        if session is not None:
            session.close()
        super().close()


GUI = PatchworkWidget


def _fields(legacy: dict[str, Any], group: str) -> dict[str, Any]:
    """The ``group.field`` entries of translated original keywords, as ``{field: value}``."""
    return {key.split(".", 1)[1]: value for key, value in legacy.items()
            if key.startswith(group + ".")}
