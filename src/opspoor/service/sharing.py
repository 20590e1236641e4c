"""Matching against hash sets other tenants share with the caller's (see ``routes_sharing``).

Each worker keeps the list of a tenant's shared sets for ``token_cache_seconds``, so a revoked
offer or an ended subscription stops matching within that time. A shared set is matched in its
publisher's index, and only its own matches are kept; each says whose set it was (``owner``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio

from opspoor.matching import Match
from opspoor.store import Store
from opspoor.store.sharing import SharedSet, subscribed_sets

CACHE_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class SharedMatch(Match):
    """A match in a set another tenant (``owner``) shares."""

    owner: str = ""


class SharedSets:
    """The shared sets of each tenant, as this worker last read them."""

    def __init__(self, store: Store, ttl: float) -> None:
        self.store = store
        self.ttl = ttl
        self._entries: dict[str, tuple[list[SharedSet], float]] = {}

    async def of(self, tenant: str) -> list[SharedSet]:
        hit = self._entries.get(tenant)
        if hit is not None and hit[1] >= time.monotonic():
            return hit[0]
        found = await anyio.to_thread.run_sync(lambda: subscribed_sets(self.store, tenant))
        if len(self._entries) >= CACHE_LIMIT:
            self._entries.clear()
        self._entries[tenant] = (found, time.monotonic() + self.ttl)
        return found


def shared_matches(shared: SharedSet, found: list[Match]) -> list[Match]:
    """The matches of the publisher's index that are in the shared set, marked with its owner."""
    return [
        SharedMatch(
            m.hashset,
            m.kind,
            m.entry_id,
            m.external_id,
            m.signal,
            m.distance,
            m.category,
            m.method,
            m.inliers,
            owner=shared.publisher,
        )
        for m in found
        if m.hashset == shared.hashset
    ]
