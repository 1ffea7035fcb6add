"""The label table: creation, validation and class edits (FEATURES L1, L2, L3).

A label table is a pandas DataFrame with a RangeIndex and these columns, in order:

- ``filepath`` (str): unique, non-empty;
- ``exclude`` and ``validation`` (bool);
- one float64 column per class: NaN (not labeled), 0.0 (absent) or 1.0 (present).

Every column other than the three reserved ones is a class column.
"""

from __future__ import annotations

import math
import os
import unicodedata
from collections.abc import Hashable, Iterable, Sequence

import numpy as np
import pandas as pd

from patchwork_widget.options.checks import check_names, check_paths, shown

FILEPATH = "filepath"
FLAGS = ("exclude", "validation")
RESERVED = (FILEPATH, *FLAGS)

MAX_CLASS_NAME = 200  # characters; a class name is a column, a key and a label on screen
CLASS_NAME_RULE = (f"a class name is 1 to {MAX_CLASS_NAME} characters with no leading or "
                   "trailing whitespace and no control characters (NUL, newline, tab, ...)")

_TRUE_STRINGS = {"true", "1", "1.0"}
_FALSE_STRINGS = {"false", "0", "0.0"}


def validate_classes(classes: Iterable[Hashable], arg: str = "classes",
                     new: bool = True) -> list[str]:
    """Check class names and return them as a list; ``arg`` names the argument in errors.

    ``new`` names (the default: a table being made, a class being added, renamed or merged
    into) must also follow :data:`CLASS_NAME_RULE`; the columns of a table being opened, or
    class edits replayed from a journal, need not (they were accepted when made).

    Raises
    ------
    ValueError
        For a string or non-iterable, a name that is not a non-empty string, a reserved name
        or a duplicate, and a new name breaking the rule.
    """
    names = check_names(arg, classes, allow_empty=True, what="class name")
    for name in names:
        if name in RESERVED:
            raise ValueError(
                f"{arg}: class name {name!r} is reserved; the reserved columns are "
                f"{list(RESERVED)}"
            )
        if new:
            _check_class_name(name, arg)
    return names


def _check_class_name(name: str, arg: str) -> None:
    """Raise ValueError naming ``arg`` and the name unless it follows :data:`CLASS_NAME_RULE`."""
    if len(name) > MAX_CLASS_NAME:
        problem = f"{len(name)} characters"
    elif name != name.strip():
        problem = "leading or trailing whitespace"
    elif any(unicodedata.category(ch) == "Cc" for ch in name):
        problem = "a control character"
    else:
        return
    raise ValueError(f"{arg}: class name {shown(name)} has {problem}; {CLASS_NAME_RULE}")


def check_table(df: object, arg: str = "df") -> pd.DataFrame:
    """``df`` itself, or ValueError unless it is a pandas DataFrame."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{arg} must be a pandas DataFrame; got {type(df).__name__} "
                         f"{shown(df)}")
    return df


def class_columns(df: pd.DataFrame) -> list[str]:
    """Return the class columns of a label table: every column except the reserved ones."""
    check_table(df)
    return [c for c in df.columns if c not in RESERVED]


def one_label_per_row(labels: object) -> bool:
    """Whether a table is one-label-per-image: at least one row is labeled and every labeled
    row (one with any label) has exactly one "yes".

    Parameters
    ----------
    labels : array-like
        (N, C) class values: 1.0, 0.0 or NaN (not labeled), e.g. ``df[classes].to_numpy()``.

    Returns
    -------
    bool
        False for fewer than two classes (one class is a yes/no question, not a choice).
    """
    y = np.asarray(labels, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"labels must have shape (N, C); got {y.shape}")
    if y.shape[1] < 2:
        return False
    labeled = ~np.isnan(y).all(axis=1)
    return bool(labeled.any() and ((y[labeled] == 1).sum(axis=1) == 1).all())


def prep_label_dataframe(
    filepaths: Iterable[str | os.PathLike], classes: Sequence[str]
) -> pd.DataFrame:
    """Create an empty label table (FEATURES L1).

    Parameters
    ----------
    filepaths
        One path per image; must be unique and non-empty.
    classes
        Class names: non-empty strings, none equal to ``filepath``, ``exclude``,
        ``validation``, no duplicates.

    Returns
    -------
    pandas.DataFrame
        ``filepath``, ``exclude`` (False), ``validation`` (False), then one float64 column
        per class holding NaN, with a RangeIndex.
    """
    names = validate_classes(classes)
    paths = check_paths("filepaths", filepaths, allow_empty=True)
    n = len(paths)
    data: dict[str, object] = {
        FILEPATH: pd.Series(paths, dtype="str"),
        "exclude": np.zeros(n, dtype=bool),
        "validation": np.zeros(n, dtype=bool),
    }
    for name in names:
        data[name] = np.full(n, np.nan)
    df = pd.DataFrame(data, index=pd.RangeIndex(n))
    _check_filepaths(df[FILEPATH])
    return df


def validate_label_dataframe(df: pd.DataFrame) -> pd.DataFrame:
    """Validate a label table and return a normalised copy (FEATURES L2).

    The copy has a RangeIndex, ``filepath`` as str, flags as bool and classes as float64.
    Missing ``exclude`` / ``validation`` columns are added as False. The argument is
    never modified.

    Raises
    ------
    ValueError
        Naming the row and/or column and what is allowed, for: a missing ``filepath``
        column, an empty or missing path, duplicate paths, a repeated column name (such
        as a class named like a reserved column), a flag that is not boolean, a class
        column with a value other than NaN, 0 or 1.
    """
    return normalise_label_dataframe(check_table(df).copy())


def normalise_label_dataframe(df: pd.DataFrame) -> pd.DataFrame:
    """:func:`validate_label_dataframe` for a table the caller owns (one just read from a
    file): its columns that are already normal are kept, not copied, so a big table is
    not held twice. ``df`` may be changed; use the table returned.
    """
    check_table(df)
    columns = list(df.columns)
    if FILEPATH not in columns:
        raise ValueError(
            f"the label table has no {FILEPATH!r} column; columns are {columns}"
        )
    repeated = sorted({str(c) for c in columns if columns.count(c) > 1})
    if repeated:
        raise ValueError(
            f"column names {repeated} appear more than once; a class may not be named "
            f"like a reserved column {list(RESERVED)} or like another class"
        )
    classes = validate_classes(class_columns(df), new=False)
    df = df.reset_index(drop=True)
    df[FILEPATH] = _normalise_filepaths(df[FILEPATH])
    for flag in FLAGS:
        if flag not in df.columns:
            df[flag] = np.zeros(len(df), dtype=bool)
        elif not (pd.api.types.is_bool_dtype(df[flag].dtype) and not df[flag].hasnans):
            df[flag] = _normalise_flag(df[flag])
    for name in classes:
        values = _normalise_class(df[name])  # checks every value
        if df[name].dtype != np.float64:
            df[name] = values
    order = [FILEPATH, *FLAGS, *classes]
    if list(df.columns) != order:
        df = df[order]
    _check_filepaths(df[FILEPATH])
    return df


def check_same_filepaths(ours: pd.DataFrame, theirs: pd.DataFrame, owner: str) -> None:
    """Raise ValueError unless ``theirs`` (a ``df``) lists ``ours``' paths in the same order.

    ``owner`` names where ``ours`` comes from, e.g. ``"the journal labels.csv.journal.sqlite"``.
    """
    mine = ours[FILEPATH].to_numpy(dtype=object)
    other = theirs[FILEPATH].to_numpy(dtype=object)
    advice = "open without df to continue the journal, or move the journal away to start over"
    if len(mine) != len(other):
        raise ValueError(f"{owner} holds {len(mine)} rows but df has {len(other)}; {advice}")
    differ = np.flatnonzero(mine != other)
    if len(differ):
        row = int(differ[0])
        raise ValueError(
            f"row {row}: {owner} has filepath {mine[row]!r} but df has {other[row]!r}; {advice}"
        )


def _normalise_filepaths(col: pd.Series) -> pd.Series:
    if pd.api.types.is_string_dtype(col) and not col.isna().any():
        if not (col.str.len() == 0).any():
            return col.astype("str")
    paths = []
    for row, value in enumerate(col.to_numpy(dtype=object)):
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str) or not value:
            raise ValueError(
                f"row {row}, column {FILEPATH!r}: {value!r} is not allowed; "
                "every filepath must be a non-empty string"
            )
        paths.append(value)
    return pd.Series(paths, dtype="str")


def _check_filepaths(col: pd.Series) -> None:
    """Raise ValueError naming the first duplicate path and two of its rows, if any.

    A hash table's uniqueness test runs first (about half the time of marking duplicates
    on a million paths); only a table that fails it is searched for the rows to name."""
    if pd.Index(col).is_unique:
        return
    dup = col.duplicated(keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)
        path = col.iat[rows[0]]
        both = rows[col.to_numpy(dtype=object)[rows] == path][:2]
        raise ValueError(
            f"column {FILEPATH!r}: duplicate path {path!r} at rows {both[0]} and {both[1]}; "
            "every filepath must be unique"
        )


def _normalise_flag(col: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(col.dtype) and not col.hasnans:
        return col.to_numpy(dtype=bool)
    values = col.to_numpy(dtype=object)
    out = np.zeros(len(values), dtype=bool)
    for row, value in enumerate(values):
        parsed = _parse_flag(value)
        if parsed is None:
            raise ValueError(
                f"row {row}, column {col.name!r}: {value!r} is not a boolean flag; "
                "allowed: True/False, 0/1, or the strings 'True'/'False'"
            )
        out[row] = parsed
    return out


def _parse_flag(value: object) -> bool | None:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return bool(value) if value in (0, 1) else None
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE_STRINGS:
            return True
        if low in _FALSE_STRINGS:
            return False
    return None


def check_label_value(field: str, value: object) -> float:
    """Return one label as a float (NaN, 0.0 or 1.0); ValueError saying what is allowed."""
    if value is None:
        return math.nan
    if isinstance(value, (bool, np.bool_, int, float, np.integer, np.floating)):
        number = float(value)
        if math.isnan(number) or number in (0.0, 1.0):
            return number
    raise ValueError(
        f"class {field!r}: {value!r} is not allowed; a label is None or NaN (unlabeled), "
        "0 or False (absent), 1 or True (present)"
    )


def check_flag_value(field: str, value: object) -> bool:
    """Return one flag value as a bool; ValueError unless it is a bool or 0/1."""
    parsed = None if isinstance(value, str) else _parse_flag(value)
    if parsed is not None:
        return parsed
    raise ValueError(f"flag {field!r}: {value!r} is not allowed; use True/False or 0/1")


def _normalise_class(col: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(col.dtype):
        numeric = col.to_numpy(dtype=float, na_value=np.nan)
        unparsable = np.zeros(len(col), dtype=bool)
    else:
        values = col.astype(object)
        blank = values.isna() | values.map(
            lambda v: isinstance(v, str) and v.strip().lower() in ("", "nan")
        )
        parsed = pd.to_numeric(values.where(~blank), errors="coerce")
        numeric = parsed.to_numpy(dtype=float, na_value=np.nan)
        unparsable = np.isnan(numeric) & ~blank.to_numpy(dtype=bool)
    bad = unparsable | ~(np.isnan(numeric) | (numeric == 0) | (numeric == 1))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = col.iat[row]
        value = value.item() if isinstance(value, np.generic) else value
        raise ValueError(
            f"row {row}, column {col.name!r}: {value!r} is not a label; class "
            "columns (every column except filepath/exclude/validation) hold NaN, 0 or 1"
        )
    return numeric


# ---------------------------------------------------------------------------------------
# Class edits. Each has an in-place form (used by LabelStore, which must keep its
# DataFrame object) and a pure form that returns a new DataFrame.
# ---------------------------------------------------------------------------------------


def require_class(df: pd.DataFrame, name: str, arg: str = "name") -> None:
    """Raise ValueError unless ``name`` (argument ``arg``) is a class of ``df``."""
    if not isinstance(name, str) or name not in class_columns(df):
        raise ValueError(f"{arg}: unknown class {shown(name)}; classes are {class_columns(df)}")


def require_new_class_name(df: pd.DataFrame, name: str, replacing: Sequence[str] = (),
                           arg: str = "name", new: bool = True) -> None:
    """Raise ValueError unless ``name`` (argument ``arg``) is a valid class name free in
    ``df``. Names in ``replacing`` (columns about to disappear) count as free. ``new=False``
    (a replayed edit) skips :data:`CLASS_NAME_RULE`.
    """
    validate_classes([name], arg, new=new)
    if name in df.columns and name not in replacing:
        raise ValueError(f"{arg}: class {name!r} already exists; classes are "
                         f"{class_columns(df)}")


def merge_values(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Combine two label columns with a three-valued OR.

    1 if either is 1; 0 if both are 0; NaN otherwise (one is 0 and the other unknown,
    or both unknown), so a merge never invents a negative label.
    """
    out = np.full(a.shape, np.nan)
    out[(a == 0) & (b == 0)] = 0.0
    out[(a == 1) | (b == 1)] = 1.0
    return out


def check_merge(df: pd.DataFrame, a: str, b: str, into: str | None = None,
                new: bool = True) -> str:
    """Validate a merge of classes ``a`` and ``b``; return the merged column's name
    (``new=False``: a recorded merge, see :func:`require_new_class_name`)."""
    require_class(df, a, "a")
    require_class(df, b, "b")
    if a == b:
        raise ValueError(f"cannot merge class {a!r} with itself (a == b)")
    into = a if into is None else into
    require_new_class_name(df, into, replacing=[a, b], arg="into", new=new)
    return into


def add_class_inplace(df: pd.DataFrame, name: str, new: bool = True) -> None:
    """Append an all-NaN class column to ``df`` in place (``new=False``: a recorded edit,
    whose name is not held to :data:`CLASS_NAME_RULE`; so for the edits below)."""
    require_new_class_name(df, name, new=new)
    df[name] = np.full(len(df), np.nan)


def rename_class_inplace(df: pd.DataFrame, old: str, new: str, recorded: bool = False) -> None:
    """Rename class ``old`` to ``new`` in place, keeping its position."""
    require_class(df, old, "old")
    require_new_class_name(df, new, replacing=[old], arg="new", new=not recorded)
    df.columns = [new if c == old else c for c in df.columns]


def remove_class_inplace(df: pd.DataFrame, name: str) -> None:
    """Drop class ``name`` in place."""
    require_class(df, name)
    del df[name]


def merge_classes_inplace(df: pd.DataFrame, a: str, b: str, into: str | None = None,
                          new: bool = True) -> str:
    """Merge classes ``a`` and ``b`` into one column in place; return its name.

    ``into`` defaults to ``a``. The merged column takes the position of ``a`` (or of
    ``into`` when it is ``b``); values follow :func:`merge_values`.
    """
    into = check_merge(df, a, b, into, new=new)
    merged = merge_values(df[a].to_numpy(), df[b].to_numpy())
    if into in (a, b):
        df[into] = merged
        del df[b if into == a else a]
    else:
        df.insert(df.columns.get_loc(a), into, merged)
        del df[a], df[b]
    return into


def add_class(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Return a copy of ``df`` with a new all-NaN class ``name`` (FEATURES L3)."""
    out = check_table(df).copy()
    add_class_inplace(out, name)
    return out


def rename_class(df: pd.DataFrame, old: str, new: str) -> pd.DataFrame:
    """Return a copy of ``df`` with class ``old`` renamed to ``new`` (FEATURES L3)."""
    out = check_table(df).copy()
    rename_class_inplace(out, old, new)
    return out


def remove_class(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Return a copy of ``df`` without class ``name`` (FEATURES L3)."""
    out = check_table(df).copy()
    remove_class_inplace(out, name)
    return out


def merge_classes(df: pd.DataFrame, a: str, b: str, into: str | None = None) -> pd.DataFrame:
    """Return a copy of ``df`` with classes ``a`` and ``b`` merged (FEATURES L3).

    See :func:`merge_classes_inplace` for naming and :func:`merge_values` for values.
    """
    out = check_table(df).copy()
    merge_classes_inplace(out, a, b, into)
    return out
