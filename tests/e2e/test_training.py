"""Model and Train tabs in a real JupyterLab: train (building the model first), see the histogram, then
sample by max entropy from the Label tab; the line that says what `a` would write is what it
writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .harness import (
    JupyterServer,
    PageLog,
    kernel_exec,
    open_notebook,
    run_all,
    screenshot,
    write_notebook,
)
from .labeler_page import current_row, demo_widget_source, wait_saved

if TYPE_CHECKING:  # pragma: no cover - typing only
    from playwright.sync_api import Page


def cells(demo_dir: Path, outfile: Path) -> list[str]:
    return [demo_widget_source(demo_dir, outfile, labeled=300, validation_every=5) + "widget"]


@pytest.mark.e2e
@pytest.mark.parametrize("frontend", ["lab"])
def test_build_train_and_sort_by_max_entropy(
    jupyter_server: JupyterServer, page: Page, page_log: PageLog, notebook_name: str, demo_dir: Path
) -> None:
    outfile = jupyter_server.root_dir / f"{Path(notebook_name).stem}_labels.parquet"
    write_notebook(jupyter_server.root_dir / notebook_name, cells(demo_dir, outfile))
    open_notebook(page, jupyter_server, notebook_name)
    run_all(page, jupyter_server, timeout=180)
    page.locator(".pw-root").wait_for(state="visible")
    orders_before = page.locator(".pw-order option").all_text_contents()
    assert orders_before[0] == "random" and "max entropy" not in orders_before

    # Train with no model yet builds the Model tab's model first; the automatic solver picks
    # L-BFGS here (a pooling head on features), so the tab says how the solve went.
    page.get_by_role("tab", name="Train", exact=True).click()
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("L-BFGS (full batch): converged in").wait_for(timeout=180_000)
    page.get_by_role("tab", name="Model", exact=True).click()
    page.get_by_text("trainable parameters for 11 classes").wait_for()
    page.get_by_role("tab", name="Train", exact=True).click()
    # The histogram has points drawn: one line per group, over 20 bins.
    page.wait_for_function(
        "() => [...document.querySelectorAll('.bqplot .line')].some(p => (p.getAttribute('d') || '').length > 40)"
    )
    screenshot(page.locator(".jp-OutputArea-output").first, "train-tab-lab")
    assert kernel_exec(page, "print(len(widget.session.train_history), widget.predictions.shape)").split() == [
        "1", "(1294,", "11)"
    ]

    page.get_by_role("tab", name="Label", exact=True).click()
    page.locator(".pw-order option", has_text="max entropy").first.wait_for(state="attached")
    read_queue = "import json; print(json.dumps(widget.labeler.queue))"
    random_queue = json.loads(kernel_exec(page, read_queue))
    page.locator(".pw-order").select_option(label="max entropy")
    page.locator(".pw-sample").click()
    # The view says so once the kernel has answered the sample request (reading the queue at
    # once could run before the request was handled).
    page.locator(".pw-message", has_text="Sampled 50 images.").wait_for()
    page.locator(".pw-suggest-p", has_text="p ").first.wait_for()
    queue = json.loads(kernel_exec(page, read_queue))
    assert queue != random_queue
    expected = json.loads(kernel_exec(
        page,
        "from patchwork_widget.active.uncertainty import mean_binary_entropy\n"
        "unlabeled = widget.df[classes].isna().all(axis=1).to_numpy() & ~widget.df['exclude'].to_numpy()\n"
        "h = mean_binary_entropy(widget.predictions[classes].to_numpy(dtype=float), widget.df[classes].to_numpy(dtype=float))\n"
        "idx = np.flatnonzero(unlabeled)\n"
        "print(json.dumps(idx[np.argsort(-h[idx], kind='stable')][:50].tolist()))",
    ))
    assert queue == expected
    screenshot(page.locator(".pw-root"), "label-tab-suggestions-lab")
    check_accept_line(page)
    page_log.assert_no_errors(frontend=jupyter_server.frontend)


def check_accept_line(page: Page) -> None:
    """The accept line and each toggle say, from the kernel's suggestion strengths, what `a`
    writes for the current image before the press (the value, coloured as that state, with the
    probability small); one press of Shift+A writes exactly that and moves on."""
    row = current_row(page)
    classes, values = json.loads(kernel_exec(
        page, f"print(json.dumps([widget.session.classes, widget.session.row_values([{row}])[0]]))"))
    marks = list(zip(classes, values["suggest"], values["strength"]))
    writes = {c: 1.0 if p >= 0.5 else 0.0 for c, p, s in marks if s == "solid"}
    leaves = [c for c, _, s in marks if s == "faint"]
    said = "writes " + ", ".join(f"{'yes' if v else 'no'} {c}" for c, v in writes.items()) if writes else "writes nothing"
    expected = f"a: {said}" + (f"; leaves {', '.join(leaves)} (faint)" if leaves else "")
    assert page.locator(".pw-accept").inner_text() == expected
    shown = page.locator(".pw-toggle").evaluate_all(
        "ts => ts.map(t => [t.dataset.class, t.querySelector('.pw-suggest-write').textContent,"
        " t.querySelector('.pw-suggest').dataset.write, getComputedStyle(t.querySelector('.pw-suggest-write')).color,"
        " t.querySelector('.pw-suggest-p').textContent])")
    colours = {}
    for name, text, write, colour, prob in shown:
        if name in writes:
            value = "yes" if writes[name] else "no"
            assert (text, write) == (f"a → {value}", str(int(writes[name]))), f"{name}: shows {text!r}"
            colours.setdefault(value, set()).add(colour)
        else:
            assert text == "" and write == "", f"{name}: a leaves it, yet it shows {text!r}"
        assert prob == "" or prob.startswith("p "), prob
    if len(colours) == 2:
        assert colours["yes"].isdisjoint(colours["no"]), f"yes and no look the same: {colours}"
    page.locator(".pw-position").click()  # the keys to the labeler
    page.keyboard.press("Shift+A")
    wait_saved(page)
    page.wait_for_function(f"() => document.querySelector('.pw-root').dataset.row !== '{row}'")
    page.wait_for_timeout(300)
    after = json.loads(kernel_exec(
        page, f"print(json.dumps({{c: (None if v != v else v) for c, v in widget.df.loc[{row}, {classes!r}].items()}}))"))
    assert {c: v for c, v in after.items() if v is not None} == writes
