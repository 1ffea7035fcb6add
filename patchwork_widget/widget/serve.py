"""The labeling app outside a notebook (feature W6): a Voila server on one project.

:func:`serve` writes a one-cell notebook that opens the project (the same label file, so the
labels go to the same journal) and starts Voila on it in a child process. The server listens
on the loopback interface and asks for a random token unless told otherwise; the URL it
returns carries the token. Voila is an optional extra: ``pip install patchwork_widget[serve]``.

Only one writer holds a journal at a time (docs/labels.md), so close any notebook session on
the project first (:meth:`PatchworkWidget.serve` does it for you).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping
from typing import Any, Optional, Sequence, Tuple, Union

from patchwork_widget.options.checks import Choice
from patchwork_widget.options.legacy import take_renamed
from patchwork_widget.options.project import SERVED_FIELDS, ProjectOptions, takes_options

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
LOOPBACK = "127.0.0.1"
NOTEBOOK = "patchwork_app.ipynb"
# JupyterLab extensions of the environment that Voila's page must not load: Notebook 7's needs
# JupyterLab's own application and fails to load in Voila.
DENIED_EXTENSIONS = ("@jupyter-notebook/lab-extension",)

__all__ = ["LOOPBACK", "ServedApp", "app_notebook", "serve"]


@dataclass
class ServedApp:
    """A running app server. ``url`` opens the app (token included); :meth:`stop` ends it."""

    url: str
    token: str
    process: subprocess.Popen
    folder: Path
    log: Path
    _closed: bool = field(default=False, repr=False)

    @property
    def base_url(self) -> str:
        """The URL without the token (a browser without the token is refused)."""
        return self.url.split("?", 1)[0]

    def wait(self, timeout: Optional[float] = None) -> int:
        """Block until the server exits (Ctrl-C in a terminal); returns its exit code."""
        return self.process.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (its kernels end with it, releasing the journal) and remove its
        notebook folder."""
        if self._closed:
            return
        self._closed = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "ServedApp":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def app_notebook(outfile: PathLike, features: Optional[PathLike] = None,
                 feature_extractor: Optional[PathLike] = None,
                 imshape: Tuple[int, int] = (256, 256),
                 team: Optional[Mapping[str, Any]] = None) -> dict:
    """The notebook (nbformat 4, as a dict) whose one cell opens the label file ``outfile`` in
    the app, with the labeler taking the keyboard at once; its title (the page's, in Voila) is
    the file's name. ``team`` holds more keywords of ``PatchworkWidget`` (a team journal's
    ``journal``, ``project`` and ``annotator``, and any other open-a-project option given;
    None values are left out), written as their ``repr``."""
    lines = ["import numpy as np", "from patchwork_widget import PatchworkWidget", ""]
    args = [repr(os.path.abspath(outfile))]
    if features is not None:
        lines.append(f"features = np.load({os.path.abspath(features)!r}, mmap_mode='r')")
        args.append("features=features")
    if feature_extractor is not None:
        path = os.path.abspath(feature_extractor)
        lines += ["import keras",
                  f"extractor = keras.saving.load_model({path!r}, compile=False)"]
        args.append("feature_extractor=extractor")
    args.append(f"imshape={tuple(int(v) for v in imshape)!r}")
    args += [f"{key}={_literal(value)}" for key, value in (team or {}).items()
             if value is not None]
    lines += [f"app = PatchworkWidget({', '.join(args)})", "app.labeler.autofocus = True", "app"]
    source = "\n".join(lines)
    return {"cells": [{"cell_type": "code", "execution_count": None, "id": "app",
                       "metadata": {}, "outputs": [], "source": source}],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                        "name": "python3"},
                         "title": Path(outfile).name},
            "nbformat": 4, "nbformat_minor": 5}


def _literal(value: Any) -> str:
    """``value`` as Python source (a choice by its string value, so the cell needs no import)."""
    if isinstance(value, Choice):
        return repr(value.value)
    return repr(value)


def _free_port(ip: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET) as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app server exited with code {process.returncode}; its "
                               f"log:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:  # any HTTP answer means the server is listening
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.25)
    process.terminate()
    raise RuntimeError(f"the app server did not answer within {timeout:g} s; its log:\n"
                       f"{log.read_text(errors='replace')[-3000:]}")


@takes_options(SERVED_FIELDS, rename={"project": "project_name"})
def serve(
    outfile: Optional[PathLike] = None,
    features: Optional[PathLike] = None,
    *,
    feature_extractor: Optional[PathLike] = None,
    port: Optional[int] = None,
    ip: str = LOOPBACK,
    token: Union[str, bool] = True,
    open_browser: bool = False,
    voila_args: Sequence[str] = (),
    start_timeout: float = 60.0,
    options: ProjectOptions,
    **renamed: Any,
) -> ServedApp:
    """Start the labeling app on the label file ``outfile`` in a Voila server and return
    when it answers.

    Parameters
    ----------
    outfile : path
        The label file (CSV or Parquet) of the project; its journal is the one written to.
        (``project``, its old name, is a deprecated alias: ``project`` names the team
        project everywhere else, here ``project_name`` until the alias goes.)
    features : path to a .npy file, optional
        Pre-extracted features, one row per table row (opened memory-mapped).
    feature_extractor : path to a .keras file, optional
    port : int, optional
        Default: a free port.
    ip : str
        Interface to listen on; the loopback interface unless told otherwise (``"0.0.0.0"``
        for every interface: then keep the token).
    token : True, str or False
        True (default): a random token; a string: that token; False: no token, allowed only
        on the loopback interface.
    open_browser : bool
        Open the app in the default browser.
    voila_args : sequence of str
        More command-line options for Voila (e.g. ``["--theme=dark"]``).
    start_timeout : float
        Seconds to wait for the server to answer.
    imshape, classes, seed, journal, project_name, annotator, ... : optional
        The open-a-project parameters the app opens the project with, as
        ``PatchworkWidget`` takes them (every field of
        :class:`~patchwork_widget.options.project.ProjectOptions` but the label file and
        the features, given above as files; the team ``project`` is ``project_name`` here),
        or all at once as ``options=``. A team journal's URL is written into the server's
        private notebook folder (mode 0700) for its kernel (docs/team.md).
    """
    outfile = take_renamed("serve", {"outfile": outfile}, renamed, required=("outfile",))["outfile"]
    if not Path(outfile).is_file():
        raise ValueError(f"outfile must be an existing label file (CSV or Parquet); got "
                         f"{os.fspath(outfile)!r}")
    for name, path in (("features", features), ("feature_extractor", feature_extractor)):
        if path is not None and not os.path.isfile(path):
            raise ValueError(f"{name} file not found: {os.fspath(path)!r}")
    if token is False:
        if ip not in (LOOPBACK, "localhost", "::1"):
            raise ValueError(f"token=False is allowed only on the loopback interface; got "
                             f"ip={ip!r} (keep the token, or pass your own string)")
        token_value = ""
    elif token is True:
        token_value = secrets.token_urlsafe(24)
    elif isinstance(token, str) and len(token) >= 8:
        token_value = token
    else:
        raise ValueError(f"token must be True, False or a string of at least 8 characters; "
                         f"got {token!r}")
    try:
        import voila  # noqa: F401
    except ImportError:
        raise ImportError("serving the app needs Voila: pip install 'patchwork_widget[serve]'"
                          ) from None
    port = _free_port(ip) if port is None else port
    folder = Path(tempfile.mkdtemp(prefix="patchwork_serve_"))
    given = {name: value for name, value in options.given().items() if name in SERVED_FIELDS}
    imshape = given.pop("imshape", options.imshape)
    (folder / NOTEBOOK).write_text(json.dumps(app_notebook(outfile, features,
                                                           feature_extractor, imshape, given)))
    log = folder / "server.log"
    cmd = [sys.executable, "-m", "voila", str(folder / NOTEBOOK), f"--port={port}",
           f"--Voila.ip={ip}", "--Voila.port_retries=0", f"--token={token_value}",
           *(f"--VoilaConfiguration.extension_denylist={name}" for name in DENIED_EXTENSIONS),
           *([] if open_browser else ["--no-browser"]), *voila_args]
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, cwd=folder)
    host = f"[{ip}]" if ":" in ip else ("localhost" if ip == "0.0.0.0" else ip)
    base = f"http://{host}:{port}/"
    app = ServedApp(base + (f"?token={token_value}" if token_value else ""), token_value,
                    process, folder, log)
    try:
        _wait_until_up(base, process, log, start_timeout)
    except BaseException:
        app.stop()
        raise
    logger.info("the labeling app for %s is at %s", outfile, app.base_url)
    return app
