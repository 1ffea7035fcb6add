"""What opening a labeling session checks before it opens (or creates) a label journal."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from patchwork_widget.labels.files import table_format
from patchwork_widget.options.checks import check_features, shown
from patchwork_widget.options.project import ProjectOptions
from patchwork_widget.session.extraction import check_extractor


def check_open_arguments(source: Any, source_name: str, options: ProjectOptions) -> None:
    """Refuse, by name, what the session would otherwise fail on obscurely or accept silently,
    before any file is touched, beyond the declared limits :class:`ProjectOptions` checked:
    the table or its file (``source_name`` is what the caller calls it), features with one row
    per row of an in-memory table, and a named feature extractor (a known name or an existing
    file, and not together with features)."""
    if not isinstance(source, pd.DataFrame):
        if not isinstance(source, (str, os.PathLike)):
            raise TypeError(f"{source_name} must be a label table (pandas DataFrame) or the "
                            f"path of a CSV / Parquet file holding one; got {shown(source)}")
        table_format(source, source_name)
    if options.features is not None and isinstance(source, pd.DataFrame):
        # its values were checked by ProjectOptions: only the rows here
        check_features("features", options.features, rows=len(source), finite=False)
    check_extractor(options.feature_extractor, options.features)
