"""The store's tables as SQLAlchemy 2 typed models. The Alembic migrations create exactly these.

The fixed-width hashes an entry carries one of each (MD5, SHA-1, SHA-256, PDQ) are binary columns of
``entries``: one row per entry is what makes a bulk import cheap (see docs/store.md). Everything
else is a row of ``entry_signals``, as canonical text: PhotoDNA (opaque, as given), the distinct
frame hashes of a vPDQ entry (``derived``; the full vPDQ text is in ``entries.vpdq``) and other
matching-only values such as augmentation hashes (``derived``).

The hash columns have no index: lookups by value are rare and set-wise (the duplicate search,
removal by value) and scan the set's rows, while an index on each would cost more to keep than
the rest of the import. ``entry_signals`` has a hash index on values on PostgreSQL and BRIN
indexes for the columns that follow insertion order; SQLite builds ordinary b-trees from them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: a 64-bit key that is a plain INTEGER on SQLite, so it aliases the rowid
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class HashSetRow(Base):
    __tablename__ = "hashsets"
    __table_args__ = (
        UniqueConstraint("tenant", "name"),
        CheckConstraint("kind IN ('known', 'ignorable')", name="kind"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16), default="known", server_default="known")
    source: Mapped[str | None] = mapped_column(Text)
    distance: Mapped[int] = mapped_column(Integer, default=31, server_default="31")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class EntryRow(Base):
    """One hash-set entry. Ids are allocated by the store in blocks (``IdBlockRow``), never implicitly.

    No foreign key to ``hashsets``: checking it costs a fifth of a bulk import on PostgreSQL, and
    only the store writes entries (removing a set deletes its entries explicitly). The index on
    (hashset_id, id) is BRIN on PostgreSQL: sets are loaded in runs of growing ids, and a b-tree
    took a third of the server's work of a bulk import.
    """

    __tablename__ = "entries"
    __table_args__ = (Index(None, "hashset_id", "id", postgresql_using="brin"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    hashset_id: Mapped[int] = mapped_column(Integer)
    external_id: Mapped[str | None] = mapped_column(Text)
    category_scheme: Mapped[str | None] = mapped_column(String(16))
    category_code: Mapped[str | None] = mapped_column(String(16))
    victim_identified: Mapped[bool | None] = mapped_column(Boolean)
    offender_identified: Mapped[bool | None] = mapped_column(Boolean)
    distributed: Mapped[bool | None] = mapped_column(Boolean)
    series: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[str | None] = mapped_column(Text)  # JSON list, NULL when there are none
    source: Mapped[str | None] = mapped_column(Text)
    date_updated: Mapped[str | None] = mapped_column(Text)  # ISO 8601 as given by the list
    size: Mapped[int | None] = mapped_column(BigInteger)
    vpdq: Mapped[str | None] = mapped_column(Text)  # full vPDQ text of a video entry
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # the fixed-width hashes, as bytes (half the size of their hex; what the index loads)
    md5: Mapped[bytes | None] = mapped_column(LargeBinary)
    sha1: Mapped[bytes | None] = mapped_column(LargeBinary)
    sha256: Mapped[bytes | None] = mapped_column(LargeBinary)
    pdq: Mapped[bytes | None] = mapped_column(LargeBinary)


class EntrySignalRow(Base):
    """A signal value of an entry that is not one of ``entries``' hash columns: PhotoDNA, and the
    ``derived`` rows (vPDQ frames, augmentation hashes), used for matching but never exported and
    never counted as conflicts.

    No foreign keys: this is the bulk table (several rows per entry) and only the store writes it.
    """

    __tablename__ = "entry_signals"
    __table_args__ = (
        Index(None, "value", postgresql_using="hash"),
        Index(None, "hashset_id", "signal", postgresql_using="brin"),
        Index(None, "entry_id", postgresql_using="brin"),
    )
    __mapper_args__ = {"primary_key": ["entry_id", "signal", "value"]}

    entry_id: Mapped[int] = mapped_column(BigInteger)
    hashset_id: Mapped[int] = mapped_column(Integer)
    signal: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(Text)
    derived: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ConflictRow(Base):
    """Two entries of a set share a hash but carry different categories; both are kept."""

    __tablename__ = "conflicts"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    hashset_id: Mapped[int] = mapped_column(ForeignKey("hashsets.id", ondelete="CASCADE"), index=True)
    signal: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(Text)
    entry_id: Mapped[int] = mapped_column(BigInteger)  # the entry that was there first
    other_entry_id: Mapped[int] = mapped_column(BigInteger)  # the entry that disagrees with it
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ChangeRow(Base):
    """The change log that service workers follow. ``add`` covers the entries of the set with
    ids in ``entry_id..entry_id_end`` (one row per import); ``remove`` one entry; ``drop`` a set.

    ``hashset_id`` has no foreign key: a dropped set's changes must outlive it.
    """

    __tablename__ = "changes"
    __table_args__ = (
        CheckConstraint("op IN ('add', 'remove', 'drop')", name="op"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    hashset_id: Mapped[int] = mapped_column(Integer)
    op: Mapped[str] = mapped_column(String(8))
    entry_id: Mapped[int | None] = mapped_column(BigInteger)
    entry_id_end: Mapped[int | None] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class IdBlockRow(Base):
    """Next free id per allocator. Blocks are reserved with one UPDATE so bulk rows carry their ids
    and can be copied without round trips."""

    __tablename__ = "id_blocks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    next_id: Mapped[int] = mapped_column(BigInteger)
