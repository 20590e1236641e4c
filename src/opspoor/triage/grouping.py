"""Group new media into series candidates.

Links (union-find): near-duplicate images by PDQ (within the set distance), videos that share
frames (vPDQ), stills that appear as frames of a video, and media that share a camera serial.
Only hashes of quality >= 50 take part: below that PDQ is unreliable and flat images would
chain unrelated files together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from opspoor.index.hamming import HammingIndex
from opspoor.signals.pdq import hex_to_words

MIN_QUALITY = 50
#: two videos are linked when this share of the shorter one's unique frames have partners
VIDEO_SHARE = 0.2


@dataclass(slots=True)
class Member:
    path: str
    pdq: str | None = None
    quality: int | None = None
    frames: list[str] = field(default_factory=list)  # unique vPDQ frame hashes, quality >= 50
    serial: str | None = None


@dataclass(frozen=True, slots=True)
class Link:
    """Why two members were joined: ``pdq`` (near-duplicate images, ``value`` = distance),
    ``frames`` (videos sharing ``value`` frames), ``still`` (an image found as a frame of a video,
    ``value`` = distance) or ``serial`` (one camera body serial, ``detail``)."""

    a: int
    b: int
    kind: str
    value: int = 0
    detail: str = ""


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = np.arange(n)

    def find(self, i: int) -> int:
        p = self.parent
        root = i
        while p[root] != root:
            root = p[root]
        while p[i] != root:  # path compression
            p[i], i = root, p[i]
        return int(root)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def near_pairs(words: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """All pairs (i < j) of rows of ``words`` (N, 4 uint64) within ``radius`` bits, via the Hamming index."""
    a, b, _ = near_pairs_with_distance(words, radius)
    return a, b


def near_pairs_with_distance(words: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As :func:`near_pairs`, with each pair's Hamming distance."""
    n = len(words)
    if n < 2:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty
    index = HammingIndex.build(words, np.arange(n, dtype=np.int64))
    found = index.search(words, radius=radius)
    keep = found.query_idx < found.ids
    return (
        found.query_idx[keep].astype(np.int64),
        found.ids[keep].astype(np.int64),
        found.distances[keep].astype(np.int64),
    )


def group_members(
    members: Sequence[Member], radius: int = 31, links: list[Link] | None = None
) -> list[list[int]]:
    """Return groups as lists of member indexes; every member is in exactly one group.

    When ``links`` is given, each join is appended to it with its reason (for the report)."""
    uf = _UnionFind(len(members))
    # one row per image hash and per video frame hash, remembering which member it belongs to
    owners: list[int] = []
    hashes: list[str] = []
    for i, m in enumerate(members):
        if m.pdq and (m.quality or 0) >= MIN_QUALITY:
            owners.append(i)
            hashes.append(m.pdq)
        for h in m.frames:
            owners.append(i)
            hashes.append(h)
    if hashes:
        owner = np.asarray(owners, dtype=np.int64)
        a, b, dist = near_pairs_with_distance(hex_to_words(hashes), radius)
        oa, ob = owner[a], owner[b]
        cross = oa != ob
        oa, ob, dist = oa[cross], ob[cross], dist[cross]
        shared: dict[tuple[int, int], int] = defaultdict(int)
        nearest: dict[tuple[int, int], int] = {}
        for x, y, d in zip(oa.tolist(), ob.tolist(), dist.tolist(), strict=True):
            pair = (min(x, y), max(x, y))
            shared[pair] += 1
            nearest[pair] = min(d, nearest.get(pair, d))
        for (x, y), count in shared.items():
            fx, fy = len(members[x].frames), len(members[y].frames)
            # video-video: require a real share of frames, not one generic frame
            if fx and fy and count < max(1, VIDEO_SHARE * min(fx, fy)):
                continue
            uf.union(x, y)
            if links is not None:
                kind = "frames" if fx and fy else "still" if fx or fy else "pdq"
                links.append(Link(x, y, kind, count if kind == "frames" else nearest[(x, y)]))
    by_serial: dict[str, int] = {}
    for i, m in enumerate(members):
        if m.serial:
            key = m.serial.strip().lower()
            if key in by_serial:
                uf.union(by_serial[key], i)
                if links is not None:
                    links.append(Link(by_serial[key], i, "serial", detail=m.serial.strip()))
            else:
                by_serial[key] = i
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(members)):
        groups[uf.find(i)].append(i)
    return list(groups.values())


def why_together(links: Sequence[Link], radius: int) -> list[str]:
    """The reasons one group's members were joined, in words (one line per kind of link)."""
    out = []
    pdq = sorted(x.value for x in links if x.kind == "pdq")
    if pdq:
        span = f"{pdq[0]}" if pdq[0] == pdq[-1] else f"{pdq[0]}–{pdq[-1]}"
        pairs = "pair" if len(pdq) == 1 else "pairs"
        out.append(f"near-duplicate images: {len(pdq)} {pairs} within PDQ distance {span} (limit {radius})")
    frames = sorted(x.value for x in links if x.kind == "frames")
    if frames:
        out.append(
            f"videos sharing frames: {len(frames)} video pair{'s' if len(frames) != 1 else ''}, "
            f"{frames[-1]} shared frame{'s' if frames[-1] != 1 else ''} at most"
        )
    still = sorted(x.value for x in links if x.kind == "still")
    if still:
        out.append(f"stills found as frames of a video: {len(still)}, PDQ distance {still[0]} at best")
    serials = sorted({x.detail for x in links if x.kind == "serial"})
    if serials:
        out.append("same camera body serial: " + ", ".join(serials))
    return out
