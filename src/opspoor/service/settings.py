"""The service's settings. ``opspoor serve`` passes them to its workers through the environment
(``OPSPOOR_SERVICE_*``), since uvicorn starts each worker from an import string."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any

from opspoor.errors import SettingsError

ENV_PREFIX = "OPSPOOR_SERVICE_"


@dataclass(frozen=True, slots=True)
class Settings:
    db: str | None = None  # store URL; None: $OPSPOOR_DB or the default SQLite file
    #: uploads to /v1/hash and /v1/match (413 above)
    max_upload_bytes: int = 100 * 1024 * 1024
    #: hash-set files to /v1/hashsets/{name}/import, which are streamed, never held whole
    max_import_bytes: int = 4 * 1024 * 1024 * 1024
    #: JSON request bodies
    max_json_bytes: int = 16 * 1024 * 1024
    #: decoding and hashing one upload (images and video); 422 when it takes longer
    decode_seconds: float = 30.0
    #: memory one upload's decode may take, estimated from its header (413 above); images declaring
    #: more pixels than ``media.limits.MAX_PIXELS`` are refused too, as on the command line
    decode_memory_mb: int = 256
    #: images (and video frames) declaring more pixels than this are refused before decoding; never
    #: above ``media.limits.MAX_PIXELS`` (a larger value is held to it)
    max_pixels: int = 100_000_000
    #: requests per second per token, in each worker (0: no limit); ``rate_burst`` may come at once
    rate_per_second: float = 100.0
    rate_burst: int = 200
    #: a token lookup is cached this long per worker: a revoked token is refused within it
    token_cache_seconds: float = 5.0
    #: how often each worker reads the change log
    poll_seconds: float = 0.5
    #: /v1/ready answers 503 when the change log was last read longer ago than this
    fresh_seconds: float = 5.0
    #: threads one index search may use in a worker (0: the CPUs divided by ``workers``)
    search_threads: int = 0
    workers: int = 1
    #: threads hashing uploads, and uploads read into memory at once, per worker
    hash_threads: int = 2
    upload_slots: int = 8
    #: a JSON ``POST /v1/match`` is answered before FastAPI's layers (``service.fastpath``); off, the
    #: route answers it, with the same status, body, audit row and metrics (slower)
    fast_path: bool = True
    #: audit rows of reads are written in batches this often (writes wait for theirs)
    audit_flush_seconds: float = 0.2
    #: hotline intake: the AES-256-GCM key that seals uploaded files (64 hex characters or base64 of
    #: 32 bytes); without one the intake routes answer 503, never store a file in the clear
    intake_key: str | None = None
    #: an unfinished report is deleted this long after opening or after its last change, whichever
    #: is later; a finished one after its retention (one year, as US law asks of platforms)
    intake_open_hours: float = 24.0
    intake_idle_hours: float = 1.0
    intake_retention_days: float = 365.0
    #: reports join one bundle when they share a file: the same MD5, or PDQs this close
    intake_bundle_distance: int = 31
    #: a stream session without a call for this long expires (``service.streams``)
    stream_idle_seconds: float = 60.0
    #: stream sessions one worker holds open at once (503 above)
    max_streams: int = 1000
    #: the review app (``/review``): the category scheme of the digit keys, and the reveal time a
    #: day after which the pages suggest a break (minutes)
    review_scheme: str = "us-cat"
    review_break_minutes: float = 20.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        s = cls()
        changes: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            default = getattr(s, f.name)
            if f.name in ("db", "intake_key"):
                changes[f.name] = raw or None
            elif isinstance(default, str):
                changes[f.name] = raw
            elif isinstance(default, bool):
                changes[f.name] = raw.lower() in ("1", "true", "yes")
            else:
                kind = int if isinstance(default, int) else float
                try:
                    changes[f.name] = kind(raw)
                except ValueError:
                    what = "a whole number" if kind is int else "a number"
                    raise SettingsError(f"not {what}: {raw!r}", where=ENV_PREFIX + f.name.upper()) from None
        return replace(s, **changes)

    def to_env(self) -> dict[str, str]:
        return {
            ENV_PREFIX + f.name.upper(): "" if getattr(self, f.name) is None else str(getattr(self, f.name))
            for f in fields(self)
        }
