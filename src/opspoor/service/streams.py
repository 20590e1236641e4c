"""The stream sessions one worker holds: a platform opens one, pushes a live stream's frames to it,
gets alerts back on the same call, and closes it (``routes_streams``).

A session is a :class:`~opspoor.stream.StreamWatcher` (the window over the last n sampled frames'
matches) with its tenant and times; nothing of the stream is kept but that window's matches. A
session that has had no call for ``Settings.stream_idle_seconds`` expires: it is dropped at the
next stream call in this worker, and an audit row (``stream-expire``) records it. Sessions live in
the worker that opened them (a WebSocket keeps its connection there; HTTP pushes need a worker per
process or sticky routing: docs/live.md). A session's id begins with its worker's tag (random per
worker process), so a push that reaches another worker is answered 421 (misdirected: route it to
the worker that opened the session), never taken for an unknown session nor silently lost.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from opspoor.service.auditing import AuditWriter
from opspoor.service.auth import Principal
from opspoor.service.problems import Problem
from opspoor.store.audit import AuditEvent
from opspoor.stream import StreamWatcher


@dataclass(slots=True)
class StreamSession:
    id: str
    principal: Principal
    watcher: StreamWatcher
    opened: float = field(default_factory=time.monotonic)
    last_seen: float = field(default_factory=time.monotonic)
    #: pushes to one session are taken in order (its window is one sequence of frames)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def clock(self) -> float:
        """Seconds since the session was opened: the stream time of a frame pushed without one."""
        return time.monotonic() - self.opened

    def summary(self) -> dict[str, object]:
        w = self.watcher
        return {
            "stream": self.id,
            "name": w.name,
            "frames": w.frames,
            "matched": w.matched,
            "alerts": w.alerts,
            "k": w.window.k,
            "n": w.window.n,
        }


class StreamSessions:
    """This worker's open stream sessions, by id."""

    def __init__(self, audit: AuditWriter, idle_seconds: float, limit: int) -> None:
        #: this worker's tag, the first part of every session id it opens (``tag.random``)
        self.worker = secrets.token_hex(4)
        self.audit = audit
        self.idle_seconds = idle_seconds
        self.limit = limit
        self._open: dict[str, StreamSession] = {}

    def __len__(self) -> int:
        return len(self._open)

    def open(self, principal: Principal, name: str | None, k: int, n: int) -> StreamSession:
        self.expire()
        if len(self._open) >= self.limit:
            raise Problem(
                503,
                f"this worker holds its limit of {self.limit} open streams; close one or retry shortly",
                slug="too-many-streams",
                headers={"Retry-After": "5"},
            )
        sid = f"{self.worker}.{secrets.token_urlsafe(16)}"
        session = StreamSession(sid, principal, StreamWatcher(name or sid, k=k, n=n))
        self._open[sid] = session
        return session

    def get(self, sid: str, principal: Principal) -> StreamSession:
        """The caller's tenant's open session ``sid`` (404 for any other: expired, closed, unknown,
        or another tenant's), its quiet time reset."""
        self.expire()
        session = self._open.get(sid)
        tag = sid.split(".", 1)[0] if "." in sid else None
        if session is None and tag is not None and tag != self.worker:
            raise Problem(
                421,
                f"stream {sid!r} was opened in another worker of this service (worker {tag}; this is "
                f"worker {self.worker}): its frames must reach that worker. Route /v1/streams/{{id}} "
                "calls by the id's first part (sticky routing), run one worker, or use the WebSocket",
                slug="stream-in-another-worker",
            )
        if session is None or session.principal.tenant != principal.tenant:
            raise Problem(
                404,
                f"no open stream {sid!r}: it was closed, or expired after {self.idle_seconds:g} s "
                "without a call",
                slug="no-such-stream",
            )
        session.last_seen = time.monotonic()
        return session

    def close(self, sid: str, principal: Principal) -> StreamSession:
        session = self.get(sid, principal)
        del self._open[sid]
        return session

    def expire_now(self, session: StreamSession) -> None:
        """Expire ``session`` now (a WebSocket that went quiet), with its audit row."""
        session.last_seen = time.monotonic() - self.idle_seconds - 1
        self.expire()

    def expire(self) -> list[StreamSession]:
        """Drop the sessions quiet for longer than ``idle_seconds``; each gets an audit row."""
        now = time.monotonic()
        gone = [s for s in self._open.values() if now - s.last_seen > self.idle_seconds]
        for s in gone:
            del self._open[s.id]
            quiet_since = datetime.now(UTC) - timedelta(seconds=now - s.last_seen)
            p = s.principal
            at = quiet_since + timedelta(seconds=self.idle_seconds)
            self.audit.submit(
                AuditEvent(at, p.token_id, p.tenant, "stream-expire", f"stream:{s.id}", "ok", 200)
            )
        return gone
