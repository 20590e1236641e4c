"""The known side of robust matching: the extra hashes stored per original (``hashset build
--augment``, ``hashset from-case --augment``): crops, small rotations, the middle band."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from opspoor.media.image import Redecode
from opspoor.signals.embedded import Box, crop
from opspoor.signals.pdq import PDQ, pdq_from_luma, pdq_luma
from opspoor.signals.robust import (
    FLAT_QUALITY,
    LOW_QUALITY_DISTANCE,
    MIN_VARIANT_QUALITY,
    middle_band,
    region_lumas,
    trim_borders,
    weak,
)

#: a rotated original's hash is stored only if further than this from the hash of a *flat*
#: picture rotated alike: the black corners alone make that hash, so a variant close to it would
#: match any plain picture an editor rotated by the same angle (the operating threshold + 10)
CORNER_MARGIN = 41
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
        todo.append(("band", "middle band", crop(luma, middle_band(width, height))))
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
