"""MD5, SHA-1 and SHA-256 of file bytes, from one chunked read."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import BinaryIO

from opspoor.signals.base import ExactSignal

CHUNK = 1 << 20


class MD5(ExactSignal):
    name = "md5"
    hex_length = 32


class SHA1(ExactSignal):
    name = "sha1"
    hex_length = 40


class SHA256(ExactSignal):
    name = "sha256"
    hex_length = 64


@dataclass(frozen=True, slots=True)
class Digests:
    size: int
    md5: str
    sha1: str
    sha256: str


class DigestAccumulator:
    """Feed chunks as they are read; the three digests are updated from the same bytes."""

    def __init__(self) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        self.size = 0

    def update(self, chunk: bytes | memoryview) -> None:
        self._md5.update(chunk)
        self._sha1.update(chunk)
        self._sha256.update(chunk)
        self.size += len(chunk)

    def result(self) -> Digests:
        return Digests(self.size, self._md5.hexdigest(), self._sha1.hexdigest(), self._sha256.hexdigest())


def digest_bytes(data: bytes | memoryview) -> Digests:
    acc = DigestAccumulator()
    acc.update(data)
    return acc.result()


def digest_stream(stream: BinaryIO, chunk_size: int = CHUNK) -> Digests:
    """Digests of everything left in ``stream``; constant memory, any size."""
    acc = DigestAccumulator()
    while chunk := stream.read(chunk_size):
        acc.update(chunk)
    return acc.result()
