"""Limits that keep hostile archives (bombs, deep nesting, huge member lists) from exhausting the machine."""

from __future__ import annotations

from dataclasses import dataclass, field

from opspoor.errors import ArchiveBomb, MemberTooLarge

GiB = 1 << 30
MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Per-scan limits on archive expansion.

    ``max_total_uncompressed`` is counted over one outermost archive and everything nested in it.
    ``max_in_memory`` (and ``max_member_size``) bound the member bytes held at once, for decoding: a
    larger member is streamed through the cryptographic hashes and not decoded. It is the main part of
    a scan worker's memory budget (the bytes are also handed to one worker, which decodes them).
    ``max_ratio`` is judged per member and per archive, but only once ``ratio_min_bytes`` are at stake:
    small, very uniform files (a blank BMP, a text of spaces) legitimately compress beyond 200:1.
    """

    max_depth: int = 8
    max_member_size: int = 4 * GiB
    max_total_uncompressed: int = 64 * GiB
    max_ratio: float = 200.0
    max_members: int = 1_000_000
    #: a worker holds a member about twice while it arrives (pipe buffer, then bytes), the main process
    #: too while it sends it: with 1 GiB, a scan worker stays within about 2 GiB plus the decoder.
    #: ``scan --max-member-memory`` lowers it on a machine with less memory (docs/reliability.md)
    max_in_memory: int = 1 * GiB
    ratio_min_bytes: int = 16 * MiB
    #: a member of a zip on disk larger than this is checked as it streams past and not held: the
    #: worker that hashes it reads it from the zip itself (``sources.zipref``), so neither process holds
    #: it whole; smaller members travel to the workers as bytes (cheaper for many small pictures)
    stream_above: int = 32 * MiB


@dataclass(slots=True)
class Budget:
    """What one outermost archive (and its nested archives) has used so far."""

    limits: Limits
    uncompressed: int = 0  # bytes decompressed under this outermost archive
    held: list[int] = field(default_factory=list)  # sizes of nested archives currently held in memory

    def room_in_memory(self) -> int:
        return self.limits.max_in_memory - sum(self.held)

    def member_cap(self) -> int:
        """Largest member that may be read now."""
        return min(self.limits.max_member_size, self.room_in_memory())

    def check_in_memory(self, declared: int, where: str) -> None:
        """Refuse a member that would have to be held whole but is larger than the room (salvage)."""
        if declared > self.member_cap():
            raise MemberTooLarge(
                f"declared size {declared} exceeds the in-memory room {self.member_cap()}", where
            )

    def too_large(self, size: int, where: str) -> MemberTooLarge:
        """The note on a member that was hashed as a stream rather than held and decoded."""
        cap = self.member_cap()
        return MemberTooLarge(
            f"not decoded: {size} bytes is above the in-memory room of {cap}; hashed", where
        )

    def check_declared(self, declared: int, where: str) -> None:
        """Refuse a member by its declared size, before reading a byte of it."""
        lim = self.limits
        if self.uncompressed + declared > lim.max_total_uncompressed:
            raise ArchiveBomb(
                f"archive total uncompressed size would exceed {lim.max_total_uncompressed} bytes", where
            )

    def check_ratio(self, uncompressed: int, compressed: int, where: str, what: str = "member") -> None:
        lim = self.limits
        if uncompressed > lim.ratio_min_bytes and uncompressed > lim.max_ratio * max(compressed, 1):
            ratio = uncompressed / max(compressed, 1)
            raise ArchiveBomb(f"{what} compression ratio {ratio:.0f}:1 exceeds {lim.max_ratio:.0f}:1", where)

    def add_uncompressed(self, n: int, where: str) -> None:
        """Count bytes actually decompressed; stop when the outermost archive's total is exceeded."""
        self.uncompressed += n
        if self.uncompressed > self.limits.max_total_uncompressed:
            raise ArchiveBomb(
                f"archive total uncompressed size exceeds {self.limits.max_total_uncompressed} bytes", where
            )
