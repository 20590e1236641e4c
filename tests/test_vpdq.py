"""vPDQ: line format, the two-way video comparison, and conformance with Meta's sample hashes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from opspoor.demo.videos import generate_video
from opspoor.errors import SignalError
from opspoor.media.video import iter_video_frames, probe_video
from opspoor.signals import get_signal
from opspoor.signals import vpdq as vpdq_mod
from opspoor.signals.pdq import PDQ, pdq_from_rgb
from opspoor.signals.vpdq import (
    VPDQ,
    VpdqFrame,
    format_vpdq,
    parse_vpdq,
    vpdq_hash_video,
    vpdq_match,
)

# --- helpers ----------------------------------------------------------------------------------


def random_hashes(rng: np.random.Generator, n: int) -> list[str]:
    return [rng.bytes(32).hex() for _ in range(n)]


def flip_bits(h: str, bits: list[int]) -> str:
    v = int(h, 16)
    for b in bits:
        v ^= 1 << int(b)
    return f"{v:064x}"


def frames_of(hashes: list[str], quality: int | list[int] = 100) -> list[VpdqFrame]:
    qs = quality if isinstance(quality, list) else [quality] * len(hashes)
    return [VpdqFrame(i, q, h, i / 30) for i, (h, q) in enumerate(zip(hashes, qs, strict=True))]


def brute_share(a: list[VpdqFrame], b: list[VpdqFrame], distance: int = 31, quality: int = 50) -> float:
    """python-threatexchange's brute-force matcher, pair by pair: the reference for vpdq_match."""
    qa = list(dict.fromkeys(f.hash for f in a if f.quality >= quality))
    qb = list(dict.fromkeys(f.hash for f in b if f.quality >= quality))
    if not qa or not qb:
        return 0.0
    return sum(any(PDQ.distance(x, y) <= distance for y in qb) for x in qa) / len(qa)


# --- format -----------------------------------------------------------------------------------


def test_format_and_parse_round_trip() -> None:
    frames = [VpdqFrame(0, 100, "ab" * 32, 0.0), VpdqFrame(30, 42, "0f" * 32, 1.0000001)]
    text = format_vpdq(frames)
    assert text.splitlines() == [f"0,100,{'ab' * 32},0.000", f"30,42,{'0f' * 32},1.000"]
    back = parse_vpdq(text + "\n\n")
    assert [(f.frame_number, f.quality, f.hash) for f in back] == [(0, 100, "ab" * 32), (30, 42, "0f" * 32)]
    assert format_vpdq(back) == text


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("0,100," + "a" * 64, 1),  # missing timestamp
        ("0,100," + "a" * 64 + ",0.000\n1,100," + "a" * 63 + ",0.033", 2),
        ("0,100," + "a" * 64 + ",0.000\n\n1,100," + "g" * 64 + ",0.033", 3),
        ("x,100," + "a" * 64 + ",0.000", 1),
        ("0,101," + "a" * 64 + ",0.000", 1),
        ("0,100," + "a" * 64 + ",-1", 1),
    ],
)
def test_parse_names_the_bad_line(text: str, line: int) -> None:
    with pytest.raises(SignalError, match=rf"line {line}\b"):
        parse_vpdq(text)


def test_signal_validate_is_canonical() -> None:
    assert get_signal("vpdq") is VPDQ
    messy = f" 0, 100 ,{'AB' * 32},0\n\n30,99,{'cd' * 32},1.5\n"
    assert VPDQ.validate(messy) == f"0,100,{'ab' * 32},0.000\n30,99,{'cd' * 32},1.500"
    with pytest.raises(SignalError):
        VPDQ.validate("\n \n")


# --- matching ---------------------------------------------------------------------------------


def test_match_against_pairwise_reference() -> None:
    rng = np.random.default_rng(3)
    base = random_hashes(rng, 40)
    # target: 25 near copies (<= 31 bits off), 5 copies 32+ bits off, 20 unrelated
    near = [flip_bits(h, list(rng.choice(256, int(rng.integers(0, 32)), replace=False))) for h in base[:25]]
    far = [flip_bits(h, list(rng.choice(256, 32, replace=False))) for h in base[25:30]]
    target = frames_of(near + far + random_hashes(rng, 20))
    query = frames_of(base + base[:10], quality=[100] * 35 + [10] * 5 + [100] * 10)  # dupes, low quality
    q, t = vpdq_match(query, target)
    assert q == pytest.approx(brute_share(query, target)) == pytest.approx(25 / 35)
    assert t == pytest.approx(brute_share(target, query)) == pytest.approx(25 / 50)


def test_distance_threshold_is_inclusive() -> None:
    h = "00" * 32
    at31 = flip_bits(h, list(range(31)))
    at32 = flip_bits(h, list(range(32)))
    assert vpdq_match(frames_of([h]), frames_of([at31])) == (1.0, 1.0)
    assert vpdq_match(frames_of([h]), frames_of([at32])) == (0.0, 0.0)
    assert vpdq_match(frames_of([h]), frames_of([at32]), distance=32) == (1.0, 1.0)


def test_low_quality_or_empty_sides_do_not_match() -> None:
    h = "5a" * 32
    assert vpdq_match(frames_of([h], 49), frames_of([h])) == (0.0, 0.0)
    assert vpdq_match(frames_of([h], 49), frames_of([h]), quality=40) == (1.0, 1.0)
    assert vpdq_match([], frames_of([h])) == (0.0, 0.0)


def test_blocked_comparison_equals_unblocked(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    a = frames_of(random_hashes(rng, 50))
    b = frames_of([flip_bits(f.hash, [1, 2, 3]) for f in a[:20]] + random_hashes(rng, 70))
    whole = vpdq_match(a, b)
    monkeypatch.setattr(vpdq_mod, "_BLOCK_ELEMENTS", 4 * 70 * 3)  # a few query rows per block
    assert vpdq_match(a, b) == whole == (pytest.approx(20 / 50), pytest.approx(20 / 90))


# --- hashing generated videos ------------------------------------------------------------------


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("vpdq")
    return {
        "a": generate_video(d / "a.mp4", seed=11, seconds=4),
        "a_small": generate_video(
            d / "a_small.mkv", seed=11, seconds=4, size=(240, 180), container="matroska"
        ),
        "b": generate_video(d / "b.mp4", seed=12, seconds=4),
    }


def test_hash_video_lines(videos: dict[str, Path]) -> None:
    frames = vpdq_hash_video(videos["a"])
    assert [f.frame_number for f in frames] == [0, 10, 20, 30]
    assert [f.timestamp for f in frames] == [0.0, 1.0, 2.0, 3.0]
    first = next(iter(iter_video_frames(videos["a"])))
    assert frames[0].hash == pdq_from_rgb(first.rgb).hash  # PDQ of the full-size frame
    assert all(f.quality >= 50 for f in frames)
    assert vpdq_hash_video(io.BytesIO(videos["a"].read_bytes())) == frames
    assert parse_vpdq(format_vpdq(frames)) == frames


def test_resized_copy_matches_and_other_video_does_not(videos: dict[str, Path]) -> None:
    a, small, b = (vpdq_hash_video(videos[k], every_seconds=0.5) for k in ("a", "a_small", "b"))
    q, t = vpdq_match(a, small)
    assert q >= 0.8 and t >= 0.8
    assert max(vpdq_match(a, b)) < 0.2
    values = [format_vpdq(v) for v in (b, small, a)]
    assert [i for i, _ in VPDQ.brute_force_match(format_vpdq(a), values)] == [1, 2]
    assert VPDQ.distance(values[2], values[2]) == 0
    assert VPDQ.distance(values[2], values[0]) > 80


# --- conformance with Meta's vPDQ sample hashes --------------------------------------------------

#: decoding every frame of all 14 samples takes too long for the suite; the first FRAMES frames of
#: every video are decoded (so frame numbering is exercised) and every STEP-th of them is hashed
FRAMES = 150
STEP = 5


def _sample_pairs(reference: Path) -> list[tuple[Path, Path]]:
    videos = sorted((reference / "tmk" / "sample-videos").glob("*.mp4"))
    pairs = [(v, reference / "vpdq" / "sample-hashes" / f"{v.stem}.txt") for v in videos]
    return [(v, h) for v, h in pairs if h.exists()]


def test_conformance_with_sample_hashes(reference: Path) -> None:
    pairs = _sample_pairs(reference)
    assert len(pairs) >= 10, "expected Meta's vPDQ sample videos with reference hashes"
    for video, hashes in pairs:
        expected = {f.frame_number: f for f in parse_vpdq(hashes.read_text())}
        ref_lines = {int(line.split(",")[0]): line for line in hashes.read_text().splitlines()}
        ours = []
        # every (STEP + 0.5) / fps seconds keeps frames 0, STEP, 2 STEP, ... (vPDQ's frame_mod)
        every = (STEP + 0.5) / probe_video(video).fps
        for frame in iter_video_frames(video, every_seconds=every, time_limit=60):
            if frame.frame_number >= FRAMES:
                break
            h = pdq_from_rgb(frame.rgb)
            ours.append(VpdqFrame(frame.frame_number, h.quality, h.hash, frame.timestamp))
        assert len(ours) >= 20 and [f.frame_number for f in ours] == list(range(0, STEP * len(ours), STEP))
        theirs = [expected[f.frame_number] for f in ours]
        distances = [PDQ.distance(a.hash, b.hash) for a, b in zip(ours, theirs, strict=True)]
        assert np.median(distances) <= 4, f"{video.name}: median distance {np.median(distances)}"
        q, t = vpdq_match(ours, theirs)
        assert q >= 0.8 and t >= 0.8, f"{video.name}: matches its reference only {q:.2f} / {t:.2f}"
        # frame numbers and timestamps print exactly as Meta's files
        for f in ours:
            assert ref_lines[f.frame_number].endswith(f",{f.timestamp:.3f}"), video.name


def test_whole_video_matches_its_reference_file(reference: Path) -> None:
    video = reference / "tmk" / "sample-videos" / "doorknob-hd-no-bar.mp4"
    expected = parse_vpdq((reference / "vpdq" / "sample-hashes" / "doorknob-hd-no-bar.txt").read_text())
    every = vpdq_hash_video(video, every_seconds=0)
    assert [f.frame_number for f in every] == [f.frame_number for f in expected]
    q, t = vpdq_match(every, expected)
    assert q >= 0.8 and t >= 0.8
    # one per second (vPDQ's default) keeps the frames numbered 0, 30, 60, ... at 30 fps
    per_second = vpdq_hash_video(video)
    assert [f.frame_number for f in per_second] == [
        f.frame_number for f in expected if f.frame_number % 30 == 0
    ]
