"""Which finished reports a report shares a picture or a video with, without a pass over them all.

A :class:`BundleIndex` keeps, per tenant, the PDQs of the files of its finished reports in a
Hamming index (:class:`opspoor.index.HammingIndex`, ids = report ids) and the unique good vPDQ
frames of its videos in another (ids = file ids). It lives as long as the service worker; each
finish brings it up to date first, inside the finish's transaction and under the tenant's bundle
lock (see ``store.intake.finish_report``): the reports finished since it last looked, by any worker,
are those with a larger ``finish_seq``. Nothing is added from a transaction that may still roll
back, so a failed finish leaves no trace here. Reports deleted later (retention) are dropped when a
search finds them and the store no longer has them.

Same MD5 is asked of the store (an indexed column); only the near-duplicates need the index.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from sqlalchemy import Connection, Select, Table, and_, bindparam, func, select
from sqlalchemy.sql.elements import ColumnElement

from opspoor.index import HammingIndex
from opspoor.signals.pdq import hex_to_words
from opspoor.signals.robust import FLAT_QUALITY, LOW_QUALITY_DISTANCE
from opspoor.signals.vpdq import (
    QUALITY_THRESHOLD,
    QUERY_MATCH_SHARE,
    TARGET_MATCH_SHARE,
    frame_shares,
    parse_vpdq,
    unique_good_hashes,
)

#: the delta segment is folded into the base when it holds this many entries (or an eighth of all)
MERGE_AT = 2048


#: below PDQ quality 50 a hash is weak (smooth pictures): it bundles only this close, as matching
#: treats weak query hashes (``signals.robust``); below quality 10 a hash is noise and bundles nothing
WEAK_DISTANCE = LOW_QUALITY_DISTANCE


def pdq_kind(quality: int | None) -> str | None:
    """``good``, ``weak`` or None (bundles nothing) for a PDQ of this quality."""
    q = quality or 0
    return "good" if q >= QUALITY_THRESHOLD else "weak" if q >= FLAT_QUALITY else None


def _index() -> HammingIndex:
    return HammingIndex(threads=1)  # a finish searches a few hashes: no thread pool for that


@dataclass
class _Tenant:
    seq: int = 0  # the largest finish_seq taken in
    pdq: HammingIndex = field(default_factory=_index)  # quality >= 50
    weak: HammingIndex = field(default_factory=_index)  # quality 10-49
    frames: HammingIndex = field(default_factory=_index)
    #: file id -> (report id, its unique good frame words) of the videos taken in
    videos: dict[int, tuple[int, np.ndarray]] = field(default_factory=dict)


class BundleIndex:
    """Near-duplicate lookup over the finished reports of each tenant (see the module)."""

    def __init__(self) -> None:
        self._tenants: dict[str, _Tenant] = {}
        self._lock = threading.Lock()  # the same tenant's finishes already wait for each other

    def near(
        self,
        conn: Connection,
        reports: Table,
        files: Table,
        tenant: str,
        pdqs: list[tuple[str, int | None]],
        videos: list[str],
        distance: int,
    ) -> set[int]:
        """Finished reports of ``tenant`` with a PDQ near one of ``pdqs`` (hash, quality): within
        ``distance`` when both are good (quality >= 50), within ``WEAK_DISTANCE`` when either is
        weak (10-49), never below quality 10; or with a video whose unique good vPDQ frames match
        one of ``videos`` (vPDQ text) both ways by vPDQ's shares. Call it holding the tenant's
        bundle lock, in the finish's transaction."""
        with self._lock:
            t = self._tenants.get(tenant)
            if t is None:  # (not setdefault: that would build three empty indexes every call)
                t = self._tenants[tenant] = _Tenant()
            self._catch_up(conn, reports, files, tenant, t)
            found: set[int] = set()
            for pdq, quality in pdqs:
                kind = pdq_kind(quality)
                if kind is None:
                    continue
                words = hex_to_words([pdq])
                weak = min(distance, WEAK_DISTANCE)
                for index, radius in ((t.pdq, distance if kind == "good" else weak), (t.weak, weak)):
                    if len(index):
                        found |= {int(i) for i in index.search(words, radius=radius).ids}
                if kind == "good" and len(t.frames):  # a still that is a frame of a reported video
                    hits = {int(f) for f in t.frames.search(words, radius=distance).ids}
                    found |= {t.videos[f][0] for f in hits if f in t.videos}
            for text in videos:
                found |= self._near_video(t, text, distance)
                found |= self._stills_of(t, text, distance)
        return found

    def _stills_of(self, t: _Tenant, text: str, distance: int) -> set[int]:
        """Reports with a good still within ``distance`` of one of this video's good frames."""
        mine = unique_good_hashes(parse_vpdq(text))
        if not len(mine) or not len(t.pdq):
            return set()
        return {int(i) for i in t.pdq.search(mine, radius=distance).ids}

    def forget(self, tenant: str, report_ids: set[int]) -> None:
        """These reports are gone from the store: stop finding them."""
        if not report_ids:
            return
        with self._lock:
            t = self._tenants.get(tenant)
            if t is None:
                return
            t.pdq.remove(np.fromiter(report_ids, np.int64))
            t.weak.remove(np.fromiter(report_ids, np.int64))
            gone = [fid for fid, (rid, _) in t.videos.items() if rid in report_ids]
            for fid in gone:
                del t.videos[fid]
            if gone:
                t.frames.remove(np.asarray(gone, np.int64))

    def _catch_up(self, conn: Connection, reports: Table, files: Table, tenant: str, t: _Tenant) -> None:
        top_q, rows_q = _catch_up_queries(reports, files)
        params = {"tenant": tenant, "seq": t.seq}
        top = conn.execute(top_q, params).scalar_one_or_none()
        if top is None:
            return
        rows = conn.execute(rows_q, {**params, "top": top}).all()
        for kind, index in (("good", t.pdq), ("weak", t.weak)):
            these = [(r.report_id, r.pdq) for r in rows if r.pdq and pdq_kind(r.pdq_quality) == kind]
            if these:
                index.add(hex_to_words([p for _, p in these]), np.asarray([r for r, _ in these], np.int64))
        for r in rows:
            if r.vpdq:
                words = unique_good_hashes(parse_vpdq(r.vpdq))
                if len(words):
                    t.videos[int(r.id)] = (int(r.report_id), words)
                    t.frames.add(words, np.full(len(words), r.id, np.int64))
        for index in (t.pdq, t.weak, t.frames):
            if index.delta_size >= max(MERGE_AT, len(index) // 8):
                index.merge()
        t.seq = int(top)

    def _near_video(self, t: _Tenant, text: str, distance: int) -> set[int]:
        mine = unique_good_hashes(parse_vpdq(text))
        if not len(mine) or not len(t.frames):
            return set()
        m = t.frames.search(mine, radius=distance)
        found: set[int] = set()
        for fid in np.unique(m.ids):
            if int(fid) not in t.videos:
                continue
            rid, theirs = t.videos[int(fid)]
            q_share, t_share = frame_shares(mine, theirs, distance)
            if q_share >= QUERY_MATCH_SHARE and t_share >= TARGET_MATCH_SHARE:
                found.add(rid)
        return found


@cache
def _catch_up_queries(reports: Table, files: Table) -> tuple[Select[Any], Select[Any]]:
    """The largest ``finish_seq`` past ``:seq`` of ``:tenant``, and the files of the reports finished
    from ``:seq`` to ``:top``; built once (SQLAlchemy then reuses their cache keys)."""
    newer: ColumnElement[bool] = and_(
        reports.c.tenant == bindparam("tenant"), reports.c.finish_seq > bindparam("seq")
    )
    top = select(func.max(reports.c.finish_seq)).where(newer)
    rows = (
        select(files.c.report_id, files.c.id, files.c.pdq, files.c.pdq_quality, files.c.vpdq)
        .join(reports, reports.c.id == files.c.report_id)
        .where(newer, reports.c.finish_seq <= bindparam("top"))
    )
    return top, rows
