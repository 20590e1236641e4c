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

import numpy as np
from sqlalchemy import Connection, Table, and_, func, select
from sqlalchemy.sql.elements import ColumnElement

from opspoor.index import HammingIndex
from opspoor.signals.pdq import hex_to_words
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


def good_pdq(pdq: str | None, quality: int | None) -> bool:
    """A PDQ that can say two pictures are the same: below quality 50 (flat, featureless pictures)
    PDQs of unrelated pictures lie close together, so they bundle nothing."""
    return bool(pdq) and (quality or 0) >= QUALITY_THRESHOLD


def _index() -> HammingIndex:
    return HammingIndex(threads=1)  # a finish searches a few hashes: no thread pool for that


@dataclass
class _Tenant:
    seq: int = 0  # the largest finish_seq taken in
    pdq: HammingIndex = field(default_factory=_index)
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
        pdqs: list[str],
        videos: list[str],
        distance: int,
    ) -> set[int]:
        """Finished reports of ``tenant`` with a good PDQ (``good_pdq``) within ``distance`` of one
        of ``pdqs`` (good ones, the caller's choice), or a
        video whose unique good vPDQ frames match one of ``videos`` (vPDQ text) both ways by
        vPDQ's shares. Call it holding the tenant's bundle lock, in the finish's transaction."""
        with self._lock:
            t = self._tenants.setdefault(tenant, _Tenant())
            self._catch_up(conn, reports, files, tenant, t)
            found: set[int] = set()
            if pdqs and len(t.pdq):
                m = t.pdq.search(hex_to_words(pdqs), radius=distance)
                found |= {int(i) for i in m.ids}
            for text in videos:
                found |= self._near_video(t, text, distance)
        return found

    def forget(self, tenant: str, report_ids: set[int]) -> None:
        """These reports are gone from the store: stop finding them."""
        if not report_ids:
            return
        with self._lock:
            t = self._tenants.get(tenant)
            if t is None:
                return
            t.pdq.remove(np.fromiter(report_ids, np.int64))
            gone = [fid for fid, (rid, _) in t.videos.items() if rid in report_ids]
            for fid in gone:
                del t.videos[fid]
            if gone:
                t.frames.remove(np.asarray(gone, np.int64))

    def _catch_up(self, conn: Connection, reports: Table, files: Table, tenant: str, t: _Tenant) -> None:
        newer: ColumnElement[bool] = and_(reports.c.tenant == tenant, reports.c.finish_seq > t.seq)
        top = conn.execute(select(func.max(reports.c.finish_seq)).where(newer)).scalar_one_or_none()
        if top is None:
            return
        rows = conn.execute(
            select(files.c.report_id, files.c.id, files.c.pdq, files.c.pdq_quality, files.c.vpdq)
            .join(reports, reports.c.id == files.c.report_id)
            .where(newer, reports.c.finish_seq <= top)
        ).all()
        with_pdq = [(r.report_id, r.pdq) for r in rows if good_pdq(r.pdq, r.pdq_quality)]
        if with_pdq:
            t.pdq.add(hex_to_words([p for _, p in with_pdq]), np.asarray([r for r, _ in with_pdq], np.int64))
        for r in rows:
            if r.vpdq:
                words = unique_good_hashes(parse_vpdq(r.vpdq))
                if len(words):
                    t.videos[int(r.id)] = (int(r.report_id), words)
                    t.frames.add(words, np.full(len(words), r.id, np.int64))
        for index in (t.pdq, t.frames):
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
