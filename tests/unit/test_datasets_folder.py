"""B7: a label table from a folder of images: recursive, by extension, with size limits."""

import logging

import numpy as np
import pytest
from PIL import Image

from patchwork_widget.datasets import load_folder
from patchwork_widget.labels import validate_label_dataframe


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    files = ["b.png", "a.JPG", "sub/c.png", "sub/deeper/d.tif", ".hidden.png",
             ".cache/e.png", "notes.txt"]
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".txt"):
            path.write_text("not an image")
        else:
            fmt = {".png": "PNG", ".jpg": "JPEG", ".tif": "TIFF"}[path.suffix.lower()]
            Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(path, format=fmt)
    big = root / "sub" / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
                    ).save(big)
    return root


def names(df, root):
    return [p[len(str(root)) + 1:] for p in df["filepath"]]


def test_every_image_below_the_folder_in_path_order(folder):
    df = load_folder(folder, ["cat", "dog"])
    validate_label_dataframe(df)
    assert names(df, folder) == ["a.JPG", "b.png", "sub/big.png", "sub/c.png",
                                 "sub/deeper/d.tif"]
    assert list(df.columns) == ["filepath", "exclude", "validation", "cat", "dog"]
    assert df[["cat", "dog"]].isna().all().all()
    # a file:// URL is the same local folder, listed as local paths
    assert load_folder(f"file://{folder}", ["cat", "dog"]).equals(df)


def test_extensions_recursion_and_size_limits(folder, caplog):
    assert names(load_folder(folder, extensions=["png"]), folder) == [
        "b.png", "sub/big.png", "sub/c.png"]
    assert names(load_folder(folder, recursive=False), folder) == ["a.JPG", "b.png"]
    with caplog.at_level(logging.WARNING):
        assert names(load_folder(folder, max_bytes=10_000), folder) == [
            "a.JPG", "b.png", "sub/c.png", "sub/deeper/d.tif"]
        assert names(load_folder(folder, max_images=2), folder) == ["a.JPG", "b.png"]
    assert "larger than max_bytes=10000" in caplog.text
    assert "holds 5 images; the table takes the first 2" in caplog.text


def test_bad_arguments_name_themselves(folder, tmp_path):
    with pytest.raises(ValueError, match="folder must be an existing folder"):
        load_folder(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"extensions: '\.txt' is not read.*\.png"):
        load_folder(folder, extensions=[".txt"])
    with pytest.raises(ValueError, match="extensions must be a list"):
        load_folder(folder, extensions=".png")
    with pytest.raises(ValueError, match="max_images"):
        load_folder(folder, max_images=0)
    with pytest.raises(ValueError, match="holds no image with extension .gif"):
        load_folder(folder, extensions=[".gif"])
    with pytest.raises(TypeError):
        load_folder(folder, limit=3)
