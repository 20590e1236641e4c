"""A cheap test for text-like structure, so that OCR runs only where there may be text.

Text is rows of small, high-contrast strokes: the morphological gradient of the grey image,
thresholded and closed along the row, gives boxes that are much wider than tall, of the height of
letters, and densely filled, in which strokes and gaps alternate along the row as letters do (the
grain of rock, glints on water and star fields fill such boxes too, but change far less often).
A picture with at least one such box is worth OCR. The scan hands the test the picture it already
decoded for PDQ (long side at most :data:`WORK_SIDE`), so the test decodes nothing
(bench/clues.py measures what it costs), and its mistakes cost a second decode and an OCR run
that finds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from opspoor.media.image import PDQ_TARGET

#: the long side the test works at: the size the scan decodes every picture to for PDQ (text of
#: 40 px on a 2000 px photo is still 10 px here). Larger pictures are scaled down to it
WORK_SIDE = PDQ_TARGET
#: a text line's height at the working size (px), and how much wider than tall it must be
MIN_H, MAX_H = 5, 60
MIN_ASPECT = 2.5
#: share of the line box covered by strokes
MIN_FILL = 0.45
#: contrast a stroke edge must have (0-255), so that soft photo texture is no text
MIN_EDGE = 48
#: a box counts alone when this much wider than tall (a line of text); a shorter one (a word) only
#: next to another of about its height on the same row, as words of a line stand
LINE_ASPECT = 6.0
#: share of a line box that is stroke edges before closing: letters leave gaps, bars and grain do not
MIN_STROKES, MAX_STROKES = 0.25, 0.85
#: stroke edges a picture needs before its lines are looked for: one line of the smallest size
MIN_STROKE_PIXELS = int(MIN_STROKES * MIN_ASPECT * MIN_H * MIN_H)
#: along a line's middle rows, changes between stroke and gap per line height of its length
MIN_TRANSITIONS = 1.4

_GRADIENT = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))  # symmetric: the same turned 90°
_ALONG_ROW = cv2.getStructuringElement(cv2.MORPH_RECT, (9, 1))
_ALONG_COLUMN = cv2.getStructuringElement(cv2.MORPH_RECT, (1, 9))


Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in the picture's pixels


@dataclass(frozen=True, slots=True)
class TextLikeness:
    lines: int  # boxes that look like lines of text
    likely: bool
    #: the lines run up or down the picture (found in it turned 90°)
    turned: bool = False
    #: the region holding every text-like line, with a margin (in the picture's own pixels)
    box: Box | None = None
    #: the lines' median height across their run (in the picture's own pixels): how large the text is
    line_height: float = 0.0


def grey(pixels: np.ndarray) -> np.ndarray:
    """A grey (H, W) uint8 view of an RGB (H, W, 3) or grey picture."""
    if pixels.ndim == 3:
        return cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY)
    return pixels


def text_likeness(gray: np.ndarray) -> TextLikeness:
    """How many text-line-like boxes a grey (H, W) uint8 image holds, and where."""
    h, w = gray.shape[:2]
    scale = min(1.0, WORK_SIDE / max(h, w))
    if scale < 1.0:
        gray = cv2.resize(
            gray, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA
        )
    gray = cv2.GaussianBlur(gray, (3, 3), 0)  # sensor grain is no stroke
    # the strokes once: edges above Otsu's threshold and at least MIN_EDGE (one pass, no mask)
    grad = cv2.morphologyEx(gray, cv2.MORPH_GRADIENT, _GRADIENT)
    otsu, _ = cv2.threshold(grad, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    _, bw = cv2.threshold(grad, max(otsu, MIN_EDGE - 1), 255, cv2.THRESH_BINARY)
    if cv2.countNonZero(bw) < MIN_STROKE_PIXELS:  # a plain picture: not one line's worth of strokes
        return TextLikeness(0, False)
    # closed along the rows, and along the columns for text turned 90°
    flat = _lines(bw, turned=False)
    up = _lines(bw, turned=True)
    turned = len(up) > len(flat)
    found = [(y0, x0, y1, x1) for x0, y0, x1, y1 in up] if turned else flat
    if not found:
        return TextLikeness(0, False)
    x0, y0 = min(b[0] for b in found), min(b[1] for b in found)
    x1, y1 = max(b[2] for b in found), max(b[3] for b in found)
    heights = [b[2] - b[0] if turned else b[3] - b[1] for b in found]
    # a tight margin: more of a photo around a caption makes Tesseract's own binarisation fail
    pad = max(2, int(0.4 * max(heights)))
    box = (
        max(0, int((x0 - pad) / scale)),
        max(0, int((y0 - pad) / scale)),
        min(w, int((x1 + pad) / scale) + 1),
        min(h, int((y1 + pad) / scale) + 1),
    )
    return TextLikeness(len(found), True, turned, box, float(np.median(heights)) / scale)


def _lines(bw: np.ndarray, turned: bool) -> list[Box]:
    """The text-line-like boxes of ``bw``; ``turned``: of lines running up or down, as boxes in the
    picture turned 90° (x along the line)."""
    closed = cv2.morphologyEx(bw, cv2.MORPH_CLOSE, _ALONG_COLUMN if turned else _ALONG_ROW)
    # 16-bit labels: several times faster than 32-bit here, and enough: after closing along the row
    # a WORK_SIDE picture cannot hold 65,535 separate boxes
    n, _, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8, ltype=cv2.CV_16U)
    x, y, bw_, bh, area = (stats[1:n, i].astype(np.int64) for i in range(5))
    if turned:  # (the same components as in the picture turned, so the same boxes, without turning it)
        x, y, bw_, bh = y, x, bh, bw_
    shape = (bh >= MIN_H) & (bh <= MAX_H) & (bw_ >= MIN_ASPECT * bh) & (area >= MIN_FILL * bw_ * bh)
    lines: list[Box] = []
    for i in np.flatnonzero(shape):  # a few boxes: the letter-shaped ones of a photo
        x0, y0, x1, y1 = int(x[i]), int(y[i]), int(x[i] + bw_[i]), int(y[i] + bh[i])
        strokes = bw[x0:x1, y0:y1].T if turned else bw[y0:y1, x0:x1]
        inner = float(strokes.mean()) / 255.0
        if MIN_STROKES <= inner <= MAX_STROKES and _letters_along(strokes):
            lines.append((x0, y0, x1, y1))
    return [b for b in lines if _in_a_line(b, lines)]


def _letters_along(strokes: np.ndarray) -> bool:
    """Letters side by side: along the middle rows of a line, strokes and gaps alternate (at least
    :data:`MIN_TRANSITIONS` changes per line height of its length); the grain of rock, water or a
    star field that happens to fill a line-shaped box changes far less often."""
    h, w = strokes.shape
    mid = strokes[h // 4 : h - h // 4] if h >= 4 else strokes
    changes = np.count_nonzero(mid[:, 1:] != mid[:, :-1]) / mid.shape[0]
    return changes >= MIN_TRANSITIONS * w / h


def _in_a_line(box: Box, boxes: list[Box]) -> bool:
    x0, y0, x1, y1 = box
    h = y1 - y0
    if x1 - x0 >= LINE_ASPECT * h:
        return True
    for o in boxes:
        if o is box:
            continue
        oh = o[3] - o[1]
        same_row = abs((o[1] + o[3]) - (y0 + y1)) <= h and 0.6 * h <= oh <= 1.6 * h
        near = max(o[0] - x1, x0 - o[2]) <= 3 * h
        if same_row and near:
            return True
    return False
