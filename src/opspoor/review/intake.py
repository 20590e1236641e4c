"""The hotline's intake in the review workspace: one queue for scans and reports.

The files of a tenant's finished reports that no hash set matched (new material) are a review case
of that tenant, ``intake:TENANT``: one group per bundle (the reports that share a picture or a
video), or per report outside a bundle, most urgent report first. The same app, keys and decisions
as a scan's case (``web.create_review_app``); the curator's *add to hash sets* button writes the
categorised files into the tenant's sets, so a later report of the same picture is matched known
when it is finished and never enters the queue. Only tokens of that tenant see the case
(``review.team``).

Pictures are made on demand: the sealed upload is opened in memory with the service's intake key
and veiled (grayscale, blurred) or, while a reviewer holds the key, revealed (colour, at most
512 px). Nothing is written anywhere in the clear. Known files are only counted, as in a scan.
"""

from __future__ import annotations

import posixpath
import threading
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from opspoor.errors import CaseError
from opspoor.intake.priority import priority_reasons
from opspoor.intake.sealing import unseal
from opspoor.media.sniff import kind_of
from opspoor.review.caseview import CaseView
from opspoor.review.evidence import revealed_view, veiled_view
from opspoor.store import Store
from opspoor.store.intake import IntakeFile
from opspoor.store.intake_review import ReportedFile, finished_files, finished_stamp, sealed_file

PREFIX = "intake:"
#: veiled pictures kept in memory per view (they are blurred and grayscale already)
VEILED_KEPT = 2000


def intake_case_id(tenant: str) -> str:
    return PREFIX + tenant


def intake_tenant(case_id: str) -> str | None:
    """The tenant of an intake case id, None for a published case."""
    return case_id[len(PREFIX) :] if case_id.startswith(PREFIX) else None


def file_status(matches: list[dict[str, Any]] | None) -> str:
    kinds = {m.get("kind") for m in matches or []}
    return "known" if "known" in kinds else "ignorable" if "ignorable" in kinds else "new"


def file_path(f: IntakeFile) -> str:
    """The file's name in the case: stable, so decisions stay with it when its report is bundled later."""
    name = posixpath.basename((f.file_name or "").replace("\\", "/")) or "file"
    return f"report-{f.report_id}/file-{f.id}/{name}"


def _record(rf: ReportedFile) -> dict[str, Any]:
    f = rf.file
    return {
        "path": file_path(f),
        "type": f.media_type,
        "status": file_status(f.matches),
        "size": f.size,
        **f.signals(),
        "matches": f.matches or [],
        "report_id": rf.report_id,
        "file_id": f.id,
    }


def _groups(new: list[ReportedFile]) -> list[tuple[str, int, dict[str, Any]]]:
    """One group per bundle (or lone report), the most urgent first, then the earliest finished."""
    by: dict[str, list[ReportedFile]] = {}
    for rf in new:
        gid = f"B{rf.bundle_id}" if rf.bundle_id is not None else f"R{rf.report_id}"
        by.setdefault(gid, []).append(rf)
    order = sorted(by.items(), key=lambda kv: (-max(r.priority for r in kv[1]), kv[1][0].finished_at, kv[0]))
    out = []
    for rank, (gid, members) in enumerate(order, 1):
        top = max(r.priority for r in members)
        reports = sorted({r.report_id for r in members})
        together = (
            f"bundle {members[0].bundle_id}: reports {', '.join(map(str, reports))} share a picture or video"
            if members[0].bundle_id is not None
            else f"the new files of report {reports[0]}"
        )
        types = Counter(r.file.media_type for r in members)
        info = {
            "paths": [file_path(r.file) for r in members],
            "types": sorted([t, n] for t, n in types.items()),
            "why_ranked": [f"report priority {top}: {', '.join(priority_reasons(top)) or 'no flag'}"],
            "why_together": [together],
            "date_first": min(r.finished_at for r in members).isoformat(),
            "date_last": max(r.finished_at for r in members).isoformat(),
        }
        out.append((gid, rank, info))
    return out


class IntakeCaseView(CaseView):
    """The new files of a tenant's finished reports as a review case (see the module)."""

    def __init__(self, store: Store, tenant: str, key: bytes | None, now: datetime) -> None:  # noqa: D107
        self.store, self.tenant, self._key = store, tenant, key
        self.case_id = intake_case_id(tenant)
        self.dir = Path(self.case_id)
        self.stamp = finished_stamp(store, tenant)  # first: a report finished meanwhile makes a new one
        rows = finished_files(store, tenant, now)
        self._ids = {file_path(r.file): r.file.id for r in rows}
        self._veiled: dict[str, bytes] = {}
        self._lock = threading.Lock()
        new = [
            r for r in rows if file_status(r.file.matches) == "new" and kind_of(r.file.media_type) != "other"
        ]
        meta = {"source": "intake", "tenant": tenant, "identity": {"hashsets": [], "sources": []}}
        self._load(
            f"intake reports of {tenant}",
            meta,
            ((file_path(r.file), _record(r)) for r in rows),
            _groups(new),
            where=self.case_id,
        )

    def close(self) -> None:
        pass  # the store belongs to the service

    def _plain(self, path: str) -> bytes:
        """The file's bytes, unsealed in memory; only a new file's (known material is never shown)."""
        rec = self.records.get(path)
        if rec is None or rec["status"] != "new":
            raise CaseError("only the new material of the intake is shown", path)
        if self._key is None:
            raise CaseError("the service has no intake key to open the sealed files with", path)
        rid, sha256, blob = sealed_file(self.store, self.tenant, self._ids[path])
        return unseal(self._key, blob, f"report:{rid}:sha256:{sha256}")

    def thumb(self, path: str) -> bytes | None:
        return self.veiled(path, "image")

    def veiled(self, path: str, kind: str | None) -> bytes:
        with self._lock:
            data = self._veiled.get(path)
        if data is None:
            data = veiled_view(self._plain(path), path, kind)
            with self._lock:
                if len(self._veiled) >= VEILED_KEPT:
                    self._veiled.pop(next(iter(self._veiled)))
                self._veiled[path] = data
        return data

    def revealed(self, path: str, kind: str | None, *, full_size: bool = False) -> bytes:
        if full_size:
            raise CaseError("full size is not offered in team mode", path)
        return revealed_view(self._plain(path), path, kind)

    def evidence(self, path: str) -> bytes:
        return self._plain(path)  # in memory (``from-case --augment``)

    def sources(self) -> list[Path]:
        return []

    def queries(self) -> dict[str, str]:
        return {}
