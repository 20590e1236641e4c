"""Reviewers' decisions into hash sets: every categorised file of a case becomes an entry with all
the signals the scan took (MD5, SHA-1, SHA-256, PDQ, vPDQ), its category, tags and series name.
Not-pertinent files (CAT-5, INHOPE not illegal) go to an ``ignorable`` set of their own, so a later
scan files them away without anyone looking again. The case's VICS export with the reviewers'
categories is written here too.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opspoor.hashsets.formats import write_entries
from opspoor.hashsets.formats.base import CaseInfo
from opspoor.hashsets.model import Category, Entry
from opspoor.media.sniff import kind_of
from opspoor.review.caseview import CaseView
from opspoor.review.decisions import NOT_PERTINENT, ReviewDB
from opspoor.signals.augment import augment_image_bytes
from opspoor.store import ImportResult, Store, import_entries
from opspoor.store.hashsets.schema import DEFAULT_TENANT


@dataclass(frozen=True, slots=True)
class FromCase:
    known: list[Entry]
    ignorable: list[Entry]
    undecided: int  # new files nobody categorised (not exported)
    augmented: int = 0  # images stored with their augmented hashes (--augment)


def _augmented(view: CaseView, path: str) -> dict[str, list[str]]:
    """The augmented hashes of one reviewed image, as ``hashset build --augment`` makes them, from
    its evidence (read-only); a published case has none here (``SharedCaseView.evidence`` says so)."""
    return augment_image_bytes(view.evidence(path), path).derived()


def entries_from_case(view: CaseView, review: ReviewDB, *, augment: bool = False) -> FromCase:
    """One entry per distinct content (by MD5) that reviewers categorised; the latest category stands.
    With ``augment``, each image also gets the augmented hashes of ``hashset build --augment``."""
    states = review.file_states(view.members())
    known: dict[str, Entry] = {}
    ignorable: dict[str, Entry] = {}
    undecided = augmented = 0
    for path, st in states.items():
        rec = view.records.get(path)
        if rec is None:
            continue
        if st.category is None or st.category.uncategorised:
            undecided += 1
            continue
        signals = {k: rec[k] for k in ("md5", "sha1", "sha256", "pdq") if rec.get(k)}
        if rec.get("vpdq_frames"):
            signals["vpdq"] = "\n".join(rec["vpdq_frames"])
        if not signals:
            undecided += 1
            continue
        bucket = ignorable if st.category.code in NOT_PERTINENT.get(st.category.scheme, ()) else known
        key = rec.get("md5") or path
        if key in bucket:
            continue
        tags = sorted(st.tags | {f"reviewed-by:{st.decided_by}"})
        derived = _augmented(view, path) if augment and kind_of(rec.get("type")) == "image" else {}
        augmented += bool(derived)
        bucket[key] = Entry(
            signals=signals,
            category=st.category,
            series=st.series,
            tags=tuple(tags),
            size=rec.get("size"),
            external_id=f"{view.name}:{path}",
            source=f"opspoor review of case {view.name}",
            derived=derived,
        )
    return FromCase(list(known.values()), list(ignorable.values()), undecided, augmented)


def write_hashsets(
    store: Store,
    name: str,
    found: FromCase,
    *,
    ignorable_name: str | None = None,
    progress: Callable[[int], None] | None = None,
    tenant: str = DEFAULT_TENANT,
) -> dict[str, ImportResult]:
    """Add the entries to set ``name`` (known) and ``ignorable_name`` (default ``NAME-ignorable``)
    of ``tenant``, creating them when missing; a file already in a set is not added twice (the
    store folds it)."""
    out: dict[str, ImportResult] = {}
    if found.known:
        out[name] = import_entries(
            store, name, found.known, kind="known", source="opspoor review", progress=progress, tenant=tenant
        )
    if found.ignorable:
        ig = ignorable_name or f"{name}-ignorable"
        out[ig] = import_entries(
            store, ig, found.ignorable, kind="ignorable", source="opspoor review", tenant=tenant
        )
    return out


def reviewed_vics_entries(view: CaseView, review: ReviewDB) -> list[Entry]:
    """The case's media for a VICS export, one per content (by MD5), each with every place it was
    found: a reviewed file carries the reviewers' category, tags and series name; a matched file its
    match's category; anything else goes out uncategorised (``us-cat:0``)."""
    states = review.file_states(view.members())
    by_md5: dict[str, Entry] = {}
    for path, rec in view.records.items():
        if rec["status"] not in ("known", "ignorable", "new") or not rec.get("md5"):
            continue
        st = states.get(path)
        e = by_md5.get(rec["md5"])
        if e is None:
            signals = {k: rec[k] for k in ("md5", "sha1", "sha256", "pdq") if rec.get(k)}
            category = st.category if st is not None and st.category is not None else _matched(rec)
            tags = sorted(st.tags) if st is not None else []
            e = Entry(
                signals=signals,
                category=category,
                series=st.series if st is not None else None,
                tags=tuple(tags),
                size=rec.get("size"),
                external_id=str(len(by_md5) + 1),
            )
            e.extra["files"] = []
            by_md5[rec["md5"]] = e
        e.extra["files"].append(
            {"MD5": rec["md5"].upper(), "FileName": posixpath.basename(path), "FilePath": path}
        )
    return list(by_md5.values())


def _matched(rec: dict[str, Any]) -> Category:
    for kind in ("known", "ignorable"):
        for m in rec.get("matches") or []:
            if m.get("kind") == kind and m.get("category"):
                return Category(m["category"]["scheme"], m["category"]["code"])
    return Category("us-cat", "0")


def write_reviewed_vics(view: CaseView, review: ReviewDB, path: Path) -> int:
    """The case's VICS 2.0 ``#Cases`` export with the reviewers' categories, tags and series."""
    info = CaseInfo(case_id=1, case_number=view.name, properties={"SourceApplicationName": "opspoor review"})
    return write_entries(reviewed_vics_entries(view, review), path, "vics2", cases=info)
