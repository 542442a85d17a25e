"""Prebuilt statements and row builders for the service's write path.

Statements are built once so SQLAlchemy reuses their compiled form; the multi-row ones are
text because SQLAlchemy cannot cache a multi-row ``insert().values([...])``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from datetime import datetime
from operator import itemgetter
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from carewall.errors import InputError
from carewall.policy.request import _decode as decode_request
from carewall.service import logentries as le
from carewall.service import tables as t
from carewall.storage.db import driver_errors, placeholder

# Built once: the compiled form is then reused; the SET columns come from the parameters.
_UPDATE_REQUEST = t.requests.update().where(t.requests.c.id == sa.bindparam("rid"))


_UPDATE_APPEAL = t.appeals.update().where(t.appeals.c.id == sa.bindparam("aid"))


_UPDATE_NOTICE = t.notices.update().where(t.notices.c.id == sa.bindparam("nid"))


_LOCK_REQUEST = (
    sa.select(t.requests).where(t.requests.c.id == sa.bindparam("rid")).with_for_update()
)


# A request's appeals in the order lodged (the order they are decided in).
_APPEALS = (
    sa.select(t.appeals)
    .where(t.appeals.c.request_id == sa.bindparam("rid"))
    .order_by(t.appeals.c.id)
)


_INSERT_EVENT = t.events.insert()


_EVENT_COLUMNS = ("request_id", "kind", "time", "actor", "log_index", "detail")


def _values_sql(table: sa.Table, columns: tuple[str, ...], prefixes: list[str]) -> str:
    """``INSERT INTO table (cols) VALUES (:p0col, …), …`` as text.

    SQLAlchemy cannot cache a multi-row ``insert().values([...])`` and recompiles it on
    every call (≈0.8 ms); a text statement is compiled once.
    """
    cols = ", ".join(f'"{c}"' for c in columns)
    rows = ", ".join("(" + ", ".join(f":{p}{c}" for c in columns) + ")" for p in prefixes)
    return f'INSERT INTO "{table.name}" ({cols}) VALUES {rows}'


_REQUEST_COLUMNS = (
    "id",
    "holder",
    "requester",
    "purpose",
    "legal_basis",
    "stage",
    "outcome",
    "document",
    "decision",
    "received_at",
    "decided_at",
    "subjects_root",
)


_SUBJECT_COLUMNS = (
    "request_id",
    "position",
    "ref",
    "is_child",
    "is_victim_or_witness",
    "consent",
    "contact",
    "commitment",
)


# A row's values in its columns' order, as a tuple (itemgetter of two or more keys): what
# ``tuple(row[c] for c in columns)`` gives, in C.
_REQUEST_VALUES: Final = itemgetter(*_REQUEST_COLUMNS)
_SUBJECT_VALUES: Final = itemgetter(*_SUBJECT_COLUMNS)
_EVENT_VALUES: Final = itemgetter(*_EVENT_COLUMNS)


@functools.cache
def _request_with_subjects(n: int) -> sa.TextClause:
    """One PostgreSQL statement inserting a request and its ``n`` subjects.

    Each statement is a network round trip on PostgreSQL; the subjects' foreign key is
    checked at the end of the statement, when the request row is already there.
    """
    request = _values_sql(t.requests, _REQUEST_COLUMNS, ["r_"])
    subjects = _values_sql(t.subjects, _SUBJECT_COLUMNS, [f"s{i}_" for i in range(n)])
    return sa.text(f"WITH new_request AS ({request}) {subjects}")


@functools.cache
def _subjects_sql(p: str) -> str:
    cols = ", ".join(f'"{c}"' for c in _SUBJECT_COLUMNS)
    marks = ", ".join([p] * len(_SUBJECT_COLUMNS))
    return f'INSERT INTO "{t.subjects.name}" ({cols}) VALUES ({marks})'


# Up to this many subjects, a request's rows go in one statement (pipelined with the rest of
# its transaction on PostgreSQL); beyond it, PostgreSQL takes them by COPY.
SMALL_REQUEST = 32


def _insert_request(
    conn: Connection, request: dict[str, Any], subjects: list[dict[str, Any]]
) -> None:
    # SQLite runs in-process (a statement costs microseconds) and has no INSERT in WITH.
    if conn.dialect.name != "postgresql" or not 0 < len(subjects) <= SMALL_REQUEST:
        conn.execute(t.requests.insert(), request)
        if not subjects:
            return
        rows = list(map(_SUBJECT_VALUES, subjects))
        raw = conn.connection.driver_connection
        if conn.dialect.name == "postgresql" and raw is not None and not raw.pgconn.pipeline_status:
            # COPY: one stream instead of a statement per row (a pipeline cannot COPY).
            cols = ", ".join(f'"{c}"' for c in _SUBJECT_COLUMNS)
            with (
                raw.cursor() as cur,
                cur.copy(f'COPY "{t.subjects.name}" ({cols}) FROM STDIN') as cp,
            ):
                for values in rows:
                    cp.write_row(values)
            return
        # Plain tuples straight to the driver's executemany: SQLAlchemy's per-row
        # parameter processing costs ~20 µs a row, seconds for 100,000 people.
        conn.exec_driver_sql(_subjects_sql(placeholder(conn)), rows)
        return
    params = {"r_" + k: v for k, v in request.items()}
    for i, row in enumerate(subjects):
        params.update({f"s{i}_{k}": v for k, v in row.items()})
    conn.execute(_request_with_subjects(len(subjects)), params)


@functools.cache
def _insert_sql(table: str, columns: tuple[str, ...], p: str) -> str:
    cols = ", ".join(f'"{c}"' for c in columns)
    return f'INSERT INTO "{table}" ({cols}) VALUES ({", ".join([p] * len(columns))})'


def insert_batch(
    conn: Connection,
    requests: list[dict[str, Any]],
    subjects: list[dict[str, Any]],
    events: list[dict[str, Any]],
) -> None:
    """Several submits' rows: one executemany per table, plain tuples to the driver (on
    PostgreSQL inside a pipeline, one round trip for all), nothing compiled per row."""
    p = placeholder(conn)
    # The driver's own executemany, the call exec_driver_sql makes, without SQLAlchemy's
    # layer around it: that layer costs more than SQLite's in-process INSERT, and more than
    # the statement's share of a PostgreSQL pipeline. Its errors are still SQLAlchemy's
    # (storage.db.driver_errors); in a pipeline the server's come at its end, as before
    # (storage.db.pipelined).
    raw = conn.connection.driver_connection if conn.dialect.name == "sqlite" else None
    for table, columns, values_of, rows in (
        (t.requests.name, _REQUEST_COLUMNS, _REQUEST_VALUES, requests),
        (t.subjects.name, _SUBJECT_COLUMNS, _SUBJECT_VALUES, subjects),
        (t.events.name, _EVENT_COLUMNS, _EVENT_VALUES, events),
    ):
        if rows:
            sql, values = _insert_sql(table, columns, p), list(map(values_of, rows))
            with driver_errors(conn, sql):
                if raw is not None:
                    raw.executemany(sql, values)
                else:
                    cur = conn.connection.cursor()
                    try:
                        cur.executemany(sql, values)
                    finally:
                        cur.close()


def _event_row(
    request_id: str,
    kind: str,
    time: str,
    actor: str | None,
    log_index: int | None,
    detail: Mapping[str, Any] | str | None = None,
) -> dict[str, Any]:
    """An event's row; ``detail`` is stored as JSON (a str is taken as already encoded)."""
    if not isinstance(detail, str):
        detail = json.dumps(detail) if detail else None
    return {
        "request_id": request_id,
        "kind": kind,
        "time": time,
        "actor": actor,
        "log_index": log_index,
        "detail": detail,
    }


def _received_at(value: Any, default: str) -> str:
    if not value:
        return default
    try:
        return le.rfc3339(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        return default


def _split_contacts(
    doc: bytes | str | Mapping[str, Any],
) -> tuple[bytes | str | Mapping[str, Any], dict[int, str]]:
    """Take each subject's optional ``contact`` (where to send their notice) out of the
    document: it is the holder's record, not part of the request the policy judges."""
    data: Any = doc
    if isinstance(doc, bytes | str):
        if isinstance(doc, str) and '"contact"' not in doc:
            return doc, {}
        if isinstance(doc, bytes) and b'"contact"' not in doc:
            return doc, {}
        data = decode_request(doc)  # the parser's own decoder: same limits, same errors
    if not isinstance(data, Mapping) or not isinstance(data.get("subjects"), list):
        return doc, {}
    contacts: dict[int, str] = {}
    subjects = []
    taken = False  # whether any subject had a contact to take out
    for i, s in enumerate(data["subjects"]):
        if isinstance(s, Mapping) and "contact" in s:
            c = s["contact"]
            if c is not None and not isinstance(c, str):
                raise InputError("must be a string", field=f"subjects[{i}].contact")
            if c:
                contacts[i] = c
            s = {k: v for k, v in s.items() if k != "contact"}
            taken = True
        subjects.append(s)
    if not taken and data is not doc:
        return data, contacts  # decoded here, and nothing taken out: no copy needed
    return {**data, "subjects": subjects}, contacts
