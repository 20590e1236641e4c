"""Review-safe thumbnails: small, grayscale and strongly blurred before they are ever encoded.

No unblurred pixels leave this function, so nothing downstream (case database, report) can hold them.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

THUMB_SIZE = 160
#: blur radius relative to the thumbnail's long side; shapes stay recognisable, details do not
BLUR_FRACTION = 0.035


def safe_thumbnail(rgb: np.ndarray, size: int = THUMB_SIZE, blur_fraction: float = BLUR_FRACTION) -> bytes:
    """JPEG bytes of a grayscale, Gaussian-blurred thumbnail of ``rgb`` (H, W, 3 uint8)."""
    img = Image.fromarray(np.ascontiguousarray(rgb[..., :3]), "RGB").convert("L")
    img.thumbnail((size, size), Image.Resampling.BILINEAR)
    radius = max(2.0, blur_fraction * max(img.size))
    img = img.filter(ImageFilter.GaussianBlur(radius))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=70)
    return buf.getvalue()
