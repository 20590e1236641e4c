"""Decode video frames with PyAV, safely: demuxer chosen from magic bytes, pixel and time limits.

Frame selection follows Meta's vPDQ (``vpdq/cpp/hashing/filehasher.cpp``) so that our vPDQ lines
are comparable with its output:

- frames are numbered in decoder output order from 0 (FFmpeg's ``frame_num - 1``), not by timestamp;
- a frame is kept when ``frame_number % frame_mod == 0``, ``frame_mod = int(every_seconds * fps)``
  (at least 1, so ``every_seconds=0`` keeps every frame);
- ``fps`` is the stream's average frame rate, else its real base frame rate;
- ``timestamp = frame_number / fps`` computed in float32, as the reference does;
- kept frames are converted to RGB24 at the stream's size with swscale's area filter and FFmpeg's
  default (BT.601) matrix; no rotation from metadata is applied (stored pixels).

swscale's accurate rounding is asked for on top of vPDQ's ``SWS_AREA``: it turns off the
CPU-specific fast converters, so the RGB (hence the hash) is the same on every machine. Measured on
Meta's sample videos, 13 of 14 reference files are then reproduced bit for bit on nearly every frame
(at most 2 bits off); without it, FFmpeg 8's default converter lands a median 2-4 bits away.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import av
import av.logging
import numpy as np
from av.video.reformatter import Interpolation

from opspoor.errors import MediaTimeout, MediaTooLarge, UndecodableMedia, UnsupportedMedia
from opspoor.media.frames import frame_array
from opspoor.media.limits import MAX_PIXELS
from opspoor.media.sniff import SNIFF_BYTES, sniff

# FFmpeg would otherwise be free to print per-file warnings to stderr; errors reach us as exceptions.
av.logging.set_level(None)

#: default refusal limit for a frame's declared pixel count (same default as images)
DEFAULT_MAX_PIXELS = MAX_PIXELS  # one limit for every caller (media.limits)
#: default wall-clock limit for decoding (and hashing) one video
DEFAULT_TIME_LIMIT = 120.0

# Demuxer forced for each sniffed container. Never letting FFmpeg probe the format keeps playlist
# and concat demuxers (which open other files or URLs named inside the evidence) out of reach.
_DEMUXERS = {
    "mp4": "mov",
    "mov": "mov",
    "3gp": "mov",
    "mkv": "matroska",
    "webm": "matroska",
    "avi": "avi",
    "asf": "asf",
    "flv": "flv",
    "mpeg": "mpeg",
    "mpegts": "mpegts",
}

VideoSource = str | Path | IO[bytes]

# vPDQ's SWS_AREA, plus accurate rounding for machine-independent pixels (see the module docstring)
_SWS_FLAGS = Interpolation.AREA | Interpolation.ACCURATE_RND


@dataclass(frozen=True, slots=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    codec: str
    container: str  # sniffed type: mp4, mkv, ...


@dataclass(frozen=True, slots=True)
class VideoFrame:
    frame_number: int
    timestamp: float  # seconds, frame_number / fps in float32 (vPDQ's convention)
    rgb: np.ndarray  # (H, W, 3) uint8 at the stream's full size


def frame_mod(every_seconds: float, fps: float) -> int:
    """Keep every n-th decoded frame: vPDQ's ``int(secondsPerHash * frameRate)``, at least 1."""
    if every_seconds < 0:
        raise ValueError(f"every_seconds must be >= 0, got {every_seconds}")
    return max(1, int(every_seconds * fps))


def frame_timestamp(frame_number: int, fps: float) -> float:
    """vPDQ's timestamp: ``(float) frame_number / (float) fps``."""
    return float(np.float32(frame_number) / np.float32(fps))


def iter_video_frames(
    source: VideoSource,
    *,
    every_seconds: float = 1.0,
    where: str | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[VideoFrame]:
    """Yield the sampled frames of the first video stream as RGB arrays.

    ``source`` is a path or a seekable binary file object (its position is moved). The time limit
    covers the whole iteration, including the consumer's work between frames; it is checked at
    every demuxed packet, so a file that decodes slowly or endlessly raises ``MediaTimeout``.
    """
    where = where if where is not None else (str(source) if isinstance(source, str | Path) else None)
    if isinstance(source, str | Path):
        with _open_file(source, where) as fh:
            yield from _iter_frames(fh, every_seconds, where, time_limit, max_pixels)
    else:
        yield from _iter_frames(source, every_seconds, where, time_limit, max_pixels)


def probe_video(source: VideoSource, *, where: str | None = None) -> VideoInfo:
    """Dimensions, frame rate and codec of the first video stream, without decoding frames."""
    if isinstance(source, str | Path):
        where = where if where is not None else str(source)
        with _open_file(source, where) as fh:
            return probe_video(fh, where=where)
    ctype = _container_type(source, where)
    with _open_container(source, ctype, where) as container:
        return _stream_info(container, ctype, where)


#: what decoding a video holds at its peak, per pixel of its frame size: the decoder's reference and
#: threading frames and the RGB copy of a sampled frame (measured: 1280x720 +74 MiB, 3840x2160
#: +259 MiB, so about 32 bytes a pixel at large sizes), plus the decoder's own start
VIDEO_BYTES_PER_PIXEL = 32
VIDEO_BASE_MEMORY = 16 << 20


def video_decode_memory(source: IO[bytes], *, where: str | None = None) -> int:
    """Bytes decoding ``source`` (a seekable stream at its start) holds at its peak, estimated from
    the container's header (no frame decoded); 0 when the header is unreadable (its decode fails
    early). The stream is left where it was."""
    start = source.tell()
    try:
        info = probe_video(source, where=where)
    except (UndecodableMedia, UnsupportedMedia):
        return 0
    finally:
        source.seek(start)
    return info.width * info.height * VIDEO_BYTES_PER_PIXEL + VIDEO_BASE_MEMORY


def demuxer_for(fh: IO[bytes], where: str | None = None) -> str:
    """The FFmpeg demuxer for a video file, from its magic bytes (never FFmpeg's own probing);
    raises ``UnsupportedMedia`` for anything else. The position of ``fh`` is kept."""
    return _DEMUXERS[_container_type(fh, where)]


def _open_file(path: str | Path, where: str | None) -> IO[bytes]:
    # read-only, and a Python file object rather than a name, so FFmpeg never parses it as a URL
    try:
        return open(path, "rb")  # noqa: SIM115  (the callers close it)
    except OSError as exc:
        raise UndecodableMedia(f"cannot read video: {exc.strerror or exc}", where) from None


def _container_type(fh: IO[bytes], where: str | None) -> str:
    start = fh.tell()
    head = fh.read(SNIFF_BYTES)
    fh.seek(start)
    sniffed = sniff(head)
    if sniffed.type not in _DEMUXERS:
        raise UnsupportedMedia(f"not a supported video container (sniffed {sniffed.type})", where)
    return sniffed.type


class _FromHere:
    """The rest of a seekable stream, seen as a file of its own (FFmpeg seeks to absolute offsets)."""

    def __init__(self, fh: IO[bytes], start: int) -> None:
        self._fh, self._start = fh, start

    def read(self, n: int = -1) -> bytes:
        return self._fh.read(n)

    def seek(self, offset: int, whence: int = 0) -> int:
        self._fh.seek(offset + self._start if whence == 0 else offset, whence)
        return self.tell()

    def tell(self) -> int:
        return self._fh.tell() - self._start

    def seekable(self) -> bool:
        return True


def _open_container(fh: IO[bytes], ctype: str, where: str | None) -> Any:
    start = fh.tell()
    try:
        return av.open(fh if start == 0 else _FromHere(fh, start), mode="r", format=_DEMUXERS[ctype])
    except av.FFmpegError as exc:
        raise UndecodableMedia(f"cannot open video: {_ffmpeg_reason(exc)}", where) from None


def _stream_info(container: Any, ctype: str, where: str | None) -> VideoInfo:
    if not container.streams.video:
        raise UndecodableMedia("no video stream", where)
    stream = container.streams.video[0]
    ctx = stream.codec_context
    width, height = int(ctx.width or 0), int(ctx.height or 0)
    if width <= 0 or height <= 0:
        raise UndecodableMedia("video stream has no frame size", where)
    rate = stream.average_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    if fps <= 0:
        raise UndecodableMedia("video frame rate is zero or unknown", where)
    return VideoInfo(width, height, fps, ctx.name, ctype)


def _iter_frames(
    fh: IO[bytes], every_seconds: float, where: str | None, time_limit: float, max_pixels: int
) -> Iterator[VideoFrame]:
    started = time.monotonic()
    ctype = _container_type(fh, where)
    with _open_container(fh, ctype, where) as container:
        info = _stream_info(container, ctype, where)
        if info.width * info.height > max_pixels:
            raise MediaTooLarge(
                f"video frame {info.width}x{info.height} exceeds the {max_pixels} pixel limit", where
            )
        stream = container.streams.video[0]
        mod = frame_mod(every_seconds, info.fps)
        number = 0
        try:
            for packet in container.demux(stream):
                _check_time(started, time_limit, number, where)
                for frame in packet.decode():
                    if number % mod == 0:
                        yield VideoFrame(number, frame_timestamp(number, info.fps), _to_rgb(frame, info))
                        _check_time(started, time_limit, number, where)
                    number += 1
        except av.FFmpegError as exc:
            raise UndecodableMedia(
                f"video decoding failed after {number} frames: {_ffmpeg_reason(exc)}", where
            ) from None
        if number == 0:
            raise UndecodableMedia("video has no decodable frames", where)


def _to_rgb(frame: Any, info: VideoInfo) -> np.ndarray:
    # vPDQ scales every frame to the stream's initial size (a mid-stream size change is rescaled)
    return frame_array(frame, format="rgb24", width=info.width, height=info.height, interpolation=_SWS_FLAGS)


def _check_time(started: float, limit: float, frames: int, where: str | None) -> None:
    elapsed = time.monotonic() - started
    if elapsed > limit:
        raise MediaTimeout(f"video decoding exceeded {limit:g} s (after {frames} frames)", where)


def _ffmpeg_reason(exc: av.FFmpegError) -> str:
    return str(exc.strerror or exc)
