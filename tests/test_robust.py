"""Robust matching methods (opspoor.signals.robust) on benign generated images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from opspoor.demo.images import generate_image
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
from opspoor.media.image import decode_image
from opspoor.signals.pdq import PDQ, hex_to_words, pdq_from_rgb
from opspoor.signals.robust import (
    DIHEDRAL,
    AugmentPlan,
    augment_hashes,
    augment_variants,
    find_embedded,
    pdq_luma,
    query_hashes,
    trim_borders,
)

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
    rng = np.random.default_rng(0)
    for shape in ((37, 53, 3), (512, 384, 3)):
        rgb = rng.integers(0, 256, size=shape, dtype=np.uint8)
        from opspoor.signals.pdq import pdq_from_luma

        assert pdq_from_luma(pdq_luma(rgb)) == pdq_from_rgb(rgb)


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
        assert only_border[0].method == "pdq" and {h.method for h in only_border[1:]} == {"border"}
        assert PDQ.distance(only_border[0].hash, original) > THRESHOLD  # plain PDQ misses it
        assert _best([h.hash for h in only_border[1:]], original) <= THRESHOLD


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


def test_nothing_embedded_in_plain_pictures(pictures: list[Image.Image]) -> None:
    assert sum(bool(find_embedded(_canonical(img))) for img in pictures) <= 1


def test_augmentation_recovers_crops_and_small_rotations(pictures: list[Image.Image]) -> None:
    # the default plan stores centre crops every 3 % and rotations every 2 degrees; 11.5 % and 5
    # degrees lie between two of them
    edits = [(crop(0.1, False),), (crop(0.115, False),), (rotate(8),), (rotate(-8),), (rotate(5),)]
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
