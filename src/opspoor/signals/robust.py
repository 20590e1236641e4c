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
  page) is found as the rectangle bounded by straight canvas edges, and hashed;
- ``clip16``: a 16-bit grey image also as python-threatexchange and HMA hash it (values clipped at
  255 instead of their high byte), so a list made by them still matches.

Regions are found on the canonical pixels (fit within 512), but hashed, when the caller can decode
the file again (``detail``), from a larger decode brought to fit 512 as a file is: a picture that
fills half a screenshot has only about 256 canonical pixels, twice resampled, and its PDQ then
lands 10-40 bits from the original's.

**Known side** (:func:`augment_hashes`), for holders of the originals: extra PDQs of crops and
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
from functools import lru_cache

import numpy as np
from PIL import Image

from opspoor.errors import OpspoorError
from opspoor.media.image import PDQ_TARGET, Redecode, fit_within
from opspoor.signals.pdq import PDQ, TURN_OF, hash_luma, pdq_from_luma, pdq_from_rgb, pdq_luma

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
#: a rotated original's hash is stored only if further than this from the hash of a *flat*
#: picture rotated alike: the black corners alone make that hash, so a variant close to it would
#: match any plain picture an editor rotated by the same angle (the operating threshold + 10)
CORNER_MARGIN = 41
#: a region is hashed only if at least this many pixels on each side (PDQ needs structure)
MIN_REGION_PX = 32

#: the largest decode asked of ``detail`` for region hashes: a region of a quarter of each side
#: (the smallest ``find_embedded`` returns) then still has its 512 pixels
MAX_DETAIL = 4 * PDQ_TARGET

Box = tuple[int, int, int, int]  # left, top, right, bottom (exclusive), in pixels of the array given


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
    out = [_crop(whole, box) for _, box in regions]
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
        piece = _crop(big_luma, (round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy)))
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


def _crop(a: np.ndarray, box: Box) -> np.ndarray:
    return np.ascontiguousarray(a[box[1] : box[3], box[0] : box[2]])


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

    Rows are checked in growing blocks, so an image without a border costs one row.
    """
    colour = np.median(a[0], axis=0).astype(np.int16)
    limit = max(1, int(0.4 * a.shape[0]))
    depth, step = 0, 4
    while depth < limit:
        d = np.abs(a[depth : min(depth + step, limit)].astype(np.int16) - colour)
        close = (np.maximum(np.maximum(d[..., 0], d[..., 1]), d[..., 2]) <= tolerance).mean(axis=1) >= share
        if not close.all():
            return depth + int(np.argmin(close))
        depth += len(close)
        step *= 2
    return depth


# --- embedded pictures --------------------------------------------------------------------------

#: step (0-255) in any colour channel across a line for it to count as an edge of a picture
EDGE_STEP = 5.0
#: luma change to the right and lower neighbours (summed) up to which a pixel is flat canvas
FLAT_STEP = 4.0
#: share of a side that must lie on a canvas edge
SIDE_SUPPORT = 0.6
#: candidate lines per axis
MAX_LINES = 16
#: width of the strip outside each side, and its largest luma standard deviation (uniform canvas)
STRIP = 4
CANVAS_STD = 5.0
#: differences in mean luma between the strips outside a box's sides below this count as equal
CANVAS_SPREAD_STEP = 2.0


def find_embedded(rgb: np.ndarray) -> list[Box]:
    """Boxes of a picture shown inside a larger canvas (screenshot, frame, page): none, one or two.

    A picture's side is a *canvas edge*: a colour step along a straight line with flat canvas on one
    side (small gaps bridged, for where the picture's border happens to match the canvas). The
    longest such lines are candidates; a box is valid if both sides of one axis lie on canvas edges
    (``SIDE_SUPPORT`` of their length, uniform strip outside) and the other axis does the same or
    spans the image (a photo across a phone screen, a letterbox). Window chrome may nest valid
    boxes (the viewer's content area around the picture and its margin), and a picture with plain
    areas may hold smaller ones, so the smallest and the largest valid box are both returned.
    """
    height, width = rgb.shape[:2]
    if min(height, width) < 4 * MIN_REGION_PX:
        return []
    luma = rgb[:, :, :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    flat = _flat(luma)
    colour = rgb[:, :, :3].astype(np.float32)
    rows_edge = _canvas_edges(colour, flat)  # (H+1, W): edge between row y-1 and row y
    cols_edge = _canvas_edges(colour.transpose(1, 0, 2), flat.T)  # (W+1, H)
    ys = _candidate_lines(rows_edge, height)
    xs = _candidate_lines(cols_edge, width)
    if len(ys) < 3 and len(xs) < 3:  # at most the image edges plus one line: no closed box
        return []
    boxes = [_refine(colour, box) for box in _valid_boxes(ys, xs, rows_edge, cols_edge, _Integral(luma))]
    return list(dict.fromkeys(boxes))


def _refine(colour: np.ndarray, box: Box) -> Box:
    """Move each side (not on the image border) by up to 2 px to the sharpest one-pixel step.

    Candidate lines come from two-row means, so they can sit a pixel or two outside the picture;
    a row of canvas left in the box costs PDQ several bits. ``colour``: (H, W, channels) float32.
    """
    x0, y0, x1, y1 = box
    h, w = colour.shape[:2]

    def best(pos: int, size: int, step: Callable[[int], float]) -> int:
        if pos <= 0 or pos >= size:
            return pos
        cands = range(max(1, pos - 2), min(size - 1, pos + 2) + 1)
        return max(cands, key=step)

    def rows(y: int) -> float:
        return float(np.abs(colour[y, x0:x1] - colour[y - 1, x0:x1]).max(axis=-1).sum())

    def cols(x: int) -> float:
        return float(np.abs(colour[y0:y1, x] - colour[y0:y1, x - 1]).max(axis=-1).sum())

    y0, y1 = best(y0, h, rows), best(y1, h, rows)
    x0, x1 = best(x0, w, cols), best(x1, w, cols)
    return (x0, y0, x1, y1)


def _flat(luma: np.ndarray) -> np.ndarray:
    g = np.zeros(luma.shape, dtype=np.float32)
    g[:, :-1] += np.abs(np.diff(luma, axis=1))
    g[:-1, :] += np.abs(np.diff(luma, axis=0))
    return g <= FLAT_STEP


def _canvas_edges(colour: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """Boolean (H+1, W): at boundary y, a step of ``EDGE_STEP`` in any channel between the two rows
    above and the two below (a navy sky on a dark grey canvas differs in colour more than in
    luma), with flat pixels 3 and 4 rows away on one side (clear of the blur of scaling and JPEG).
    ``colour``: (H, W, channels) float32."""
    h = colour.shape[0]
    out = np.zeros((h + 1, colour.shape[1]), dtype=bool)
    if h < 10:
        return out
    above = (colour[:-3] + colour[1:-2]) * 0.5  # rows y-2, y-1 for y = 2 .. h-2
    below = (colour[2:-1] + colour[3:]) * 0.5  # rows y, y+1
    out[2 : h - 1] = np.abs(below - above).max(axis=2) >= EDGE_STEP
    canvas = np.zeros_like(out)
    two = flat[:-1] & flat[1:]  # two[k] = rows k and k+1 flat
    canvas[5 : h - 3] = two[1 : h - 7] | two[7 : h - 1]  # rows y-4, y-3 or rows y+3, y+4
    return _bridge(out & canvas, 3)


def _bridge(mask: np.ndarray, gap: int) -> np.ndarray:
    """Binary closing along axis 1: gaps up to ``2 * gap`` pixels between True runs are filled."""
    return ~_dilate(~_dilate(mask, gap), gap)


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    c = np.zeros((mask.shape[0], mask.shape[1] + 1), dtype=np.int32)
    np.cumsum(mask, axis=1, out=c[:, 1:])
    n = mask.shape[1]
    lo = np.clip(np.arange(n) - r, 0, n)
    hi = np.clip(np.arange(n) + r + 1, 0, n)
    return (c[:, hi] - c[:, lo]) > 0


def _longest_runs(mask: np.ndarray) -> np.ndarray:
    """Length of the longest run of True in each row."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    step = np.diff(padded, axis=1)
    srow, scol = np.nonzero(step == 1)
    _, ecol = np.nonzero(step == -1)
    out = np.zeros(mask.shape[0], dtype=np.int64)
    np.maximum.at(out, srow, ecol - scol)
    return out


def _candidate_lines(edges: np.ndarray, size: int) -> np.ndarray:
    """Positions of the longest canvas edges (local maxima), plus the two image borders."""
    runs = _longest_runs(edges)
    keep = runs >= max(MIN_REGION_PX, 0.2 * edges.shape[1])
    # non-maximum suppression over +-2 lines: a blurred edge fires on neighbouring rows
    local_max = np.max(np.lib.stride_tricks.sliding_window_view(np.pad(runs, 2), 5), axis=1)
    peaks = np.nonzero(keep & (runs >= local_max))[0]
    peaks = peaks[(peaks >= 2) & (peaks <= size - 2)]
    chosen: list[int] = []
    for p in peaks[np.argsort(-runs[peaks], kind="stable")]:
        if all(abs(int(p) - q) > 2 for q in chosen):
            chosen.append(int(p))
        if len(chosen) == MAX_LINES:
            break
    return np.array(sorted({0, size, *chosen}), dtype=np.int64)


class _Integral:
    """Integral images of luma and luma squared: standard deviation of any box in O(1)."""

    def __init__(self, luma: np.ndarray) -> None:
        self.h, self.w = luma.shape
        v = luma.astype(np.float64)
        self.s = np.zeros((self.h + 1, self.w + 1), dtype=np.float64)
        self.s2 = np.zeros_like(self.s)
        self.s[1:, 1:] = v.cumsum(axis=0).cumsum(axis=1)
        self.s2[1:, 1:] = (v * v).cumsum(axis=0).cumsum(axis=1)

    def stats(
        self, y0: np.ndarray, y1: np.ndarray, x0: np.ndarray, x1: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of boxes [y0, y1) x [x0, x1) (broadcast, clipped; empty = NaN)."""
        y0, y1 = np.clip(y0, 0, self.h), np.clip(y1, 0, self.h)
        x0, x1 = np.clip(x0, 0, self.w), np.clip(x1, 0, self.w)
        n = np.maximum(y1 - y0, 0) * np.maximum(x1 - x0, 0)

        def box(a: np.ndarray) -> np.ndarray:
            return a[y1, x1] - a[y0, x1] - a[y1, x0] + a[y0, x0]

        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(n > 0, box(self.s) / n, np.nan)
            var = box(self.s2) / n - mean * mean
            return mean, np.where(n > 0, np.sqrt(np.maximum(var, 0.0)), np.nan)


def _side_support(edges: np.ndarray, lines: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """(L, C, C): share of the span [cuts[i], cuts[j]) on each line that lies on an edge."""
    c = np.zeros((edges.shape[0], edges.shape[1] + 1), dtype=np.int64)
    np.cumsum(edges, axis=1, out=c[:, 1:])
    on = c[lines][:, cuts]  # (L, C)
    span = cuts[None, :] - cuts[:, None]  # (C, C)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (on[:, None, :] - on[:, :, None]) / np.where(span > 0, span, 1)[None]


def _side(support: np.ndarray, outside_std: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (support >= SIDE_SUPPORT) & (outside_std <= CANVAS_STD)


def _valid_boxes(
    ys: np.ndarray, xs: np.ndarray, rows_edge: np.ndarray, cols_edge: np.ndarray, strips: _Integral
) -> list[Box]:
    height, width = strips.h, strips.w
    # indices t < b into ys and lo < r into xs, broadcast as (t, b, lo, r)
    t, b, lo, r = np.ix_(np.arange(len(ys)), np.arange(len(ys)), np.arange(len(xs)), np.arange(len(xs)))
    y0, y1, x0, x1 = ys[t], ys[b], xs[lo], xs[r]
    horiz = _side_support(rows_edge, ys, xs)  # (Ly, Lx, Lx): line ys[i], span xs[l]..xs[r]
    vert = _side_support(cols_edge, xs, ys)  # (Lx, Ly, Ly)
    # the strip outside each side, clear of the blurred edge and of the corners
    g, k = 2, STRIP
    ya, yb, xa, xb = y0 + 3, y1 - 3, x0 + 3, x1 - 3
    outside = (
        strips.stats(y0 - g - k, y0 - g, xa, xb),
        strips.stats(y1 + g, y1 + g + k, xa, xb),
        strips.stats(ya, yb, x0 - g - k, x0 - g),
        strips.stats(ya, yb, x1 + g, x1 + g + k),
    )
    top = _side(horiz[t, lo, r], outside[0][1])
    bottom = _side(horiz[b, lo, r], outside[1][1])
    left = _side(vert[lo, t, b], outside[2][1])
    right = _side(vert[r, t, b], outside[3][1])
    # each axis: both sides on canvas edges, or both on the image border; never one of each,
    # which would let a box grow from the picture into the window chrome
    rows_real = top & bottom & (y0 > 0) & (y1 < height)
    cols_real = left & right & (x0 > 0) & (x1 < width)
    rows_ok = rows_real | ((y0 == 0) & (y1 == height))
    cols_ok = cols_real | ((x0 == 0) & (x1 == width))
    h, w = y1 - y0, x1 - x0
    area = h * w
    shape_ok = (h >= max(MIN_REGION_PX, 0.25 * height)) & (w >= max(MIN_REGION_PX, 0.25 * width))
    size_ok = (area >= 0.1 * height * width) & (area <= 0.92 * height * width)
    valid = rows_ok & cols_ok & (rows_real | cols_real) & shape_ok & size_ok
    if not valid.any():
        return []
    # one canvas around the picture: the strips outside its sides have the same colour. The box
    # whose outside strips agree best wins (a viewer's content area is bounded by toolbar, status
    # bar and side panel, each of its own shade); among equals, the one with more sides on the
    # canvas (not stretched to the image border across a side panel), then the largest
    shape = valid.shape
    means = np.stack([np.broadcast_to(m, shape) for m, _ in outside])
    nan = np.isnan(means)
    spread = np.where(nan, -np.inf, means).max(axis=0) - np.where(nan, np.inf, means).min(axis=0)
    sides = 2 * (rows_real.astype(np.int64) + cols_real)  # 2 or 4 sides on the canvas
    bucket = np.floor(np.where(valid, spread, np.inf) / CANVAS_SPREAD_STEP)
    key = (bucket * 8 - sides) * (height * width + 1) - area
    largest = np.where(valid, -key, -np.inf)
    smallest = np.where(valid, area, np.iinfo(np.int64).max)
    out: list[Box] = []
    for flat_index in (int(np.argmax(largest)), int(np.argmin(smallest))):
        i = np.unravel_index(flat_index, shape)
        box = (int(xs[i[2]]), int(ys[i[0]]), int(xs[i[3]]), int(ys[i[1]]))
        if box not in out:
            out.append(box)
    return out


# ------------------------------------------------------------------------------------------------
# known side


#: centre crops of the default plan, as the share of each side removed (every 3 %: PDQ keeps a
#: copy within about 1.5 % of the same cut)
CENTRE_CROPS = (0.04, 0.07, 0.1, 0.13, 0.16, 0.19, 0.22)
#: off-centre crops, when asked for (not in the default plan: on the benchmark corpus they
#: brought false matches, docs/robustness.md): the small sizes (a few per cent trimmed off one
#: or two edges), placed on a grid of ``OFFSET_STEP``; larger ones would cost a grid of 80-100 each
OFFSET_CROPS = (0.04, 0.07, 0.1, 0.13)
#: the grid of off-centre crops: the cut moves by this share of the side from one position to
#: the next (a one-sided shift of about 1.3 % moves a hash past the threshold)
OFFSET_STEP = 0.025


@dataclass(frozen=True, slots=True)
class AugmentPlan:
    """Which extra hashes to store per original. Crop fractions are of the width and of the height
    removed; offset crops split the cut unevenly between opposite sides, on a grid
    (``offset_anchors``)."""

    centre_crops: tuple[float, ...] = CENTRE_CROPS
    offset_crops: tuple[float, ...] = ()  # e.g. OFFSET_CROPS
    #: where offset crops are placed: a grid whose cuts are this share of the side apart; None,
    #: only the 8 edges and corners
    offset_step: float | None = OFFSET_STEP
    #: degrees, corners black: every degree up to 8 either way
    rotations: tuple[float, ...] = tuple(float(d) for d in range(-8, 9) if d)
    band: bool = True  # the middle band, to meet the query's band
    border: bool = True  # the original without its own uniform border, if it has one


DEFAULT_AUGMENT = AugmentPlan()

#: where the cut of an offset crop goes: share taken from the left and from the top
_ANCHORS = {
    "top-left": (0.0, 0.0),
    "top": (0.5, 0.0),
    "top-right": (1.0, 0.0),
    "left": (0.0, 0.5),
    "right": (1.0, 0.5),
    "bottom-left": (0.0, 1.0),
    "bottom": (0.5, 1.0),
    "bottom-right": (1.0, 1.0),
}


def offset_anchors(fraction: float, step: float | None) -> dict[str, tuple[float, float]]:
    """Where the cut of an offset crop of ``fraction`` goes (share from the left, from the top):
    the 8 edges and corners, or with ``step`` a grid whose cuts are ``step`` of the side apart
    (at least the 3 x 3 of edges and corners), the centre left out (the centre crops have it)."""
    if step is None:
        return _ANCHORS
    n = max(3, math.ceil(fraction / step - 1e-9) + 1)
    shares = [i / (n - 1) for i in range(n)]
    return {f"at {ax:.2f},{ay:.2f}": (ax, ay) for ay in shares for ax in shares if (ax, ay) != (0.5, 0.5)}


@dataclass(frozen=True, slots=True)
class Augmented:
    hash: str
    quality: int
    kind: str  # crop-centre | crop-offset | rotate | band | border
    label: str  # e.g. "crop 10% top-left", "rotate -8"
    max_distance: int | None = None  # as QueryHash.max_distance: set for low-quality hashes


def augment_variants(
    rgb: np.ndarray,
    plan: AugmentPlan = DEFAULT_AUGMENT,
    *,
    min_quality: int = MIN_VARIANT_QUALITY,
    low_quality_distance: int | None = None,
    detail: Redecode | None = None,
) -> list[Augmented]:
    """Extra PDQs of an original (crops and small rotations), to store with its entry.

    ``rgb`` is the original as hashed (``DecodedImage.rgb``). Hashes equal to the plain PDQ or to
    one another are dropped, and none is made when the original's PDQ quality is below
    ``min_quality`` (nor any weak variant: below it, or periodic), unless ``low_quality_distance``
    is given: then they are made with that ``max_distance``. With ``detail`` (the file decoded
    again at a given size), crops and the border cut are made from a larger decode, as the query
    side's regions.
    """
    luma = pdq_luma(rgb)
    plain = pdq_from_luma(luma)
    if plain.quality < min_quality and low_quality_distance is None:
        return []
    height, width = luma.shape
    cuts: list[tuple[str, str, Box]] = []
    for f in plan.centre_crops:
        cuts.append(("crop-centre", f"crop {f:.0%} centre", _crop_box(width, height, f, 0.5, 0.5)))
    for f in plan.offset_crops:
        for name, (ax, ay) in offset_anchors(f, plan.offset_step).items():
            cuts.append(("crop-offset", f"crop {f:.0%} {name}", _crop_box(width, height, f, ax, ay)))
    own_border = trim_borders(rgb) if plan.border else None
    if own_border is not None:
        # a black pad around a picture with black edges (a night sky) is cut off together with
        # them by the query side; this hash is what such a query then finds
        cuts.append(("border", "without border", own_border))
    # cut as the query side cuts its regions: from a larger decode when there is one
    lumas = region_lumas(rgb, [(kind, box) for kind, _, box in cuts], detail)
    todo = [(kind, label, pixels) for (kind, label, _), pixels in zip(cuts, lumas, strict=True)]
    for deg in plan.rotations:
        turned = rotate_luma(luma, deg)
        if PDQ.distance(pdq_from_luma(turned).hash, corner_hash(height, width, deg)) > CORNER_MARGIN:
            todo.append(("rotate", f"rotate {deg:+g}", turned))
    if plan.band:
        todo.append(("band", "middle band", _crop(luma, middle_band(width, height))))
    out: list[Augmented] = []
    seen = {plain.hash}
    for kind, label, pixels in todo:
        h = pdq_from_luma(pixels)
        low = weak(h.quality, h.hash, min_quality)
        if h.hash in seen or (low and (low_quality_distance is None or h.quality < FLAT_QUALITY)):
            continue
        limit = low_quality_distance if low else None
        out.append(Augmented(h.hash, h.quality, kind, label, limit))
        seen.add(h.hash)
    return out


@lru_cache(maxsize=512)
def corner_hash(height: int, width: int, degrees: float) -> str:
    """The PDQ of a flat picture rotated by ``degrees``: the black corners alone (the same for any
    shade, as PDQ's signs do not change with the scale of the pixels; cached per size)."""
    return pdq_from_luma(rotate_luma(np.full((height, width), 128.0, dtype=np.float32), degrees)).hash


def augment_hashes(
    rgb: np.ndarray, plan: AugmentPlan = DEFAULT_AUGMENT, *, min_quality: int = MIN_VARIANT_QUALITY
) -> list[str]:
    """The hex of :func:`augment_variants`: what ``opspoor hashset build --augment`` stores."""
    return [a.hash for a in augment_variants(rgb, plan, min_quality=min_quality)]


def _crop_box(width: int, height: int, fraction: float, ax: float, ay: float) -> Box:
    """Remove ``fraction`` of each dimension; ``ax``/``ay`` = share of the cut taken from left/top."""
    cut_w, cut_h = fraction * width, fraction * height
    left, top = round(cut_w * ax), round(cut_h * ay)
    return (left, top, left + round(width - cut_w), top + round(height - cut_h))


def rotate_luma(luma: np.ndarray, degrees: float) -> np.ndarray:
    """PDQ luma rotated counter-clockwise about its centre, same size, uncovered corners black.

    Rotating the luma equals rotating the pixels and taking their luma (the filter is linear),
    at a third of the cost.
    """
    img = Image.fromarray(np.ascontiguousarray(luma, dtype=np.float32), "F")
    out = img.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=0.0)
    return np.asarray(out, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class AugmentedFile:
    """What ``--augment`` stores with one image's entry (``opspoor hashset build`` and ``opspoor
    hashset from-case``): its augmentation PDQs, the weak ones, its local features."""

    hashes: tuple[str, ...]
    low_quality: tuple[str, ...] = ()
    local: str | None = None

    def derived(self) -> dict[str, list[str]]:
        """As ``Entry.derived``: matching-only values, never exported."""
        out = {sig: list(v) for sig, v in (("pdq", self.hashes), ("pdq_lq", self.low_quality)) if v}
        if self.local:
            out["local"] = [self.local]
        return out


def augment_image_bytes(
    data: bytes, where: str, *, low_quality: bool = True, local: bool = True
) -> AugmentedFile:
    """The augmentation of one image file's bytes (decoded as the scan decodes it)."""
    from opspoor.media.image import decode_with_detail
    from opspoor.signals.local import local_features

    decoded, detail = decode_with_detail(data, where=where)
    rgb = decoded.rgb
    variants = augment_variants(
        rgb, low_quality_distance=LOW_QUALITY_DISTANCE if low_quality else None, detail=detail
    )
    features = None
    if local:
        found = local_features(rgb)
        features = found.encode() if len(found) else None  # a flat picture has none
    return AugmentedFile(
        tuple(v.hash for v in variants if v.max_distance is None),
        tuple(v.hash for v in variants if v.max_distance is not None),
        features,
    )
