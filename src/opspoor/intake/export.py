"""A referral package: what a hotline sends a country's police about the reports referred there.

The package is a folder (owner-only) holding

- ``reports.json``: the reports in NCMEC's element names, each with its files' details and hashes,
  its bundle, priority and the reasons it was referred;
- ``hashes.vics.json``: a Project VIC VICS 2.0 file of the files' hashes and the categories the
  hotline's sets gave them (none for new material);
- ``hashes.csv``: one line per file (report, file, MD5, SHA-1, SHA-256, PDQ, category);
- ``files/``: the files themselves, unsealed, only when asked for (``with_files``), and that is
  written to the audit log before any file is.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opspoor.errors import IntakeError
from opspoor.hashsets.formats.base import WriteOptions
from opspoor.hashsets.formats.vics_write import write_vics2
from opspoor.hashsets.model import Category, Entry
from opspoor.intake.sealing import unseal
from opspoor.store.audit import AuditEvent, append_audit
from opspoor.store.db import Store
from opspoor.store.intake import IntakeFile, IntakeReport, file_blob, list_reports, reports_with_files


@dataclass(frozen=True, slots=True)
class ReferralPackage:
    folder: Path
    reports: int
    files: int
    with_files: bool


def _private_file(path: Path) -> Any:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb")


def _category(f: IntakeFile) -> Category | None:
    for m in f.matches or []:
        if m.get("category"):
            return Category(m["category"]["scheme"], m["category"]["code"])
    return None


def report_record(rep: IntakeReport) -> dict[str, Any]:
    return {
        "reportId": rep.id,
        "report": rep.document,
        "finishedAt": rep.finished_at.isoformat() if rep.finished_at else None,
        "bundleId": rep.bundle_id,
        "priority": rep.priority,
        "referral": rep.referral,
        "fileDetails": [
            {
                **(f.details or {"fileId": f.id}),
                "originalFileHash": [
                    {"hashType": t, "value": v}
                    for t, v in (("MD5", f.md5), ("SHA1", f.sha1), ("SHA256", f.sha256))
                ]
                + ([{"hashType": "PDQ", "value": f.pdq}] if f.pdq else []),
                "matches": f.matches or [],
            }
            for f in rep.files
        ],
    }


def export_referral(
    store: Store,
    tenant: str,
    country: str,
    folder: Path,
    *,
    key: bytes | None = None,
    with_files: bool = False,
    now: datetime | None = None,
) -> ReferralPackage:
    """Write the referral package of ``country`` into the new folder ``folder``."""
    if with_files and key is None:
        raise IntakeError("the files can only be exported with the intake key", where="--with-files")
    if folder.exists():
        raise IntakeError("exists already; name a new folder", where=str(folder))
    now = now or datetime.now(UTC)
    reports = reports_with_files(store, list_reports(store, tenant, now, country=country, limit=1_000_000))
    folder.mkdir(mode=0o700, parents=True)
    with _private_file(folder / "reports.json") as out:
        out.write(
            json.dumps(
                {"country": country, "reports": [report_record(r) for r in reports]}, indent=1
            ).encode()
        )
    files = [f for r in reports for f in r.files]
    entries = [
        Entry(
            signals={
                k: v for k, v in (("md5", f.md5), ("sha1", f.sha1), ("sha256", f.sha256), ("pdq", f.pdq)) if v
            },
            category=_category(f),
            external_id=f"report:{f.report_id}/file:{f.id}",
        )
        for f in files
    ]
    with _private_file(folder / "hashes.vics.json") as out:
        write_vics2(entries, out, WriteOptions(name=f"referral {country}"))
    with _private_file(folder / "hashes.csv") as out:
        text = csv.writer(_Lines(out))
        text.writerow(["reportId", "fileId", "md5", "sha1", "sha256", "pdq", "category"])
        for f in files:
            c = _category(f)
            text.writerow(
                [f.report_id, f.id, f.md5, f.sha1, f.sha256, f.pdq or "", f"{c.scheme}:{c.code}" if c else ""]
            )
    events = [AuditEvent(now, None, tenant, "referral.export", f"country:{country}", "ok", 200)]
    if with_files:
        events.append(
            AuditEvent(
                now, None, tenant, "referral.export_files", f"country:{country}:{len(files)}", "ok", 200
            )
        )
    append_audit(store, events)  # before a single file leaves the store
    if with_files and key is not None:
        (folder / "files").mkdir(mode=0o700)
        for f in files:
            data = unseal(key, file_blob(store, f.id), f"report:{f.report_id}:sha256:{f.sha256}")
            name = Path(f.file_name or "file").name.replace(os.sep, "_") or "file"
            with _private_file(folder / "files" / f"{f.report_id}-{f.id}-{name}") as out:
                out.write(data)
    return ReferralPackage(folder, len(reports), len(files), with_files)


class _Lines:
    """A text sink for ``csv`` over a binary file."""

    def __init__(self, out: Any) -> None:
        self.out = out

    def write(self, s: str) -> int:
        return int(self.out.write(s.encode("utf-8")))
