"""Issue 27: thumbnails per second from an S3 server against the same files on local disk.

Run: ``python benchmarks/bench_remote_images.py [N_IMAGES] [SIDE]`` (default 200 images of
256 x 256, a third each PNG, JPEG and TIFF). It starts moto's S3 server on loopback (its own
process, spoken to over HTTP by s3fs as users' code is), uploads the images, writes the same
bytes to a local folder, and times :meth:`ThumbnailCache.get_many` (what the widget does for a
page of thumbnails; a new ``ThumbnailCache`` each time, so its memory cache is empty) for a
page of 24 and a prefetch of all N:

- local disk (the baseline; the files are in the OS page cache after the first round);
- S3, cold: an empty disk cache (every object fetched, the page's objects together);
- S3, cold, one at a time (``workers=1``): what reading them serially would cost;
- S3, warm: the objects already in the disk cache (a second visit; no request is made);
- HTTP with 50 ms of latency per request (``http.server`` on loopback that waits before
  answering, as a distant server does), cold, together and one at a time: where fetching a
  page's objects together pays.

Best of ``ROUNDS`` rounds in which the cases take turns (other load on the shared machine
falls on all of them alike); the ratio is against local disk for the same count. The server
runs on the same machine, so "network" time here is moto's own CPU per request: against a
real bucket, latency adds to the cold rows and not to the warm ones (the HTTP rows).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from _table import print_table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))
from remote_servers import HttpServer, S3Server, image_objects, write_objects  # noqa: E402

from patchwork_widget.images import storage  # noqa: E402
from patchwork_widget.images.thumbnails import DisplayOptions, ThumbnailCache  # noqa: E402

ROUNDS = 3
PAGE = 24
BUCKET = "bench-images"
OPTIONS = DisplayOptions(size=(128, 128))
LATENCY = 0.05  # seconds the slow HTTP server waits before each answer
HTTP = "HTTP, 50 ms latency, cold"


def timed(paths: list[str], workers: int = 8) -> float:
    """Seconds for one page of thumbnails through a fresh ThumbnailCache."""
    cache = ThumbnailCache(OPTIONS, workers=workers)
    start = time.perf_counter()
    results = cache.get_many(paths)
    seconds = time.perf_counter() - start
    failed = [r for r in results if not isinstance(r, bytes)]
    if failed:
        raise RuntimeError(f"{len(failed)} thumbnails failed; first: {failed[0]}")
    return seconds


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    side = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    logging.basicConfig(level=logging.WARNING)
    good, _ = image_objects(n, size=side)
    work = Path(tempfile.mkdtemp(prefix="bench_remote_"))
    local = write_objects(work / "local", good)
    server = S3Server()
    slow = HttpServer(work / "local", delay=LATENCY)
    try:
        os.environ.update(server.environ())
        urls = server.upload(BUCKET, good)
        http_urls = [f"{slow.url}/{name}" for name in good]
        total = sum(len(b) for b in good.values())
        counts = {"page of 24": PAGE, f"prefetch of {n}": n}
        best: dict[tuple[str, str], float] = {}

        def keep(key: tuple[str, str], seconds: float) -> None:
            best[key] = min(best.get(key, float("inf")), seconds)

        for r in range(ROUNDS):
            for what, count in counts.items():
                keep((what, "local disk (baseline)"), timed(local[:count]))
                storage.configure_storage(cache_folder=work / f"cold-{r}-{count}")
                keep((what, "S3, cold cache"), timed(urls[:count]))
                keep((what, "S3, warm cache (second visit)"), timed(urls[:count]))
                storage.configure_storage(cache_folder=work / f"serial-{r}-{count}")
                keep((what, "S3, cold, one at a time"), timed(urls[:count], workers=1))
                storage.configure_storage(cache_folder=work / f"http-{r}-{count}")
                keep((what, HTTP), timed(http_urls[:count]))
                storage.configure_storage(cache_folder=work / f"http-serial-{r}-{count}")
                keep((what, HTTP + ", one at a time"), timed(http_urls[:count], workers=1))
        rows = []
        for what, count in counts.items():
            base = best[(what, "local disk (baseline)")]
            for case in ("local disk (baseline)", "S3, cold cache", "S3, cold, one at a time",
                         "S3, warm cache (second visit)", HTTP, HTTP + ", one at a time"):
                seconds = best[(what, case)]
                rows.append([what, case, round(count / seconds, 1), round(seconds * 1e3, 1),
                             round(base / seconds, 2)])
        print_table(
            f"Thumbnails (128 px JPEG) of {n} images of {side} x {side} "
            f"({total / n / 1024:.0f} KB each on average), best of {ROUNDS}",
            ["count", "source", "thumbnails/s", "ms", "x local"], rows)
    finally:
        server.stop()
        slow.stop()


if __name__ == "__main__":
    main()
