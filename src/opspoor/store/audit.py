"""The audit log: who (token id), tenant, action, object, result and time of every request that reads
or changes data, in a hash chain.

Each row stores ``row_hash = SHA-256(prev_hash + canonical(row))``, where ``prev_hash`` is the row
before's ``row_hash`` (64 zeros for row 1) and ``canonical`` is a fixed JSON array of the row's
fields. Ids are contiguous from 1, given under a lock by :func:`append_audit`, so a deleted row shows
as a gap and an altered row as a hash that no longer follows. :func:`verify_audit` walks the chain
and names the first row that breaks it.

Each service worker's audit writer also numbers its rows: ``writer`` (an id drawn when the writer
starts) and ``seq`` (1, 2, 3, ... in the order the worker queued them). A row the worker queued but
never wrote (lost with the process, or dropped) leaves a hole in its writer's numbers, which
:func:`verify_audit` reports even though the ids around it are contiguous. A writer that stops
normally writes a last row (action ``audit.stop``) whose ``object`` is its row count, so rows cut off
the end of a writer that stopped are caught too; writers without that row (still running, or killed)
are listed by the verdict.

Text the database cannot hold (a NUL character, which PostgreSQL's ``text`` refuses, or a lone
surrogate, which is not UTF-8) is escaped (``\\x00``, ``\\udcxx``) by :func:`storable` before a row
is hashed and written, so no request can make a row unwritable. A backslash itself is written
``\\\\``, so an escape never reads the same as text that looked like one. The hash covers the row
as stored, so rows written before backslashes were escaped still verify.

Limits: someone who can write the database can also delete the newest rows, or rewrite the whole
chain consistently. Both are caught only against a head (id and hash) recorded elsewhere earlier:
``verify_audit(anchor=(id, hash))`` checks that row ``id`` still exists with that hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, select, text

from opspoor.store.db import Store
from opspoor.store.models_service import AuditRow

AUDIT = cast(Table, AuditRow.__table__)
GENESIS = "0" * 64
#: advisory lock key that serialises appends on PostgreSQL ("audit" in ASCII)
AUDIT_LOCK = 0x6175646974


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What one request did. ``result``: ok | denied | rejected | error."""

    at: datetime
    token_id: int | None
    tenant: str | None
    action: str
    object: str | None
    result: str
    status: int
    writer: str | None = None  # the service worker's audit writer (None: written by other means)
    seq: int | None = None  # the row's number among that writer's rows, from 1


#: an event's fields, the one list of them: the order a row's hash covers them in (after the row's
#: id), the audit table's columns, the JSON of a row; the writer's numbering (the last two) is hashed
#: only in rows that have it, so rows written before it existed keep their hash
EVENT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(AuditEvent))
NUMBERING = ("writer", "seq")


def event_values(e: AuditEvent) -> dict[str, Any]:
    """The event's fields by name, in :data:`EVENT_FIELDS` order."""
    return {name: getattr(e, name) for name in EVENT_FIELDS}


def event_json(e: AuditEvent) -> dict[str, Any]:
    """The event as JSON: its fields, the time in ISO 8601."""
    return {**event_values(e), "at": e.at.isoformat()}


#: the action of the last row a writer writes when it stops normally; its object is its row count
STOP_ACTION = "audit.stop"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    event: AuditEvent
    prev_hash: str
    row_hash: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, **event_json(self.event), "row_hash": self.row_hash}


@dataclass(frozen=True, slots=True)
class AuditVerdict:
    rows: int  # rows checked
    last_id: int  # 0 when the log is empty
    last_hash: str
    bad_id: int | None = None  # the first row that is altered or missing
    problem: str | None = None
    #: writers whose last row is not their ``audit.stop`` row: still running, or killed (their
    #: newest rows, queued but not yet written, may be missing)
    unstopped: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.problem is None


def canonical(row_id: int, e: AuditEvent) -> str:
    """The row as hashed: a JSON array in a fixed order, the time in UTC to the microsecond (writer
    and number at the end, for rows that have them: rows written before they existed keep their hash)."""
    values = event_values(e)
    values["at"] = _utc(e.at).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if e.writer is None:
        for name in NUMBERING:
            del values[name]
    return json.dumps([row_id, *values.values()], ensure_ascii=False, separators=(",", ":"))


def storable(value: str | None) -> str | None:
    """``value`` as every store can hold it: NUL (refused by PostgreSQL text) and lone surrogates
    (not UTF-8) written as backslash escapes, a backslash as two; other text unchanged."""
    if value is None:
        return None
    if "\\" in value:  # first, so that a literal "\x00" and a NUL stay apart
        value = value.replace("\\", "\\\\")
    if "\x00" in value:
        value = value.replace("\x00", "\\x00")
    if value.isascii():  # the usual case: nothing more to check
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def storable_prefix(value: str | None, size: int) -> str | None:
    """The longest start of ``value`` whose :func:`storable` form has at most ``size`` characters
    (for a column of that size; the row is escaped once, when it is written)."""
    if value is None:
        return None
    cut = value[:size]
    while len(storable(cut) or "") > size:
        cut = cut[: -max(1, (len(storable(cut) or "") - size) // 6)]
    return cut


def storable_event(e: AuditEvent) -> AuditEvent:
    """The event with its text made :func:`storable` and its time in UTC."""
    return replace(
        e,
        at=_utc(e.at),
        tenant=storable(e.tenant),
        action=storable(e.action) or "",
        object=storable(e.object),
        result=storable(e.result) or "",
        writer=storable(e.writer),
    )


def chain_hash(prev_hash: str, row_id: int, e: AuditEvent) -> str:
    return hashlib.sha256((prev_hash + canonical(row_id, e)).encode("utf-8")).hexdigest()


def append_audit(store: Store, events: Sequence[AuditEvent]) -> int:
    """Append events in one transaction, chained after the newest row; returns the last id."""
    with store.write() as conn:
        return append_audit_conn(conn, events)


def append_audit_conn(conn: Connection, events: Sequence[AuditEvent]) -> int:
    """:func:`append_audit` inside the caller's write transaction."""
    if conn.dialect.name != "sqlite":  # SQLite's write transaction already excludes other writers
        conn.execute(_LOCK, {"k": AUDIT_LOCK})
    last = conn.execute(_LAST).first()
    row_id, prev = (last.id, last.row_hash) if last else (0, GENESIS)
    rows = []
    for e in events:
        row_id += 1
        ev = storable_event(e)
        h = chain_hash(prev, row_id, ev)
        rows.append({"id": row_id, **event_values(ev), "prev_hash": prev, "row_hash": h})
        prev = h
    if rows:
        conn.execute(AUDIT.insert(), rows)
    return row_id


# built once: every batch of the audit writer runs them (SQLAlchemy reuses their cache keys)
_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_LAST = select(AUDIT.c.id, AUDIT.c.row_hash).order_by(AUDIT.c.id.desc()).limit(1)


def _event(r: Any) -> AuditEvent:
    return replace(AuditEvent(**{name: getattr(r, name) for name in EVENT_FIELDS}), at=_utc(r.at))


def list_audit(
    store: Store, *, tenant: str | None = None, after: int = 0, limit: int = 100
) -> list[AuditRecord]:
    """Rows with id > ``after``, oldest first (one tenant's, when given)."""
    q = select(AUDIT).where(AUDIT.c.id > after).order_by(AUDIT.c.id).limit(limit)
    if tenant is not None:
        q = q.where(AUDIT.c.tenant == tenant)
    with store.read() as conn:
        return [AuditRecord(r.id, _event(r), r.prev_hash, r.row_hash) for r in conn.execute(q)]


def verify_audit(store: Store, *, anchor: tuple[int, str] | None = None, chunk: int = 10_000) -> AuditVerdict:
    """Walk the chain from row 1; the verdict names the first altered or missing row.

    ``anchor`` (id, row hash), noted from an earlier verification, also catches the newest rows
    being deleted or the whole chain being rewritten.
    """
    expected_id, prev, rows = 1, GENESIS, 0
    anchor_seen = anchor is None
    last_seq: dict[str, int] = {}  # writer -> the number of its newest row so far
    stopped: set[str] = set()
    with store.read() as conn:
        while True:
            part = conn.execute(
                select(AUDIT).where(AUDIT.c.id >= expected_id).order_by(AUDIT.c.id).limit(chunk)
            ).all()
            if not part:
                break
            for r in part:
                done = AuditVerdict(rows, expected_id - 1, prev)
                if r.id != expected_id:
                    gap = (
                        f"row {expected_id} is"
                        if r.id == expected_id + 1
                        else f"rows {expected_id}-{r.id - 1} are"
                    )
                    return _bad(done, expected_id, f"{gap} missing (deleted)")
                if r.prev_hash != prev:
                    return _bad(done, r.id, f"row {r.id} does not follow row {r.id - 1} (prev_hash differs)")
                if r.row_hash != chain_hash(prev, r.id, _event(r)):
                    return _bad(done, r.id, f"row {r.id} is altered (its content no longer matches its hash)")
                if r.writer is not None:
                    hole = _writer_hole(r, last_seq, stopped)
                    if hole is not None:
                        return _bad(done, r.id, hole)
                if anchor is not None and r.id == anchor[0]:
                    if r.row_hash != anchor[1]:
                        return _bad(
                            done, r.id, f"row {r.id} differs from the anchor (the chain was rewritten)"
                        )
                    anchor_seen = True
                prev = r.row_hash
                rows += 1
                expected_id += 1
    unstopped = tuple(w for w in last_seq if w not in stopped)
    if not anchor_seen:
        assert anchor is not None
        return _bad(
            AuditVerdict(rows, expected_id - 1, prev, unstopped=unstopped),
            anchor[0],
            f"row {anchor[0]} (the anchor) is missing: the newest rows were deleted",
        )
    return AuditVerdict(rows, expected_id - 1, prev, unstopped=unstopped)


def _writer_hole(r: Any, last_seq: dict[str, int], stopped: set[str]) -> str | None:
    """What is wrong with row ``r``'s place among its writer's rows, if anything."""
    expected = last_seq.get(r.writer, 0) + 1
    if r.writer in stopped:
        return f"row {r.id} follows the stop row of writer {r.writer}"
    if r.seq != expected:
        if r.seq is None or r.seq < expected:
            return f"row {r.id} repeats or reorders writer {r.writer}'s numbers (number {r.seq})"
        lost = f"number {expected}" if r.seq == expected + 1 else f"numbers {expected}-{r.seq - 1}"
        return f"writer {r.writer}'s rows {lost} are missing (queued but never written), before row {r.id}"
    last_seq[r.writer] = r.seq
    if r.action == STOP_ACTION:
        if r.object != str(r.seq - 1):
            return f"row {r.id}: writer {r.writer} stopped after {r.object} rows, but {r.seq - 1} are here"
        stopped.add(r.writer)
    return None


def _bad(done: AuditVerdict, bad_id: int, problem: str) -> AuditVerdict:
    return AuditVerdict(done.rows, done.last_id, done.last_hash, bad_id, problem, done.unstopped)


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
