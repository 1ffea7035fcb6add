"""P8: time of ``import patchwork_widget`` in a fresh process, against baselines.

Each import runs in a new interpreter (median of several runs); the baseline is the bare
interpreter start, so "import cost" is the difference. Goal: under one second, no TensorFlow.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from _table import print_table

RUNS = 7
CASES = {
    "python (baseline)": "pass",
    "import numpy": "import numpy",
    "import pandas": "import pandas",
    "import patchwork_widget": "import patchwork_widget, sys; assert 'tensorflow' not in sys.modules",
    "patchwork_widget.LabelStore": "import patchwork_widget as p; p.LabelStore",
    "patchwork_widget.PatchworkWidget": "import patchwork_widget as p; p.PatchworkWidget",
}


def wall(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def main() -> None:
    medians = {name: statistics.median(wall(code) for _ in range(RUNS)) for name, code in CASES.items()}
    base = medians["python (baseline)"]
    rows = [(name, t, t - base, t / base) for name, t in medians.items()]
    print_table(
        f"P8 import time, median of {RUNS} fresh processes (goal: import patchwork_widget < 1 s)",
        ["case", "wall s", "minus baseline s", "x baseline"],
        rows,
    )


if __name__ == "__main__":
    main()
