"""Evidence sources: folders, archives (nested), limits, hostile input, read-only access, accounting."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import pickle
import struct
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import py7zr
import pytest
from PIL import Image

from opspoor.demo.malformed import EMPTY_FILE, make_malformed_corpus
from opspoor.errors import (
    ArchiveBomb,
    ArchiveError,
    CorruptArchive,
    DepthLimit,
    EncryptedContent,
    MemberTooLarge,
    SourceError,
    SymlinkNotFollowed,
    UnreadableSource,
    UnsafeMemberName,
    VanishedSource,
)
from opspoor.sources import EvidenceItem, Limits, count_evidence, iter_evidence

# --- builders ---------------------------------------------------------------------------


def png_bytes(seed: int, size: tuple[int, int] = (48, 32), fmt: str = "PNG") -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def zip_bytes(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name, (2021, 5, 6, 7, 8, 10)), data, compress_type=method)
    return buf.getvalue()


def tar_bytes(members: list[tuple[str, bytes]], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:  # type: ignore[call-overload]
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sevenzip_bytes(members: list[tuple[str, bytes]], password: str | None = None) -> bytes:
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w", password=password) as sz:
        for name, data in members:
            sz.writestr(data, name)
    return buf.getvalue()


def records(sources: list[Path], limits: Limits = Limits()) -> dict[str, EvidenceItem]:
    out: dict[str, EvidenceItem] = {}
    for item in iter_evidence(sources, limits):
        assert item.path not in out, f"path yielded twice: {item.path}"
        out[item.path] = item
    return out


def reason(item: EvidenceItem) -> str | None:
    return item.error.reason if item.error else None


# --- folders -----------------------------------------------------------------------------


@pytest.fixture
def dump(tmp_path: Path) -> Path:
    d = tmp_path / "x" / "dump"
    (d / "b" / "deeper").mkdir(parents=True)
    (d / "a").mkdir()
    (d / "z.jpg").write_bytes(png_bytes(1, fmt="JPEG"))
    (d / "a" / "one.png").write_bytes(png_bytes(2))
    (d / "b" / "notes.txt").write_text("plain text\n")
    (d / "b" / "deeper" / "two.png").write_bytes(png_bytes(3))
    (d / "empty.bin").write_bytes(b"")
    return d


def test_folder_is_walked_sorted_with_paths_relative_to_the_source_parent(dump: Path) -> None:
    items = list(iter_evidence([dump]))
    paths = [i.path for i in items]
    assert paths == [
        "dump/a/one.png",
        "dump/b/deeper/two.png",
        "dump/b/notes.txt",
        "dump/empty.bin",
        "dump/z.jpg",
    ]
    assert paths == [i.path for i in iter_evidence([dump])]  # deterministic
    by = {i.path: i for i in items}
    assert by["dump/a/one.png"].read() == (dump / "a" / "one.png").read_bytes()
    assert by["dump/b/notes.txt"].size == len("plain text\n")
    assert all(i.depth == 0 and i.container is None and i.error is None for i in items)
    with by["dump/z.jpg"].open() as f:
        assert f.read(3) == b"\xff\xd8\xff"


def test_single_file_source_yields_its_name(dump: Path) -> None:
    (item,) = iter_evidence([dump / "b" / "notes.txt"])
    assert item.path == "notes.txt" and item.read() == b"plain text\n"


def test_zero_byte_file_is_a_normal_record(dump: Path) -> None:
    item = records([dump])["dump/empty.bin"]
    assert item.error is None and item.size == 0 and item.read() == b""


def test_sources_with_the_same_name_get_distinct_paths(tmp_path: Path) -> None:
    for side in ("p", "q"):
        (tmp_path / side / "dump").mkdir(parents=True)
        (tmp_path / side / "dump" / "f.txt").write_text(side)
    got = records([tmp_path / "p" / "dump", tmp_path / "q" / "dump"])
    assert got["dump/f.txt"].read() == b"p" and got["dump#2/f.txt"].read() == b"q"


def test_undecodable_file_names_are_escaped(tmp_path: Path) -> None:
    d = tmp_path / "dump"
    d.mkdir()
    with open(os.path.join(os.fsencode(d), b"caf\xe9 ok!"), "wb") as f:
        f.write(b"latin-1 name")
    (item,) = iter_evidence([d])
    assert item.path == "dump/caf%E9 ok%21"
    assert item.read() == b"latin-1 name"
    item.path.encode("utf-8")  # storable as JSON text


def test_symlinks_loops_and_special_files_each_give_one_record(tmp_path: Path) -> None:
    d = tmp_path / "dump"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "real.txt").write_text("real")
    (tmp_path / "outside.txt").write_text("outside")
    os.symlink("sub/real.txt", d / "inside.lnk")
    os.symlink(tmp_path / "outside.txt", d / "outside.lnk")
    os.symlink("self.lnk", d / "self.lnk")
    os.symlink("ping.lnk", d / "pong.lnk")
    os.symlink("pong.lnk", d / "ping.lnk")
    os.symlink("missing.txt", d / "broken.lnk")
    os.symlink("..", d / "sub" / "parent.lnk")  # a directory loop if followed
    os.mkfifo(d / "pipe")
    got = records([d])
    assert sorted(got) == sorted(
        f"dump/{n}"
        for n in ("sub/real.txt", "inside.lnk", "outside.lnk", "self.lnk", "pong.lnk", "ping.lnk",
                  "broken.lnk", "sub/parent.lnk", "pipe")
    )  # fmt: skip
    assert got["dump/inside.lnk"].error is None and got["dump/inside.lnk"].read() == b"real"
    for name in ("outside.lnk", "self.lnk", "ping.lnk", "pong.lnk", "broken.lnk", "sub/parent.lnk"):
        item = got[f"dump/{name}"]
        assert isinstance(item.error, SymlinkNotFollowed), name
        assert not item.has_content and item.error.where == item.path
    assert "loop" in got["dump/self.lnk"].error.message  # type: ignore[union-attr]
    assert "broken" in got["dump/broken.lnk"].error.message  # type: ignore[union-attr]
    assert isinstance(got["dump/pipe"].error, UnreadableSource)
    assert "fifo" in got["dump/pipe"].error.message


def test_unreadable_file_becomes_an_error_record(dump: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # tests run as root, so chmod 000 would not stop a read: refuse the open instead
    target = str(dump / "b" / "notes.txt")
    real_open = os.open

    def refusing_open(path: str, flags: int, *args: int) -> int:
        if os.fspath(path) == target:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refusing_open)
    got = records([dump])
    bad = got["dump/b/notes.txt"]
    assert isinstance(bad.error, UnreadableSource) and "permission" in bad.error.message
    assert not bad.has_content
    assert got["dump/a/one.png"].error is None and len(got) == 5


def test_file_vanishing_between_listing_and_reading(dump: Path) -> None:
    it = iter_evidence([dump])
    assert [next(it).path, next(it).path] == ["dump/a/one.png", "dump/b/deeper/two.png"]
    (dump / "b" / "notes.txt").unlink()  # its directory is listed already; gone before its stat
    gone = next(it)
    assert gone.path == "dump/b/notes.txt" and isinstance(gone.error, VanishedSource)
    assert not gone.has_content
    assert next(it).path == "dump/empty.bin"
    last = next(it)
    (dump / "z.jpg").unlink()  # yielded, then gone before the consumer reads it
    with pytest.raises(VanishedSource) as exc:
        last.read()
    assert exc.value.where == "dump/z.jpg"
    assert list(it) == []


def test_items_survive_pickling_for_a_process_pool(tmp_path: Path) -> None:
    d = tmp_path / "dump"
    d.mkdir()
    (d / "f.txt").write_text("on disk")
    (d / "a.zip").write_bytes(zip_bytes([("m.txt", b"in zip")]))
    got = {i.path: pickle.loads(pickle.dumps(i)) for i in iter_evidence([d])}
    assert got["dump/f.txt"].read() == b"on disk"
    assert got["dump/a.zip!/m.txt"].read() == b"in zip"
    err = pickle.loads(pickle.dumps(VanishedSource("gone", "dump/x")))
    assert err.where == "dump/x"


# --- archives -----------------------------------------------------------------------------


def test_zip_in_tar_gz_in_7z_nested(tmp_path: Path) -> None:
    img = png_bytes(4)
    inner_zip = zip_bytes([("2019/a.png", img), ("2019/notes.txt", b"zip note")])
    tgz = tar_bytes([("photos/inner.zip", inner_zip), ("readme.txt", b"tar readme")], "w:gz")
    outer = sevenzip_bytes([("backup/t.tar.gz", tgz), ("top.txt", b"seven"), ("empty.txt", b"")])
    d = tmp_path / "dump"
    d.mkdir()
    (d / "Photos.7z").write_bytes(outer)
    items = list(iter_evidence([d]))
    got = {i.path: i for i in items}
    base = "dump/Photos.7z!/backup/t.tar.gz!/photos/inner.zip"
    assert got[f"{base}!/2019/a.png"].read() == img
    assert got[f"{base}!/2019/a.png"].depth == 3
    assert got[f"{base}!/2019/notes.txt"].read() == b"zip note"
    assert got[base].container == "zip" and got[base].read() == inner_zip and got[base].depth == 2
    tgz_item = got["dump/Photos.7z!/backup/t.tar.gz"]
    assert tgz_item.container == "tar.gz" and tgz_item.read() == tgz and tgz_item.depth == 1
    assert got["dump/Photos.7z!/backup/t.tar.gz!/readme.txt"].read() == b"tar readme"
    assert got["dump/Photos.7z!/top.txt"].read() == b"seven"
    assert got["dump/Photos.7z!/empty.txt"].read() == b"" and got["dump/Photos.7z!/empty.txt"].size == 0
    assert got["dump/Photos.7z"].container == "7z" and got["dump/Photos.7z"].read() == outer
    assert all(i.error is None for i in items)
    # every archive comes after all of its members
    order = [i.path for i in items]
    for i, path in enumerate(order):
        assert not any(p.startswith(path + "!/") for p in order[i + 1 :]), path
    assert order[-1] == "dump/Photos.7z"


def test_single_file_compressions(tmp_path: Path) -> None:
    d = tmp_path / "dump"
    d.mkdir()
    (d / "notes.txt.gz").write_bytes(gzip.compress(b"gz text"))
    (d / "pic.png.bz2").write_bytes(bz2.compress(png_bytes(5)))
    (d / "blob").write_bytes(lzma.compress(b"xz without a suffix"))
    (d / "pics.tar.xz").write_bytes(tar_bytes([("p.png", png_bytes(6))], "w:xz"))
    (d / "arch.zip.gz").write_bytes(gzip.compress(zip_bytes([("in.txt", b"inside")])))
    got = records([d])
    assert got["dump/notes.txt.gz!/notes.txt"].read() == b"gz text"
    assert got["dump/notes.txt.gz"].container == "gzip"
    assert got["dump/pic.png.bz2!/pic.png"].read() == png_bytes(5)
    assert got["dump/blob!/data"].read() == b"xz without a suffix"
    assert got["dump/pics.tar.xz!/p.png"].read() == png_bytes(6)
    assert got["dump/pics.tar.xz"].container == "tar.xz"
    assert got["dump/arch.zip.gz!/arch.zip"].container == "zip"
    assert got["dump/arch.zip.gz!/arch.zip!/in.txt"].read() == b"inside"
    assert all(i.error is None for i in got.values())


def test_archives_are_recognised_by_magic_not_by_name(tmp_path: Path) -> None:
    d = tmp_path / "dump"
    d.mkdir()
    (d / "holiday.jpg").write_bytes(zip_bytes([("hidden.png", png_bytes(7))]))
    (d / "fake.zip").write_bytes(b"this is text, not a zip")
    (d / "gzlike").write_bytes(b"\x1f\x8b" + b"not gzip at all" * 10)  # two magic bytes by chance
    got = records([d])
    assert got["dump/holiday.jpg"].container == "zip"
    assert got["dump/holiday.jpg!/hidden.png"].read() == png_bytes(7)
    assert got["dump/fake.zip"].container is None and got["dump/fake.zip"].error is None
    assert got["dump/gzlike"].container is None and len(got) == 4


def test_zip_bomb_member_ratio_stops_that_member_only(tmp_path: Path) -> None:
    limits = Limits(max_ratio=50, ratio_min_bytes=64 << 10)
    data = zip_bytes([("a.txt", b"before"), ("zeros.bin", bytes(1 << 20)), ("b.png", png_bytes(8))])
    (tmp_path / "bomb.zip").write_bytes(data)
    got = records([tmp_path / "bomb.zip"], limits)
    bomb = got["bomb.zip!/zeros.bin"]
    assert isinstance(bomb.error, ArchiveBomb) and "ratio" in bomb.error.message
    assert not bomb.has_content and bomb.size == 1 << 20
    assert got["bomb.zip!/a.txt"].read() == b"before"
    assert got["bomb.zip!/b.png"].read() == png_bytes(8)
    assert got["bomb.zip"].error is None


def test_zip_total_uncompressed_limit(tmp_path: Path) -> None:
    members = [(f"m{i}.bin", os.urandom(40_000)) for i in range(4)]
    (tmp_path / "t.zip").write_bytes(zip_bytes(members))
    got = records([tmp_path / "t.zip"], Limits(max_total_uncompressed=100_000))
    assert [reason(got[f"t.zip!/m{i}.bin"]) for i in range(4)] == [None, None, "ArchiveBomb", "ArchiveBomb"]
    assert "total" in got["t.zip!/m2.bin"].error.message  # type: ignore[union-attr]


def test_zip_lying_size_header(tmp_path: Path) -> None:
    data = bytearray(zip_bytes([("liar.txt", b"y" * 50_000), ("honest.txt", b"ok")]))
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # uncompressed size of the first entry
        struct.pack_into("<I", data, data.find(sig) + off, 10)
    (tmp_path / "lie.zip").write_bytes(bytes(data))
    got = records([tmp_path / "lie.zip"])
    assert isinstance(got["lie.zip!/liar.txt"].error, ArchiveError)
    assert not got["lie.zip!/liar.txt"].has_content
    assert got["lie.zip!/honest.txt"].read() == b"ok"


def test_stream_bomb_in_tar_gz_stops_the_archive(tmp_path: Path) -> None:
    data = tar_bytes([("ok.txt", b"fine"), ("zeros.bin", bytes(2 << 20)), ("after.txt", b"x")], "w:gz")
    (tmp_path / "b.tgz").write_bytes(data)
    got = records([tmp_path / "b.tgz"], Limits(max_ratio=50, ratio_min_bytes=256 << 10))
    assert got["b.tgz!/ok.txt"].read() == b"fine"
    assert isinstance(got["b.tgz!/zeros.bin"].error, ArchiveBomb)
    assert isinstance(got["b.tgz"].error, ArchiveBomb) and "b.tgz!/after.txt" not in got
    # a member too large to keep is hashed as it streams, still watched for the ratio
    skipped = records(
        [tmp_path / "b.tgz"], Limits(max_ratio=50, ratio_min_bytes=256 << 10, max_in_memory=1 << 20)
    )
    assert isinstance(skipped["b.tgz!/zeros.bin"].error, ArchiveBomb)
    assert isinstance(skipped["b.tgz"].error, ArchiveBomb) and "b.tgz!/after.txt" not in skipped


def test_member_larger_than_memory_room_is_hashed_as_it_streams_not_held(tmp_path: Path) -> None:
    big, small = b"%PDF" + os.urandom(300_000), b"small"
    (tmp_path / "m.tar").write_bytes(tar_bytes([("big.bin", big), ("small.txt", small)]))
    (tmp_path / "m.zip").write_bytes(zip_bytes([("big.bin", big), ("small.txt", small)]))
    (tmp_path / "m.7z").write_bytes(sevenzip_bytes([("big.bin", big), ("small.txt", small)]))
    (tmp_path / "m.bin.gz").write_bytes(gzip.compress(big))
    sources = [tmp_path / n for n in ("m.tar", "m.zip", "m.7z", "m.bin.gz")]
    got = records(sources, Limits(max_in_memory=100_000))
    for name in ("m.tar!/big.bin", "m.zip!/big.bin", "m.7z!/big.bin", "m.bin.gz!/m.bin"):
        member = got[name]
        assert isinstance(member.error, MemberTooLarge) and "not decoded" in member.error.message, name
        assert not member.has_content and member.size == len(big), name  # not held
        assert member.digests.md5 == hashlib.md5(big).hexdigest(), name
        assert member.digests.sha1 == hashlib.sha1(big).hexdigest(), name
        assert member.digests.sha256 == hashlib.sha256(big).hexdigest(), name
        assert member.head == big[: len(member.head)] and len(member.head) >= 4, name
    for a in ("m.tar", "m.zip", "m.7z"):
        assert got[f"{a}!/small.txt"].read() == small, a
        assert got[a].error is None, a


def test_too_many_members(tmp_path: Path) -> None:
    (tmp_path / "many.zip").write_bytes(zip_bytes([(f"{i}.txt", b"x") for i in range(20)]))
    (tmp_path / "many.tar").write_bytes(tar_bytes([(f"{i}.txt", b"x") for i in range(20)]))
    got = records([tmp_path / "many.zip", tmp_path / "many.tar"], Limits(max_members=10))
    assert isinstance(got["many.zip"].error, ArchiveBomb) and "members" in got["many.zip"].error.message
    assert not any(p.startswith("many.zip!/") for p in got)
    assert isinstance(got["many.tar"].error, ArchiveBomb)
    assert sum(p.startswith("many.tar!/") for p in got) == 10


def test_encrypted_members(tmp_path: Path) -> None:
    data = bytearray(zip_bytes([("open.txt", b"open"), ("secret.txt", b"hidden")]))
    for sig, off, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        pos = data.find(sig)
        while pos >= 0:
            if data[pos + name_at : pos + name_at + 10] == b"secret.txt":
                struct.pack_into("<H", data, pos + off, struct.unpack_from("<H", data, pos + off)[0] | 1)
            pos = data.find(sig, pos + 4)
    (tmp_path / "e.zip").write_bytes(bytes(data))
    (tmp_path / "e.7z").write_bytes(sevenzip_bytes([("secret.txt", b"hidden")], password="pw"))
    hdr = io.BytesIO()
    with py7zr.SevenZipFile(hdr, "w", password="pw", header_encryption=True) as sz:
        sz.writestr(b"hidden", "secret.txt")
    (tmp_path / "h.7z").write_bytes(hdr.getvalue())
    got = records([tmp_path / "e.zip", tmp_path / "e.7z", tmp_path / "h.7z"])
    assert isinstance(got["e.zip!/secret.txt"].error, EncryptedContent)
    assert got["e.zip!/open.txt"].read() == b"open"
    assert isinstance(got["e.7z!/secret.txt"].error, EncryptedContent)
    assert isinstance(got["h.7z"].error, EncryptedContent) and got["h.7z"].has_content


def test_traversal_names_are_sanitised_flagged_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ["../../escape.txt", "/abs/root.txt", "..\\..\\win.txt", "ok/../../up.txt", "C:/drive.txt"]
    src = tmp_path / "src"
    src.mkdir()
    (src / "t.zip").write_bytes(zip_bytes([(n, n.encode()) for n in names]))
    (src / "t.tar").write_bytes(tar_bytes([(n, n.encode()) for n in names]))
    work = tmp_path / "work" / "deep" / "er"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    before = sorted(p for p in tmp_path.rglob("*"))
    got = records([src])
    assert sorted(p for p in tmp_path.rglob("*")) == before
    members = [i for i in got.values() if i.depth == 1]
    assert len(members) == 2 * len(names)
    for item in members:
        assert isinstance(item.error, UnsafeMemberName)
        inner = item.path.split("!/", 1)[1]
        assert ".." not in inner.split("/") and not inner.startswith("/") and "\\" not in inner
        original = item.error.message.split(": ", 1)[1].strip("'").replace("\\\\", "\\")
        assert item.read() == original.encode()  # content stays readable: it is still evidence
    assert "src/t.zip!/%2E%2E/%2E%2E/escape.txt" in got
    assert "src/t.tar!/%2Fabs/root.txt" in got


def test_duplicate_member_names_get_distinct_paths(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, pytest.warns(UserWarning):
        zf.writestr("same.txt", b"first")
        zf.writestr("same.txt", b"second")
    (tmp_path / "d.zip").write_bytes(buf.getvalue())
    got = records([tmp_path / "d.zip"])
    assert got["d.zip!/same.txt"].read() == b"first" and got["d.zip!/same.txt#2"].read() == b"second"


def test_truncated_zip_salvages_members_before_the_cut(tmp_path: Path) -> None:
    second = os.urandom(30_000)
    data = zip_bytes([("first.txt", b"first"), ("stored.bin", b"stored!"), ("second.bin", second)])
    stored = zip_bytes([("s.txt", b"stored member")], method=zipfile.ZIP_STORED)
    (tmp_path / "cut.zip").write_bytes(data[: len(data) - 12_000])
    (tmp_path / "cut_stored.zip").write_bytes(stored[:-30])
    got = records([tmp_path / "cut.zip", tmp_path / "cut_stored.zip"])
    assert got["cut.zip!/first.txt"].read() == b"first"
    assert got["cut.zip!/stored.bin"].read() == b"stored!"
    assert isinstance(got["cut.zip!/second.bin"].error, CorruptArchive)
    assert isinstance(got["cut.zip"].error, CorruptArchive) and got["cut.zip"].has_content
    assert "2 members salvaged" in got["cut.zip"].error.message
    assert got["cut_stored.zip!/s.txt"].read() == b"stored member"


def test_corrupt_tar_keeps_members_before_the_fault(tmp_path: Path) -> None:
    good = tar_bytes([("a.txt", b"alpha"), ("b.txt", b"beta")])
    bad = bytearray(good)
    bad[1024 + 148 : 1024 + 156] = b"0000000\x00"  # second header's checksum
    (tmp_path / "bad.tar").write_bytes(bytes(bad))
    (tmp_path / "garbage.tar").write_bytes(b"\x00" * 100 + b"x" * 157 + b"ustar\x0000" + b"y" * 250)
    tgz = tar_bytes([("a.txt", b"alpha"), ("r.bin", os.urandom(50_000))], "w:gz")
    (tmp_path / "cut.tgz").write_bytes(tgz[: len(tgz) // 2])
    got = records([tmp_path / "bad.tar", tmp_path / "garbage.tar", tmp_path / "cut.tgz"])
    assert got["bad.tar!/a.txt"].read() == b"alpha" and "bad.tar!/b.txt" not in got
    assert isinstance(got["bad.tar"].error, CorruptArchive)
    assert isinstance(got["garbage.tar"].error, CorruptArchive)
    assert got["cut.tgz!/a.txt"].read() == b"alpha"
    assert isinstance(got["cut.tgz!/r.bin"].error, CorruptArchive)
    assert isinstance(got["cut.tgz"].error, CorruptArchive)


def test_depth_limit_keeps_the_inner_archive_as_one_item(tmp_path: Path) -> None:
    inner = zip_bytes([("leaf.txt", b"leaf")])
    (tmp_path / "outer.zip").write_bytes(zip_bytes([("inner.zip", inner), ("x.txt", b"x")]))
    got = records([tmp_path / "outer.zip"], Limits(max_depth=1))
    item = got["outer.zip!/inner.zip"]
    assert isinstance(item.error, DepthLimit) and item.container == "zip" and item.read() == inner
    assert "outer.zip!/inner.zip!/leaf.txt" not in got
    deeper = records([tmp_path / "outer.zip"], Limits(max_depth=2))
    assert deeper["outer.zip!/inner.zip!/leaf.txt"].depth == 2


def test_abandoning_iteration_inside_a_7z_stops_its_thread(tmp_path: Path) -> None:
    members = [(f"f{i}.bin", os.urandom(5000)) for i in range(6)]
    (tmp_path / "s.7z").write_bytes(sevenzip_bytes(members))
    it = iter_evidence([tmp_path / "s.7z"])
    first = next(it)
    assert first.path == "s.7z!/f0.bin" and first.read() == members[0][1]
    it.close()  # type: ignore[attr-defined]
    assert not [t for t in threading.enumerate() if t.name == "opspoor-7z"]


# --- read-only and accounting ---------------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple[bytes | str, int]]:
    out: dict[str, tuple[bytes | str, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if os.path.islink(p):
                out[p] = (os.readlink(p), st.st_mtime_ns)
            elif os.path.isfile(p):
                out[p] = (Path(p).read_bytes(), st.st_mtime_ns)
            else:
                out[p] = ("", st.st_mtime_ns)
    return out


def build_tree(root: Path) -> None:
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "p.png").write_bytes(png_bytes(10))
    (root / "a" / "b" / "q.jpg").write_bytes(png_bytes(11, fmt="JPEG"))
    (root / "t.txt").write_text("text")
    (root / "zero").write_bytes(b"")
    inner = zip_bytes([("i/1.png", png_bytes(12)), ("i/2.txt", b"two")])
    (root / "a" / "arch.tar.gz").write_bytes(tar_bytes([("in.zip", inner), ("r.txt", b"r")], "w:gz"))
    (root / "s.7z").write_bytes(sevenzip_bytes([("x.txt", b"x"), ("in2.zip", inner)]))
    (root / "z.zip").write_bytes(zip_bytes([("d/", b""), ("d/m.png", png_bytes(13)), ("n.txt", b"n")]))
    (root / "one.gz").write_bytes(gzip.compress(b"one"))
    os.symlink("t.txt", root / "link.txt")
    os.mkfifo(root / "fifo")


def count_members(data: bytes) -> int:
    """Files inside an archive, counted with the standard libraries, recursively."""
    head = data[:512]
    if head.startswith(b"PK\x03\x04"):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return sum(1 + count_members(zf.read(i)) for i in zf.infolist() if not i.is_dir())
    if head.startswith(b"7z\xbc\xaf"):
        blobs = sevenzip_contents(data)
        return sum(1 + count_members(b) for b in blobs)
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            total = 0
            for m in tf.getmembers():
                f = None if m.isdir() else tf.extractfile(m)
                total += 0 if m.isdir() else 1 + (count_members(f.read()) if f else 0)
            return total
    except tarfile.TarError:
        pass
    if head.startswith(b"\x1f\x8b"):
        return 1 + count_members(gzip.decompress(data))
    return 0


def sevenzip_contents(data: bytes) -> list[bytes]:
    """Every file's bytes in a 7z, read with py7zr's own in-memory factory (test oracle only)."""
    from py7zr.io import BytesIOFactory

    factory = BytesIOFactory(1 << 24)
    with py7zr.SevenZipFile(io.BytesIO(data)) as sz:
        names = [f.filename for f in sz.files if not f.is_directory]
        sz.extractall(factory=factory)
    return [factory.get(n).read() for n in names]


def test_accounting_and_sources_unchanged(tmp_path: Path) -> None:
    root = tmp_path / "dump"
    build_tree(root)
    before = snapshot(tmp_path)
    files = 0
    members = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            files += 1
            p = os.path.join(dirpath, name)
            if os.path.isfile(p) and not os.path.islink(p):
                members += count_members(Path(p).read_bytes())
    items = list(iter_evidence([root]))
    for item in items:
        if item.has_content:
            with item.open() as f:
                f.read()
    assert len(items) == files + members
    assert len({i.path for i in items}) == len(items)
    assert [i.path for i in items if i.error] == ["dump/fifo"]
    assert snapshot(tmp_path) == before  # bytes, mtimes, nothing added or removed
    assert count_evidence([root]) == files
    zip_quick = count_evidence([root], zip_members=True)
    assert zip_quick == files + 2  # z.zip's two files; the others are not counted cheaply


def test_malformed_corpus_errors_at_the_source_level(tmp_path: Path) -> None:
    expected = make_malformed_corpus(tmp_path / "corpus")
    got = records([tmp_path / "corpus"])
    media = {"UndecodableMedia", "MediaTooLarge", "MediaTimeout", EMPTY_FILE}
    for path, kind in expected.items():
        assert path in got, path
        item = got[path]
        if kind in media:  # the decoder's job, not the source's
            assert item.error is None and item.has_content, path
        else:
            assert reason(item) == kind, (path, item.error)
            assert isinstance(item.error, SourceError) and item.error.where == path
    # intact neighbours of the bad members are still read
    assert got["corpus/bomb.zip!/note.txt"].read() == b"a harmless note\n"
    assert got["corpus/lying.zip!/honest.txt"].read() == b"honest\n"
    assert got["corpus/truncated.zip!/first.txt"].read() == b"first member\n"
    assert got["corpus/bad.tar!/kept.txt"].read() == b"before the fault\n"
    assert got["corpus/mixed.zip!/ok.png"].read().startswith(b"\x89PNG")


def test_tar_with_an_oversized_extended_header_is_refused(tmp_path: Path) -> None:
    # a pax header declaring 2 GiB: tarfile alone would try to read it all into memory
    block = bytearray(tar_bytes([("x", b"")])[:512])
    block[156:157] = b"x"
    block[124:136] = b"%011o\x00" % (2 << 30)
    block[148:156] = b"        "
    block[148:156] = b"%06o\x00 " % sum(block)
    head = tar_bytes([("first.txt", b"first")])[:1024]
    (tmp_path / "pax.tar").write_bytes(head + bytes(block) + b"\x00" * 4096)
    got = records([tmp_path / "pax.tar"])
    assert got["pax.tar!/first.txt"].read() == b"first"
    assert (
        isinstance(got["pax.tar"].error, CorruptArchive) and "extended header" in got["pax.tar"].error.message
    )


def test_corrupt_7z_gives_a_record_for_every_member(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    members = [(f"f{i}.bin", rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes()) for i in range(4)]
    data = bytearray(sevenzip_bytes(members))
    data[5000] ^= 0xFF  # inside the packed stream of a solid block
    (tmp_path / "c.7z").write_bytes(bytes(data))
    got = records([tmp_path / "c.7z"])
    assert sorted(got) == sorted(["c.7z"] + [f"c.7z!/{n}" for n, _ in members])
    assert isinstance(got["c.7z"].error, CorruptArchive)
    bad = [n for n, _ in members if got[f"c.7z!/{n}"].error]
    assert bad and all(isinstance(got[f"c.7z!/{n}"].error, CorruptArchive) for n in bad)
    for n, content in members:
        if n not in bad:
            assert got[f"c.7z!/{n}"].read() == content


def test_random_damage_never_stops_iteration(tmp_path: Path) -> None:
    inner = zip_bytes([("i.txt", b"inner " * 50)])
    seeds = {
        "z.zip": zip_bytes([("a.txt", b"alpha " * 200), ("in.zip", inner), ("p.png", png_bytes(20))]),
        "t.tgz": tar_bytes([("a.txt", b"alpha " * 200), ("in.zip", inner)], "w:gz"),
        "s.7z": sevenzip_bytes([("a.txt", b"alpha " * 200), ("in.zip", inner)]),
        "g.gz": gzip.compress(b"gamma " * 300),
    }
    rng = np.random.default_rng(11)
    d = tmp_path / "fuzz"
    d.mkdir()
    for name, data in seeds.items():
        for k in range(12):
            buf = bytearray(data)
            for pos in rng.integers(0, len(buf), int(rng.integers(1, 6))):
                buf[pos] = int(rng.integers(0, 256))
            cut = len(buf) if k % 3 else int(rng.integers(1, len(buf)))
            (d / f"{k:02d}-{name}").write_bytes(bytes(buf[:cut]))
    items = list(iter_evidence([d], Limits(max_in_memory=1 << 20)))
    assert len({i.path for i in items}) == len(items)
    tops = [i for i in items if i.depth == 0]
    assert len(tops) == 4 * 12
    for item in items:
        assert item.error is None or isinstance(item.error, SourceError)
        if item.has_content:
            item.read()


# --- odd member names (issue 17) ---------------------------------------------------------


def zip_with_raw_names(names: list[bytes]) -> bytes:
    """A zip whose member names are exactly these bytes (empty, NUL...), which ``zipfile`` will not
    write: each is written under a placeholder of the same length, then the bytes are swapped in."""
    buf = io.BytesIO()
    placeholders = [f"{chr(65 + k)}" * len(n) if n else "" for k, n in enumerate(names)]
    with zipfile.ZipFile(buf, "w") as zf:
        for k, ph in enumerate(placeholders):
            zf.writestr(zipfile.ZipInfo(ph or f"@{k}"), f"member {k}".encode())
    data = buf.getvalue()
    for k, (raw, ph) in enumerate(zip(names, placeholders, strict=True)):
        if raw:
            assert data.count(ph.encode()) == 2  # local header and central directory
            data = data.replace(ph.encode(), raw)
        else:  # an empty name: drop the placeholder and set the name length to 0 in both headers
            tag = f"@{k}".encode()
            while (at := data.find(tag)) >= 0:
                length_at = at - (30 - 26 if data[at - 30 : at - 26] == b"PK\x03\x04" else 46 - 28)
                assert struct.unpack_from("<H", data, length_at)[0] == len(tag)
                data = data[:length_at] + b"\x00\x00" + data[length_at + 2 : at] + data[at + len(tag) :]
                eocd = data.rfind(b"PK\x05\x06")
                cd_size, cd_off = struct.unpack_from("<II", data, eocd + 12)
                if at > cd_off:  # the central directory shrank
                    data = data[: eocd + 12] + struct.pack("<I", cd_size - len(tag)) + data[eocd + 16 :]
                else:  # the central directory moved
                    data = data[: eocd + 16] + struct.pack("<I", cd_off - len(tag)) + data[eocd + 20 :]
                    cd = data.find(b"PK\x01\x02")
                    # later local headers moved too: fix their offsets in the central directory
                    pos = cd
                    while data[pos : pos + 4] == b"PK\x01\x02":
                        (off,) = struct.unpack_from("<I", data, pos + 42)
                        if off > at:
                            data = data[: pos + 42] + struct.pack("<I", off - len(tag)) + data[pos + 46 :]
                        n, e, c = struct.unpack_from("<HHH", data, pos + 28)
                        pos += 46 + n + e + c
    return data


def test_odd_zip_member_names_are_error_records_not_a_crash(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    raw = [b"ok.txt", b"", b"a\x00b.txt", b"/abs/c.txt", b"dup.txt", b"dup.txt", b"ok2.txt"]
    data = zip_with_raw_names(raw)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:  # the builder made what it says
        assert [i.orig_filename for i in zf.infolist()] == [r.decode() for r in raw]
    (src / "odd.zip").write_bytes(data)
    got = records([src])
    assert count_evidence([src], zip_members=True) == len(raw) + 1
    members = {p: i for p, i in got.items() if "!/" in p}
    assert len(members) == len(raw)
    assert got["src/odd.zip"].error is None  # the archive itself is fine
    assert got["src/odd.zip!/ok.txt"].error is None and got["src/odd.zip!/ok2.txt"].read() == b"member 6"
    empty = got["src/odd.zip!/(unnamed)"]
    assert isinstance(empty.error, UnsafeMemberName) and "empty name" in empty.error.message
    assert empty.read() == b"member 1"  # still evidence: readable, hashed
    nul = got["src/odd.zip!/a%00b.txt"]
    assert isinstance(nul.error, UnsafeMemberName) and "NUL" in nul.error.message
    assert isinstance(got["src/odd.zip!/%2Fabs/c.txt"].error, UnsafeMemberName)
    assert got["src/odd.zip!/dup.txt"].read() == b"member 4"
    assert got["src/odd.zip!/dup.txt#2"].read() == b"member 5"


def test_odd_member_names_in_a_zip_without_central_directory_and_in_a_tar(tmp_path: Path) -> None:
    data = zip_with_raw_names([b"ok.txt", b"", b"a\x00b.txt"])
    (tmp_path / "cut.zip").write_bytes(data[: data.find(b"PK\x01\x02")])  # salvaged from local headers
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name in ("", "/abs/t.txt", "dup", "dup"):
            info = tarfile.TarInfo(name)
            info.size = 3
            tf.addfile(info, io.BytesIO(b"abc"))
    (tmp_path / "odd.tar").write_bytes(buf.getvalue())
    got = records([tmp_path / "cut.zip", tmp_path / "odd.tar"])
    assert isinstance(got["cut.zip!/(unnamed)"].error, UnsafeMemberName)
    assert got["cut.zip!/(unnamed)"].read() == b"member 1"
    assert isinstance(got["cut.zip!/a%00b.txt"].error, UnsafeMemberName)
    assert isinstance(got["odd.tar!/(unnamed)"].error, UnsafeMemberName)
    assert isinstance(got["odd.tar!/%2Fabs/t.txt"].error, UnsafeMemberName)
    assert got["odd.tar!/dup"].read() == got["odd.tar!/dup#2"].read() == b"abc"
