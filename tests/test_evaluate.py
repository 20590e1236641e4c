"""The robustness harness (opspoor.evaluate) and the ``eval`` / ``hashset build`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from opspoor.cli import app
from opspoor.cli.build_cmd import store_takes_derived
from opspoor.demo.images import generate_image
from opspoor.evaluate.harness import (
    EvalConfig,
    Hashed,
    method_distances,
    run_evaluation,
    tag_distances,
)
from opspoor.evaluate.methods import KNOWN_TAGS, METHODS, QUERY_TAGS, method_by_name
from opspoor.evaluate.report import goals, markdown, write_report
from opspoor.evaluate.scoring import FAR, _choose_threshold
from opspoor.evaluate.transforms import apply_transform, default_suite
from opspoor.media.image import decode_image
from opspoor.signals.pdq import words_to_hex
from pictures import soft_picture

runner = CliRunner()


def _random_hex(rng: np.random.Generator, n: int) -> list[str]:
    return words_to_hex(rng.integers(0, 2**63, size=(n, 4), dtype=np.uint64) * np.uint64(2))


def test_tag_distances_equal_brute_force() -> None:
    rng = np.random.default_rng(5)
    originals = []
    for _ in range(7):
        known = [(h, int(rng.integers(len(KNOWN_TAGS)))) for h in _random_hex(rng, int(rng.integers(1, 6)))]
        originals.append(Hashed(known, [], [], 100))
    queries = [
        [(h, int(rng.integers(len(QUERY_TAGS)))) for h in _random_hex(rng, int(rng.integers(1, 9)))]
        for _ in range(11)
    ]
    # make some pairs close: query 0 carries a copy of original 3's first hash
    queries[0].append((originals[3].known[0][0], 2))
    got = tag_distances(originals, queries)
    want = np.full(got.shape, FAR)
    for qi, q in enumerate(queries):
        for qh, qt in q:
            for oi, o in enumerate(originals):
                for kh, kt in o.known:
                    d = (int(qh, 16) ^ int(kh, 16)).bit_count()
                    want[qi, qt, kt, oi] = min(want[qi, qt, kt, oi], d)
    assert np.array_equal(got, want)
    assert got[0, 2, originals[3].known[0][1], 3] == 0
    m = method_by_name("pdq")
    assert np.array_equal(method_distances(got, m), got[:, 0, 0, :])


def test_low_quality_pairs_count_only_within_their_tighter_distance() -> None:
    from opspoor.evaluate.methods import LOW_K, LOW_Q

    tags = np.full((3, len(QUERY_TAGS), len(KNOWN_TAGS), 2), FAR, dtype=np.uint8)
    tags[0, LOW_Q, 0, 0] = 10  # a low-quality query hash 10 bits from original 0's plain hash
    tags[1, 0, LOW_K, 1] = 20  # the plain query hash 20 bits from a low-quality augmented hash
    tags[2, 2, 0, 0] = 25  # an ordinary border hash
    penalty = 31 - 12
    plain, plain_lq = method_by_name("query-side"), method_by_name("query-side +lq")
    both, both_lq = method_by_name("both"), method_by_name("both +lq")
    assert method_distances(tags, plain_lq, penalty)[0, 0] == 10 + penalty  # within 12: matches at 31
    assert method_distances(tags, plain, penalty)[0, 0] == FAR  # not made without +lq
    assert method_distances(tags, plain_lq, penalty)[1, 1] == FAR  # plain lists hold no augmented hash
    assert method_distances(tags, both_lq, penalty)[1, 1] == 20 + penalty > 31  # beyond 12: no match
    assert method_distances(tags, both, penalty)[1, 1] == FAR
    assert method_distances(tags, both_lq, penalty)[2, 0] == method_distances(tags, both)[2, 0] == 25


def test_random_rotation_draws_an_angle_per_seed() -> None:
    from opspoor.evaluate.transforms import rotate_random

    img = generate_image(11, 200, 150)
    step = rotate_random(1, 8)
    a, b = step(img, np.random.default_rng(1)), step(img, np.random.default_rng(2))
    assert np.array_equal(np.asarray(a), np.asarray(step(img, np.random.default_rng(1))))
    assert not np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(img))


def test_deduplication_counts_low_quality_pairs_only_within_their_distance() -> None:
    from opspoor.evaluate.harness import Fingerprint, Picture, deduplicate

    rng = np.random.default_rng(3)
    a, b, c = _random_hex(rng, 3)
    near = f"{int(a, 16) ^ ((1 << 24) - 1):064x}"  # 24 bits from a
    pics = [Picture(f"p{i}") for i in range(3)]
    fps = [
        Fingerprint("s0", [a], [a], [False], [False]),
        Fingerprint("s1", [b, near], [b], [False, True], [False]),  # a low-quality hash 24 bits from p0
        Fingerprint("s2", [c, near], [c], [False, False], [False]),  # the same hash, of good quality
    ]
    kept, dropped, pairs = deduplicate(pics, fps, 41, low_penalty=31 - 12)
    assert kept == [0, 1] and dropped["near duplicate"] == 1 and pairs[0]["dropped"] == "p2"
    kept, _, _ = deduplicate(pics, fps, 41)
    assert kept == [0]  # without the penalty the low-quality pair counts at 41 too


def test_threshold_choice_stops_before_the_first_false_match() -> None:
    same = np.array([3, 10, 20, 29, 40])
    wrong = np.zeros(FAR + 1, dtype=np.int64)
    wrong[33] = 1  # one false pair at 33: precision drops below 99.99 % there
    assert _choose_threshold(same, wrong, 0.9999) == 32
    assert _choose_threshold(same, np.zeros(FAR + 1, dtype=np.int64), 0.9999) == 128


def test_threshold_choice_keeps_to_the_range_asked() -> None:
    same = np.array([3, 10, 20, 29, 40])
    wrong = np.zeros(FAR + 1, dtype=np.int64)
    wrong[33] = 1
    assert _choose_threshold(same, wrong, 0.9999, max_threshold=31) == 31
    wrong[20] = 1  # a false pair within the range: the choice stops before it as before
    assert _choose_threshold(same, wrong, 0.9999, max_threshold=31) == 19


def _two_halves_scores(flat: np.ndarray | None = None):
    """Four originals, two per half, one copy each; the closest different pair is 34 bits in half A
    and 32 in half B: a threshold swept past 31 on A (33) admits B's pair, one within 31 does not."""
    from opspoor.evaluate.scoring import score_method
    from opspoor.evaluate.transforms import default_suite

    suite = default_suite()[:1]
    dist = np.full((4, 4), 90, dtype=np.uint8)
    dist[np.arange(4), np.arange(4)] = [5, 20, 30, 40]  # copy i to its own original i
    dist[0, 1] = 34  # half A: copy of 0 near original 1
    dist[2, 3] = 32  # half B: copy of 2 near original 3
    truth = np.arange(4)
    half_b = np.array([False, False, True, True])
    return score_method(
        method_by_name("pdq"),
        dist,
        truth,
        np.zeros(4, dtype=np.int64),
        half_b,
        suite,
        EvalConfig(),
        (1.0, 1.0),
        flat=flat,
    )


def test_held_out_threshold_is_chosen_within_the_operating_range_and_any_is_kept_beside() -> None:
    s = _two_halves_scores()
    assert s.thresholds == (31, 31) and s.heldout_precision == 1.0 and s.heldout_recall == 0.75
    assert s.thresholds_any == (33, 31)  # A stops below its own 34, B below its own 32
    assert s.heldout_precision_any < 0.9999  # A's 33 lets B's 32-bit pair in
    assert s.heldout_recall_any == 0.75


def test_recall_without_flat_originals_leaves_only_their_copies_out() -> None:
    s = _two_halves_scores(flat=np.array([False, False, False, True]))
    row = next(iter(s.per_transform.values()))
    assert row["recall"] == 0.75 and row["recall_not_flat"] == 1.0  # original 3's copy (40) is the miss


def test_every_transform_is_seeded_and_decodable() -> None:
    img = generate_image(7, 240, 180)
    for t in default_suite():
        a = apply_transform(t, img, np.random.default_rng(1))
        b = apply_transform(t, img, np.random.default_rng(1))
        assert a == b, t.name
        assert decode_image(a, where=t.name).rgb.shape[2] == 3


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory):
    cfg = EvalConfig(
        generated=True,
        n=6,
        distractors=4,
        distractor_transforms=1,
        transforms=("jpeg q50", "flip h", "pad 20% black", "crop 10% centre", "caption"),
        workers=1,
    )
    result = run_evaluation(cfg)
    out = tmp_path_factory.mktemp("eval")
    return result, write_report(result, out)


def test_harness_runs_end_to_end_on_generated_pictures(tiny_run) -> None:
    result, paths = tiny_run
    assert "generated" in result.corpus["source"]
    assert result.corpus["originals"] == 6 and result.corpus["distractors"] == 4
    assert result.corpus["edited_queries"] == 6 * 5 and result.corpus["distractor_queries"] == 4 * 2
    assert [s.method for s in result.methods] == [m.name for m in METHODS]
    base, qside, both = result.method("pdq"), result.method("query-side"), result.method("both")
    assert base.hashes_per_query == 1.0 and base.hashes_per_original == 1.0
    assert base.per_transform["jpeg q50"]["recall"] == 1.0
    assert base.per_transform["flip h"]["recall"] < qside.per_transform["flip h"]["recall"]
    assert base.per_transform["pad 20% black"]["recall"] < qside.per_transform["pad 20% black"]["recall"]
    assert both.recall > base.recall
    # no false match with every method on
    assert all(s.false_wrong_original + s.false_distractor == 0 for s in result.methods)
    assert sum(both.same_histogram) == 30
    assert sum(both.different_histogram) == 30 * 5 + 8 * 6
    # the closest different pairs are listed whatever their distance, nearest first
    closest = both.closest_different
    assert 1 <= len(closest) <= 10
    assert [c["distance"] for c in closest] == sorted(c["distance"] for c in closest)
    nearest = next(d for d, n in enumerate(both.different_histogram) if n)
    assert closest[0]["distance"] == nearest and " [" in str(closest[0]["query"])


def test_report_files(tiny_run) -> None:
    result, paths = tiny_run
    text = paths["markdown"].read_text()
    assert "| pdq |" in text and "| both |" in text and "histograms.png" in text
    assert "| flip h |" in text and "**pooled**" in text
    data = json.loads(paths["json"].read_text())
    assert {m["method"] for m in data["methods"]} == {m.name for m in METHODS}
    assert any(g["text"].startswith("single-hash lists: flip h") for g in data["goals"])
    # which pictures were originals and which distractors, so a miss can be traced to its picture
    corpus = data["corpus"]
    assert len(corpus["original_names"]) == corpus["originals"] == 6
    assert len(corpus["distractor_names"]) == corpus["distractors"] == 4
    assert not set(corpus["original_names"]) & set(corpus["distractor_names"])
    # no different pair within 31 in this run: each half's threshold is the top of the range, 31,
    # while the sweep to 128 stops just below each half's closest different pair
    for m in data["methods"]:
        assert m["thresholds"] == [31, 31], m["method"]
        nearest = next(d for d, n in enumerate(m["different_histogram"]) if n)
        assert min(m["thresholds_any"]) == min(nearest - 1, 128), m["method"]
    with Image.open(paths["png"]) as png:
        assert png.size[0] >= 800 and png.size[1] >= 3 * 200
        px = np.asarray(png.convert("RGB"))
    green = ((px[:, :, 1] > 120) & (px[:, :, 0] < 60)).sum()
    red = ((px[:, :, 0] > 180) & (px[:, :, 1] < 60)).sum()
    assert green > 0 and red > 0
    assert markdown(result, None).count("## ") == 5
    assert "## Closest different pairs (both +lq +local)" in markdown(result, None)
    assert all(g.measured >= 0 for g in goals(result))


def test_eval_command(tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        ["eval", "robustness", "--generated", "--n", "3", "--distractors", "2", "--transform", "flip v",
         "--workers", "1", "--out", str(tmp_path)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "generated images" in res.output and "query-side" in res.output
    assert "both +lq +local" in res.output
    assert (tmp_path / "report.md").is_file() and (tmp_path / "histograms.png").is_file()
    res = runner.invoke(
        app,
        ["eval", "robustness", "--generated", "--n", "3", "--distractors", "2", "--transform", "flip v",
         "--workers", "1", "--no-local", "--out", str(tmp_path / "plain")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "both +lq" in res.output and "+local" not in res.output


def test_eval_command_measures_off_centre_crops_on_request(tmp_path: Path) -> None:
    """``--offset-crops small`` adds known-side off-centre crops to the run (none by default)."""
    per_original = {}
    for plan in ("none", "small"):
        out = tmp_path / plan
        res = runner.invoke(
            app,
            ["eval", "robustness", "--generated", "--n", "3", "--distractors", "2", "--transform",
             "crop 10% off-centre", "--workers", "1", "--offset-crops", plan, "--out", str(out)],
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        result = json.loads((out / "results.json").read_text())
        assert bool(result["config"]["augment"]["offset_crops"]) == (plan == "small")
        crops = next(m for m in result["methods"] if m["method"] == "augment crops")
        per_original[plan] = crops["hashes_per_original"]
    assert per_original["small"] > per_original["none"] + 50


# --- opspoor hashset build ---------------------------------------------------------------------


def _media_folder(root: Path) -> tuple[Path, list[str]]:
    folder = root / "originals"
    (folder / "sub").mkdir(parents=True)
    names = []
    for i in range(3):
        rel = f"{'sub/' if i == 2 else ''}pic{i}.{'png' if i % 2 else 'jpg'}"
        generate_image(300 + i, 320, 240).save(folder / rel)
        names.append(rel)
    (folder / "notes.txt").write_text("not media")
    return folder, sorted(names)


def test_hashset_build(tmp_path: Path, sqlite_url: str) -> None:
    from opspoor.store import iter_entries, open_store

    folder, names = _media_folder(tmp_path)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    res = runner.invoke(
        app,
        ["hashset", "build", str(folder), "--name", "own", "--category", "us-cat:1", "--workers", "1",
         "--db", sqlite_url],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "3 entries added" in res.output and "1 files skipped" in res.output
    with open_store(sqlite_url) as store:
        entries = list(iter_entries(store, "own"))
    assert sorted(e.external_id for e in entries) == names
    for e in entries:
        assert set(e.signals) == {"md5", "sha1", "sha256", "pdq"}
        assert str(e.category) == "us-cat:1"
    assert before == {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}  # evidence untouched


def test_hashset_build_augment(tmp_path: Path, sqlite_url: str) -> None:
    folder, _ = _media_folder(tmp_path)
    args = [
        "hashset",
        "build",
        str(folder),
        "--name",
        "aug",
        "--augment",
        "--workers",
        "1",
        "--db",
        sqlite_url,
    ]
    res = runner.invoke(app, args)
    assert store_takes_derived()
    assert res.exit_code == 0, res.output
    assert "augmentation hashes stored" in res.output
    from opspoor.store import hashset_counts, iter_entries, load_signal_arrays, open_store

    with open_store(sqlite_url) as store:
        ids, _ = load_signal_arrays(store, ["aug"], "pdq")
        entries = list(iter_entries(store, "aug"))
        counts = hashset_counts(store, "aug")
    # the extra hashes are indexed with their entry, but neither exported nor counted as entries' signals
    assert len(ids) > len(entries) and len(set(ids.tolist())) == len(entries)
    assert counts.signals["pdq"] == len(entries)
    assert all(not e.derived for e in entries)


@pytest.mark.parametrize("low_quality", [True, False])
def test_hashset_build_augment_stores_low_quality_hashes_apart(
    tmp_path: Path, sqlite_url: str, low_quality: bool
) -> None:
    """A flat wallpaper's augmentation hashes are low-quality: stored as ``pdq_lq`` (matched only
    within the low-quality distance), or not at all with ``--no-low-quality``."""
    from opspoor.signals.pdq import pdq_from_rgb
    from opspoor.store import load_signal_arrays, open_store

    folder = tmp_path / "originals"
    folder.mkdir()
    img = soft_picture(113)
    assert 10 <= pdq_from_rgb(np.asarray(img)).quality < 50
    img.save(folder / "wallpaper.png")
    flag = "--low-quality" if low_quality else "--no-low-quality"
    args = ["hashset", "build", str(folder), "--name", "aug", "--augment", flag, "--workers", "1"]
    res = runner.invoke(app, [*args, "--db", sqlite_url])
    assert res.exit_code == 0, res.output
    with open_store(sqlite_url) as store:
        lq, _ = load_signal_arrays(store, ["aug"], "pdq_lq")
        pdq, _ = load_signal_arrays(store, ["aug"], "pdq")
    assert (len(lq) > 0) == low_quality
    assert len(pdq) == 1  # its own PDQ; none of its variants reaches quality 50


def test_a_region_cut_out_of_a_photo_is_its_near_duplicate_by_local_features() -> None:
    """The benchmark corpus cuts regions out of its largest photographs; PDQ keeps such a region
    apart from its photograph, local features do not, and a match between them is no false match."""
    from opspoor.evaluate.harness import Fingerprint, Picture, deduplicate, local_near_pairs
    from opspoor.signals.local import local_features
    from pictures import busy_picture

    photo, other = busy_picture(21, (1200, 900)), busy_picture(22, (1200, 900))
    region = photo.crop((300, 225, 1200, 900))
    pics = [Picture(n) for n in ("photo", "other", "region")]
    rng = np.random.default_rng(4)
    fps = [
        Fingerprint(f"s{i}", [h], [h], [False], [False], local_features(np.asarray(img)))
        for i, (h, img) in enumerate(zip(_random_hex(rng, 3), (photo, other, region), strict=True))
    ]
    pairs = local_near_pairs(fps, 41)
    assert list(pairs) == [(0, 2)]
    kept, dropped, listed = deduplicate(pics, fps, 41, local_pairs=pairs)
    assert kept == [0, 1] and dropped["near duplicate"] == 1
    assert listed[0]["dropped"] == "region" and listed[0]["kept"] == "photo"
    assert deduplicate(pics, fps, 41)[0] == [0, 1, 2]  # the PDQs alone are far apart


def test_versions_of_one_picture_linked_through_others_are_one_picture() -> None:
    """A wallpaper at five sizes: each lookup finds only some of the others (its nearest
    descriptors are taken by the closest versions), so pairs are closed over chains."""
    from opspoor.evaluate.harness import close_chains

    closed = close_chains({(1, 5): 3, (5, 9): 7, (2, 4): 1, (9, 12): 2})
    assert closed[(1, 9)] == 7 and closed[(1, 12)] == 7 and closed[(5, 12)] == 7
    assert closed[(1, 5)] == 3 and closed[(2, 4)] == 1  # direct pairs keep their distance
    assert (1, 2) not in closed and (4, 9) not in closed
    assert len(closed) == 6 + 1
    assert close_chains({}) == {}


def test_local_distances_count_only_for_local_methods() -> None:
    tags = np.full((2, len(QUERY_TAGS), len(KNOWN_TAGS), 3), FAR, dtype=np.uint8)
    tags[0, 0, 0, 1] = 40
    local = np.full((2, 3), FAR, dtype=np.uint8)
    local[0, 1], local[1, 2] = 12, 30
    assert method_distances(tags, method_by_name("both +lq"), 19, local)[0, 1] == 40
    both = method_distances(tags, method_by_name("both +lq +local"), 19, local)
    assert both[0, 1] == 12 and both[1, 2] == 30 and both[1, 0] == FAR


def test_the_pooled_goal_needs_the_precision_on_the_other_half_too(tiny_run) -> None:
    from dataclasses import replace

    result, _ = tiny_run

    def pooled(recall: float, precision: float) -> bool:
        methods = [
            replace(s, heldout_recall=recall, heldout_precision=precision) if s.method == "both" else s
            for s in result.methods
        ]
        g = [g for g in goals(replace(result, methods=methods)) if g.method == "both" and "pooled" in g.text]
        return g[0].met

    assert pooled(0.99, 1.0)
    assert not pooled(0.99, 0.9995)  # the threshold chosen on one half let false matches in on the other
    assert not pooled(0.9, 1.0)


def test_a_region_and_its_photograph_are_one_picture_but_two_regions_are_two() -> None:
    from opspoor.evaluate.harness import Fingerprint, Picture, deduplicate, same_photograph

    whole = Picture("photo", source="pkg:a.jpg")
    left, right = (
        Picture("left", source="pkg:a.jpg", region=True),
        Picture("right", source="pkg:a.jpg", region=True),
    )
    other = Picture("other", source="pkg:b.jpg")
    assert same_photograph(left, whole) and same_photograph(whole, right)
    assert not same_photograph(left, right) and not same_photograph(other, whole)
    assert not same_photograph(Picture("x"), Picture("y"))  # generated pictures have no source
    rng = np.random.default_rng(8)
    fps = [Fingerprint(f"s{i}", [h], [h], [False], [False]) for i, h in enumerate(_random_hex(rng, 4))]
    kept, dropped, pairs = deduplicate([left, right, whole, other], fps, 41)
    assert kept == [0, 1, 3] and dropped["same photograph"] == 1
    assert pairs == [{"dropped": "photo", "kept": "left", "distance": -1}]


def _corpus_folder(folder: Path, root: str | None, names: list[str]) -> list[Path]:
    """A benchmark corpus folder as ``bench/corpus.py`` writes it (benign generated photos)."""
    folder.mkdir(parents=True)
    base = (folder / root).resolve() if root else folder
    photos = []
    for i, name in enumerate(names):
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        generate_image(7000 + i, 320, 240, "mixed").save(path, "JPEG", quality=90)
        photos.append({"path": name, "package": "pkg", "source": f"s{i}.png", "crop": [0, 0] if i else None})
    meta = {"min_count": len(names), "photos": photos, **({"root": root} if root else {})}
    (folder / "manifest.json").write_text(json.dumps(meta))
    return [base / n for n in names]


def test_the_benchmark_corpus_is_found_in_the_cache_folder_or_where_told_never_in_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opspoor.evaluate.harness import (
        benchmark_corpus_dir,
        benchmark_photos,
        corpus_pictures,
        photo_sources,
    )

    monkeypatch.delenv("OPSPOOR_CORPUS", raising=False)
    monkeypatch.setenv("OPSPOOR_CACHE", str(tmp_path / "cache"))
    assert benchmark_corpus_dir() == tmp_path / "cache" / "photos"
    assert benchmark_photos() is None  # not built: the checkout's .cache is not looked at
    cached = _corpus_folder(tmp_path / "cache" / "photos", None, ["a.jpg", "b.jpg"])
    assert benchmark_photos() == cached
    assert photo_sources() == {cached[0]: ("pkg:s0.png", False), cached[1]: ("pkg:s1.png", True)}

    # as bench/corpus.py builds it in a checkout: photo paths relative to the manifest's root
    checkout = tmp_path / "checkout"
    names = [".cache/photos/c.jpg", ".cache/pkgs/d.jpg"]
    told = _corpus_folder(checkout / ".cache" / "photos", "../..", names)
    monkeypatch.setenv("OPSPOOR_CORPUS", str(checkout / ".cache" / "photos"))
    assert benchmark_photos() == told
    pictures, source = corpus_pictures(EvalConfig())
    assert [p.name for p in pictures] == names and "benchmark" in source
    # the option wins over the environment
    pictures, _ = corpus_pictures(EvalConfig(benchmark=tmp_path / "cache" / "photos"))
    assert [p.path for p in pictures] == [str(p) for p in cached]
    pictures, source = corpus_pictures(EvalConfig(benchmark=tmp_path / "nowhere", n=2, distractors=1))
    assert "generated" in source and str(tmp_path / "nowhere") in source
