"""Small benign disk images for the tests, the demo and the benchmark, built with Debian's tools
(no root, nothing mounted): ``mkfs.fat`` + ``mtools`` (``mcopy``, ``mdel`` for deleted entries),
``mke2fs -d`` (ext4 from a folder), ``sfdisk`` (MBR/GPT), ``ewfacquire`` (E01) and ``qemu-img``
(VMDK, QCOW2, VHD, VHDX). ``scripts/install-system-deps.sh`` installs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
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
    carved: list[bytes] | None = None, size_mib: int = 8,
) -> FatLayout:  # fmt: skip
    """A bare FAT file system image: ``files`` written, ``deleted`` written and then deleted with
    ``mdel``, ``carved`` written straight into free sectors in the last quarter of the image (no
    directory entry ever pointed at them)."""
    if path.exists():
        path.unlink()
    _run("mkfs.fat", "-C", "-n", "OPSPOOR", str(path), str(size_mib * 1024))
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


def ext4_image(path: Path, files: dict[str, bytes], size_mib: int = 16) -> None:
    """An ext4 file system image populated from ``files`` by ``mke2fs -d`` (no mount)."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            p = Path(tmp, name)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        if path.exists():
            path.unlink()
        _run("mke2fs", "-q", "-F", "-t", "ext4", "-d", tmp, str(path), f"{size_mib}M")


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
