"""Small benign disk images for the tests, the demo and the benchmark, built with Debian's tools
(no root, nothing mounted): ``mkfs.fat`` + ``mtools`` (``mcopy``, ``mdel`` for deleted entries),
``mke2fs -d`` (ext4 from a folder), ``sfdisk`` (MBR/GPT), ``ewfacquire`` (E01) and ``qemu-img``
(VMDK, QCOW2, VHD, VHDX), ``mkfs.exfat`` (exFAT, populated here: no Debian tool writes files into
exFAT without mounting it) and ``xorriso`` (ISO 9660, and HFS+ as the Apple partition of a hybrid ISO:
Debian 12 has no ``hfsprogs``). ``scripts/install-system-deps.sh`` installs them.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from opspoor.errors import OpspoorError

MiB = 1 << 20
TOOLS = (
    "mkfs.fat",
    "mcopy",
    "mdel",
    "mmd",
    "mke2fs",
    "debugfs",
    "mkntfs",
    "ntfscp",
    "sfdisk",
    "ewfacquire",
    "qemu-img",
    "mkfs.exfat",
    "xorriso",
)
QEMU_FORMATS = {"vmdk": "vmdk", "qcow2": "qcow2", "vhd": "vpc", "vhdx": "vhdx"}


class DiskToolMissing(OpspoorError):
    """A Debian tool that builds test disk images is not installed."""


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None and not Path("/usr/sbin", t).exists()]


def _run(*cmd: str, env: dict[str, str] | None = None) -> None:
    exe = shutil.which(cmd[0]) or str(Path("/usr/sbin", cmd[0]))
    if not os.path.exists(exe):
        raise DiskToolMissing(f"{cmd[0]} is not installed (scripts/install-system-deps.sh)", cmd[0])
    subprocess.run([exe, *cmd[1:]], check=True, capture_output=True, env=env)


def _mtools_env() -> dict[str, str]:
    return {**os.environ, "MTOOLS_SKIP_CHECK": "1", "MTOOLS_NO_VFAT": "0"}


@dataclass
class FatLayout:
    """What a built FAT image holds: names (``dir/a.jpg``) to bytes, and carved bytes by offset."""

    files: dict[str, bytes] = field(default_factory=dict)
    deleted: dict[str, bytes] = field(default_factory=dict)
    carved: dict[int, bytes] = field(default_factory=dict)


def fat_image(
    path: Path, files: dict[str, bytes], deleted: dict[str, bytes] | None = None,
    carved: list[bytes] | None = None, size_mib: int = 8, fat_bits: int | None = None,
) -> FatLayout:  # fmt: skip
    """A bare FAT file system image: ``files`` written, ``deleted`` written and then deleted with
    ``mdel``, ``carved`` written straight into free sectors in the last quarter of the image (no
    directory entry ever pointed at them). ``fat_bits`` (12, 16, 32): else mkfs.fat's choice by size."""
    if path.exists():
        path.unlink()
    width = ["-F", str(fat_bits)] if fat_bits else []
    _run("mkfs.fat", "-C", *width, "-n", "OPSPOOR", str(path), str(size_mib * 1024))
    env = _mtools_env()
    made: set[str] = set()
    for name in [*files, *(deleted or {})]:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in made:
                _run("mmd", "-i", str(path), f"::/{d}", env=env)
                made.add(d)
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, data) in enumerate([*files.items(), *(deleted or {}).items()]):
            src = Path(tmp, f"f{i}")
            src.write_bytes(data)
            _run("mcopy", "-i", str(path), str(src), f"::/{name}", env=env)
    for name in deleted or {}:
        _run("mdel", "-i", str(path), f"::/{name}", env=env)
    layout = FatLayout(dict(files), dict(deleted or {}))
    offset = size_mib * MiB * 3 // 4
    with open(path, "r+b") as f:
        for data in carved or []:
            f.seek(offset)
            f.write(data)
            layout.carved[offset] = data
            offset += (len(data) + 4095) // 4096 * 4096 + 4096
    return layout


@contextmanager
def _staged(files: dict[str, bytes]) -> Iterator[str]:
    """A temporary folder holding ``files`` under their names (``dir/a.jpg``), for the tools that
    build a file system from a folder."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            p = Path(tmp, name)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        yield tmp


def ext4_image(path: Path, files: dict[str, bytes], size_mib: int = 16, kind: str = "ext4") -> None:
    """An ext4 (or ``kind`` ext2, ext3) file system image populated from ``files`` by ``mke2fs -d``
    (no mount)."""
    with _staged(files) as tmp:
        if path.exists():
            path.unlink()
        _run("mke2fs", "-q", "-F", "-t", kind, "-d", tmp, str(path), f"{size_mib}M")


def ext4_remove(path: Path, name: str, keep_inode: bool = False) -> None:
    """Delete ``name`` from an ext4 image with ``debugfs`` (no mount): ``rm`` frees its inode and
    blocks (a deleted file); with ``keep_inode``, ``unlink`` only drops the name (an orphan file)."""
    _run("debugfs", "-w", "-R", f"{'unlink' if keep_inode else 'rm'} /{name}", str(path))


def ntfs_image(path: Path, files: dict[str, bytes], size_mib: int = 16) -> None:
    """An NTFS file system image (``mkntfs``) with ``files`` copied into its root by ``ntfscp``
    (ntfs-3g's tools, no mount; ``ntfscp`` makes no directories, so names are flat)."""
    with open(path, "wb") as f:
        f.truncate(size_mib * MiB)
    _run("mkntfs", "-F", "-q", "-f", "-L", "OPSPOOR", str(path))
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, data) in enumerate(files.items()):
            src = Path(tmp, f"f{i}")
            src.write_bytes(data)
            _run("ntfscp", str(path), str(src), f"/{name}")


def ntfs_delete(path: Path, name: str) -> None:
    """Delete ``name`` (a file in the root of an NTFS image made by ``ntfs_image``) the way NTFS does,
    without a mount (ntfs-3g deletes only through FUSE): its entry is taken out of the root directory's
    index (``INDX`` block; the entries after it move up, so its bytes stay in the block's slack, where
    The Sleuth Kit finds deleted names), its MFT record is marked not in use and its clusters are
    freed in ``$Bitmap``; its content stays where it was. Byte patches of structures NTFS documents:
    the record header's flags (0x16) and sequence number (0x10, which NTFS raises on deletion), the
    index node header, the update-sequence fixups."""
    data = bytearray(path.read_bytes())
    bps = struct.unpack_from("<H", data, 0x0B)[0]
    cluster = bps * data[0x0D]
    mft = struct.unpack_from("<Q", data, 0x30)[0] * cluster
    rec_size = 1024
    want = name.encode("utf-16-le")
    # the INDX block (4096 bytes) that names it: remove the entry, keep its bytes as slack
    block = next(
        b for b in range(0, len(data), 4096) if data[b : b + 4] == b"INDX" and want in data[b : b + 4096]
    )
    _unfix(data, block, bps)
    node = block + 0x18
    pos = node + struct.unpack_from("<I", data, node)[0]
    used_end = node + struct.unpack_from("<I", data, node + 4)[0]
    while pos < used_end:
        length = struct.unpack_from("<H", data, pos + 8)[0]
        key = pos + 16
        n = data[key + 0x40]
        if data[key + 0x42 : key + 0x42 + 2 * n] == want:
            data[pos : used_end - length] = data[pos + length : used_end]
            struct.pack_into("<I", data, node + 4, used_end - length - node)
            break
        pos += length
    else:
        raise ValueError(f"{name} not in the root index of {path}")
    _fix(data, block, bps)
    record = next(
        r for r in range(mft, mft + 128 * rec_size, rec_size)
        if data[r : r + 4] == b"FILE" and want in data[r : r + rec_size] and data[r + 0x16] & 1
    )  # fmt: skip
    data[record + 0x16] &= 0xFE  # not in use
    seq = struct.unpack_from("<H", data, record + 0x10)[0]
    struct.pack_into("<H", data, record + 0x10, (seq + 1) & 0xFFFF)  # NTFS counts a deletion here
    runs = _ntfs_data_runs(bytes(data[record : record + rec_size]))
    bitmap_runs = _ntfs_data_runs(bytes(data[mft + 6 * rec_size : mft + 7 * rec_size]))  # $Bitmap
    if bitmap_runs:
        base = bitmap_runs[0][0] * cluster
        for lcn, count in runs:
            for c in range(lcn, lcn + count):
                data[base + c // 8] &= ~(1 << (c % 8)) & 0xFF
    path.write_bytes(bytes(data))


def _unfix(data: bytearray, rec: int, bps: int) -> None:
    """Undo a record's update-sequence fixups (each sector's last two bytes) to edit it."""
    usa, count = struct.unpack_from("<HH", data, rec + 4)
    for i in range(1, count):
        end = rec + i * bps - 2
        data[end : end + 2] = data[rec + usa + 2 * i : rec + usa + 2 * i + 2]


def _fix(data: bytearray, rec: int, bps: int) -> None:
    usa, count = struct.unpack_from("<HH", data, rec + 4)
    usn = data[rec + usa : rec + usa + 2]
    for i in range(1, count):
        end = rec + i * bps - 2
        data[rec + usa + 2 * i : rec + usa + 2 * i + 2] = data[end : end + 2]
        data[end : end + 2] = usn


def _ntfs_attr(rec: bytes, kind: int) -> tuple[bool, int] | None:
    """(resident, offset of its content in the record) of the first attribute of ``kind``."""
    pos = struct.unpack_from("<H", rec, 0x14)[0]
    while pos + 8 <= len(rec):
        t, length = struct.unpack_from("<II", rec, pos)
        if t == 0xFFFFFFFF or length == 0:
            return None
        if t == kind:
            if rec[pos + 8] == 0:
                return True, pos + struct.unpack_from("<H", rec, pos + 0x14)[0]
            return False, pos + struct.unpack_from("<H", rec, pos + 0x20)[0]
        pos += length
    return None


def _ntfs_data_runs(rec: bytes) -> list[tuple[int, int]]:
    """(first cluster, clusters) of the non-resident $DATA attribute's runs."""
    found = _ntfs_attr(rec, 0x80)
    if found is None or found[0]:
        return []
    pos, lcn, out = found[1], 0, []
    while rec[pos]:
        ln, lo = rec[pos] & 0xF, rec[pos] >> 4
        count = int.from_bytes(rec[pos + 1 : pos + 1 + ln], "little")
        lcn += int.from_bytes(rec[pos + 1 + ln : pos + 1 + ln + lo], "little", signed=True)
        out.append((lcn, count))
        pos += 1 + ln + lo
    return out


def exfat_image(
    path: Path, files: dict[str, bytes], deleted: dict[str, bytes] | None = None, size_mib: int = 16
) -> None:
    """An exFAT image (``mkfs.exfat``) with ``files`` and ``deleted`` files in its root directory.
    exfatprogs writes no files, mtools does not know exFAT and exfat-fuse needs a mount, so the
    directory entry sets are written here, as the exFAT specification lays them out: a File entry,
    a Stream Extension (contiguous clusters, "no FAT chain") and File Name entries, with their set
    checksum and name hash; the clusters are marked in the allocation bitmap. A deleted file's
    entries have the in-use bit (0x80) cleared and its clusters are free, its bytes still there."""
    with open(path, "wb") as f:
        f.truncate(size_mib * MiB)
    _run("mkfs.exfat", "-L", "OPSPOOR", str(path))
    img = bytearray(path.read_bytes())
    sector = 1 << img[0x6C]
    cluster = sector << img[0x6D]
    heap = struct.unpack_from("<I", img, 0x58)[0] * sector
    root = struct.unpack_from("<I", img, 0x60)[0]

    def at(c: int) -> int:
        return heap + (c - 2) * cluster

    rootdir = at(root)
    entries = [img[rootdir + k : rootdir + k + 32] for k in range(0, cluster, 32)]
    bm = next(e for e in entries if e[0] == 0x81)
    bitmap = at(struct.unpack_from("<I", bm, 20)[0])
    free_slot = next(k for k, e in enumerate(entries) if e[0] == 0)
    used = [c for c in range(2, 2 + struct.unpack_from("<I", img, 0x5C)[0])
            if img[bitmap + (c - 2) // 8] >> ((c - 2) % 8) & 1]  # fmt: skip
    next_cluster = max(used) + 1
    items = [(n, b, False) for n, b in files.items()] + [(n, b, True) for n, b in (deleted or {}).items()]
    for name, data, gone in items:
        first = next_cluster
        n = max(1, -(-len(data) // cluster))
        next_cluster += n
        img[at(first) : at(first) + len(data)] = data
        if not gone:
            for c in range(first, first + n):
                img[bitmap + (c - 2) // 8] |= 1 << ((c - 2) % 8)
        entry_set = _exfat_entry_set(name, len(data), first)
        if gone:
            for k in range(0, len(entry_set), 32):
                entry_set[k] &= 0x7F
        pos = rootdir + free_slot * 32
        img[pos : pos + len(entry_set)] = entry_set
        free_slot += len(entry_set) // 32
    path.write_bytes(bytes(img))


def _exfat_entry_set(name: str, size: int, first_cluster: int) -> bytearray:
    units = name.encode("utf-16-le")
    chars = len(units) // 2
    names = -(-chars // 15)
    stamp = (44 << 25) | (1 << 21) | (1 << 16)  # 2024-01-01 00:00:00, DOS date and time
    file_entry = bytearray(32)
    file_entry[0], file_entry[1] = 0x85, 1 + names
    struct.pack_into("<H", file_entry, 4, 0x20)  # archive
    struct.pack_into("<III", file_entry, 8, stamp, stamp, stamp)
    stream = bytearray(32)
    stream[0], stream[1], stream[3] = 0xC0, 0x03, chars  # allocation possible, no FAT chain
    name_hash = 0
    for b in name.upper().encode("utf-16-le"):
        name_hash = (((name_hash << 15) | (name_hash >> 1)) + b) & 0xFFFF
    struct.pack_into("<H", stream, 4, name_hash)
    struct.pack_into("<Q", stream, 8, size)
    struct.pack_into("<I", stream, 20, first_cluster)
    struct.pack_into("<Q", stream, 24, size)
    out = file_entry + stream
    for k in range(names):
        part = units[k * 30 : (k + 1) * 30]
        out += bytes([0xC1, 0]) + part + bytes(30 - len(part))
    checksum = 0
    for k, b in enumerate(out):
        if k in (2, 3):
            continue
        checksum = (((checksum << 15) | (checksum >> 1)) + b) & 0xFFFF
    struct.pack_into("<H", out, 2, checksum)
    return out


def iso_image(path: Path, files: dict[str, bytes], hfsplus: bool = False) -> None:
    """An ISO 9660 image (with Rock Ridge and Joliet names) of ``files``, by ``xorriso``; with
    ``hfsplus``, a hybrid whose Apple partition map also holds an HFS+ file system of the same files."""
    with _staged(files) as tmp:
        if path.exists():
            path.unlink()
        extra = ["-hfsplus"] if hfsplus else []
        _run("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", *extra, "-o", str(path), tmp)


def partitioned(path: Path, file_systems: list[Path], table: str = "gpt", gap_mib: int = 1) -> list[int]:
    """A disk with a ``gpt`` or ``mbr`` (dos) partition table holding each file system image, one per
    partition, with ``gap_mib`` MiB of unallocated space before each. Returns the byte offsets."""
    offsets, pos = [], MiB
    for fs in file_systems:
        offsets.append(pos)
        pos += (fs.stat().st_size + MiB - 1) // MiB * MiB + gap_mib * MiB
    size = pos + MiB  # room for the backup GPT
    with open(path, "wb") as f:
        f.truncate(size)
    label = "gpt" if table == "gpt" else "dos"
    script = f"label: {label}\n" + "".join(
        f"start={off // 512}, size={fs.stat().st_size // 512}, type={'L' if label == 'dos' else 'linux'}\n"
        for off, fs in zip(offsets, file_systems, strict=True)
    )
    exe = shutil.which("sfdisk") or "/usr/sbin/sfdisk"
    if not os.path.exists(exe):
        raise DiskToolMissing("sfdisk is not installed (scripts/install-system-deps.sh)", "sfdisk")
    subprocess.run([exe, "--no-reread", "--no-tell-kernel", "-q", str(path)], input=script.encode(),
                   check=True, capture_output=True)  # fmt: skip
    with open(path, "r+b") as f:
        for off, fs in zip(offsets, file_systems, strict=True):
            f.seek(off)
            f.write(fs.read_bytes())
    return offsets


def to_ewf(raw: Path, target: Path, segment_mib: int | None = None, compression: str = "none") -> list[Path]:
    """An E01 (EnCase 6, uncompressed unless ``compression`` is ``fast`` or ``best``) of ``raw`` with
    its MD5 stored, split into segments of ``segment_mib`` MiB when given. ``target`` is named
    without the ``.E01``; returns the segments."""
    cmd = ["ewfacquire", "-u", "-t", str(target), "-f", "encase6", "-c", compression, "-C", "case",
           "-D", "demo", "-e", "opspoor", "-E", "1", "-N", "benign test image"]  # fmt: skip
    if segment_mib:
        cmd += ["-S", f"{segment_mib}MiB"]
    _run(*cmd, str(raw))
    return sorted(target.parent.glob(target.name + ".E*"))


def qemu_convert(raw: Path, out: Path, fmt: str) -> Path:
    """``raw`` as ``vmdk``, ``qcow2``, ``vhd`` or ``vhdx`` (qemu-img)."""
    _run("qemu-img", "convert", "-f", "raw", "-O", QEMU_FORMATS[fmt], str(raw), str(out))
    return out


def build_demo_disk(dest: Path, evidence: Path) -> Path:
    """``dest/laptop.E01``: a GPT disk with a FAT partition (three pictures from the demo's Download
    folder, one deleted from the camera roll, one more written into free space so that only carving
    finds it) and an ext4 partition (two more camera pictures), acquired as an E01 with its MD5."""
    pictures = sorted(p for p in (evidence / "Download").iterdir() if p.suffix.lower() == ".jpg")
    camera = sorted(p for p in (evidence / "DCIM" / "Camera").iterdir() if p.suffix.lower() == ".jpg")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fat, ext, raw = Path(tmp, "fat.img"), Path(tmp, "ext.img"), Path(tmp, "laptop.raw")
        fat_image(
            fat,
            {f"Users/x/Downloads/{p.name}": p.read_bytes() for p in pictures[:3]},
            deleted={f"Users/x/Pictures/{camera[0].name}": camera[0].read_bytes()},
            carved=[camera[1].read_bytes()],
            size_mib=16,
        )
        ext4_image(ext, {f"home/x/{p.name}": p.read_bytes() for p in camera[2:4]})
        partitioned(raw, [fat, ext], "gpt")
        for old in dest.glob("laptop.E*"):
            old.unlink()
        to_ewf(raw, dest / "laptop", compression="best")
    return dest / "laptop.E01"
