"""P1: keyboard latency of the labeler in a real JupyterLab, at 100,000 and 1,000,000 rows.

- paint: keydown (ArrowRight) to the next image painted (the requestAnimationFrame after it is
  drawn), over 200 presses on prefetched images; baseline: keydown to requestAnimationFrame on a
  bare element in the same page (the browser's own floor).
- ack: keydown (a class digit) to the kernel's acknowledgement that the label is durable, over 200
  annotations; baseline: the round trip of a read-only `labels` request through the same widget
  comm (no journal write).

Goal: paint p95 <= 16 ms at 100,000 rows; ack p95 <= 50 ms at 1,000,000 rows.
Usage: python benchmarks/bench_widget_latency.py [--rows 100000 1000000] [--presses 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _table import print_table

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from playwright.sync_api import sync_playwright  # noqa: E402

from patchwork_widget.datasets import load_demo_dataset  # noqa: E402
from tests.e2e.harness import (  # noqa: E402
    CHROMIUM_ARGS,
    chromium_executable,
    kernel_exec,
    open_notebook,
    run_all,
    start_server,
    write_notebook,
)

NOTEBOOK = """\
import os
import numpy as np
from patchwork_widget import PatchworkWidget, prep_label_dataframe
from patchwork_widget.datasets import load_demo_dataset
demo = load_demo_dataset({demo!r})["filepath"].tolist()
links = {links!r}
os.makedirs(links, exist_ok=True)
paths = [f"{{links}}/img_{{i:07d}}.png" for i in range({rows})]
df = prep_label_dataframe(paths, ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"])
widget = PatchworkWidget(df, outfile={outfile!r}, imshape=(192, 192), seed=0)
queue = widget.sample(count={count})
for row in queue:  # only the sampled images need to exist
    if not os.path.exists(paths[row]):
        os.symlink(demo[row % len(demo)], paths[row])
widget
"""

BARE_KEY_LATENCY = """
() => {
  const el = document.createElement("div");
  el.tabIndex = 0;
  el.setAttribute("data-lm-suppress-shortcuts", "true");
  document.body.append(el);
  const times = [];
  el.addEventListener("keydown", (ev) => {
    ev.preventDefault(); ev.stopPropagation();
    const t0 = ev.timeStamp;
    el.textContent = String(times.length);
    requestAnimationFrame(() => times.push(performance.now() - t0));
  });
  el.focus();
  window.__bare = times;
}
"""

ROUND_TRIPS = """
async ([n, row]) => {
  const view = globalThis.patchworkViews.at(-1);
  const before = view.timings.labels.length;
  for (let i = 0; i < n; i++) {
    view.control.requestLabels([row]);
    while (view.timings.labels.length < before + i + 1) await new Promise((r) => setTimeout(r, 1));
  }
  return view.timings.labels.slice(before);
}
"""


def percentiles(values: list[float]) -> tuple[float, float]:
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


def press(page, key: str, n: int, gap_s: float) -> None:
    for _ in range(n):
        page.keyboard.press(key)
        time.sleep(gap_s)


def measure(page, server, rows: int, presses: int, workdir: Path, demo: Path) -> list[tuple]:
    name = f"latency_{rows}.ipynb"
    cells = [NOTEBOOK.format(demo=str(demo), links=str(workdir / f"links_{rows}"), rows=rows,
                             outfile=str(workdir / f"labels_{rows}.parquet"), count=presses + 50)]
    write_notebook(server.root_dir / name, cells)
    open_notebook(page, server, name)
    run_all(page, server, timeout=600)
    page.locator(".pw-root").wait_for(state="visible")
    page.wait_for_function("() => [...document.querySelectorAll('.pw-cell img')].filter(i => i.src).length >= 15")
    page.locator(".pw-help").click()
    time.sleep(1.0)
    press(page, "ArrowRight", presses, 0.08)
    time.sleep(0.5)
    paint = page.evaluate("() => globalThis.patchworkViews.at(-1).timings.paint.slice()")
    press(page, "ArrowLeft", presses, 0.01)  # back to the start
    time.sleep(1.0)
    for _ in range(presses):
        page.keyboard.press("1")
        time.sleep(0.06)
        page.keyboard.press("ArrowRight")
        time.sleep(0.06)
    page.locator(".pw-status[data-state='saved']").wait_for(timeout=60_000)
    ack = page.evaluate("() => globalThis.patchworkViews.at(-1).timings.ack.slice()")
    trips = page.evaluate(ROUND_TRIPS, [presses, 0])
    saved = kernel_exec(page, "print(int(widget.df['a'].notna().sum()))").strip()
    return [("paint", rows, paint), ("ack", rows, ack), ("labels round trip (baseline)", rows, trips),
            ("saved labels", rows, saved)]


def bare_paint(page, presses: int) -> list[float]:
    page.evaluate(BARE_KEY_LATENCY)
    press(page, "ArrowRight", presses, 0.02)
    time.sleep(0.3)
    return page.evaluate("() => window.__bare")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--presses", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        demo = workdir / "demo"
        load_demo_dataset(demo)
        server = start_server("lab", workdir / "root", workdir / "state", workdir / "server.log", timeout=120)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium_executable(), headless=True, args=CHROMIUM_ARGS)
                table = []
                for rows in args.rows:
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    page.set_default_timeout(120_000)
                    results = measure(page, server, rows, args.presses, workdir, demo)
                    floor = bare_paint(page, args.presses)
                    series = {name: values for name, _, values in results}
                    p50, p95 = percentiles(series["paint"])
                    f50, f95 = percentiles(floor)
                    table.append(("paint (keydown -> next image painted)", rows, len(series["paint"]), p50, p95, f95, p95 / f95, "p95 <= 16 ms"))
                    a50, a95 = percentiles(series["ack"])
                    t50, t95 = percentiles(series["labels round trip (baseline)"])
                    table.append(("ack (keydown -> durable ack)", rows, len(series["ack"]), a50, a95, t95, a95 / t95, "p95 <= 50 ms"))
                    print(f"rows={rows}: labels saved in the table: {series['saved labels']}", flush=True)
                    page.close()
                    server.shutdown_sessions()
                browser.close()
        finally:
            server.stop()
    print_table(
        "P1 labeler latency in JupyterLab (ms); baseline = bare keydown->rAF (paint) or a read-only comm round trip (ack)",
        ["measure", "rows", "n", "p50", "p95", "baseline p95", "p95 / baseline", "goal"],
        table,
    )


if __name__ == "__main__":
    main()
