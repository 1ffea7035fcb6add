"""Reading and atomically writing label tables as CSV or Parquet (FEATURES L2, L4)."""

from __future__ import annotations

import logging
import os
import re
import secrets
from pathlib import Path

import pandas as pd

from patchwork_widget.options.checks import check_path, shown

from .schema import FILEPATH, check_table, normalise_label_dataframe, validate_label_dataframe

log = logging.getLogger(__name__)

EXTENSIONS = (".csv", ".parquet")


def table_format(path: str | os.PathLike, arg: str = "path") -> str:
    """Return ``"csv"`` or ``"parquet"`` from a path's extension (``arg``: the argument's
    name, for messages).

    Raises
    ------
    ValueError
        For any other extension, listing the allowed ones.
    """
    suffix = Path(check_path(arg, path)).suffix.lower()
    if suffix not in EXTENSIONS:
        raise ValueError(
            f"{arg}={os.fspath(path)!r}: unknown label file extension {suffix!r}; "
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
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be a label table (DataFrame) or a .csv/.parquet path; "
                        f"got {type(source).__name__} {shown(source)}")
    if table_format(source, "source") == "parquet":
        return normalise_label_dataframe(pd.read_parquet(source))
    header = pd.read_csv(source, nrows=0).columns
    # Paths are read verbatim ("NA" or "001" is a file name); only empty cells and "nan"
    # count as missing in the other columns.
    df = pd.read_csv(
        source,
        keep_default_na=False,
        na_values={c: ["", "nan", "NaN"] for c in header if c != FILEPATH},
    )
    if FILEPATH in df.columns and not isinstance(df[FILEPATH].dtype, pd.StringDtype):
        # parsed as numbers or flags ("001", "True"): read that column again as text
        # (asking for text up front makes pandas build every path as a Python string
        # first, which triples the time of the whole read)
        df[FILEPATH] = pd.read_csv(source, usecols=[FILEPATH], dtype={FILEPATH: str},
                                   keep_default_na=False)[FILEPATH]
    return normalise_label_dataframe(from_csv_cells(df))


# OWASP's CSV injection rule: a cell starting with one of these is a formula to a spreadsheet.
FORMULA_STARTS = "=+-@\t\r"
_STARTS = re.escape(FORMULA_STARTS)
_NEEDS_QUOTE = re.compile(f"[{_STARTS}]|'[{_STARTS}']")  # what writing quotes
_QUOTED = re.compile(f"'[{_STARTS}']")  # what reading unquotes


def _matching(values: pd.Series, pattern: re.Pattern) -> pd.Series | None:
    """Which text cells of ``values`` start with ``pattern`` (None when none could)."""
    if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "mixed", "mixed-integer"):
        return None
    found = values.str.match(pattern, na=False).astype(bool)
    return found if found.any() else None


def _text_columns(df: pd.DataFrame) -> list:
    return [name for name, kind in df.dtypes.items()
            if pd.api.types.is_object_dtype(kind) or pd.api.types.is_string_dtype(kind)]


def to_csv_cells(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` as it is written to CSV: every header and text cell that a spreadsheet would
    run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or CR) gets a leading
    ``'``, as does one that already starts with ``'`` followed by one of those or by
    ``'``, so that :func:`from_csv_cells` gives back exactly the same text. Returns
    ``df`` itself when nothing needs quoting."""
    columns = [f"'{c}" if isinstance(c, str) and _NEEDS_QUOTE.match(c) else c for c in df.columns]
    quoted = {}
    for name in _text_columns(df):
        needs = _matching(df[name], _NEEDS_QUOTE)
        if needs is not None:
            quoted[name] = df[name].where(~needs, "'" + df[name].astype(str))
    if not quoted and columns == list(df.columns):
        return df
    out = df.assign(**quoted) if quoted else df.copy()
    out.columns = columns
    return out


def from_csv_cells(df: pd.DataFrame) -> pd.DataFrame:
    """Undo :func:`to_csv_cells` on a table read from CSV (in place; returns ``df``)."""
    df.columns = [c[1:] if isinstance(c, str) and _QUOTED.match(c) else c for c in df.columns]
    for name in _text_columns(df):
        quoted = _matching(df[name], _QUOTED)
        if quoted is not None:
            df[name] = df[name].where(~quoted, df[name].astype(str).str[1:])
    return df


def write_csv(df: pd.DataFrame, handle) -> None:
    """Write ``df`` as CSV to an open file, spreadsheet-safe (see :func:`to_csv_cells`)."""
    to_csv_cells(df).to_csv(handle, index=False)


def save_labels(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``df`` to ``path`` (CSV or Parquet by extension) atomically.

    The table goes to a temporary file ``.<name>.<random>.tmp`` in the same folder, which
    is flushed to disk and then renamed over ``path``, so ``path`` holds either the old or
    the new table, never a partial one. A new file gets the permissions the user's umask
    allows; a replaced file keeps its permissions.
    """
    check_table(df)
    fmt = table_format(path)
    path = Path(path)
    tmp = path.with_name(f"{_temp_prefix(path)}{secrets.token_hex(6)}{_TEMP_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
    try:
        with os.fdopen(fd, "wb") as handle:
            if fmt == "csv":
                write_csv(df, handle)
            else:
                df.to_parquet(handle, index=False)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        except FileNotFoundError:
            pass  # a new file: the umask decided
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    log.debug("wrote %d rows to %s", len(df), path)


_TEMP_SUFFIX = ".tmp"


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Delete temporary files a killed :func:`save_labels` of ``path`` left; return them.

    Call it only while no export of ``path`` can be running (the store does so on open,
    holding the journal's writer lock).
    """
    path = Path(path)
    prefix = _temp_prefix(path)
    try:
        with os.scandir(path.parent) as entries:  # fast in a folder of many images
            names = [e.name for e in entries if e.name.startswith(prefix)]
    except FileNotFoundError:
        return []
    removed = [path.parent / name for name in names if name.endswith(_TEMP_SUFFIX)]
    for entry in removed:
        entry.unlink(missing_ok=True)
    if removed:
        log.info("removed %d unfinished export file(s) of %s", len(removed), path)
    return removed


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
