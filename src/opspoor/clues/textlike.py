"""A cheap test for text-like structure, so that OCR runs only where there may be text.

Text is rows of small, high-contrast strokes: the morphological gradient of the grey image,
thresholded and closed along the row, gives boxes that are much wider than tall, of the height of
letters, and densely filled. A picture with at least one such box is worth OCR. The test works on
the image scaled to at most :data:`WORK_SIDE` pixels and costs about a millisecond or two
(bench/clues.py measures it); its mistakes cost only an OCR run that finds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: the long side the test works at (text of 30 px on a 2000 px photo is still 10 px here); the
#: scan decodes JPEGs straight to about this size (DCT scaling), so the test costs a few ms
WORK_SIDE = 640
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


Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in the picture's pixels


@dataclass(frozen=True, slots=True)
class TextLikeness:
    lines: int  # boxes that look like lines of text
    likely: bool
    #: the lines run up or down the picture (found in it turned 90°)
    turned: bool = False
    #: the region holding every text-like line, with a margin (in the picture's own pixels)
    box: Box | None = None


def text_likeness(gray: np.ndarray) -> TextLikeness:
    """How many text-line-like boxes a grey (H, W) uint8 image holds, and where."""
    h, w = gray.shape[:2]
    scale = min(1.0, WORK_SIDE / max(h, w))
    if scale < 1.0:
        gray = cv2.resize(
            gray, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA
        )
    gray = cv2.GaussianBlur(gray, (3, 3), 0)  # sensor grain is no stroke
    flat = _lines(gray)
    up = _lines(np.ascontiguousarray(gray.T))  # text turned 90°
    turned = len(up) > len(flat)
    found = [(y0, x0, y1, x1) for x0, y0, x1, y1 in up] if turned else flat
    if not found:
        return TextLikeness(0, False)
    x0, y0 = min(b[0] for b in found), min(b[1] for b in found)
    x1, y1 = max(b[2] for b in found), max(b[3] for b in found)
    # a tight margin: more of a photo around a caption makes Tesseract's own binarisation fail
    pad = max(2, int(0.4 * max(b[2] - b[0] if turned else b[3] - b[1] for b in found)))
    box = (
        max(0, int((x0 - pad) / scale)),
        max(0, int((y0 - pad) / scale)),
        min(w, int((x1 + pad) / scale) + 1),
        min(h, int((y1 + pad) / scale) + 1),
    )
    return TextLikeness(len(found), True, turned, box)


def _lines(gray: np.ndarray) -> list[Box]:
    grad = cv2.morphologyEx(gray, cv2.MORPH_GRADIENT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    _, bw = cv2.threshold(grad, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    bw[grad < MIN_EDGE] = 0
    closed = cv2.morphologyEx(bw, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (9, 1)))
    n, _, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    lines: list[Box] = []
    for i in range(1, n):
        x, y, bw_, bh, area = (int(v) for v in stats[i])
        if MIN_H <= bh <= MAX_H and bw_ >= MIN_ASPECT * bh and area >= MIN_FILL * bw_ * bh:
            inner = float(bw[y : y + bh, x : x + bw_].mean()) / 255.0
            if MIN_STROKES <= inner <= MAX_STROKES:  # letters have gaps; a solid bar has none
                lines.append((x, y, x + bw_, y + bh))
    return [b for b in lines if _in_a_line(b, lines)]


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
