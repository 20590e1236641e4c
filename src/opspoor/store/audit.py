"""The audit log: who (token id), tenant, action, object, result and time of every request that reads
or changes data, in a hash chain.

Each row stores ``row_hash = SHA-256(prev_hash + canonical(row))``, where ``prev_hash`` is the row
before's ``row_hash`` (64 zeros for row 1) and ``canonical`` is a fixed JSON array of the row's
fields. Ids are contiguous from 1, given under a lock by :func:`append_audit`, so a deleted row shows
as a gap and an altered row as a hash that no longer follows. :func:`verify_audit` walks the chain
and names the first row that breaks it.

Limits: someone who can write the database can also delete the newest rows, or rewrite the whole
chain consistently. Both are caught only against a head (id and hash) recorded elsewhere earlier:
``verify_audit(anchor=(id, hash))`` checks that row ``id`` still exists with that hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    event: AuditEvent
    prev_hash: str
    row_hash: str

    def to_json(self) -> dict[str, Any]:
        e = self.event
        return {
            "id": self.id,
            "at": e.at.isoformat(),
            "token_id": e.token_id,
            "tenant": e.tenant,
            "action": e.action,
            "object": e.object,
            "result": e.result,
            "status": e.status,
            "row_hash": self.row_hash,
        }


@dataclass(frozen=True, slots=True)
class AuditVerdict:
    rows: int  # rows checked
    last_id: int  # 0 when the log is empty
    last_hash: str
    bad_id: int | None = None  # the first row that is altered or missing
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def canonical(row_id: int, e: AuditEvent) -> str:
    """The row as hashed: a JSON array in a fixed order, the time in UTC to the microsecond."""
    at = _utc(e.at).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps(
        [row_id, at, e.token_id, e.tenant, e.action, e.object, e.result, e.status],
        ensure_ascii=False,
        separators=(",", ":"),
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
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK})
    last = conn.execute(select(AUDIT.c.id, AUDIT.c.row_hash).order_by(AUDIT.c.id.desc()).limit(1)).first()
    row_id, prev = (last.id, last.row_hash) if last else (0, GENESIS)
    rows = []
    for e in events:
        row_id += 1
        at = _utc(e.at)
        ev = AuditEvent(at, e.token_id, e.tenant, e.action, e.object, e.result, e.status)
        h = chain_hash(prev, row_id, ev)
        rows.append(
            {
                "id": row_id,
                "at": at,
                "token_id": e.token_id,
                "tenant": e.tenant,
                "action": e.action,
                "object": e.object,
                "result": e.result,
                "status": e.status,
                "prev_hash": prev,
                "row_hash": h,
            }
        )
        prev = h
    if rows:
        conn.execute(AUDIT.insert(), rows)
    return row_id


def _event(r: Any) -> AuditEvent:
    return AuditEvent(_utc(r.at), r.token_id, r.tenant, r.action, r.object, r.result, r.status)


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
                if anchor is not None and r.id == anchor[0]:
                    if r.row_hash != anchor[1]:
                        return _bad(
                            done, r.id, f"row {r.id} differs from the anchor (the chain was rewritten)"
                        )
                    anchor_seen = True
                prev = r.row_hash
                rows += 1
                expected_id += 1
    if not anchor_seen:
        assert anchor is not None
        return _bad(
            AuditVerdict(rows, expected_id - 1, prev),
            anchor[0],
            f"row {anchor[0]} (the anchor) is missing: the newest rows were deleted",
        )
    return AuditVerdict(rows, expected_id - 1, prev)


def _bad(done: AuditVerdict, bad_id: int, problem: str) -> AuditVerdict:
    return AuditVerdict(done.rows, done.last_id, done.last_hash, bad_id, problem)


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
