"""What a live stream's matches add up to: the frames that matched, and the alert they raise.

An alert goes out when ``k`` of the last ``n`` sampled frames match the same known entry (an image
PDQ, or a frame of a known video). One alert per entry and run: the entry is re-armed once it has
not matched for ``n`` sampled frames, so a clip played twice raises two alerts, a long one one.
The window holds only what matched (entry ids, times, distances, the frame's PDQ), never pixels.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opspoor.hashsets.model import Category

#: k of the last n sampled frames (the defaults: 3 of 5, about 3 s of a clip at one frame a second)
DEFAULT_K = 3
DEFAULT_N = 5


@dataclass(frozen=True, slots=True)
class FrameHit:
    """One sampled frame that matched one known entry."""

    stream_time: float  # seconds from the start of the stream
    distance: int  # Hamming distance of the frame's PDQ (or its query variant) to the known hash
    signal: str  # pdq (a known image) | vpdq (a frame of a known video)
    pdq: str  # the frame's own PDQ (what ``--keep`` may store)
    method: str | None = None  # the robust query variant that hit (``border``, ...), None: plain PDQ

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "stream_time": round(self.stream_time, 3),
            "distance": self.distance,
            "signal": self.signal,
        }
        if self.method:
            out["method"] = self.method
        return out


@dataclass(frozen=True, slots=True)
class KnownEntry:
    """The known entry a frame matched: what an alert names."""

    entry_id: int
    hashset: str
    external_id: str | None
    category: Category | None


@dataclass(slots=True)
class Alert:
    """k of the last n sampled frames of ``stream`` matched ``entry``."""

    stream: str
    entry: KnownEntry
    frames: list[FrameHit]
    k: int
    n: int
    #: ``time.monotonic()`` when the frame that completed the alert was decoded (or received)
    decoded_at: float | None = None
    #: seconds from then to the alert written (``mark_written``)
    latency: float | None = None
    raised_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))

    def mark_written(self) -> None:
        """Take the frame-to-alert latency now (just before the alert is written or sent)."""
        if self.decoded_at is not None:
            self.latency = time.monotonic() - self.decoded_at

    def to_json(self) -> dict[str, Any]:
        e = self.entry
        out: dict[str, Any] = {
            "alert": "known-material",
            "stream": self.stream,
            "hashset": e.hashset,
            "entry_id": e.entry_id,
            "external_id": e.external_id,
            "category": {"scheme": e.category.scheme, "code": e.category.code} if e.category else None,
            "stream_time": round(self.frames[-1].stream_time, 3),
            "frames": [f.to_json() for f in self.frames],
            "rule": {"k": self.k, "n": self.n},
            "raised_at": self.raised_at,
        }
        if self.latency is not None:
            out["latency_ms"] = round(1000 * self.latency, 1)
        return out


class AlertWindow:
    """The last ``n`` sampled frames' hits per entry; ``push`` answers the entries that now alert."""

    def __init__(self, k: int = DEFAULT_K, n: int = DEFAULT_N) -> None:
        if not 1 <= k <= n:
            raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
        self.k, self.n = k, n
        self._recent: deque[dict[int, FrameHit]] = deque(maxlen=n)
        self._alerted: set[int] = set()  # entries alerted and still matching within the window

    def recent_methods(self) -> frozenset[str]:
        """The robust query hashes (``method``) that matched within the window (not the plain PDQ)."""
        return frozenset(h.method for frame in self._recent for h in frame.values() if h.method)

    def push(self, hits: dict[int, FrameHit]) -> list[tuple[int, list[FrameHit]]]:
        """One sampled frame's hits (entry id → its best hit; empty for a frame that matched
        nothing). Returns (entry id, its hits in the window) for each entry that alerts now."""
        self._recent.append(hits)
        seen = {e for frame in self._recent for e in frame}
        self._alerted &= seen  # re-armed: not matched for n frames
        out = []
        for entry in hits:
            if entry in self._alerted:
                continue
            frames = [frame[entry] for frame in self._recent if entry in frame]
            if len(frames) >= self.k:
                self._alerted.add(entry)
                out.append((entry, frames))
        return out
