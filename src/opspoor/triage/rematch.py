"""Match a finished case again against the hash sets as they are now, without reading any file.

Every record keeps the signals the scan took (MD5, SHA-1, SHA-256, PDQ with its robust query
hashes, vPDQ frames); they are matched again, the verdicts and the groups of new media are redone,
and the change is said: files newly known or ignorable (by set and category), files no longer
known, the counts before and after. All of it is written in one transaction of the case database:
an interrupted re-match leaves the case as it was, and running it again finishes it.

Local features are not kept in a case (up to 48 KB an image), so they cannot be matched again
without reading the file: a match by local features the scan found is kept while its set is still
matched, and said in the change report.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opspoor.errors import CaseError
from opspoor.matching import LOCAL, Matcher
from opspoor.media.sniff import kind_of
from opspoor.triage.case import CASE_DB, CaseDB, check_is_case
from opspoor.triage.config import ScanConfig
from opspoor.triage.links import index_case, merge_others, read_case
from opspoor.triage.pool import CRASH
from opspoor.triage.priority import Group
from opspoor.triage.provenance import describe_hashsets
from opspoor.triage.records import STATUSES, verdict
from opspoor.triage.scan import _query_signals, _set_versions
from opspoor.triage.summary import assign_groups, build_summary, group_new

#: the change reports of every re-match, oldest first (case meta)
REMATCHES = "rematches"


@dataclass(slots=True)
class RematchResult:
    cfg: ScanConfig
    summary: dict[str, Any]
    groups: list[Group]
    #: what changed (see ``_Changes.report``), also appended to the case meta ``rematches``
    changes: dict[str, Any]
    outputs: dict[str, Path] = field(default_factory=dict)


def _category(m: dict[str, Any]) -> str:
    cat = m.get("category")
    return f"{cat['scheme']}:{cat['code']}" if cat else "uncategorised"


class _Changes:
    """Verdicts before and after, and the files that moved between known, ignorable and the rest."""

    def __init__(self) -> None:
        self.before: Counter[str] = Counter({s: 0 for s in STATUSES})
        self.after: Counter[str] = Counter({s: 0 for s in STATUSES})
        self.moved: dict[str, list[str]] = {
            "newly_known": [],
            "newly_ignorable": [],
            "no_longer_known": [],
            "no_longer_ignorable": [],
        }
        # (hashset, category) -> files, for the newly known and newly ignorable
        self.by_set: dict[str, Counter[tuple[str, str]]] = {
            "newly_known": Counter(),
            "newly_ignorable": Counter(),
        }
        self.local_kept = 0

    def note(self, path: str, old: str, new: str, matches: list[dict[str, Any]]) -> None:
        self.before[old] += 1
        self.after[new] += 1
        if old == new:
            return
        for kind in ("known", "ignorable"):
            if new == kind:
                self.moved[f"newly_{kind}"].append(path)
                hits = {(m["hashset"], _category(m)) for m in matches if m.get("kind") == kind}
                self.by_set[f"newly_{kind}"].update(hits)
            if old == kind:
                self.moved[f"no_longer_{kind}"].append(path)

    def report(
        self, hashsets: list[str], before_sets: list[str], groups_before: int, groups: int
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "at": time.time(),
            "hashsets": hashsets,
            "hashsets_before": before_sets,
            "files": sum(self.after.values()),
            "files_read": 0,  # nothing is hashed again: the signals come from the case
            "by_status_before": dict(self.before),
            "by_status": dict(self.after),
            "groups_before": groups_before,
            "groups": groups,
            "local_matches_kept": self.local_kept,
        }
        for key, paths in self.moved.items():
            entry: dict[str, Any] = {"count": len(paths), "files": sorted(paths)}
            if key in self.by_set:
                entry["by_set"] = [
                    {"hashset": hs, "category": cat, "files": n}
                    for (hs, cat), n in sorted(self.by_set[key].items())
                ]
            out[key] = entry
        return out


def _match_again(
    rows: list[tuple[dict[str, Any], dict[str, Any] | None]],
    matcher: Matcher,
    names: list[str],
    changes: _Changes,
    earlier: dict[str, str],
) -> list[dict[str, Any]]:
    """Records (with their stored queries) matched again: new matches, verdict, group cleared (the
    group each was in goes to ``earlier``); the change noted. A record without signals (a worker
    crash) is left as it is and not returned."""
    sigs = [_query_signals(rec, query) for rec, query in rows]
    updated = []
    for (rec, _), matches in zip(rows, matcher.match_batch(sigs), strict=True):
        old = rec["status"]
        if rec.get("error_reason") == CRASH:  # no signals to match: the scan's retry is its own
            changes.note(rec["path"], old, old, [])
            continue
        kept = [m for m in rec.get("matches") or [] if m.get("signal") == LOCAL and m.get("hashset") in names]
        if kept and not any(m.get("signal") == LOCAL for m in matches):
            changes.local_kept += 1
            matches = matches + kept
        status = verdict(kind_of(rec.get("type")), matches, failed=rec.get("error") is not None)
        changes.note(rec["path"], old, status, matches)
        if rec.get("group"):
            earlier[rec["path"]] = rec["group"]
        rec["matches"], rec["status"], rec["group"] = matches, status, None
        updated.append(rec)
    return updated


@dataclass(slots=True)
class RecordsRematch:
    """Published records matched again (``rematch_records``): the ones that changed, the groups."""

    records: list[dict[str, Any]]
    groups: list[Group]
    changes: dict[str, Any]


def rematch_records(
    files: list[tuple[int, dict[str, Any], dict[str, Any] | None]],
    store: Any,
    names: list[str],
    *,
    distance: int | None = None,
    country: str = "NL",
    groups_before: int = 0,
) -> RecordsRematch:
    """A case's records held elsewhere (``(seq, record, query)``: a case published to the shared
    store) matched again against ``names`` in ``store``, and its new media grouped again; nothing
    is written here. The records are changed in place."""
    before_sets = list(names)
    _set_versions(store, names)  # a wrong name fails here
    matcher = Matcher.from_store(store, names, distance, cache=True)
    changes = _Changes()
    earlier: dict[str, str] = {}
    updated: list[dict[str, Any]] = []
    for k in range(0, len(files), 512):
        batch = files[k : k + 512]
        updated += _match_again([(rec, q) for _, rec, q in batch], matcher, names, changes, earlier)
    seq_of = {rec["path"]: seq for seq, rec, _ in files}
    new = [(seq_of[r["path"]], r) for r in updated if r["status"] == "new"]
    groups = group_new(sorted(new, key=lambda sr: sr[0]), matcher.pdq_radius, country, (), earlier)
    return RecordsRematch(updated, groups, changes.report(names, before_sets, groups_before, len(groups)))


def finished_identity(case: CaseDB) -> dict[str, Any]:
    """The identity of a case whose scan ran to its end, else one clear error."""
    ident = case.get_meta("identity")
    if ident is None or case.get_meta("files_in") is None:
        raise CaseError(
            "the scan of this case has not finished: run the same opspoor scan command to the end first",
            str(case.path),
        )
    return dict(ident)


def rematch_case_db(
    case_dir: Path,
    hashsets: list[str] | None = None,
    *,
    db_url: str | None = None,
    distance: int | None = None,
    country: str = "NL",
    link_cases: list[Path] | None = None,
    log: Callable[[str], None] | None = None,
) -> RematchResult:
    """Match the case in ``case_dir`` again against ``hashsets`` (default: the sets it was scanned
    with) and redo its verdicts, groups and summary in one transaction. The outputs (files.jsonl,
    report, …) are the layer above's (``casefile.rematch``)."""
    from opspoor.store import get_hashset, open_store

    say = log or (lambda _m: None)
    check_is_case(case_dir / CASE_DB)
    case = CaseDB(case_dir)
    try:
        ident = finished_identity(case)
        before_sets = list(ident.get("hashsets") or [])
        names = list(dict.fromkeys(hashsets or before_sets))
        if distance is None:
            distance = ident.get("distance")
        store = open_store(db_url)
        try:
            versions = _set_versions(store, names)  # a wrong name fails here, before any change
            info = describe_hashsets(store, [get_hashset(store, n) for n in names])
            matcher = Matcher.from_store(store, names, distance, cache=True)
        finally:
            store.close()
        indexed = index_case(
            db_url, case_dir, case.get_meta("case_number"), (f.record for f in case.iter_files())
        )
        others = merge_others(indexed, [read_case(p) for p in link_cases or []])
        cfg = ScanConfig(
            sources=[Path(p) for p in ident.get("sources") or []],
            hashsets=names,
            case_dir=case_dir,
            db_url=db_url,
            thumbnails=case.has_thumbs(),
            distance=distance,
            country=country,
            link_cases=list(link_cases or []),
        )
        changes = _Changes()
        earlier: dict[str, str] = {}  # path -> its group: a group keeps its id (decisions find it)
        groups_before = len(case.conn.execute("SELECT group_id FROM groups").fetchall())
        with case.transaction():  # all of it, or (interrupted) none of it
            for rows in case.iter_queries():
                case.update_records(_match_again(rows, matcher, names, changes, earlier))
            radius = matcher.pdq_radius
            groups = assign_groups(case, radius=radius, country=country, others=others, earlier=earlier)
            ident["hashsets"] = sorted(names)  # the case is now of these sets (a later scan resumes it)
            case.set_meta("identity", ident)
            case.set_meta("hashset_versions", versions)
            case.set_meta("hashsets", info)
            case.set_meta("country", country)
            report = changes.report(names, before_sets, groups_before, len(groups))
            case.set_meta(REMATCHES, [*(case.get_meta(REMATCHES) or []), report])
            files_in = int(case.get_meta("files_in"))
            summary = build_summary(case, cfg, files_in, case.get_meta("started"), groups)
        say(
            f"matched {report['files']} files again against {', '.join(names)} (no file read): "
            f"{report['newly_known']['count']} newly known, "
            f"{report['no_longer_known']['count']} no longer known"
        )
        return RematchResult(cfg, summary, groups, report)
    finally:
        case.close()
