"""What one worker holds while it serves: :class:`Service`.

One :class:`Service` per worker process holds the store, the live index follower, the token cache,
the rate limiter, the audit writer and the hashing threads. Routes reach it as
``request.app.state.service`` (see ``routing.service_of``). It lives apart from the application
(:mod:`opspoor.service.app`) so that routes can name it without importing the module that
assembles them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import anyio

from opspoor.intake.sealing import key_from_text
from opspoor.service import heap
from opspoor.service.auditing import AuditWriter
from opspoor.service.auth import TokenCache
from opspoor.service.batching import MatchBatcher
from opspoor.service.limits import RateLimiter
from opspoor.service.live import IndexFollower
from opspoor.service.settings import Settings
from opspoor.service.sharing import SharedSets
from opspoor.service.streams import StreamSessions
from opspoor.store import Store, open_store
from opspoor.store.intake import Lifetimes
from opspoor.store.intake_bundles import BundleIndex


class Service:
    """What one worker holds while it serves."""

    def __init__(self, settings: Settings, *, freeze: bool = False) -> None:
        """``freeze``: tune the garbage collector for serving (see :mod:`opspoor.service.heap`)."""
        self.settings = settings
        self.freeze = freeze
        self.store: Store = open_store(settings.db)
        self.tokens = TokenCache(self.store, settings.token_cache_seconds)
        self.rate = RateLimiter(settings.rate_per_second, settings.rate_burst)
        self.audit = AuditWriter(self.store, settings.audit_flush_seconds)
        self.index = IndexFollower(
            self.store,
            poll_seconds=settings.poll_seconds,
            threads=search_threads(settings),
            on_loaded=heap.freeze_heap if freeze else None,
        )
        self.batcher = MatchBatcher()
        self.shared = SharedSets(self.store, settings.token_cache_seconds)
        self.hashing = ThreadPoolExecutor(
            max_workers=settings.hash_threads, thread_name_prefix="opspoor-hash"
        )
        self.upload_slots = anyio.Semaphore(max(1, settings.upload_slots))
        self.streams = StreamSessions(self.audit, settings.stream_idle_seconds, settings.max_streams)
        self.pid = os.getpid()
        #: the intake's clock (tests set it to reach an expiry)
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.intake_key = key_from_text(settings.intake_key) if settings.intake_key else None
        self.intake_life = Lifetimes(
            settings.intake_open_hours, settings.intake_idle_hours, settings.intake_retention_days
        )
        #: the finished reports' PDQs and video frames, for bundling (caught up on each finish)
        self.intake_bundles = BundleIndex()

    def start(self) -> None:
        if self.freeze:
            heap.tune_collector()
            heap.freeze_heap()
        self.audit.start()
        self.index.start()

    def close(self) -> None:
        self.index.stop()
        self.hashing.shutdown(wait=True, cancel_futures=True)
        self.audit.close()
        self.store.close()


def search_threads(settings: Settings) -> int:
    if settings.search_threads > 0:
        return settings.search_threads
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cpus // max(1, settings.workers))
