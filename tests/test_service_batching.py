"""The service's hot-path plumbing: matches searched in batches (small ones on the event loop,
large ones on a thread), the follower's warm-up hook, and responses leaving in one write.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from opspoor.hashsets.model import Entry
from opspoor.matching import Match, Query
from opspoor.service.batching import INLINE_QUERIES, MatchBatcher
from opspoor.service.live import IndexFollower, LiveMatcher
from opspoor.service.transport import CoalescingTransport
from opspoor.store import Store, import_entries, open_store


def near(value: str, bits: int) -> str:
    """``value`` (hex) with its first ``bits`` bits flipped."""
    v = bytearray(bytes.fromhex(value))
    for i in range(bits):
        v[i // 8] ^= 1 << (i % 8)
    return v.hex()


@pytest.fixture
def stored(sqlite_url: str) -> Any:
    rng = np.random.default_rng(3)
    values = [rng.bytes(32).hex() for _ in range(40)]
    with open_store(sqlite_url) as store:
        entries = [Entry({"pdq": v}, external_id=f"e{i}") for i, v in enumerate(values)]
        import_entries(store, "set", entries, tenant="t")
        yield store, values


def follower_of(store: Store) -> tuple[IndexFollower, LiveMatcher]:
    follower = IndexFollower(store)
    follower.load()
    return follower, follower.matcher("t")


def names(found: list[list[Match]]) -> list[set[str | None]]:
    return [{m.external_id for m in ms} for ms in found]


def test_batched_requests_get_their_own_matches_inline_or_on_a_thread(stored: Any) -> None:
    store, values = stored
    _, m = follower_of(store)
    small = [[Query(pdq=[(near(values[i], 4), "pdq")])] for i in range(5)]
    # one request larger than the inline limit: searched on a thread, in the same batch
    large = [Query(pdq=[(near(values[i % 40], 6), "pdq")]) for i in range(INLINE_QUERIES + 1)]

    async def run() -> list[list[list[Match]]]:
        batcher = MatchBatcher()
        first = await asyncio.gather(*(batcher.match(m, q) for q in small))  # details read
        again = await asyncio.gather(*(batcher.match(m, q) for q in small))  # details cached
        return [*first, *again, await batcher.match(m, large)]

    *answers, big = asyncio.run(run())
    assert [names(a) for a in answers] == [[{f"e{i}"}] for i in range(5)] * 2
    assert names(big) == [{f"e{i % 40}"} for i in range(INLINE_QUERIES + 1)]


def test_the_follower_warms_up_before_it_reports_loaded(stored: Any) -> None:
    store, _ = stored
    seen: list[bool] = []
    follower = IndexFollower(store, on_loaded=lambda: seen.append(follower.loaded))
    follower.load()
    assert seen == [False] and follower.loaded


class Recorder:
    """The socket side of a transport: what reached it, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def close(self) -> None:
        self.calls.append(("close", b""))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


def test_writes_of_one_loop_turn_leave_in_one_write_and_close_sends_them_first() -> None:
    async def run() -> Recorder:
        sock = Recorder()
        t = CoalescingTransport(sock, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(HEAD)
        t.write(b"{}")
        assert sock.calls == [] and t.get_write_buffer_size() == len(HEAD) + 2
        await asyncio.sleep(0)
        t.write(b"last")
        t.close()
        await asyncio.sleep(0)  # the flush scheduled for "last" finds nothing left
        return sock

    sock = asyncio.run(run())
    assert sock.calls == [
        ("write", HEAD + b"{}"),
        ("write", b"last"),
        ("close", b""),
    ]


def test_the_follower_adds_and_removes_low_quality_values(stored: Any) -> None:
    """``pdq_lq`` values added after the load are matched within the low-quality distance only,
    and leave with their entry."""
    from opspoor.signals.robust import LOW_QUALITY_DISTANCE
    from opspoor.store import remove_entries

    store, _ = stored
    follower, m = follower_of(store)
    low = "5a" * 32
    entry = Entry({"md5": "ab" * 16}, external_id="soft")
    entry.derived = {"pdq_lq": [low]}
    import_entries(store, "set", [entry], tenant="t")
    follower.poll()
    queries = [Query(pdq=[(near(low, LOW_QUALITY_DISTANCE), "pdq")]), Query(pdq=[(near(low, 20), "pdq")])]
    assert names(m.match_queries(queries)) == [{"soft"}, set()]
    remove_entries(store, "set", signal="md5", values=["ab" * 16], tenant="t")
    follower.poll()
    assert names(m.match_queries(queries)) == [set(), set()]


def test_a_query_with_local_features_is_searched_off_the_event_loop(
    stored: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opspoor.service import batching
    from opspoor.signals.local import LocalFeatures

    store, values = stored
    _, m = follower_of(store)
    threads: list[int] = []
    real = asyncio.to_thread

    async def counting(fn: Any, *args: Any) -> Any:
        threads.append(len(args[0]))
        return await real(fn, *args)

    monkeypatch.setattr(batching.asyncio, "to_thread", counting)
    plain = [Query(pdq=[(near(values[0], 4), "pdq")])]
    local = [Query(pdq=[(near(values[1], 4), "pdq")], local=LocalFeatures.empty().encode())]

    async def run() -> list[list[list[Match]]]:
        batcher = MatchBatcher()
        return [await batcher.match(m, plain), await batcher.match(m, local)]

    first, second = asyncio.run(run())
    assert threads == [1]  # only the batch holding local features went to a thread
    assert names(first) == [{"e0"}] and names(second) == [{"e1"}]
