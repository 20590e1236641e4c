"""The clues of one file, as the scan worker asks for them (cheap first, OCR only where it pays).

Images: the file name and path, then the text-likeness test and, if it passes, OCR and the text
clues. Videos: the same on a few sampled frames, the text of embedded subtitle tracks, and the
spoken language when an operator installed a plugin (:mod:`opspoor.clues.speech`). EXIF GPS is
named per group when the groups are built (one look-up for the whole case, :mod:`opspoor.clues.gps`).

Nothing here raises for a bad file: a clue that cannot be read is simply not there, and the
reason is recorded in ``notes`` (OCR missing, a video that cannot be opened).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image

from opspoor.clues import text_clues
from opspoor.clues.filenames import filename_clues
from opspoor.clues.language import load_model, words_of
from opspoor.clues.model import SNIPPET, Clue
from opspoor.clues.ocr import OcrUnavailable, ocr_available, read_text
from opspoor.clues.textlike import TextLikeness, grey, text_likeness
from opspoor.media.frames import frame_array
from opspoor.media.image import decode_image

#: frames looked at per video (at these shares of its length)
FRAME_POINTS = (0.1, 0.5, 0.9)
#: subtitle text read per video (characters): enough for the language and a few numbers
MAX_SUBTITLE_CHARS = 20_000
#: the height (px) of a text line as OCR reads it: larger text is scaled down to it first (Tesseract
#: brings every line to about 36 px itself, so more pixels only cost time: a false alarm on a 16 MP
#: photo cost 0.6 s read at full size)
OCR_LINE = 48


@dataclass(frozen=True, slots=True)
class ClueOptions:
    enabled: bool = True
    ocr: bool = True
    #: where numbers without a country prefix are read as local, and what the ranking favours
    country: str = "NL"


@dataclass(slots=True)
class FileClues:
    clues: list[Clue] = field(default_factory=list)
    #: what was tried: "textlike" (the cheap test ran), "ocr" (Tesseract ran), why not
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"found": [c.to_json() for c in self.clues], "notes": self.notes}


def share_models(opts: ClueOptions) -> None:
    """Load the models ``opts`` needs now, in a process whose workers are forked from it (the scan's
    local pool): the workers then share them, rather than each load its own when it first needs
    them (the language model about 0.4 s of CPU and 80 MB, Tesseract's five languages 0.3 s and
    90 MB, per worker). Elsewhere (a Dask worker, another start method) each worker process loads
    each model once, when a file first needs it."""
    if not opts.enabled:
        return
    load_model()
    if opts.ocr:
        ocr_available()  # (a missing Tesseract is said in each file's notes, as before)


def _dedupe(clues: list[Clue]) -> list[Clue]:
    seen: set[tuple[str, str]] = set()
    out = []
    for c in clues:
        if (c.kind, c.value) not in seen:
            seen.add((c.kind, c.value))
            out.append(c)
    return out


def picture_clues(gray: np.ndarray, source: str, opts: ClueOptions, notes: list[str]) -> list[Clue]:
    """OCR clues of one grey picture (an image or a video frame), when it looks like text."""
    if not opts.ocr:
        return []
    like = text_likeness(gray)
    if not like.likely or like.box is None:
        return []
    return _read_region(gray, like, 1.0, source, opts, notes)


def _read_region(
    gray: np.ndarray,
    like: TextLikeness,
    scale: float,
    source: str,
    opts: ClueOptions,
    notes: list[str],
) -> list[Clue]:
    """Read the region of ``like`` (found in a picture ``scale`` times the size of ``gray``), at
    most as large as Tesseract needs: its lines brought down to about :data:`OCR_LINE` px."""
    assert like.box is not None
    x0, y0, x1, y1 = (int(v / scale) for v in like.box)
    region = gray[y0 : y1 + 1, x0 : x1 + 1]
    shrink = OCR_LINE / (like.line_height / scale) if like.line_height else 1.0
    if shrink < 1.0 and min(region.shape) * shrink >= 8:
        size = (max(1, round(region.shape[1] * shrink)), max(1, round(region.shape[0] * shrink)))
        region = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
    try:
        # only the region with the text: Tesseract's page layout takes a textured photo for a
        # picture region and skips a small caption in its corner
        read = read_text(np.ascontiguousarray(region), turned=like.turned)
    except OcrUnavailable as exc:
        notes.append(f"no OCR: {exc}")
        return []
    notes.append(f"ocr {source}: {read.words} words")
    if not read.text:
        return []
    found = text_clues(read.text, source, opts.country)
    if _says_something(read.text):
        text = " ".join(read.text.split())
        excerpt = text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "…"
        found.append(Clue("text", excerpt, source, (), "", {"words": read.words}))
    return found


def _says_something(text: str) -> bool:
    """Two words of 2+ letters, or one of 4+: a lone "a 1" or "$" read in a photo's texture is no text."""
    words = [w for w in words_of(text) if len(w) >= 2]
    return len(words) >= 2 or any(len(w) >= 4 for w in words)


def image_clues(
    data: bytes | Callable[[], bytes],
    path: str,
    opts: ClueOptions,
    pixels: np.ndarray | None = None,
) -> FileClues:
    """The clues of one picture file.

    ``data``: its bytes, or a function that reads them (called only for a picture that passes the
    text-likeness test: it is then decoded again, at the size its text needs). ``pixels``: the
    picture as the scan's hash step already decoded it (``FileSignals.pixels``: RGB, long side at
    most 512), so that the test decodes nothing; without it the picture is decoded the same way."""
    out = FileClues(filename_clues(path))
    if not opts.enabled:
        return out
    if opts.ocr:
        try:
            out.clues.extend(_image_text_clues(data, path, pixels, opts, out.notes))
        except Exception as exc:  # undecodable: the hash record already says why
            out.notes.append(f"not read for clues: {type(exc).__name__}")
    out.clues = _dedupe(out.clues)
    return out


def _image_text_clues(
    data: bytes | Callable[[], bytes],
    path: str,
    pixels: np.ndarray | None,
    opts: ClueOptions,
    notes: list[str],
) -> list[Clue]:
    """The test on the small picture; only one that passes is decoded again, the region with its
    text at the scale it is read at (a JPEG by DCT scaling, for large text), and read."""
    read = data if callable(data) else lambda: data
    if pixels is None:
        pixels = decode_image(read(), where=path).rgb
    small = grey(pixels)
    like = text_likeness(small)
    if not like.likely or like.box is None:
        return []
    with Image.open(io.BytesIO(read())) as im:
        full = im.size[0] / small.shape[1]  # the picture's own pixels per small pixel
        # the scale the region is read at: large text needs no more than OCR_LINE px a line
        want = min(1.0, OCR_LINE / max(like.line_height * full, 1.0))
        if want < 1.0:
            im.draft("L", (math.ceil(im.size[0] * want), math.ceil(im.size[1] * want)))
        gray = np.asarray(im.convert("L"))
    # ``like`` is in small pixels: the decode is ``gray.shape[1] / small.shape[1]`` times larger
    return _read_region(gray, like, small.shape[1] / gray.shape[1], "ocr", opts, notes)


def video_clues(source: Any, path: str, opts: ClueOptions) -> FileClues:
    """``source``: a path or a binary stream PyAV can open."""
    out = FileClues(filename_clues(path))
    if not opts.enabled:
        return out
    try:
        import av

        with av.open(source) as container:
            out.clues.extend(_subtitle_clues(container, opts))
            out.clues.extend(_frame_clues(container, opts, out.notes))
        from opspoor.clues.speech import speech_plugin

        plugin = speech_plugin()
        if plugin is not None:
            if hasattr(source, "seek"):
                source.seek(0)
            out.clues.extend(_speech(source, plugin))
    except Exception as exc:  # a video the hasher could not read either: its record says so
        out.notes.append(f"video not read for clues: {type(exc).__name__}: {exc}")
    out.clues = _dedupe(out.clues)
    return out


def _subtitle_clues(container: Any, opts: ClueOptions) -> list[Clue]:
    out: list[Clue] = []
    for stream in container.streams.subtitles:
        parts: list[str] = []
        size = 0
        container.seek(0)
        for packet in container.demux(stream):
            for sub in packet.decode() if packet.size else ():
                for rect in getattr(sub, "rects", None) or [sub]:
                    text = _rect_text(rect)
                    if text:
                        parts.append(text)
                        size += len(text)
            if size > MAX_SUBTITLE_CHARS:
                break
        text = "\n".join(parts)
        lang = (stream.metadata or {}).get("language")
        source = f"subtitle#{stream.index}" + (f" ({lang})" if lang else "")
        out.extend(text_clues(text, source, opts.country))
    return out


def _rect_text(rect: Any) -> str:
    for attr in ("text", "ass", "dialogue"):
        value = getattr(rect, attr, None)
        if value:
            if isinstance(value, bytes):
                value = value.decode("utf-8", errors="replace")
            if attr in ("ass", "dialogue") and "," in value:
                value = value.split(",", 8)[-1]  # ASS: the text after the 8 fields
            return str(value).replace("\\N", " ").strip()
    return ""


def _frame_clues(container: Any, opts: ClueOptions, notes: list[str]) -> list[Clue]:
    if not opts.ocr or not container.streams.video:
        return []
    stream = container.streams.video[0]
    duration = float(stream.duration * stream.time_base) if stream.duration else None
    if duration is None and container.duration:
        duration = container.duration / 1_000_000
    out: list[Clue] = []
    for share in FRAME_POINTS:
        at = (duration or 0.0) * share
        try:
            container.seek(int(at / stream.time_base), stream=stream, any_frame=False, backward=True)
            frame = next(f for f in container.decode(stream) if f.time is None or f.time >= at - 0.5)
        except (StopIteration, Exception):  # noqa: BLE001 (a seek PyAV cannot do: fewer frames)
            continue
        gray = frame_array(frame, format="gray")
        out.extend(picture_clues(gray, f"frame@{at:.1f}s", opts, notes))
    return out


def _speech(source: Any, plugin: tuple[str, Any]) -> list[Clue]:
    import av

    from opspoor.clues.speech import MAX_SECONDS, RATE, speech_clues

    name, detect = plugin
    chunks: list[np.ndarray] = []
    with av.open(source) as container:
        if not container.streams.audio:
            return []
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        total = 0
        for frame in container.decode(container.streams.audio[0]):
            for out in resampler.resample(frame):
                arr = out.to_ndarray().reshape(-1)
                chunks.append(arr)
                total += arr.size
            if total >= MAX_SECONDS * RATE:
                break
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return speech_clues(samples[: int(MAX_SECONDS * RATE)], RATE, detect, name)
