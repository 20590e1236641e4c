"""PhotoDNA: stored and matched exactly, never computed (opspoor has no PhotoDNA hasher).

A PhotoDNA hash is 144 bytes. Lists spell it three ways, which all come down to those bytes:
base64 (192 characters; VICS), hex (288 characters) and 144 comma-separated decimal
bytes (NCMEC's ``pdna``). Its canonical form is the lower-case hex of the bytes, like every other
fixed-width signal, so it is stored, compared, indexed and matched the way MD5 is (exact index,
distance 0), whatever spelling each side used. A value that is not 144 bytes in one of those
spellings is not a PhotoDNA and is refused.
"""

from __future__ import annotations

import base64
import binascii
import re

from opspoor.errors import SignalError
from opspoor.signals.base import SignalType

#: bytes of a PhotoDNA hash
PHOTODNA_BYTES = 144
_WS = re.compile(r"\s+")
_HEX = re.compile(r"[0-9a-fA-F]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_DECIMALS = re.compile(r"\d{1,3}(?:,\d{1,3})+")


def photodna_bytes(value: str) -> bytes:
    """The 144 bytes of a PhotoDNA in any accepted spelling, or ``SignalError`` saying why not."""
    v = _WS.sub("", value)
    if not v:
        raise SignalError("photodna value is empty")
    raw: bytes | None = None
    if len(v) == 2 * PHOTODNA_BYTES and _HEX.fullmatch(v):
        raw = bytes.fromhex(v)
    elif _DECIMALS.fullmatch(v):
        numbers = [int(n) for n in v.split(",")]
        if any(n > 255 for n in numbers):
            raise SignalError(f"photodna value has a decimal byte above 255: {value[:40]!r}")
        raw = bytes(numbers)
    elif _BASE64.fullmatch(v):
        try:
            raw = base64.b64decode(v + "=" * (-len(v) % 4), validate=True)
        except binascii.Error:
            raise SignalError(f"photodna value is not valid base64: {value[:40]!r}") from None
    if raw is None:
        raise SignalError(
            f"photodna value is not base64, hex or comma-separated decimal bytes: {value[:40]!r}"
        )
    if len(raw) != PHOTODNA_BYTES:
        raise SignalError(f"photodna value must be {PHOTODNA_BYTES} bytes, got {len(raw)}: {value[:40]!r}")
    return raw


def photodna_base64(canonical: str) -> str:
    """The base64 spelling of a canonical (hex) PhotoDNA, as VICS lists carry it."""
    return base64.b64encode(bytes.fromhex(canonical)).decode("ascii")


class PhotoDNA(SignalType):
    name = "photodna"
    media = frozenset({"image"})
    hex_length = 2 * PHOTODNA_BYTES
    index = "exact"
    computed = False

    @classmethod
    def validate(cls, value: str) -> str:
        return photodna_bytes(value).hex()

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        return 0 if a == b else 1
