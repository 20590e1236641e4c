"""Queries of the hotline intake (tables in :mod:`opspoor.store.models_intake`).

The rules (what a report may still do, how long it lives) are the caller's; these functions only
refuse what would break them: a file added to, or details changed on, a report that is no longer
open fails with :class:`~opspoor.errors.IntakeError`, inside the same transaction that checks it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, delete, func, insert, or_, select, text, update

from opspoor.errors import IntakeError, NotFound
from opspoor.store.db import Store
from opspoor.store.intake_bundles import BundleIndex
from opspoor.store.models_intake import IntakeBundleRow, IntakeFileRow, IntakeReportRow

REPORTS = cast(Table, IntakeReportRow.__table__)
FILES = cast(Table, IntakeFileRow.__table__)
BUNDLES = cast(Table, IntakeBundleRow.__table__)


@dataclass(frozen=True, slots=True)
class Lifetimes:
    """How long reports live: an open one ``open_hours`` after opening or ``idle_hours`` after its
    last change, whichever is later; a finished one ``retention_days``."""

    open_hours: float = 24.0
    idle_hours: float = 1.0
    retention_days: float = 365.0

    def open_until(self, opened: datetime, changed: datetime) -> datetime:
        return max(opened + timedelta(hours=self.open_hours), changed + timedelta(hours=self.idle_hours))


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What the upload measured of a file: its name, size, hashes, type and EXIF position."""

    file_name: str | None
    size: int
    md5: str
    sha1: str
    sha256: str
    pdq: str | None
    pdq_quality: int | None
    media_type: str
    gps: tuple[float, float] | None


@dataclass(frozen=True, slots=True)
class IntakeFile(FileFacts):
    """A stored file (not its bytes), with its details and what finishing matched."""

    id: int
    report_id: int
    details: dict[str, Any] | None
    matches: list[dict[str, Any]] | None
    uploaded_at: datetime
    vpdq: str | None = None  # of a video, Meta's line format

    def signals(self) -> dict[str, Any]:
        """Its hashes as a scan's record holds them (what matching and the review read)."""
        return {
            "md5": self.md5,
            "sha1": self.sha1,
            "sha256": self.sha256,
            "pdq": self.pdq,
            "pdq_quality": self.pdq_quality,
            "vpdq_frames": self.vpdq.splitlines() if self.vpdq else None,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "fileId": self.id,
            "fileName": self.file_name,
            "size": self.size,
            "md5": self.md5,
            "sha1": self.sha1,
            "sha256": self.sha256,
            "pdq": self.pdq,
            "mediaType": self.media_type,
            "fileDetails": self.details,
            "matches": self.matches,
        }


@dataclass(slots=True)
class IntakeReport:
    id: int
    tenant: str
    token_id: int
    status: str
    document: dict[str, Any]
    opened_at: datetime
    changed_at: datetime
    expires_at: datetime
    finished_at: datetime | None
    bundle_id: int | None
    priority: int | None
    referral: dict[str, Any] | None
    files: list[IntakeFile] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class NewFile(FileFacts):
    """A file to add: its facts and its sealed bytes."""

    blob: bytes
    vpdq: str | None = None  # of a video, Meta's line format


def _aware(dt: datetime) -> datetime:
    from datetime import UTC

    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _file(r: Any) -> IntakeFile:
    gps = tuple(float(x) for x in r.gps.split(",")) if r.gps else None
    return IntakeFile(
        id=r.id,
        report_id=r.report_id,
        file_name=r.file_name,
        size=r.size,
        md5=r.md5,
        sha1=r.sha1,
        sha256=r.sha256,
        pdq=r.pdq,
        pdq_quality=r.pdq_quality,
        media_type=r.media_type,
        gps=gps,  # type: ignore[arg-type]
        details=json.loads(r.details) if r.details else None,
        matches=json.loads(r.matches) if r.matches is not None else None,
        uploaded_at=_aware(r.uploaded_at),
        vpdq=r.vpdq,
    )


def _report(r: Any) -> IntakeReport:
    return IntakeReport(
        r.id,
        r.tenant,
        r.token_id,
        r.status,
        json.loads(r.document),
        _aware(r.opened_at),
        _aware(r.changed_at),
        _aware(r.expires_at),
        _aware(r.finished_at) if r.finished_at else None,
        r.bundle_id,
        r.priority,
        json.loads(r.referral) if r.referral else None,
    )


FILE_COLUMNS = [c for c in FILES.c if c.name != "blob"]


def open_report(
    store: Store, tenant: str, token_id: int, document: dict[str, Any], now: datetime, life: Lifetimes
) -> int:
    row = {
        "tenant": tenant,
        "token_id": token_id,
        "status": "open",
        "document": json.dumps(document),
        "opened_at": now,
        "changed_at": now,
        "expires_at": life.open_until(now, now),
    }
    with store.write() as conn:
        return int(conn.execute(_INSERT_REPORT, row).scalar_one())


def get_report(
    store: Store, tenant: str, report_id: int, now: datetime, *, token_id: int | None = None
) -> IntakeReport:
    """The report with its files (not their bytes). ``token_id``: only if that token opened it.
    A report past its expiry (or retention) is gone, whether or not the sweep has deleted it yet."""
    with store.read() as conn:
        rep = _locate(conn, tenant, report_id, now, token_id)
        rep.files = [_file(r) for r in conn.execute(_FILES_OF, {"rid": report_id})]
    return rep


_FILES_OF = select(*FILE_COLUMNS).where(FILES.c.report_id == bindparam("rid")).order_by(FILES.c.id)


def report_status(
    store: Store, tenant: str, report_id: int, now: datetime, *, token_id: int | None = None
) -> str:
    """What ``get_report(...).status`` would say, without reading the document or the files."""
    return report_state(store, tenant, report_id, now, token_id=token_id).status


@dataclass(frozen=True, slots=True)
class ReportState:
    status: str
    opened_at: datetime


def report_state(
    store: Store, tenant: str, report_id: int, now: datetime, *, token_id: int | None = None
) -> ReportState:
    """``report_status`` with the opening time, which ``add_file`` takes to save a read."""
    with store.read() as conn:
        return _state(conn, tenant, report_id, now, token_id)


# the statements of every request, built once: SQLAlchemy then reuses their cache keys and
# compiled forms instead of building and keying them anew per call
_STATE = select(REPORTS.c.status, REPORTS.c.opened_at, REPORTS.c.expires_at).where(
    REPORTS.c.id == bindparam("rid"), REPORTS.c.tenant == bindparam("tenant")
)
_STATE_OF_TOKEN = _STATE.where(REPORTS.c.token_id == bindparam("token"))
_TOUCH = (
    update(REPORTS)
    .where(REPORTS.c.id == bindparam("rid"))
    .values(changed_at=bindparam("now"), expires_at=bindparam("expires"))
)
#: ``_TOUCH`` of a report that is still open, not expired, of this tenant and token, in one statement
_TOUCH_OPEN = _TOUCH.where(
    REPORTS.c.tenant == bindparam("of_tenant"),  # (an UPDATE's binds may not take a column's name)
    REPORTS.c.token_id == bindparam("of_token"),
    REPORTS.c.status == "open",
    REPORTS.c.expires_at > bindparam("now"),
)
_INSERT_FILE = insert(FILES).returning(FILES.c.id)
_INSERT_REPORT = insert(REPORTS).returning(REPORTS.c.id)


def _state(conn: Connection, tenant: str, report_id: int, now: datetime, token_id: int | None) -> ReportState:
    """The report's status and opening time (not its document): NotFound as ``_locate``."""
    params: dict[str, Any] = {"rid": report_id, "tenant": tenant}
    if token_id is not None:
        params["token"] = token_id
    row = conn.execute(_STATE if token_id is None else _STATE_OF_TOKEN, params).first()
    if row is None or _aware(row.expires_at) <= now:  # expired, or past retention: swept soon
        raise NotFound(f"no report {report_id}", where=f"report:{report_id}")
    return ReportState(str(row.status), _aware(row.opened_at))


def _locate(
    conn: Connection, tenant: str, report_id: int, now: datetime, token_id: int | None
) -> IntakeReport:
    params: dict[str, Any] = {"rid": report_id, "tenant": tenant}
    if token_id is not None:
        params["token"] = token_id
    row = conn.execute(_REPORT if token_id is None else _REPORT_OF_TOKEN, params).first()
    if row is None or _aware(row.expires_at) <= now:  # expired, or past retention: swept soon
        raise NotFound(f"no report {report_id}", where=f"report:{report_id}")
    return _report(row)


_REPORT = select(REPORTS).where(REPORTS.c.id == bindparam("rid"), REPORTS.c.tenant == bindparam("tenant"))
_REPORT_OF_TOKEN = _REPORT.where(REPORTS.c.token_id == bindparam("token"))


def _open_for_change(
    conn: Connection,
    tenant: str,
    report_id: int,
    token_id: int,
    now: datetime,
    life: Lifetimes,
    opened_at: datetime | None = None,
) -> None:
    """Touch the report (its last change: now) if it is open; NotFound or IntakeError otherwise.
    ``opened_at`` (when the caller read it): one statement when the report is open."""
    if opened_at is not None:
        expires = life.open_until(opened_at, now)
        params = {"rid": report_id, "of_tenant": tenant, "of_token": token_id, "now": now, "expires": expires}
        if conn.execute(_TOUCH_OPEN, params).rowcount == 1:
            return
    rep = _state(conn, tenant, report_id, now, token_id)  # what is wrong, or not touched yet
    if rep.status != "open":
        raise IntakeError(
            f"report {report_id} is {rep.status}; it can no longer be changed", where=f"report:{report_id}"
        )
    conn.execute(_TOUCH, {"rid": report_id, "now": now, "expires": life.open_until(rep.opened_at, now)})


def add_file(
    store: Store,
    tenant: str,
    report_id: int,
    token_id: int,
    f: NewFile,
    now: datetime,
    life: Lifetimes,
    opened_at: datetime | None = None,
) -> int:
    """``opened_at``: the report's, when the caller has read it (``report_state``): one read less."""
    with store.write() as conn:
        _open_for_change(conn, tenant, report_id, token_id, now, life, opened_at)
        row = {
            "report_id": report_id,
            "file_name": f.file_name,
            "size": f.size,
            "md5": f.md5,
            "sha1": f.sha1,
            "sha256": f.sha256,
            "pdq": f.pdq,
            "pdq_quality": f.pdq_quality,
            "vpdq": f.vpdq,
            "media_type": f.media_type,
            "gps": None if f.gps is None else f"{f.gps[0]:.6f},{f.gps[1]:.6f}",
            "blob": f.blob,
            "uploaded_at": now,
        }
        return int(conn.execute(_INSERT_FILE, row).scalar_one())


def set_file_details(
    store: Store,
    tenant: str,
    report_id: int,
    token_id: int,
    file_id: int,
    details: dict[str, Any],
    now: datetime,
    life: Lifetimes,
) -> None:
    with store.write() as conn:
        _open_for_change(conn, tenant, report_id, token_id, now, life)
        n = conn.execute(
            update(FILES)
            .where(FILES.c.id == file_id, FILES.c.report_id == report_id)
            .values(details=json.dumps(details))
        ).rowcount
        if n != 1:
            raise NotFound(f"report {report_id} has no file {file_id}", where="/fileDetails/fileId")


def retract_report(
    store: Store, tenant: str, report_id: int, token_id: int, now: datetime, life: Lifetimes
) -> None:
    """Retracted: its files are deleted at once, the report row when it would have expired."""
    with store.write() as conn:
        _open_for_change(conn, tenant, report_id, token_id, now, life)
        conn.execute(delete(FILES).where(FILES.c.report_id == report_id))
        conn.execute(update(REPORTS).where(REPORTS.c.id == report_id).values(status="retracted"))


def file_blob(store: Store, file_id: int) -> bytes:
    with store.read() as conn:
        blob = conn.execute(select(FILES.c.blob).where(FILES.c.id == file_id)).scalar_one_or_none()
    if blob is None:
        raise NotFound(f"no file {file_id}", where=f"file:{file_id}")
    return bytes(blob)


def sealed_blobs(store: Store) -> list[bytes]:
    """Every stored file's bytes as stored (for checks that nothing is kept in the clear)."""
    with store.read() as conn:
        return [bytes(b) for b in conn.execute(select(FILES.c.blob)).scalars()]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What finishing decided: per file its matches, and the report's priority and referral."""

    matches: dict[int, list[dict[str, Any]]]
    priority: int
    countries: list[str]
    referral: dict[str, Any]


def finish_report(
    store: Store,
    tenant: str,
    report_id: int,
    token_id: int,
    outcome: Outcome,
    now: datetime,
    life: Lifetimes,
    pdq_distance: int,
    bundles: BundleIndex | None = None,
) -> int | None:
    """Finish the report (immutable from now on, kept ``retention_days``) and bundle it with the
    finished reports of the tenant that share a file: the same MD5, PDQs within ``pdq_distance``
    (a weak PDQ, of quality below 50, only much closer: ``BundleIndex.near``),
    or a video whose vPDQ frames match both ways. Bundles it touches are merged into the oldest.
    ``bundles``: the worker's index of finished reports (a fresh one reads them all). Answers the
    bundle id (None: shares nothing)."""
    index = bundles if bundles is not None else BundleIndex()
    with store.write() as conn:
        if conn.dialect.name != "sqlite":  # one finish of a tenant at a time: bundles are merged
            # without deadlocks, each finish sees the reports finished before it, and finish_seq
            # counts up without gaps (SQLite's write transaction already excludes other writers)
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _bundle_lock(tenant)})
        rep = _state(conn, tenant, report_id, now, token_id)
        if rep.status != "open":
            raise IntakeError(
                f"report {report_id} is {rep.status}; it can no longer be changed",
                where=f"report:{report_id}",
            )
        mine = conn.execute(_FILES_TO_BUNDLE, {"rid": report_id}).all()
        if outcome.matches:  # one statement for all files
            conn.execute(
                _SET_MATCHES,
                [
                    {"fid": fid, "rid": report_id, "found": json.dumps(found)}
                    for fid, found in outcome.matches.items()
                ],
            )
        others = _same_md5(conn, tenant, [m.md5 for m in mine]) | index.near(
            conn,
            REPORTS,
            FILES,
            tenant,
            [(m.pdq, m.pdq_quality) for m in mine if m.pdq],
            [m.vpdq for m in mine if m.vpdq],
            pdq_distance,
        )
        others.discard(report_id)
        bundle = _join_bundle(conn, tenant, others, now, index) if others else None
        seq = conn.execute(_LAST_FINISH_SEQ, {"tenant": tenant}).scalar_one()
        conn.execute(
            _FINISH,
            {
                "rid": report_id,
                "status": "finished",
                "finished_at": now,
                "changed_at": now,
                "expires_at": now + timedelta(days=life.retention_days),
                "bundle_id": bundle,
                "priority": outcome.priority,
                "countries": " " + " ".join(outcome.countries) + " ",
                "referral": json.dumps(outcome.referral),
                "finish_seq": int(seq) + 1,
            },
        )
        return bundle


_FILES_TO_BUNDLE = select(FILES.c.id, FILES.c.md5, FILES.c.pdq, FILES.c.pdq_quality, FILES.c.vpdq).where(
    FILES.c.report_id == bindparam("rid")
)
_SET_MATCHES = (
    update(FILES)
    .where(FILES.c.id == bindparam("fid"), FILES.c.report_id == bindparam("rid"))
    .values(matches=bindparam("found"))
)
_LAST_FINISH_SEQ = select(func.coalesce(func.max(REPORTS.c.finish_seq), 0)).where(
    REPORTS.c.tenant == bindparam("tenant")
)
_FINISH = update(REPORTS).where(REPORTS.c.id == bindparam("rid"))


def _bundle_lock(tenant: str) -> int:
    """The advisory lock key of a tenant's bundles (signed 64 bits, as PostgreSQL takes it)."""
    digest = hashlib.sha256(b"opspoor-intake-bundles:" + tenant.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _same_md5(conn: Connection, tenant: str, md5s: list[str]) -> set[int]:
    """Finished reports of the tenant with a file of one of these MD5s (by the MD5 index)."""
    if not md5s:
        return set()
    return set(conn.execute(_SAME_MD5, {"md5s": md5s, "tenant": tenant}).scalars())


_SAME_MD5 = (
    select(FILES.c.report_id)
    .join(REPORTS, REPORTS.c.id == FILES.c.report_id)
    .where(
        FILES.c.md5.in_(bindparam("md5s", expanding=True)),
        REPORTS.c.tenant == bindparam("tenant"),
        REPORTS.c.status == "finished",
    )
)


def _join_bundle(
    conn: Connection, tenant: str, others: set[int], now: datetime, index: BundleIndex
) -> int | None:
    found = {
        r.id: r.bundle_id
        for r in conn.execute(
            select(REPORTS.c.id, REPORTS.c.bundle_id).where(
                REPORTS.c.id.in_(others), REPORTS.c.tenant == tenant, REPORTS.c.status == "finished"
            )
        )
    }
    index.forget(tenant, others - set(found))  # deleted since (retention): the index drops them
    if not found:
        return None
    others = set(found)
    # distinct: the target must not be among the bundles merged into it
    bundles = sorted({b for b in found.values() if b is not None})
    if bundles:
        target = bundles[0]
        if len(set(bundles)) > 1:  # this report links bundles that were apart: one bundle now
            conn.execute(update(REPORTS).where(REPORTS.c.bundle_id.in_(bundles[1:])).values(bundle_id=target))
            conn.execute(delete(BUNDLES).where(BUNDLES.c.id.in_(bundles[1:])))
    else:
        target = int(
            conn.execute(
                insert(BUNDLES).values(tenant=tenant, created_at=now).returning(BUNDLES.c.id)
            ).scalar_one()
        )
    conn.execute(
        update(REPORTS)
        .where(REPORTS.c.id.in_(others), REPORTS.c.bundle_id.is_(None))
        .values(bundle_id=target)
    )
    return target


def expire_reports(store: Store, now: datetime) -> int:
    """Delete, with their files, the open and retracted reports past their expiry and the finished
    ones past their retention. Answers how many reports were deleted."""
    with store.write() as conn:
        gone = select(REPORTS.c.id).where(REPORTS.c.expires_at <= now)
        ids = list(conn.execute(gone).scalars())
        if not ids:
            return 0
        conn.execute(delete(FILES).where(FILES.c.report_id.in_(ids)))
        conn.execute(delete(REPORTS).where(REPORTS.c.id.in_(ids)))
        conn.execute(
            delete(BUNDLES).where(
                ~BUNDLES.c.id.in_(select(REPORTS.c.bundle_id).where(REPORTS.c.bundle_id.is_not(None)))
            )
        )
        return len(ids)


def list_reports(
    store: Store,
    tenant: str,
    now: datetime,
    *,
    token_id: int | None = None,
    country: str | None = None,
    limit: int = 1000,
) -> list[IntakeReport]:
    """Reports of the tenant (of one token's, or referred to ``country``), newest first; for a
    country, finished reports only, most urgent first."""
    q = select(REPORTS).where(
        REPORTS.c.tenant == tenant, or_(REPORTS.c.status == "finished", REPORTS.c.expires_at > now)
    )
    if token_id is not None:
        q = q.where(REPORTS.c.token_id == token_id)
    if country is not None:
        q = q.where(REPORTS.c.status == "finished", REPORTS.c.countries.like(f"% {country} %"))
        q = q.order_by(REPORTS.c.priority.desc(), REPORTS.c.finished_at, REPORTS.c.id)
    else:
        q = q.order_by(REPORTS.c.id.desc())
    with store.read() as conn:
        return [_report(r) for r in conn.execute(q.limit(limit))]


def reports_with_files(store: Store, reports: list[IntakeReport]) -> list[IntakeReport]:
    ids = [r.id for r in reports]
    with store.read() as conn:
        rows = conn.execute(
            select(*FILE_COLUMNS).where(FILES.c.report_id.in_(ids)).order_by(FILES.c.id)
        ).all()
    by = {r.id: r for r in reports}
    for row in rows:
        by[row.report_id].files.append(_file(row))
    return reports


def bundle_counts(store: Store, tenant: str, bundle_id: int) -> tuple[list[int], int]:
    """The reports of a bundle and its incidents (the reports it unbundles to)."""
    with store.read() as conn:
        ids = list(
            conn.execute(
                select(REPORTS.c.id)
                .where(REPORTS.c.tenant == tenant, REPORTS.c.bundle_id == bundle_id)
                .order_by(REPORTS.c.id)
            ).scalars()
        )
    if not ids:
        raise NotFound(f"no bundle {bundle_id}", where=f"bundle:{bundle_id}")
    return ids, len(ids)


def intake_counts(store: Store, tenant: str) -> dict[str, int]:
    """Reports as NCMEC counts them: a bundle counts once; incidents count every finished report."""
    with store.read() as conn:
        fin = (REPORTS.c.tenant == tenant) & (REPORTS.c.status == "finished")
        incidents = conn.execute(select(func.count()).where(fin)).scalar_one()
        loose = conn.execute(select(func.count()).where(fin, REPORTS.c.bundle_id.is_(None))).scalar_one()
        bundles = conn.execute(select(func.count(func.distinct(REPORTS.c.bundle_id))).where(fin)).scalar_one()
    return {"reports": int(loose) + int(bundles), "incidents": int(incidents), "bundles": int(bundles)}
