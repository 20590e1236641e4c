"""A team's review cases in the shared store (PostgreSQL, or SQLite for a test): ``publish_case``
copies what the review app shows of a scanned case, and ``SharedCaseView`` reads it back as the one
case model (``caseview.CaseView``) the app uses locally too.

What is published is what the local app shows and no more: the case's identity and counts, its
records (paths, types, hashes, matches, EXIF clues; the robust query hashes, to match the case
again: ``rematch_published``), its groups with their reasons, and per new
media file the veiled picture (grayscale, blurred) and the reveal (in colour, at most 512 px). The
evidence itself stays where it is; a full-size reveal is therefore not offered in team mode.
The tables are created by the store's migration 0008 (``opspoor db upgrade``), never here.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import Engine

from opspoor.errors import CaseError, OpspoorError
from opspoor.media.sniff import kind_of
from opspoor.review.caseview import CaseView
from opspoor.review.decisions import ReviewDB

shared = MetaData()
cases = Table(
    "review_cases",
    shared,
    Column("case_id", String(200), primary_key=True),
    Column("name", Text, nullable=False),
    Column("meta", Text, nullable=False),
    Column("published_at", Float, nullable=False),
)
case_files = Table(
    "review_files",
    shared,
    Column("case_id", String(200), primary_key=True),
    Column("path", Text, primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("record", Text, nullable=False),
    Column("veiled", LargeBinary, nullable=True),
    Column("revealed", LargeBinary, nullable=True),
    # the robust query hashes (the case database's ``files.query``), to match again (migration 0010)
    Column("query", Text, nullable=True),
)
case_groups = Table(
    "review_groups",
    shared,
    Column("case_id", String(200), primary_key=True),
    Column("group_id", String(64), primary_key=True),
    Column("rank", Integer, nullable=False),
    Column("info", Text, nullable=False),
)


@dataclass(frozen=True, slots=True)
class Published:
    case_id: str
    files: int
    groups: int
    pictures: int
    missing: tuple[str, ...]  # members whose evidence could not be read (veiled/reveal absent)


def check_shared_tables(engine: Engine) -> None:
    """The shared store has the review tables (migration 0008), else one clear error."""
    have = set(inspect(engine).get_table_names())
    lacking = sorted({*(t.name for t in shared.sorted_tables), "review_decisions", "review_claims"} - have)
    if lacking:
        raise CaseError(
            f"the store has no review tables ({', '.join(lacking)}): run `opspoor db upgrade` first",
            engine.url.render_as_string(hide_password=True),
        )


def publish_case(case_dir: Path, engine: Engine, case_id: str | None = None) -> Published:
    """Put a scanned case into the shared store under ``case_id`` (default: the folder's name).
    Publishing again replaces the case's groups and pictures; decisions already made stay."""
    check_shared_tables(engine)
    view = CaseView(case_dir)
    cid = case_id or view.name
    members = {p for g in view.groups for p in g.paths}
    missing: list[str] = []
    pictures = 0
    try:
        queries = view.queries()
        rows = []
        for seq, (path, rec) in enumerate(view.records.items()):
            veiled = revealed = None
            if path in members:
                kind = kind_of(rec.get("type"))
                try:
                    veiled = view.veiled(path, kind)
                    revealed = view.revealed(path, kind)
                    pictures += 1
                except OpspoorError as exc:  # one line, the rest goes on
                    print(f"{path}: no picture published: {exc}", file=sys.stderr)
                    missing.append(path)
            rows.append(
                {
                    "case_id": cid,
                    "path": path,
                    "seq": seq,
                    "record": json.dumps(rec),
                    "veiled": veiled,
                    "revealed": revealed,
                    "query": queries.get(path),
                }
            )
        with engine.begin() as conn:
            for table in (case_files, case_groups, cases):
                conn.execute(delete(table).where(table.c.case_id == cid))
            conn.execute(
                insert(cases).values(
                    case_id=cid, name=view.name, meta=json.dumps(view.meta), published_at=time.time()
                )
            )
            if rows:
                conn.execute(insert(case_files), rows)
            groups = [
                {"case_id": cid, "group_id": g.id, "rank": g.rank, "info": json.dumps(_info(g))}
                for g in view.groups
            ]
            if groups:
                conn.execute(insert(case_groups), groups)
    finally:
        view.close()
    return Published(cid, len(rows), len(view.groups), pictures, tuple(missing))


def _info(g: Any) -> dict[str, Any]:
    """A group as the case database writes it (``CaseView._load`` reads it back)."""
    return {
        "paths": list(g.paths),
        "types": [list(t) for t in g.types],
        "why_ranked": list(g.why_ranked),
        "why_together": list(g.why_together),
        "cameras": list(g.cameras),
        "serials": list(g.serials),
        "gps": [None] * g.gps,
        "date_first": g.date_first,
        "date_last": g.date_last,
        "clues": list(g.clues),
        "links": list(g.links),
    }


def list_cases(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            {"case_id": r.case_id, "name": r.name, "published_at": r.published_at}
            for r in conn.execute(select(cases).order_by(cases.c.published_at.desc()))
        ]


def published_at(engine: Engine, case_id: str) -> float | None:
    with engine.connect() as conn:
        row = conn.execute(select(cases.c.published_at).where(cases.c.case_id == case_id)).first()
    return float(row[0]) if row else None


class SharedCaseView(CaseView):
    """A published case, read from the shared store; pictures are read when asked."""

    def __init__(self, engine: Engine, case_id: str) -> None:  # noqa: D107
        self.engine = engine
        self.case_id = case_id
        self.dir = Path(case_id)
        with engine.connect() as conn:
            head = conn.execute(select(cases).where(cases.c.case_id == case_id)).first()
            if head is None:
                raise CaseError("no such published case", case_id)
            self.published_at = float(head.published_at)
            files = [
                (r.path, json.loads(r.record))
                for r in conn.execute(
                    select(case_files.c.path, case_files.c.record)
                    .where(case_files.c.case_id == case_id)
                    .order_by(case_files.c.seq)
                )
            ]
            groups = [
                (r.group_id, int(r.rank), json.loads(r.info))
                for r in conn.execute(
                    select(case_groups).where(case_groups.c.case_id == case_id).order_by(case_groups.c.rank)
                )
            ]
        self._load(head.name, json.loads(head.meta), files, groups, where=case_id)

    def close(self) -> None:
        pass  # the engine belongs to the caller

    def _picture(self, path: str, column: str) -> bytes | None:
        col = case_files.c[column]
        with self.engine.connect() as conn:
            row = conn.execute(
                select(col).where(and_(case_files.c.case_id == self.case_id, case_files.c.path == path))
            ).first()
        return bytes(row[0]) if row and row[0] is not None else None

    def thumb(self, path: str) -> bytes | None:
        return self._picture(path, "veiled")

    def veiled(self, path: str, kind: str | None) -> bytes:
        data = self._picture(path, "veiled")
        if data is None:
            raise CaseError("no picture was published for this item", path)
        return data

    def revealed(self, path: str, kind: str | None, *, full_size: bool = False) -> bytes:
        if full_size:
            raise CaseError("full size is not published to the shared store (the evidence stays local)", path)
        data = self._picture(path, "revealed")
        if data is None:
            raise CaseError("no picture was published for this item", path)
        return data

    def sources(self) -> list[Path]:
        return []  # the evidence is not on the shared server

    def evidence(self, path: str) -> bytes:
        raise CaseError(
            "the evidence of a published case stays with its folder, so augmented hashes cannot be "
            "made here: run `opspoor hashset from-case CASE_DIR --augment` where the case folder is",
            self.case_id,
        )


def open_published(engine: Engine, case_id: str) -> tuple[SharedCaseView, ReviewDB]:
    """A published case and its shared decisions (the team's ``ReviewDB``), read from the store:
    what ``hashset from-case --published`` and the VICS export read in team mode."""
    check_shared_tables(engine)
    return SharedCaseView(engine, case_id), ReviewDB(engine, case_id, create=False)


def rematch_published(engine: Engine, case_id: str, store: Any) -> dict[str, Any]:
    """Match a published case again against its hash sets in ``store`` as they are now, from the
    signals published with it (no evidence is needed, none is here): verdicts and groups redone
    (``triage.rematch.rematch_records``), all in one transaction of the shared store. A file now
    known or ignorable loses its pictures (known material is never shown); a file no longer known
    has none until the case is published again from its folder (``without_picture``).
    Returns the change report, also appended to the case's meta (``rematches``)."""
    from opspoor.triage.rematch import REMATCHES, rematch_records

    check_shared_tables(engine)
    with engine.connect() as conn:
        head = conn.execute(select(cases).where(cases.c.case_id == case_id)).first()
        if head is None:
            raise CaseError("no such published case", case_id)
        files = [
            (int(r.seq), json.loads(r.record), json.loads(r.query) if r.query else None)
            for r in conn.execute(
                select(case_files.c.seq, case_files.c.record, case_files.c.query)
                .where(case_files.c.case_id == case_id)
                .order_by(case_files.c.seq)
            )
        ]
        pictured = {
            r.path
            for r in conn.execute(
                select(case_files.c.path).where(
                    and_(case_files.c.case_id == case_id, case_files.c.veiled.is_not(None))
                )
            )
        }
        groups_before = len(
            conn.execute(select(case_groups.c.group_id).where(case_groups.c.case_id == case_id)).all()
        )
    meta = json.loads(head.meta)
    ident = meta.get("identity") or {}
    names = list(ident.get("hashsets") or [])
    if not names:
        raise CaseError("the published case names no hash sets to match again", case_id)
    done = rematch_records(
        files,
        store,
        names,
        distance=ident.get("distance"),
        country=str(meta.get("country") or "NL"),
        groups_before=groups_before,
    )
    report = done.changes
    members = {m["path"] for g in done.groups for m in g.members}
    report["without_picture"] = sorted(members - pictured)
    veil_off = [*report["newly_known"]["files"], *report["newly_ignorable"]["files"]]
    meta[REMATCHES] = [*(meta.get(REMATCHES) or []), report]
    key = and_(case_files.c.case_id == bindparam("b_case"), case_files.c.path == bindparam("b_path"))
    with engine.begin() as conn:  # all of it, or (interrupted) none of it
        if done.records:
            conn.execute(
                update(case_files).where(key).values(record=bindparam("b_record")),
                [{"b_case": case_id, "b_path": r["path"], "b_record": json.dumps(r)} for r in done.records],
            )
        if veil_off:
            conn.execute(
                update(case_files).where(key).values(veiled=None, revealed=None),
                [{"b_case": case_id, "b_path": p} for p in veil_off],
            )
        conn.execute(delete(case_groups).where(case_groups.c.case_id == case_id))
        if done.groups:
            conn.execute(
                insert(case_groups),
                [
                    {"case_id": case_id, "group_id": g.id, "rank": g.rank, "info": json.dumps(g.info())}
                    for g in done.groups
                ],
            )
        # a new stamp: every worker's review app reads the case again
        conn.execute(
            update(cases)
            .where(cases.c.case_id == case_id)
            .values(meta=json.dumps(meta), published_at=max(time.time(), float(head.published_at) + 1e-3))
        )
    return report
