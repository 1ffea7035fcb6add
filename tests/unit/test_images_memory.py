"""Peak memory of reading a large image at a small size, measured in a fresh process
(its peak resident size, ``VmHWM``): a memory bound, never a time bound."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

SIDE = 9000
DECODED = SIDE * SIDE * 3  # bytes of the 9000x9000 RGB image in its own dtype (243 MB)


@pytest.fixture(scope="module")
def big_images(tmp_path_factory) -> dict[str, str]:
    """A 9000x9000 RGB image (smooth, so the files are small) as PNG and JPEG."""
    folder = tmp_path_factory.mktemp("big")
    ramp = np.linspace(0, 255, SIDE, dtype=np.float32)
    pixels = np.empty((SIDE, SIDE, 3), np.uint8)
    pixels[..., 0] = ramp[:, None]
    pixels[..., 1] = ramp[None, :]
    pixels[..., 2] = 128
    image = Image.fromarray(pixels)
    del pixels
    paths = {"png": str(folder / "big.png"), "jpg": str(folder / "big.jpg")}
    image.save(paths["png"], compress_level=1)
    image.save(paths["jpg"], quality=80)
    return paths


def peak_growth(code: str, setup: str = "") -> int:
    """Bytes by which the peak resident size of a fresh process grew while ``code`` ran
    (after the imports and ``setup``); ``code`` also checks what it read."""
    script = textwrap.dedent("""
        import resource
        import numpy as np
        from patchwork_widget.images import read_image, read_images
        from patchwork_widget.images.guard import ReadLimits

        def resident():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * resource.getpagesize()

        def peak():  # VmHWM: ru_maxrss of this process image only (Linux's ru_maxrss
            # also counts the parent's pages from before exec)
            with open("/proc/self/status") as f:
                line = next(line for line in f if line.startswith("VmHWM:"))
            return int(line.split()[1]) * 1024
    """) + textwrap.dedent(setup) + textwrap.dedent("""
        before = resident()
    """) + textwrap.dedent(code) + textwrap.dedent("""
        print("GROWTH", peak() - before)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return int(done.stdout.split("GROWTH")[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
@pytest.mark.parametrize("kind", ["png", "jpg"])
def test_reading_a_9000_px_image_at_64_px_costs_at_most_twice_its_decoded_size(big_images, kind):
    growth = peak_growth(f"""
        out = read_image({big_images[kind]!r}, imshape=(64, 64))
        assert out.shape == (64, 64, 3) and out.dtype == np.float32
        ramp = np.linspace(0, 1, 64)
        assert np.abs(out[:, :, 0].mean(axis=1) - ramp).max() < 0.03  # the picture survived
        assert np.abs(out[:, :, 1].mean(axis=0) - ramp).max() < 0.03
    """)
    assert growth < 2 * DECODED, f"peak grew by {growth / 1e6:.0f} MB"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_parallel_readers_share_one_byte_budget(big_images):
    """Three workers, three such images, a budget that holds one: the peak stays that of
    one image."""
    growth = peak_growth(f"""
        limits = ReadLimits(max_bytes={int(1.2 * DECODED)})
        batch = read_images([{big_images['png']!r}] * 3, imshape=(64, 64), num_workers=3,
                            limits=limits)
        assert batch.arrays.shape == (3, 64, 64, 3) and not batch.errors
    """)
    assert growth < 2 * DECODED, f"peak grew by {growth / 1e6:.0f} MB"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_the_tf_data_loader_holds_about_one_decoded_image_per_parallel_call(big_images,
                                                                            tmp_path):
    """Three such images (PNG, JPEG, PNG) at 64 px, two parallel decodes: at most twice the
    decoded size per parallel call (it was 5x per call: a float32 copy at full size)."""
    calls = 2
    warm = tmp_path / "warm.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(warm)
    growth = peak_growth(f"""
        files = [{big_images['png']!r}, {big_images['jpg']!r}, {big_images['png']!r}]
        ds, _ = dataset(files, imshape=(64, 64), num_parallel_calls={calls}, shuffle=False,
                        skip_errors=False)
        out = np.concatenate([batch.numpy() for batch in ds])
        assert out.shape == (3, 64, 64, 3) and out.dtype == np.float32
        ramp = np.linspace(0, 1, 64)
        assert np.abs(out[:, :, :, 0].mean(axis=2) - ramp).max() < 0.03  # the pictures
        assert np.abs(out[:, :, :, 1].mean(axis=1) - ramp).max() < 0.03
    """, setup=f"""
        from patchwork_widget.images.pipeline import dataset
        for _ in dataset([{str(warm)!r}], imshape=(64, 64))[0]:  # start TensorFlow's runtime
            pass
    """)
    assert growth < calls * 2 * DECODED, f"peak grew by {growth / 1e6:.0f} MB"
