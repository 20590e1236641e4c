"""Uploaded files sealed at rest: AES-256-GCM with a key from the service's configuration.

A sealed blob is ``nonce (12 bytes) + ciphertext + tag (16 bytes)``; the report and file it belongs
to are bound in as associated data, so a blob moved to another file's row does not open.
"""

from __future__ import annotations

import base64
import binascii
import os

from opspoor.errors import IntakeError

NONCE_BYTES = 12


def key_from_text(text: str) -> bytes:
    """A 256-bit key given as 64 hex characters or as base64 of 32 bytes."""
    raw: bytes | None = None
    t = text.strip()
    try:
        raw = bytes.fromhex(t) if len(t) == 64 else base64.b64decode(t, validate=True)
    except (ValueError, binascii.Error):
        raw = None
    if raw is None or len(raw) != 32:
        raise IntakeError(
            "the intake key must be 32 bytes, as 64 hex characters or base64", where="intake_key"
        )
    return raw


def new_key_text() -> str:
    return os.urandom(32).hex()


def seal(key: bytes, data: bytes, bound: str) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, data, bound.encode())


def unseal(key: bytes, blob: bytes, bound: str) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], bound.encode())
    except InvalidTag:
        raise IntakeError(
            "the sealed file does not open with this key (wrong key, or altered)", where=bound
        ) from None
