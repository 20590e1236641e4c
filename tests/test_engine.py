"""The one-read hashing engine: every signal of a file, crypto hashes kept when media decoding fails."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from pathlib import Path
from typing import BinaryIO

import pytest

from opspoor.demo.images import generate_image
from opspoor.demo.videos import generate_video
from opspoor.errors import MediaTooLarge, SourceError, UndecodableMedia
from opspoor.media.digests import CHUNK
from opspoor.media.image import decode_image
from opspoor.signals import engine
from opspoor.signals.engine import FileSignals, HashOptions, hash_bytes, hash_path, hash_stream
from opspoor.signals.pdq import pdq_hash_image
from opspoor.signals.vpdq import vpdq_hash_video


def jpeg_bytes(seed: int = 1, size: tuple[int, int] = (640, 480)) -> bytes:
    buf = io.BytesIO()
    generate_image(seed, *size).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_video(tmp_path_factory.mktemp("engine") / "v.mp4", seed=21, seconds=3)


def assert_crypto(sig: FileSignals, data: bytes) -> None:
    assert sig.size == len(data)
    assert sig.md5 == hashlib.md5(data).hexdigest()
    assert sig.sha1 == hashlib.sha1(data).hexdigest()
    assert sig.sha256 == hashlib.sha256(data).hexdigest()


def test_image_signals_from_one_buffer() -> None:
    data = jpeg_bytes()
    sig = hash_bytes(data, where="a.jpg")
    assert_crypto(sig, data)
    assert (sig.kind, sig.type, sig.error) == ("image", "jpeg", None)
    expected = pdq_hash_image(decode_image(data))
    assert (sig.pdq, sig.quality) == (expected.hash, expected.quality)
    assert sig.pdq_dihedral is None and sig.vpdq_frames is None


def test_dihedral_variants_on_request() -> None:
    sig = hash_bytes(jpeg_bytes(2), options=HashOptions(dihedral=True))
    assert sig.pdq_dihedral is not None and len(sig.pdq_dihedral) == 8
    assert sig.pdq_dihedral[0] == sig.pdq
    assert len(set(sig.pdq_dihedral)) == 8


def test_corrupt_image_keeps_crypto_hashes() -> None:
    data = jpeg_bytes()[:2000]
    sig = hash_bytes(data, where="case/cut.jpg")
    assert_crypto(sig, data)
    assert isinstance(sig.error, UndecodableMedia) and sig.error.where == "case/cut.jpg"
    assert sig.pdq is None and sig.quality is None and sig.type == "jpeg"


def test_unexpected_decoder_failure_becomes_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("decoder bug")

    monkeypatch.setattr(engine, "decode_with_detail", broken)
    data = jpeg_bytes()
    sig = hash_bytes(data, where="x.jpg")
    assert_crypto(sig, data)
    assert isinstance(sig.error, UndecodableMedia) and "decoder bug" in sig.error.message


def test_video_signals(video: Path) -> None:
    data = video.read_bytes()
    sig = hash_bytes(data, where=str(video))
    assert_crypto(sig, data)
    assert (sig.kind, sig.type, sig.pdq, sig.error) == ("video", "mp4", None, None)
    assert sig.vpdq_frames == vpdq_hash_video(video)
    every = hash_bytes(data, options=HashOptions(every_seconds=0))
    assert every.vpdq_frames is not None and len(every.vpdq_frames) == 30


def test_options_switch_media_off(video: Path) -> None:
    assert hash_bytes(jpeg_bytes(), options=HashOptions(pdq=False)).pdq is None
    assert hash_bytes(video.read_bytes(), options=HashOptions(vpdq=False)).vpdq_frames is None


def test_video_time_limit_is_an_error_not_a_hang(video: Path) -> None:
    sig = hash_bytes(video.read_bytes(), options=HashOptions(video_time_limit=1e-9))
    assert sig.error is not None and sig.error.reason == "MediaTimeout"
    assert sig.vpdq_frames is None and sig.sha256 == hashlib.sha256(video.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("data", "kind", "type_"),
    [
        (b"", "other", "empty"),
        (b"hello world\n", "other", "unknown"),
        (b"PK\x03\x04" + bytes(40), "archive", "zip"),
    ],
)
def test_other_files_get_crypto_only(data: bytes, kind: str, type_: str) -> None:
    sig = hash_bytes(data)
    assert_crypto(sig, data)
    assert (sig.kind, sig.type, sig.pdq, sig.vpdq_frames, sig.error) == (kind, type_, None, None, None)


def test_hash_path_equals_hash_bytes_and_leaves_the_file_alone(tmp_path: Path, video: Path) -> None:
    img = tmp_path / "p.jpg"
    img.write_bytes(jpeg_bytes(3))
    for path in (img, video):
        before = (path.read_bytes(), os.stat(path).st_mtime_ns, os.stat(path).st_mode)
        assert hash_path(path) == hash_bytes(path.read_bytes(), where=str(path))
        assert (path.read_bytes(), os.stat(path).st_mtime_ns, os.stat(path).st_mode) == before


@pytest.mark.skipif(not hasattr(os, "O_NOATIME"), reason="O_NOATIME is Linux's")
def test_hash_path_and_provenance_open_exhibits_as_the_scan_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``hash_path`` and the report's SHA-256 of a source open the file the one way evidence is
    opened (``readonly.open_readonly``): read-only, with O_NOATIME, so its access time is kept."""
    from opspoor.triage.provenance import sha256_file

    img = tmp_path / "p.jpg"
    img.write_bytes(jpeg_bytes(3))
    flags: list[int] = []
    real_open = os.open

    def recording_open(path: object, fl: int, *args: object, **kw: object) -> int:
        if os.fspath(path) == str(img):  # type: ignore[call-overload]
            flags.append(fl)
        return real_open(path, fl, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", recording_open)
    hash_path(img)
    sha256_file(img)
    assert len(flags) == 2 and all(f & os.O_NOATIME and not f & (os.O_WRONLY | os.O_RDWR) for f in flags), (
        flags
    )


def test_missing_file_raises_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as info:
        hash_path(tmp_path / "gone.jpg")
    assert info.value.where == str(tmp_path / "gone.jpg")


def test_large_video_is_streamed_then_decoded(video: Path) -> None:
    small_limit = HashOptions(max_in_memory=4096)
    big = hash_path(video, small_limit)
    assert big == hash_path(video)  # same digests and same frames by the streaming route
    # stream without a size hint: read past the limit, then rewound for the video
    assert hash_stream(io.BytesIO(video.read_bytes()), options=small_limit) == big
    # a stream positioned inside a larger container (an archive member, say) rewinds to its start
    inner = io.BytesIO(b"x" * 999 + video.read_bytes())
    inner.seek(999)
    assert hash_stream(inner, options=small_limit) == big


class RecordingStream(io.BytesIO):
    def __init__(self, data: bytes, seekable: bool = True) -> None:
        super().__init__(data)
        self.reads: list[int] = []
        self._can_seek = seekable

    def read(self, n: int | None = -1) -> bytes:
        self.reads.append(-1 if n is None else n)
        return super().read(n)

    def seekable(self) -> bool:
        return self._can_seek


def test_large_file_digests_in_constant_memory_chunks() -> None:
    data = os.urandom(3 * CHUNK + 123)
    stream = RecordingStream(data)
    sig = hash_stream(stream, options=HashOptions(max_in_memory=CHUNK), size_hint=len(data))
    assert_crypto(sig, data)
    assert max(stream.reads) <= CHUNK and min(stream.reads) > 0


def test_large_image_and_unseekable_large_video_keep_their_hashes(video: Path) -> None:
    data = jpeg_bytes(4)
    sig = hash_stream(io.BytesIO(data), options=HashOptions(max_in_memory=1000), size_hint=len(data))
    assert_crypto(sig, data)
    assert isinstance(sig.error, MediaTooLarge) and sig.pdq is None

    vdata = video.read_bytes()
    unseekable: BinaryIO = RecordingStream(vdata, seekable=False)
    sig = hash_stream(unseekable, options=HashOptions(max_in_memory=1000))
    assert_crypto(sig, vdata)
    assert isinstance(sig.error, MediaTooLarge) and sig.vpdq_frames is None
    # small enough for memory, the same unseekable stream is fine
    sig = hash_stream(RecordingStream(vdata, seekable=False))
    assert sig.error is None and sig.vpdq_frames


def test_results_pickle_for_a_process_pool(video: Path) -> None:
    for sig in (
        hash_bytes(jpeg_bytes()[:1500], where="a/b.jpg"),
        hash_bytes(video.read_bytes()),
        hash_bytes(jpeg_bytes(), options=HashOptions(dihedral=True)),
    ):
        back = pickle.loads(pickle.dumps(sig))
        assert back.md5 == sig.md5 and back.vpdq_frames == sig.vpdq_frames and back.pdq == sig.pdq
        if sig.error is not None:
            assert type(back.error) is type(sig.error)
            assert back.error is not None and back.error.where == "a/b.jpg"
            assert str(back.error) == str(sig.error)
    assert pickle.loads(pickle.dumps(HashOptions(every_seconds=0))) == HashOptions(every_seconds=0)


def test_low_quality_hashes_are_in_the_robust_presets_and_can_be_turned_off() -> None:
    from opspoor.signals.engine import ROBUST_PRESETS, robust_methods

    assert "low-quality" in ROBUST_PRESETS["fast"] and "low-quality" in ROBUST_PRESETS["full"]
    assert robust_methods(ROBUST_PRESETS["fast"]) == ROBUST_PRESETS["fast"]
    assert robust_methods(ROBUST_PRESETS["fast"], low_quality=False) == frozenset({"dihedral", "borders"})
    assert robust_methods(frozenset({"low-quality"})) == frozenset()  # nothing to cap on its own
