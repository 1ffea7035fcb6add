"""The example notebooks run from top to bottom, as a user would run them (headless)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(name: str, tmp_path: Path, monkeypatch) -> nbformat.NotebookNode:
    monkeypatch.setenv("PATCHWORK_DEMO_DIR", str(tmp_path / "demo"))
    nb = nbformat.read(EXAMPLES / name, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


def test_the_quickstart_runs_and_writes_nothing_beside_the_notebook(tmp_path, monkeypatch):
    nb = run("quickstart.ipynb", tmp_path, monkeypatch)
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "0 images labeled" in printed
    assert (tmp_path / "demo" / "demo_labels.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]  # the notebook's folder stays clean


def test_the_strategy_comparison_runs(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    nb = run("compare_strategies.ipynb", tmp_path, monkeypatch)
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
