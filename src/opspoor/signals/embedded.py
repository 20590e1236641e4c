"""Pictures shown inside a larger canvas (a screenshot, a frame, a page): where they are, so that
the query side can hash them alone (``signals.robust``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: a region is hashed only if at least this many pixels on each side (PDQ needs structure)
MIN_REGION_PX = 32
Box = tuple[int, int, int, int]  # left, top, right, bottom (exclusive), in pixels of the array given


def crop(a: np.ndarray, box: Box) -> np.ndarray:
    """The pixels of ``a`` (H, W, ...) inside ``box``, as a contiguous copy."""
    return np.ascontiguousarray(a[box[1] : box[3], box[0] : box[2]])


# --- embedded pictures --------------------------------------------------------------------------

#: step (0-255) in any colour channel across a line for it to count as an edge of a picture
EDGE_STEP = 5.0
#: luma change to the right and lower neighbours (summed) up to which a pixel is flat canvas
FLAT_STEP = 4.0
#: share of a side that must lie on a canvas edge
SIDE_SUPPORT = 0.6
#: candidate lines per axis
MAX_LINES = 16
#: width of the strip outside each side, and its largest luma standard deviation (uniform canvas)
STRIP = 4
CANVAS_STD = 5.0
#: differences in mean luma between the strips outside a box's sides below this count as equal
CANVAS_SPREAD_STEP = 2.0


def find_embedded(rgb: np.ndarray) -> list[Box]:
    """Boxes of a picture shown inside a larger canvas (screenshot, frame, page): none, one or two.

    A picture's side is a *canvas edge*: a colour step along a straight line with flat canvas on one
    side (small gaps bridged, for where the picture's border happens to match the canvas). The
    longest such lines are candidates; a box is valid if both sides of one axis lie on canvas edges
    (``SIDE_SUPPORT`` of their length, uniform strip outside) and the other axis does the same or
    spans the image (a photo across a phone screen, a letterbox). Window chrome may nest valid
    boxes (the viewer's content area around the picture and its margin), and a picture with plain
    areas may hold smaller ones, so the smallest and the largest valid box are both returned.
    """
    height, width = rgb.shape[:2]
    if min(height, width) < 4 * MIN_REGION_PX:
        return []
    luma = rgb[:, :, :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    flat = _flat(luma)
    colour = rgb[:, :, :3].astype(np.float32)
    rows_edge = _canvas_edges(colour, flat)  # (H+1, W): edge between row y-1 and row y
    cols_edge = _canvas_edges(colour.transpose(1, 0, 2), flat.T)  # (W+1, H)
    ys = _candidate_lines(rows_edge, height)
    xs = _candidate_lines(cols_edge, width)
    if len(ys) < 3 and len(xs) < 3:  # at most the image edges plus one line: no closed box
        return []
    boxes = [_refine(colour, box) for box in _valid_boxes(ys, xs, rows_edge, cols_edge, _Integral(luma))]
    return list(dict.fromkeys(boxes))


def _refine(colour: np.ndarray, box: Box) -> Box:
    """Move each side (not on the image border) by up to 2 px to the sharpest one-pixel step.

    Candidate lines come from two-row means, so they can sit a pixel or two outside the picture;
    a row of canvas left in the box costs PDQ several bits. ``colour``: (H, W, channels) float32.
    """
    x0, y0, x1, y1 = box
    h, w = colour.shape[:2]

    def best(pos: int, size: int, step: Callable[[int], float]) -> int:
        if pos <= 0 or pos >= size:
            return pos
        cands = range(max(1, pos - 2), min(size - 1, pos + 2) + 1)
        return max(cands, key=step)

    def rows(y: int) -> float:
        return float(np.abs(colour[y, x0:x1] - colour[y - 1, x0:x1]).max(axis=-1).sum())

    def cols(x: int) -> float:
        return float(np.abs(colour[y0:y1, x] - colour[y0:y1, x - 1]).max(axis=-1).sum())

    y0, y1 = best(y0, h, rows), best(y1, h, rows)
    x0, x1 = best(x0, w, cols), best(x1, w, cols)
    return (x0, y0, x1, y1)


def _flat(luma: np.ndarray) -> np.ndarray:
    g = np.zeros(luma.shape, dtype=np.float32)
    g[:, :-1] += np.abs(np.diff(luma, axis=1))
    g[:-1, :] += np.abs(np.diff(luma, axis=0))
    return g <= FLAT_STEP


def _canvas_edges(colour: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """Boolean (H+1, W): at boundary y, a step of ``EDGE_STEP`` in any channel between the two rows
    above and the two below (a navy sky on a dark grey canvas differs in colour more than in
    luma), with flat pixels 3 and 4 rows away on one side (clear of the blur of scaling and JPEG).
    ``colour``: (H, W, channels) float32."""
    h = colour.shape[0]
    out = np.zeros((h + 1, colour.shape[1]), dtype=bool)
    if h < 10:
        return out
    above = (colour[:-3] + colour[1:-2]) * 0.5  # rows y-2, y-1 for y = 2 .. h-2
    below = (colour[2:-1] + colour[3:]) * 0.5  # rows y, y+1
    out[2 : h - 1] = np.abs(below - above).max(axis=2) >= EDGE_STEP
    canvas = np.zeros_like(out)
    two = flat[:-1] & flat[1:]  # two[k] = rows k and k+1 flat
    canvas[5 : h - 3] = two[1 : h - 7] | two[7 : h - 1]  # rows y-4, y-3 or rows y+3, y+4
    return _bridge(out & canvas, 3)


def _bridge(mask: np.ndarray, gap: int) -> np.ndarray:
    """Binary closing along axis 1: gaps up to ``2 * gap`` pixels between True runs are filled."""
    return ~_dilate(~_dilate(mask, gap), gap)


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    c = np.zeros((mask.shape[0], mask.shape[1] + 1), dtype=np.int32)
    np.cumsum(mask, axis=1, out=c[:, 1:])
    n = mask.shape[1]
    lo = np.clip(np.arange(n) - r, 0, n)
    hi = np.clip(np.arange(n) + r + 1, 0, n)
    return (c[:, hi] - c[:, lo]) > 0


def _longest_runs(mask: np.ndarray) -> np.ndarray:
    """Length of the longest run of True in each row."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    step = np.diff(padded, axis=1)
    srow, scol = np.nonzero(step == 1)
    _, ecol = np.nonzero(step == -1)
    out = np.zeros(mask.shape[0], dtype=np.int64)
    np.maximum.at(out, srow, ecol - scol)
    return out


def _candidate_lines(edges: np.ndarray, size: int) -> np.ndarray:
    """Positions of the longest canvas edges (local maxima), plus the two image borders."""
    runs = _longest_runs(edges)
    keep = runs >= max(MIN_REGION_PX, 0.2 * edges.shape[1])
    # non-maximum suppression over +-2 lines: a blurred edge fires on neighbouring rows
    local_max = np.max(np.lib.stride_tricks.sliding_window_view(np.pad(runs, 2), 5), axis=1)
    peaks = np.nonzero(keep & (runs >= local_max))[0]
    peaks = peaks[(peaks >= 2) & (peaks <= size - 2)]
    chosen: list[int] = []
    for p in peaks[np.argsort(-runs[peaks], kind="stable")]:
        if all(abs(int(p) - q) > 2 for q in chosen):
            chosen.append(int(p))
        if len(chosen) == MAX_LINES:
            break
    return np.array(sorted({0, size, *chosen}), dtype=np.int64)


class _Integral:
    """Integral images of luma and luma squared: standard deviation of any box in O(1)."""

    def __init__(self, luma: np.ndarray) -> None:
        self.h, self.w = luma.shape
        v = luma.astype(np.float64)
        self.s = np.zeros((self.h + 1, self.w + 1), dtype=np.float64)
        self.s2 = np.zeros_like(self.s)
        self.s[1:, 1:] = v.cumsum(axis=0).cumsum(axis=1)
        self.s2[1:, 1:] = (v * v).cumsum(axis=0).cumsum(axis=1)

    def stats(
        self, y0: np.ndarray, y1: np.ndarray, x0: np.ndarray, x1: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of boxes [y0, y1) x [x0, x1) (broadcast, clipped; empty = NaN)."""
        y0, y1 = np.clip(y0, 0, self.h), np.clip(y1, 0, self.h)
        x0, x1 = np.clip(x0, 0, self.w), np.clip(x1, 0, self.w)
        n = np.maximum(y1 - y0, 0) * np.maximum(x1 - x0, 0)

        def box(a: np.ndarray) -> np.ndarray:
            return a[y1, x1] - a[y0, x1] - a[y1, x0] + a[y0, x0]

        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(n > 0, box(self.s) / n, np.nan)
            var = box(self.s2) / n - mean * mean
            return mean, np.where(n > 0, np.sqrt(np.maximum(var, 0.0)), np.nan)


def _side_support(edges: np.ndarray, lines: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """(L, C, C): share of the span [cuts[i], cuts[j]) on each line that lies on an edge."""
    c = np.zeros((edges.shape[0], edges.shape[1] + 1), dtype=np.int64)
    np.cumsum(edges, axis=1, out=c[:, 1:])
    on = c[lines][:, cuts]  # (L, C)
    span = cuts[None, :] - cuts[:, None]  # (C, C)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (on[:, None, :] - on[:, :, None]) / np.where(span > 0, span, 1)[None]


def _side(support: np.ndarray, outside_std: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (support >= SIDE_SUPPORT) & (outside_std <= CANVAS_STD)


def _valid_boxes(
    ys: np.ndarray, xs: np.ndarray, rows_edge: np.ndarray, cols_edge: np.ndarray, strips: _Integral
) -> list[Box]:
    height, width = strips.h, strips.w
    # indices t < b into ys and lo < r into xs, broadcast as (t, b, lo, r)
    t, b, lo, r = np.ix_(np.arange(len(ys)), np.arange(len(ys)), np.arange(len(xs)), np.arange(len(xs)))
    y0, y1, x0, x1 = ys[t], ys[b], xs[lo], xs[r]
    horiz = _side_support(rows_edge, ys, xs)  # (Ly, Lx, Lx): line ys[i], span xs[l]..xs[r]
    vert = _side_support(cols_edge, xs, ys)  # (Lx, Ly, Ly)
    # the strip outside each side, clear of the blurred edge and of the corners
    g, k = 2, STRIP
    ya, yb, xa, xb = y0 + 3, y1 - 3, x0 + 3, x1 - 3
    outside = (
        strips.stats(y0 - g - k, y0 - g, xa, xb),
        strips.stats(y1 + g, y1 + g + k, xa, xb),
        strips.stats(ya, yb, x0 - g - k, x0 - g),
        strips.stats(ya, yb, x1 + g, x1 + g + k),
    )
    top = _side(horiz[t, lo, r], outside[0][1])
    bottom = _side(horiz[b, lo, r], outside[1][1])
    left = _side(vert[lo, t, b], outside[2][1])
    right = _side(vert[r, t, b], outside[3][1])
    # each axis: both sides on canvas edges, or both on the image border; never one of each,
    # which would let a box grow from the picture into the window chrome
    rows_real = top & bottom & (y0 > 0) & (y1 < height)
    cols_real = left & right & (x0 > 0) & (x1 < width)
    rows_ok = rows_real | ((y0 == 0) & (y1 == height))
    cols_ok = cols_real | ((x0 == 0) & (x1 == width))
    h, w = y1 - y0, x1 - x0
    area = h * w
    shape_ok = (h >= max(MIN_REGION_PX, 0.25 * height)) & (w >= max(MIN_REGION_PX, 0.25 * width))
    size_ok = (area >= 0.1 * height * width) & (area <= 0.92 * height * width)
    valid = rows_ok & cols_ok & (rows_real | cols_real) & shape_ok & size_ok
    if not valid.any():
        return []
    # one canvas around the picture: the strips outside its sides have the same colour. The box
    # whose outside strips agree best wins (a viewer's content area is bounded by toolbar, status
    # bar and side panel, each of its own shade); among equals, the one with more sides on the
    # canvas (not stretched to the image border across a side panel), then the largest
    shape = valid.shape
    means = np.stack([np.broadcast_to(m, shape) for m, _ in outside])
    nan = np.isnan(means)
    spread = np.where(nan, -np.inf, means).max(axis=0) - np.where(nan, np.inf, means).min(axis=0)
    sides = 2 * (rows_real.astype(np.int64) + cols_real)  # 2 or 4 sides on the canvas
    bucket = np.floor(np.where(valid, spread, np.inf) / CANVAS_SPREAD_STEP)
    key = (bucket * 8 - sides) * (height * width + 1) - area
    largest = np.where(valid, -key, -np.inf)
    smallest = np.where(valid, area, np.iinfo(np.int64).max)
    out: list[Box] = []
    for flat_index in (int(np.argmax(largest)), int(np.argmin(smallest))):
        i = np.unravel_index(flat_index, shape)
        box = (int(xs[i[2]]), int(ys[i[0]]), int(xs[i[3]]), int(ys[i[1]]))
        if box not in out:
            out.append(box)
    return out
