"""Reviewers' decisions, reveals and the audit trail of one case, in ``review.sqlite`` beside the
case database (the scan's ``case.sqlite`` refuses tables it does not know, and a rescan must not
lose what people decided).

Nothing is ever deleted: an undo marks a decision undone (who, when) and the row stays, so the
trail shows every step. A decision on a group (``path`` null) covers every member; a decision on
one file overrides it for that file. Each reviewer's latest decision stands for them, so two
reviewers who disagree both stay visible; the case's category of a file is the latest of all.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    delete,
    event,
    insert,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from opspoor.errors import CaseError
from opspoor.hashsets.model import SCHEMES, Category

REVIEW_DB = "review.sqlite"

metadata = MetaData()
decisions = Table(
    "review_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", String(200), nullable=False, default="", index=True),
    Column("at", Float, nullable=False),
    Column("reviewer", String(200), nullable=False),
    Column("group_id", String(64), nullable=False, index=True),
    Column("path", Text, nullable=True),  # null: the whole group
    # a group decision names the members it was made on: a rescan that groups differently must not
    # carry it over to files nobody looked at
    Column("members", Text, nullable=True),
    Column("scheme", String(16), nullable=True),  # null with code: a tag or note only
    Column("code", String(32), nullable=True),
    Column("tags", Text, nullable=False, default="[]"),
    Column("note", Text, nullable=True),
    Column("series", Text, nullable=True),
    Column("undone_at", Float, nullable=True),
    Column("undone_by", String(200), nullable=True),
)
reveals = Table(
    "review_reveals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", String(200), nullable=False, default="", index=True),
    Column("reviewer", String(200), nullable=False),
    Column("path", Text, nullable=False),
    Column("started", Float, nullable=False),
    Column("seconds", Float, nullable=True),  # null until the reviewer lets go
    Column("full_size", Integer, nullable=False, default=0),
)
audit = Table(
    "review_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", String(200), nullable=False, default="", index=True),
    Column("at", Float, nullable=False),
    Column("reviewer", String(200), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", Text, nullable=True),
    Column("detail", Text, nullable=True),
)
claims = Table(
    "review_claims",
    metadata,
    Column("case_id", String(200), primary_key=True),
    Column("group_id", String(64), primary_key=True),
    Column("reviewer", String(200), nullable=False),
    Column("expires", Float, nullable=False),
)
#: how long a reviewer holds a group they opened before another reviewer may be given it (seconds)
CLAIM_SECONDS = 15 * 60

#: codes that say "not pertinent": these files go to an ``ignorable`` set, not a set of known material
NOT_PERTINENT: dict[str, frozenset[str]] = {
    "us-cat": frozenset({"5"}),
    "inhope": frozenset({"not-illegal"}),
}


def key_codes(scheme: str) -> dict[str, str]:
    """The digit keys of a scheme: Project VIC's ``0``–``5`` are their own codes; the other schemes'
    codes are on ``1``… in their order (UK A/B/C on 1/2/3)."""
    codes = SCHEMES[scheme]
    if scheme == "us-cat":
        return {c: c for c in codes}
    return {str(i): c for i, c in enumerate(codes, start=1)}


@dataclass(frozen=True, slots=True)
class Decision:
    id: int
    at: float
    reviewer: str
    group_id: str
    path: str | None
    category: Category | None
    tags: tuple[str, ...] = ()
    note: str | None = None
    series: str | None = None
    undone: bool = False
    members: tuple[str, ...] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "reviewer": self.reviewer,
            "group": self.group_id,
            "path": self.path,
            "category": f"{self.category.scheme}:{self.category.code}" if self.category else None,
            "tags": list(self.tags),
            "note": self.note,
            "series": self.series,
        }


@dataclass(slots=True)
class FileState:
    """What the reviewers decided about one file: the case's category (the latest decision), each
    reviewer's own, and every tag."""

    category: Category | None = None
    decided_by: str | None = None
    series: str | None = None
    by_reviewer: dict[str, str] = field(default_factory=dict)
    tags: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


class ReviewDB:
    """The review tables of one case: a SQLite file beside it (``review.sqlite``, owner-only) or,
    for a team, any SQLAlchemy URL (the same tables on PostgreSQL, one ``case_id`` per case)."""

    def __init__(self, engine: Engine, case_id: str = "", *, create: bool = True) -> None:
        """``create``: make the tables (a case's own ``review.sqlite``); a shared store has them from
        its migrations (0008) and is only checked."""
        self.engine = engine
        self.case_id = case_id
        try:
            if create:
                metadata.create_all(engine)
            found = inspect(engine)
            for table in metadata.sorted_tables:
                missing = {c.name for c in table.columns} - {c["name"] for c in found.get_columns(table.name)}
                if missing:
                    lacks = ", ".join(sorted(missing))
                    raise CaseError(
                        f"review tables of another opspoor version ({table.name} lacks {lacks})",
                        engine.url.render_as_string(hide_password=True),
                    )
        except SQLAlchemyError as exc:
            raise CaseError(
                f"cannot open the review tables: {exc.__class__.__name__}", str(engine.url)
            ) from exc

    @classmethod
    def at_url(cls, url: str, case_id: str) -> ReviewDB:
        """The review tables in a shared database (a team's PostgreSQL), for case ``case_id``."""
        return cls(create_engine(url), case_id, create=False)

    @classmethod
    def for_case(cls, case_dir: Path) -> ReviewDB:
        path = case_dir / REVIEW_DB
        if not case_dir.is_dir():
            raise CaseError("not a case folder", str(case_dir))
        old = os.umask(0o077)
        try:
            engine = create_engine(f"sqlite:///{path}")
            # WAL + NORMAL: a decision is one small write; a crash loses at most the last ones, never
            # the file (the same trade as the case database)
            event.listen(engine, "connect", _sqlite_wal)
            db = cls(engine)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        return db

    def close(self) -> None:
        self.engine.dispose()

    # --- decisions ---------------------------------------------------------------------------
    def decide(
        self,
        reviewer: str,
        group_id: str,
        path: str | None,
        category: Category | None,
        *,
        tags: Sequence[str] = (),
        note: str | None = None,
        series: str | None = None,
        members: Sequence[str] | None = None,
    ) -> Decision:
        """Record one decision (a category, tags, a note, a series name) on a file or a whole group."""
        now = time.time()
        row = {
            "case_id": self.case_id,
            "at": now,
            "reviewer": reviewer,
            "group_id": group_id,
            "path": path,
            "scheme": category.scheme if category else None,
            "code": category.code if category else None,
            "tags": json.dumps(sorted(set(tags))),
            "note": note,
            "series": series,
            "members": json.dumps(list(members)) if path is None and members is not None else None,
        }
        with self.engine.begin() as conn:
            new_id = conn.execute(insert(decisions).values(**row)).inserted_primary_key[0]  # type: ignore[index]
            target = path if path is not None else f"group {group_id}"
            what = f"{category.scheme}:{category.code}" if category else ""
            detail = {"decision": new_id, "category": what, "tags": sorted(set(tags))}
            self._audit(conn, now, reviewer, "decide", target, detail)
        return Decision(
            int(new_id), now, reviewer, group_id, path, category, tuple(sorted(set(tags))), note, series
        )

    def undo_last(self, reviewer: str) -> Decision | None:
        """Mark the reviewer's latest standing decision undone (the row stays); None when there is none."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(decisions)
                .where(and_(decisions.c.case_id == self.case_id, decisions.c.reviewer == reviewer))
                .where(decisions.c.undone_at.is_(None))
                .order_by(decisions.c.id.desc())
                .limit(1)
            ).first()
            if row is None:
                return None
            now = time.time()
            conn.execute(
                update(decisions).where(decisions.c.id == row.id).values(undone_at=now, undone_by=reviewer)
            )
            target = row.path or f"group {row.group_id}"
            self._audit(conn, now, reviewer, "undo", target, {"decision": row.id})
        return _decision(row)

    def standing(self, group_ids: Iterable[str] | None = None) -> list[Decision]:
        """Every decision not undone, oldest first (of these groups only, when given)."""
        q = select(decisions).where(
            and_(decisions.c.case_id == self.case_id, decisions.c.undone_at.is_(None))
        )
        q = q.order_by(decisions.c.id)
        if group_ids is not None:
            q = q.where(decisions.c.group_id.in_(list(group_ids)))
        with self.engine.connect() as conn:
            return [_decision(r) for r in conn.execute(q)]

    def file_states(self, members: Mapping[str, Sequence[str]]) -> dict[str, FileState]:
        """Each member's state, from the standing decisions of its group (``members``: group id to
        its paths). A file decision beats a group decision of the same reviewer; among reviewers,
        the latest decision is the case's."""
        out = {p: FileState() for paths in members.values() for p in paths}
        # (path, reviewer) -> (is a file decision, id, decision): the reviewer's standing one
        mine: dict[tuple[str, str], tuple[bool, int, Decision]] = {}
        for d in self.standing(members):
            if d.path is not None:
                targets = [d.path]
            else:  # the members it was made on, when recorded
                targets = list(d.members if d.members is not None else members.get(d.group_id, ()))
            for p in targets:
                if p not in out:
                    continue
                st = out[p]
                st.tags.update(d.tags)
                if d.note:
                    st.notes.append(d.note)
                if d.series:
                    st.series = d.series
                if d.category is None:
                    continue
                key = (p, d.reviewer)
                rank = (d.path is not None, d.id, d)
                if key not in mine or rank[:2] > mine[key][:2]:
                    mine[key] = rank
        latest: dict[str, tuple[bool, int, Decision]] = {}
        for (p, reviewer), (is_file, i, d) in mine.items():
            assert d.category is not None
            out[p].by_reviewer[reviewer] = f"{d.category.scheme}:{d.category.code}"
            if p not in latest or i > latest[p][1]:
                latest[p] = (is_file, i, d)
        for p, (_, _, d) in latest.items():
            out[p].category, out[p].decided_by = d.category, d.reviewer
        return out

    # --- reveals ------------------------------------------------------------------------------
    def reveal_started(
        self, reviewer: str, path: str, *, full_size: bool = False, known: dict[str, Any] | None = None
    ) -> int:
        """A reveal begins: its row, and an audit row (``reveal``, ``reveal-full``; a known item's,
        ``reveal-known``, carries the entry it matched)."""
        now = time.time()
        with self.engine.begin() as conn:
            rid = conn.execute(
                insert(reveals).values(
                    case_id=self.case_id, reviewer=reviewer, path=path, started=now, full_size=int(full_size)
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            action = "reveal-known" if known is not None else "reveal-full" if full_size else "reveal"
            detail = {
                "reveal": rid,
                **({"full_size": full_size, "matched": known} if known is not None else {}),
            }
            self._audit(conn, now, reviewer, action, path, detail)
        return int(rid)

    def reveal_ended(self, reviewer: str, reveal_id: int, seconds: float | None = None) -> None:
        """The reviewer let go: the time shown is measured here (from the start) unless the browser's
        own measurement is shorter (the picture took time to arrive)."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(reveals).where(
                    and_(
                        reveals.c.id == reveal_id,
                        reveals.c.reviewer == reviewer,
                        reveals.c.case_id == self.case_id,
                    )
                )
            ).first()
            if row is None or row.seconds is not None:
                return
            spent = time.time() - row.started
            if seconds is not None and 0 <= seconds < spent:
                spent = seconds
            conn.execute(update(reveals).where(reveals.c.id == reveal_id).values(seconds=round(spent, 3)))

    def exposure(self, since: float = 0.0) -> dict[str, Any]:
        """Reveals since ``since``: how many, of how many distinct files, and seconds per reviewer."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(reveals).where(and_(reveals.c.case_id == self.case_id, reveals.c.started >= since))
            ).all()
        per: dict[str, dict[str, float]] = {}
        for r in rows:
            p = per.setdefault(r.reviewer, {"reveals": 0, "seconds": 0.0})
            p["reveals"] += 1
            p["seconds"] += float(r.seconds or 0.0)
        return {"reveals": len(rows), "files": len({r.path for r in rows}), "by_reviewer": per}

    def note(self, reviewer: str, action: str, target: str, detail: dict[str, Any]) -> None:
        """An audit row of an action on the whole case (a curator's ``from-case``, a re-match)."""
        with self.engine.begin() as conn:
            self._audit(conn, time.time(), reviewer, action, target, detail)

    def _audit(
        self, conn: Any, at: float, reviewer: str, action: str, target: str, detail: dict[str, Any]
    ) -> None:
        conn.execute(
            insert(audit).values(
                case_id=self.case_id,
                at=at,
                reviewer=reviewer,
                action=action,
                target=target,
                detail=json.dumps(detail),
            )
        )

    # --- claims (several reviewers on one case) --------------------------------------------------
    def claim_next(
        self,
        reviewer: str,
        candidates: Iterable[str],
        *,
        seconds: float = CLAIM_SECONDS,
        now: float | None = None,
    ) -> str | None:
        """The first of ``candidates`` (groups in review order, not yet categorised) that no other
        reviewer holds, now held by ``reviewer`` for ``seconds``; a claim that expired is free again.
        Two reviewers asking at once get different groups: the claim row is the lock."""
        for group_id in candidates:
            if self.claim(reviewer, group_id, seconds=seconds, now=now):
                return group_id
        return None

    def claim(
        self, reviewer: str, group_id: str, *, seconds: float = CLAIM_SECONDS, now: float | None = None
    ) -> bool:
        """Hold ``group_id`` (or hold it longer), letting go of any other group the reviewer held;
        False when another reviewer holds it."""
        t = time.time() if now is None else now
        mine = and_(claims.c.case_id == self.case_id, claims.c.reviewer == reviewer)
        key = and_(claims.c.case_id == self.case_id, claims.c.group_id == group_id)
        try:
            with self.engine.begin() as conn:
                taken = conn.execute(
                    update(claims)
                    .where(key)
                    .where(or_(claims.c.reviewer == reviewer, claims.c.expires < t))
                    .values(reviewer=reviewer, expires=t + seconds)
                ).rowcount
                if not taken:
                    if conn.execute(select(claims.c.reviewer).where(key)).first() is not None:
                        return False  # held by another reviewer
                    conn.execute(
                        insert(claims).values(
                            case_id=self.case_id, group_id=group_id, reviewer=reviewer, expires=t + seconds
                        )
                    )
                conn.execute(delete(claims).where(mine).where(claims.c.group_id != group_id))
                return True
        except IntegrityError:
            return False  # another reviewer claimed it between our look and our insert

    def holder(self, group_id: str, *, now: float | None = None) -> str | None:
        """Who holds ``group_id`` now, if anyone."""
        t = time.time() if now is None else now
        with self.engine.connect() as conn:
            row = conn.execute(
                select(claims).where(and_(claims.c.case_id == self.case_id, claims.c.group_id == group_id))
            ).first()
        return row.reviewer if row is not None and row.expires >= t else None

    def audit_trail(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [
                dict(r._mapping)
                for r in conn.execute(
                    select(audit).where(audit.c.case_id == self.case_id).order_by(audit.c.id)
                )
            ]


def _sqlite_wal(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def _decision(r: Any) -> Decision:
    return Decision(
        id=int(r.id),
        at=float(r.at),
        reviewer=r.reviewer,
        group_id=r.group_id,
        path=r.path,
        category=Category(r.scheme, r.code) if r.scheme and r.code else None,
        tags=tuple(json.loads(r.tags or "[]")),
        note=r.note,
        series=r.series,
        undone=r.undone_at is not None,
        members=tuple(json.loads(r.members)) if r.members else None,
    )
