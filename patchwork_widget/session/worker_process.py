"""Worker processes started from the package's own entry point, talking over pipes.

The online rounds (:mod:`.round_worker`) and the background feature extraction
(:mod:`.extraction_worker`) each run in such a process. It is a fresh interpreter
(``python -c "import os; os.nice(10); from patchwork_widget.session.<module> import main;
main()"``) whose standard input carries the kernel's requests and whose standard output
carries the replies, as :class:`multiprocessing.connection.Connection` messages: it never
imports the user's ``__main__`` (multiprocessing's ``spawn`` would run a script without an
``if __name__ == "__main__":`` guard again), and no fork copies the kernel's TensorFlow
threads in an unusable state. The worker runs at a lower CPU priority (:data:`NICENESS`) from
its first line, so labeling comes first, and its standard error is the kernel's (a console
shows its tqdm bar; a notebook kernel's goes to the server's log).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

NICENESS = 10  # a worker's CPU priority below the kernel's: labeling comes first


def entry_point(module: str) -> str:
    """The ``python -c`` program that runs ``module``'s ``main()``, at :data:`NICENESS` from
    the start (its imports, seconds of CPU, included: they must not slow the kernel's first
    images down)."""
    return f"import os; os.nice({NICENESS}); from {module} import main; main()"


def worker_environment() -> dict[str, str]:
    """The kernel's environment, with the folder this package is imported from first on the
    worker's import path (the kernel may have found it through its own ``sys.path``)."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return env


@dataclass
class Worker:
    """A started worker process and the kernel's two ends of its pipes."""

    process: subprocess.Popen
    requests: Connection  # to the worker (its standard input)
    replies: Connection  # from the worker (its standard output)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def close_pipes(self) -> None:
        self.requests.close()
        self.replies.close()


def start_worker(module: str) -> Worker:
    """Start ``module``'s ``main()`` in a fresh interpreter (see the module docstring)."""
    process = subprocess.Popen(
        [sys.executable, "-c", entry_point(module)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, env=worker_environment(), close_fds=True)
    # the connections own copies of the pipes' descriptors; the Popen's own are closed
    requests = Connection(os.dup(process.stdin.fileno()), readable=False)
    replies = Connection(os.dup(process.stdout.fileno()), writable=False)
    process.stdin.close()
    process.stdout.close()
    return Worker(process, requests, replies)


def worker_channels() -> tuple[Connection, Connection]:
    """In the worker: ``(requests, replies)``, the connections of its standard input and
    output; from here on anything printed (TensorFlow's notices included) goes to standard
    error."""
    replies = Connection(os.dup(sys.stdout.fileno()), readable=False)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    requests = Connection(os.dup(sys.stdin.fileno()), writable=False)
    return requests, replies


def limit_threads() -> int:
    """In the worker: leave one core to the kernel (TensorFlow's and the BLAS's thread pools);
    returns the threads the worker uses."""
    import tensorflow as tf
    from threadpoolctl import threadpool_limits

    threads = max(1, (os.cpu_count() or 2) - 1)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    threadpool_limits(threads)
    return threads


def portable_error(err: Exception) -> Exception:
    """``err`` if it survives pickling (to cross the pipe), else a RuntimeError with its type
    and message."""
    try:
        pickle.loads(pickle.dumps(err))
    except (pickle.PicklingError, TypeError, AttributeError):  # keep its words
        return RuntimeError(f"{type(err).__name__}: {err}")
    return err
