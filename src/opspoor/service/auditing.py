"""Writing audit rows off the request path, in batches, without losing them.

A request that only reads (hash, match, list) queues its row and answers at once; a writer thread
appends the queue every ``flush_seconds`` in one transaction (one hash-chain lock for the batch,
not one per request). A request that changes data waits until its row is committed, so a change
is never answered before it is audited. The trade-off, for reads only: if the process is killed
outright (SIGKILL, power loss), the rows of the last ``flush_seconds`` are lost. A normal stop
(SIGTERM, Ctrl-C) flushes the queue; rows that still cannot be written (the store is gone) are
written to the server log as JSON, so they can be re-entered by hand.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from concurrent.futures import Future

from opspoor.service.metrics import AUDIT_FAILURES, AUDIT_PENDING
from opspoor.store import Store
from opspoor.store.audit import AuditEvent, append_audit

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

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="opspoor-audit-writer", daemon=True)
        self._thread.start()

    def submit(self, event: AuditEvent, wait: bool = False) -> Future[None] | None:
        fut: Future[None] | None = Future() if wait else None
        with self._cv:
            self._pending.append((event, fut))
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
        for _, fut in batch:
            if fut is not None and not fut.done():
                fut.set_result(None)
        return True

    def _spill(self, batch: list[tuple[AuditEvent, Future[None] | None]]) -> None:
        with self._cv:
            self._pending = self._pending[len(batch) :]  # _write put them back; they go to the log
        for e, _ in batch:
            log.error(
                "audit row not written: %s",
                json.dumps(
                    {
                        "at": e.at.isoformat(),
                        "token_id": e.token_id,
                        "tenant": e.tenant,
                        "action": e.action,
                        "object": e.object,
                        "result": e.result,
                        "status": e.status,
                    }
                ),
            )

    def close(self) -> None:
        """Write everything queued, then stop."""
        with self._cv:
            self._stopping = True
            self._cv.notify()
        if self._thread is not None:
            self._thread.join(timeout=60)
