"""Real object storage and HTTP servers on loopback for the remote-image tests (issue 27).

- :class:`S3Server`: moto's S3 server in its own process (``python -m moto.server``), spoken
  to over HTTP by s3fs / botocore, the clients users get; credentials and the endpoint reach
  the clients through the standard AWS environment variables (:meth:`S3Server.environ`).
- :class:`HttpServer`: Python's ``http.server`` serving a folder from a thread.
- :func:`image_objects`: a few hundred small PNG, TIFF and JPEG images and some bad files.

Nothing here reaches outside the machine. Used by tests/unit/test_remote_images.py, the e2e
test and benchmarks/bench_remote_images.py.
"""

from __future__ import annotations

import functools
import http.server
import io
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

ACCESS_KEY = "testing-key"
SECRET_KEY = "testing-secret"
CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".tif": "image/tiff",
                 ".npy": "application/octet-stream"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """moto's S3 server on a free loopback port; :meth:`stop` ends it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=2).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto's S3 server did not start on {self.endpoint}")
                time.sleep(0.2)

    def environ(self) -> dict[str, str]:
        """The AWS environment variables that point s3fs and botocore at this server."""
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name="us-east-1")

    def upload(self, bucket: str, objects: dict[str, bytes]) -> list[str]:
        """Create ``bucket`` and put ``objects`` (name -> bytes) with their Content-Type;
        returns their ``s3://`` URLs in order."""
        client = self.client()
        client.create_bucket(Bucket=bucket)
        for name, data in objects.items():
            kind = CONTENT_TYPES.get(os.path.splitext(name)[1], "application/octet-stream")
            client.put_object(Bucket=bucket, Key=name, Body=data, ContentType=kind)
        return [f"s3://{bucket}/{name}" for name in objects]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files quietly, counting requests and the most served at once."""

    stats: "HttpServer"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base's name)
        pass

    def _counted(self, serve) -> None:
        stats = self.stats
        with stats.lock:
            stats.requests += 1
            stats.in_flight += 1
            stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            if stats.delay:
                time.sleep(stats.delay)
            serve()
        finally:
            with stats.lock:
                stats.in_flight -= 1

    def do_GET(self) -> None:
        self._counted(super().do_GET)

    def send_header(self, keyword: str, value: str) -> None:
        if not (self.stats.hide_length and keyword.lower() == "content-length"):
            super().send_header(keyword, value)

    def do_HEAD(self) -> None:
        self._counted(super().do_HEAD)


class HttpServer:
    """``http.server`` serving ``folder`` on a free loopback port from a thread.

    ``requests`` counts the requests served, ``max_in_flight`` the most served at once;
    ``delay`` seconds are spent before serving each (a slow network); ``hide_length`` leaves
    out the Content-Length header (the body ends when the connection closes), as servers
    streaming generated content do."""

    def __init__(self, folder: str | os.PathLike, delay: float = 0.0,
                 hide_length: bool = False) -> None:
        self.lock = threading.Lock()
        self.requests = self.in_flight = self.max_in_flight = 0
        self.delay = delay
        self.hide_length = hide_length
        handler = type("Handler", (_Handler,), {"stats": self})
        self.server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def _encoded(array: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "tif":
        tifffile.imwrite(buffer, array)
    else:
        Image.fromarray(array).save(buffer, format={"png": "PNG", "jpg": "JPEG"}[fmt])
    return buffer.getvalue()


def image_objects(n: int, size: int = 32, seed: int = 0) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """``n`` good images cycling PNG, JPEG and TIFF (RGB, 8-bit; every third TIFF 16-bit
    gray) and the bad ones: ``(good, bad)``, each name -> bytes. The bad: empty, truncated,
    text named ``.png``, a PNG whose header claims 30000 x 30000 pixels."""
    rng = np.random.default_rng(seed)
    good: dict[str, bytes] = {}
    for i in range(n):
        fmt = ("png", "jpg", "tif")[i % 3]
        if fmt == "tif" and i % 9 == 2:
            array = rng.integers(0, 65536, (size, size), dtype=np.uint16)
        else:
            array = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        good[f"images/img_{i:04d}.{fmt}"] = _encoded(array, fmt)
    png = _encoded(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "png")
    bomb = bytearray(png)
    bomb[16:24] = (30000).to_bytes(4, "big") * 2  # IHDR width and height, with its CRC
    bomb[29:33] = zlib.crc32(bytes(bomb[12:29])).to_bytes(4, "big")
    bad = {
        "bad/empty.png": b"",
        "bad/truncated.png": png[: len(png) // 2],
        "bad/text.png": b"this is not an image\n" * 10,
        "bad/bomb.png": bytes(bomb),
    }
    return good, bad


def write_objects(folder: Path, objects: dict[str, bytes]) -> list[str]:
    """Write ``objects`` below ``folder``; returns their local paths in order."""
    paths = []
    for name, data in objects.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths.append(str(path))
    return paths
