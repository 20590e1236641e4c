"""Writing audit rows off the request path, in batches, without losing them.

A request that only reads (hash, match, list) queues its row and answers at once; a writer thread
appends the queue every ``flush_seconds`` in one transaction (one hash-chain lock for the batch,
not one per request). A request that changes data waits until its row is committed, so a change
is never answered before it is audited. The trade-off, for reads only: if the process is killed
outright (SIGKILL, power loss), the rows of the last ``flush_seconds`` are lost. A normal stop
(SIGTERM, Ctrl-C) flushes the queue; rows that still cannot be written (the store is gone) are
written to the server log as JSON, so they can be re-entered by hand.

Nothing in a row can wedge the writer: text the database cannot hold is escaped by the store
(``store.audit.storable``), and when a batch still fails while the store answers, its rows are
written one by one and a row the store refuses for its data (too long, NUL, encoding, a
constraint) is written as a placeholder (result ``unwritable``, the reason as its object) in its
place, so the rows behind it are not held up. An outage (the store does not answer) or a passing
fault (a lock, a serialization failure, a lost connection) keeps the rows queued for the next
attempt, intact.

Each writer numbers its rows (``writer``, ``seq``) and ends with an ``audit.stop`` row when it stops
normally, so ``opspoor audit verify`` finds a row that was queued but never written.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import uuid
from concurrent.futures import Future
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import exc as sa_exc

from opspoor.service.metrics import AUDIT_FAILURES, AUDIT_PENDING
from opspoor.store import Store
from opspoor.store.audit import STOP_ACTION, AuditEvent, append_audit, event_json, storable_prefix

log = logging.getLogger("opspoor.service.audit")
MAX_BATCH = 2000


class AuditWriter:
    def __init__(self, store: Store, flush_seconds: float = 0.2) -> None:
        self.store = store
        self.flush_seconds = flush_seconds
        self._pending: list[tuple[AuditEvent, Future[None] | None]] = []
        self._cv = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.writer = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"  # this writer's rows, in verify's words
        self._seq = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="opspoor-audit-writer", daemon=True)
        self._thread.start()

    def submit(self, event: AuditEvent, wait: bool = False) -> Future[None] | None:
        fut: Future[None] | None = Future() if wait else None
        with self._cv:
            self._seq += 1
            self._pending.append((replace(event, writer=self.writer, seq=self._seq), fut))
            # the first row wakes the writer, which then gathers rows for ``flush_seconds``
            if wait or len(self._pending) in (1, MAX_BATCH):
                self._cv.notify()
        return fut

    async def record(self, event: AuditEvent, wait: bool = False) -> None:
        """Queue the row; with ``wait``, return once it is committed (raises if it could not be)."""
        fut = self.submit(event, wait)
        if fut is not None:
            await asyncio.wrap_future(fut)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._pending and not self._stopping:
                    self._cv.wait()
                if not self._stopping and not any(f for _, f in self._pending):
                    self._cv.wait(self.flush_seconds)  # gather reads; a write wakes us early
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                stopping = self._stopping
            if not batch:
                if stopping:
                    return
                continue
            AUDIT_PENDING.set(len(batch) + len(self._pending))
            if not self._write(batch) and stopping:
                self._spill(batch)
            AUDIT_PENDING.set(len(self._pending))

    def _write(self, batch: list[tuple[AuditEvent, Future[None] | None]]) -> bool:
        try:
            append_audit(self.store, [e for e, _ in batch])
        except Exception as exc:
            AUDIT_FAILURES.inc()
            if not (self._store_answers() and self._write_one_by_one(batch)):
                return self._keep_for_retry(batch, exc)
        for _, fut in batch:
            if fut is not None and not fut.done():
                fut.set_result(None)
        return True

    def _store_answers(self) -> bool:
        try:
            with self.store.read() as conn:
                conn.exec_driver_sql("SELECT 1")
        except Exception:
            return False
        return True

    def _write_one_by_one(self, batch: list[tuple[AuditEvent, Future[None] | None]]) -> bool:
        """The store answers but refused the batch: write each row alone, and a row it refuses as a
        placeholder saying so. False when even that fails (then the store is in trouble after all)."""
        for i, (event, _) in enumerate(batch):
            try:
                append_audit(self.store, [event])
            except Exception as exc:
                if not refused_row(exc):  # locked, serialization failure, connection lost: try again later
                    self._keep_for_retry(batch[i:], exc)  # the rows before are written
                    del batch[i:]
                    return True
                log.error("audit row %s of %s not writable (%s): kept as such", event.seq, event.action, exc)
                try:
                    append_audit(self.store, [unwritable(event, exc)])
                except Exception:
                    self._keep_for_retry(batch[i:], exc)  # the rows before are written
                    del batch[i:]
                    return True
        return True

    def _keep_for_retry(self, batch: list[tuple[AuditEvent, Future[None] | None]], exc: Exception) -> bool:
        log.error("cannot write %d audit rows (will retry): %s", len(batch), exc)
        for _, fut in batch:
            if fut is not None and not fut.done():
                fut.set_exception(exc)
        with self._cv:  # keep them, in order, for the next attempt
            self._pending[:0] = [(e, None) for e, _ in batch]
            stopping = self._stopping
        if not stopping:
            threading.Event().wait(1.0)
        return False

    def _spill(self, batch: list[tuple[AuditEvent, Future[None] | None]]) -> None:
        with self._cv:
            self._pending = self._pending[len(batch) :]  # _write put them back; they go to the log
        for e, _ in batch:
            log.error("audit row not written: %s", json.dumps(event_json(e)))

    def close(self) -> None:
        """Write everything queued, then stop."""
        with self._cv:
            self._seq += 1  # the stop row: verify then knows no row of this writer is missing at the end
            stop = AuditEvent(datetime.now(UTC), None, None, STOP_ACTION, str(self._seq - 1), "ok", 0)
            self._pending.append((replace(stop, writer=self.writer, seq=self._seq), None))
            self._stopping = True
            self._cv.notify()
        if self._thread is not None:
            self._thread.join(timeout=60)


def refused_row(exc: BaseException) -> bool:
    """Whether the store refused the row itself (its data: a value too long, NUL, bad encoding, a
    constraint), as opposed to a passing fault (a lock, a serialization failure, a lost connection)
    after which the same row is written intact."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, sa_exc.DataError | sa_exc.IntegrityError | UnicodeError | ValueError):
            return True
        orig = getattr(e, "orig", None)
        e = orig if isinstance(orig, BaseException) else (e.__cause__ or e.__context__)
    return False


def unwritable(event: AuditEvent, exc: BaseException) -> AuditEvent:
    """The placeholder of a row the store refused: who, when, which action and status, and why the
    rest could not be kept (in place of the object)."""
    reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__])[0]
    return replace(  # raw text cut to fit once escaped: append_audit escapes it
        event,
        tenant=storable_prefix(event.tenant, 64) or None,
        action=storable_prefix(event.action, 64) or "",
        object=storable_prefix(f"row not writable: {reason}", 500),
        result="unwritable",
    )
