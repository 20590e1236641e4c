"""Video decoding: vPDQ's frame selection, sources, limits and clean errors (benign generated videos)."""

from __future__ import annotations

import hashlib
import io
import os
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from opspoor.demo.videos import generate_video, render_frame
from opspoor.errors import MediaTimeout, MediaTooLarge, UndecodableMedia, UnsupportedMedia
from opspoor.media.video import frame_mod, frame_timestamp, iter_video_frames, probe_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s at 10 fps, 320x240."""
    return generate_video(tmp_path_factory.mktemp("video") / "clip.mp4", seed=7)


def numbers(source: object, every: float) -> list[int]:
    return [f.frame_number for f in iter_video_frames(source, every_seconds=every)]  # type: ignore[arg-type]


def test_frame_selection_follows_vpdq(clip: Path) -> None:
    assert numbers(clip, 1.0) == [0, 10, 20]
    assert numbers(clip, 0) == list(range(30))
    assert numbers(clip, 0.5) == [0, 5, 10, 15, 20, 25]
    assert numbers(clip, 2.0) == [0, 20]
    assert numbers(clip, 100.0) == [0]


def test_frame_mod_and_timestamp_match_the_reference_arithmetic() -> None:
    assert frame_mod(1.0, 29.97) == 29  # int(secondsPerHash * frameRate), truncated
    assert frame_mod(1.0, 0.5) == 1  # never 0
    assert frame_mod(0, 30) == 1
    with pytest.raises(ValueError):
        frame_mod(-1, 30)
    # float32 division, as vPDQ's C++: these are lines of Meta's sample hash files
    assert f"{frame_timestamp(1, 30.0):.3f}" == "0.033"
    assert f"{frame_timestamp(563, 30.0):.3f}" == "18.767"
    assert frame_timestamp(20, 10.0) == 2.0


def test_frames_are_full_size_rgb_with_timestamps(clip: Path) -> None:
    frames = list(iter_video_frames(clip, every_seconds=1.0))
    assert [f.timestamp for f in frames] == [0.0, 1.0, 2.0]
    for f in frames:
        assert f.rgb.shape == (240, 320, 3) and f.rgb.dtype == np.uint8
    # the decoded frame is close to what was rendered (lossy codec, so not equal)
    rendered = render_frame(7, 10, 10, (320, 240)).astype(np.int16)
    assert np.abs(frames[1].rgb.astype(np.int16) - rendered).mean() < 12
    assert np.abs(frames[0].rgb.astype(np.int16) - rendered).mean() > 20


def test_stream_source_equals_path_source(clip: Path) -> None:
    from_path = list(iter_video_frames(clip, every_seconds=0.5))
    from_bytes = list(iter_video_frames(io.BytesIO(clip.read_bytes()), every_seconds=0.5))
    assert [f.frame_number for f in from_path] == [f.frame_number for f in from_bytes]
    for a, b in zip(from_path, from_bytes, strict=True):
        assert np.array_equal(a.rgb, b.rgb)


@pytest.mark.parametrize(("muxer", "suffix"), [("matroska", "mkv"), ("avi", "avi"), ("mov", "mov")])
def test_other_containers(tmp_path: Path, muxer: str, suffix: str) -> None:
    path = generate_video(tmp_path / f"c.{suffix}", seed=3, seconds=2, container=muxer)
    assert numbers(path, 1.0) == [0, 10]
    assert probe_video(path).container in {"mkv", "avi", "mov"}


def test_probe(clip: Path) -> None:
    info = probe_video(clip)
    assert (info.width, info.height, info.fps, info.container) == (320, 240, 10.0, "mp4")


def test_source_file_is_not_modified(clip: Path) -> None:
    before = (hashlib.sha256(clip.read_bytes()).hexdigest(), os.stat(clip).st_mtime_ns)
    list(iter_video_frames(clip, every_seconds=0))
    assert (hashlib.sha256(clip.read_bytes()).hexdigest(), os.stat(clip).st_mtime_ns) == before


def test_truncated_video_is_undecodable_and_silent(clip: Path, capfd: pytest.CaptureFixture[str]) -> None:
    data = clip.read_bytes()
    with pytest.raises(UndecodableMedia) as info:
        list(iter_video_frames(io.BytesIO(data[: len(data) // 2]), where="case/half.mp4"))
    assert info.value.where == "case/half.mp4"
    assert info.value.message
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


def test_garbage_after_header_is_undecodable(capfd: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    data = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + rng.bytes(20000)
    with pytest.raises(UndecodableMedia):
        list(iter_video_frames(io.BytesIO(data), where="x.mp4"))
    assert capfd.readouterr().err == ""


def test_corrupted_frames_raise_with_frame_count(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    # a larger clip whose packet data is overwritten in the middle: the demuxer still works,
    # the decoder fails; the error says how far decoding got
    path = generate_video(tmp_path / "long.mp4", seed=5, seconds=4, fps=10, size=(320, 240))
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(1)
    for i in range(len(data) // 4, len(data) * 3 // 4, 97):
        data[i] = int(rng.integers(256))
    with pytest.raises(UndecodableMedia, match=r"failed after \d+ frames"):
        list(iter_video_frames(io.BytesIO(bytes(data)), every_seconds=0, where="bad.mp4"))
    assert capfd.readouterr().err == ""


def test_not_a_video_is_unsupported() -> None:
    with pytest.raises(UnsupportedMedia):
        list(iter_video_frames(io.BytesIO(b"\x89PNG\r\n\x1a\n" + bytes(100))))
    with pytest.raises(UnsupportedMedia):
        list(iter_video_frames(io.BytesIO(b"")))


def test_missing_file_is_undecodable(tmp_path: Path) -> None:
    with pytest.raises(UndecodableMedia) as info:
        list(iter_video_frames(tmp_path / "nope.mp4"))
    assert info.value.where == str(tmp_path / "nope.mp4")


def test_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "tone.m4a"
    with av.open(str(path), mode="w", format="mp4") as out:
        stream = out.add_stream("aac", rate=8000)
        t = np.arange(8000, dtype=np.float32) / 8000
        samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 8000
        frame.time_base = Fraction(1, 8000)
        frame.pts = 0
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    with pytest.raises(UndecodableMedia, match="no video stream"):
        list(iter_video_frames(path))


def test_pixel_limit_refuses_before_decoding(clip: Path) -> None:
    with pytest.raises(MediaTooLarge) as info:
        list(iter_video_frames(clip, max_pixels=320 * 240 - 1))
    assert "320x240" in info.value.message
    assert len(list(iter_video_frames(clip, max_pixels=320 * 240))) == 3


def test_time_limit_covers_decoding_and_the_consumer(clip: Path) -> None:
    with pytest.raises(MediaTimeout):
        list(iter_video_frames(clip, time_limit=1e-9))
    taken = []
    with pytest.raises(MediaTimeout):
        for frame in iter_video_frames(clip, every_seconds=0, time_limit=0.3):
            taken.append(frame.frame_number)
            time.sleep(0.1)  # a slow hasher counts against the same budget
    # stopped once the hasher's own time passed the budget (after 4 frames at most), not at the end
    # of the 30 frames (counted, not timed: a loaded machine only stops it sooner)
    assert len(taken) <= 4, taken
