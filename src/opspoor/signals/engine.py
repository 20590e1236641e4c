"""The hashing engine: one read per file, every signal of the file from that read.

A file up to ``max_in_memory`` bytes is read into memory once; MD5, SHA-1 and SHA-256 are taken from
that buffer and the image or video is decoded from the same bytes. A larger file is digested chunk by
chunk in constant memory; if it is a video it is then decoded from the (seekable) stream, a second
sequential read that only large videos need. A media failure never loses the cryptographic hashes:
``FileSignals.error`` says what failed and the rest is filled in.

Everything here is plain functions and dataclasses, so it pickles for a process pool.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

import numpy as np

from opspoor.errors import (
    MediaTooLarge,
    OpspoorError,
    SourceError,
    SymlinkNotFollowed,
    UndecodableMedia,
    VanishedSource,
)
from opspoor.media.digests import CHUNK, DigestAccumulator, Digests, digest_bytes
from opspoor.media.exif import ExifInfo
from opspoor.media.image import clipped_16bit_rgb, decode_memory, decode_with_detail
from opspoor.media.limits import MAX_PIXELS
from opspoor.media.sniff import SNIFF_BYTES, Sniffed, sniff
from opspoor.media.thumbs import safe_thumbnail
from opspoor.readonly import open_readonly
from opspoor.signals.local import local_features
from opspoor.signals.pdq import PdqHash, pdq_hash_image, pdq_with_dihedral
from opspoor.signals.robust import LOW_QUALITY_DISTANCE, QueryHash, clipped_16bit_hash, query_hashes
from opspoor.signals.vpdq import VpdqFrame, vpdq_hash_video


@dataclass(frozen=True, slots=True)
class HashOptions:
    pdq: bool = True  # PDQ of images
    vpdq: bool = True  # vPDQ of videos
    dihedral: bool = False  # also the 8 dihedral PDQ variants of images
    every_seconds: float = 1.0  # vPDQ sampling; 0 = every frame
    max_pixels: int = MAX_PIXELS  # refuse images / video frames declaring more pixels
    video_time_limit: float = 120.0  # seconds per video (decode + hash)
    max_in_memory: int = 512 * 1024 * 1024  # larger files are digested as a stream
    #: refuse (``MediaTooLarge``, from the header, before any pixel) an image whose decode would take
    #: more memory than this (``media.image.decode_memory``); ``None``: only ``max_pixels`` applies
    max_decode_memory: int | None = None
    thumbnail: bool = False  # a review-safe (grayscale, blurred) thumbnail, see media.thumbs
    #: extra PDQ query hashes of images (signals.robust), any of "dihedral" (rotations and flips,
    #: ~5 ms per image), "borders" (borders removed, ~2 ms), "embedded" (pictures inside a larger
    #: canvas, ~30 ms), "low-quality" (weak extra hashes too: PDQ quality 10-49 or a regular
    #: pattern, each matching only within ``LOW_QUALITY_DISTANCE``); see ROBUST_PRESETS
    #: (bench/scan_profile.py measures them)
    robust: frozenset[str] = frozenset()
    #: local features of images and of their mirror images (signals.local, ~12 ms per image):
    #: only worth it against sets that hold their originals' (``opspoor hashset build --augment``)
    local: bool = False


DEFAULT = HashOptions()
#: named sets of robust query methods, as the CLI offers them
ROBUST_PRESETS: dict[str, frozenset[str]] = {
    "off": frozenset(),
    "fast": frozenset({"dihedral", "borders", "low-quality"}),
    "full": frozenset({"dihedral", "borders", "embedded", "low-quality"}),
}


def robust_methods(preset: frozenset[str], low_quality: bool = True) -> frozenset[str]:
    """A preset's robust query methods, without the low-quality hashes if they are turned off
    (and never with them alone: they are region hashes and turns)."""
    if not low_quality or not preset - {"low-quality"}:
        return preset - {"low-quality"}
    return preset


@dataclass(slots=True)
class FileSignals:
    size: int
    md5: str
    sha1: str
    sha256: str
    kind: str  # image | video | archive | other  (from media.sniff)
    type: str  # jpeg, png, mp4, zip, unknown, empty, ...
    pdq: str | None = None
    quality: int | None = None
    pdq_dihedral: list[str] | None = (
        None  # original, rot90, rot180, rot270, flipx, flipy, transpose, transverse
    )
    vpdq_frames: list[VpdqFrame] | None = None
    exif: ExifInfo | None = None
    error: OpspoorError | None = field(default=None)  # media decode failed; crypto hashes still present
    thumbnail: bytes | None = None  # JPEG, grayscale and blurred (only with HashOptions.thumbnail)
    #: query hashes (HashOptions.robust): (hash, method), or (hash, method, max distance) for a
    #: low-quality hash that may match only that close
    pdq_variants: list[tuple[str, str] | tuple[str, str, int]] | None = None
    local: str | None = None  # the image's local features, encoded (HashOptions.local)
    #: the picture as decoded for PDQ (RGB, long side at most 512), for the worker's later steps on
    #: the same file (location clues: no second decode); never part of a result or a record
    pixels: np.ndarray | None = field(default=None, compare=False, repr=False)


def hash_bytes(data: bytes, *, where: str | None = None, options: HashOptions = DEFAULT) -> FileSignals:
    """Every signal of a file held in memory."""
    sig = _start(digest_bytes(data), sniff(bytes(data[:SNIFF_BYTES])))
    if sig.kind == "image" and options.pdq:
        _add_image(sig, data, where, options)
    elif sig.kind == "video" and options.vpdq:
        _add_video(sig, io.BytesIO(data), where, options)
    return sig


def hash_stream(
    stream: BinaryIO,
    *,
    where: str | None = None,
    options: HashOptions = DEFAULT,
    size_hint: int | None = None,
) -> FileSignals:
    """Every signal of the bytes left in ``stream``.

    Files that fit ``options.max_in_memory`` go through :func:`hash_bytes`. A larger one is
    digested in constant memory; only a video among them is decoded, from the stream again
    (so the stream must then be seekable), and a large image gets ``MediaTooLarge``.
    """
    limit = options.max_in_memory
    start = _tell(stream)  # where a large video's second read begins; None if it cannot seek
    if size_hint is None or size_hint <= limit:
        data = _read_up_to(stream, limit + 1, where, size_hint)
        if len(data) <= limit:
            return hash_bytes(data, where=where, options=options)
        acc = DigestAccumulator()
        acc.update(data)
        head = data[:SNIFF_BYTES]
        del data
    else:
        head = _read_up_to(stream, SNIFF_BYTES, where)
        acc = DigestAccumulator()
        acc.update(head)
    _digest_rest(stream, acc, where)
    sig = _start(acc.result(), sniff(head))
    if sig.kind == "image" and options.pdq:
        sig.error = MediaTooLarge(
            f"image file of {sig.size:,} bytes is above the in-memory limit of {limit:,}", where
        )
    elif sig.kind == "video" and options.vpdq:
        _add_large_video(sig, stream, start, where, options)
    return sig


def hash_path(path: Path | str, options: HashOptions = DEFAULT) -> FileSignals:
    """Every signal of a file on disk, opened read-only. ``SourceError`` if it cannot be opened or read."""
    where = str(path)
    fh = _open_regular(path, where)
    with fh:
        try:
            size = os.fstat(fh.fileno()).st_size
        except OSError as exc:
            raise SourceError(f"cannot stat: {exc.strerror or exc}", where) from None
        return hash_stream(fh, where=where, options=options, size_hint=size)


def _open_regular(path: Path | str, where: str) -> BinaryIO:
    """Open a file the user named, as the scan opens evidence (``readonly.open_readonly``: no
    access-time change, never blocking on a FIFO), following a symlink it names; what is wrong
    with it is a one-line ``SourceError``."""
    if os.path.isdir(path):
        raise SourceError("a folder, not a file", where)
    try:
        return open_readonly(os.fspath(path), where, follow_symlinks=True)
    except VanishedSource:
        if os.path.islink(path):
            raise SymlinkNotFollowed(f"broken symlink to {os.readlink(path)!r}", where) from None
        raise SourceError("no such file", where) from None
    except SymlinkNotFollowed:
        raise SymlinkNotFollowed("symlink loop", where) from None


# --- parts -------------------------------------------------------------------------------------


def _start(d: Digests, s: Sniffed) -> FileSignals:
    return FileSignals(size=d.size, md5=d.md5, sha1=d.sha1, sha256=d.sha256, kind=s.kind, type=s.type)


def _add_image(sig: FileSignals, data: bytes, where: str | None, options: HashOptions) -> None:
    try:
        # regions (borders, screenshots) are cut from a larger picture of the same bytes: the
        # pixels this decode loads, kept when regions will be looked for, or a second decode
        cuts = bool({"borders", "embedded"} & options.robust)
        if options.max_decode_memory is not None:
            need = decode_memory(data)
            if need > options.max_decode_memory:
                raise MediaTooLarge(
                    f"decoding would take about {need >> 20:,} MiB, above the memory budget of "
                    f"{options.max_decode_memory >> 20:,} MiB; hashed, not decoded",
                    where,
                )
        img, detail = decode_with_detail(data, where=where, max_pixels=options.max_pixels, keep=cuts)
        if options.dihedral:
            h, sig.pdq_dihedral = pdq_with_dihedral(img.rgb)
        elif not options.robust:  # (with robust query hashes, the first of them is the plain PDQ)
            h = pdq_hash_image(img)
    except OpspoorError as exc:
        sig.error = exc
        return
    except Exception as exc:  # a decoder bug must not lose the file's other signals
        sig.error = UndecodableMedia(f"image decoding failed: {type(exc).__name__}: {exc}", where)
        return
    if options.robust:
        r = options.robust
        variants = query_hashes(
            img.rgb,
            dihedral="dihedral" in r,
            borders="borders" in r,
            embedded="embedded" in r,
            low_quality_distance=LOW_QUALITY_DISTANCE if "low-quality" in r else None,
            detail=detail,
        )
        img = replace(img, loaded=None)  # a PNG's loaded pixels are all of it: not held any longer
        if not options.dihedral:
            h = PdqHash(variants[0].hash, variants[0].quality)
        if img.mode.startswith("I;16"):  # as python-threatexchange hashes it, too
            clipped = _clipped_16bit(data, where, "low-quality" in r)
            if clipped is not None and clipped.hash not in {q.hash for q in variants}:
                variants.append(clipped)
        sig.pdq_variants = [_variant(q) for q in variants[1:]]
    sig.pdq, sig.quality, sig.exif, sig.pixels = h.hash, h.quality, img.exif, img.rgb
    if options.local:
        found = local_features(img.rgb, mirror=True)  # a query: its mirror finds flipped copies
        sig.local = found.encode() if len(found) else None
    if options.thumbnail:
        sig.thumbnail = safe_thumbnail(img.rgb)


def _clipped_16bit(data: bytes, where: str | None, low_quality: bool) -> QueryHash | None:
    """The ``clip16`` query hash of a 16-bit image, or None (a failure here loses nothing else)."""
    try:
        rgb = clipped_16bit_rgb(data, where=where)
    except OpspoorError:
        return None
    if rgb is None:
        return None
    return clipped_16bit_hash(rgb, low_quality_distance=LOW_QUALITY_DISTANCE if low_quality else None)


def _variant(q: QueryHash) -> tuple[str, str] | tuple[str, str, int]:
    """A query hash as the scan records it: (hash, method), with its distance cap if it has one."""
    return (q.hash, q.method) if q.max_distance is None else (q.hash, q.method, q.max_distance)


def _add_video(sig: FileSignals, source: BinaryIO, where: str | None, options: HashOptions) -> None:
    def thumb(rgb: np.ndarray, frame: VpdqFrame) -> None:
        # the first frame with real content (not a black lead-in) stands for the video
        if sig.thumbnail is None and frame.quality >= 50:
            sig.thumbnail = safe_thumbnail(rgb)

    try:
        sig.vpdq_frames = vpdq_hash_video(
            source,
            every_seconds=options.every_seconds,
            where=where,
            max_seconds_decode=options.video_time_limit,
            max_pixels=options.max_pixels,
            on_frame=thumb if options.thumbnail else None,
        )
    except OpspoorError as exc:
        sig.error = exc
    except Exception as exc:
        sig.error = UndecodableMedia(f"video decoding failed: {type(exc).__name__}: {exc}", where)


def _add_large_video(
    sig: FileSignals, stream: BinaryIO, start: int | None, where: str | None, options: HashOptions
) -> None:
    # Second sequential read, only for videos above max_in_memory: digests streamed, now decode.
    if start is None:
        sig.error = MediaTooLarge(
            f"video of {sig.size:,} bytes is above the in-memory limit and its stream cannot seek", where
        )
        return
    try:
        stream.seek(start)
    except OSError as exc:
        sig.error = UndecodableMedia(f"cannot rewind video stream: {exc}", where)
        return
    _add_video(sig, stream, where, options)


def _seekable(stream: BinaryIO) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _tell(stream: BinaryIO) -> int | None:
    try:
        return stream.tell() if _seekable(stream) else None
    except OSError:
        return None


def _read_up_to(stream: BinaryIO, n: int, where: str | None, size_hint: int | None = None) -> bytes:
    """Up to ``n`` bytes (fewer only at end of stream).

    The first read asks for the expected size plus one byte, so a file of known size is one read
    into one buffer (and an end-of-file check); without a hint, reads ask for at most 16 MiB.
    """
    parts = []
    left = n
    want = CHUNK if size_hint is None else size_hint + 1
    try:
        while left > 0:
            chunk = stream.read(max(1, min(left, want)))
            want = 16 * CHUNK
            if not chunk:
                break
            parts.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise SourceError(f"read failed: {exc.strerror or exc}", where) from None
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _digest_rest(stream: BinaryIO, acc: DigestAccumulator, where: str | None) -> None:
    try:
        while chunk := stream.read(CHUNK):
            acc.update(chunk)
    except OSError as exc:
        raise SourceError(f"read failed: {exc.strerror or exc}", where) from None
