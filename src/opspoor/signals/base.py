"""The signal-type plugin shape (modelled on python-threatexchange's ``SignalType``).

A signal type declares its short name, the media it applies to, its width, how to validate and
compare two values, how the index finds it, whether opspoor computes it, and a brute-force matcher.
It is the one definition of a signal: the store, the formats and the service derive their tables
of widths from the registry (:mod:`opspoor.signals`). The brute-force matcher is the
correctness reference that every faster index (``opspoor.index``) is tested against.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, Literal

from opspoor.errors import SignalError

MediaKind = Literal["any", "image", "video"]
#: how the index finds a value: equal bytes, within a Hamming distance, or not by a hash index
IndexKind = Literal["exact", "hamming", "none"]


class SignalType(ABC):
    """One kind of hash. Subclasses are stateless; use the class itself, never instances."""

    name: ClassVar[str]
    #: media this signal is computed for: ``any`` (file bytes), ``image`` or ``video``
    media: ClassVar[frozenset[MediaKind]]
    #: distance at or below which two values match by default (0 for exact signals)
    default_threshold: ClassVar[int] = 0
    #: hex length of a value, when the value is fixed-width hex
    hex_length: ClassVar[int | None] = None
    #: how the index finds a value (``none``: compared by its own matcher, e.g. local features)
    index: ClassVar[IndexKind] = "none"
    #: hex length of the values the index holds (a vPDQ's frame hashes); by default ``hex_length``
    index_hex_length: ClassVar[int | None] = None
    #: whether opspoor computes it from media; False: stored and matched only (PhotoDNA)
    computed: ClassVar[bool] = True
    #: equal values are the same item (a cryptographic identity): what makes a duplicate on import
    identity: ClassVar[bool] = False
    #: an entry of a hash set carries it as its own value (read, stored, exported); False: a
    #: matching-only value derived from the entry's original (local features)
    entry_value: ClassVar[bool] = True

    @classmethod
    def indexed_hex_length(cls) -> int | None:
        """Hex length of the fixed-width values the index holds, None when it holds none."""
        return cls.index_hex_length or cls.hex_length

    @classmethod
    def validate(cls, value: str) -> str:
        """Return the canonical form of ``value`` (lower-case hex) or raise ``SignalError``."""
        v = value.strip().lower()
        if cls.hex_length is None:
            raise NotImplementedError
        if len(v) != cls.hex_length:
            raise SignalError(f"{cls.name} value must be {cls.hex_length} hex characters, got {len(v)}")
        try:
            bytes.fromhex(v)
        except ValueError:
            raise SignalError(f"{cls.name} value is not hexadecimal: {value[:80]!r}") from None
        return v

    @classmethod
    @abstractmethod
    def distance(cls, a: str, b: str) -> int:
        """Distance between two canonical values; 0 means identical."""

    @classmethod
    def brute_force_match(
        cls, query: str, haystack: Sequence[str], threshold: int | None = None
    ) -> list[tuple[int, int]]:
        """Every ``(index_in_haystack, distance)`` with distance <= threshold. The reference."""
        t = cls.default_threshold if threshold is None else threshold
        out = []
        for i, h in enumerate(haystack):
            d = cls.distance(query, h)
            if d <= t:
                out.append((i, d))
        return out


class ExactSignal(SignalType):
    """Cryptographic hashes: match means equal."""

    media = frozenset({"any"})
    default_threshold = 0
    index = "exact"
    identity = True

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        return 0 if a == b else 1
