"""Shared fixtures: small real image folders and label tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_pngs(folder: Path, n: int, size: int = 24, seed: int = 0) -> list[str]:
    """Write ``n`` random RGB PNGs into ``folder`` and return their paths."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"img_{i:04d}.png"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture
def image_paths(tmp_path: Path) -> list[str]:
    return write_pngs(tmp_path / "images", 40)
