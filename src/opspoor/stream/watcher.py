"""A watched stream: sampled frames hashed, matched against known sets, and the alerts they raise.

A frame is hashed with PDQ (and, with ``robust="border"``, the hash of the picture without the
uniform bars a letterboxed or pillarboxed player adds; ``"full"`` adds pictures shown inside a
larger canvas, at ~120 ms a frame). It is looked up among the known images' PDQs (the
:class:`~opspoor.matching.Matcher`, with the sets' own distances) and among the frames of known
videos (each set's vPDQ frame index, within 31 bits or the set's distance, if lower). Frames of
PDQ quality below 50 (a black transition, a flat title card) are not matched: flat pictures hash
alike. Matches of ignorable sets never alert.

Several streams' frames are matched in one batch (:func:`match_frames`), which is how the service
serves many sessions at once; each :class:`StreamWatcher` then keeps its own window.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np

from opspoor.matching import Matcher, PdqLookup, Query, pdq_lookups
from opspoor.matching.groups import VIDEO_FRAME_DISTANCE, pdq_words
from opspoor.matching.query import MIN_PDQ_QUALITY
from opspoor.signals.engine import FileSignals
from opspoor.signals.pdq import pdq_from_luma, pdq_luma
from opspoor.signals.robust import query_hashes, query_regions
from opspoor.stream.alerts import DEFAULT_K, DEFAULT_N, Alert, AlertWindow, FrameHit, KnownEntry

#: robust query hashes per frame: off (plain PDQ), border (bars removed, corners masked), full (also
#: embedded pictures)
ROBUST_MODES = ("off", "border", "full")
#: the corner a broadcaster's logo (or a clock, a channel badge) sits in, as a share of the frame:
#: masked one corner at a time for the ``corner/…`` query hashes
CORNER = (0.18, 0.14)
CORNERS = ("top-right", "top-left", "bottom-right", "bottom-left")


def mask_corner(pixels: np.ndarray, corner: str, share: tuple[float, float] = CORNER) -> np.ndarray:
    """The frame (RGB H×W×3, or PDQ luma H×W) with one corner box painted over in the mean colour
    of the band just inside it: what covers the corner (a logo, often high-contrast, moving a PDQ
    20-30 bits) is gone, and the box is as close to the picture under it as one colour can be
    (bench/live.py measures it)."""
    h, w = pixels.shape[:2]
    bw, bh = max(1, int(w * share[0])), max(1, int(h * share[1]))
    top = corner.startswith("top")
    ys = slice(0, bh) if top else slice(h - bh, h)
    inside = slice(bh, 2 * bh) if top else slice(h - 2 * bh, h - bh)
    xs = slice(w - bw, w) if corner.endswith("right") else slice(0, bw)
    out = pixels.copy()
    out[ys, xs] = pixels[inside, xs].reshape(-1, *pixels.shape[2:]).mean(axis=0).astype(pixels.dtype)
    return out


#: the corner-masked query hashes' methods, in the order they are made
CORNER_METHODS = tuple(f"corner/{c}" for c in CORNERS)


@dataclass(frozen=True, slots=True)
class HashedFrame:
    """A sampled frame, as matched: its stream time, its PDQ and the hashes it is looked up by."""

    stream_time: float
    pdq: str
    quality: int
    lookups: tuple[PdqLookup, ...]
    #: ``time.monotonic()`` when the frame was decoded (or received): where latency is counted from
    decoded_at: float

    @property
    def reliable(self) -> bool:
        return self.quality >= MIN_PDQ_QUALITY


def hash_frame(
    rgb: np.ndarray,
    stream_time: float,
    *,
    robust: str = "border",
    decoded_at: float | None = None,
    only: Collection[str] | None = None,
) -> HashedFrame:
    """PDQ of one frame (H, W, 3 uint8) and its robust query hashes: with ``border`` and ``full``,
    the frame without uniform bars and the frame with each corner masked (``corner/top-right``…).

    ``only`` limits the robust query hashes to those methods (``border``, ``corner/top-right``,
    …; empty: the plain PDQ alone), which is how a stream spends them only where they are needed
    (:meth:`StreamWatcher.plan`): each is a PDQ of its own, the plain one about a sixth of all.
    The luma is computed once, and a corner is masked on it, not on the RGB pixels."""
    decoded_at = time.monotonic() if decoded_at is None else decoded_at
    if robust not in ROBUST_MODES:
        raise ValueError(f"robust must be one of {', '.join(ROBUST_MODES)}, not {robust!r}")
    luma = pdq_luma(rgb)
    plain = pdq_from_luma(luma)
    variants: list[PdqLookup] = []
    wanted = None if only is None else set(only)
    if robust != "off" and (wanted is None or wanted):
        seen = {plain.hash}
        regions = query_regions(rgb, borders=True, embedded=robust == "full")
        if len(regions) > 1 and (wanted is None or wanted - set(CORNER_METHODS)):
            # a letterbox or an embedded picture was found: its region hashes (query_hashes'
            # first is the plain PDQ again, already made)
            for q in query_hashes(rgb, dihedral=False, borders=True, embedded=robust == "full")[1:]:
                if (wanted is None or q.method in wanted) and q.hash not in seen:
                    variants.append(
                        (q.hash, q.method) if q.max_distance is None else (q.hash, q.method, q.max_distance)
                    )
                    seen.add(q.hash)
        for corner, method in zip(CORNERS, CORNER_METHODS, strict=True):
            if wanted is not None and method not in wanted:
                continue
            h = pdq_from_luma(mask_corner(luma, corner))
            if h.quality >= MIN_PDQ_QUALITY and h.hash not in seen:
                variants.append((h.hash, method))
                seen.add(h.hash)
    return HashedFrame(
        stream_time,
        plain.hash,
        plain.quality,
        tuple(pdq_lookups(plain.hash, plain.quality, variants)),
        decoded_at,
    )


def hashed_value(pdq: str, quality: int, stream_time: float, decoded_at: float | None = None) -> HashedFrame:
    """A frame the caller hashed itself (the service's JSON push): its PDQ and quality."""
    pdq = pdq.lower()
    return HashedFrame(
        stream_time,
        pdq,
        quality,
        tuple(pdq_lookups(pdq, quality, [])),
        time.monotonic() if decoded_at is None else decoded_at,
    )


def match_frames(
    matcher: Matcher, frames: Sequence[HashedFrame]
) -> list[dict[int, tuple[FrameHit, KnownEntry]]]:
    """For each frame: the known entries it matches (entry id → its closest hit and the entry).

    Images are matched through the matcher's PDQ lookups; video frames in each index group's
    frame index (a single frame cannot reach vPDQ's 80 % share, so it is looked up frame by frame).
    """
    out: list[dict[int, tuple[FrameHit, KnownEntry]]] = [{} for _ in frames]
    todo = [i for i, f in enumerate(frames) if f.lookups]
    if not todo:
        return out
    hits: list[dict[int, FrameHit]] = [{} for _ in frames]

    def keep(i: int, entry: int, hit: FrameHit) -> None:
        old = hits[i].get(entry)
        if old is None or hit.distance < old.distance:
            hits[i][entry] = hit

    found = matcher.match_queries([Query(pdq=list(frames[i].lookups)) for i in todo])
    for i, matches in zip(todo, found, strict=True):
        for m in matches:
            if m.kind == "known" and m.signal == "pdq":
                keep(
                    i, m.entry_id, FrameHit(frames[i].stream_time, m.distance, "pdq", frames[i].pdq, m.method)
                )
    # every lookup of a frame (its own PDQ when reliable, its robust variants) in the frame indexes
    owner = [(i, lk) for i in todo for lk in frames[i].lookups]
    if owner:
        words = pdq_words([lk[0] for _, lk in owner])
        for group in matcher.groups.values():
            if group.frames is None or not len(group.frames):
                continue
            res = group.frames.search(words, radius=VIDEO_FRAME_DISTANCE)
            entries = group.frame_entry[res.ids]  # read after the search (the service grows it first)
            for a, eid, d in zip(
                res.query_idx.tolist(), entries.tolist(), res.distances.tolist(), strict=True
            ):
                i, lookup = owner[a]
                cap = lookup[2] if len(lookup) > 2 else 64  # type: ignore[misc]
                if d <= cap:
                    method = None if lookup[1] == "pdq" else lookup[1]
                    keep(i, int(eid), FrameHit(frames[i].stream_time, int(d), "vpdq", frames[i].pdq, method))
    refs = matcher.entry_refs({e for per_frame in hits for e in per_frame})
    for i, per_frame in enumerate(hits):
        for eid, hit in per_frame.items():
            ref = refs.get(eid)
            if ref is None or ref.kind != "known":
                continue
            if hit.distance > matcher.distance.get(ref.hashset, matcher.pdq_radius):
                continue
            out[i][eid] = (hit, KnownEntry(eid, ref.hashset, ref.external_id, ref.category))
    return out


#: the size warm-up frames are made at: a common live stream's, the PDQ paths of full-size frames
WARM_SIZE = (640, 360)


def warm_frame(size: tuple[int, int] = WARM_SIZE) -> np.ndarray:
    """A generated frame (RGB) that takes every path of :func:`hash_frame`: a blocky pattern of
    PDQ quality well above 50 (so it is looked up), inside letterbox bars (so the ``border`` query
    hash is made)."""
    w, h = size
    rng = np.random.default_rng(24)
    inner = h - 2 * (h // 8)
    blocks = rng.integers(0, 256, (9, 16, 3), dtype=np.uint8)
    pattern = np.repeat(np.repeat(blocks, -(-inner // 9), axis=0), -(-w // 16), axis=1)[:inner, :w]
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[h // 8 : h // 8 + inner] = pattern
    return rgb


def warm_up(matchers: Sequence[Matcher] = (), *, robust: str = "border") -> None:
    """Hash one generated frame as a stream's frames are (every query hash, then the plain PDQ
    alone) and match it against each of ``matchers`` (PDQ lookups and the video frame indexes),
    so that the compiled kernels (numba) are loaded and the indexes searched once before the
    first stream is opened: cold, the first frame waited 0.6-4 s for them, and with 100 streams
    opening at once every stream's first frame was dropped (docs/live.md)."""
    rgb = warm_frame()
    frame = hash_frame(rgb, 0.0, robust=robust)
    hash_frame(rgb, 0.0, robust=robust, only=frozenset())
    for matcher in matchers:
        match_frames(matcher, [frame])


#: called with each frame that matched something: its time and PDQ (``--keep`` stores these)
KeepFn = Callable[[HashedFrame, list[tuple[FrameHit, KnownEntry]]], None]


#: by default a frame gets all its robust query hashes on every 4th sampled frame (and on scene
#: changes, and while the stream matches); the others get the plain PDQ alone
DEFAULT_ROBUST_EVERY = 4


class StreamWatcher:
    """One stream's window over its matched frames; ``take`` answers the alerts a frame raises.

    ``plan`` says which robust query hashes the next sampled frame needs (``hash_frame``'s
    ``only``): all of them on every ``robust_every``-th sampled frame and on a scene change (a
    spliced clip starts with one), only those that matched while the window holds a match (a logo
    hides the same corner frame after frame), and none otherwise. A clip that needs a query hash
    is then found at its first planned frame and followed on every frame after, at about a fifth
    of the hashing of making them all on every frame (bench/live.py measures recall both ways).
    """

    def __init__(
        self,
        name: str,
        *,
        k: int = DEFAULT_K,
        n: int = DEFAULT_N,
        keep: KeepFn | None = None,
        robust_every: int = DEFAULT_ROBUST_EVERY,
    ) -> None:
        if robust_every < 1:
            raise ValueError(f"robust_every must be >= 1, got {robust_every}")
        self.name = name
        self.window = AlertWindow(k, n)
        self.keep = keep
        self.robust_every = robust_every
        self.frames = 0
        self.matched = 0
        self.alerts = 0
        self.dropped = 0  # sampled frames dropped unmatched because the hashing was behind
        self._since_all = robust_every  # the first frame gets them all

    def plan(self, reason: str = "tick") -> frozenset[str] | None:
        """The robust query hashes the next sampled frame needs: None for all of them, else those
        methods (empty: the plain PDQ alone). ``reason``: the sampler's (``tick`` | ``scene``)."""
        if reason == "scene" or self._since_all + 1 >= self.robust_every:
            self._since_all = 0
            return None
        self._since_all += 1
        return self.window.recent_methods()

    def take(self, frame: HashedFrame, found: dict[int, tuple[FrameHit, KnownEntry]]) -> list[Alert]:
        """One sampled frame and what it matched (from :func:`match_frames`)."""
        self.frames += 1
        if found:
            self.matched += 1
            if self.keep is not None:
                self.keep(frame, list(found.values()))
        raised = self.window.push({eid: hit for eid, (hit, _) in found.items()})
        alerts = [
            Alert(self.name, found[eid][1], hits, self.window.k, self.window.n, decoded_at=frame.decoded_at)
            for eid, hits in raised
        ]
        self.alerts += len(alerts)
        return alerts

    def watch(self, matcher: Matcher, frame: HashedFrame) -> list[Alert]:
        """Match one frame and take it (the command line's one-stream path)."""
        (found,) = match_frames(matcher, [frame])
        return self.take(frame, found)


def hashed_file(sig: FileSignals, start: float, received_at: float | None = None) -> list[HashedFrame]:
    """The frames of a hashed upload (``signals.engine``): an image is one frame at ``start`` (with
    the robust variants it was hashed with); a short video segment gives its vPDQ frames (one a
    second), at ``start`` plus their own time. Nothing for a file that is neither, or undecodable."""
    received_at = time.monotonic() if received_at is None else received_at
    if sig.kind == "image" and sig.pdq:
        variants = list(sig.pdq_variants or [])
        lookups = pdq_lookups(sig.pdq, sig.quality or 0, variants)
        return [HashedFrame(start, sig.pdq, sig.quality or 0, tuple(lookups), received_at)]
    frames = sig.vpdq_frames or []
    return [
        HashedFrame(
            start + f.timestamp, f.hash, f.quality, tuple(pdq_lookups(f.hash, f.quality, [])), received_at
        )
        for f in frames
    ]
