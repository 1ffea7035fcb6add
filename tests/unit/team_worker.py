"""One annotator process of the team journal tests (see test_team_processes.py).

Usage: team_worker.py URL PROJECT ANNOTATOR OUTFILE FIRST COUNT NROWS EXPECT

Opens the project (creating it from a table of NROWS images and class "cat" if it is
new), prints ``ready`` and waits for a line on stdin, then labels rows FIRST .. FIRST +
COUNT - 1 one call each, printing ``ack ROW`` after each call returns (so a parent that
kills it knows what was acknowledged). Then it waits up to 90 s for its table to hold
EXPECT labels (the other annotators' arrive through the listener), prints ``seen N`` (the
labels it holds) and closes.
"""

from __future__ import annotations

import sys
import time

from patchwork_widget.labels import LabelStore, prep_label_dataframe


def table(nrows: int):
    return prep_label_dataframe([f"img_{i:05d}.png" for i in range(nrows)], ["cat"])


def main(url: str, project: str, annotator: str, outfile: str, first: str, count: str,
         nrows: str, expect: str) -> None:
    first_row, n, total, wanted = int(first), int(count), int(nrows), int(expect)
    store = LabelStore.open(outfile, df=table(total), journal=url, project=project,
                            annotator=annotator, autosave=None)
    print("ready", flush=True)
    sys.stdin.readline()
    for row in range(first_row, first_row + n):
        store.annotate(row, {"cat": row % 2}, seconds=0.5)
        print(f"ack {row}", flush=True)
    deadline = time.monotonic() + 90
    while store.df["cat"].notna().sum() < wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    print(f"seen {int(store.df['cat'].notna().sum())}", flush=True)
    store.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
