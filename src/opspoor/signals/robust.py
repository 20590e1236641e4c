"""Robust PDQ matching: more hashes per query (any hash list) and per known item (own originals).

PDQ moves a long way under edits that people make all the time: a letterbox or a frame adds
structure the hash sees, a 5 % crop shifts every DCT basis function, a flip permutes the bits.
Two families of extra hashes recover such copies; docs/robustness.md has the measured effect.

**Query side** (:func:`query_hashes`), useful against any list, even one PDQ per item. Each item is
hashed several ways and every hash is looked up; a match by any of them counts:

- ``dihedral``: the 7 rotations / flips of the pixels, each hashed again;
- ``border``: near-uniform rows and columns at the edges (letterbox, padding, a frame of one
  colour, JPEG noise tolerated) are cut off and the remaining picture is hashed; when the
  picture's own edges have the border's colour, a ladder of centred cuts (``pad``) stands in
  for the unknown pad depth;
- ``embedded``: a picture inside a larger canvas (a screenshot with window chrome, a photo on a
  page) is found as the rectangle bounded by straight canvas edges (``signals.embedded``), and hashed;
- ``clip16``: a 16-bit grey image also as python-threatexchange and HMA hash it (values clipped at
  255 instead of their high byte), so a list made by them still matches.

Regions are found on the canonical pixels (fit within 512), but hashed, when the caller can decode
the file again (``detail``), from a larger decode brought to fit 512 as a file is: a picture that
fills half a screenshot has only about 256 canonical pixels, twice resampled, and its PDQ then
lands 10-40 bits from the original's.

**Known side** (``signals.augment``), for holders of the originals: extra PDQs of crops and
small rotations of each original, stored with the same entry, so that a cropped or slightly
rotated copy lands near one of them.

Every extra hash is one more chance of a false match, so *weak* extra hashes are not made: those of
quality below ``min_quality`` (flat, featureless pictures, where false matches live) and those whose
bits follow a regular pattern (stripes, grids: :func:`periodicity`). With ``low_quality_distance``
they are made, carrying that tighter ``max_distance``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit
from PIL import Image

from opspoor.errors import OpspoorError
from opspoor.media.image import PDQ_TARGET, Redecode, fit_within
from opspoor.signals.embedded import MIN_REGION_PX, Box, crop, find_embedded
from opspoor.signals.pdq import TURN_OF, hash_luma, pdq_from_rgb, pdq_luma

#: regions of a query hash: the whole image, without its borders, a picture embedded in it, and
#: the middle band (matches the band stored by ``augment_variants``: survives captions and logos)
REGIONS = ("full", "border", "embedded", "band")
#: the middle band: rows from 20 % to 80 % of the height, full width; meme captions and corner
#: watermarks sit above or below it
MIDDLE_BAND = (0.2, 0.8)
#: the 7 turns of the dihedral group (the 8th is the identity), applied to the query's pixels (H, W, ...)
DIHEDRAL: tuple[tuple[str, Callable[[np.ndarray], np.ndarray]], ...] = tuple(TURN_OF.items())
#: quality below which no extra hash is made (the plain PDQ of the item is always kept), unless
#: asked for with a tighter distance (``low_quality_distance``)
MIN_VARIANT_QUALITY = 50
#: the distance within which an extra hash of quality below ``MIN_VARIANT_QUALITY`` may match,
#: when such hashes are made: flat pictures hash alike, so they need to be much closer
LOW_QUALITY_DISTANCE = 12
#: quality below which a region is flat: its hash is the signs of near-zero coefficients (noise),
#: never made, whatever the distance allowed
FLAT_QUALITY = 10
#: periodicity (0-1, :func:`periodicity`) from which an extra hash counts as weak, like one of low
#: quality: its bits nearly repeat (or alternate) one or two rows or columns on, as for stripes and
#: grids, so it has few free bits, and two unrelated regular patterns can land 16 bits apart
#: (0.85: the shifted bits agree in more than 92.5 % or fewer than 7.5 % of places; photos of the
#: benchmark corpus: median 0.34, 99th percentile 0.80; random bits below 0.3)
PERIODIC = 0.85

#: the largest decode asked of ``detail`` for region hashes: a region of a quarter of each side
#: (the smallest ``find_embedded`` returns) then still has its 512 pixels
MAX_DETAIL = 4 * PDQ_TARGET


def periodicity(hash_hex: str) -> float:
    """How far the hash's 16 x 16 bits repeat themselves one or two rows or columns on (1: exactly,
    or exactly alternating; about 0.1-0.6 for photos). PDQ quality does not see it: stripes and
    grids have strong gradients, yet their DCT signs follow the pattern's period."""
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(hash_hex), dtype=np.uint8)).reshape(16, 16)
    best = 0.0
    for dy, dx in ((0, 1), (0, 2), (1, 0), (2, 0), (1, 1), (2, 2)):
        agree = float((bits[dy:, dx:] == bits[: 16 - dy, : 16 - dx]).mean())
        best = max(best, abs(agree - 0.5) * 2)
    return best


def weak(quality: int, hash_hex: str, min_quality: int = MIN_VARIANT_QUALITY) -> bool:
    """True if an extra hash may match only within the low-quality distance: low PDQ quality, or
    bits that follow a regular pattern (:func:`periodicity`)."""
    return quality < min_quality or periodicity(hash_hex) >= PERIODIC


@dataclass(frozen=True, slots=True)
class QueryHash:
    hash: str  # 64 hex
    quality: int
    region: str  # full | border | pad | embedded | band
    variant: str  # original, or the turn of the pixels hashed: rot90 ... transverse (DIHEDRAL)
    box: Box  # the region hashed, in the pixels given
    #: the largest distance at which this hash may match; None: the list's own threshold. Set for
    #: region hashes of quality below ``min_quality`` (made only with ``low_quality_distance``)
    max_distance: int | None = None

    @property
    def method(self) -> str:
        """How it was made: ``pdq`` (the plain hash), ``dihedral/rot90``, ``border``, ``embedded/flip``..."""
        region = "dihedral" if self.region == "full" else self.region
        if self.variant == "original":
            return "pdq" if self.region == "full" else region
        return f"{region}/{self.variant}"


# ------------------------------------------------------------------------------------------------
# query side

#: the region name of the query hash of a 16-bit image clipped as python-threatexchange does
CLIPPED_16BIT = "clip16"


def clipped_16bit_hash(
    clipped: np.ndarray, *, min_quality: int = MIN_VARIANT_QUALITY, low_quality_distance: int | None = None
) -> QueryHash | None:
    """One more query hash for a 16-bit grey image: the PDQ of its pixels clipped at 255
    (``media.image.clipped_16bit_rgb``), which is what python-threatexchange and HMA compute for it
    (method ``clip16``; docs/hashing.md has the measured distances). Weak like any extra hash:
    none for a flat picture (a 16-bit picture with most values above 255 clips to white), and a
    low-quality one only with ``low_quality_distance``, which it then carries."""
    h = pdq_from_rgb(clipped)
    limit = None
    if weak(h.quality, h.hash, min_quality):
        if low_quality_distance is None or h.quality < FLAT_QUALITY:
            return None
        limit = low_quality_distance
    height, width = clipped.shape[:2]
    return QueryHash(h.hash, h.quality, CLIPPED_16BIT, "original", (0, 0, width, height), limit)


def query_hashes(
    rgb: np.ndarray,
    *,
    dihedral: bool = True,
    borders: bool = True,
    embedded: bool = True,
    band: bool = False,
    min_quality: int = MIN_VARIANT_QUALITY,
    low_quality_distance: int | None = None,
    detail: Redecode | None = None,
) -> list[QueryHash]:
    """The hashes to look up for one image (``rgb``: H, W, 3 uint8, e.g. ``DecodedImage.rgb``).

    The first is always the plain PDQ of the whole image (method ``pdq``), then its 7 rotations
    and flips (``dihedral``; none for a flat image, quality below ``FLAT_QUALITY``); then, without
    duplicates and only when their own quality is at least ``min_quality``: the image without
    uniform borders (``borders``), pictures embedded in a larger canvas (``embedded``), each with
    its rotations and flips, and the middle band (``band``, off by default: it can only match sets
    augmented by :func:`augment_variants`, so turn it on when such a set is loaded).

    With ``low_quality_distance``, weak region hashes (below ``min_quality``, or periodic) are made
    too, with that ``max_distance``: a flat picture's pad or screenshot is then found when its hash
    is that close. The turns of a periodic plain hash are weak too; the plain hash never is.

    With ``detail`` (the file decoded again at a given size), border, pad and embedded regions are
    hashed from a decode large enough to give each its own 512 pixels (:func:`region_lumas`).
    """
    out: list[QueryHash] = []
    seen: set[str] = set()
    regions = query_regions(rgb, borders=borders, embedded=embedded, band=band)
    for (region, box), luma in zip(regions, region_lumas(rgb, regions, detail), strict=True):
        hashed = hash_luma(luma)
        plain = hashed.hash
        limit = None
        if region != "full" and weak(plain.quality, plain.hash, min_quality):
            if low_quality_distance is None or plain.quality < FLAT_QUALITY:
                continue
            limit = low_quality_distance
        if region != "full" and plain.hash in seen:
            continue
        out.append(QueryHash(plain.hash, plain.quality, region, "original", box, limit))
        seen.add(plain.hash)
        if not dihedral or region in ("band", "pad"):
            continue
        if plain.quality < FLAT_QUALITY:
            # a flat picture's hash says where its few marks are, not what they are: different
            # near-blank pages with a page number in one corner hash 0-6 bits apart, so its turns
            # would match other flat pictures even at the low-quality distance
            continue
        # the turned pixels' own PDQs, sharing the filter work: the DCT sign trick
        # (pdq_with_dihedral) is only approximate, as PDQ's box filter and decimation are not
        # mirror-symmetric
        if region == "full" and periodicity(plain.hash) >= PERIODIC:
            # the plain hash stays at the list's distance; its turns are extra hashes, and a
            # regular pattern's turns are as weak as it (periodicity survives turns)
            if low_quality_distance is None:
                continue
            limit = low_quality_distance
        turned = hashed.turns()
        for name, _ in DIHEDRAL:
            h = turned[name]
            if h.hash not in seen:
                out.append(QueryHash(h.hash, h.quality, region, name, box, limit))
                seen.add(h.hash)
    return out


#: regions hashed as the canonical pipeline sees them: the whole image; the middle band, which
#: meets the band that ``augment_variants`` cuts out of the original's canonical pixels; and the
#: pad ladder's cuts: up to 18 per image, each a resize from a larger decode (about 10x the cost
#: of the query), and on 118 corpus pictures cut from the larger decode they found no pad more
#: than the canonical slices did (docs/robustness.md)
CANONICAL_REGIONS = ("full", "band", "pad")


def region_lumas(
    rgb: np.ndarray, regions: Sequence[tuple[str, Box]], detail: Redecode | None = None
) -> list[np.ndarray]:
    """The PDQ luma of each region: a slice of the canonical luma, or, with ``detail``, the region
    cut from one larger decode and brought to fit 512 as a file of its own would be (the decode is
    asked once, at the size the smallest region needs, at most ``MAX_DETAIL``)."""
    whole = pdq_luma(rgb)  # per pixel, so a region's luma is the same slice of it
    out = [crop(whole, box) for _, box in regions]
    height, width = rgb.shape[:2]

    def need(box: Box) -> float:  # how many times the canonical pixels the region needs
        return max(width / (box[2] - box[0]), height / (box[3] - box[1]))

    # every region, however large: pads cut from the larger picture even at 1.1-1.3 times the
    # canonical pixels found 2 points more of coloured pads than their canonical slices
    cut = [i for i, (region, _) in enumerate(regions) if region not in CANONICAL_REGIONS]
    if detail is None or not cut or max(height, width) < PDQ_TARGET:  # already every pixel there is
        return out
    target = min(MAX_DETAIL, math.ceil(PDQ_TARGET * max(need(regions[i][1]) for i in cut)))
    try:
        big = detail(target)
    except OpspoorError:  # the same bytes decoded once already; keep the canonical slices
        return out
    if big.shape[0] <= height or big.shape[1] <= width:
        return out
    sx, sy = big.shape[1] / width, big.shape[0] / height
    # the luma first, then each region scaled as one float channel: a third of the cost of scaling
    # RGB, and the same picture but for the rounding and clipping of RGB to 8 bits after scaling
    big_luma = pdq_luma(big)
    for i in cut:
        x0, y0, x1, y1 = regions[i][1]
        piece = crop(big_luma, (round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy)))
        size = fit_within(piece.shape[1], piece.shape[0], PDQ_TARGET)
        if size != (piece.shape[1], piece.shape[0]):
            scaled = Image.fromarray(piece).resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
            piece = np.asarray(scaled)
        out[i] = piece
    return out


def query_regions(
    rgb: np.ndarray, *, borders: bool = True, embedded: bool = True, band: bool = False
) -> list[tuple[str, Box]]:
    """The regions of an image worth hashing: the whole, without borders, embedded pictures, band."""
    height, width = rgb.shape[:2]
    regions: list[tuple[str, Box]] = [("full", (0, 0, width, height))]
    found: list[tuple[str, Box]] = []
    if borders:
        box = trim_borders(rgb)
        if box is not None:
            found.append(("border", box))
            found.append(("border", centred_trim(box, width, height)))
            found += [("pad", b) for b in pad_ladder(box, width, height)]
    if embedded:
        found += [("embedded", box) for box in find_embedded(rgb)]
    for region, box in found:
        if not _near_box(box, [b for _, b in regions], width, height):
            regions.append((region, box))
    if band:
        regions.append(("band", middle_band(width, height)))
    return regions


def middle_band(width: int, height: int) -> Box:
    return (0, round(MIDDLE_BAND[0] * height), width, round(MIDDLE_BAND[1] * height))


def _near_box(box: Box, others: Sequence[Box], width: int, height: int, tol: float = 0.01) -> bool:
    """True if every side of ``box`` is within ``tol`` of the image size of one of ``others``."""
    scale = np.array([width, height, width, height], dtype=np.float64)
    b = np.array(box, dtype=np.float64) / scale
    return any(np.abs(b - np.array(o) / scale).max() <= tol for o in others)


# --- borders ------------------------------------------------------------------------------------

#: a pixel belongs to a border when every channel is within this of the border's colour
BORDER_TOLERANCE = 24
#: share of a row's (column's) pixels that must be border-coloured for it to count as border
BORDER_SHARE = 0.97
#: borders thinner than this share of the side are ignored (PDQ tolerates them; saves a hash)
MIN_BORDER = 0.02


def trim_borders(
    rgb: np.ndarray,
    *,
    tolerance: int = BORDER_TOLERANCE,
    share: float = BORDER_SHARE,
    min_border: float = MIN_BORDER,
) -> Box | None:
    """The box left after cutting near-uniform rows and columns off the four edges, or None.

    Each edge has its own colour (the median of its outermost line), so a black letterbox and a
    coloured frame are both found; ``tolerance`` absorbs JPEG and scaling noise, ``share`` lets a
    few stray pixels (a watermark, ringing) through. None when no edge has a border of at least
    ``min_border`` of the image, or when too little picture would remain.
    """
    height, width = rgb.shape[:2]
    if height < MIN_REGION_PX or width < MIN_REGION_PX:
        return None
    a = rgb[:, :, :3]
    cols = a.transpose(1, 0, 2)
    top, bottom, left, right = (_border_depth(x, tolerance, share) for x in (a, a[::-1], cols, cols[::-1]))
    box = (left, top, width - right, height - bottom)
    if max(top / height, bottom / height, left / width, right / width) < min_border:
        return None
    if box[2] - box[0] < max(MIN_REGION_PX, 0.2 * width) or box[3] - box[1] < max(
        MIN_REGION_PX, 0.2 * height
    ):
        return None
    return box


def centred_trim(box: Box, width: int, height: int) -> Box:
    """The trim of a centred pad: as much off each side as off its opposite side, the smaller.

    A black letterbox around a picture whose own top is black (a night sky) trims deeper at the
    top than at the bottom; pads and letterboxes are nearly always centred, so the smaller cut is
    the pad.
    """
    left, top, right, bottom = box
    dy = min(top, height - bottom)
    dx = min(left, width - right)
    return (dx, dy, width - dx, height - dy)


#: step of the pad ladder, as a share of each side: a cut 1 % off the true pad depth keeps the
#: copy's PDQ within the threshold for most pictures, 1.5 % does not for busy ones (measured: 0.03
#: lost about twice as many black pads as 0.02, docs/robustness.md)
PAD_STEP = 0.02
#: deepest cut of the pad ladder per side (a pad of 30 % of the picture in all)
MAX_PAD = 0.13


def pad_ladder(box: Box, width: int, height: int, *, step: float = PAD_STEP) -> list[Box]:
    """Centred cuts every ``step`` of the side into a uniform border: all four sides alike (a pad
    of the same share of both dimensions), top and bottom only (letterbox), left and right only.

    When the picture's own edges have the border's colour (a night sky in a black pad, a product
    shot in a white frame), neither the trim nor the centred trim knows where the pad ends and
    the picture begins; a pad is nearly always centred and sized in proportion to the picture, so
    one of these cuts lands within PDQ's tolerance of it. Each cut stays inside the border on both
    sides it touches.
    """
    left, top, right, bottom = box[0], box[1], width - box[2], height - box[3]
    room_x, room_y = min(left, right) + 1, min(top, bottom) + 1
    out: list[Box] = []
    for cut_x, cut_y in ((True, True), (False, True), (True, False)):
        k = 1
        while k * step <= MAX_PAD + 1e-9:
            dx = round(k * step * width) if cut_x else 0
            dy = round(k * step * height) if cut_y else 0
            if dx > room_x or dy > room_y:
                break
            out.append((dx, dy, width - dx, height - dy))
            k += 1
    return out


def _border_depth(a: np.ndarray, tolerance: int, share: float) -> int:
    """How many leading rows of ``a`` (H, W, 3 uint8) are of the first row's colour (at most 40 %).

    The colour is the per-channel median of the first row (truncated to an integer); a row is of
    it when at least ``share`` of its pixels are within ``tolerance`` in every channel.
    """
    return int(_border_depth_kernel(a, tolerance, share, max(1, int(0.4 * a.shape[0]))))


@njit(cache=True, nogil=True)
def _border_depth_kernel(a: np.ndarray, tolerance: int, share: float, limit: int) -> int:  # pragma: no cover
    # one compiled pass, row by row, stopping at the first row that is not border: an image
    # without a border costs one row (the NumPy version spent ~0.35 ms per image in call overhead)
    width = a.shape[1]
    colour = np.empty(3, dtype=np.int64)
    mid = width // 2
    for c in range(3):  # the median of the first row's values, by counting (uint8)
        counts = np.zeros(256, dtype=np.int64)
        for x in range(width):
            counts[a[0, x, c]] += 1
        lo, hi, seen = -1, -1, 0
        for v in range(256):
            seen += counts[v]
            if lo < 0 and seen >= mid:  # the value at sorted position mid - 1
                lo = v
            if seen >= mid + 1:  # at sorted position mid
                hi = v
                break
        # as np.median: odd, the middle value; even, the mean of the two middle ones, truncated
        colour[c] = hi if width % 2 else int((lo + hi) / 2.0)
    depth = 0
    while depth < limit:
        close = 0
        for x in range(width):
            d = max(
                abs(np.int64(a[depth, x, 0]) - colour[0]),
                abs(np.int64(a[depth, x, 1]) - colour[1]),
                abs(np.int64(a[depth, x, 2]) - colour[2]),
            )
            if d <= tolerance:
                close += 1
        if close / width < share:
            return depth
        depth += 1
    return depth
