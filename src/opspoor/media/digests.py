"""MD5, SHA-1 and SHA-256 of bytes, from one chunked read: taken as evidence streams past (an archive
member too large to hold, a file being hashed), so they sit below both ``sources`` and ``signals``;
the signal types themselves are ``signals.crypto``'s."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import BinaryIO

CHUNK = 1 << 20


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
