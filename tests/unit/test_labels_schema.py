"""FEATURES L1 (prep), L2 (load and validate), L3 (class edits as pure functions)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from patchwork_widget.labels import (
    add_class,
    load_labels,
    merge_classes,
    merge_values,
    prep_label_dataframe,
    remove_class,
    rename_class,
    validate_label_dataframe,
)

nan = np.nan


def _table(**classes: list) -> pd.DataFrame:
    n = len(next(iter(classes.values())))
    df = pd.DataFrame({"filepath": [f"im{i}.png" for i in range(n)]})
    df["exclude"] = False
    df["validation"] = False
    for name, values in classes.items():
        df[name] = np.array(values, dtype=float)
    return df


# -- L1 -----------------------------------------------------------------------------------


def test_prep_label_dataframe_columns_types_and_values() -> None:
    df = prep_label_dataframe(["a.png", Path("b/c.tif")], ["cat", "dog"])
    assert list(df.columns) == ["filepath", "exclude", "validation", "cat", "dog"]
    assert isinstance(df.index, pd.RangeIndex) and list(df.index) == [0, 1]
    assert df["filepath"].tolist() == ["a.png", "b/c.tif"]
    assert pd.api.types.is_string_dtype(df["filepath"])
    assert df["exclude"].dtype == bool and not df["exclude"].any()
    assert df["validation"].dtype == bool and not df["validation"].any()
    for name in ("cat", "dog"):
        assert df[name].dtype == np.float64 and df[name].isna().all()


def test_prep_label_dataframe_no_rows() -> None:
    df = prep_label_dataframe([], ["cat"])
    assert list(df.columns) == ["filepath", "exclude", "validation", "cat"]
    assert len(df) == 0 and df["cat"].dtype == np.float64


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        (["cat", "cat"], "duplicate class name 'cat'"),
        (["filepath"], "class name 'filepath' is reserved"),
        (["exclude"], "class name 'exclude' is reserved"),
        (["dog", "validation"], "class name 'validation' is reserved"),
        (["cat", ""], "non-empty strings; got ''"),
        ([3], "non-empty strings; got 3"),
        ([None], "non-empty strings; got None"),
        ("cat", "a list of names, not the string 'cat'"),
    ],
)
def test_prep_label_dataframe_rejects_bad_classes(classes, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        prep_label_dataframe(["a.png"], classes)


def test_prep_label_dataframe_rejects_duplicate_paths() -> None:
    with pytest.raises(ValueError, match=re.escape("duplicate path 'b' at rows 1 and 3")):
        prep_label_dataframe(["a", "b", "c", "b"], ["cat"])


# -- L2: every error names the row and/or column ------------------------------------------


def _missing_filepath() -> pd.DataFrame:
    return _table(cat=[1, 0]).drop(columns="filepath")


def _set(df: pd.DataFrame, row: int, column: str, value: object) -> pd.DataFrame:
    df[column] = df[column].astype(object)
    df.at[row, column] = value
    return df


def _reserved_class_name() -> pd.DataFrame:
    df = _table(cat=[1, 0])
    return pd.concat([df, pd.DataFrame({"exclude": [0.0, 1.0]})], axis=1)


def _duplicate_class_columns() -> pd.DataFrame:
    df = _table(cat=[1, 0], dog=[0, 0])
    df.columns = ["filepath", "exclude", "validation", "cat", "cat"]
    return df


def _non_string_column_name() -> pd.DataFrame:
    df = _table(cat=[1, 0])
    df[7] = 0.0
    return df


L2_ERRORS = {
    "missing filepath column": (_missing_filepath, ["no 'filepath' column"]),
    "empty filepath": (lambda: _set(_table(cat=[1, 0, 1]), 2, "filepath", ""), ["row 2", "'filepath'", "non-empty string"]),
    "NaN filepath": (lambda: _set(_table(cat=[1, 0, 1]), 1, "filepath", nan), ["row 1", "'filepath'"]),
    "None filepath": (lambda: _set(_table(cat=[1, 0, 1]), 0, "filepath", None), ["row 0", "'filepath'"]),
    "number as filepath": (lambda: _set(_table(cat=[1, 0, 1]), 2, "filepath", 5), ["row 2", "'filepath'"]),
    "duplicate paths": (lambda: _set(_table(cat=[1, 0, 1, 0]), 3, "filepath", "im1.png"), ["duplicate path 'im1.png' at rows 1 and 3"]),
    "label 2": (lambda: _table(cat=[1, 0, 2]), ["row 2", "column 'cat'", "2.0", "NaN, 0 or 1"]),
    "label -1": (lambda: _table(cat=[-1, 0], dog=[0, 0]), ["row 0", "column 'cat'", "-1.0"]),
    "label 0.5": (lambda: _table(cat=[0, 0], dog=[0, 0.5]), ["row 1", "column 'dog'", "0.5"]),
    "label inf": (lambda: _table(cat=[0, np.inf]), ["row 1", "column 'cat'", "inf"]),
    "label text": (lambda: _set(_table(cat=[1, 0, 1]), 1, "cat", "yes"), ["row 1", "column 'cat'", "'yes'"]),
    "extra text column": (lambda: _table(cat=[1, 0]).assign(notes=["ok", "blurry"]), ["row 0", "column 'notes'", "'ok'", "every column except filepath/exclude/validation"]),
    "class named like a reserved column": (_reserved_class_name, ["['exclude']", "more than once", "reserved column"]),
    "duplicate class columns": (_duplicate_class_columns, ["['cat']", "more than once"]),
    "non-string class name": (_non_string_column_name, ["non-empty strings; got 7"]),
    "flag 2": (lambda: _set(_table(cat=[1, 0]), 1, "exclude", 2), ["row 1", "column 'exclude'", "2", "True/False"]),
    "flag text": (lambda: _set(_table(cat=[1, 0]), 0, "validation", "maybe"), ["row 0", "column 'validation'", "'maybe'"]),
    "flag NaN": (lambda: _set(_table(cat=[1, 0]), 1, "validation", nan), ["row 1", "column 'validation'", "nan"]),
    "flag None": (lambda: _set(_table(cat=[1, 0]), 0, "exclude", None), ["row 0", "column 'exclude'", "None"]),
}


@pytest.mark.parametrize("case", list(L2_ERRORS))
def test_load_labels_error_names_row_and_column(case: str) -> None:
    build, fragments = L2_ERRORS[case]
    df = build()
    before = df.copy()
    with pytest.raises(ValueError) as err:
        load_labels(df)
    for fragment in fragments:
        assert fragment in str(err.value), (fragment, str(err.value))
    pd.testing.assert_frame_equal(df, before)  # the caller's frame is untouched


CSV_ERRORS = {
    "label 2": ("filepath,exclude,validation,cat\na,False,False,1\nb,False,False,2\n", ["row 1", "'cat'", "2 is not a label"]),
    "flag text": ("filepath,exclude,validation,cat\na,yes,False,1\n", ["row 0", "'exclude'", "'yes'"]),
    "empty path": ("filepath,exclude,validation,cat\na,False,False,1\n,False,False,0\n", ["row 1", "'filepath'"]),
    "duplicate paths": ("filepath,cat\na,1\nb,0\na,0\n", ["duplicate path 'a' at rows 0 and 2"]),
    "no filepath": ("path,cat\na,1\n", ["no 'filepath' column"]),
    "text column": ("filepath,cat,notes\na,1,\nb,0,blurry\n", ["row 1", "'notes'", "'blurry'"]),
}


@pytest.mark.parametrize("case", list(CSV_ERRORS))
def test_load_labels_csv_errors(tmp_path: Path, case: str) -> None:
    text, fragments = CSV_ERRORS[case]
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        load_labels(path)
    for fragment in fragments:
        assert fragment in str(err.value), (fragment, str(err.value))


@pytest.mark.parametrize("name", ["labels.xlsx", "labels", "labels.csv.gz", "labels.json"])
def test_load_labels_rejects_unknown_extension(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match=re.escape("allowed: ['.csv', '.parquet']")):
        load_labels(tmp_path / name)


def test_load_labels_normalises_without_mutating() -> None:
    df = pd.DataFrame(
        {
            "filepath": ["x.png", "y.png", "z.png"],
            "exclude": [0, 1, 0],
            "validation": ["True", "False", "false"],
            "cat": [1, 0, 1],
            "dog": [True, False, True],
            "bird": [None, 1.0, "0"],
        },
        index=[10, 5, 7],
    )
    before = df.copy()
    out = load_labels(df)
    pd.testing.assert_frame_equal(df, before)
    assert out is not df
    expected = pd.DataFrame(
        {
            "filepath": pd.Series(["x.png", "y.png", "z.png"], dtype="str"),
            "exclude": [False, True, False],
            "validation": [True, False, False],
            "cat": [1.0, 0.0, 1.0],
            "dog": [1.0, 0.0, 1.0],
            "bird": [nan, 1.0, 0.0],
        }
    )
    pd.testing.assert_frame_equal(out, expected)


def test_load_labels_adds_missing_flags() -> None:
    out = load_labels(pd.DataFrame({"filepath": ["a", "b"], "cat": [1.0, nan]}))
    assert list(out.columns) == ["filepath", "exclude", "validation", "cat"]
    assert out["exclude"].tolist() == [False, False]
    assert out["validation"].tolist() == [False, False]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip_through_files(tmp_path: Path, suffix: str) -> None:
    df = prep_label_dataframe(["NA", "001", "a b,c.png", 'q"uote.png', "null"], ["cat", "dog"])
    df.loc[[0, 2], "cat"] = [1.0, 0.0]
    df.loc[4, "dog"] = 1.0
    df.loc[1, "exclude"] = True
    df.loc[3, "validation"] = True
    path = tmp_path / f"labels{suffix}"
    if suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    pd.testing.assert_frame_equal(load_labels(path), df)


@pytest.mark.parametrize("paths", [["001", "002", "10"], ["True", "False"], ["1.0", "1e0"],
                                   ["NA", "nan"]])
def test_csv_paths_that_read_as_numbers_or_flags_stay_verbatim(tmp_path: Path,
                                                               paths: list[str]) -> None:
    df = prep_label_dataframe(paths, ["cat"])
    df.loc[0, "cat"] = 1.0
    path = tmp_path / "labels.csv"
    df.to_csv(path, index=False)
    pd.testing.assert_frame_equal(load_labels(path), df)


def test_load_labels_class_columns_are_all_other_columns() -> None:
    df = pd.DataFrame({"zeta": [1.0], "filepath": ["a"], "alpha": [0.0]})
    out = load_labels(df)
    assert list(out.columns) == ["filepath", "exclude", "validation", "zeta", "alpha"]


# -- L3 as pure functions: compared with frames built by hand ---------------------------------


@pytest.fixture
def labelled() -> pd.DataFrame:
    df = _table(
        cat=[1, 0, nan, 1, 0, nan],
        dog=[nan, 0, 1, 1, nan, 0],
        bird=[0, nan, nan, 1, 1, 0],
    )
    df.loc[2, "exclude"] = True
    df.loc[4, "validation"] = True
    return df


def _expected(base: pd.DataFrame, **classes: list) -> pd.DataFrame:
    out = base[["filepath", "exclude", "validation"]].copy()
    for name, values in classes.items():
        out[name] = np.array(values, dtype=float)
    return out


def test_add_class(labelled: pd.DataFrame) -> None:
    before = labelled.copy()
    out = add_class(labelled, "fish")
    expected = _expected(
        labelled,
        cat=[1, 0, nan, 1, 0, nan],
        dog=[nan, 0, 1, 1, nan, 0],
        bird=[0, nan, nan, 1, 1, 0],
        fish=[nan] * 6,
    )
    pd.testing.assert_frame_equal(out, expected)
    pd.testing.assert_frame_equal(labelled, before)


def test_rename_class_keeps_position_and_rows(labelled: pd.DataFrame) -> None:
    out = rename_class(labelled, "dog", "hound")
    expected = _expected(
        labelled,
        cat=[1, 0, nan, 1, 0, nan],
        hound=[nan, 0, 1, 1, nan, 0],
        bird=[0, nan, nan, 1, 1, 0],
    )
    pd.testing.assert_frame_equal(out, expected)


def test_remove_class(labelled: pd.DataFrame) -> None:
    out = remove_class(labelled, "cat")
    expected = _expected(labelled, dog=[nan, 0, 1, 1, nan, 0], bird=[0, nan, nan, 1, 1, 0])
    pd.testing.assert_frame_equal(out, expected)


def test_merge_into_first_class(labelled: pd.DataFrame) -> None:
    out = merge_classes(labelled, "cat", "dog")
    #      cat: 1    0  nan  1    0    nan
    #      dog: nan  0  1    1    nan  0
    expected = _expected(labelled, cat=[1, 0, 1, 1, nan, nan], bird=[0, nan, nan, 1, 1, 0])
    pd.testing.assert_frame_equal(out, expected)


def test_merge_into_second_class(labelled: pd.DataFrame) -> None:
    out = merge_classes(labelled, "cat", "bird", into="bird")
    #      cat:  1  0    nan  1  0  nan
    #      bird: 0  nan  nan  1  1  0
    expected = _expected(labelled, dog=[nan, 0, 1, 1, nan, 0], bird=[1, nan, nan, 1, 1, nan])
    pd.testing.assert_frame_equal(out, expected)


def test_merge_into_new_name_takes_first_position(labelled: pd.DataFrame) -> None:
    out = merge_classes(labelled, "dog", "bird", into="pet")
    #      dog:  nan  0    1    1  nan  0
    #      bird: 0    nan  nan  1  1    0
    expected = _expected(labelled, cat=[1, 0, nan, 1, 0, nan], pet=[nan, nan, 1, 1, 1, 0])
    pd.testing.assert_frame_equal(out, expected)


def test_merge_values_truth_table() -> None:
    a = np.array([1, 1, 1, 0, 0, 0, nan, nan, nan])
    b = np.array([1, 0, nan, 1, 0, nan, 1, 0, nan])
    np.testing.assert_array_equal(merge_values(a, b), [1, 1, 1, 1, 0, nan, 1, nan, nan])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda df: add_class(df, "cat"), "class 'cat' already exists"),
        (lambda df: add_class(df, "exclude"), "'exclude' is reserved"),
        (lambda df: add_class(df, ""), "non-empty strings"),
        (lambda df: rename_class(df, "cow", "ox"), "unknown class 'cow'"),
        (lambda df: rename_class(df, "cat", "dog"), "class 'dog' already exists"),
        (lambda df: rename_class(df, "cat", "filepath"), "'filepath' is reserved"),
        (lambda df: remove_class(df, "exclude"), "unknown class 'exclude'"),
        (lambda df: merge_classes(df, "cat", "cat"), "cannot merge class 'cat' with itself"),
        (lambda df: merge_classes(df, "cat", "cow"), "unknown class 'cow'"),
        (lambda df: merge_classes(df, "cat", "dog", into="bird"), "class 'bird' already exists"),
    ],
)
def test_class_edit_errors(labelled: pd.DataFrame, edit, message: str) -> None:
    before = labelled.copy()
    with pytest.raises(ValueError, match=re.escape(message)):
        edit(labelled)
    pd.testing.assert_frame_equal(labelled, before)


# ---------------------------------------------------------------------------------------------
# The class name rule (issue 24.8): new names have no surrounding whitespace, no control
# characters and at most 200 characters; tables and journals made before the rule still open.

@pytest.mark.parametrize("bad, problem", [
    (" cat", "leading or trailing whitespace"), ("cat\n", "leading or trailing whitespace"),
    ("c\x00t", "a control character"), ("two\nlines", "a control character"),
    ("x" * 5000, "5000 characters"),
])
def test_new_class_names_follow_the_rule(bad, problem):
    df = prep_label_dataframe(["a.png"], ["cat"])
    for make in (lambda: prep_label_dataframe(["a.png"], [bad]), lambda: add_class(df, bad),
                 lambda: rename_class(df, "cat", bad)):
        with pytest.raises(ValueError, match=re.escape(problem) + ".*a class name is 1 to 200"):
            make()
    assert list(add_class(df, "big cat ü 🐈").columns)[-1] == "big cat ü 🐈"


def test_a_journal_with_a_name_made_before_the_rule_still_opens(tmp_path):
    from patchwork_widget.labels import LabelStore
    from patchwork_widget.labels.replay import apply_class_edit

    old = pd.DataFrame({"filepath": ["a.png"], " cat": [1.0]})  # a table from before the rule
    assert list(validate_label_dataframe(old).columns)[-1] == " cat"
    df = prep_label_dataframe(["a.png"], ["cat"])
    apply_class_edit(df, "rename_class", {"old": "cat", "new": "cat "})  # a recorded edit
    assert list(df.columns)[-1] == "cat "
    with LabelStore.open(tmp_path / "l.csv", df=old) as store:
        with pytest.raises(ValueError, match="leading or trailing whitespace"):
            store.add_class("dog\t")
        assert store.classes == [" cat"]


FORMULA_NAMES = ["=cmd|' /C calc'!A0", "+1", "-2", "@SUM(A1)", "\tx", "'=quoted", "''", "'", "'plain", "ok"]


def test_csv_export_neutralises_formulas_and_reads_back_the_true_names(tmp_path):
    """OWASP's CSV-injection rule on export; the store and Parquet keep the true values, and
    a CSV read back as a project gives exactly the names that were written."""
    import csv

    from patchwork_widget.labels import LabelStore

    classes = ["=HYPERLINK(\"http://x\")", "+cat", "-dog", "@bird", "'=fish", "plain"]
    paths = [f"{name}.png" for name in FORMULA_NAMES]
    df = prep_label_dataframe(paths, classes)
    df.loc[0, classes[0]] = 1.0
    out = tmp_path / "labels.csv"
    with LabelStore.open(out, df=df) as store:
        store.annotate(1, {"+cat": 1})
        assert store.df.columns.tolist()[3:] == classes  # the store keeps the true names
        store.export(tmp_path / "labels.parquet")
    with open(out, newline="") as f:
        header, *rows = list(csv.reader(f))
    for cell in header + [row[0] for row in rows]:  # nothing a spreadsheet would run
        assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r"), cell
    assert header[3:] == ["'=HYPERLINK(\"http://x\")", "'+cat", "'-dog", "'@bird", "''=fish", "plain"]
    assert [row[0] for row in rows][:4] == ["'=cmd|' /C calc'!A0.png", "'+1.png", "'-2.png", "'@SUM(A1).png"]
    back = load_labels(out)
    assert back.columns.tolist()[3:] == classes and back["filepath"].tolist() == paths
    pd.testing.assert_frame_equal(back, load_labels(tmp_path / "labels.parquet"))
    assert pd.read_parquet(tmp_path / "labels.parquet").columns.tolist()[3:] == classes
    (out.with_name(out.name + ".journal.sqlite")).unlink()  # reopen from the CSV alone
    with LabelStore.open(out) as store:
        assert store.df.columns.tolist()[3:] == classes and store.df["filepath"].tolist() == paths
        assert store.df.at[1, "+cat"] == 1.0


# -- the automatic validation hold-out (online rounds without validation rows) -----------------


def test_holdout_picks_a_stable_share_of_the_labeled_training_rows() -> None:
    from patchwork_widget.labels.groups import holdout_mask

    df = prep_label_dataframe([f"f{i}" for i in range(2000)], ["cat"])
    df.loc[:999, "cat"] = 1.0
    df.loc[10:19, "exclude"] = True
    mask = holdout_mask(df, ["cat"], 0.2)
    assert not mask[1000:].any() and not mask[10:20].any()  # labeled training rows only
    assert 0.17 < mask[:1000].mean() < 0.23
    df.loc[1000:1499, "cat"] = 0.0  # more labels: the rows held out before stay held out
    later = holdout_mask(df, ["cat"], 0.2)
    assert (later[:1000] == mask[:1000]).all() and later[1000:1500].any()


def test_holdout_picks_nothing_when_the_user_chose_validation_rows_or_too_few() -> None:
    from patchwork_widget.labels.groups import holdout_mask

    df = prep_label_dataframe([f"f{i}" for i in range(100)], ["cat"])
    df.loc[:49, "cat"] = 1.0
    df.loc[60, "validation"] = True  # an unlabeled validation row: not a choice yet
    assert holdout_mask(df, ["cat"], 0.2).any()
    df.loc[60, "cat"] = 0.0
    assert not holdout_mask(df, ["cat"], 0.2).any()
    assert not holdout_mask(df.assign(validation=False), ["cat"], 0.0).any()
    one = prep_label_dataframe(["a", "b"], ["cat"])
    one.loc[0, "cat"] = 1.0
    assert not holdout_mask(one, ["cat"], 0.9).any()  # row 0 is picked by any share: not all
    with pytest.raises(ValueError, match=r"share must be in \[0, 1\); got 1.0"):
        holdout_mask(df, ["cat"], 1.0)
