"""What the review workspace reads of the hotline intake: the files of a tenant's finished reports
with their report's bundle and priority (``review.intake`` makes its review queue of them), the
sealed bytes of one file, and a stamp that changes whenever a report is finished or deleted.

Read only: the intake's own tables are written by :mod:`opspoor.store.intake` alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from opspoor.errors import NotFound
from opspoor.store.db import Store
from opspoor.store.intake import FILE_COLUMNS, FILES, REPORTS, IntakeFile, _aware, _file


@dataclass(frozen=True, slots=True)
class ReportedFile:
    """One file of a finished report, with what the queue orders and groups it by."""

    file: IntakeFile
    report_id: int
    bundle_id: int | None
    priority: int
    finished_at: datetime


def finished_files(store: Store, tenant: str, now: datetime) -> list[ReportedFile]:
    """Every file of the tenant's finished reports still within retention, in finishing order."""
    q = (
        select(*FILE_COLUMNS, REPORTS.c.bundle_id, REPORTS.c.priority, REPORTS.c.finished_at)
        .join(REPORTS, REPORTS.c.id == FILES.c.report_id)
        .where(REPORTS.c.tenant == tenant, REPORTS.c.status == "finished", REPORTS.c.expires_at > now)
        .order_by(REPORTS.c.finish_seq, FILES.c.id)
    )
    with store.read() as conn:
        return [
            ReportedFile(_file(r), int(r.report_id), r.bundle_id, int(r.priority or 0), _aware(r.finished_at))
            for r in conn.execute(q)
        ]


def finished_stamp(store: Store, tenant: str) -> tuple[int, int]:
    """(largest ``finish_seq``, number of finished reports): changes when one is finished or deleted."""
    fin = (REPORTS.c.tenant == tenant) & (REPORTS.c.status == "finished")
    with store.read() as conn:
        row = conn.execute(select(func.max(REPORTS.c.finish_seq), func.count()).where(fin)).one()
    return int(row[0] or 0), int(row[1])


def sealed_file(store: Store, tenant: str, file_id: int) -> tuple[int, str, bytes]:
    """(report id, SHA-256, sealed bytes) of a file of one of the tenant's finished reports."""
    q = (
        select(FILES.c.report_id, FILES.c.sha256, FILES.c.blob)
        .join(REPORTS, REPORTS.c.id == FILES.c.report_id)
        .where(FILES.c.id == file_id, REPORTS.c.tenant == tenant, REPORTS.c.status == "finished")
    )
    with store.read() as conn:
        row = conn.execute(q).first()
    if row is None or row.blob is None:
        raise NotFound(f"no file {file_id} of a finished report", where=f"file:{file_id}")
    return int(row.report_id), str(row.sha256), bytes(row.blob)
