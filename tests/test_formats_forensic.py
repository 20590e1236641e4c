"""Forensic hash lists: checksum tools, hashdeep, NSRL, HashKeeper, X-Ways, PowerShell, EnCase,
and what a binary file that is no hash list gets.

Where Debian has the tool (coreutils, hashdeep) the sample is the tool's own output on benign
files made here; the others are written to the format's public description (named in each test).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import sqlite3
import struct
import subprocess
from pathlib import Path

import pytest

from opspoor.errors import FormatError, UnknownFormat
from opspoor.hashsets.formats import detect_format, read_entries, write_entries
from opspoor.hashsets.formats.base import AmbiguousHash
from opspoor.hashsets.model import Entry


def digests(data: bytes) -> dict[str, str]:
    return {
        "md5": hashlib.md5(data).hexdigest(),
        "sha1": hashlib.sha1(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


@pytest.fixture
def files(tmp_path: Path) -> dict[str, bytes]:
    """Benign files, one with a comma and a space in its name, one with a backslash."""
    contents = {"a.txt": b"hello\n", "b, c.jpg": b"x", "we\\ird.bin": bytes(range(256))}
    folder = tmp_path / "files"
    folder.mkdir()
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    return contents


def run(tool: str, *args: str, cwd: Path) -> bytes:
    assert shutil.which(tool), f"{tool} is missing: run scripts/install-system-deps.sh"
    return subprocess.run([tool, *args], cwd=cwd, capture_output=True, check=True).stdout


def names_and(entries: list[Entry], signal: str) -> dict[str, str]:
    return {os.path.basename(e.extra["plain"]["name"]): e.signals[signal] for e in entries}


# --- md5sum / sha1sum / sha256sum, --tag, md5deep ---------------------------------------


@pytest.mark.parametrize(
    ("tool", "signal"), [("md5sum", "md5"), ("sha1sum", "sha1"), ("sha256sum", "sha256")]
)
@pytest.mark.parametrize("mode", [[], ["-b"], ["--tag"]])
def test_checksum_tools(
    tmp_path: Path, files: dict[str, bytes], tool: str, signal: str, mode: list[str]
) -> None:
    out = run(tool, *mode, *sorted(files), cwd=tmp_path / "files")
    assert detect_format(out) == "sums"
    got = list(read_entries(io.BytesIO(out)))
    # a 64-hex column with a file name after it is SHA-256, without --type
    assert all(list(e.signals) == [signal] for e in got)
    assert names_and(got, signal) == {n: digests(d)[signal] for n, d in files.items()}  # backslash unescaped


def test_md5deep_and_sha256deep_with_sizes(tmp_path: Path, files: dict[str, bytes]) -> None:
    for tool, signal in (("md5deep", "md5"), ("sha256deep", "sha256")):
        out = run(tool, "-z", *sorted(files), cwd=tmp_path / "files")
        assert detect_format(out) == "sums"
        got = list(read_entries(io.BytesIO(out)))
        assert names_and(got, signal) == {n: digests(d)[signal] for n, d in files.items()}
        assert {os.path.basename(e.extra["plain"]["name"]): e.size for e in got} == {
            n: len(d) for n, d in files.items()
        }


def test_sums_list_name_decides_and_errors(tmp_path: Path) -> None:
    text = f"{'a' * 64}  one.jpg\n{'b' * 40}  two.jpg\n"
    p = tmp_path / "SHA256SUMS"
    p.write_text(text)
    errs: list[FormatError] = []
    got = list(read_entries(p, on_error=errs.append))
    assert [e.signals for e in got] == [{"sha256": "a" * 64}]
    assert (errs[0].record, errs[0].line) == (2, 2) and "sha1 value in a list whose name says sha256" in errs[
        0
    ].detail
    q = tmp_path / "hashes.txt"
    q.write_text(text)
    assert [e.signals for e in read_entries(q)] == [{"sha256": "a" * 64}, {"sha1": "b" * 40}]
    bsd = b"MD5 (x.jpg) = " + b"c" * 32 + b"\nSHA512 (y.jpg) = " + b"d" * 128 + b"\n"
    assert detect_format(bsd) == "sums"
    got, errs = [], []
    got = list(read_entries(io.BytesIO(bsd), on_error=errs.append))
    assert [e.signals for e in got] == [{"md5": "c" * 32}] and "SHA512 is not a hash opspoor stores" in errs[
        0
    ].detail
    # BSD md5 -r: one space between hash and name
    assert [e.extra["plain"]["name"] for e in read_entries(io.BytesIO(f"{'a' * 32} x y.jpg\n".encode()))] == [
        "x y.jpg"
    ]
    # a bare 64-hex line further down is a plain-list line: it needs --type
    mixed = f"{'a' * 32}  x\n{'b' * 64}\n".encode()
    with pytest.raises(AmbiguousHash) as info:
        list(read_entries(io.BytesIO(mixed), "sums"))
    assert info.value.line == 2
    assert [e.signals for e in read_entries(io.BytesIO(mixed), "sums", hash_type="pdq")][1] == {
        "pdq": "b" * 64
    }


# --- hashdeep ------------------------------------------------------------------------


def test_hashdeep(tmp_path: Path, files: dict[str, bytes]) -> None:
    out = run("hashdeep", "-c", "md5,sha1,sha256,tiger", "-r", "files", cwd=tmp_path)
    assert out.startswith(b"%%%% HASHDEEP-1.0\n%%%% size,md5,sha1,sha256,tiger,filename\n##")
    assert detect_format(out) == "hashdeep"
    got = list(read_entries(io.BytesIO(out)))
    by_name = {os.path.basename(e.extra["hashdeep"]["name"]): e for e in got}
    assert set(by_name) == set(files)  # "b, c.jpg": the name, last, keeps its comma
    for name, data in files.items():
        e = by_name[name]
        assert e.signals == digests(data) and e.size == len(data) and len(e.extra["hashdeep"]["tiger"]) == 48


def test_hashdeep_errors() -> None:
    good = b"%%%% HASHDEEP-1.0\n%%%% size,md5,filename\n## x\n1," + b"a" * 32 + b",/x\n"
    bad = good + b"2,nothex,/y\n3," + b"b" * 32 + b",/z\n"
    errs: list[FormatError] = []
    got = list(read_entries(io.BytesIO(bad), on_error=errs.append))
    assert [e.size for e in got] == [1, 3] and (errs[0].record, errs[0].line) == (2, 5)
    with pytest.raises(FormatError, match="name the columns"):
        list(read_entries(io.BytesIO(b"%%%% HASHDEEP-1.0\n1,2,3\n")))
    with pytest.raises(FormatError, match="name no MD5"):
        list(read_entries(io.BytesIO(b"%%%% HASHDEEP-1.0\n%%%% size,tiger,filename\n")))


# --- NSRL ------------------------------------------------------------------------------

# RDS 2.x NSRLFile.txt as NIST describes it ("Data Formats of the NSRL Reference Data Set")
NSRL2 = (
    '"SHA-1","MD5","CRC32","FileName","FileSize","ProductCode","OpSystemCode","SpecialCode"\r\n'
    f'"{"0" * 38}AB","{"1" * 30}CD","EBD105A0","setup, part 1.exe",98865,3095,"WIN",""\r\n'
    f'"{"2" * 40}","{"3" * 32}","00000000","readme.txt",0,3095,"WIN","M"\r\n'
)


def test_nsrl_rds2(tmp_path: Path) -> None:
    p = tmp_path / "NSRLFile.txt"
    p.write_bytes(
        NSRL2.encode("utf-8")
        + b'"'
        + b"4" * 40
        + b'","'
        + b"5" * 32
        + b'","1","caf\xe9.txt",1,7,"WIN",""\r\n'
    )
    assert detect_format(p.read_bytes()) == "nsrl"
    a, b, c = read_entries(p)
    assert a.signals == {"sha1": "0" * 38 + "ab", "md5": "1" * 30 + "cd"} and a.size == 98865
    assert a.extra == {
        "nsrl": {"crc32": "EBD105A0", "name": "setup, part 1.exe", "product_code": "3095", "os_code": "WIN"}
    }
    assert b.extra["nsrl"]["special_code"] == "M"
    # a Latin-1 name (RDS files are not always UTF-8) does not stop the read; the hashes are exact
    assert c.signals == {"sha1": "4" * 40, "md5": "5" * 32} and c.extra["nsrl"]["name"] == "caf\ufffd.txt"


def rds3(path: Path, rows: list[tuple[object, ...]]) -> None:
    """An RDS v3 database as NIST publishes it: the FILE view over the METADATA table."""
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE METADATA (key INTEGER PRIMARY KEY, sha256 VARCHAR NOT NULL,"
        " sha1 VARCHAR NOT NULL, md5 VARCHAR NOT NULL, crc32 VARCHAR NOT NULL,"
        " file_name VARCHAR NOT NULL, file_size INTEGER NOT NULL, package_id INTEGER NOT NULL,"
        " parent_sha256 VARCHAR, parent_sha1 VARCHAR, parent_md5 VARCHAR,"
        " extension VARCHAR, type VARCHAR);"
        "CREATE VIEW FILE AS SELECT sha256, sha1, md5, crc32, file_name, file_size, package_id FROM METADATA;"
    )
    db.executemany(
        "INSERT INTO METADATA (sha256, sha1, md5, crc32, file_name, file_size, package_id)"
        " VALUES (?,?,?,?,?,?,?)",
        rows,
    )
    db.commit()
    db.close()


def test_nsrl_rds3_sqlite_read_only(tmp_path: Path) -> None:
    p = tmp_path / "RDS_2024.03.1_modern_minimal.db"
    rows = [
        ("A" * 64, "B" * 40, "C" * 32, "00000000", "kernel32.dll", 1234, 77),
        ("d" * 64, "e" * 40, "f" * 32, "00000001", "notes.txt", 5, 78),
        ("nothex", "e" * 40, "f" * 32, "00000002", "bad.txt", 5, 78),
    ]
    rds3(p, rows)
    before = {f.name: f.stat().st_mtime_ns for f in tmp_path.iterdir()}
    assert detect_format(p.read_bytes()[:65536]) == "nsrl-rds3"
    errs: list[FormatError] = []
    got = list(read_entries(p, on_error=errs.append))
    assert [e.signals for e in got] == [
        {"md5": "c" * 32, "sha1": "b" * 40, "sha256": "a" * 64},
        {"md5": "f" * 32, "sha1": "e" * 40, "sha256": "d" * 64},
    ]
    assert got[0].size == 1234 and got[0].extra == {
        "nsrl": {"crc32": "00000000", "name": "kernel32.dll", "package_id": 77}
    }
    assert errs[0].record == 3 and "sha256 value must be 64 hex" in errs[0].detail
    # the evidence rule: the database is left as it was, no journal beside it
    assert {f.name: f.stat().st_mtime_ns for f in tmp_path.iterdir()} == before
    # through a pipe (no file name) it is copied to a temporary file first
    assert len(list(read_entries(io.BytesIO(p.read_bytes()), on_error=errs.append))) == 2


def test_sqlite_without_the_file_table(tmp_path: Path) -> None:
    p = tmp_path / "other.db"
    sqlite3.connect(p).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(FormatError, match="without NSRL RDS v3's FILE table"):
        list(read_entries(p))


# --- CSV dialects: HashKeeper, X-Ways, PowerShell -----------------------------------------


def test_hashkeeper_hke() -> None:
    """HashKeeper .hke as The Sleuth Kit's reader describes it (tsk/hashdb/hashkeeper.c)."""
    hke = (
        '"file_id","hashset_id","file_name","directory","hash","file_size","date_modified",'
        '"time_modified","time_zone","comments","date_accessed","time_accessed"\r\n'
        f'1,42,"IMG_0001.JPG","C:\\\\photos","{"A" * 32}",2048,01/02/2003,10:00:00,"EST","",,\r\n'
    ).encode()
    assert detect_format(hke) == "csv"
    (e,) = read_entries(io.BytesIO(hke))
    assert e.signals == {"md5": "a" * 32} and e.size == 2048
    assert e.extra["csv"]["file_name"] == "IMG_0001.JPG" and e.extra["csv"]["hashset_id"] == "42"


def test_xways_text_list() -> None:
    """X-Ways hash set text: a first line naming the hash type, then one hash a line (as
    rds4xways makes them from the NSRL for X-Ways Forensics)."""
    for header, signal, n in (("SHA-1", "sha1", 40), ("MD5", "md5", 32), ("SHA-256", "sha256", 64)):
        data = f"{header}\r\n{'A' * n}\r\n{'b' * n}\r\n".encode()
        assert detect_format(data) == "csv"
        # the header says what 64 hex values are: no --type needed
        assert [e.signals for e in read_entries(io.BytesIO(data))] == [{signal: "a" * n}, {signal: "b" * n}]


def test_powershell_get_filehash_csv() -> None:
    """Get-FileHash | Export-Csv: the Algorithm column gives each row's type."""
    data = (
        "#TYPE Microsoft.PowerShell.Commands.FileHashInfo\r\n"
        '"Algorithm","Hash","Path"\r\n'
        f'"SHA256","{"A" * 64}","C:\\Users\\x\\a.jpg"\r\n'
        f'"MD5","{"B" * 32}","C:\\Users\\x\\b.jpg"\r\n'
        f'"SHA512","{"C" * 128}","C:\\Users\\x\\c.jpg"\r\n'
    ).encode("utf-8-sig")
    assert detect_format(data) == "csv"
    errs: list[FormatError] = []
    got = list(read_entries(io.BytesIO(data), on_error=errs.append))
    assert [e.signals for e in got] == [{"sha256": "a" * 64}, {"md5": "b" * 32}]
    assert got[0].extra == {"csv": {"Path": "C:\\Users\\x\\a.jpg"}}
    assert (errs[0].record, errs[0].line) == (3, 5) and "'SHA512'" in errs[0].detail


# --- EnCase .hash ------------------------------------------------------------------------


def encase(
    hashes: list[bytes], name: str = "Known good", category: str = "Known", count: int | None = None
) -> bytes:
    """The layout ForensicsWiki and Autopsy's EncaseHashSetParser describe (see formats/encase.py)."""
    head = bytearray(0x480)
    head[:16] = b"HASH\r\n\xff\x00\x02\x00\x00\x00\x01\x00\x00\x00"
    struct.pack_into("<I", head, 0x10, len(hashes) if count is None else count)
    raw_name, raw_cat = name.encode("utf-16-le"), category.encode("utf-16-le")
    head[0x408 : 0x408 + len(raw_name)] = raw_name
    head[0x458 : 0x458 + len(raw_cat)] = raw_cat
    return bytes(head) + b"".join(h + b"\x00\x00" for h in hashes)


def test_encase_hash_set(tmp_path: Path) -> None:
    md5s = [hashlib.md5(bytes([i])).digest() for i in range(3)]
    p = tmp_path / "known.hash"
    p.write_bytes(encase(md5s))
    assert detect_format(p.read_bytes()) == "encase"
    got = list(read_entries(p))
    assert [e.signals for e in got] == [{"md5": m.hex()} for m in md5s]
    assert got[0].extra == {"encase": {"set": "Known good", "category": "Known"}}


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (encase([b"\x01" * 16], count=2), "counts 2 hashes but the file holds 1"),
        (encase([b"\x01" * 16])[:-3], "cut short"),
        (encase([b"\x01" * 16])[:-2] + b"\x01\x00", "two zero bytes"),
        (encase([])[:0x100], "header is cut short"),
        (b"HASH\r\n\xff\x00\x03" + bytes(0x480), "another version"),
    ],
)
def test_encase_refuses_what_is_not_the_described_layout(data: bytes, words: str) -> None:
    with pytest.raises(FormatError, match=words):
        list(read_entries(io.BytesIO(data)))


def test_read_only_formats_say_so() -> None:
    with pytest.raises(FormatError, match="reads encase but does not write it"):
        write_entries([Entry({"md5": "1" * 32})], io.BytesIO(), "encase")


# --- not a hash list -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "a PNG image"),
        (b"PK\x03\x04" + bytes(100), "ZIP archive"),
        (bytes(range(256)) * 4, "binary data"),
        (b"\xff\xfe" + "MD5\r\n".encode("utf-16-le"), "UTF-16"),
        (b"\xc3\x28\xa0\xa1 definitely not text \xfe\xfe" * 50, "binary data, not UTF-8"),
    ],
)
def test_binary_file_is_not_a_hash_list(tmp_path: Path, data: bytes, words: str) -> None:
    with pytest.raises(UnknownFormat, match=f"not a hash list: .*{words}"):
        detect_format(data)
    p = tmp_path / "evidence.bin"
    p.write_bytes(data)
    with pytest.raises(FormatError, match="not a hash list") as info:
        list(read_entries(p))
    assert info.value.where == str(p)
    # a text format forced on it says the same, not a UTF-8 error
    with pytest.raises(FormatError, match=f"not a hash list: .*{words}"):
        list(read_entries(p, "plain"))
