"""Hash sets shared between tenants (migration 0007): a publisher offers one of its sets to named
tenants or to all (``*``); a subscriber takes up an offer. Matching uses a shared set only while
both stand. Rows are never deleted: an offer is revoked and a subscription ended by a timestamp,
so who could match against what, when, stays answerable."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from opspoor.store.models import Base

#: an offer to every tenant
EVERYONE = "*"


class ShareOfferRow(Base):
    __tablename__ = "share_offers"
    __table_args__ = (Index(None, "subscriber", "revoked_at"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    publisher: Mapped[str] = mapped_column(String(64))
    hashset: Mapped[str] = mapped_column(String(255))
    subscriber: Mapped[str] = mapped_column(String(64))  # a tenant, or EVERYONE
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SubscriptionRow(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (Index(None, "subscriber", "ended_at"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber: Mapped[str] = mapped_column(String(64))
    publisher: Mapped[str] = mapped_column(String(64))
    hashset: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
