"""A team project reopened by a new process (the kernel restarted, issue 16): every
acknowledged label is there, the annotator's claims are still hers, her undo resumes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from patchwork_widget.labels import LabelStore, prep_label_dataframe
from patchwork_widget.session import Session

sys.path.insert(0, str(Path(__file__).parent))
from postgres_server import postgres  # noqa: F401  (the fixture)

KERNEL = textwrap.dedent("""
    import json, os, sys
    from patchwork_widget.labels import prep_label_dataframe
    from patchwork_widget.session import Session
    df = prep_label_dataframe([f"img{i}.png" for i in range(20)], ["cat", "dog"])
    session = Session.open(df, outfile=sys.argv[1], journal=sys.argv[2], project=sys.argv[3],
                           annotator="ana", seed=4, claim_lease=120.0)
    queue = session.sample(count=6)
    print(json.dumps(queue), flush=True)
    session.annotate(queue[0], {"cat": 1}, seconds=1.0)
    print("ack", flush=True)
    session.annotate(queue[1:3], {"dog": 0}, seconds=2.0)
    print("ack", flush=True)
    os._exit(0)  # the kernel goes away: nothing closed, nothing released
""")


def table():
    return prep_label_dataframe([f"img{i}.png" for i in range(20)], ["cat", "dog"])


def test_a_restarted_kernel_resumes_labels_and_claims(postgres, tmp_path) -> None:  # noqa: F811
    project, outfile = f"restart-{uuid.uuid4().hex[:8]}", tmp_path / "ana.csv"
    first = subprocess.run([sys.executable, "-c", KERNEL, str(outfile), postgres.url, project],
                           check=False, capture_output=True, text=True, timeout=120)
    lines = first.stdout.splitlines()
    assert first.returncode == 0 and lines[1:] == ["ack", "ack"], first.stderr
    queue = json.loads(lines[0])
    assert len(queue) == 6

    bob = LabelStore.open(tmp_path / "bob.csv", df=table(), autosave=None,
                          journal=postgres.url, project=project, annotator="bob")
    try:
        # the new kernel: same outfile (the dead kernel's writer lock is taken over)
        again = Session.open(table(), outfile=outfile, journal=postgres.url, project=project,
                             annotator="ana", claim_lease=120.0)
        try:
            df = again.df
            assert df.loc[queue[0], "cat"] == 1.0
            assert (df.loc[queue[1:3], "dog"] == 0.0).all()
            assert int(df[["cat", "dog"]].notna().to_numpy().sum()) == 3  # nothing else
            # ana's claims outlived her kernel: bob gets none of her rows ...
            assert not set(bob.claim(range(20), 20)) & set(queue)
            # ... and she gets the unlabeled ones back (renewed)
            assert again.store.claim(queue[3:], 3) == queue[3:]
            assert sorted(again.undo()) == sorted(queue[1:3])  # her last call, undone
            assert again.df.loc[queue[1:3], "dog"].isna().all()
            assert again.df.loc[queue[0], "cat"] == 1.0
        finally:
            again.close()
    finally:
        bob.close()
