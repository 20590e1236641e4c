"""The case's VICS 2.0 ``#Cases`` export: one Media per distinct content (by MD5), with a MediaFile
for every place it was found. Matched media carry the category of their known (or ignorable)
match; new media go out uncategorised (``us-cat:0``), ready for an analyst to categorise."""

from __future__ import annotations

import posixpath
from typing import Any, BinaryIO

from opspoor.hashsets.formats import write_entries
from opspoor.hashsets.formats.base import CaseInfo
from opspoor.hashsets.model import Category, Entry
from opspoor.triage.case import CaseDB
from opspoor.triage.config import ScanConfig

EXPORTED = ("known", "ignorable", "new")
UNCATEGORISED = Category("us-cat", "0")


def _category(rec: dict[str, Any]) -> Category:
    for kind in ("known", "ignorable"):
        for m in rec["matches"]:
            if m.get("kind") == kind and m.get("category"):
                return Category(m["category"]["scheme"], m["category"]["code"])
    return UNCATEGORISED


def case_entries(case: CaseDB) -> list[Entry]:
    by_md5: dict[str, Entry] = {}
    for f in case.iter_files():
        r = f.record
        if r["status"] not in EXPORTED or not r.get("md5"):
            continue
        media_file = {
            "MD5": r["md5"].upper(),
            "FileName": posixpath.basename(r["path"]),
            "FilePath": r["path"],
        }
        if "deleted" in r or r.get("carved"):  # found inside a disk image (docs/disk-images.md)
            media_file["Deleted"] = bool(r.get("deleted"))
            media_file["Unallocated"] = bool(r.get("unallocated"))
            if r.get("offset") is not None:
                media_file["PhysicalLocation"] = int(r["offset"])
        e = by_md5.get(r["md5"])
        if e is None:
            signals = {k: r[k] for k in ("md5", "sha1", "sha256") if r.get(k)}
            if r.get("pdq"):
                signals["pdq"] = r["pdq"]
            e = Entry(
                signals=signals, category=_category(r), size=r.get("size"), external_id=str(len(by_md5) + 1)
            )
            if r.get("group"):  # a series candidate, not an analyst's series name: a tag
                e.tags = (f"opspoor-group:{r['group']}",)
            e.extra["files"] = []
            by_md5[r["md5"]] = e
        e.extra["files"].append(media_file)
    return list(by_md5.values())


def write_vics_export(case: CaseDB, cfg: ScanConfig, fh: BinaryIO) -> int:
    info = CaseInfo(case_id=1, case_number=cfg.case_dir.name, properties={"SourceApplicationName": "opspoor"})
    return write_entries(case_entries(case), fh, "vics2", cases=info)
