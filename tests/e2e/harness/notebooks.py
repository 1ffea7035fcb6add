"""Notebooks on disk for the e2e tests."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Sequence, Union

#: A cell for :func:`write_notebook`: a string is a code cell; ``("markdown", text)`` or
#: ``("code", text)`` names the type explicitly.
CellSpec = Union[str, tuple[Literal["code", "markdown", "raw"], str]]


def write_notebook(path: Path | str, cells: Sequence[CellSpec]) -> Path:
    """Write an nbformat-4 notebook with the given cells and a ``python3`` kernelspec.

    Parameters
    ----------
    path
        Destination ``.ipynb`` file; parent folders are created.
    cells
        Cell sources in order.  A plain string is a code cell; a ``(cell_type, source)`` pair
        makes a ``markdown`` / ``raw`` / ``code`` cell.

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path`.
    """
    import nbformat
    from nbformat import v4

    makers = {"code": v4.new_code_cell, "markdown": v4.new_markdown_cell, "raw": v4.new_raw_cell}
    nb = v4.new_notebook()
    for spec in cells:
        cell_type, source = ("code", spec) if isinstance(spec, str) else spec
        if cell_type not in makers:
            raise ValueError(f"unknown cell type {cell_type!r}; expected one of {sorted(makers)}")
        nb.cells.append(makers[cell_type](source))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.validate(nb)
    nbformat.write(nb, str(path))
    return path
