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


SSL_NOTEBOOKS = {  # notebook -> its run folder under the demo folder
    "pretrain_detcon.ipynb": "detcon",
    "pretrain_deepcluster.ipynb": "deepcluster",
    "pretrain_context_encoder.ipynb": "context_encoder",
    "pretrain_multitask.ipynb": "multitask",
}


def test_every_example_notebook_is_saved_without_outputs():
    for path in sorted(EXAMPLES.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert not [c for c in code if c.outputs or c.execution_count is not None], path.name


@pytest.mark.parametrize("name", sorted(SSL_NOTEBOOKS))
def test_a_trainer_notebook_runs_its_checks_and_writes_its_records(name, tmp_path, monkeypatch):
    """Each part-two trainer's notebook: its asserts (the method's own check, records, a probe
    above the random network) pass, and its run lands beside the demo images."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("matplotlib")
    nb = run(name, tmp_path, monkeypatch)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    printed = "".join(o.get("text", "") for o in outputs)
    assert "random init" in printed and "-> after training" in printed
    assert any(o.get("data", {}).get("image/png") for o in outputs)   # the method's figure
    written = {p.name for p in (tmp_path / "demo" / "runs" / SSL_NOTEBOOKS[name]).iterdir()}
    assert {"config.yaml", "fcn.keras"} <= written
    assert any(n.startswith("events.out.tfevents") for n in written)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]   # nothing beside the notebook
