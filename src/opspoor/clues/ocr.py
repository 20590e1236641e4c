"""Text in a picture, read with Tesseract (Debian's ``tesseract-ocr`` models) through ``tesserocr``.

tesserocr keeps one Tesseract engine per worker process (loading the models costs ~0.3 s; reading a
picture then costs 0.1-0.2 s), where pytesseract starts a ``tesseract`` process per picture.
Pictures whose text-like lines stand upright (:mod:`opspoor.clues.textlike` found them only turned
90°) are read with script and orientation detection (``osd``), which costs another 0.2-0.4 s, so
only they pay for it. Only words Tesseract is reasonably sure of are kept
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
#: Tesseract reads text of 20-40 px best: smaller pictures are enlarged, larger ones reduced
MAX_SIDE = 2400


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
def _engine(osd: bool = False) -> Any:
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
    psm = tesserocr.PSM.AUTO_OSD if osd else tesserocr.PSM.AUTO
    return tesserocr.PyTessBaseAPI(path=path + "/", lang="+".join(have), psm=psm)


def ocr_available() -> str | None:
    """None when OCR works here, else why not (one line)."""
    try:
        _engine()
    except OcrUnavailable as exc:
        return str(exc)
    return None


def read_text(gray: np.ndarray, osd: bool = False) -> OcrText:
    """The words Tesseract reads in a grey (H, W) uint8 image (``osd``: find the text's orientation
    first). ``OcrUnavailable`` if it cannot."""
    import tesserocr

    api = _engine(osd)
    img = Image.fromarray(gray)
    if max(img.size) > MAX_SIDE:
        img.thumbnail((MAX_SIDE, MAX_SIDE))
    api.SetImage(img)
    api.Recognize()
    it = api.GetIterator()
    lines: list[list[str]] = []
    confs: list[float] = []
    level = tesserocr.RIL.WORD
    if it is not None:
        while True:
            word = it.GetUTF8Text(level)
            conf = it.Confidence(level)
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
