"""Hotline intake tables (migration 0007): reports in the CyberTipline shape, their files (the bytes
sealed with AES-GCM by the service, never stored in the clear) and the bundles of reports that share
a file. They share ``Base`` with :mod:`opspoor.store.models`.

Documents (the report, a file's details), match results and referral reasons are kept as JSON
text: they are read whole, validated before they are written, and never queried inside.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from opspoor.store.models import Base, BigId

#: a report's life: open (files may be added), finished (immutable), retracted (before finish)
REPORT_STATES = ("open", "finished", "retracted")


class IntakeBundleRow(Base):
    """Reports that share a file (same MD5, or PDQ within the bundling distance)."""

    __tablename__ = "intake_bundles"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IntakeReportRow(Base):
    __tablename__ = "intake_reports"
    __table_args__ = (
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in REPORT_STATES)})", name="status"),
        Index(None, "tenant", "status", "expires_at"),
        Index(None, "tenant", "finish_seq"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    token_id: Mapped[int] = mapped_column(Integer)  # the reporter's token: a reporter sees its own
    status: Mapped[str] = mapped_column(String(16))
    document: Mapped[str] = mapped_column(Text)  # the report, JSON in NCMEC's element names
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: an open report is deleted after it; a finished one after its retention
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    bundle_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("intake_bundles.id", ondelete="SET NULL"), index=True
    )
    priority: Mapped[int | None] = mapped_column(Integer)
    countries: Mapped[str | None] = mapped_column(Text)  # " NL DE " (spaces around each), or " unresolved "
    referral: Mapped[str | None] = mapped_column(Text)  # JSON: countries with their reasons
    #: 1, 2, 3 ... per tenant in the order reports finished (bundling indexes catch up by it)
    finish_seq: Mapped[int | None] = mapped_column(BigId)


class IntakeFileRow(Base):
    __tablename__ = "intake_files"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    report_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("intake_reports.id", ondelete="CASCADE"), index=True
    )
    file_name: Mapped[str | None] = mapped_column(Text)  # as uploaded
    size: Mapped[int] = mapped_column(BigId)
    md5: Mapped[str] = mapped_column(String(32), index=True)
    sha1: Mapped[str] = mapped_column(String(40))
    sha256: Mapped[str] = mapped_column(String(64))
    pdq: Mapped[str | None] = mapped_column(String(64))
    pdq_quality: Mapped[int | None] = mapped_column(Integer)
    vpdq: Mapped[str | None] = mapped_column(Text)  # of a video: Meta's line format, one frame a line
    media_type: Mapped[str] = mapped_column(String(32))
    gps: Mapped[str | None] = mapped_column(String(64))  # "lat,lon" from EXIF
    details: Mapped[str | None] = mapped_column(Text)  # fileDetails, JSON in NCMEC's element names
    matches: Mapped[str | None] = mapped_column(Text)  # JSON, set on finish
    blob: Mapped[bytes] = mapped_column(LargeBinary)  # nonce + AES-GCM ciphertext + tag
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
