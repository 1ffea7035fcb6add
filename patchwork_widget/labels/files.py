"""Reading and atomically writing label tables as CSV or Parquet (FEATURES L2, L4)."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import pandas as pd

from .schema import FILEPATH, validate_label_dataframe

log = logging.getLogger(__name__)

EXTENSIONS = (".csv", ".parquet")


def table_format(path: str | os.PathLike) -> str:
    """Return ``"csv"`` or ``"parquet"`` from a path's extension.

    Raises
    ------
    ValueError
        For any other extension, listing the allowed ones.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        raise ValueError(
            f"{os.fspath(path)!r}: unknown label file extension {suffix!r}; "
            f"allowed: {list(EXTENSIONS)}"
        )
    return suffix[1:]


def load_labels(source: pd.DataFrame | str | os.PathLike) -> pd.DataFrame:
    """Load and validate a label table (FEATURES L2).

    Parameters
    ----------
    source
        A DataFrame (copied, never modified), or a ``.csv`` / ``.parquet`` path.

    Returns
    -------
    pandas.DataFrame
        The normalised table (see :func:`validate_label_dataframe`).

    Raises
    ------
    ValueError
        For an unknown extension or any invalid content, naming the row and/or column.
    """
    if isinstance(source, pd.DataFrame):
        return validate_label_dataframe(source)
    if table_format(source) == "parquet":
        return validate_label_dataframe(pd.read_parquet(source))
    header = pd.read_csv(source, nrows=0).columns
    # Paths are read verbatim ("NA" or "001" is a file name); only empty cells and "nan"
    # count as missing in the other columns.
    df = pd.read_csv(
        source,
        dtype={FILEPATH: str},
        keep_default_na=False,
        na_values={c: ["", "nan", "NaN"] for c in header if c != FILEPATH},
    )
    return validate_label_dataframe(df)


def save_labels(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``df`` to ``path`` (CSV or Parquet by extension) atomically.

    The table goes to a temporary file in the same folder, which is flushed to disk and
    then renamed over ``path``, so ``path`` holds either the old or the new table, never
    a partial one.
    """
    fmt = table_format(path)
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if fmt == "csv":
                df.to_csv(handle, index=False)
            else:
                df.to_parquet(handle, index=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    log.debug("wrote %d rows to %s", len(df), path)


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        log.debug("fsync of folder %s not supported", folder)
    finally:
        os.close(fd)
