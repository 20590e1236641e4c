"""Disk image containers: raw/dd (also split ``.001``, ``.002`` …), EWF (E01/Ex01, split segments),
VMDK, QCOW2 and VHD/VHDX, each opened read-only as one stream of the disk's bytes.

Every file is opened by ``opspoor.readonly.open_readonly`` (O_RDONLY, O_NOATIME) and handed to the
libraries as a file object, so no library opens the evidence itself (VMDK descriptor extents are
the one exception: libvmdk opens them by name, read-only).

Why these libraries: libewf-python, libvmdk-python, libqcow-python and libvhdi-python are the
maintained libyal bindings that dfVFS and plaso use (binary wheels on PyPI, no compiler needed);
The Sleuth Kit (``pytsk3``) reads the volumes and file systems on top, directly rather than through
dfVFS, because dfVFS hides deleted and orphan entries.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from opspoor.errors import DamagedImage, SourceError
from opspoor.readonly import open_readonly
from opspoor.sources.ewf import EwfLayout, parse_ewf

EWF_MAGICS = (b"EVF\x09\x0d\x0a\xff\x00", b"EVF2\x0d\x0a\x81\x00")
QCOW_MAGIC = b"QFI\xfb"
VMDK_SPARSE_MAGIC = b"KDMV"
VMDK_DESCRIPTOR = b"# Disk DescriptorFile"
VHDX_MAGIC = b"vhdxfile"
VHD_MAGIC = b"conectix"
#: raw images are recognised by name only (a raw disk has no magic of its own)
RAW_SUFFIXES = (".raw", ".dd", ".img", ".001", ".iso")
_SPLIT_RAW = re.compile(r"^(.*\.)(\d{3})$")
VERIFY_CHUNK = 4 << 20


def container_kind(name: str, head: bytes, tail: bytes = b"") -> str | None:
    """``ewf``, ``qcow2``, ``vmdk``, ``vhdx``, ``vhd`` or ``raw`` for the first image file of a disk;
    None for anything else (a later EWF segment, a ``.002`` of a split raw image, any other file)."""
    low = name.lower()
    if head[:8] in EWF_MAGICS:
        # EWF1: the segment number follows the magic and a fields-start byte; only segment 1 opens
        return "ewf" if head[:3] == b"EVF" and (head[3:4] == b"2" or head[9:11] == b"\x01\x00") else None
    if head[:4] == QCOW_MAGIC:
        return "qcow2"
    if head[:4] == VMDK_SPARSE_MAGIC or head.startswith(VMDK_DESCRIPTOR):
        return "vmdk"
    if head[:8] == VHDX_MAGIC:
        return "vhdx"
    if head[:8] == VHD_MAGIC or (low.endswith(".vhd") and tail[:8] == VHD_MAGIC):
        return "vhd"
    if low.endswith(RAW_SUFFIXES):
        return "raw"
    return None


def tsk() -> Any:
    import pytsk3  # imported here: only scans that meet a disk image pay for it

    return pytsk3


def tsk_image(reader: ImageReader) -> Any:
    """The disk as a pytsk3 image: TSK reads it through our read-only reader (the documented
    external-image hook), so TSK never opens the evidence itself."""
    pytsk3 = tsk()

    class TskImage(pytsk3.Img_Info):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__(url="", type=pytsk3.TSK_IMG_TYPE_EXTERNAL)

        def read(self, offset: int, size: int) -> bytes:
            return reader.read(offset, size)

        def get_size(self) -> int:
            return reader.size

        def close(self) -> None:
            pass

    return TskImage()


class ImageReader:
    """A disk's bytes by offset. ``files`` are the evidence files behind it (kept open read-only).

    A region the container cannot give (a truncated or missing segment, a bad chunk) reads as zeros
    so that the rest of the image is still scanned, and is kept in ``damaged`` (byte ranges), so the
    items that touch it and the image itself say so."""

    size: int
    PIECE = 32 << 10  # a failed read is retried in pieces this large, to narrow the damage down

    def __init__(self) -> None:
        self.files: list[BinaryIO] = []
        self.damaged: list[tuple[int, int]] = []

    def read(self, offset: int, length: int) -> bytes:
        length = max(0, min(length, self.size - offset))
        try:
            return self._read(offset, length)
        except (OSError, RuntimeError, ValueError):
            pass
        out = bytearray()
        for pos in range(offset, offset + length, self.PIECE):
            n = min(self.PIECE, offset + length - pos)
            try:
                piece = self._read(pos, n)
            except (OSError, RuntimeError, ValueError):
                salvaged = self._salvage(pos, n)
                piece = salvaged if salvaged is not None else b""
                if salvaged is None:
                    self._note_damage(pos, n)
            out += piece + bytes(n - len(piece))
        return bytes(out)

    def _salvage(self, offset: int, length: int) -> bytes | None:
        """A region the container library refused, read another way when the format allows."""
        return None

    def damage_notes(self) -> list[str]:
        """What is wrong with the container as a whole (a truncated segment), for the image's record."""
        return []

    def _note_damage(self, pos: int, n: int) -> None:
        if self.damaged and self.damaged[-1][0] + self.damaged[-1][1] == pos:
            self.damaged[-1] = (self.damaged[-1][0], self.damaged[-1][1] + n)
        elif (pos, n) not in self.damaged:
            self.damaged.append((pos, n))

    def _read(self, offset: int, length: int) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        for f in self.files:
            f.close()
        self.files.clear()


class RawReader(ImageReader):
    """One raw file or consecutive split segments read as one disk."""

    def __init__(self, paths: list[str], where: str) -> None:
        super().__init__()
        self.starts: list[int] = []
        total = 0
        for p in paths:
            f = open_readonly(p, where, follow_symlinks=True)
            self.files.append(f)
            self.starts.append(total)
            total += os.fstat(f.fileno()).st_size
        self.size = total

    def _read(self, offset: int, length: int) -> bytes:
        out: list[bytes] = []
        end = min(offset + length, self.size)
        while offset < end:
            i = max(j for j, s in enumerate(self.starts) if s <= offset)
            f = self.files[i]
            seg_end = self.starts[i + 1] if i + 1 < len(self.starts) else self.size
            f.seek(offset - self.starts[i])
            chunk = f.read(min(end, seg_end) - offset)
            if not chunk:
                break
            out.append(chunk)
            offset += len(chunk)
        return b"".join(out)


class LibyalReader(ImageReader):
    """EWF, QCOW2, VMDK and VHD(X) through their libyal handles (all share ``read_buffer_at_offset``)."""

    def __init__(self, kind: str, path: str, where: str) -> None:
        super().__init__()
        self.kind = kind
        self.handle: Any = None
        self.layout: EwfLayout | None = None
        self.refused = ""
        self.parents: list[str] = []  # an overlay's parent images, nearest first
        try:
            if kind == "ewf":
                self.layout = _ewf_layout(path, where, self.files)
            try:
                self.handle = _open_handle(kind, path, where, self.files, self.parents)
                self.size = int(self.handle.get_media_size())
            except (OSError, ValueError, TypeError) as exc:
                if self.layout is None or not (self.layout.tables or self.layout.loose):
                    raise
                # libewf gives up on an EWF whose last segment lost its end: read its surviving tables
                self.handle, self.size = None, self.layout.media_size
                self.refused = f"libewf cannot open it ({str(exc)[:160]}…)"
        except SourceError:
            self.close()
            raise
        except (OSError, ValueError, TypeError) as exc:
            lay = self.layout
            detail = f"; {lay.describe()}" if lay is not None and lay.truncated else ""
            self.close()
            raise DamagedImage(f"{kind} container cannot be opened: {exc}{detail}", where) from exc
        self.checked = bytearray(self.size // self.layout.chunk_size // 8 + 1) if self.layout else bytearray()

    def _read(self, offset: int, length: int) -> bytes:
        if not length:
            return b""
        if self.handle is None:  # libewf refused the image: what its surviving tables locate
            got = self._salvage(offset, length)
            if got is None:
                raise OSError("not located by any surviving EWF table")
            return got
        data = bytes(self.handle.read_buffer_at_offset(length, offset))
        if self.layout is not None:
            self._check_zero_chunks(offset, data)
        return data

    def _check_zero_chunks(self, offset: int, data: bytes) -> None:
        """libewf gives a chunk whose checksum fails as zeros, and says nothing: a chunk read as all
        zeros is checked against its stored form, once (a bitmap of checked chunks)."""
        layout = self.layout
        assert layout is not None
        cs = layout.chunk_size
        for c in range(offset // cs, (offset + len(data) - 1) // cs + 1):
            if self.checked[c >> 3] & (1 << (c & 7)):
                continue
            a, b = max(c * cs, offset) - offset, min((c + 1) * cs, offset + len(data)) - offset
            if data.count(0, a, b) != b - a:
                continue
            self.checked[c >> 3] |= 1 << (c & 7)
            if not layout.chunk_ok(c):
                self._note_damage(c * cs, min(cs, self.size - c * cs))

    def _salvage(self, offset: int, length: int) -> bytes | None:
        if self.layout is None:
            return None
        cs, out = self.layout.chunk_size, bytearray()
        for c in range(offset // cs, (offset + length - 1) // cs + 1):
            chunk = self.layout.read_chunk(c)
            if chunk is None:
                return None
            out += chunk
        start = offset - (offset // cs) * cs
        return bytes(out[start : start + length])

    def damage_notes(self) -> list[str]:
        notes = [self.refused] if self.refused else []
        if self.layout is not None and self.layout.truncated:
            notes.append(self.layout.describe())
        return notes

    def close(self) -> None:
        if self.handle is not None:
            with contextlib.suppress(OSError, IOError):
                self.handle.close()
            self.handle = None
        super().close()


def _ewf_layout(path: str, where: str, files: list[BinaryIO]) -> EwfLayout | None:
    import pyewf

    names = sorted(pyewf.glob(path))
    own = [open_readonly(s, where, follow_symlinks=True) for s in names]
    files.extend(own)
    return parse_ewf([os.path.basename(n) for n in names], own)


def _open_handle(
    kind: str, path: str, where: str, files: list[BinaryIO], chain: list[str] | None = None
) -> Any:
    """The libyal handle of ``path``; an overlay (a QCOW2 with a backing file, a differencing VHD(X),
    a VMDK with a parent) gets its parents opened read-only too, the chain's names kept in ``chain``."""
    if kind == "ewf":
        import pyewf

        segments = sorted(pyewf.glob(path))
        files.extend(open_readonly(s, where, follow_symlinks=True) for s in segments)
        handle = pyewf.handle()
        handle.open_file_objects(files)
        return handle
    if kind == "qcow2":
        import pyqcow

        handle = pyqcow.file()
    elif kind == "vmdk":
        import pyvmdk

        handle = pyvmdk.handle()
    else:
        import pyvhdi

        handle = pyvhdi.file()
    f = open_readonly(path, where, follow_symlinks=True)
    files.append(f)
    if kind == "vmdk" and f.read(4) != VMDK_SPARSE_MAGIC:
        # a text descriptor names its extent files: libvmdk opens them (read-only) beside it
        handle.open(path)
        handle.open_extent_data_files()
    else:
        f.seek(0)
        handle.open_file_object(f)
        if kind == "vmdk":  # a sparse VMDK is its own single extent
            extent = open_readonly(path, where, follow_symlinks=True)
            files.append(extent)
            handle.open_extent_data_files_as_file_objects([extent])
    parent = _parent_name(kind, handle)
    if parent:
        chain = [] if chain is None else chain
        found = _find_parent(path, parent, where, chain)
        chain.append(os.path.basename(found))
        handle.set_parent(_open_handle(kind, found, where, files, chain))
    return handle


#: how many overlays deep a chain of parents may go (a loop or a hostile chain stops here)
MAX_PARENTS = 16


def _parent_name(kind: str, handle: Any) -> str:
    if kind == "qcow2":
        name = handle.get_backing_filename()
    elif kind == "vmdk":
        has_parent = handle.get_parent_content_identifier() not in (None, 0xFFFFFFFF)
        name = handle.get_parent_filename() if has_parent else None
    else:
        name = handle.get_parent_filename() if handle.get_disk_type() == 4 else None  # 4: differencing
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    return str(name or "")


def _find_parent(path: str, name: str, where: str, chain: list[str]) -> str:
    """The parent image, looked for only beside the overlay (by its relative path, then by its file
    name): an absolute path stored in the image names the suspect's machine, not this one."""
    here = os.path.dirname(os.path.abspath(path))
    base = re.split(r"[\\/]", name)[-1]
    candidates = [] if os.path.isabs(name) or "\\" in name else [os.path.join(here, name)]
    candidates.append(os.path.join(here, base))
    for c in candidates:
        if os.path.isfile(c) and os.path.realpath(c) != os.path.realpath(path):
            if len(chain) >= MAX_PARENTS or os.path.basename(c) in chain:
                raise DamagedImage(f"chain of parent images deeper than {MAX_PARENTS} or in a loop", where)
            return c
    raise DamagedImage(
        f"an overlay whose parent image {name!r} is not beside it; only what the overlay holds would "
        "be readable, so it is not read",
        where,
    )


def split_raw_segments(path: str) -> list[str]:
    """``x.001`` and the ``x.002``, ``x.003`` … beside it, in order, up to the first gap."""
    m = _SPLIT_RAW.match(path)
    if m is None or m.group(2) != "001":
        return [path]
    out = [path]
    n = 2
    while os.path.isfile(f"{m.group(1)}{n:03d}"):
        out.append(f"{m.group(1)}{n:03d}")
        n += 1
    return out


def open_image(kind: str, path: str, where: str) -> ImageReader:
    if kind == "raw":
        return RawReader(split_raw_segments(path), where)
    return LibyalReader(kind, path, where)


@dataclass
class Verification:
    """``--verify-image``: the acquisition hash stored in the image against the bytes read now."""

    image: str
    result: str  # verified | MISMATCH | no stored hash | unreadable
    stored: dict[str, str] = field(default_factory=dict)
    computed: dict[str, str] = field(default_factory=dict)
    detail: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"image": self.image, "result": self.result, "stored": self.stored}
        out["computed"] = self.computed
        if self.detail:
            out["detail"] = self.detail
        return out


def verify_image(reader: ImageReader, where: str, tick: Callable[[int], None] | None = None) -> Verification:
    """Stream the whole disk through MD5 (and SHA-1 when one is stored) and compare with the hashes the
    acquisition stored (EWF); raw, VMDK, QCOW2 and VHD store none, which is said, not hidden."""
    handle = getattr(reader, "handle", None)
    stored: dict[str, str] = {}
    if getattr(reader, "kind", None) == "ewf" and handle is not None:
        for name in ("MD5", "SHA1"):
            try:
                value = handle.get_hash_value(name)
            except (OSError, KeyError):
                value = None
            if value:
                stored[name.lower()] = str(value).lower()
    notes = reader.damage_notes()
    if notes:  # a truncated segment: its stored hash may be lost with it, and the bytes are not all there
        return Verification(where, "unreadable", stored, detail="; ".join(notes))
    if not stored:
        return Verification(where, "no stored hash", detail="the container stores no acquisition hash")
    hashes = {name: hashlib.new(name) for name in stored}
    offset = 0
    try:
        while offset < reader.size:
            chunk = reader.read(offset, min(VERIFY_CHUNK, reader.size - offset))
            if not chunk:
                raise OSError(f"short read at byte offset {offset}")
            for h in hashes.values():
                h.update(chunk)
            offset += len(chunk)
            if tick is not None:
                tick(len(chunk))
    except OSError as exc:
        return Verification(where, "unreadable", stored, detail=f"read failed at byte offset {offset}: {exc}")
    computed = {name: h.hexdigest() for name, h in hashes.items()}
    return Verification(where, "verified" if computed == stored else "MISMATCH", stored, computed)


def data_runs(f: Any, fs_offset: int, block_size: int) -> list[tuple[int, int]]:
    """The disk byte ranges ``[a, b)`` a TSK file's data runs cover (sparse runs left out)."""
    t = tsk()
    out = []
    try:
        for attr in f:
            for run in attr:
                if run.len and not run.flags & t.TSK_FS_ATTR_RUN_FLAG_SPARSE:
                    a = fs_offset + run.addr * block_size
                    out.append((a, a + run.len * block_size))
    except OSError:
        pass
    return out


def damage_within(damaged: list[tuple[int, int]], runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The damaged ranges ``(offset, length)`` that touch any of ``runs``: a file's damage is known
    from where its bytes lie, whoever read the region first."""
    return [(a, n) for a, n in damaged if any(a < e and s < a + n for s, e in runs)]


def describe_damage(ranges: list[tuple[int, int]]) -> str:
    merged: list[tuple[int, int]] = []
    for a, n in sorted(ranges):
        if merged and a <= merged[-1][0] + merged[-1][1]:
            end = max(merged[-1][0] + merged[-1][1], a + n)
            merged[-1] = (merged[-1][0], end - merged[-1][0])
        else:
            merged.append((a, n))
    ranges = merged
    shown = ", ".join(f"bytes {a}-{a + n - 1}" for a, n in ranges[:5])
    more = f" and {len(ranges) - 5} more ranges" if len(ranges) > 5 else ""
    return f"unreadable region(s) of the image, read as zeros: {shown}{more}"
