"""Matching requests of one worker are searched together.

An index search has a fixed cost per call (setting up the search, the kernel call, collecting the
hits) next to its cost per query; under load it dominates single-value requests. The batcher queues
the queries of concurrent requests and runs them as one ``match_queries`` call per tenant. A
request alone waits for nothing: its batch starts once the requests already readable have joined.

A batch of up to ``INLINE_QUERIES`` queries is searched on the event loop itself (60-90 µs a
query over 1M PDQ hashes on the benchmark VM): handing each batch to a thread and back (a queue,
two wake-ups and a GIL hand-over each way) took a quarter of a busy worker's event-loop time. The
details of hits not cached yet (set, external id, category) are then read there too, by primary
key: batches run one after another, so matching would wait for them on a thread all the same, and
searching without them, reading them on a thread and searching again cost more. Larger batches
(requests of many values) go to a thread, so the loop keeps answering meanwhile.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from opspoor.matching import Match, Query
from opspoor.service.live import LiveMatcher

#: queries per search call; larger batches wait for the next call
MAX_BATCH = 512
#: batches up to this many queries are searched on the event loop
INLINE_QUERIES = 64

Pending = tuple[LiveMatcher, list[Query], "asyncio.Future[list[list[Match]]]"]


class MatchBatcher:
    def __init__(self) -> None:
        self._pending: list[Pending] = []
        self._running = False

    async def match(self, matcher: LiveMatcher, queries: list[Query]) -> list[list[Match]]:
        fut: asyncio.Future[list[list[Match]]] = asyncio.get_running_loop().create_future()
        self._pending.append((matcher, queries, fut))
        if not self._running:
            self._running = True
            asyncio.get_running_loop().create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(0)  # requests already readable join this batch
                batch = self._take()
                try:
                    results = await _search(batch)
                except Exception as exc:
                    for _, _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for (_, _, fut), found in zip(batch, results, strict=True):
                    if not fut.done():
                        fut.set_result(found)
        finally:
            self._running = False

    def _take(self) -> list[Pending]:
        n = 0
        for i, (_, queries, _) in enumerate(self._pending):
            n += len(queries)
            if n > MAX_BATCH and i > 0:
                batch, self._pending = self._pending[:i], self._pending[i:]
                return batch
        batch, self._pending = self._pending, []
        return batch


async def _search(batch: list[Pending]) -> list[list[list[Match]]]:
    """On the loop when the batch is small, else on a thread; always on a thread when an upload
    carries local features (their lookup takes 30-700 ms, the loop must not wait for it)."""
    local = any(q.local for _, queries, _ in batch for q in queries)
    if local or sum(len(queries) for _, queries, _ in batch) > INLINE_QUERIES:
        return await asyncio.to_thread(_run, batch)
    return _run(batch)


def _run(batch: list[Pending]) -> list[list[list[Match]]]:
    """One ``match_queries`` call per matcher (tenant); results split back per request."""
    by_matcher: dict[int, list[int]] = defaultdict(list)
    for i, (m, _, _) in enumerate(batch):
        by_matcher[id(m)].append(i)
    out: list[list[list[Match]]] = [[] for _ in batch]
    for members in by_matcher.values():
        matcher = batch[members[0]][0]
        queries = [q for i in members for q in batch[i][1]]
        found = matcher.match_queries(queries)
        at = 0
        for i in members:
            k = len(batch[i][1])
            out[i] = found[at : at + k]
            at += k
    return out
