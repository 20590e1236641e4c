"""PDQ: Meta's 256-bit perceptual image hash, reimplemented in NumPy (+ numba kernels).

The core follows Meta's C++ (``pdq/cpp/hashing/pdqhashing.cpp``, ``downscaling.cpp``) step by step
and in the same float32 arithmetic, so that on the same pixels it reproduces ``pdqhash.compute``
bit for bit (the tests check this on hundreds of generated images):

1. luma = 0.299 R + 0.587 G + 0.114 B (computed in double, stored as float32, as ``pdqhash`` does);
2. two X,Y passes of Meta's 1-D box filter (Jarosz: two box passes make a tent filter), window
   ``ceil(size / 128)`` per axis, with Meta's four phases at the edges and its float32 running sum;
3. decimate to 64x64, sampling the centre of each cell (``int((i + 0.5) * n / 64)``);
4. quality = sum of quantised neighbour gradients of the 64x64 image / 90, capped at 100;
5. 16x64 DCT matrix (DC row dropped), B = D A D^T, 16x16 coefficients;
6. bit = coefficient > median (Torben's median of 256 values = the 128th smallest);
   bit ``k = 16 i + j`` for coefficient ``(i, j)``; hex is the 256-bit number, most significant
   nibble first, lower case (what python-threatexchange prints from ``pdqhash``'s vector).

**Canonical pipeline** (``pdq_hash_image``): the image is decoded by :func:`opspoor.media.image.decode_image`,
which converts it to RGB and scales it down to fit within 512x512, keeping the aspect ratio, with an
anti-aliasing filter, as Meta's Python port does with Pillow's ``thumbnail((512, 512))``; JPEGs are
decoded at a reduced DCT scale first (never below the 512 px target). Then steps 1-6 above.
See docs/pdq.md for the conformance bounds and the pre-scale disagreement among Meta's tools.

The eight dihedral variants are sign/transpose patterns of the 16x16 DCT coefficients (a DCT basis
function of odd index changes sign under a flip), so they cost no re-hashing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from opspoor.errors import SignalError
from opspoor.signals.base import SignalType

if TYPE_CHECKING:
    from opspoor.media.image import DecodedImage

#: Meta's MIN_HASHABLE_DIM: smaller images get the all-zero hash with quality 0
MIN_HASHABLE_DIM = 5
#: names of the dihedral variants, in the order of ``pdq_with_dihedral`` (and of Meta's tools)
DIHEDRAL_NAMES = ("original", "rot90", "rot180", "rot270", "flipx", "flipy", "transpose", "transverse")
ZERO_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class PdqHash:
    hash: str  # 64 lower-case hex, Meta's format
    quality: int  # 0..100


class PDQ(SignalType):
    name = "pdq"
    media = frozenset({"image"})
    default_threshold = 31
    hex_length = 64
    index = "hamming"

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        """Hamming distance of two 64-hex PDQ values."""
        try:
            return (int(a, 16) ^ int(b, 16)).bit_count()
        except ValueError:
            raise SignalError(f"pdq value is not hexadecimal: {a[:80]!r} / {b[:80]!r}") from None


# --------------------------------------------------------------------------------------------
# numba kernels. numba is used because bit-exactness with Meta's C++ needs its *sequential*
# float32 running sums (a cumsum or BLAS matmul rounds differently and flips bits near the median),
# and a Python loop over pixels would be ~1000x too slow. No fastmath: the order of operations matters.


def _dct_matrix() -> np.ndarray:
    """Meta's 16x64 DCT-II matrix without the DC row, float32 as in the C++ (scale is a float)."""
    scale = float(np.float32(math.sqrt(2.0 / 64.0)))
    i = np.arange(1, 17, dtype=np.float64)[:, None]
    j = np.arange(64, dtype=np.float64)[None, :]
    return (scale * np.cos((math.pi / 2.0 / 64.0) * i * (2.0 * j + 1.0))).astype(np.float32)


_DCT = _dct_matrix()


@njit(cache=True, nogil=True)
def _luma_from_rgb(rgb: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    # pdqhash computes (R*0.299 + G*0.587 + B*0.114) in double and stores float32
    h, w = rgb.shape[0], rgb.shape[1]
    out = np.empty((h, w), dtype=np.float32)
    for y in range(h):
        for x in range(w):
            v = float(rgb[y, x, 0]) * 0.299 + float(rgb[y, x, 1]) * 0.587
            v = v + float(rgb[y, x, 2]) * 0.114
            out[y, x] = np.float32(v)
    return out


@njit(cache=True, nogil=True, inline="always")
def _box_phases(n: int, window: int) -> tuple[int, int, int, int]:  # pragma: no cover - compiled
    """Meta's box1DFloat phases over ``n`` values: fill the window's first half, widen it to the
    full window while writing, slide it, shrink it at the end (Meta's integer arithmetic)."""
    half = (window + 2) // 2
    return half - 1, window - half + 1, n - window, half - 1


@njit(cache=True, nogil=True)
def _box_cols(
    src: np.ndarray, dst: np.ndarray, window: int, upside_down: bool = False
) -> None:  # pragma: no cover
    """Meta's box1DFloat down each column, run for all columns at once (row-major friendly).

    ``upside_down`` filters ``src[::-1]`` (without copying it): row ``k`` is read as row ``n - 1 - k``.
    """
    n, cols = src.shape
    p1, p2, p3, p4 = _box_phases(n, window)
    first, step = (n - 1, -1) if upside_down else (0, 1)
    s = np.zeros(cols, dtype=np.float32)
    cw = 0
    li = 0
    ri = 0
    oi = 0
    for _ in range(p1):
        a = first + step * ri
        for c in range(cols):
            s[c] += src[a, c]
        cw += 1
        ri += 1
    for _ in range(p2):
        cw += 1
        d = np.float32(cw)
        a = first + step * ri
        for c in range(cols):
            s[c] += src[a, c]
            dst[oi, c] = s[c] / d
        ri += 1
        oi += 1
    d = np.float32(cw)
    for _ in range(p3):
        a, b = first + step * ri, first + step * li
        for c in range(cols):
            s[c] += src[a, c]
            s[c] -= src[b, c]
            dst[oi, c] = s[c] / d
        li += 1
        ri += 1
        oi += 1
    for _ in range(p4):
        cw -= 1
        d = np.float32(cw)
        b = first + step * li
        for c in range(cols):
            s[c] -= src[b, c]
            dst[oi, c] = s[c] / d
        li += 1
        oi += 1


@njit(cache=True, nogil=True)
def _box_rows(src: np.ndarray, dst: np.ndarray, window: int, keep: np.ndarray) -> None:  # pragma: no cover
    """Meta's box1DFloat along each row; writes only columns where ``keep`` is true.

    A row's running sum is a chain of dependent float32 additions, which one row at a time
    leaves the FPU waiting; so rows go four at a time, their sums side by side in registers.
    Each row still sees exactly Meta's sequence of float32 operations: the same bits.
    """
    rows, n = src.shape
    p1, p2, p3, p4 = _box_phases(n, window)
    r = 0
    while r + 4 <= rows:
        a, b, c, e = src[r], src[r + 1], src[r + 2], src[r + 3]
        oa, ob, oc, oe = dst[r], dst[r + 1], dst[r + 2], dst[r + 3]
        s0 = s1 = s2 = s3 = np.float32(0.0)
        cw = 0
        li = 0
        ri = 0
        oi = 0
        for _ in range(p1):
            s0 += a[ri]
            s1 += b[ri]
            s2 += c[ri]
            s3 += e[ri]
            cw += 1
            ri += 1
        for _ in range(p2):
            s0 += a[ri]
            s1 += b[ri]
            s2 += c[ri]
            s3 += e[ri]
            cw += 1
            if keep[oi]:
                d = np.float32(cw)
                oa[oi], ob[oi], oc[oi], oe[oi] = s0 / d, s1 / d, s2 / d, s3 / d
            ri += 1
            oi += 1
        d = np.float32(cw)
        for _ in range(p3):
            s0 += a[ri]
            s1 += b[ri]
            s2 += c[ri]
            s3 += e[ri]
            s0 -= a[li]
            s1 -= b[li]
            s2 -= c[li]
            s3 -= e[li]
            if keep[oi]:
                oa[oi], ob[oi], oc[oi], oe[oi] = s0 / d, s1 / d, s2 / d, s3 / d
            li += 1
            ri += 1
            oi += 1
        for _ in range(p4):
            s0 -= a[li]
            s1 -= b[li]
            s2 -= c[li]
            s3 -= e[li]
            cw -= 1
            if keep[oi]:
                d = np.float32(cw)
                oa[oi], ob[oi], oc[oi], oe[oi] = s0 / d, s1 / d, s2 / d, s3 / d
            li += 1
            oi += 1
        r += 4
    for rr in range(r, rows):  # the last rows, one at a time
        _box_row(src[rr], dst[rr], p1, p2, p3, p4, keep)


@njit(cache=True, nogil=True)
def _box_row(
    src: np.ndarray, dst: np.ndarray, p1: int, p2: int, p3: int, p4: int, keep: np.ndarray
) -> None:  # pragma: no cover - compiled
    s = np.float32(0.0)
    cw = 0
    li = 0
    ri = 0
    oi = 0
    for _ in range(p1):
        s += src[ri]
        cw += 1
        ri += 1
    for _ in range(p2):
        s += src[ri]
        cw += 1
        if keep[oi]:
            dst[oi] = s / np.float32(cw)
        ri += 1
        oi += 1
    for _ in range(p3):
        s += src[ri]
        s -= src[li]
        if keep[oi]:
            dst[oi] = s / np.float32(cw)
        li += 1
        ri += 1
        oi += 1
    for _ in range(p4):
        s -= src[li]
        cw -= 1
        if keep[oi]:
            dst[oi] = s / np.float32(cw)
        li += 1
        oi += 1


@njit(cache=True, nogil=True)
def _dct64_to_16(a: np.ndarray, d: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    # B = (D A) D^T with sequential float32 sums, in the C++ order
    t = np.empty((16, 64), dtype=np.float32)
    for i in range(16):
        for j in range(64):
            s = np.float32(0.0)
            for k in range(64):
                s += d[i, k] * a[k, j]
            t[i, j] = s
    b = np.empty((16, 16), dtype=np.float32)
    for i in range(16):
        for j in range(16):
            s = np.float32(0.0)
            for k in range(64):
                s += t[i, k] * d[j, k]
            b[i, j] = s
    return b


# --------------------------------------------------------------------------------------------


def _window(size: int) -> int:
    """Meta's computeJaroszFilterWindowSize(size, 64): ceil(size / 128)."""
    return (size + 2 * 64 - 1) // (2 * 64)


@lru_cache(maxsize=2048)
def _centres(size: int) -> np.ndarray:
    """Meta's decimateFloat sample positions (cell centres), computed in double as in the C++
    (cached per size: read-only)."""
    out = np.array([int(((i + 0.5) * size) / 64) for i in range(64)], dtype=np.intp)
    out.flags.writeable = False
    return out


def _downsample_64(luma: np.ndarray) -> np.ndarray:
    """Jarosz filter (two X,Y box passes) then decimation to 64x64, as Meta's C++.

    Only the samples that decimation keeps are finished: the second row pass writes only the 64
    sampled columns and the second column pass runs on those columns only. The running sums still
    traverse every pixel, so the values are exactly those of the full filter.
    """
    rows, cols = luma.shape
    if rows == 64 and cols == 64:  # Meta skips the filter for 64x64 input (e.g. pre-scaled frames)
        return luma.copy()
    return _after_first_pass(_first_pass(luma), upside_down=False)


def _first_pass(luma: np.ndarray) -> np.ndarray:
    """The Jarosz filter's first row pass, over every column."""
    out = np.empty_like(luma)
    _box_rows(luma, out, _window(luma.shape[1]), np.ones(luma.shape[1], dtype=np.bool_))
    return out


def _after_first_pass(buf1: np.ndarray, upside_down: bool) -> np.ndarray:
    """The rest of the Jarosz filter and the decimation, from the first row pass of the picture
    (``upside_down``: of the picture turned upside down, which is ``buf1[::-1]``: rows are
    filtered one by one, so their order does not matter to the first pass)."""
    rows, cols = buf1.shape
    wr, wc = _window(cols), _window(rows)
    ci, ri = _centres(cols), _centres(rows)
    sampled = np.zeros(cols, dtype=np.bool_)
    sampled[ci] = True
    buf2 = np.empty_like(buf1)
    _box_cols(buf1, buf2, wc, upside_down)
    buf3 = np.empty_like(buf1)
    _box_rows(buf2, buf3, wr, sampled)
    narrow = np.ascontiguousarray(buf3[:, ci])
    out = np.empty_like(narrow)
    _box_cols(narrow, out, wc)
    return np.ascontiguousarray(out[ri])


def _quality(a: np.ndarray) -> int:
    """Meta's pdqImageDomainQualityMetric, in float32 with truncation as the C++."""
    hundred, scale = np.float32(100), np.float32(255)
    dv = ((a[:-1, :] - a[1:, :]) * hundred / scale).astype(np.int32)
    dh = ((a[:, :-1] - a[:, 1:]) * hundred / scale).astype(np.int32)
    total = int(np.abs(dv).sum()) + int(np.abs(dh).sum())
    return min(total // 90, 100)


def _median_torben(coefs: np.ndarray) -> np.float32:
    """Torben's median of 256 values returns the 128th smallest (the lower median)."""
    flat = coefs.ravel()
    k = (flat.size + 1) // 2 - 1
    return np.float32(np.partition(flat, k)[k])


def _bits_to_hex(bits: np.ndarray) -> str:
    """16x16 bits, bit k = 16 i + j, to Meta's hex (most significant bit 255 first)."""
    return np.packbits(bits.ravel()[::-1]).tobytes().hex()


def _coefs_to_hex(coefs: np.ndarray) -> str:
    return _bits_to_hex(coefs > _median_torben(coefs))


def _coefficients(luma: np.ndarray) -> tuple[np.ndarray, int]:
    a = _downsample_64(luma)
    return _dct64_to_16(a, _DCT), _quality(a)


def _hash_64(a: np.ndarray) -> PdqHash:
    """The PDQ of a filtered and decimated 64x64 image."""
    return PdqHash(_coefs_to_hex(_dct64_to_16(a, _DCT)), _quality(a))


def _too_small(shape: tuple[int, ...]) -> bool:
    return shape[0] < MIN_HASHABLE_DIM or shape[1] < MIN_HASHABLE_DIM


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim != 3 or rgb.shape[2] < 3 or rgb.dtype != np.uint8:
        raise SignalError(f"PDQ needs an (H, W, 3) uint8 array, got {rgb.shape} {rgb.dtype}")
    return rgb


def pdq_from_luma(luma: np.ndarray) -> PdqHash:
    """PDQ of a float32 luma image (H, W), at the size given."""
    if luma.ndim != 2:
        raise SignalError(f"PDQ luma must be 2-D, got shape {luma.shape}")
    if _too_small(luma.shape):
        return PdqHash(ZERO_HASH, 0)
    coefs, quality = _coefficients(np.ascontiguousarray(luma, dtype=np.float32))
    return PdqHash(_coefs_to_hex(coefs), quality)


def pdq_luma(rgb: np.ndarray) -> np.ndarray:
    """PDQ's luma (float32, H x W) of RGB pixels (H, W, 3 uint8), bit for bit as ``pdqhash``."""
    return _luma_from_rgb(np.ascontiguousarray(_check_rgb(rgb)[:, :, :3]))


def pdq_from_rgb(rgb: np.ndarray) -> PdqHash:
    """PDQ core on the given pixels (H, W, 3 uint8), no rescale: equals ``pdqhash.compute``."""
    _check_rgb(rgb)
    if _too_small(rgb.shape):
        return PdqHash(ZERO_HASH, 0)
    return pdq_from_luma(pdq_luma(rgb))


def dihedral_coefficients(coefs: np.ndarray) -> list[np.ndarray]:
    """The 8 dihedral variants of 16x16 DCT coefficients (Meta's dct16OriginalTo* sign patterns).

    Order: original, rot90, rot180, rot270, flipx, flipy, transpose, transverse.
    """
    i = np.arange(16)[:, None]
    j = np.arange(16)[None, :]
    odd_i = (i & 1).astype(bool)
    odd_j = (j & 1).astype(bool)
    odd_ij = ((i + j) & 1).astype(bool)
    a = coefs
    return [
        a,
        np.where(odd_j, a, -a).T,  # rot90
        np.where(odd_ij, -a, a),  # rot180
        np.where(odd_i, a, -a).T,  # rot270
        np.where(odd_i, a, -a),  # flipx
        np.where(odd_j, a, -a),  # flipy
        a.T,  # transpose (flip about the main diagonal)
        np.where(odd_ij, -a, a).T,  # transverse (flip about the anti-diagonal)
    ]


#: the 7 turns of a picture besides itself (the dihedral group), applied to its pixels (H, W, ...),
#: as :func:`pdq_of_turns` and ``signals.robust`` name them
TURN_OF: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "rot90": lambda a: np.rot90(a, 1),
    "rot180": lambda a: np.rot90(a, 2),
    "rot270": lambda a: np.rot90(a, 3),
    "mirror": lambda a: a[:, ::-1],
    "flip": lambda a: a[::-1],
    "transpose": lambda a: a.swapaxes(0, 1),
    "transverse": lambda a: np.rot90(a, 2).swapaxes(0, 1),
}
TURNS = tuple(TURN_OF)
#: each transposed turn's 64x64 picture is the transpose of an upright one's:
#: rot90 = mirror.T, rot270 = flip.T, transverse = rot180.T
_TRANSPOSED = (("transpose", "original"), ("rot90", "mirror"), ("rot270", "flip"), ("transverse", "rot180"))


@dataclass(frozen=True, slots=True)
class LumaPdq:
    """The PDQ of a luma picture (``hash``), keeping the filter work its turns (:meth:`turns`)
    can share: its first row pass and its DCT coefficients."""

    luma: np.ndarray
    first: np.ndarray | None  # the first row pass; None if the filter is skipped (small, 64x64)
    coefs: np.ndarray | None  # the 16x16 DCT coefficients
    hash: PdqHash

    def turns(self) -> dict[str, PdqHash]:
        """The PDQ of the picture turned each of the 7 ways of :data:`TURNS` (``rot90`` is
        ``np.rot90(luma)``, ``mirror`` left-right, ``flip`` upside down, ``transverse`` the flip
        about the anti-diagonal), as :func:`pdq_from_luma` gives on the turned pixels.

        PDQ's box windows and sample positions belong to each axis, so the 64x64 picture of a
        transposed turn is the transpose of an upright turn's, and so are its DCT coefficients
        (B = D A D^T), with the same quality: equal up to float32 rounding, as the transposed
        filter adds in another order (of 5187 turned corpus pictures, 3 hashes of quality >= 10
        differed, by 2 bits; flat pictures' bits are rounding noise either way, and
        ``signals.robust`` makes no turns of them). The upright turns share first passes: a
        picture and itself upside down have the same row pass (rows are filtered one by one). So
        the 7 turns take one more first pass (of the mirror) and three rest-of-filter passes, not
        4 and 7 as hashing each turned picture would.
        """
        if self.first is None or self.coefs is None:
            return {t: pdq_from_luma(np.ascontiguousarray(TURN_OF[t](self.luma))) for t in TURNS}
        mirror_first = _first_pass(np.ascontiguousarray(self.luma[:, ::-1]))
        upright = {
            "flip": _after_first_pass(self.first, upside_down=True),
            "mirror": _after_first_pass(mirror_first, upside_down=False),
            "rot180": _after_first_pass(mirror_first, upside_down=True),
        }
        found = {"original": (self.coefs, self.hash.quality)}
        found |= {t: (_dct64_to_16(a, _DCT), _quality(a)) for t, a in upright.items()}
        for turned, source in _TRANSPOSED:
            coefs, quality = found[source]
            found[turned] = (np.ascontiguousarray(coefs.T), quality)
        return {t: PdqHash(_coefs_to_hex(found[t][0]), found[t][1]) for t in TURNS}


def hash_luma(luma: np.ndarray) -> LumaPdq:
    """:func:`pdq_from_luma` keeping the filter work its turns can share (:meth:`LumaPdq.turns`)."""
    if luma.ndim != 2:
        raise SignalError(f"PDQ luma must be 2-D, got shape {luma.shape}")
    x = np.ascontiguousarray(luma, dtype=np.float32)
    if _too_small(x.shape) or x.shape == (64, 64):  # no filter pass to share
        return LumaPdq(x, None, None, pdq_from_luma(x))
    first = _first_pass(x)
    grid = _after_first_pass(first, upside_down=False)
    coefs = _dct64_to_16(grid, _DCT)
    return LumaPdq(x, first, coefs, PdqHash(_coefs_to_hex(coefs), _quality(grid)))


def pdq_of_turns(luma: np.ndarray) -> dict[str, PdqHash]:
    """The PDQ of ``luma`` turned each of the 7 ways of :data:`TURNS` (see :meth:`LumaPdq.turns`)."""
    return hash_luma(luma).turns()


def pdq_with_dihedral(rgb: np.ndarray) -> tuple[PdqHash, list[str]]:
    """PDQ of the pixels and the hex of its 8 dihedral variants, from one set of DCT coefficients."""
    _check_rgb(rgb)
    if _too_small(rgb.shape):
        return PdqHash(ZERO_HASH, 0), [ZERO_HASH] * 8
    coefs, quality = _coefficients(_luma_from_rgb(np.ascontiguousarray(rgb[:, :, :3])))
    variants = [_coefs_to_hex(c) for c in dihedral_coefficients(coefs)]
    return PdqHash(variants[0], quality), variants


def pdq_hash_image(img: DecodedImage) -> PdqHash:
    """PDQ by the canonical pipeline: ``img.rgb`` is already RGB and scaled to fit 512x512."""
    return pdq_from_rgb(img.rgb)


# --------------------------------------------------------------------------------------------
# hex <-> uint64 words, for indexes. Word 0 holds the first 16 hex digits (big-endian), so the
# words of a hash read left to right like its hex; Hamming distance is the popcount of the XOR.

_NIBBLE = np.full(256, 255, dtype=np.uint8)
for _c, _v in zip(b"0123456789abcdef", range(16), strict=True):
    _NIBBLE[_c] = _v
for _c, _v in zip(b"ABCDEF", range(10, 16), strict=True):
    _NIBBLE[_c] = _v
_HEXCHARS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def hex_to_words(hashes: Sequence[str] | np.ndarray) -> np.ndarray:
    """(N, 4) uint64 words of N 64-hex PDQ values; raises ``SignalError`` on a malformed value."""
    if isinstance(hashes, str):
        hashes = [hashes]
    n = len(hashes)
    if n == 0:
        return np.zeros((0, 4), dtype=np.uint64)
    joined = "".join(hashes if isinstance(hashes, Sequence) else hashes.tolist())
    if len(joined) != 64 * n or not joined.isascii():
        bad = next((h for h in hashes if len(h) != 64 or not h.isascii()), joined[:64])
        raise SignalError(f"pdq value must be 64 hex characters: {str(bad)[:80]!r}")
    nib = _NIBBLE[np.frombuffer(joined.encode("ascii"), dtype=np.uint8)].reshape(n, 64)
    if (nib == 255).any():
        row = int(np.nonzero((nib == 255).any(axis=1))[0][0])
        raise SignalError(f"pdq value is not hexadecimal: {str(hashes[row])[:80]!r}")
    packed = (nib[:, 0::2] << 4) | nib[:, 1::2]
    return packed.view(">u8").astype(np.uint64)


def words_to_hex(words: np.ndarray) -> list[str]:
    """Inverse of ``hex_to_words``: lower-case 64-hex strings."""
    w = np.ascontiguousarray(np.asarray(words, dtype=np.uint64).reshape(-1, 4)).astype(">u8")
    b = w.view(np.uint8).reshape(-1, 32)
    chars = np.empty((b.shape[0], 64), dtype=np.uint8)
    chars[:, 0::2] = _HEXCHARS[b >> 4]
    chars[:, 1::2] = _HEXCHARS[b & 15]
    text = chars.tobytes().decode("ascii")
    return [text[i : i + 64] for i in range(0, len(text), 64)]
