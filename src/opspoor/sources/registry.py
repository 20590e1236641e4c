"""The evidence kinds a plain file can turn out to be, in the order they are tried (first match
wins). A new kind is one module in ``opspoor/sources/`` with a ``SourceKind`` and one line here."""

from __future__ import annotations

from collections.abc import Callable

from opspoor.sources import archives
from opspoor.sources.disk import DiskImageKind, open_nested
from opspoor.sources.kind import ArchiveKind, SourceKind

SOURCE_KINDS: tuple[SourceKind, ...] = (
    DiskImageKind(),  # raw/dd, split raw, E01, VMDK, QCOW2, VHD/VHDX (opspoor.sources.disk)
    ArchiveKind(),  # zip, tar, 7z, gz/bz2/xz (opspoor.sources.archives)
)

# a disk image inside an archive is opened too (archives sit below disk images in the layers)
archives.nested_opener = open_nested


def recognise(name: str, head: bytes, tail: Callable[[], bytes]) -> tuple[SourceKind, str] | None:
    for kind in SOURCE_KINDS:
        sub = kind.recognise(name, head, tail)
        if sub is not None:
            return kind, sub
    return None
