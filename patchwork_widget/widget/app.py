"""``PatchworkWidget`` (alias ``GUI``): the labeling app, as an ipywidgets container (W1)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd

from patchwork_widget.active.subsets import Subset, SubsetKind
from patchwork_widget.options.legacy import take_renamed, translate_gui_keywords
from patchwork_widget.options.project import ProjectOptions, takes_options
from patchwork_widget.session import Session
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
    outfile, classes, features, feature_extractor, imshape, bands, stretch, ... : optional
        The open-a-project parameters, as keywords (every field of
        :class:`~patchwork_widget.options.project.ProjectOptions`, which describes each and
        declares its default and limits; the signature lists them), or all at once as
        ``options=ProjectOptions(...)``; a keyword given as well replaces that field.
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

    @takes_options()
    def __init__(self, source: pd.DataFrame | str | os.PathLike | None = None, *,
                 options: ProjectOptions, **original: Any) -> None:
        source = take_renamed("PatchworkWidget", {"source": source}, original,
                              required=("source",), others=True)["source"]
        legacy = translate_gui_keywords(original)
        if "features" in legacy:
            if options.features is not None:
                raise TypeError("give features=... or the original's feature_vecs=..., not both")
            options = options.replace(features=legacy["features"])
        if "outfile" in legacy and options.outfile is None:  # an explicit outfile wins over logdir
            options = options.replace(outfile=legacy["outfile"])
        self.session = Session.open(source, options=options)
        if not self.session.queue:
            self.session.sample()
        try:
            self.labeler = Labeler(self.session, keys=options.keys)
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
        app writes to the same journal and opens it with this session's open-a-project
        options (display size, classes, seed, suggestion rule, team journal, ...). In-memory
        features are saved beside the label file as ``<outfile>.features.npy``. Keyword
        arguments go to :func:`~patchwork_widget.widget.serve.serve` (``port``, ``ip``,
        ``token``, ...; an open-a-project option given there replaces this session's).
        """
        from patchwork_widget.widget.serve import serve

        outfile = self.session.store.path
        features = self.session.features
        options = self.session.options.replace(
            outfile=None, features=None, feature_extractor=None,
            imshape=self.session.thumbnails.options.size)
        path = getattr(features, "filename", None)
        if features is not None and path is None:
            path = f"{outfile}.features.npy"
            np.save(path, np.asarray(features))
        self.close()
        return serve(outfile, path, options=options, **kwargs)

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
