"""The label table, its durable store, counts and time accounting (FEATURES L1-L6)."""

from .agreement import disagreements, krippendorff_alpha, pairwise_kappa
from .counts import COLUMNS as COUNT_COLUMNS
from .counts import label_counts
from .autosave import ExportState
from .errors import (
    JournalAccessError,
    JournalDamagedError,
    JournalError,
    JournalFullError,
    ReadOnlyStoreError,
    StoreClosedError,
    StoreTakenOverError,
)
from .files import load_labels, save_labels
from .journal import journal_path
from .lock import JournalLockedError
from .schema import (
    RESERVED,
    add_class,
    class_columns,
    merge_classes,
    merge_values,
    one_label_per_row,
    prep_label_dataframe,
    remove_class,
    rename_class,
    validate_label_dataframe,
)
from .store import LabelStore
from .timing import (
    cells_per_minute,
    images_per_minute,
    labels_per_minute,
    time_per_annotator,
    time_per_class,
    time_per_image,
    time_per_session,
)

__all__ = [
    "COUNT_COLUMNS",
    "RESERVED",
    "ExportState",
    "JournalAccessError",
    "JournalDamagedError",
    "JournalError",
    "JournalFullError",
    "JournalLockedError",
    "LabelStore",
    "ReadOnlyStoreError",
    "StoreClosedError",
    "StoreTakenOverError",
    "add_class",
    "cells_per_minute",
    "class_columns",
    "disagreements",
    "images_per_minute",
    "journal_path",
    "krippendorff_alpha",
    "label_counts",
    "labels_per_minute",
    "load_labels",
    "merge_classes",
    "one_label_per_row",
    "merge_values",
    "pairwise_kappa",
    "prep_label_dataframe",
    "remove_class",
    "rename_class",
    "save_labels",
    "time_per_annotator",
    "time_per_class",
    "time_per_image",
    "time_per_session",
    "validate_label_dataframe",
]
