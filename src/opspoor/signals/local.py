"""Local features: ORB keypoints, matched and then checked for one consistent geometry.

A global hash (PDQ) describes the whole frame, so a crop that is not centred moves it past any
useful threshold, and storing more crops of each original brought false matches before it
brought recall (docs/robustness.md). Local features describe small patches around corners; a
cropped, scaled, slightly rotated or captioned copy keeps most of them at the same relative
places. A match is counted only when enough of the matched patches agree on one similarity
transform (RANSAC), which is what keeps unrelated pictures with similar texture apart.

OpenCV does the work (ORB, an LSH index for binary descriptors, RANSAC): it is the maintained
library made for this. Descriptors are 256 bits, like PDQ hashes.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from opspoor.errors import SignalError
from opspoor.signals.base import SignalType

# per-file work runs in a process pool; OpenCV's own threads would only contend for the cores
cv2.setNumThreads(1)

#: pictures are brought to fit this many pixels before features are found (both sides alike)
LOCAL_SIZE = 512
#: keypoints kept per picture (ORB keeps the strongest corners)
MAX_FEATURES = 500
#: FAST's contrast threshold for a corner candidate (OpenCV's default is 20). ORB still keeps
#: the strongest corners by Harris score, so a textured picture keeps about the same ones; a
#: smooth wallpaper, which at 20 had a few dozen corners or none, now has hundreds of weaker
#: ones, and these are repeatable enough: off-centre crops of 10 % were found 79.5 -> 97 % on the
#: 200 benchmark originals, with no different picture above 9 agreeing patches (16 needed).
#: Costs about 6 ms per picture instead of 4, and slower lookups (docs/robustness.md)
FAST_THRESHOLD = 2
#: a descriptor's nearest neighbour must be this much closer than the second (Lowe's ratio test)
RATIO = 0.8
#: neighbours fetched per query descriptor (the ratio test is made per original among them)
NEIGHBOURS = 8
#: FLANN's LSH for binary descriptors: 8 tables of 24 sampled bits, one-bit probes. Keys of 16
#: bits put so many descriptors in a bucket that a query scanned most of a large index (600 ms
#: against 3,000 originals); 24 bits took 50 ms there and found as many originals (bench/local.py)
LSH_PARAMS: dict[str, bool | int | float | str] = {
    "algorithm": 6,
    "table_number": 8,
    "key_size": 24,
    "multi_probe_level": 1,
}
#: rows per brute-force pass (OpenCV's brute-force matcher refuses 2^18 or more)
BRUTE_FORCE_CHUNK = 1 << 17
#: and within this many bits of the query's descriptor
MAX_DESCRIPTOR_DISTANCE = 64
#: originals with the most matched descriptors that are checked for a consistent geometry
CANDIDATES = 3
#: matched descriptors an original needs before its geometry is checked
MIN_VOTES = 4
#: RANSAC's tolerance, in pixels at LOCAL_SIZE
REPROJECTION_PX = 4.0
#: scale between query and original a real copy can have (a 20 % crop scaled up to a thumbnail)
SCALE_RANGE = (0.2, 5.0)
#: matched patches that must agree on one geometry for a match (the operating point)
MIN_INLIERS = 16
#: the agreeing patches must span this share of both pictures' extent, in both axes: a copy
#: shares the layout of a large area; one word in the same font (a caption) or one logo does not
MIN_SPREAD = 0.3


#: where an inlier count sits on the Hamming scale of PDQ (``local_distance``)
PDQ_THRESHOLD = 31
#: fixed-point scale of the stored keypoint positions (1/64 pixel at LOCAL_SIZE)
POINT_SCALE = 64


@dataclass(frozen=True, slots=True)
class LocalFeatures:
    """Keypoints of one picture: positions (n, 2) float32 at ``LOCAL_SIZE``, descriptors (n, 32) uint8.

    ``mirror`` (query side only): the features of the picture mirrored left to right. ORB is not
    mirror-invariant, so a flipped copy is looked up by its mirror image's features too; one
    mirror covers every flip, as ORB is invariant to rotation.
    """

    points: np.ndarray
    descriptors: np.ndarray
    mirror: LocalFeatures | None = None

    def __len__(self) -> int:
        return len(self.descriptors)

    @classmethod
    def empty(cls) -> LocalFeatures:
        return cls(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8))

    def encode(self) -> str:
        """As text for the store and scan records: base64 of the count (uint16), the positions
        (uint16 pairs, 1/64 pixel) and the descriptors, about 48 characters per keypoint; the
        mirror's, if any, follow in the same layout."""
        parts = [self] if self.mirror is None else [self, self.mirror]
        return base64.b64encode(b"".join(_section(f) for f in parts)).decode("ascii")

    @classmethod
    def decode(cls, text: str) -> LocalFeatures:
        """The inverse of ``encode``; ``SignalError`` names what is wrong with a damaged value."""
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise SignalError(f"local features are not base64: {text[:40]!r}") from None
        if len(raw) < 2:
            raise SignalError("local features value is empty")
        upright, rest = _read_section(raw)
        if not rest:
            return upright
        mirror, rest = _read_section(rest)
        if rest:
            raise SignalError(f"local features value has {len(rest)} bytes after the mirror's keypoints")
        return cls(upright.points, upright.descriptors, mirror)


def _section(f: LocalFeatures) -> bytes:
    points = np.round(f.points * POINT_SCALE).astype("<u2")
    return np.uint16(len(f)).astype("<u2").tobytes() + points.tobytes() + f.descriptors.tobytes()


def _read_section(raw: bytes) -> tuple[LocalFeatures, bytes]:
    """One picture's keypoints from the front of ``raw``, and the bytes after them."""
    if len(raw) < 2:
        raise SignalError(f"local features value ends inside a count ({len(raw)} bytes left)")
    n = int(np.frombuffer(raw[:2], "<u2")[0])
    end = 2 + n * (4 + 32)
    if len(raw) < end:
        raise SignalError(f"local features value holds {len(raw)} bytes, not {end} for {n} keypoints")
    points = np.frombuffer(raw[2 : 2 + 4 * n], "<u2").reshape(n, 2).astype(np.float32) / POINT_SCALE
    descriptors = np.frombuffer(raw[2 + 4 * n : end], np.uint8).reshape(n, 32).copy()
    return LocalFeatures(points, descriptors), raw[end:]


@dataclass(frozen=True, slots=True)
class LocalMatch:
    owner: int  # the id the original was indexed under
    inliers: int  # matched patches that agree on one similarity transform
    scale: float  # query / original, both as brought to fit LOCAL_SIZE
    mirrored: bool = False  # found by the query's mirror image (a flipped copy)


def local_distance(inliers: int) -> int:
    """An inlier count on PDQ's Hamming scale: ``MIN_INLIERS`` sits at PDQ's threshold (31), each
    inlier more is one bit closer (at least 0). Matches and evaluation tables show it as a distance."""
    return max(PDQ_THRESHOLD + MIN_INLIERS - inliers, 0)


class LocalSignal(SignalType):
    """Local features as a signal type: a matching-only value of an entry whose original the
    organisation holds (``opspoor hashset build --augment``), never exported."""

    name = "local"
    media = frozenset({"image"})
    entry_value = False
    default_threshold = PDQ_THRESHOLD

    @classmethod
    def validate(cls, value: str) -> str:
        return LocalFeatures.decode(value).encode()

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        """``local_distance`` of the query ``a`` against the original ``b``; 255 when no geometry agrees."""
        found = LocalIndex([LocalFeatures.decode(b)], [0]).brute_force_match(
            LocalFeatures.decode(a), min_inliers=1
        )
        return local_distance(found[0].inliers) if found else 255


def local_features(
    rgb: np.ndarray, *, max_features: int = MAX_FEATURES, mirror: bool = False
) -> LocalFeatures:
    """ORB features of an image (``rgb``: H, W, 3 uint8), found at ``LOCAL_SIZE``; with
    ``mirror`` (a query), also those of the image mirrored left to right."""
    gray = cv2.cvtColor(np.ascontiguousarray(rgb[:, :, :3]), cv2.COLOR_RGB2GRAY)
    scale = LOCAL_SIZE / max(gray.shape)
    if scale < 1:
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    found = _orb(gray, max_features)
    if mirror and len(found):
        return LocalFeatures(
            found.points, found.descriptors, _orb(np.ascontiguousarray(gray[:, ::-1]), max_features)
        )
    return found


def _orb(gray: np.ndarray, max_features: int) -> LocalFeatures:
    orb = cv2.ORB.create(nfeatures=max_features, fastThreshold=FAST_THRESHOLD)
    keypoints, descriptors = orb.detectAndCompute(gray, None)
    if descriptors is None:  # no corner at all (a flat picture)
        return LocalFeatures.empty()
    points = np.array([k.pt for k in keypoints], dtype=np.float32).reshape(-1, 2)
    return LocalFeatures(points, descriptors)


class LocalIndex:
    """The features of many originals, searched by an LSH index, each candidate checked by RANSAC.

    ``match`` is exact about the geometry and approximate about the neighbours (LSH may miss a
    few descriptor pairs, which only lowers the inlier count); ``brute_force_match`` is the exact
    reference the tests compare it with.
    """

    def __init__(self, features: Sequence[LocalFeatures], owners: Sequence[int] | np.ndarray) -> None:
        if len(features) != len(owners):
            raise ValueError("one owner per set of features")
        self.points = _stack([f.points for f in features], (0, 2), np.float32)
        self.descriptors = _stack([f.descriptors for f in features], (0, 32), np.uint8)
        counts = [len(f) for f in features]
        self.owner = np.repeat(np.asarray(owners, dtype=np.int64), counts)
        # per descriptor, the extent (width, height) of its picture's keypoints
        self.extent = np.repeat(
            _stack([_extent(f.points)[None] for f in features], (0, 2), np.float32), counts, axis=0
        )
        self._matcher: cv2.DescriptorMatcher | None = None
        self._building = threading.Lock()

    def __len__(self) -> int:
        return len(self.descriptors)

    def with_added(self, features: Sequence[LocalFeatures], owners: Sequence[int] | np.ndarray) -> LocalIndex:
        """A new index holding this one's features and ``features`` (this one is left as it is, so
        lookups can go on using it while the new one is built)."""
        added = LocalIndex(features, owners)
        out = LocalIndex([], [])
        for name in self.ARRAYS:
            setattr(out, name, np.concatenate([getattr(self, name), getattr(added, name)]))
        return out

    def without(self, owners: Sequence[int] | np.ndarray) -> LocalIndex:
        """A new index without the features of ``owners`` (this one is left as it is)."""
        keep = ~np.isin(self.owner, np.asarray(owners, dtype=np.int64))
        out = LocalIndex([], [])
        for name in self.ARRAYS:
            setattr(out, name, getattr(self, name)[keep])
        return out

    #: the arrays ``save`` writes, one .npy file each
    ARRAYS = ("points", "descriptors", "owner", "extent")

    def save(self, folder: Path) -> None:
        """Write the index's arrays into ``folder`` (the LSH tables are rebuilt on first use)."""
        folder.mkdir(parents=True, exist_ok=True)
        for name in self.ARRAYS:
            np.save(folder / f"{name}.npy", getattr(self, name), allow_pickle=False)

    @classmethod
    def load(cls, folder: Path) -> LocalIndex:
        """Read what ``save`` wrote; ``ValueError`` when the arrays do not fit together."""
        index = cls([], [])
        for name in cls.ARRAYS:
            setattr(index, name, np.load(folder / f"{name}.npy", allow_pickle=False))
        n = len(index.descriptors)
        shapes = [index.points.shape, index.descriptors.shape, index.owner.shape, index.extent.shape]
        if shapes != [(n, 2), (n, 32), (n,), (n, 2)] or index.descriptors.dtype != np.uint8:
            raise ValueError(f"local index arrays do not fit together: {shapes}")
        return index

    def warm_up(self) -> None:
        """Build the LSH tables now (else the first lookup builds them: seconds for a large set);
        an index of fewer than two descriptors has none (it answers nothing)."""
        if len(self) >= 2:
            self._lsh()

    def _lsh(self) -> cv2.DescriptorMatcher:
        with self._building:  # lookups may run on several threads (OpenCV releases the GIL)
            return self._build_lsh()

    def _build_lsh(self) -> cv2.DescriptorMatcher:
        if self._matcher is None:
            # FLANN's LSH index for binary descriptors (algorithm 6); built on first use, per process.
            # Its hash tables are drawn from OpenCV's RNG: seeded, so a run can be repeated
            cv2.setRNGSeed(0)
            m = cv2.FlannBasedMatcher(LSH_PARAMS, {"checks": 64})
            m.add([self.descriptors])
            m.train()
            self._matcher = m
        return self._matcher

    def match(
        self,
        query: LocalFeatures,
        *,
        min_inliers: int = MIN_INLIERS,
        min_spread: float = MIN_SPREAD,
        exclude: int | None = None,
    ) -> list[LocalMatch]:
        """Originals the query shows, best first: at least ``min_inliers`` agreeing patches that
        span ``min_spread`` of both pictures. ``exclude``: an owner to leave out (the query
        itself, when it is indexed too)."""
        return self._find(query, False, min_inliers, min_spread, exclude)

    def brute_force_match(self, query: LocalFeatures, **options: Any) -> list[LocalMatch]:
        """As ``match`` (same options), with exact nearest neighbours: every descriptor against
        every one, slow; the reference the LSH is tested against."""
        return self._find(query, True, **options)

    def _find(
        self,
        query: LocalFeatures,
        exact: bool,
        min_inliers: int = MIN_INLIERS,
        min_spread: float = MIN_SPREAD,
        exclude: int | None = None,
    ) -> list[LocalMatch]:
        best: dict[int, LocalMatch] = {}
        for view, mirrored in ((query, False), (query.mirror, True)):
            # the mirror only when the picture as it is shows no original at the operating point
            # (a flipped copy is rare; a weak chance agreement, which callers asking for
            # min_inliers below MIN_INLIERS see, must not keep the mirror from being looked up)
            shown = any(m.inliers >= MIN_INLIERS for m in best.values())
            if view is None or len(view) < 2 or len(self) < 2 or shown:
                continue
            neighbours: Sequence[Sequence[cv2.DMatch]]
            if exact:
                neighbours = self._exact_neighbours(view)
            else:
                neighbours = self._lsh().knnMatch(view.descriptors, k=NEIGHBOURS)
            for m in self._verify(view, neighbours, min_inliers, min_spread, exclude):
                if m.owner not in best or m.inliers > best[m.owner].inliers:
                    best[m.owner] = LocalMatch(m.owner, m.inliers, m.scale, mirrored)
        return sorted(best.values(), key=lambda m: -m.inliers)

    def _exact_neighbours(self, query: LocalFeatures) -> list[list[cv2.DMatch]]:
        """The ``NEIGHBOURS`` nearest descriptors of each query descriptor, by brute force in
        chunks: OpenCV's brute-force matcher refuses a train set of 2^18 rows or more."""
        matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
        found: list[list[tuple[float, int]]] = [[] for _ in range(len(query))]
        for start in range(0, len(self), BRUTE_FORCE_CHUNK):
            part = self.descriptors[start : start + BRUTE_FORCE_CHUNK]
            for row in matcher.knnMatch(query.descriptors, part, k=NEIGHBOURS):
                for m in row:
                    found[m.queryIdx].append((m.distance, start + m.trainIdx))
        return [
            [cv2.DMatch(qi, ti, 0, d) for d, ti in sorted(cands)[:NEIGHBOURS]]
            for qi, cands in enumerate(found)
        ]

    def _pairs(self, neighbours: Sequence, exclude: int | None) -> list[tuple[int, int]]:
        """(query keypoint, indexed keypoint) pairs that pass the ratio test *per original*.

        Lowe's test compares a keypoint's nearest neighbour with its second; across a whole set,
        the second is often the same corner in another copy of the same picture (a set holds one
        photo at two sizes), which would reject every pair of both. So each original's nearest
        is compared with that original's second nearest (or, if none is among the neighbours
        fetched, with the farthest fetched: the second is at least that far).
        """
        good = []
        for row in neighbours:
            if not row:
                continue
            bound = row[-1].distance if len(row) == NEIGHBOURS else float("inf")
            best: dict[int, tuple[float, int, int]] = {}
            second: dict[int, float] = {}
            for m in row:
                owner = int(self.owner[m.trainIdx])
                if owner == exclude:
                    continue
                if owner not in best:
                    best[owner] = (m.distance, m.queryIdx, m.trainIdx)
                elif owner not in second:
                    second[owner] = m.distance
            for owner, (d1, q, t) in best.items():
                if d1 <= MAX_DESCRIPTOR_DISTANCE and d1 < RATIO * second.get(owner, bound):
                    good.append((q, t))
        return good

    def _verify(
        self,
        query: LocalFeatures,
        neighbours: Sequence,
        min_inliers: int,
        min_spread: float,
        exclude: int | None,
    ) -> list[LocalMatch]:
        good = self._pairs(neighbours, exclude)
        if not good:
            return []
        qi, ki = np.array(good, dtype=np.int64).T
        owners = self.owner[ki]
        found, votes = np.unique(owners, return_counts=True)
        out = []
        for owner in found[np.argsort(-votes, kind="stable")][:CANDIDATES]:
            sel = owners == owner
            if sel.sum() < MIN_VOTES:
                break
            src, dst = self.points[ki[sel]], query.points[qi[sel]]
            model, inliers = _similarity(src, dst)
            if model is None or inliers.sum() < min_inliers:
                continue
            spread = min(
                (_extent(src[inliers]) / self.extent[ki[sel][0]]).min(),
                (_extent(dst[inliers]) / _extent(query.points)).min(),
            )
            if spread >= min_spread:
                out.append(LocalMatch(int(owner), int(inliers.sum()), float(np.hypot(*model[:, 0]))))
        return sorted(out, key=lambda m: -m.inliers)


def _similarity(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """The rotation + uniform scale + shift from original to query most patches agree on, and
    which agree (None when there is none within ``SCALE_RANGE``)."""
    # OpenCV's RANSAC seeds its own generator on every call: a lookup's answer does not depend on
    # the lookups made before it, nor on the thread (tests pin both)
    model, inliers = cv2.estimateAffinePartial2D(
        src, dst, method=cv2.RANSAC, ransacReprojThreshold=REPROJECTION_PX, maxIters=2000, confidence=0.995
    )
    if model is None or not SCALE_RANGE[0] <= np.hypot(*model[:, 0]) <= SCALE_RANGE[1]:
        return None, np.zeros(len(src), dtype=bool)
    return model, inliers.ravel().astype(bool)


def _extent(points: np.ndarray) -> np.ndarray:
    """(width, height) of the points' bounding box, at least one pixel."""
    if len(points) == 0:
        return np.ones(2, dtype=np.float32)
    return np.maximum(points.max(axis=0) - points.min(axis=0), 1.0)


def _stack(parts: list[np.ndarray], empty: tuple[int, int], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(empty, dtype)
