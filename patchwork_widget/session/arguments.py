"""What opening a labeling session checks before it opens (or creates) a label journal."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from patchwork_widget.images.feature_rows import check_features
from patchwork_widget.labels.files import table_format
from patchwork_widget.options.checks import check_names, check_path, check_seed, shown
from patchwork_widget.session.extraction import check_extractor


def check_open_arguments(source: Any, source_name: str, *, features: Any, outfile: Any,
                         classes: Any, seed: Any, feature_extractor: Any = None) -> None:
    """Refuse, by name, arguments the session would otherwise fail on obscurely or accept
    silently, before any file is touched: the table or its file (``source_name`` is what the
    caller calls it), features (a finite numeric array of vectors or feature maps, one row per
    row of an in-memory table; a memmap or Zarr array is checked by its shape only), a named feature extractor (a known
    name or an existing file, and not together with features), the outfile, class names, the
    seed."""
    if not isinstance(source, pd.DataFrame):
        if not isinstance(source, (str, os.PathLike)):
            raise TypeError(f"{source_name} must be a label table (pandas DataFrame) or the "
                            f"path of a CSV / Parquet file holding one; got {shown(source)}")
        table_format(source, source_name)
    if features is not None:
        rows = len(source) if isinstance(source, pd.DataFrame) else None
        check_features("features", features, rows=rows)
    check_extractor(feature_extractor, features)
    check_path("outfile", outfile, allow_none=True)
    if classes is not None:
        check_names("classes", classes, what="class name")
    check_seed("seed", seed)
