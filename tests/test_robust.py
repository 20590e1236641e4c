"""Robust matching methods (opspoor.signals.robust) on benign generated images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from opspoor.demo.images import generate_image
from opspoor.errors import OpspoorError
from opspoor.evaluate.transforms import (
    Transform,
    apply_transform,
    crop,
    encode_bmp,
    jpeg,
    pad,
    rotate,
    screenshot_desktop,
    screenshot_phone,
)
from opspoor.media.image import decode_image, redecoder
from opspoor.signals.augment import AugmentPlan, augment_hashes, augment_variants
from opspoor.signals.pdq import PDQ, hex_to_words, pdq_from_luma, pdq_from_rgb
from opspoor.signals.robust import (
    BORDER_SHARE,
    BORDER_TOLERANCE,
    DIHEDRAL,
    FLAT_QUALITY,
    LOW_QUALITY_DISTANCE,
    PERIODIC,
    _border_depth,
    find_embedded,
    pdq_luma,
    periodicity,
    query_hashes,
    region_lumas,
    trim_borders,
)
from pictures import soft_picture

THRESHOLD = 31


def _pictures(base: int = 1000, count: int = 6, size: tuple[int, int] = (640, 480)) -> list[Image.Image]:
    """Benign generated pictures with PDQ quality >= 50 (the ones robust hashes are made for).

    No stripes or checkers: perfectly regular patterns alias when rescaled, unlike photos."""
    out = []
    seed = base
    while len(out) < count:
        img = generate_image(seed, *size, style=("clouds", "shapes", "mixed")[seed % 3])
        if pdq_from_rgb(_canonical(img)).quality >= 50:
            out.append(img)
        seed += 1
    return out


def _canonical(img: Image.Image) -> np.ndarray:
    return decode_image(encode_bmp(img)).rgb


def _edited(img: Image.Image, *steps, seed: int = 0) -> np.ndarray:
    return decode_image(
        apply_transform(Transform("t", "t", tuple(steps)), img, np.random.default_rng(seed))
    ).rgb


def _best(hashes: list[str], target: str) -> int:
    return min(PDQ.distance(h, target) for h in hashes)


@pytest.fixture(scope="module")
def pictures() -> list[Image.Image]:
    return _pictures()


def test_pdq_luma_is_bit_exact() -> None:
    """pdqhash's luma: 0.299 R + 0.587 G + 0.114 B summed in double in this order, stored float32."""
    rng = np.random.default_rng(0)
    for shape in ((37, 53, 3), (512, 384, 3), (20, 30, 4)):
        rgb = rng.integers(0, 256, size=shape, dtype=np.uint8)
        f = rgb[:, :, :3].astype(np.float64)
        want = ((f[:, :, 0] * 0.299 + f[:, :, 1] * 0.587) + f[:, :, 2] * 0.114).astype(np.float32)
        assert pdq_luma(rgb).tobytes() == want.tobytes()
        assert pdq_luma(rgb[::-1, 1:]).tobytes() == want[::-1, 1:].tobytes()  # a view, not a copy


def test_first_hash_is_plain_pdq_and_methods_are_named(pictures: list[Image.Image]) -> None:
    rgb = _edited(pictures[0], pad(0.2, False, "letterbox"))
    hashes = query_hashes(rgb, band=True)
    assert hashes[0].hash == pdq_from_rgb(rgb).hash and hashes[0].method == "pdq"
    methods = {h.method for h in hashes}
    assert {"dihedral/rot90", "dihedral/mirror", "border", "border/flip", "band"} <= methods
    assert len({h.hash for h in hashes}) == len(hashes)  # no duplicates


def test_dihedral_recovers_every_rotation_and_flip_exactly(pictures: list[Image.Image]) -> None:
    for img in pictures:
        rgb = _canonical(img)
        original = pdq_from_rgb(rgb).hash
        for name, turn in DIHEDRAL:
            turned = np.ascontiguousarray(turn(rgb))
            plain = query_hashes(turned, dihedral=False, borders=False, embedded=False, band=False)
            found = query_hashes(turned, borders=False, embedded=False, band=False)
            assert len(plain) == 1
            assert _best([h.hash for h in found], original) == 0, name


def test_dihedral_recovers_flips_through_the_decoder(pictures: list[Image.Image]) -> None:
    """Mirrored and rotated files (re-decoded and re-scaled) still land within the threshold."""
    for img in pictures:
        original = pdq_from_rgb(_canonical(img)).hash
        for op in (Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180):
            rgb = _canonical(img.transpose(op))
            assert PDQ.distance(pdq_from_rgb(rgb).hash, original) > THRESHOLD
            assert _best([h.hash for h in query_hashes(rgb)], original) <= 8


@pytest.mark.parametrize(
    ("fraction", "coloured", "sides"),
    [(0.2, False, "letterbox"), (0.2, True, "all"), (0.1, True, "letterbox")],
)
def test_border_removal_recovers_padded_copies(
    pictures: list[Image.Image], fraction: float, coloured: bool, sides: str
) -> None:
    for i, img in enumerate(pictures):
        original = pdq_from_rgb(_canonical(img)).hash
        rgb = _edited(img, pad(fraction, coloured, sides), jpeg(70), seed=i)
        assert trim_borders(rgb) is not None
        only_border = query_hashes(rgb, dihedral=False, embedded=False, band=False)
        assert only_border[0].method == "pdq" and {h.method for h in only_border[1:]} <= {"border", "pad"}
        assert PDQ.distance(only_border[0].hash, original) > THRESHOLD  # plain PDQ misses it
        # the trim alone finds a picture whose edges differ from the pad
        assert _best([h.hash for h in only_border if h.region == "border"], original) <= THRESHOLD


def test_centred_trim_keeps_a_dark_picture_edge() -> None:
    """A black letterbox around a picture whose own top rows are black: the plain trim cuts into
    the picture, the centred trim (smaller cut on both sides) restores it."""
    from opspoor.signals.robust import centred_trim, query_regions

    img = np.asarray(_pictures(count=1)[0]).copy()
    img[:60] = 0  # the picture's own black top
    boxed = np.zeros((img.shape[0] + 96, img.shape[1], 3), dtype=np.uint8)
    boxed[48:-48] = img
    box = trim_borders(boxed)
    assert box is not None and box[1] >= 48 + 55
    assert centred_trim(box, boxed.shape[1], boxed.shape[0]) == (0, 48, boxed.shape[1], boxed.shape[0] - 48)
    regions = query_regions(boxed, embedded=False, band=False)
    assert ("border", (0, 48, boxed.shape[1], boxed.shape[0] - 48)) in regions


@pytest.mark.parametrize("screenshot", [screenshot_desktop, screenshot_phone])
def test_embedded_detection_recovers_screenshots(pictures: list[Image.Image], screenshot) -> None:
    recovered = 0
    for i, img in enumerate(pictures):
        original = pdq_from_rgb(_canonical(img)).hash
        rgb = _edited(img, screenshot, seed=i)
        hashes = query_hashes(rgb, dihedral=False, borders=False, band=False)
        assert PDQ.distance(hashes[0].hash, original) > THRESHOLD
        embedded = [h.hash for h in hashes if h.region == "embedded"]
        recovered += bool(embedded) and _best(embedded, original) <= THRESHOLD
    assert recovered >= len(pictures) - 1


@pytest.mark.parametrize("screenshot", [screenshot_desktop, screenshot_phone])
def test_region_hashes_from_a_larger_decode_land_closer(screenshot) -> None:
    """A picture that fills part of a screenshot has few canonical pixels, resampled twice; cut
    from a larger decode of the same file (``detail``), its hash lands nearer the original's."""
    plain_total = detail_total = 0
    for i, img in enumerate(_pictures(base=3000, count=4, size=(1024, 768))):
        original = pdq_from_rgb(_canonical(img)).hash
        data = apply_transform(Transform("t", "t", (screenshot,)), img, np.random.default_rng(i))
        rgb = decode_image(data).rgb
        plain, detail = (
            [
                h.hash
                for h in query_hashes(rgb, dihedral=False, borders=False, detail=d)
                if h.region == "embedded"
            ]
            for d in (None, redecoder(data))
        )
        assert plain and len(plain) == len(detail)  # the same boxes, found on the canonical pixels
        plain_total += _best(plain, original)
        detail_total += _best(detail, original)
        assert _best(detail, original) <= THRESHOLD
    assert detail_total < plain_total


def test_region_lumas_keep_the_canonical_slices_when_no_larger_decode_helps() -> None:
    rgb = _canonical(_pictures(base=3100, count=1, size=(1024, 768))[0])
    regions = [("full", (0, 0, 512, 384)), ("embedded", (64, 48, 448, 336))]
    canonical = region_lumas(rgb, regions)
    assert canonical[1].shape == (288, 384)

    def broken(target: int) -> np.ndarray:
        raise OpspoorError("gone", where="x.jpg")

    for detail in (broken, lambda target: rgb):  # a failed decode, a decode with no more pixels
        again = region_lumas(rgb, regions, detail=detail)
        assert all(np.array_equal(a, b) for a, b in zip(again, canonical, strict=True))
    asked: list[int] = []

    def larger(target: int) -> np.ndarray:
        asked.append(target)
        return np.asarray(Image.fromarray(rgb).resize((1024, 768), Image.Resampling.BICUBIC))

    sharp = region_lumas(rgb, regions, detail=larger)
    assert asked == [683]  # once, at the size the region needs to have 512 px on its long side
    assert np.array_equal(sharp[0], canonical[0])  # the whole stays the canonical one
    assert sharp[1].shape == (384, 512)  # the region, brought to fit 512 as a file would be
    # scaled as luma, it is the picture a file of the region would give but for 8-bit rounding
    big = larger(683)
    as_file = Image.fromarray(big[96:672, 128:896]).resize(
        (512, 384), Image.Resampling.BICUBIC, reducing_gap=2.0
    )
    # (RGB is rounded and clipped to 8 bits after scaling; one luma channel is not)
    diff = np.abs(sharp[1] - pdq_luma(np.asarray(as_file)))
    assert diff.mean() < 0.3 and diff.max() < 2.0
    assert PDQ.distance(pdq_from_luma(sharp[1]).hash, pdq_from_rgb(np.asarray(as_file)).hash) <= 2


def test_embedded_pictures_are_found_by_colour_where_luma_shows_no_edge() -> None:
    """A navy-framed picture on a dark grey canvas of the same luma: only the colour step
    shows where the picture ends."""
    img = _pictures(base=3200, count=1, size=(400, 300))[0]
    framed = np.full((300, 400, 3), (0, 0, 140), dtype=np.uint8)  # luma 16, like the canvas
    framed[8:-8, 8:-8] = np.asarray(img.resize((384, 284)))
    canvas = np.full((480, 640, 3), 16, dtype=np.uint8)
    canvas[100:400, 120:520] = framed
    original = pdq_from_rgb(framed).hash
    boxes = find_embedded(canvas)
    assert (
        boxes and _best([pdq_from_rgb(canvas[b[1] : b[3], b[0] : b[2]]).hash for b in boxes], original) <= 4
    )
    assert any(abs(b[0] - 120) + abs(b[1] - 100) + abs(b[2] - 520) + abs(b[3] - 400) <= 2 for b in boxes)
    gray = np.repeat(np.asarray(Image.fromarray(canvas).convert("L"))[:, :, None], 3, axis=2)
    assert not any(
        abs(b[0] - 120) + abs(b[2] - 520) <= 4 for b in find_embedded(gray)
    )  # luma alone misses it


def test_nothing_embedded_in_plain_pictures(pictures: list[Image.Image]) -> None:
    assert sum(bool(find_embedded(_canonical(img))) for img in pictures) <= 1


def test_augmentation_recovers_crops_and_small_rotations(pictures: list[Image.Image]) -> None:
    # the default plan stores centre crops every 3 % and rotations every degree; 11.5 %, 4.5 and
    # -6.5 degrees lie between two of them
    edits = [
        (crop(0.1, False),),
        (crop(0.115, False),),
        (rotate(8),),
        (rotate(-8),),
        (rotate(4.5),),
        (rotate(-6.5),),
    ]
    for img in pictures:
        rgb = _canonical(img)
        original = pdq_from_rgb(rgb).hash
        known = [original, *augment_hashes(rgb)]
        for steps in edits:
            query = pdq_from_rgb(_edited(img, *steps)).hash
            assert PDQ.distance(query, original) > THRESHOLD, steps
            assert _best(known, query) <= THRESHOLD, steps


def test_augmented_plan_and_quality_gate() -> None:
    rgb = _canonical(_pictures(count=1)[0])
    variants = augment_variants(rgb)
    kinds = {v.kind for v in variants}
    assert {"crop-centre", "rotate", "band"} <= kinds <= {"crop-centre", "rotate", "band", "border"}
    assert len(variants) >= len(AugmentPlan().centre_crops) + len(AugmentPlan().rotations) + 1
    plan = AugmentPlan(centre_crops=(), offset_crops=(0.1,), rotations=(), band=False, border=False)
    assert {v.kind for v in augment_variants(rgb, plan)} == {"crop-offset"}
    assert len(augment_variants(rgb, plan)) == 24  # a 5 x 5 grid, 2.5 % of the side apart, less the centre
    flat = np.full((300, 400, 3), 90, dtype=np.uint8)  # quality 0: no extra hash on either side
    assert augment_hashes(flat) == []
    assert len(query_hashes(flat)) == 1


def test_distractors_never_match_with_every_method_on() -> None:
    """Known pictures (plain + augmented) against other pictures, as they are and edited."""
    known = [_canonical(img) for img in _pictures(2000, 8)]
    known_hex = [h for rgb in known for h in [pdq_from_rgb(rgb).hash, *augment_hashes(rgb)]]
    distractors = _pictures(3000, 8)
    query_hex = []
    for i, img in enumerate(distractors):
        for steps in ((), (pad(0.2, True),), (screenshot_desktop,), (crop(0.1, False), jpeg(50))):
            rgb = _edited(img, *steps, seed=i) if steps else _canonical(img)
            query_hex += [h.hash for h in query_hashes(rgb, band=True)]
    d = np.bitwise_count(hex_to_words(query_hex)[:, None, :] ^ hex_to_words(known_hex)[None, :, :]).sum(
        axis=2
    )
    assert len(query_hex) > 100 and len(known_hex) > 80
    assert d.min() > THRESHOLD


# --- pad ladder -----------------------------------------------------------------------------------


def test_pad_ladder_cuts_stay_centred_and_inside_the_border() -> None:
    from opspoor.signals.robust import MAX_PAD, PAD_STEP, pad_ladder

    width, height = 500, 400
    box = (60, 30, 450, 380)  # border 60 / 50 left and right, 30 / 20 top and bottom
    cuts = pad_ladder(box, width, height)
    assert cuts
    for left, top, right, bottom in cuts:
        assert (left, top) == (width - right, height - bottom)  # centred
        assert left <= 50 + 1 and top <= 20 + 1  # inside the thinner border of each axis
        assert max(left / width, top / height) <= MAX_PAD + 1e-9
    assert {c for c in cuts if c[0] == 0} and {c for c in cuts if c[1] == 0}  # rows only, columns only
    assert (round(PAD_STEP * width), round(PAD_STEP * height)) == cuts[0][:2]
    assert pad_ladder((2, 2, width - 2, height - 2), width, height) == []  # no room for a cut


def _black_edged(img: Image.Image, seed: int) -> Image.Image:
    """The picture with black bars of its own on all four sides, of uneven depth (a space photo)."""
    a = np.asarray(img).copy()
    h, w = a.shape[:2]
    rng = np.random.default_rng(seed)
    top, bottom = (round(f * h) for f in rng.uniform(0.05, 0.1, size=2))
    left, right = (round(f * w) for f in rng.uniform(0.02, 0.04, size=2))
    a[:top], a[h - bottom :], a[:, :left], a[:, w - right :] = 0, 0, 0, 0
    return Image.fromarray(a)


@pytest.mark.parametrize(("fraction", "sides"), [(0.1, "all"), (0.2, "letterbox")])
def test_pad_ladder_recovers_black_pads_around_black_edged_pictures(
    pictures: list[Image.Image], fraction: float, sides: str
) -> None:
    """The trim and the centred trim cut the picture's own black bars together with the pad; one
    of the ladder's cuts leaves them in, as in the original's hash."""
    recovered = 0
    for i, base in enumerate(pictures):
        img = _black_edged(base, i)
        original = pdq_from_rgb(_canonical(img)).hash
        hashes = query_hashes(_edited(img, pad(fraction, False, sides), jpeg(90), seed=i), dihedral=False)
        without_ladder = [h.hash for h in hashes if h.region != "pad"]
        ladder = [h.hash for h in hashes if h.region == "pad"]
        assert _best(without_ladder, original) > THRESHOLD
        recovered += bool(ladder) and _best(ladder, original) <= THRESHOLD
    assert recovered >= len(pictures) - 1


# --- low-quality hashes ---------------------------------------------------------------------------


def _low_quality(base: int, count: int) -> list[Image.Image]:
    out, seed = [], base
    while len(out) < count:
        img = soft_picture(seed)
        if FLAT_QUALITY + 5 <= pdq_from_rgb(_canonical(img)).quality < 50:  # low, not flat
            out.append(img)
        seed += 1
    return out


def test_low_quality_region_hashes_are_made_only_with_their_tighter_distance() -> None:
    from opspoor.signals.robust import LOW_QUALITY_DISTANCE

    found = 0
    flats = _low_quality(100, 6)
    for i, img in enumerate(flats):
        original = pdq_from_rgb(_canonical(img)).hash
        rgb = _edited(img, pad(0.2, True), seed=i)
        plain = query_hashes(rgb)  # region hashes below min_quality are not made
        assert all(h.region == "full" or h.quality >= 50 for h in plain)
        assert all(h.max_distance is None for h in plain)
        hashes = query_hashes(rgb, low_quality_distance=LOW_QUALITY_DISTANCE)
        low = [h for h in hashes if h.max_distance is not None]
        assert low and all(h.max_distance == LOW_QUALITY_DISTANCE and h.quality < 50 for h in low)
        assert all(h.region != "full" for h in low)
        found += _best([h.hash for h in low], original) <= LOW_QUALITY_DISTANCE
    # flat pictures' hashes are unstable: most, not all, of the copies come that close
    assert found > len(flats) // 2
    rgb = _canonical(flats[0])
    assert augment_variants(rgb) == []
    variants = augment_variants(rgb, low_quality_distance=LOW_QUALITY_DISTANCE)
    assert variants and all(v.max_distance == LOW_QUALITY_DISTANCE for v in variants if v.quality < 50)


def test_low_quality_distractors_stay_outside_the_tighter_distance() -> None:
    """Flat pictures hash alike: other flat pictures, edited, must not come within the tighter
    distance of a known one's hashes (plain and augmented, all made with low-quality ones)."""
    from opspoor.signals.robust import LOW_QUALITY_DISTANCE

    known, known_low = [], []
    for img in _low_quality(200, 8):
        rgb = _canonical(img)
        known.append(pdq_from_rgb(rgb).hash)
        known_low.append(False)
        for v in augment_variants(rgb, low_quality_distance=LOW_QUALITY_DISTANCE):
            known.append(v.hash)
            known_low.append(v.max_distance is not None)
    queries, query_low = [], []
    for i, img in enumerate(_low_quality(400, 8)):
        for steps in ((), (pad(0.2, True),), (pad(0.1, False, "letterbox"),), (screenshot_phone,)):
            rgb = _edited(img, *steps, seed=i) if steps else _canonical(img)
            for h in query_hashes(rgb, band=True, low_quality_distance=LOW_QUALITY_DISTANCE):
                queries.append(h.hash)
                query_low.append(h.max_distance is not None)
    d = np.bitwise_count(hex_to_words(queries)[:, None, :] ^ hex_to_words(known)[None, :, :]).sum(axis=2)
    low = np.array(query_low)[:, None] | np.array(known_low)[None, :]
    assert low.sum() > 1000
    assert d[low].min() > LOW_QUALITY_DISTANCE
    assert d[~low].min() > THRESHOLD


def test_flat_regions_get_no_hash_whatever_the_distance_allowed() -> None:
    from opspoor.signals.robust import LOW_QUALITY_DISTANCE

    flat = np.full((300, 400, 3), 90, dtype=np.uint8)
    framed = np.zeros((360, 480, 3), dtype=np.uint8)
    framed[30:330, 40:440] = flat
    assert all(
        h.quality >= FLAT_QUALITY for h in query_hashes(framed, low_quality_distance=LOW_QUALITY_DISTANCE)
    )
    assert augment_variants(flat, low_quality_distance=LOW_QUALITY_DISTANCE) == []


def test_rotations_that_only_show_their_black_corners_are_not_stored(pictures: list[Image.Image]) -> None:
    """A weak picture's rotations hash like the black corners alone, as would any plain picture
    rotated by an editor: they are left out; a picture with structure keeps its rotations."""
    from opspoor.signals.augment import CORNER_MARGIN, corner_hash, rotate_luma

    plan = AugmentPlan(centre_crops=(), offset_crops=(), rotations=(-8.0, 8.0), band=False, border=False)
    assert {v.label for v in augment_variants(_canonical(pictures[0]), plan)} == {"rotate -8", "rotate +8"}
    weak = np.full((360, 480, 3), 128, dtype=np.uint8)
    weak[150:210, 180:300] = 188  # one soft patch: the corners dominate its rotations
    flat = np.full((360, 480), float(pdq_luma(weak).mean()), dtype=np.float32)
    corners = corner_hash(360, 480, 8.0)
    assert PDQ.distance(pdq_from_luma(rotate_luma(flat, 8.0)).hash, corners) <= 2  # any shade alike
    assert PDQ.distance(pdq_from_luma(rotate_luma(pdq_luma(weak), 8.0)).hash, corners) <= CORNER_MARGIN
    assert augment_variants(weak, plan, min_quality=0) == []  # whatever the quality gate


def _page(mark: str) -> np.ndarray:
    """A near-blank page with a small mark in one corner (a page number), as JPEG would give it."""
    from PIL import ImageDraw

    img = Image.new("RGB", (480, 360), (250, 250, 250))
    ImageDraw.Draw(img).text((430, 330), mark, fill=(20, 20, 20))
    return _canonical(img)


def test_flat_pictures_get_no_turns_even_at_the_low_quality_distance() -> None:
    """A flat picture's hash says where its marks are, not what they are: different near-blank
    pages hash within a few bits of each other, so no turn of one is ever looked up."""
    from opspoor.signals.robust import LOW_QUALITY_DISTANCE

    pages = [_page(m) for m in ("1", "2", "7", "xy")]
    hashes = [pdq_from_rgb(p) for p in pages]
    assert all(h.quality < FLAT_QUALITY for h in hashes)
    assert min(PDQ.distance(hashes[0].hash, h.hash) for h in hashes[1:]) <= LOW_QUALITY_DISTANCE
    for p in pages:
        assert [h.variant for h in query_hashes(p, low_quality_distance=LOW_QUALITY_DISTANCE)] == ["original"]


def test_offset_anchors_cover_every_placement_of_the_cut() -> None:
    """Any split of the cut between opposite sides lies within half a step of a grid position
    (the centre is the centre crop's); without a step, the 8 edges and corners."""
    from opspoor.signals.augment import OFFSET_STEP, offset_anchors

    assert len(offset_anchors(0.1, None)) == 8
    for fraction in (0.04, 0.07, 0.1, 0.13):
        anchors = offset_anchors(fraction, OFFSET_STEP)
        xs = sorted({ax for ax, _ in anchors.values()})
        assert xs[0] == 0.0 and xs[-1] == 1.0
        assert max(np.diff(xs)) * fraction <= OFFSET_STEP + 1e-9
        assert (0.5, 0.5) not in anchors.values()


def test_offset_crops_find_off_centre_crops(pictures: list[Image.Image]) -> None:
    """A crop that takes more off one side than the other, which no centre crop meets."""
    from opspoor.signals.augment import OFFSET_CROPS

    for i, img in enumerate(pictures[:4]):
        rgb = _canonical(img)
        known = [pdq_from_rgb(rgb).hash, *augment_hashes(rgb, AugmentPlan(offset_crops=OFFSET_CROPS))]
        w, h = img.size
        # 10 % of each side: 2 % off the left and 8 % off the right, 7 % off the top and 3 % off the bottom
        copy = img.crop((round(0.02 * w), round(0.07 * h), w - round(0.08 * w), h - round(0.03 * h)))
        query = pdq_from_rgb(_canonical(copy)).hash
        assert _best(known, query) <= THRESHOLD, i
        centre = augment_hashes(rgb)  # the default plan: centre crops only
        assert _best([known[0], *centre], query) > THRESHOLD, i


# --- regular patterns ------------------------------------------------------------------------------


def _stripes(period: float, degrees: float, width: int = 640, height: int = 480) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    t = np.deg2rad(degrees)
    on = np.sin(2 * np.pi * (x * np.cos(t) + y * np.sin(t)) / period) > 0
    return np.repeat(np.where(on, 200, 40).astype(np.uint8)[:, :, None], 3, axis=2)


def _padded(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    out = np.zeros((h + h // 5, w + w // 5, 3), dtype=np.uint8)
    out[h // 10 : h // 10 + h, w // 10 : w // 10 + w] = rgb
    return out


def test_periodicity_sees_regular_patterns_and_not_photos_or_random_bits(pictures: list[Image.Image]) -> None:
    assert periodicity("5555" * 16) == 1.0  # every row alternates
    assert periodicity("aaaa5555" * 8) == 1.0
    rng = np.random.default_rng(0)
    assert max(periodicity(rng.bytes(32).hex()) for _ in range(500)) < 0.5
    assert all(periodicity(pdq_from_rgb(_canonical(img)).hash) < PERIODIC for img in pictures)
    stripes = _stripes(6, 30)
    hashed = pdq_from_rgb(stripes)
    assert hashed.quality == 100  # PDQ quality does not see it
    assert periodicity(hashed.hash) >= PERIODIC


def test_extra_hashes_of_regular_patterns_match_only_within_the_low_quality_distance() -> None:
    """Two unrelated diagonal stripe pictures: a pad cut of one lands within 31 bits of a crop
    of the other, as both hashes follow the stripes' period. Such extra hashes are weak, like low
    quality ones: not made by default, made with the tighter distance when asked for."""
    query_rgb, other = _stripes(6, 30), _stripes(23, 30)
    query = query_hashes(_padded(query_rgb), low_quality_distance=LOW_QUALITY_DISTANCE)
    known = augment_variants(other, low_quality_distance=LOW_QUALITY_DISTANCE)
    assert query[0].max_distance is None  # the plain hash keeps the list's distance
    closest = min(((PDQ.distance(q.hash, k.hash), q, k) for q in query for k in known), key=lambda t: t[0])
    assert closest[0] <= THRESHOLD  # the hazard
    assert closest[1].max_distance == LOW_QUALITY_DISTANCE and closest[0] > LOW_QUALITY_DISTANCE

    def limit(h) -> int:
        return THRESHOLD if h.max_distance is None else h.max_distance

    assert not [1 for q in query for k in known if PDQ.distance(q.hash, k.hash) <= min(limit(q), limit(k))]
    # its own padded copy is still found (0 bits), and nothing weak is made without the option
    own = pdq_from_rgb(query_rgb).hash
    assert any(PDQ.distance(q.hash, own) <= limit(q) for q in query[1:])
    weak = {q.hash for q in query if q.max_distance is not None}
    plain_only = query_hashes(_padded(query_rgb))
    assert weak and not weak & {q.hash for q in plain_only}
    assert all(q.max_distance is None and periodicity(q.hash) < PERIODIC for q in plain_only[1:])


def _border_depth_numpy(a: np.ndarray, tolerance: int, share: float) -> int:
    """The NumPy border depth the compiled kernel replaced (row blocks, median colour)."""
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


@pytest.mark.parametrize("seed", range(6))
def test_border_depth_is_the_numpy_definition(seed: int) -> None:
    """Every edge of padded, noisy and odd- or even-sized pictures gets the depth the NumPy
    definition gives (per-channel median of the outer line, share of close pixels per line)."""
    rng = np.random.default_rng(seed)
    picture = np.asarray(generate_image(seed, int(rng.integers(60, 200)), int(rng.integers(60, 200))))
    for colour in ((0, 0, 0), (255, 255, 255), (40, 200, 90)):
        dy, dx = (int(v) for v in rng.integers(0, 40, 2))
        h, w = picture.shape[:2]
        canvas = np.empty((h + 2 * dy + 1, w + 2 * dx, 3), dtype=np.uint8)
        canvas[:] = colour
        canvas[dy : dy + h, dx : dx + w] = picture[:, :, :3]
        noisy = np.clip(canvas.astype(int) + rng.integers(-30, 31, canvas.shape), 0, 255).astype(np.uint8)
        cols = noisy.transpose(1, 0, 2)
        for edge in (noisy, noisy[::-1], cols, cols[::-1]):
            for tolerance, share in ((BORDER_TOLERANCE, BORDER_SHARE), (10, 0.5)):
                assert _border_depth(edge, tolerance, share) == _border_depth_numpy(edge, tolerance, share)
