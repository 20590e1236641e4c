"""The clue index across cases (migration 0012): which case saw which camera body serial, place,
phone number, postcode, plate or web domain, in how many files. Values are stored normalised
(``triage.links.clue_keys``), so the same serial written two ways is one key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from opspoor.store.models import Base


class ClueIndexRow(Base):
    __tablename__ = "clue_index"
    __table_args__ = (
        UniqueConstraint("case_id", "kind", "value"),
        Index(None, "kind", "value"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: the case's identity: its case number, else its folder's absolute path
    case_id: Mapped[str] = mapped_column(String(1024))
    #: how the case is named to the investigator: its case number, else its folder's name
    case_name: Mapped[str] = mapped_column(String(255))
    #: serial, place, phone, postcode, plate, domain
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(255))
    files: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
