"""What an evidence kind is: something a file on disk can turn out to be (an archive, a disk image)
that yields the evidence inside it. The kinds are listed, in the order they are tried, in
``opspoor.sources.registry.SOURCE_KINDS``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from opspoor.sources.archives import Blob, archive_kind, expand
from opspoor.sources.evidence import EvidenceItem
from opspoor.sources.limits import Budget, Limits


@dataclass(frozen=True)
class WalkOptions:
    """What the walk of one scan was asked for."""

    limits: Limits = Limits()
    #: stream every disk image through the hashes its acquisition stored (``scan --verify-image``)
    verify_images: bool = False
    #: carve unallocated space of disk images (``scan --no-carve`` turns it off: a faster first look)
    carve: bool = True
    #: a disk image copied out of an archive or another image (``sources.disk.open_nested``)
    nested: bool = False


class SourceKind:
    """One kind of container file. ``recognise`` looks at the file's name and first bytes (and,
    for kinds that need it, its last 512 bytes) and returns a sub-kind or None; ``expand`` yields
    everything inside, then the file's own item (as archives do: its record comes last)."""

    name = "?"

    def recognise(self, name: str, head: bytes, tail: Callable[[], bytes]) -> str | None:
        raise NotImplementedError

    def expand(self, item: EvidenceItem, kind: str, opts: WalkOptions) -> Iterator[EvidenceItem]:
        raise NotImplementedError


class ArchiveKind(SourceKind):
    """zip, tar(.gz/.bz2/.xz), 7z and single-file gz/bz2/xz (``opspoor.sources.archives``)."""

    name = "archive"

    def recognise(self, name: str, head: bytes, tail: Callable[[], bytes]) -> str | None:
        return archive_kind(head)

    def expand(self, item: EvidenceItem, kind: str, opts: WalkOptions) -> Iterator[EvidenceItem]:
        assert item.fs_path is not None and item.size is not None
        return expand(item, kind, Blob(item.fs_path, None, item.size), Budget(opts.limits))
