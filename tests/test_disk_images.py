"""Disk images as evidence: every container, MBR/GPT and bare file systems, FAT12/16/32 and ext2/3/4, deleted
files, carving, a zip inside an image, --verify-image, damaged images, read-only, kill and resume.

Every image is built here from benign generated pictures with Debian's tools (opspoor.demo.disks).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from case_rows import case_rows
from opspoor.casefile.scan import scan_case
from opspoor.demo.disks import (
    exfat_image,
    ext4_image,
    ext4_remove,
    fat_image,
    iso_image,
    ntfs_delete,
    ntfs_image,
    partitioned,
    qemu_convert,
    to_ewf,
)
from opspoor.demo.images import generate_image
from opspoor.demo.videos import generate_video
from opspoor.hashsets.model import Category, Entry
from opspoor.signals.engine import hash_bytes
from opspoor.sources import iter_evidence
from opspoor.sources.carving import SECTOR, carve
from opspoor.sources.registry import SOURCE_KINDS
from opspoor.store import import_entries, open_store
from opspoor.triage.config import ScanConfig
from worker_faults import command


def _jpeg(seed: int, size: tuple[int, int] = (160, 120)) -> bytes:
    buf = io.BytesIO()
    generate_image(seed, *size, style="shapes").save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    generate_image(seed, 100, 80, style="shapes").save(buf, "PNG")
    return buf.getvalue()


def _gif(seed: int) -> bytes:
    buf = io.BytesIO()
    generate_image(seed, 90, 60, style="shapes").convert("P").save(buf, "GIF")
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


KNOWN = _jpeg(1)
FAT_FILES = {"dir/a.jpg": KNOWN, "b.png": _png(2), "docs/bundle.zip": _zip({"inner/k.jpg": _jpeg(3)})}
DELETED = {"dir/gone.jpg": _jpeg(4)}
CARVED = [_jpeg(5), _png(6)]
EXT_FILES = {"photos/x.jpg": _jpeg(7), "y.png": _png(8)}
#: evidence paths below the image, and their bytes (TSK shows a deleted FAT name's first letter as _)
EXPECTED = {
    "p1/dir/a.jpg": KNOWN,
    "p1/b.png": FAT_FILES["b.png"],
    "p1/docs/bundle.zip": FAT_FILES["docs/bundle.zip"],
    "p1/docs/bundle.zip!/inner/k.jpg": _jpeg(3),
    "p1/$deleted/dir/_one.jpg": DELETED["dir/gone.jpg"],
    "p2/photos/x.jpg": EXT_FILES["photos/x.jpg"],
    "p2/y.png": EXT_FILES["y.png"],
}


def _md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


@pytest.fixture(scope="module")
def disks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("disks")
    fat, ext = root / "fat.img", root / "ext.img"
    layout = fat_image(fat, FAT_FILES, DELETED, CARVED, size_mib=8)
    ext4_image(ext, EXT_FILES, size_mib=16)
    raw = root / "disk.raw"
    offsets = partitioned(raw, [fat, ext], "gpt")
    carved = {offsets[0] + off: data for off, data in layout.carved.items()}
    out: dict[str, Any] = {
        "root": root,
        "fat": fat,
        "ext": ext,
        "raw": raw,
        "offsets": offsets,
        "carved": carved,
    }
    mbr = root / "mbr.raw"
    partitioned(mbr, [fat, ext], "mbr")
    out["mbr"] = mbr
    split = root / "split"
    split.mkdir()
    data = raw.read_bytes()
    half = len(data) // 2 // 512 * 512
    (split / "disk.001").write_bytes(data[:half])
    (split / "disk.002").write_bytes(data[half:])
    out["split"] = split / "disk.001"
    ewf = root / "ewf"
    ewf.mkdir()
    out["ewf_segments"] = to_ewf(raw, ewf / "disk", segment_mib=8)
    out["ewf"] = ewf / "disk.E01"
    for fmt in ("vmdk", "qcow2", "vhd", "vhdx"):
        out[fmt] = qemu_convert(raw, root / f"disk.{fmt}", fmt)
    return out


def _items(source: Path, **kw: Any) -> dict[str, Any]:
    return {it.path: it for it in iter_evidence([source], **kw)}


@pytest.mark.parametrize("container", ["raw", "mbr", "split", "ewf", "vmdk", "qcow2", "vhd", "vhdx"])
def test_every_container_gives_every_file_deleted_and_carved_item(
    disks: dict[str, Any], container: str
) -> None:
    image: Path = disks[container]
    items = _items(image)
    prefix = f"{image.name}!/"
    inside = {p[len(prefix) :]: it for p, it in items.items() if p.startswith(prefix)}
    for rel, data in EXPECTED.items():
        assert inside[rel].read() == data, rel
    carved = {it.extra["offset"]: it for rel, it in inside.items() if "$carved" in rel}
    assert {off: it.read() for off, it in carved.items()} == disks["carved"]
    for off, it in carved.items():
        ext = "jpg" if it.read().startswith(b"\xff\xd8") else "png"
        assert it.path == f"{prefix}p1/$carved/0x{off:x}.{ext}"
        assert it.extra == {"carved": True, "unallocated": True, "offset": off}
    assert inside["p1/$deleted/dir/_one.jpg"].extra["deleted"] is True
    assert inside["p1/dir/a.jpg"].extra["deleted"] is False
    # the physical location is where the bytes really are in the disk
    raw = disks["raw"].read_bytes()
    a = inside["p1/dir/a.jpg"].extra["offset"]
    assert raw[a : a + len(KNOWN)] == KNOWN
    # nothing else was made up: every item inside is expected, carved, or the zip's own folder
    assert set(inside) == set(EXPECTED) | {rel for rel in inside if "$carved" in rel}
    own = items[image.name]
    assert own.error is None and own.container is not None and own.container.startswith("disk:")
    assert own.extra["image"]["items"] == {"allocated": 5, "deleted": 1, "carved": 2}


def test_no_carve_leaves_unallocated_space_alone(disks: dict[str, Any]) -> None:
    items = _items(disks["raw"], carve=False)
    assert not [p for p in items if "$carved" in p]
    assert items["disk.raw!/p1/$deleted/dir/_one.jpg"].read() == DELETED["dir/gone.jpg"]
    assert items["disk.raw"].extra["image"]["items"]["carved"] == 0


def test_bare_file_systems_have_no_partition_step(disks: dict[str, Any]) -> None:
    fat = _items(disks["fat"])
    assert fat["fat.img!/dir/a.jpg"].read() == KNOWN
    assert fat["fat.img!/$deleted/dir/_one.jpg"].read() == DELETED["dir/gone.jpg"]
    at = 6 << 20  # fat_image writes carved bytes from three quarters into the image, 4 KiB apart
    expected = [f"fat.img!/$carved/0x{at:x}.jpg", f"fat.img!/$carved/0x{at + 8192:x}.png"]
    assert sorted(p for p in fat if "$carved" in p) == expected
    ext = _items(disks["ext"])
    assert {p: it.read() for p, it in ext.items() if "!/" in p} == {
        f"ext.img!/{k}": v for k, v in EXT_FILES.items()
    }


def test_ext4_deleted_and_orphan_files(tmp_path: Path) -> None:
    ext = tmp_path / "ext.img"
    ext4_image(ext, {"d/orphan.jpg": _jpeg(20), "gone.jpg": _jpeg(21), "kept.png": _png(22)})
    ext4_remove(ext, "gone.jpg")  # inode and blocks freed
    ext4_remove(ext, "d/orphan.jpg", keep_inode=True)  # the name dropped, the inode still allocated
    items = _items(ext)
    gone = items["ext.img!/$deleted/gone.jpg"]
    assert gone.read() == _jpeg(21) and gone.extra["deleted"] is True and gone.extra["unallocated"] is True
    orphan = items["ext.img!/$deleted/d/orphan.jpg"]
    assert (
        orphan.read() == _jpeg(20)
        and orphan.extra["deleted"] is True
        and orphan.extra["unallocated"] is False
    )
    assert items["ext.img!/kept.png"].read() == _png(22)
    assert not [p for p in items if "$carved" in p]  # what was recovered is not carved again
    assert items["ext.img"].extra["image"]["items"] == {"allocated": 1, "deleted": 2, "carved": 0}


def _tsk_type(image: Path) -> str:
    """The file system type The Sleuth Kit sees (so a test knows which one it read): ``FAT12`` …"""
    import pytsk3

    ftype = int(pytsk3.FS_Info(pytsk3.Img_Info(str(image))).info.ftype)
    names = ("FAT12", "FAT16", "FAT32", "EXT2", "EXT3", "EXT4")
    return next(n for n in names if int(getattr(pytsk3, f"TSK_FS_TYPE_{n}")) == ftype)


@pytest.mark.parametrize(("bits", "size_mib"), [(12, 4), (16, 16), (32, 40)])
def test_fat12_fat16_and_fat32_with_a_deleted_file(tmp_path: Path, bits: int, size_mib: int) -> None:
    fat = tmp_path / "fat.img"
    fat_image(fat, {"d/a.jpg": KNOWN, "b.png": _png(2)}, DELETED, size_mib=size_mib, fat_bits=bits)
    assert _tsk_type(fat) == f"FAT{bits}"
    items = _items(fat, carve=False)
    assert items["fat.img!/d/a.jpg"].read() == KNOWN and items["fat.img!/b.png"].read() == _png(2)
    gone = items["fat.img!/$deleted/dir/_one.jpg"]
    assert gone.read() == DELETED["dir/gone.jpg"] and gone.extra["deleted"] is True
    assert items["fat.img"].extra["image"]["items"] == {"allocated": 2, "deleted": 1, "carved": 0}


@pytest.mark.parametrize("kind", ["ext2", "ext3"])
def test_ext2_and_ext3(tmp_path: Path, kind: str) -> None:
    fs = tmp_path / f"{kind}.img"
    ext4_image(fs, EXT_FILES, kind=kind)
    assert _tsk_type(fs) == kind.upper()
    assert {p: it.read() for p, it in _items(fs).items() if "!/" in p} == {
        f"{kind}.img!/{k}": v for k, v in EXT_FILES.items()
    }


def test_ntfs_in_an_mbr_partition(tmp_path: Path) -> None:
    ntfs, disk = tmp_path / "ntfs.img", tmp_path / "win.raw"
    ntfs_image(ntfs, {"a.jpg": KNOWN, "b.png": _png(12)})
    partitioned(disk, [ntfs], "mbr")
    items = _items(disk)
    assert items["win.raw!/p1/a.jpg"].read() == KNOWN
    assert items["win.raw!/p1/b.png"].read() == _png(12)
    assert items["win.raw!/p1/$MFT"].extra["deleted"] is False  # NTFS's own files are files too
    assert not [p for p in items if "$OrphanFiles" in p]  # unused MFT slots are not records
    assert items["win.raw"].error is None


def test_ntfs_deleted_file_is_read_from_its_free_mft_record(tmp_path: Path) -> None:
    """ntfs_delete removes the root index entry, frees the MFT record (raising its sequence number,
    as NTFS does) and the clusters: TSK lists the name without pairing it with the record; the walk
    opens the free record by its address and reads the content, which is not carved a second time."""
    big = _jpeg(21, (400, 300))
    fs = tmp_path / "ntfs.img"
    ntfs_image(fs, {"keep.jpg": KNOWN, "gone.jpg": big}, size_mib=8)
    ntfs_delete(fs, "gone.jpg")
    items = _items(fs)
    assert items["ntfs.img!/keep.jpg"].read() == KNOWN
    gone = items["ntfs.img!/$deleted/gone.jpg"]
    assert gone.error is None and gone.read() == big
    assert gone.extra["deleted"] is True and gone.extra["unallocated"] is True
    assert not any("$carved" in p for p in items)  # recovered once, not carved again


def test_exfat_files_and_a_deleted_entry_set(tmp_path: Path) -> None:
    fs = tmp_path / "exfat.img"
    long_name = "a picture with a name longer than fifteen characters.png"
    exfat_image(fs, {"a.jpg": KNOWN, long_name: _png(22)}, deleted={"gone.jpg": _jpeg(23)}, size_mib=8)
    items = _items(fs)
    assert items["exfat.img!/a.jpg"].read() == KNOWN
    assert items[f"exfat.img!/{long_name}"].read() == _png(22)
    gone = items["exfat.img!/$deleted/gone.jpg"]
    assert gone.read() == _jpeg(23) and gone.extra["deleted"] is True


def test_iso9660_and_hfsplus(tmp_path: Path) -> None:
    files = {"dir/a.jpg": KNOWN, "b.png": _png(24)}
    iso = tmp_path / "cd.iso"
    iso_image(iso, files)
    items = _items(iso)
    inside = {p: it.read() for p, it in items.items() if "!/" in p}
    assert inside == {f"cd.iso!/{k}": v for k, v in files.items()}
    # HFS+: the Apple partition of a hybrid ISO (Debian 12 has no mkfs.hfsplus); its ISO 9660 data
    # partitions hold no file system of their own, so they are error records and carved
    hybrid = tmp_path / "mac.iso"
    iso_image(hybrid, files, hfsplus=True)
    items = _items(hybrid)
    hfs = {p.split("!/", 1)[1].split("/", 1)[1]: it for p, it in items.items() if it.extra and
           it.extra.get("deleted") is False and not p.rsplit("/", 1)[-1].startswith("$")}  # fmt: skip
    assert {k: it.read() for k, it in hfs.items()} == files
    parts = items["mac.iso"].extra["image"]["partitions"]
    assert "Apple_HFS" in {p["description"] for p in parts}
    assert "Apple_partition_map" not in {p["description"] for p in parts}  # the table is no partition


@pytest.mark.parametrize("fmt", ["qcow2", "vmdk"])
def test_an_overlay_is_read_through_its_chain_of_parents(tmp_path: Path, fmt: str) -> None:
    """``qemu-img convert -B`` writes only what differs from the backing image: base <- mid <- top,
    each adding a picture. The top is read with both parents (read-only, found beside it); an overlay
    whose parent is missing is an error record naming the parent, not a half-read disk."""
    pics = {"a.jpg": _jpeg(31), "b.jpg": _jpeg(32), "c.jpg": _jpeg(33)}
    raws = []
    for n in (1, 2, 3):
        raw = tmp_path / f"v{n}.raw"
        fat_image(raw, dict(list(pics.items())[:n]), size_mib=4)
        raws.append(raw)
    d = tmp_path / "vm"
    d.mkdir()
    qemu_convert(raws[0], d / f"base.{fmt}", fmt)
    for raw, name, parent in ((raws[1], "mid", "base"), (raws[2], "top", "mid")):
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-B", f"{parent}.{fmt}", "-F", fmt, "-O", fmt,
                        str(raw), f"{name}.{fmt}"], cwd=d, check=True, capture_output=True)  # fmt: skip
    before = _stamp(list(d.iterdir()))
    items = _items(d / f"top.{fmt}")
    assert {p: it.read() for p, it in items.items() if "!/" in p} == {
        f"top.{fmt}!/{k}": v for k, v in pics.items()
    }
    assert items[f"top.{fmt}"].extra["image"]["parents"] == [f"mid.{fmt}", f"base.{fmt}"]
    assert _stamp(list(d.iterdir())) == before
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(d / f"top.{fmt}", lone)
    own = _items(lone / f"top.{fmt}")[f"top.{fmt}"]
    assert own.error is not None and f"parent image 'mid.{fmt}' is not beside it" in own.error.message


def test_disk_images_nested_in_a_zip_and_in_another_image_are_walked(
    disks: dict[str, Any], tmp_path: Path
) -> None:
    """An E01 inside a zip, and a raw FAT image in a folder of an ext4 file system inside an E01:
    both are copied to an owner-only temporary file (removed afterwards) and walked; evidence paths
    name every step and each image reconciles its own items."""
    import tempfile

    src = tmp_path / "src"
    src.mkdir()
    (tmp_path / "e").mkdir()
    seg = to_ewf(disks["fat"], tmp_path / "e" / "stick")[0]
    (src / "bundle.zip").write_bytes(_zip({"exhibits/stick.E01": seg.read_bytes()}))
    ext = tmp_path / "outer.raw"
    ext4_image(ext, {"vm/fat.raw": disks["fat"].read_bytes(), "x.jpg": _jpeg(41)}, size_mib=24)
    (tmp_path / "o").mkdir()
    shutil.copy(to_ewf(ext, tmp_path / "o" / "laptop")[0], src / "laptop.E01")
    before = set(Path(tempfile.gettempdir()).glob("opspoor-image-*"))
    case = tmp_path / "case"
    result = scan_case(ScanConfig(sources=[src], hashsets=["known"], case_dir=case,
                                  db_url=_store(disks["root"]), workers=1, carve=False))  # fmt: skip
    assert set(Path(tempfile.gettempdir()).glob("opspoor-image-*")) == before  # the copies are gone
    recs = {r["path"]: r for r in map(json.loads, (case / "files.jsonl").read_text().splitlines())}
    in_zip = "src/bundle.zip!/exhibits/stick.E01"
    assert recs[f"{in_zip}!/dir/a.jpg"]["status"] == "known"
    assert recs[f"{in_zip}!/$deleted/dir/_one.jpg"]["md5"] == _md5(DELETED["dir/gone.jpg"])
    assert recs[f"{in_zip}!/docs/bundle.zip!/inner/k.jpg"]["md5"] == _md5(_jpeg(3))
    assert recs[in_zip]["md5"] == _md5(seg.read_bytes())  # the image's own record: the E01's bytes
    in_image = "src/laptop.E01!/vm/fat.raw"
    assert recs[f"{in_image}!/dir/a.jpg"]["status"] == "known"
    assert recs[in_image]["md5"] == _md5(disks["fat"].read_bytes()) and recs[in_image]["deleted"] is False
    assert recs["src/laptop.E01!/x.jpg"]["md5"] == _md5(_jpeg(41))
    images = result.summary["disk_images"]
    assert set(images) == {in_zip, in_image, "src/laptop.E01"}
    assert all(v["reconciled"] for v in images.values()), images
    assert images["src/laptop.E01"]["records"]["allocated"] == 2  # fat.raw and x.jpg, not fat.raw's files


def test_a_file_named_like_an_image_that_is_a_picture_stays_a_picture(tmp_path: Path) -> None:
    (tmp_path / "photo.img").write_bytes(KNOWN)
    (tmp_path / "blob.dd").write_bytes(b"\x01" * 4096)  # no partition table, no file system
    items = _items(tmp_path)
    assert set(items) == {f"{tmp_path.name}/photo.img", f"{tmp_path.name}/blob.dd"}
    photo = items[f"{tmp_path.name}/photo.img"]
    assert photo.container is None and photo.error is None and photo.read() == KNOWN
    # a raw image with no table and no file system is still a disk: carved (nothing here), and said
    blob = items[f"{tmp_path.name}/blob.dd"]
    assert blob.container == "disk:raw" and blob.error is not None and "carved" in blob.error.message
    assert [k.name for k in SOURCE_KINDS] == ["disk image", "archive"]


def test_carving_finds_each_type_by_its_structure(tmp_path: Path) -> None:
    generate_video(tmp_path / "v.mp4", seed=3, seconds=1, fps=5, size=(64, 48))
    generate_video(tmp_path / "v.mov", seed=4, seconds=1, fps=5, size=(64, 48), container="mov")
    files = {"jpg": _jpeg(9), "png": _png(10), "gif": _gif(11), "mp4": (tmp_path / "v.mp4").read_bytes(),
             "mov": (tmp_path / "v.mov").read_bytes(), "zip": _zip({"a.txt": b"hello"})}  # fmt: skip
    assert files["mov"][4:12] == b"ftypqt  "  # QuickTime's brand: carved by the same ftyp rule, as .mp4
    disk = bytearray(os.urandom(64) + b"\xff\xd8\xff\xe0" + bytes(1000))  # a header off a sector: ignored
    where = {}
    for ext, data in files.items():
        disk += bytes(-len(disk) % SECTOR + SECTOR)
        where[len(disk)] = (ext, data)
        disk += data
    disk += bytes(4096)
    blob = bytes(disk)
    found = list(carve(lambda o, n: blob[o : o + n], 0, len(blob), 1 << 30, set()))
    named = {"mov": "mp4"}
    assert {(c.offset, c.ext, c.length) for c in found} == {
        (o, named.get(e, e), len(d)) for o, (e, d) in where.items()
    }
    # the size limit and the offsets already taken are respected
    assert not [c for c in carve(lambda o, n: blob[o : o + n], 0, len(blob), 100, set()) if c.ext == "jpg"]
    jpg_at = next(o for o, (e, _) in where.items() if e == "jpg")
    assert jpg_at not in {
        c.offset for c in carve(lambda o, n: blob[o : o + n], 0, len(blob), 1 << 30, {jpg_at})
    }


# --- the scan end to end --------------------------------------------------------------------
def _store(root: Path) -> str:
    db = f"sqlite:///{root / 'store.sqlite'}"
    if not (root / "store.sqlite").exists():
        store = open_store(db)
        s = hash_bytes(KNOWN)
        import_entries(store, "known", [Entry({"md5": s.md5}, Category("us-cat", "1"), external_id="k")],
                       kind="known")  # fmt: skip
        store.close()
    return db


def _stamp(paths: list[Path]) -> dict[str, tuple[str, int, int]]:
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns, p.stat().st_size)
            for p in paths}  # fmt: skip


def test_scan_of_an_e01_verifies_it_matches_inside_and_never_changes_it(
    disks: dict[str, Any], tmp_path: Path
) -> None:
    segments: list[Path] = disks["ewf_segments"]
    assert len(segments) > 1  # split segments
    before = _stamp(segments)
    case = tmp_path / "case"
    db = _store(disks["root"])
    cfg = ScanConfig(
        sources=[disks["ewf"].parent],
        hashsets=["known"],
        case_dir=case,
        db_url=db,
        workers=2,
        verify_images=True,
    )
    result = scan_case(cfg)
    assert _stamp(segments) == before  # bytes and timestamps unchanged
    assert result.reconciled
    recs = {r["path"]: r for r in map(json.loads, (case / "files.jsonl").read_text().splitlines())}
    top = "ewf/disk.E01!/"
    assert recs[top + "p1/dir/a.jpg"]["status"] == "known"
    assert recs[top + "p1/$deleted/dir/_one.jpg"]["deleted"] is True
    assert recs[top + "p1/$deleted/dir/_one.jpg"]["md5"] == _md5(DELETED["dir/gone.jpg"])
    assert recs[top + "p1/docs/bundle.zip!/inner/k.jpg"]["md5"] == _md5(_jpeg(3))
    carved = [r for p, r in recs.items() if "$carved" in p]
    assert {r["offset"]: r["md5"] for r in carved} == {o: _md5(d) for o, d in disks["carved"].items()}
    # later segments are files of the folder too, hashed as they are
    assert {"ewf/disk.E02", "ewf/disk.E01"} <= set(recs)
    summary = json.loads((case / "summary.json").read_text())
    image = summary["disk_images"]["ewf/disk.E01"]
    assert image["verification"]["result"] == "verified"
    assert image["verification"]["stored"]["md5"] == _md5(disks["raw"].read_bytes())
    assert image["reconciled"] and image["records"] == {"allocated": 5, "deleted": 1, "carved": 2}
    vics = json.loads((case / "export-vics.json").read_text())
    files = {f["FilePath"]: f for m in vics["value"][0]["Media"] for f in m["MediaFiles"]}
    assert files[top + "p1/$deleted/dir/_one.jpg"]["Deleted"] is True
    gone = files[top + "p1/$deleted/dir/_one.jpg"]
    assert gone["Unallocated"] is True and isinstance(gone["PhysicalLocation"], int)
    first = min(disks["carved"])
    assert files[f"{top}p1/$carved/0x{first:x}.jpg"]["PhysicalLocation"] == first
    assert files[top + "p1/dir/a.jpg"]["Deleted"] is False


def _altered_e01(disks: dict[str, Any], tmp_path: Path, at: slice = slice(100, 164)) -> Path:
    """A copy of the E01 whose media data differs from what was acquired: one byte flipped where
    the bytes ``at`` of a picture first appear (100-164: a JPEG header, shared by the pictures)."""
    copy = tmp_path / "ewf"
    copy.mkdir()
    for seg in disks["ewf_segments"]:
        shutil.copy(seg, copy / seg.name)
    # one flipped byte inside a picture's bytes in the (uncompressed) media data of some segment
    target = EXT_FILES["photos/x.jpg"][at]
    seg = next(s for s in sorted(copy.iterdir()) if target in s.read_bytes())
    data = bytearray(seg.read_bytes())
    data[data.find(target) + 10] ^= 0xFF
    seg.write_bytes(bytes(data))
    return copy / "disk.E01"


def test_verify_image_reports_a_mismatch(disks: dict[str, Any], tmp_path: Path) -> None:
    image = _items(_altered_e01(disks, tmp_path), verify_images=True)["disk.E01"]
    verification = image.extra["image"]["verification"]
    assert verification["result"] == "MISMATCH", verification
    assert verification["stored"]["md5"] != verification["computed"]["md5"]


def test_scan_exits_3_on_a_mismatch_and_still_writes_the_whole_case(
    disks: dict[str, Any], tmp_path: Path
) -> None:
    e01 = _altered_e01(disks, tmp_path)
    case = tmp_path / "case"
    done = subprocess.run(
        [sys.executable, "-m", "opspoor", "scan", str(e01.parent), "--hashset", "known", "--case", str(case),
         "--db", _store(disks["root"]), "--workers", "1", "--verify-image", "--no-carve"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "ewf/disk.E01: acquisition hash MISMATCH" in done.stderr
    summary = json.loads((case / "summary.json").read_text())
    assert summary["disk_images"]["ewf/disk.E01"]["verification"]["result"] == "MISMATCH"
    assert summary["reconciled"]
    assert (case / "report.html").is_file() and (case / "export-vics.json").is_file()


# --- damaged images ---------------------------------------------------------------------------
def test_a_corrupt_partition_table_is_an_error_and_the_image_is_still_carved(
    disks: dict[str, Any], tmp_path: Path
) -> None:
    bad = tmp_path / "wiped.raw"
    data = bytearray(disks["raw"].read_bytes())
    data[: 64 * 512] = bytes(64 * 512)  # MBR and the primary GPT gone
    data[-64 * 512 :] = bytes(64 * 512)  # and the backup GPT
    data[disks["offsets"][0] : disks["offsets"][0] + 512] = bytes(512)  # and the FAT boot sector
    data[disks["offsets"][1] + 1024 : disks["offsets"][1] + 2048] = bytes(1024)  # and the ext4 superblock
    bad.write_bytes(bytes(data))
    items = _items(bad)
    own = items["wiped.raw"]
    assert own.error is not None and type(own.error).__name__ == "DamagedImage"
    carved = {it.read() for p, it in items.items() if "$carved" in p}
    assert KNOWN in carved and EXT_FILES["photos/x.jpg"] in carved  # the rest was still scanned


def test_an_unreadable_file_system_names_its_partition_and_the_others_are_walked(
    disks: dict[str, Any], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.raw"
    data = bytearray(disks["raw"].read_bytes())
    off = disks["offsets"][1]
    data[off + 1024 : off + 2048] = bytes(1024)  # the ext4 superblock
    bad.write_bytes(bytes(data))
    items = _items(bad)
    err = items["bad.raw!/p2"].error
    assert err is not None and f"byte offset {off}" in err.message
    assert items["bad.raw!/p1/dir/a.jpg"].read() == KNOWN
    assert EXT_FILES["photos/x.jpg"] in {
        it.read() for p, it in items.items() if p.startswith("bad.raw!/p2/$carved/")
    }


def _truncated_ewf(disks: dict[str, Any], tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the segmented E01 whose last segment is cut in half: (its folder, that segment)."""
    copy = tmp_path / "ewf"
    copy.mkdir()
    for seg in disks["ewf_segments"]:
        shutil.copy(seg, copy / seg.name)
    last = sorted(copy.glob("disk.E0*"))[-1]
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    return copy, last


def test_a_truncated_ewf_segment_becomes_error_records_not_a_crash(
    disks: dict[str, Any], tmp_path: Path
) -> None:
    copy, last = _truncated_ewf(disks, tmp_path)
    items = _items(copy)
    assert "ewf/disk.E01" in items
    errors = [it for it in items.values() if it.error is not None]
    assert errors, "the damage is recorded"
    assert all(e.error is not None and e.error.where for e in errors)
    own = items["ewf/disk.E01"].error
    assert own is not None and f"segment {last.name} is truncated at byte" in own.message, own.message
    assert "cannot be located" in own.message and "bytes " in own.message
    # what lies before the lost part is still read
    assert items["ewf/disk.E01!/p1/dir/a.jpg"].read() == KNOWN
    # --verify-image says the image is truncated, not that it stores no hash (the hash was at its end)
    verification = _items(copy, verify_images=True)["ewf/disk.E01"].extra["image"]["verification"]
    assert verification["result"] == "unreadable" and last.name in verification["detail"], verification


def test_the_scan_log_says_why_a_truncated_image_cannot_be_verified(
    disks: dict[str, Any], tmp_path: Path
) -> None:
    copy, last = _truncated_ewf(disks, tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "opspoor", "scan", str(copy), "--hashset", "known",
         "--case", str(tmp_path / "c"), "--db", _store(disks["root"]), "--workers", "1",
         "--verify-image", "--no-carve"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    line = next(x for x in done.stderr.splitlines() if "acquisition hash" in x)
    # the segment at fault, not "stored: none" (the stored hash was in the lost part)
    assert "acquisition hash unreadable (" in line and last.name in line and "stored: none" not in line, line


@pytest.mark.parametrize("cut", ["inside the chunks", "inside the table"])
def test_an_e01_truncated_before_its_table_is_still_read_chunk_by_chunk(
    disks: dict[str, Any], tmp_path: Path, cut: str
) -> None:
    """A one-segment E01 cut short loses its chunk table (libewf then reads nothing of it, or will not
    open it): its uncompressed chunks are read without the table, each checked by its own Adler-32."""
    e01 = tmp_path / "one" / "disk"
    e01.parent.mkdir()
    to_ewf(disks["raw"], e01)
    seg = e01.parent / "disk.E01"
    data = seg.read_bytes()
    table = data.rfind(b"table\x00")  # the descriptor of the chunk table, after the chunks
    seg.write_bytes(data[: table - 4096] if cut == "inside the chunks" else data[: table + 300])
    items = _items(seg)
    own = items["disk.E01"].error
    assert own is not None and "segment disk.E01 is truncated at byte" in own.message, own
    assert items["disk.E01!/p1/dir/a.jpg"].read() == KNOWN  # the first partition lies before the cut


def test_flipped_bytes_in_an_e01_chunk_name_the_region_without_verify_image(
    disks: dict[str, Any], tmp_path: Path
) -> None:
    """libewf returns a chunk whose checksum fails as zeros and says nothing; the scan checks such a
    chunk against its stored form, so the file over it and the image name the region."""
    big = _jpeg(11, (1200, 900))  # large enough that a whole chunk (32 KiB) holds only its bytes
    raw = tmp_path / "ext.raw"
    ext4_image(raw, {"big.jpg": big, "a.jpg": KNOWN}, size_mib=8)
    (tmp_path / "e").mkdir()
    seg = to_ewf(raw, tmp_path / "e" / "disk")[0]
    data = bytearray(seg.read_bytes())
    data[data.find(big[len(big) // 2 : len(big) // 2 + 64]) + 10] ^= 0xFF
    seg.write_bytes(bytes(data))
    case = tmp_path / "case"
    cfg = ScanConfig(sources=[seg], hashsets=["known"], case_dir=case, db_url=_store(disks["root"]),
                     workers=1, carve=False)  # fmt: skip
    result = scan_case(cfg)
    recs = {r["path"]: r for r in map(json.loads, (case / "files.jsonl").read_text().splitlines())}
    # the report's SHA-256 of the source file is its record's (taken while the image was walked)
    sha = hashlib.sha256(seg.read_bytes()).hexdigest()
    assert result.summary["source_details"][0]["sha256"] == sha == recs["disk.E01"]["sha256"]
    hit = recs["disk.E01!/big.jpg"]
    assert hit["error"] and "unreadable region" in hit["error"] and "bytes " in hit["error"], hit
    assert hit["md5"] and hit["md5"] != _md5(big)  # hashed as read, and said
    intact = recs["disk.E01!/a.jpg"]
    assert intact["error"] is None and intact["status"] == "known"
    own = recs["disk.E01"]
    assert own["error"] and "unreadable region" in own["error"], own


# --- kill and resume --------------------------------------------------------------------------
def _cli(
    src: Path, case: Path, db: str, workers: int = 1, hang: str | None = None
) -> subprocess.Popen[bytes]:
    """``opspoor scan`` in a subprocess; with ``hang``, the worker never finishes that file (a
    test-only fault), so the scan cannot end before the test kills it."""
    args = ["scan", str(src), "--hashset", "known", "--case", str(case), "--db", db,
            "--workers", str(workers), "--json-log"]  # fmt: skip
    argv = command(f"hang:{hang}", *args) if hang else [sys.executable, "-m", "opspoor", *args]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_kill_mid_image_and_resume(tmp_path: Path) -> None:
    files = {f"d{k % 4}/p{k}.jpg": _jpeg(100 + k, (320, 240)) for k in range(60)}
    fat = tmp_path / "ev" / "big.img"
    fat.parent.mkdir()
    fat_image(fat, files, {f"d0/x{k}.jpg": _jpeg(200 + k) for k in range(5)}, [_jpeg(300), _png(301)], 16)
    db = _store(tmp_path)
    ref = tmp_path / "ref"
    assert _cli(fat.parent, ref, db, 2).wait(timeout=300) == 0
    expected = (ref / "files.jsonl").read_text().splitlines()
    assert len(expected) == 60 + 5 + 2 + 1
    # one late file never finishes in the killed runs, so the kill always lands mid-image
    hang = json.loads(expected[-8])["path"].rsplit("/", 1)[1]
    for point, rows in enumerate((1, 30)):
        case = tmp_path / f"k{point}"
        proc = _cli(fat.parent, case, db, hang=hang)
        deadline, last, since = time.monotonic() + 120, -1, time.monotonic()
        while time.monotonic() < deadline and proc.poll() is None and (now := case_rows(case)) < rows:
            if now != last:
                last, since = now, time.monotonic()
            elif now >= 0 and time.monotonic() - since > 5:  # case open, stalled at the hung file: kill
                break
            time.sleep(0.01)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert 0 <= case_rows(case) < len(expected), "killed mid-image"
        assert _cli(fat.parent, case, db, 2).wait(timeout=300) == 0
        got = (case / "files.jsonl").read_text().splitlines()
        paths = [json.loads(r)["path"] for r in got]
        assert len(paths) == len(set(paths)), "no duplicates"
        assert got == expected, f"kill point {point}"
        summary = json.loads((case / "summary.json").read_text())
        assert summary["reconciled"] and summary["disk_images"]["ev/big.img"]["reconciled"]


def test_pictures_inside_the_image_are_the_same_pictures(disks: dict[str, Any]) -> None:
    """Decoded from the image they are the pictures that were written (not a truncated copy)."""
    it = _items(disks["raw"])["disk.raw!/p2/photos/x.jpg"]
    assert Image.open(io.BytesIO(it.read())).size == (160, 120)
