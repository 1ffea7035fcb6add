"""The package surface: lazy exports and no TensorFlow on import."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

import patchwork_widget


def modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sys.modules))"],
        check=True, capture_output=True, text=True,
    ).stdout
    return set(out.split())


def test_import_loads_neither_tensorflow_nor_pandas():
    loaded = modules_after("import patchwork_widget")
    assert "tensorflow" not in loaded and "keras" not in loaded and "pandas" not in loaded


def test_the_widget_and_label_store_need_no_tensorflow():
    loaded = modules_after("import patchwork_widget as p; p.PatchworkWidget; p.LabelStore; p.read_image")
    assert "tensorflow" not in loaded and "keras" not in loaded


def test_every_export_resolves():
    has_tf = importlib.util.find_spec("tensorflow") is not None
    for name in patchwork_widget.__all__:
        if name == "distill" and not has_tf:
            continue  # needs TensorFlow, which the labeling core does not
        assert getattr(patchwork_widget, name) is not None
    assert patchwork_widget.GUI is patchwork_widget.PatchworkWidget


def test_unknown_attributes_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        patchwork_widget.nope  # noqa: B018
