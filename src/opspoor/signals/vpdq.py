"""vPDQ: PDQ of sampled video frames, in Meta's line format, and the two-way video comparison.

A vPDQ value is the text of one line per kept frame: ``frame_number,quality,pdq_hex,timestamp``
(timestamp in seconds with 3 decimals), exactly as Meta's ``vpdq`` tools write it. Frames are chosen
and converted as the reference does (see :mod:`opspoor.media.video`) and hashed with our PDQ core at
full frame size (:func:`opspoor.signals.pdq.pdq_from_rgb`), like ``vpdq``'s PDQ buffer hasher.

Two videos are compared as python-threatexchange's brute-force matcher does: drop duplicate frame
hashes and those of quality < 50, then count the query's hashes with a partner within Hamming
distance 31 in the target, and the other way round.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from opspoor.errors import SignalError
from opspoor.media.video import DEFAULT_MAX_PIXELS, DEFAULT_TIME_LIMIT, VideoSource, iter_video_frames
from opspoor.signals.base import SignalType
from opspoor.signals.pdq import hex_to_words, pdq_from_rgb

#: frames below this PDQ quality are unreliable and ignored when matching
QUALITY_THRESHOLD = 50
#: frame hashes within this Hamming distance are partners
DISTANCE_THRESHOLD = 31
#: default shares of unique frames that must find a partner, query side and target side
QUERY_MATCH_SHARE = 0.8
TARGET_MATCH_SHARE = 0.8

# (query block) x (target) x 4 words compared at once; bounds memory to ~32 MiB per block
_BLOCK_ELEMENTS = 1 << 22


@dataclass(slots=True)
class VpdqFrame:
    frame_number: int
    quality: int
    hash: str  # 64 lower-case hex
    timestamp: float  # seconds

    def line(self) -> str:
        return f"{self.frame_number},{self.quality},{self.hash},{self.timestamp:.3f}"


def vpdq_hash_video(
    source: VideoSource,
    *,
    every_seconds: float = 1.0,
    where: str | None = None,
    max_seconds_decode: float = DEFAULT_TIME_LIMIT,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    on_frame: Callable[[np.ndarray, VpdqFrame], None] | None = None,
) -> list[VpdqFrame]:
    """vPDQ of a video file or seekable binary stream: one PDQ per sampled frame.

    ``on_frame`` sees each sampled frame's pixels with its hash (e.g. to make a review thumbnail
    without decoding the video twice).

    ``every_seconds=1.0`` is vPDQ's default; 0 hashes every frame. Raises ``UndecodableMedia``,
    ``UnsupportedMedia``, ``MediaTooLarge`` or ``MediaTimeout`` (decode plus hashing time).
    """
    out = []
    for frame in iter_video_frames(
        source, every_seconds=every_seconds, where=where, time_limit=max_seconds_decode, max_pixels=max_pixels
    ):
        h = pdq_from_rgb(frame.rgb)
        vf = VpdqFrame(frame.frame_number, h.quality, h.hash, frame.timestamp)
        if on_frame is not None:
            on_frame(frame.rgb, vf)
        out.append(vf)
    return out


def format_vpdq(frames: Sequence[VpdqFrame]) -> str:
    """Meta's vPDQ text: one ``frame_number,quality,hash,timestamp`` line per frame, no trailing newline."""
    return "\n".join(f.line() for f in frames)


#: the shape of a vPDQ line as Meta's tools write it (what sniffing a vPDQ file looks for)
VPDQ_LINE = re.compile(r"\d+\s*,\s*\d+\s*,\s*[0-9A-Fa-f]{64}\s*,\s*\d+(\.\d*)?")


def looks_like_vpdq_line(line: str) -> bool:
    """Whether ``line`` has the exact shape Meta's vPDQ tools write (stricter than parsing)."""
    return VPDQ_LINE.fullmatch(line) is not None


def parse_vpdq(text: str) -> list[VpdqFrame]:
    """Read vPDQ lines; blank lines are skipped. ``SignalError`` names the first bad line (1-based,
    also in its ``line``)."""
    frames = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line:
            frames.append(parse_vpdq_line(line, n))
    return frames


def parse_vpdq_line(line: str, n: int = 1) -> VpdqFrame:
    """One vPDQ line (``frame,quality,hash,timestamp``), line number ``n`` for the error."""

    def bad(detail: str) -> SignalError:
        return SignalError(f"vpdq line {n}: {detail}", line=n)

    parts = [p.strip() for p in line.split(",")]
    if len(parts) != 4:
        raise bad(f"expected frame,quality,hash,timestamp, got {line[:120]!r}")
    try:
        frame_number, quality, timestamp = int(parts[0]), int(parts[1]), float(parts[3])
    except ValueError:
        raise bad(f"bad number in {line[:120]!r}") from None
    digest = parts[2].lower()
    if len(digest) != 64 or not _is_hex(digest):
        raise bad(f"hash must be 64 hex characters, got {parts[2][:80]!r}")
    if frame_number < 0 or not 0 <= quality <= 100 or not timestamp >= 0:
        raise bad("frame, quality (0-100) or timestamp out of range")
    return VpdqFrame(frame_number, quality, digest, timestamp)


def _is_hex(s: str) -> bool:
    try:
        bytes.fromhex(s)
    except ValueError:
        return False
    return True


def unique_good_hashes(frames: Sequence[VpdqFrame], quality: int = QUALITY_THRESHOLD) -> np.ndarray:
    """(N, 4) uint64 words of the distinct frame hashes with quality >= ``quality``, first-seen order."""
    kept = dict.fromkeys(f.hash for f in frames if f.quality >= quality)
    return hex_to_words(list(kept))


def _share_with_partner(a: np.ndarray, b: np.ndarray, distance: int) -> float:
    """Share of rows of ``a`` with some row of ``b`` within ``distance`` bits (blocks bound memory)."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    block = max(1, _BLOCK_ELEMENTS // (4 * len(b)))
    found = 0
    for start in range(0, len(a), block):
        xor = a[start : start + block, None, :] ^ b[None, :, :]
        dist = np.bitwise_count(xor).sum(axis=2, dtype=np.int32)
        found += int((dist <= distance).any(axis=1).sum())
    return found / len(a)


def frame_shares(a: np.ndarray, b: np.ndarray, distance: int = DISTANCE_THRESHOLD) -> tuple[float, float]:
    """(share of ``a``'s frames with a partner in ``b``, share of ``b``'s with one in ``a``): frames
    as (N, 4) uint64 words of unique good hashes (``unique_good_hashes``)."""
    return _share_with_partner(a, b, distance), _share_with_partner(b, a, distance)


def vpdq_match(
    query: Sequence[VpdqFrame],
    target: Sequence[VpdqFrame],
    *,
    distance: int = DISTANCE_THRESHOLD,
    quality: int = QUALITY_THRESHOLD,
) -> tuple[float, float]:
    """(share of the query's unique good frames matched in the target, share of the target's in the query).

    Shares are 0..1. Either side without a frame of sufficient quality gives (0.0, 0.0).
    """
    q = unique_good_hashes(query, quality)
    t = unique_good_hashes(target, quality)
    if len(q) == 0 or len(t) == 0:
        return 0.0, 0.0
    return frame_shares(q, t, distance)


class VPDQ(SignalType):
    """A whole video's vPDQ text. Compared with :func:`vpdq_match`, not by one Hamming distance.

    ``distance`` is defined, for the plugin interface, as the percentage (0-100) of unique good
    frames without a partner on the worse side: ``round(100 * (1 - min(query_share, target_share)))``.
    """

    name = "vpdq"
    media = frozenset({"video"})
    #: the index holds the frame hashes (PDQ, by Hamming distance)
    index = "hamming"
    index_hex_length = 64
    #: frame-level Hamming threshold (``threshold`` in ``brute_force_match``)
    default_threshold = DISTANCE_THRESHOLD

    @classmethod
    def validate(cls, value: str) -> str:
        frames = parse_vpdq(value)
        if not frames:
            raise SignalError("vpdq value has no frame lines")
        return format_vpdq(frames)

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        qs, ts = vpdq_match(parse_vpdq(a), parse_vpdq(b))
        return round(100 * (1 - min(qs, ts)))

    @classmethod
    def brute_force_match(
        cls,
        query: str,
        haystack: Sequence[str],
        threshold: int | None = None,
        *,
        query_share: float = QUERY_MATCH_SHARE,
        target_share: float = TARGET_MATCH_SHARE,
    ) -> list[tuple[int, int]]:
        """The reference video matcher: every ``(index, distance)`` of a haystack video whose shares
        reach ``query_share`` (query frames found in it) and ``target_share`` (its frames found in
        the query). ``threshold`` here is the frame-level Hamming distance (default 31);
        ``distance`` is as in :meth:`distance`.
        """
        frame_distance = cls.default_threshold if threshold is None else threshold
        q = parse_vpdq(query)
        out = []
        for i, value in enumerate(haystack):
            qs, ts = vpdq_match(q, parse_vpdq(value), distance=frame_distance)
            if qs >= query_share and ts >= target_share:
                out.append((i, round(100 * (1 - min(qs, ts)))))
        return out
