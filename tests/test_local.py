"""Local features (signals.local): ORB matched through an LSH index and checked by RANSAC."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from opspoor.demo.images import generate_image
from opspoor.signals.local import MIN_INLIERS, LocalFeatures, LocalIndex, local_features
from pictures import busy_picture


def _rgb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"))


@pytest.fixture(scope="module")
def originals() -> list[Image.Image]:
    return [busy_picture(seed) for seed in range(12)]


@pytest.fixture(scope="module")
def index(originals: list[Image.Image]) -> LocalIndex:
    return LocalIndex([local_features(_rgb(o)) for o in originals], range(len(originals)))


def _off_centre_crop(img: Image.Image, share: float) -> Image.Image:
    """Cut ``share`` of each side away from the right and the bottom only, then halve the size."""
    w, h = img.size
    cut = img.crop((0, 0, round(w * (1 - share)), round(h * (1 - share))))
    return cut.resize((cut.width // 2, cut.height // 2), Image.Resampling.LANCZOS)


def test_features_are_256_bit_descriptors_at_their_points() -> None:
    f = local_features(_rgb(generate_image(1, 1600, 1200, "text")))
    assert f.descriptors.dtype == np.uint8 and f.descriptors.shape[1] == 32
    assert f.points.shape == (len(f), 2) and 100 <= len(f) <= 500
    # found at LOCAL_SIZE: a 1600 px picture is brought to 512 first
    assert f.points.max() < 512


def test_a_flat_picture_has_no_features_and_matches_nothing(index: LocalIndex) -> None:
    flat = local_features(np.full((300, 400, 3), 128, dtype=np.uint8))
    assert len(flat) == 0
    assert index.match(flat) == []
    empty = LocalIndex([], [])
    empty.warm_up()
    assert empty.match(flat) == [] and empty.match(local_features(_rgb(busy_picture(1)))) == []


@pytest.mark.parametrize("share", [0.05, 0.1, 0.2])
def test_off_centre_crops_match_their_own_original(
    originals: list[Image.Image], index: LocalIndex, share: float
) -> None:
    for i, img in enumerate(originals):
        found = index.match(local_features(_rgb(_off_centre_crop(img, share))))
        assert found, f"original {i} not found at crop {share}"
        assert found[0].owner == i and found[0].inliers >= MIN_INLIERS
        # the crop was halved (and is under LOCAL_SIZE, the original was brought from 800 to 512)
        assert found[0].scale == pytest.approx(0.5 * 800 / 512, rel=0.03)
        assert all(m.owner == i for m in found)


def test_a_flipped_copy_is_found_by_the_querys_mirror(
    originals: list[Image.Image], index: LocalIndex
) -> None:
    for i, img in enumerate(originals[:6]):
        crop = _off_centre_crop(img, 0.1)
        for turn in (
            Image.Transpose.FLIP_LEFT_RIGHT,
            Image.Transpose.FLIP_TOP_BOTTOM,
            Image.Transpose.TRANSPOSE,
        ):
            flipped = _rgb(crop.transpose(turn))
            # ORB is not mirror-invariant: the upright features alone find nothing
            assert all(m.owner != i for m in index.match(local_features(flipped))), (i, turn)
            found = index.match(local_features(flipped, mirror=True))
            assert [(m.owner, m.mirrored) for m in found] == [(i, True)], (i, turn)
            assert found[0].inliers >= MIN_INLIERS
            # a weak chance agreement of the upright view (as the evaluation asks for, with
            # min_inliers=1) must not keep the mirror from being looked up
            weak = index.match(local_features(flipped, mirror=True), min_inliers=1)
            assert any(m.owner == i and m.mirrored and m.inliers >= MIN_INLIERS for m in weak), (i, turn)
        # an upright copy is still found by its upright features
        found = index.match(local_features(_rgb(crop), mirror=True))
        assert [(m.owner, m.mirrored) for m in found] == [(i, False)]


def test_a_lookup_does_not_depend_on_the_lookups_before_it_nor_on_its_thread(
    originals: list[Image.Image], index: LocalIndex
) -> None:
    """A scan looks images up on several threads sharing one LSH index, in any order; RANSAC draws
    random samples. An image must get the same answer whatever was looked up before it."""
    crops = [_off_centre_crop(img, share) for img in originals for share in (0.1, 0.2)]
    # weak chance agreements of unrelated pictures are where random samples differ most
    unrelated = [generate_image(seed, 800, 600, "mixed") for seed in range(200, 212)]
    queries = [local_features(_rgb(img), mirror=True) for img in crops + unrelated]

    def answer(q: LocalFeatures) -> list[tuple[int, int, bool]]:
        return [(m.owner, m.inliers, m.mirrored) for m in index.match(q, min_inliers=1, min_spread=0)]

    first = [answer(q) for q in queries]
    backwards = [answer(q) for q in reversed(queries)][::-1]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(answer, queries))
    assert first == backwards == threaded
    assert all(a and a[0][0] == i // 2 for i, a in enumerate(first[: len(crops)]))
    assert any(first[len(crops) :])  # some weak agreements were found and compared


def test_unrelated_pictures_match_no_original(index: LocalIndex) -> None:
    # "text" pictures share words in one font: a word alone must not make a match
    for seed in range(100, 110):
        for style in ("mixed", "text", "shapes"):
            other = local_features(_rgb(generate_image(seed, 800, 600, style)), mirror=True)
            assert index.match(other) == [], (seed, style)
        assert index.match(local_features(_rgb(busy_picture(seed)), mirror=True)) == [], seed


def test_lsh_finds_the_originals_the_exact_search_finds(
    originals: list[Image.Image], index: LocalIndex
) -> None:
    for i, img in enumerate(originals):
        q = local_features(_rgb(_off_centre_crop(img, 0.1).rotate(4, resample=Image.Resampling.BICUBIC)))
        fast, exact = index.match(q), index.brute_force_match(q)
        assert [m.owner for m in exact][:1] == [i]
        assert [m.owner for m in fast] == [m.owner for m in exact]
        # the LSH misses a few neighbours at most
        assert fast[0].inliers >= 0.7 * exact[0].inliers


def test_an_index_built_twice_answers_alike(originals: list[Image.Image]) -> None:
    feats = [local_features(_rgb(o)) for o in originals[:4]]
    queries = [local_features(_rgb(_off_centre_crop(o, 0.2))) for o in originals[:4]]
    answers = []
    for _ in range(2):
        idx = LocalIndex(feats, [10, 11, 12, 13])
        answers.append([[(m.owner, m.inliers) for m in idx.match(q)] for q in queries])
    assert answers[0] == answers[1]
    assert [a[0][0] for a in answers[0]] == [10, 11, 12, 13]


def test_owners_and_features_must_pair_up() -> None:
    with pytest.raises(ValueError):
        LocalIndex([LocalFeatures.empty()], [1, 2])


def test_a_shared_word_in_the_same_font_is_no_match() -> None:
    # generated "text" pictures draw words of one small vocabulary in one font: pictures share
    # whole words (seed 1 and 102 both show "orbit", at other sizes and places)
    texts = [local_features(_rgb(generate_image(seed, 800, 600, "text"))) for seed in range(10)]
    idx = LocalIndex(texts, range(10))
    for seed in range(100, 130):
        assert idx.match(local_features(_rgb(generate_image(seed, 800, 600, "text")))) == [], seed
    # the spread of the agreeing patches is what tells them apart: one word alone agrees
    word = idx.match(local_features(_rgb(generate_image(102, 800, 600, "text"))), min_spread=0.0)
    assert [m.owner for m in word] == [1] and word[0].inliers >= MIN_INLIERS


def test_a_set_holding_one_picture_twice_still_finds_its_crops(originals: list[Image.Image]) -> None:
    # one photo at two sizes: every corner's two nearest neighbours are the two copies, so a
    # ratio test across the whole set would reject them all; it is made per original instead
    twice = [originals[0], originals[0].resize((400, 300), Image.Resampling.LANCZOS), *originals[1:4]]
    idx = LocalIndex([local_features(_rgb(o)) for o in twice], range(len(twice)))
    for share in (0.05, 0.2):
        found = idx.match(local_features(_rgb(_off_centre_crop(originals[0], share))))
        assert {m.owner for m in found} == {0, 1}, share
        assert idx.brute_force_match(local_features(_rgb(_off_centre_crop(originals[0], share))))


def test_the_exact_search_works_past_one_brute_force_pass(monkeypatch: pytest.MonkeyPatch, originals) -> None:
    import opspoor.signals.local as local

    idx = LocalIndex([local_features(_rgb(o)) for o in originals], range(len(originals)))
    q = local_features(_rgb(_off_centre_crop(originals[3], 0.1)))
    whole = [(m.owner, m.inliers) for m in idx.brute_force_match(q)]
    monkeypatch.setattr(local, "BRUTE_FORCE_CHUNK", 97)  # many passes, none aligned with a picture
    assert [(m.owner, m.inliers) for m in idx.brute_force_match(q)] == whole
    assert whole[0][0] == 3


def test_an_index_without_some_owners_finds_only_the_others(
    index: LocalIndex, originals: list[Image.Image]
) -> None:
    """The service leaves removed entries' features out of its next local index (``without``)."""
    query = local_features(_rgb(_off_centre_crop(originals[1], 0.1)), mirror=True)
    assert [m.owner for m in index.match(query)][:1] == [1]
    smaller = index.without([1])
    assert 1 not in smaller.owner and len(smaller) == len(index) - int((index.owner == 1).sum())
    assert all(m.owner != 1 for m in smaller.match(query))
    other = local_features(_rgb(_off_centre_crop(originals[2], 0.1)), mirror=True)
    assert [m.owner for m in smaller.match(other)][:1] == [2]
    assert 1 in index.owner  # the index it was made from is left as it was
