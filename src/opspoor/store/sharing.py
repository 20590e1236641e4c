"""Queries of hash-set sharing (tables in :mod:`opspoor.store.models_sharing`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, and_, insert, or_, select, update

from opspoor.errors import NotFound
from opspoor.store.db import Store
from opspoor.store.hashsets import get_hashset
from opspoor.store.models_sharing import EVERYONE, ShareOfferRow, SubscriptionRow

OFFERS = cast(Table, ShareOfferRow.__table__)
SUBS = cast(Table, SubscriptionRow.__table__)


@dataclass(frozen=True, slots=True)
class SharedSet:
    """A set of ``publisher`` that a subscriber may match against."""

    publisher: str
    hashset: str

    def to_json(self) -> dict[str, Any]:
        return {"publisher": self.publisher, "hashset": self.hashset}


def offer_set(store: Store, publisher: str, hashset: str, subscribers: list[str]) -> list[str]:
    """Offer ``publisher``'s set to tenants (or EVERYONE); answers the tenants newly offered it."""
    get_hashset(store, hashset, tenant=publisher)  # NotFound for a set that is not the publisher's
    now = datetime.now(UTC)
    with store.write() as conn:
        have = set(
            conn.execute(
                select(OFFERS.c.subscriber).where(
                    OFFERS.c.publisher == publisher,
                    OFFERS.c.hashset == hashset,
                    OFFERS.c.revoked_at.is_(None),
                )
            ).scalars()
        )
        new = [s for s in dict.fromkeys(subscribers) if s not in have and s != publisher]
        for s in new:
            conn.execute(
                insert(OFFERS).values(publisher=publisher, hashset=hashset, subscriber=s, created_at=now)
            )
    return new


def revoke_offer(store: Store, publisher: str, hashset: str, subscriber: str) -> None:
    with store.write() as conn:
        n = conn.execute(
            update(OFFERS)
            .where(
                OFFERS.c.publisher == publisher,
                OFFERS.c.hashset == hashset,
                OFFERS.c.subscriber == subscriber,
                OFFERS.c.revoked_at.is_(None),
            )
            .values(revoked_at=datetime.now(UTC))
        ).rowcount
    if n == 0:
        raise NotFound(f"{hashset!r} is not offered to {subscriber!r}", where=f"hashset:{hashset}")


def offers_of(store: Store, publisher: str, hashset: str) -> list[str]:
    with store.read() as conn:
        return list(
            conn.execute(
                select(OFFERS.c.subscriber)
                .where(
                    OFFERS.c.publisher == publisher,
                    OFFERS.c.hashset == hashset,
                    OFFERS.c.revoked_at.is_(None),
                )
                .order_by(OFFERS.c.subscriber)
            ).scalars()
        )


def offered_to(store: Store, subscriber: str) -> list[SharedSet]:
    """The sets other tenants offer ``subscriber`` (by name or to everyone)."""
    with store.read() as conn:
        rows = conn.execute(
            select(OFFERS.c.publisher, OFFERS.c.hashset)
            .where(
                OFFERS.c.subscriber.in_([subscriber, EVERYONE]),
                OFFERS.c.revoked_at.is_(None),
                OFFERS.c.publisher != subscriber,
            )
            .distinct()
            .order_by(OFFERS.c.publisher, OFFERS.c.hashset)
        ).all()
    return [SharedSet(r.publisher, r.hashset) for r in rows]


def subscribe(store: Store, subscriber: str, shared: SharedSet) -> bool:
    """Take up an offer (NotFound when there is none); False when already subscribed."""
    if shared not in offered_to(store, subscriber):
        raise NotFound(
            f"{shared.publisher!r} offers no set {shared.hashset!r} to this tenant",
            where=f"hashset:{shared.hashset}",
        )
    with store.write() as conn:
        if conn.execute(select(SUBS.c.id).where(_active_sub(subscriber, shared))).first() is not None:
            return False
        conn.execute(
            insert(SUBS).values(
                subscriber=subscriber,
                publisher=shared.publisher,
                hashset=shared.hashset,
                created_at=datetime.now(UTC),
            )
        )
    return True


def unsubscribe(store: Store, subscriber: str, shared: SharedSet) -> None:
    with store.write() as conn:
        n = conn.execute(
            update(SUBS).where(_active_sub(subscriber, shared)).values(ended_at=datetime.now(UTC))
        ).rowcount
    if n == 0:
        raise NotFound(
            f"no subscription to {shared.publisher}/{shared.hashset}", where=f"hashset:{shared.hashset}"
        )


def _active_sub(subscriber: str, shared: SharedSet) -> Any:
    return and_(
        SUBS.c.subscriber == subscriber,
        SUBS.c.publisher == shared.publisher,
        SUBS.c.hashset == shared.hashset,
        SUBS.c.ended_at.is_(None),
    )


def subscribed_sets(store: Store, subscriber: str) -> list[SharedSet]:
    """The shared sets ``subscriber`` matches against now: subscribed, and still offered."""
    with store.read() as conn:
        rows = conn.execute(
            select(SUBS.c.publisher, SUBS.c.hashset)
            .join(
                OFFERS,
                and_(
                    OFFERS.c.publisher == SUBS.c.publisher,
                    OFFERS.c.hashset == SUBS.c.hashset,
                    or_(OFFERS.c.subscriber == SUBS.c.subscriber, OFFERS.c.subscriber == EVERYONE),
                    OFFERS.c.revoked_at.is_(None),
                ),
            )
            .where(SUBS.c.subscriber == subscriber, SUBS.c.ended_at.is_(None))
            .distinct()
            .order_by(SUBS.c.publisher, SUBS.c.hashset)
        ).all()
    return [SharedSet(r.publisher, r.hashset) for r in rows]
