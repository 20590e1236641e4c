"""The limits every decoder shares, on the command line and in the service alike."""

from __future__ import annotations

#: images and video frames declaring more pixels are refused from their header, before any pixel is
#: allocated (``MediaTooLarge``). The service also refuses, with 413, an upload whose decode would
#: not fit its per-request memory budget (``opspoor.service.memory``), which is smaller for most
#: formats; this limit is what opspoor treats as an image at all.
MAX_PIXELS = 200_000_000
