"""Claims with a lease on a team journal: different annotators get different rows to
label (issue 16, work split).

A claim says "annotator X (session S) is labeling row R until time T" (server time, so
the annotators' clocks do not matter). :func:`claim` hands out rows from the caller's
candidates in their order, skipping rows another annotator holds an unexpired claim on;
with an ``overlap`` fraction, up to that share of the rows handed out may be rows that
exactly one other annotator holds, so that two annotators label them (for agreement).
A notebook that dies stops renewing: its claims expire after the lease and the rows go
to others. Claims are taken under the project's row lock, so two annotators asking at
once never get the same free row.
"""

from __future__ import annotations

import math

import psycopg

_NOW = "extract(epoch FROM clock_timestamp())"


def claim(
    conn: psycopg.Connection,
    project: str,
    annotator: str,
    session: str,
    candidates: list[int],
    n: int,
    lease: float,
    overlap: float,
) -> list[int]:
    """Claim up to ``n`` of ``candidates`` (in order) for ``lease`` seconds; return them.

    Rows this annotator already holds are handed out again (and renewed).
    """
    shared_budget = math.floor(overlap * n)
    chosen: list[int] = []
    chunk = max(4 * n, 1000)
    with conn.transaction():
        conn.execute(
            "SELECT 1 FROM patchwork_projects WHERE project=%s FOR UPDATE", (project,)
        )
        conn.execute(
            f"DELETE FROM patchwork_claims WHERE project=%s AND expires < {_NOW}", (project,)
        )
        for start in range(0, len(candidates), chunk):
            part = candidates[start:start + chunk]
            held = dict(conn.execute(
                "SELECT row_index, count(*) FROM patchwork_claims WHERE project=%s "
                "AND annotator <> %s AND row_index = ANY(%s) GROUP BY row_index",
                (project, annotator, part),
            ).fetchall())
            for row in part:
                others = held.get(row, 0)
                if others == 0:
                    chosen.append(row)
                elif others == 1 and shared_budget > 0:
                    chosen.append(row)
                    shared_budget -= 1
                if len(chosen) == n:
                    break
            if len(chosen) == n:
                break
        conn.execute(
            "INSERT INTO patchwork_claims (project, row_index, annotator, session, expires) "
            f"SELECT %s, r, %s, %s, {_NOW} + %s FROM unnest(%s::integer[]) AS r "
            "ON CONFLICT (project, row_index, annotator) DO UPDATE "
            "SET session = excluded.session, expires = excluded.expires",
            (project, annotator, session, lease, chosen),
        )
    return chosen


def release(conn: psycopg.Connection, project: str, session: str) -> None:
    """Drop every claim of ``session`` (at close: its rows go to others at once)."""
    conn.execute(
        "DELETE FROM patchwork_claims WHERE project=%s AND session=%s", (project, session)
    )
