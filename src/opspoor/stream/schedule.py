"""Sampled frames waiting to be hashed, from one stream or many: first in, first out, and when the
hashing is behind, the oldest are dropped first, counted per stream, never silently.

A frame is dropped when its turn comes more than ``max_lag`` seconds after it was due (decoded,
and for one stream read ahead, also due at the stream's own pace): its verdict would come too late
to be of use, and hashing it would make every newer frame later too (a backlog only grows while
more arrives than is hashed). A source read faster than its pace (a recorded HLS playlist, a file
with ``--no-realtime``) is not behind: its frames are not dropped, the reading waits instead.
Streams sample at the same pace, so the oldest frame in the queue is always the one of the stream
that waited longest: dropping it is fair between streams. ``FrameQueue.dropped`` says how many of
each stream's frames went; the command line reports them (``opspoor watch``), bench/live.py
counts them against the goal.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

#: seconds a sampled frame may wait for the hashing before it is dropped
DEFAULT_MAX_LAG = 0.8


class FrameQueue(Generic[T]):
    """A FIFO of (stream, frame, decoded_at); ``get`` drops what has waited more than ``max_lag``."""

    def __init__(self, max_lag: float = DEFAULT_MAX_LAG, capacity: int | None = None) -> None:
        if max_lag <= 0:
            raise ValueError(f"max_lag must be > 0 seconds, got {max_lag}")
        self.max_lag = max_lag
        self.capacity = capacity  # put waits while this many frames are queued (None: never)
        self.dropped: Counter[Hashable] = Counter()
        self._items: deque[tuple[Hashable, T, float]] = deque()
        self._ready = threading.Condition()
        self._closed = False

    def put(self, stream: Hashable, frame: T, due: float) -> None:
        """Queue ``frame`` of ``stream``, due at ``due`` (``time.monotonic()``); waits while the
        queue is at its capacity."""
        with self._ready:
            while self.capacity is not None and len(self._items) >= self.capacity and not self._closed:
                self._ready.wait()
            self._items.append((stream, frame, due))
            self._ready.notify_all()

    def close(self) -> None:
        """No more frames: ``get`` answers None once the queue is empty."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def get(self, timeout: float | None = None) -> tuple[Hashable, T] | None:
        """The oldest frame still within ``max_lag`` (older ones are dropped and counted), or None
        when closed and empty (or after ``timeout`` seconds without a frame)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._ready:
            while True:
                now = time.monotonic()
                while self._items:
                    stream, frame, due = self._items.popleft()
                    self._ready.notify_all()  # room for a waiting put
                    if now - due <= self.max_lag:
                        return stream, frame
                    self.dropped[stream] += 1
                if self._closed:
                    return None
                left = None if deadline is None else deadline - now
                if left is not None and left <= 0:
                    return None
                self._ready.wait(left)

    def __len__(self) -> int:
        with self._ready:
            return len(self._items)


class _End:
    """What the reading thread leaves in the queue when its source ends (or fails: ``error``)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


#: frames read ahead at most (a source read faster than its pace waits beyond this)
READ_AHEAD = 16


def read_ahead(
    frames: Iterator[T],
    clock: Callable[[T], tuple[float, float]],
    *,
    max_lag: float = DEFAULT_MAX_LAG,
    on_drop: Callable[[int], None] | None = None,
) -> Iterator[T]:
    """``frames`` read on a thread of their own (the decoder keeps pace with a live source even
    while a frame is hashed), handed on oldest first. ``clock(frame)`` is (its stream time, when
    it was decoded); a frame is due when it was decoded or, if later, when the stream's pace
    reaches it. Frames more than ``max_lag`` past due are dropped, and ``on_drop`` is called with
    the count so far after each drop. An error of the source is raised here, after the frames
    before it."""
    queue: FrameQueue[T | _End] = FrameQueue(max_lag, capacity=READ_AHEAD)
    stop = threading.Event()
    origin: list[float] = []  # wall time of stream time 0

    def due(frame: T) -> float:
        stream_time, decoded_at = clock(frame)
        if not origin:
            origin.append(decoded_at - stream_time)
        return max(decoded_at, origin[0] + stream_time)

    def pull() -> None:
        try:
            for frame in frames:
                if stop.is_set():
                    return
                queue.put(0, frame, due(frame))
        except BaseException as exc:  # handed to the consumer, raised there
            queue.put(0, _End(exc), float("inf"))
        else:
            queue.put(0, _End(), float("inf"))
        finally:
            queue.close()

    thread = threading.Thread(target=pull, name="opspoor-stream-read", daemon=True)
    thread.start()
    seen_drops = 0

    def tell() -> None:
        nonlocal seen_drops
        if queue.dropped[0] != seen_drops:
            seen_drops = queue.dropped[0]
            if on_drop is not None:
                on_drop(seen_drops)

    try:
        while True:
            got = queue.get()
            tell()
            if got is None:
                return
            item = got[1]
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        stop.set()
        queue.close()  # a reader waiting for room goes on, sees ``stop`` and ends
