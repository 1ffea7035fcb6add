"""Claims with a lease on a team journal: different annotators get different rows to
label (issue 16, work split).

A claim says "annotator X (session S) is labeling row R until time T" (server time, so
the annotators' clocks do not matter). :func:`claim` hands out rows from the caller's
candidates in their order, skipping rows another annotator holds an unexpired claim on;
with an ``overlap`` fraction, up to that share of the rows handed out may be rows that
exactly one other annotator holds, so that two annotators label them (for agreement).
A notebook that dies stops renewing: its claims expire after the lease and the rows go
to others. Claims are taken under the project's row lock, so two annotators asking at
once never get the same free row. Their commits do not wait for the disk (a claim lost in
a server crash only means a row may be labeled twice).
"""

from __future__ import annotations

import math

import psycopg

from .pg_schema import begin_turn

_NOW = "extract(epoch FROM clock_timestamp())"

#: How many other annotators hold each of the given rows (rows none holds are left out).
_HELD = ("SELECT row_index, count(*) FROM patchwork_claims WHERE project=%s "
         "AND annotator <> %s AND row_index = ANY(%s) GROUP BY row_index")


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
    size = max(4 * n, 1000)
    chunks = [candidates[i:i + size] for i in range(0, len(candidates), size)] or [[]]
    try:
        with conn.pipeline():  # one round trip up to the first chunk's holders
            begin_turn(conn, project)
            # a claim is advisory (a lost one only lets two annotators label a row): its
            # commit need not wait for the disk, unlike an annotation's
            conn.execute("SET LOCAL synchronous_commit = off")
            conn.execute(f"DELETE FROM patchwork_claims WHERE project=%s AND expires < {_NOW}",
                         (project,))
            first = conn.execute(_HELD, (project, annotator, chunks[0]))
        chosen = _choose(conn, first, chunks, project, annotator, n, math.floor(overlap * n))
        with conn.pipeline():  # and one more to write the claims and commit
            conn.execute(
                "INSERT INTO patchwork_claims (project, row_index, annotator, session, expires) "
                f"SELECT %s, r, %s, %s, {_NOW} + %s FROM unnest(%s::integer[]) AS r "
                "ON CONFLICT (project, row_index, annotator) DO UPDATE "
                "SET session = excluded.session, expires = excluded.expires",
                (project, annotator, session, lease, chosen),
            )
            conn.execute("COMMIT")
    except BaseException:
        if not (conn.closed or conn.broken):
            conn.execute("ROLLBACK")
        raise
    return chosen


def _choose(conn: psycopg.Connection, first: psycopg.Cursor, chunks: list[list[int]],
            project: str, annotator: str, n: int, shared_budget: int) -> list[int]:
    """Up to ``n`` rows of ``chunks`` in order: those no other annotator holds, and up to
    ``shared_budget`` that exactly one other holds. ``first`` holds the first chunk's
    holders; later chunks are read as needed."""
    chosen: list[int] = []
    for k, part in enumerate(chunks):
        cursor = first if k == 0 else conn.execute(_HELD, (project, annotator, part))
        held = dict(cursor.fetchall())
        for row in part:
            others = held.get(row, 0)
            if others == 0:
                chosen.append(row)
            elif others == 1 and shared_budget > 0:
                chosen.append(row)
                shared_budget -= 1
            if len(chosen) == n:
                return chosen
    return chosen


def release(conn: psycopg.Connection, project: str, session: str,
            rows: list[int] | None = None) -> None:
    """Drop the claims of ``session`` on ``rows`` (all of them when None, as at close): the
    rows go to others at once."""
    if rows is None:
        conn.execute("DELETE FROM patchwork_claims WHERE project=%s AND session=%s",
                     (project, session))
    else:
        conn.execute("DELETE FROM patchwork_claims WHERE project=%s AND session=%s "
                     "AND row_index = ANY(%s)", (project, session, rows))
