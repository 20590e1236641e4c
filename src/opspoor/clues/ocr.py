"""Text in a picture, read with Tesseract (Debian's ``tesseract-ocr`` models) through ``tesserocr``.

tesserocr keeps one Tesseract engine per worker process (loading the models costs ~0.3 s; reading a
picture then costs 0.1-0.2 s), where pytesseract starts a ``tesseract`` process per picture.
Text turned 90° (:mod:`opspoor.clues.textlike` found its lines only in the turned picture) is read
both ways turned back, and the reading with more confident words is kept: Tesseract's own
orientation detection (``osd``, psm 0/1) gave no answer on the one or two lines a sign or a caption
has, so it is not relied on. Only words Tesseract is reasonably sure of are kept
(:data:`MIN_WORD_CONFIDENCE`), so that photo texture does not turn into words.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

#: the models read, when installed (the Debian packages tesseract-ocr-nld, -eng, -deu, -fra, -spa)
LANGUAGES = ("nld", "eng", "deu", "fra", "spa")
#: where Debian puts the models (Tesseract 5, then 4)
TESSDATA_DIRS = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata")
#: per-word confidence (0-100) below which a word is dropped
MIN_WORD_CONFIDENCE = 60
#: a reading with fewer confident words (but at least one) is tried again binarised (dark, then
#: light text)
ENOUGH_WORDS = 3
#: white margin around the region read (px)
BORDER = 24
#: larger pictures are reduced to this long side
MAX_SIDE = 2400
#: a region smaller than this (short side, px) is enlarged 2x: Tesseract reads small text badly
SMALL_SIDE = 120


@dataclass(frozen=True, slots=True)
class OcrText:
    text: str  # the kept words, in reading order, lines joined by newlines
    words: int
    mean_confidence: float


class OcrUnavailable(RuntimeError):
    """tesserocr or the Tesseract models are missing: said once, and the scan goes on without OCR."""


def tessdata_dir() -> str | None:
    for d in (os.environ.get("TESSDATA_PREFIX"), *TESSDATA_DIRS):
        if d and (Path(d) / "osd.traineddata").exists():
            return d
    return None


@functools.cache
def _engine() -> Any:
    try:
        import tesserocr
    except ImportError as exc:
        raise OcrUnavailable(f"tesserocr is not installed ({exc})") from None
    path = tessdata_dir()
    if path is None:
        raise OcrUnavailable("no Tesseract models (install tesseract-ocr and tesseract-ocr-osd)")
    have = [lang for lang in LANGUAGES if (Path(path) / f"{lang}.traineddata").exists()]
    if not have:
        raise OcrUnavailable(f"no Tesseract language models in {path}")
    return tesserocr.PyTessBaseAPI(path=path + "/", lang="+".join(have), psm=tesserocr.PSM.AUTO)


def ocr_available() -> str | None:
    """None when OCR works here, else why not (one line)."""
    try:
        _engine()
    except OcrUnavailable as exc:
        return str(exc)
    return None


def read_text(gray: np.ndarray, turned: bool = False) -> OcrText:
    """The words Tesseract reads in a grey (H, W) uint8 image (``turned``: its text runs up or down
    the picture). ``OcrUnavailable`` if it cannot."""
    img = Image.fromarray(gray)
    if max(img.size) > MAX_SIDE:
        img.thumbnail((MAX_SIDE, MAX_SIDE))
    elif min(img.size) < SMALL_SIDE and max(img.size) * 2 <= MAX_SIDE:
        img = img.resize((img.width * 2, img.height * 2), Image.Resampling.LANCZOS)
    turns = (Image.Transpose.ROTATE_270, Image.Transpose.ROTATE_90) if turned else (None,)
    best = OcrText("", 0, 0.0)
    for binarise in (None, "dark", "light"):
        for t in turns:
            im = img.transpose(t) if t is not None else img
            read = _read(_binarised(im, binarise) if binarise else im)
            if read.words * read.mean_confidence > best.words * best.mean_confidence:
                best = read
        # a plain reading that kept no word at all is not tried again: on bench/clues.py the
        # retries after nothing rescued 1 of 300 text pictures, but tripled the cost of every
        # photo the text-likeness test sends to OCR by mistake
        if best.words >= ENOUGH_WORDS or not best.words:
            break
    return best


def _binarised(img: Image.Image, ink: str) -> Image.Image:
    """Black text on white by a local threshold: Tesseract's global one fails on text on a light
    box on a mid-grey photo (it reads nothing), and on light text on a dark frame."""
    import cv2

    gray = np.asarray(img)
    if ink == "light":
        gray = 255 - gray
    block = max(15, (min(gray.shape) // 2) | 1)
    return Image.fromarray(
        cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, block, 15)
    )


def _read(img: Image.Image) -> OcrText:
    import tesserocr
    from PIL import ImageOps

    api = _engine()
    # a margin: text running into the region's edge is misread (digits dropped at a line's end)
    api.SetImage(ImageOps.expand(img, BORDER, fill=255))
    api.Recognize()
    it = api.GetIterator()
    lines: list[list[str]] = []
    confs: list[float] = []
    level = tesserocr.RIL.WORD
    if it is not None:
        while True:
            try:
                word, conf = it.GetUTF8Text(level), it.Confidence(level)
            except RuntimeError:  # "No text returned": an empty word box
                word, conf = "", 0.0
            if word and word.strip() and conf >= MIN_WORD_CONFIDENCE:
                if it.IsAtBeginningOf(tesserocr.RIL.TEXTLINE) or not lines:
                    lines.append([])
                lines[-1].append(word.strip())
                confs.append(conf)
            if not it.Next(level):
                break
    api.Clear()
    text = "\n".join(" ".join(line) for line in lines if line)
    return OcrText(text, len(confs), float(np.mean(confs)) if confs else 0.0)
