"""MD5, SHA-1 and SHA-256: the signal types (their digests are taken by ``media.digests``)."""

from __future__ import annotations

from opspoor.signals.base import ExactSignal


class MD5(ExactSignal):
    name = "md5"
    hex_length = 32


class SHA1(ExactSignal):
    name = "sha1"
    hex_length = 40


class SHA256(ExactSignal):
    name = "sha256"
    hex_length = 64
