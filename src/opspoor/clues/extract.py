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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from opspoor.clues import text_clues
from opspoor.clues.filenames import filename_clues
from opspoor.clues.language import words_of
from opspoor.clues.model import SNIPPET, Clue
from opspoor.clues.ocr import OcrUnavailable, read_text
from opspoor.clues.textlike import WORK_SIDE, text_likeness

#: frames looked at per video (at these shares of its length)
FRAME_POINTS = (0.1, 0.5, 0.9)
#: subtitle text read per video (characters): enough for the language and a few numbers
MAX_SUBTITLE_CHARS = 20_000


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
    return _read_region(gray, like.box, like.turned, source, opts, notes)


def _read_region(
    gray: np.ndarray,
    box: tuple[int, int, int, int],
    turned: bool,
    source: str,
    opts: ClueOptions,
    notes: list[str],
) -> list[Clue]:
    try:
        x0, y0, x1, y1 = box
        # only the region with the text: Tesseract's page layout takes a textured photo for a
        # picture region and skips a small caption in its corner
        read = read_text(gray[y0:y1, x0:x1], turned=turned)
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


def image_clues(data: bytes, path: str, opts: ClueOptions) -> FileClues:
    out = FileClues(filename_clues(path))
    if not opts.enabled:
        return out
    if opts.ocr:
        try:
            out.clues.extend(_image_text_clues(data, opts, out.notes))
        except Exception as exc:  # undecodable: the hash record already says why
            out.notes.append(f"not read for clues: {type(exc).__name__}")
    out.clues = _dedupe(out.clues)
    return out


def _image_text_clues(data: bytes, opts: ClueOptions, notes: list[str]) -> list[Clue]:
    """The test on a small grey decode (a JPEG is decoded straight to about WORK_SIDE by DCT
    scaling: a few ms); only a picture that passes is decoded whole, and its text region read."""
    with Image.open(io.BytesIO(data)) as im:
        full_size = im.size
        im.draft("L", (WORK_SIDE, WORK_SIDE))
        small = im.convert("L")
    if max(small.size) > WORK_SIDE:
        small.thumbnail((WORK_SIDE, WORK_SIDE))
    like = text_likeness(np.asarray(small))
    if not like.likely or like.box is None:
        return []
    with Image.open(io.BytesIO(data)) as im:
        gray = np.asarray(im.convert("L"))
    sx, sy = full_size[0] / small.width, full_size[1] / small.height
    x0, y0, x1, y1 = like.box
    box = (
        int(x0 * sx),
        int(y0 * sy),
        min(gray.shape[1], int(x1 * sx) + 1),
        min(gray.shape[0], int(y1 * sy) + 1),
    )
    return _read_region(gray, box, like.turned, "ocr", opts, notes)


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
        gray = frame.to_ndarray(format="gray")
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
