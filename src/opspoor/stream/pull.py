"""Frames pulled from a live source and sampled: one a second by default, plus scene changes.

A source is an HLS playlist (``http(s)://…m3u8``), an RTSP, RTMP or SRT URL, MPEG-TS over TCP or
UDP (``tcp://host:port``, ``udp://@:port``), all through PyAV/FFmpeg, or a local video file, which
is played at real-time pace (``realtime=False`` reads it as fast as it decodes). Every frame is
decoded (codecs need them); only sampled frames are turned into RGB. A scene change is a frame
whose 32×18 grey thumbnail differs from the previous frame's by more than ``scene`` (mean absolute
difference, 0-1); it is sampled at once, at most every ``MIN_SCENE_GAP`` seconds.

An ``srt://`` URL that this FFmpeg cannot open (PyAV's wheels have no libsrt) is read through a
local relay, Debian's ``srt-live-transmit`` (:mod:`opspoor.stream.relay`).

URLs open only FFmpeg's network protocols (``PROTOCOLS``): a playlist cannot name local files.
A local file's demuxer is chosen from its magic bytes (``media.video.demuxer_for``), as for evidence.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import av
import numpy as np

from opspoor.errors import MediaError, StreamError
from opspoor.media.frames import frame_array
from opspoor.media.limits import MAX_PIXELS
from opspoor.media.video import demuxer_for
from opspoor.stream.relay import srt_relay

#: FFmpeg protocols a URL source may use (a playlist naming ``file:`` or ``concat:`` is refused)
PROTOCOLS = "http,https,tls,tcp,udp,rtp,rtsp,rtmp,rtmps,srt,crypto,httpproxy"
URL_SCHEMES = ("http", "https", "rtsp", "rtsps", "rtmp", "rtmps", "srt", "tcp", "udp", "rtp")
#: default sampling: one frame a second, and a scene change above this thumbnail difference
DEFAULT_EVERY = 1.0
DEFAULT_SCENE = 0.12
MIN_SCENE_GAP = 0.25
#: seconds to wait for a network source to answer (open and each read)
DEFAULT_TIMEOUT = 10.0
_THUMB = (32, 18)
#: how long ``listen`` waits for an RTSP sender (RTMP, TCP and HTTP wait as long as it takes)
LISTEN_SECONDS = 86_400


@dataclass(frozen=True, slots=True)
class SampledFrame:
    stream_time: float  # seconds from the stream's first frame
    rgb: np.ndarray  # (H, W, 3) uint8
    reason: str  # tick | scene
    decoded_at: float  # time.monotonic() when the frame came out of the decoder


class Sampler:
    """Decides which decoded frames are sampled: a tick every ``every`` seconds, and scene changes."""

    def __init__(self, every: float = DEFAULT_EVERY, scene: float | None = DEFAULT_SCENE) -> None:
        if every <= 0:
            raise ValueError(f"every must be > 0 seconds, got {every}")
        self.every, self.scene = every, scene
        self._next_tick: float | None = None
        self._last_sample = -1e9
        self._thumb: np.ndarray | None = None

    def wants(self, t: float, thumb: np.ndarray | None) -> str | None:
        """``tick``, ``scene`` or None for the frame at stream time ``t`` (``thumb``: its grey
        thumbnail as float32 0-1, or None when scene changes are off)."""
        changed = False
        if thumb is not None and self._thumb is not None and self.scene is not None:
            changed = float(np.mean(np.abs(thumb - self._thumb))) > self.scene
        self._thumb = thumb
        if self._next_tick is None or t >= self._next_tick - 1e-6:
            self._next_tick = (t if self._next_tick is None else self._next_tick) + self.every
            while self._next_tick <= t:  # a gap in the stream: no burst of ticks afterwards
                self._next_tick += self.every
            self._last_sample = t
            return "tick"
        if changed and t - self._last_sample >= MIN_SCENE_GAP:
            self._last_sample = t
            return "scene"
        return None


def is_url(source: str) -> bool:
    scheme = source.split("://", 1)[0].lower() if "://" in source else ""
    return scheme in URL_SCHEMES


def listen_options(source: str) -> dict[str, str]:
    """FFmpeg's options to accept a pushed stream at ``source`` rather than connect to it: RTMP,
    TCP and HTTP ``listen``, RTSP ``rtsp_flags=listen`` (the sender ANNOUNCEs and RECORDs). A UDP
    or RTP URL is always received where it is bound (``udp://@:5000``)."""
    scheme = source.split("://", 1)[0].lower()
    if scheme in ("rtmp", "rtmps", "tcp", "http", "https"):
        return {"listen": "1"}
    if scheme in ("rtsp", "rtsps"):
        # listen_timeout: FFmpeg's default (-1, forever) overflows the TCP listener's range
        return {"rtsp_flags": "listen", "listen_timeout": str(LISTEN_SECONDS)}
    if scheme in ("udp", "rtp"):
        return {}
    if scheme == "srt":  # FFmpeg's libsrt option; the relay (stream.relay) listens too
        return {"mode": "listener"}
    raise StreamError(f"cannot listen for a {scheme}:// stream (rtmp, rtsp, srt, tcp, http can)", source)


def check_source(source: str) -> Path | None:
    """None for a stream URL; else the local video file ``source`` names. Raises ``StreamError``,
    one line naming it, for anything else: no such file, a folder, a playlist on disk (FFmpeg
    would read the local files it names: serve it over HTTP instead), an unknown URL scheme."""
    if is_url(source):
        return None
    if "://" in source:
        scheme = source.split("://", 1)[0]
        raise StreamError(
            f"not a stream URL this command opens ({scheme}://; use http, https, rtsp, rtmp, srt, tcp "
            "or udp)",
            source,
        )
    path = Path(source)
    playlist = path.suffix.lower() in (".m3u8", ".m3u")
    if playlist:
        why = "a playlist on disk is not opened (it could name any local file)"
        if not path.exists():
            why = "no such file, and " + why.replace("is not opened", "is not opened anyway")
        raise StreamError(f"{why}: serve its folder over HTTP and watch the http:// URL", source)
    if not path.exists():
        raise StreamError("no such file (nor a stream URL: http, https, rtsp, rtmp, srt, tcp, udp)", source)
    if path.is_dir():
        raise StreamError("is a folder: watch one video file or a stream URL", source)
    if not path.is_file():
        raise StreamError("not a regular file (a video file or a stream URL is watched)", source)
    return path


def sample_stream(
    source: str,
    *,
    every: float = DEFAULT_EVERY,
    scene: float | None = DEFAULT_SCENE,
    realtime: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    input_format: str | None = None,
    max_pixels: int = MAX_PIXELS,
    listen: bool = False,
) -> Iterator[SampledFrame]:
    """The sampled frames of ``source`` (a URL or a local file), until it ends.

    Raises ``StreamError`` when it cannot be opened or breaks off; what was sampled before stays
    yielded. ``realtime`` paces a local file at its own frame rate (a URL paces itself).
    ``listen``: the URL is where a sender (an encoder, a platform's ingest) connects to push the
    stream (RTMP, RTSP, TCP or HTTP, as FFmpeg's own servers; :func:`listen_options`).
    """
    if is_url(source):
        options = {"protocol_whitelist": PROTOCOLS, "rw_timeout": str(int(timeout * 1e6))}
        opening: float | None = timeout
        if listen:
            options |= listen_options(source)
            opening = None  # wait for the sender as long as it takes
        try:
            container = av.open(
                source, mode="r", format=input_format, options=options, timeout=(opening, timeout)
            )
        except av.error.ProtocolNotFoundError:
            container = None
        except (av.FFmpegError, OSError) as exc:
            raise StreamError(f"cannot open the stream: {_reason(exc)}", source) from None
        if container is None:
            scheme = source.split("://", 1)[0].lower()
            if scheme == "srt":  # PyAV's wheels have no libsrt: through Debian's srt-live-transmit
                yield from _relayed(source, Sampler(every, scene), timeout, input_format, max_pixels, listen)
                return
            raise StreamError(
                f"this FFmpeg cannot open {scheme}:// streams: the protocol is not built in; relay "
                "the stream to RTMP, RTSP or MPEG-TS over UDP",
                source,
            )
        with container:
            yield from _sampled(
                container,
                source,
                Sampler(every, scene),
                None,
                max_pixels,
                silence_ends=_connectionless(source),
                hangup_ends=listen,
            )
        return
    path = check_source(source)
    assert path is not None
    with open(path, "rb") as fh:
        container = _open_file(fh, source, input_format)
        with container:
            yield from _sampled(
                container, source, Sampler(every, scene), time.monotonic() if realtime else None, max_pixels
            )


def _relayed(
    source: str, sampler: Sampler, timeout: float, input_format: str | None, max_pixels: int, listen: bool
) -> Iterator[SampledFrame]:
    """An SRT stream through the local relay (``stream.relay``): its payload, MPEG-TS unless
    ``input_format`` says otherwise, read from the relay's pipe."""
    with srt_relay(source, listen=listen, timeout=timeout) as pipe:
        try:
            container = av.open(pipe, mode="r", format=input_format or "mpegts")
        except (av.FFmpegError, OSError) as exc:
            pipe.check()  # the relay's reason first
            raise StreamError(f"cannot open the stream: {_reason(exc)}", source) from None
        try:
            with container:
                yield from _sampled(container, source, sampler, None, max_pixels)
        except StreamError:
            pipe.check()
            raise
        pipe.check()  # silent after its data: broke off


def _open_file(fh: IO[bytes], where: str, input_format: str | None) -> Any:
    try:
        fmt = input_format or demuxer_for(fh, where)
        return av.open(fh, mode="r", format=fmt)
    except MediaError as exc:
        raise StreamError(exc.message, where) from None
    except (av.FFmpegError, OSError) as exc:
        raise StreamError(f"cannot open the video: {_reason(exc)}", where) from None


def _connectionless(source: str) -> bool:
    """A UDP or RTP source has no end of its own: silence is how it ends."""
    return source.split("://", 1)[0].lower() in ("udp", "rtp")


def _sampled(
    container: Any,
    where: str,
    sampler: Sampler,
    paced_from: float | None,
    max_pixels: int,
    silence_ends: bool = False,
    hangup_ends: bool = False,
) -> Iterator[SampledFrame]:
    if not container.streams.video:
        raise StreamError("no video stream", where)
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    start: float | None = None
    count = 0
    rate = float(stream.average_rate or stream.base_rate or 25)
    try:
        for frame in container.decode(stream):
            decoded_at = time.monotonic()
            t_abs = frame.time if frame.time is not None else count / rate
            count += 1
            if start is None:
                start = t_abs
            t = t_abs - start
            if frame.width * frame.height > max_pixels:
                raise StreamError(
                    f"frame {frame.width}x{frame.height} exceeds the {max_pixels} pixel limit", where
                )
            thumb = None
            if sampler.scene is not None:
                small = frame_array(frame, format="gray", width=_THUMB[0], height=_THUMB[1])
                thumb = small.astype(np.float32) / 255.0
            reason = sampler.wants(t, thumb)
            if reason is None:
                continue
            if paced_from is not None:  # a file plays at its own pace: wait for the frame's time
                wait = paced_from + t - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                decoded_at = time.monotonic()
            yield SampledFrame(t, frame_array(frame, format="rgb24"), reason, decoded_at)
    except (av.ExitError, av.TimeoutError) as exc:
        # the source was silent for the timeout: the end of a UDP/RTP stream, else a break
        if not ((silence_ends or hangup_ends) and count):
            raise StreamError(f"the stream broke off after {count} frames: {_reason(exc)}", where) from None
    except av.FFmpegError as exc:
        # a sender that pushed to us hangs up when its stream ends (RTMP answers EIO)
        if not (hangup_ends and count):
            raise StreamError(f"the stream broke off after {count} frames: {_reason(exc)}", where) from None
    if count == 0:
        raise StreamError("the stream gave no decodable frames", where)


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or exc)
