"""Hash-set formats: round trips (write -> read gives the same entries), detection, malformed input.

Every hash here is synthetic (random hex); nothing refers to real material.
"""

from __future__ import annotations

import base64
import io
import json
import re
import string
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opspoor.errors import FormatError, UnknownFormat
from opspoor.hashsets.formats import (
    FORMATS,
    AmbiguousHash,
    CaseInfo,
    detect_format,
    read_entries,
    write_entries,
)
from opspoor.hashsets.formats.jsonstream import JsonReader
from opspoor.hashsets.model import SCHEMES, Category, Entry
from opspoor.signals.vpdq import VpdqFrame, format_vpdq, parse_vpdq

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def hexs(n: int) -> st.SearchStrategy[str]:
    return st.text("0123456789abcdef", min_size=n, max_size=n)


#: a PhotoDNA is 144 bytes; entries carry its canonical form (the bytes' hex), the writers spell it
photodnas = st.binary(min_size=144, max_size=144).map(bytes.hex)
vpdqs = st.lists(
    st.builds(
        VpdqFrame,
        st.integers(0, 10_000),
        st.integers(0, 100),
        hexs(64),
        st.integers(0, 3_600_000).map(lambda ms: ms / 1000),
    ),
    min_size=1,
    max_size=4,
).map(format_vpdq)
SIGNAL_VALUES = {
    "md5": hexs(32),
    "sha1": hexs(40),
    "sha256": hexs(64),
    "pdq": hexs(64),
    "photodna": photodnas,
    "vpdq": vpdqs,
}
categories = st.sampled_from([Category(s, c) for s, codes in SCHEMES.items() for c in codes])
flags = st.none() | st.booleans()
words = (
    st.text(string.ascii_letters + string.digits + "-_. ", min_size=1, max_size=16)
    .map(str.strip)
    .filter(bool)
)
tags_no_sep = st.lists(
    st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=8), max_size=3, unique=True
).map(tuple)
dates = st.none() | st.datetimes().map(lambda d: d.isoformat() + "Z")
ids = st.from_regex(r"[1-9][0-9]{0,8}|[A-Za-z][A-Za-z0-9-]{0,11}", fullmatch=True)


def signal_dicts(names: tuple[str, ...]) -> st.SearchStrategy[dict[str, str]]:
    return st.lists(st.sampled_from(names), min_size=1, unique=True).flatmap(
        lambda ks: st.fixed_dictionaries({k: SIGNAL_VALUES[k] for k in ks})
    )


def roundtrip(entries: list[Entry], fmt: str, read_format: str = "auto", **kw: object) -> list[Entry]:
    buf = io.BytesIO()
    hash_type = kw.pop("hash_type", None)
    source = kw.pop("source", None)
    assert write_entries(entries, buf, fmt, **kw) == len(entries)
    data = buf.getvalue()
    if read_format == "auto":
        assert detect_format(data[:65536]) == fmt
    return list(read_entries(io.BytesIO(data), read_format, hash_type=hash_type, source=source))  # type: ignore[arg-type]


def errors_of(data: bytes, fmt: str = "auto", **kw: object) -> tuple[list[Entry], list[FormatError]]:
    errs: list[FormatError] = []
    got = list(read_entries(io.BytesIO(data), fmt, on_error=errs.append, **kw))  # type: ignore[arg-type]
    return got, errs


def first_error(data: bytes, fmt: str = "auto", **kw: object) -> FormatError:
    with pytest.raises(FormatError) as info:
        list(read_entries(io.BytesIO(data), fmt, **kw))  # type: ignore[arg-type]
    return info.value


def crlf_bom(data: bytes) -> bytes:
    return b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n")


# --- VICS ------------------------------------------------------------------------

media_files = st.lists(
    st.fixed_dictionaries(
        {
            "MD5": hexs(32).map(str.upper),
            "FileName": words,
            "FilePath": words.map(lambda w: f"C:\\evidence\\{w}"),
            "Created": st.datetimes().map(lambda d: d.isoformat() + "Z"),
            "Deleted": st.booleans(),
            "Unallocated": st.sampled_from(["true", "false"]),
            "PhysicalLocation": st.integers(0, 2**40),
        }
    ),
    max_size=2,
)
vics_extra = st.fixed_dictionaries(
    {},
    optional={
        "files": media_files,
        "vics": st.fixed_dictionaries(
            {}, optional={"IsPrecategorized": st.sampled_from(["true", "false"]), "Comments": words}
        ).filter(bool),
    },
)
vics_tags = st.lists(words, max_size=3, unique=True).map(tuple)


@st.composite
def vics_entries(draw: st.DrawFn, with_case: dict | None = None) -> Entry:
    extra = draw(vics_extra)
    if with_case is not None:
        extra["case"] = dict(with_case)
    return Entry(
        signals=draw(signal_dicts(("md5", "sha1", "sha256", "pdq", "photodna", "vpdq"))),
        category=draw(st.none() | categories),
        victim_identified=draw(flags),
        offender_identified=draw(flags),
        distributed=draw(flags),
        series=draw(st.none() | words),
        tags=draw(vics_tags),
        source="Project VIC",
        date_updated=draw(dates),
        external_id=draw(ids),
        size=draw(st.none() | st.integers(0, 2**40)),
        extra=extra,
    )


@pytest.mark.parametrize("fmt", ["vics2", "vics13"])
@SETTINGS
@given(entries=st.lists(vics_entries(), max_size=5))
def test_vics_media_roundtrip(fmt: str, entries: list[Entry]) -> None:
    assert roundtrip(entries, fmt, source="Project VIC") == entries


CASE = {"CaseID": 42, "CaseNumber": "2024-0042", "SourceApplicationName": "opspoor", "Examiner": "A. Analyst"}


@pytest.mark.parametrize("fmt", ["vics2", "vics13"])
@SETTINGS
@given(entries=st.lists(vics_entries(with_case=CASE), max_size=5))
def test_vics_cases_roundtrip(fmt: str, entries: list[Entry]) -> None:
    got = roundtrip(entries, fmt, cases=CaseInfo.from_vics(CASE), source="Project VIC")
    assert got == entries


def test_vics_cases_export_shape() -> None:
    """The scan's export: a #Cases document whose media carry MediaFiles from extra["files"]."""
    files = [
        {
            "MD5": "A" * 32,
            "FileName": "a.jpg",
            "FilePath": "/x/a.jpg",
            "Deleted": False,
            "Unallocated": "false",
        }
    ]
    e = Entry({"md5": "a" * 32}, Category("us-cat", "1"), external_id="7", extra={"files": files})
    buf = io.BytesIO()
    write_entries([e], buf, "vics2", cases=CaseInfo(3, "C-3", {"SourceApplicationName": "opspoor"}))
    doc = json.loads(buf.getvalue())
    assert doc["@odata.context"].endswith("2.0.xml/Default/$metadata#Cases")
    case = doc["value"][0]
    assert (case["CaseID"], case["CaseNumber"], case["SourceApplicationName"]) == (3, "C-3", "opspoor")
    assert case["Media"] == [{"MediaID": 7, "Category": 1, "MD5": "A" * 32, "MediaFiles": files}]


def test_vics_writes_other_schemes_as_nearest_number_and_keeps_the_exact_one() -> None:
    entries = [
        Entry({"md5": f"{i:032x}"}, c, external_id=str(i))
        for i, c in enumerate(
            [
                Category("uk", "B"),
                Category("ncmec", "A2"),
                Category("inhope", "baseline"),
                Category("inhope", "not-illegal"),
            ],
            1,
        )
    ]
    buf = io.BytesIO()
    write_entries(entries, buf, "vics2")
    media = json.loads(buf.getvalue())["value"]
    assert [(m["Category"], m["OpspoorCategory"]) for m in media] == [
        (1, "uk:B"),
        (1, "ncmec:A2"),
        (1, "inhope:baseline"),
        (0, "inhope:not-illegal"),
    ]
    # a tool that ignores OpspoorCategory still sees the Project VIC number
    for m in media:
        del m["OpspoorCategory"]
    plain = json.dumps({"@odata.context": "x#Media", "value": media}).encode()
    assert [str(e.category) for e in read_entries(io.BytesIO(plain))] == [
        "us-cat:1",
        "us-cat:1",
        "us-cat:1",
        "us-cat:0",
    ]


VICS2_SAMPLE = (
    (
        '{"@odata.context": "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/Default/$metadata#Media",\n'
        ' "value": [\n'
        '  {"MediaID": 1, "Category": 1, "MD5": "MD5HEX", "SHA1": "SHA1HEX", "MediaSize": 12345,\n'
        '   "VictimIdentified": "TRUE", "OffenderIdentified": false, "IsDistributed": "true",\n'
        '   "Series": "", "Tags": "", "IsPrecategorized": "true", "DateUpdated": "2024-01-01T00:00:00Z"},\n'
        '  {"MediaID": 2, "Category": "5", "MD5": "OTHERMD5"}\n'
        " ]}\n"
    )
    .replace("OTHERMD5", "f" * 32)
    .replace("MD5HEX", "0123456789ABCDEF" * 2)
    .replace("SHA1HEX", "89ABCDEF" * 5)
)


def test_vics2_sample_fields() -> None:
    a, b = read_entries(io.BytesIO(VICS2_SAMPLE.encode()))
    assert a.signals == {"md5": "0123456789abcdef" * 2, "sha1": "89abcdef" * 5}
    assert a.category == Category("us-cat", "1")
    assert (a.victim_identified, a.offender_identified, a.distributed) == (True, False, True)
    assert (a.series, a.tags, a.size, a.external_id) == (None, (), 12345, "1")
    assert a.date_updated == "2024-01-01T00:00:00Z"
    assert a.extra == {"vics": {"IsPrecategorized": "true"}}
    assert b.category == Category("us-cat", "5") and b.victim_identified is None


DNA = bytes((5 * i + 1) % 256 for i in range(144))
DNA_B64 = base64.b64encode(DNA).decode()


def test_vics13_sample_photodna_in_alternative_hashes() -> None:
    doc = {
        "odata.metadata": "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#Media",
        "value": [
            {
                "MediaID": 9,
                "Category": 2,
                "MD5": "1" * 32,
                "AlternativeHashes": [
                    {"HashName": "PhotoDNA", "HashValue": DNA_B64[:100] + " " + DNA_B64[100:] + "\n"},
                    {"HashName": "Fuzzy", "HashValue": "abc"},
                ],
            }
        ],
    }
    data = json.dumps(doc).encode()
    assert detect_format(data) == "vics13"
    (e,) = read_entries(io.BytesIO(data))
    assert e.signals == {"md5": "1" * 32, "photodna": DNA.hex()}  # base64 (wrapped): its bytes in hex
    assert e.extra == {"vics": {"AlternativeHashes": [{"HashName": "Fuzzy", "HashValue": "abc"}]}}


def test_vics_bom_crlf_and_late_context() -> None:
    assert [e.external_id for e in read_entries(io.BytesIO(crlf_bom(VICS2_SAMPLE.encode())))] == ["1", "2"]
    # context after the value array: the shape decides
    late = json.dumps({"value": [{"MD5": "2" * 32}], "@odata.context": "x#Media"}).encode()
    assert detect_format(late) == "vics2"
    assert [e.signals for e in read_entries(io.BytesIO(late))] == [{"md5": "2" * 32}]
    late_case = json.dumps({"value": [{"CaseID": 1, "Media": [{"MD5": "3" * 32}]}]}).encode()
    (e,) = read_entries(io.BytesIO(late_case), "vics2")
    assert e.extra == {"case": {"CaseID": 1}}


def _vics_lines(records: list[str]) -> bytes:
    body = ",\n".join(records)
    return ('{"@odata.context": "x/2.0.xml/Default/$metadata#Media", "value": [\n' + body + "\n]}\n").encode()


GOOD = '{"MediaID": %d, "MD5": "%032x"}'


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ('{"MediaID": 2, "MD5": "%s", "Category": "abc"}' % ("a" * 32), ["Category", "'abc'"]),
        ('{"MediaID": 2, "MD5": "%s", "MediaSize": "x"}' % ("a" * 32), ["MediaSize", "'x'"]),
        (
            '{"MediaID": 2, "MD5": "%s", "VictimIdentified": "maybe"}' % ("a" * 32),
            ["VictimIdentified", "boolean"],
        ),
        ('{"MediaID": 2, "MD5": "%s"}' % ("g" * 32), ["md5", "hexadecimal"]),
        ('{"MediaID": 2, "MD5": "%s"}' % ("a" * 31), ["md5", "32", "31"]),
        ('{"MediaID": 2, "SHA1": 12}', ["sha1", "text"]),
        ('{"MediaID": 2}', ["no hash"]),
        ('{"MediaID": 2, "MD5": "%s", "MediaFiles": 3}' % ("a" * 32), ["MediaFiles"]),
        ("17", ["object"]),
    ],
)
def test_vics_invalid_record(bad: str, words: list[str]) -> None:
    data = _vics_lines([GOOD % (1, 1), bad, GOOD % (3, 3)])
    err = first_error(data)
    assert (err.record, err.line, err.where) == (2, 3, None)
    for w in words:
        assert w in err.detail
    got, errs = errors_of(data)
    assert [e.external_id for e in got] == ["1", "3"]
    assert [(e.record, e.line) for e in errs] == [(2, 3)]


def test_vics_errors_name_the_file(tmp_path) -> None:
    p = tmp_path / "set.json"
    p.write_bytes(_vics_lines([GOOD % (1, 1), '{"MD5": "zz"}']))
    with pytest.raises(FormatError) as info:
        list(read_entries(p))
    assert info.value.where == str(p) and str(p) in str(info.value) and "record 2, line 3" in str(info.value)


@pytest.mark.parametrize("cut", [-2, -4, -12, -30, -60])
def test_vics_truncated_is_fatal_even_with_on_error(cut: int) -> None:
    data = _vics_lines([GOOD % (i, i) for i in range(1, 4)])[:cut]
    errs: list[FormatError] = []
    with pytest.raises(FormatError) as info:
        list(read_entries(io.BytesIO(data), on_error=errs.append))
    assert "truncated" in info.value.detail
    assert info.value.line is not None and info.value.line >= 3
    assert errs == []


def test_vics_syntax_error_names_line_and_column() -> None:
    data = _vics_lines([GOOD % (1, 1), '{"MediaID": 2 "MD5": "%s"}' % ("a" * 32), GOOD % (3, 3)])
    got: list[Entry] = []
    with pytest.raises(FormatError) as info:
        for e in read_entries(io.BytesIO(data), on_error=lambda e: None):
            got.append(e)
    err = info.value
    assert (err.record, err.line) == (2, 3)
    assert "invalid JSON" in err.detail and "column 15" in err.detail
    assert [e.external_id for e in got] == ["1"]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", ["empty"]),
        (b"  \n", ["empty"]),
        (b'{"foo": 1}', ['no "value"']),
        (b"[1, 2]", ["JSON object"]),
        (b'{"value": {}}', ["array"]),
        (b'{"@odata.context": "x#Media", "value": []} extra', ["after the end"]),
        (b'{"@odata.context": "x#Media", "value": [{"MD5": "\xff"}]}', ["UTF-8"]),
    ],
)
def test_vics_malformed_file(data: bytes, words: list[str]) -> None:
    err = first_error(data, "vics2")
    for w in words:
        assert w in str(err)


def test_vics_empty_value_is_an_empty_set() -> None:
    assert list(read_entries(io.BytesIO(b'{"@odata.context": "x#Media", "value": []}'))) == []


class Trickle(io.RawIOBase):
    """A stream that hands out at most ``step`` bytes per read: every chunk boundary gets exercised."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = data
        self._pos = 0
        self._step = step

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        take = self._step if n < 0 else min(n, self._step)
        out = self._data[self._pos : self._pos + take]
        self._pos += len(out)
        return out

    def readinto(self, b) -> int:  # type: ignore[override]
        out = self.read(len(b))
        b[: len(out)] = out
        return len(out)


@SETTINGS
@given(entries=st.lists(vics_entries(with_case=CASE), min_size=1, max_size=3), step=st.integers(1, 64))
def test_vics_reader_at_every_chunk_boundary(entries: list[Entry], step: int) -> None:
    buf = io.BytesIO()
    write_entries(entries, buf, "vics2", cases=CaseInfo.from_vics(CASE))
    data = crlf_bom(buf.getvalue())
    got = list(read_entries(Trickle(data, step), "auto", source="Project VIC"))  # type: ignore[arg-type]
    assert got == entries


@SETTINGS
@given(
    doc=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
        max_leaves=20,
    ),
    step=st.integers(1, 9),
)
def test_json_reader_values_match_json_loads(doc: object, step: int) -> None:
    text = json.dumps({"a": doc, "value": [doc, 1.5e300, "é\u2028"]}, ensure_ascii=False, indent=1)
    jr = JsonReader(Trickle(text.encode(), step), chunk=7)  # type: ignore[arg-type]
    got = {}
    for key in jr.members():
        if key == "value":
            got[key] = [jr.value() for _ in jr.elements()]
        else:
            got[key] = jr.value()
    jr.expect_end()
    assert got == json.loads(text)


# --- ICSE --------------------------------------------------------------------------


@st.composite
def icse_entries(draw: st.DrawFn) -> Entry:
    category = draw(st.sampled_from([None, Category("inhope", "baseline")]))
    kept = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "Number of submissions": st.integers(1, 999).map(str),
                "File Available": st.sampled_from(["true", "false"]),
                "Media Type": st.sampled_from(["Image", "Video"]),
            },
        )
    )
    if category is None and draw(st.booleans()):
        kept["Baseline"] = draw(st.sampled_from(["false", "No", "0"]))
    return Entry(
        signals=draw(signal_dicts(("md5", "sha1", "photodna"))),
        category=category,
        victim_identified=draw(flags),
        offender_identified=draw(flags),
        distributed=draw(flags),
        series=draw(st.none() | words.filter(lambda w: ";" not in w)),
        source="Interpol",
        external_id=draw(st.none() | ids),
        extra={"icse": kept} if kept else {},
    )


@SETTINGS
@given(entries=st.lists(icse_entries(), max_size=6))
def test_icse_roundtrip(entries: list[Entry]) -> None:
    assert roundtrip(entries, "icse", source="Interpol") == entries


ICSE_HEADER = (
    "MD5;SHA1;PhotoDNA;Image ID;Is distributed;Victim identified;Offender identified;Series name;"
    "Number of submissions;File Available;Media Type;Baseline"
)


def test_icse_sample_booleans_and_baseline() -> None:
    data = (
        ICSE_HEADER + "\n"
        f"{'a' * 32};{'b' * 40};;1001;Yes;no;0;Series X;4;true;Image;TRUE\n"
        f"{'c' * 32};;;1002;;;;;;;;false\n"
    ).encode()
    a, b = read_entries(io.BytesIO(crlf_bom(data)))
    assert a.signals == {"md5": "a" * 32, "sha1": "b" * 40}
    assert (a.distributed, a.victim_identified, a.offender_identified) == (True, False, False)
    assert a.category == Category("inhope", "baseline") and a.series == "Series X" and a.external_id == "1001"
    assert a.extra == {
        "icse": {"Number of submissions": "4", "File Available": "true", "Media Type": "Image"}
    }
    assert b.category is None and b.extra == {"icse": {"Baseline": "false"}}


def test_icse_entries_without_its_hashes_are_left_out() -> None:
    buf = io.BytesIO()
    n = write_entries([Entry({"pdq": "1" * 64}), Entry({"md5": "2" * 32})], buf, "icse")
    assert n == 1 and len(buf.getvalue().splitlines()) == 2


@pytest.mark.parametrize(
    ("row", "words"),
    [
        (f"{'g' * 32};;;1;;;;;;;;", ["md5", "hexadecimal"]),
        (f"{'a' * 33};;;1;;;;;;;;", ["md5", "32", "33"]),
        (f"{'a' * 32};;;1;perhaps;;;;;;;", ["Is distributed", "'perhaps'"]),
        (f"{'a' * 32};;;1;;;;;;;;;", ["12 fields", "13"]),  # fewer than the header: read, empty
        (";;;1;;;;;;;;", ["no hash"]),
    ],
)
def test_icse_invalid_row(row: str, words: list[str]) -> None:
    data = crlf_bom(
        "\n".join([ICSE_HEADER, f"{'1' * 32};;;A;;;;;;;;", row, f"{'3' * 32};;;C;;;;;;;;"]).encode()
    )
    err = first_error(data)
    assert (err.record, err.line) == (2, 3)
    for w in words:
        assert w in err.detail
    got, errs = errors_of(data)
    assert [e.external_id for e in got] == ["A", "C"] and [(e.record, e.line) for e in errs] == [(2, 3)]


def test_icse_malformed_file() -> None:
    assert "empty" in str(first_error(b"", "icse"))
    assert "ICSE header" in str(first_error(f"{'a' * 32};x\n".encode(), "icse"))
    assert list(read_entries(io.BytesIO((ICSE_HEADER + "\r\n").encode()))) == []
    err = first_error((ICSE_HEADER + "\n" + f"{'a' * 32};;;\xe9;;;;;;;;\n").encode("latin-1"), "icse")
    assert err.line == 2 and "UTF-8" in err.detail


# --- CSV -----------------------------------------------------------------------------


@st.composite
def csv_entries(draw: st.DrawFn) -> Entry:
    return Entry(
        signals=draw(signal_dicts(("md5", "sha1", "sha256", "pdq", "photodna"))),
        category=draw(st.none() | categories),
        victim_identified=draw(flags),
        offender_identified=draw(flags),
        distributed=draw(flags),
        series=draw(st.none() | words),
        tags=draw(tags_no_sep),
        source=draw(st.none() | words),
        date_updated=draw(dates),
        external_id=draw(st.none() | ids),
        size=draw(st.none() | st.integers(0, 2**40)),
    )


@pytest.mark.parametrize("delimiter", [",", "\t"])
@SETTINGS
@given(entries=st.lists(csv_entries(), max_size=6))
def test_csv_roundtrip(delimiter: str, entries: list[Entry]) -> None:
    assert roundtrip(entries, "csv", delimiter=delimiter) == entries


def test_csv_generic_hash_column_and_categories() -> None:
    data = (
        "Hash;Category;Media ID;Tags;Notes\n"
        f"{'a' * 32};1;m1;x, y;n1\n"
        f"{'b' * 40};uk:A;m2;;\n"
        f"{'c' * 64};CAT-3;m3;;\n"
    ).encode()
    err = first_error(data)
    assert isinstance(err, AmbiguousHash) and (err.record, err.line) == (3, 4) and "--type" in err.detail
    with pytest.raises(AmbiguousHash):  # a file-level choice: on_error does not skip it
        errors_of(data)
    a, b, c = read_entries(io.BytesIO(data), hash_type="pdq")
    assert a.signals == {"md5": "a" * 32} and a.category == Category("us-cat", "1") and a.tags == ("x", "y")
    assert a.extra == {"csv": {"Notes": "n1"}} and a.external_id == "m1"
    assert b.signals == {"sha1": "b" * 40} and b.category == Category("uk", "A")
    assert c.signals == {"pdq": "c" * 64} and c.category == Category("us-cat", "3")


def test_csv_type_column() -> None:
    data = f"signal_type,hash\nsha256,{'d' * 64}\nvideo_md5,{'e' * 32}\n".encode()
    assert [e.signals for e in read_entries(io.BytesIO(data), "csv")] == [
        {"sha256": "d" * 64},
        {"md5": "e" * 32},
    ]


@pytest.mark.parametrize(
    ("row", "words"),
    [
        (f"{'a' * 32},abc", ["category", "'abc'"]),
        (f"{'a' * 32},xx:D", ["xx"]),
        (f"{'a' * 31},", ["md5", "31"]),
        (f"{'x' * 32},", ["hexadecimal"]),
        (f"{'a' * 32},1,extra", ["2 fields", "3"]),
    ],
)
def test_csv_invalid_row(row: str, words: list[str]) -> None:
    data = crlf_bom(f"md5,category\n{'1' * 32},1\n{row}\n{'3' * 32},3\n".encode())
    err = first_error(data)
    assert (err.record, err.line) == (2, 3)
    for w in words:
        assert w in err.detail
    got, errs = errors_of(data)
    assert [e.category.code for e in got if e.category] == ["1", "3"] and [
        (e.record, e.line) for e in errs
    ] == [(2, 3)]


def test_csv_malformed_file() -> None:
    assert "empty" in str(first_error(b"", "csv"))
    assert "empty" in str(first_error(b"# only a comment\n", "csv"))
    err = first_error(b"name,size\nx,1\n", "csv")
    assert "no hash column" in err.detail and err.line == 1
    with pytest.raises(FormatError, match="sha256 or pdq"):
        list(read_entries(io.BytesIO(b"hash\n"), "csv", hash_type="md5"))


# --- plain -------------------------------------------------------------------------


@SETTINGS
@given(
    entries=st.lists(
        st.builds(
            lambda kind, value, name: Entry({kind: value}, extra={"plain": {"name": name}} if name else {}),
            st.just("md5"),
            hexs(32),
            st.none() | words,
        ),
        min_size=1,  # a plain list of nothing is an empty file, which reads as an error
        max_size=6,
    )
)
def test_plain_roundtrip(entries: list[Entry]) -> None:
    assert roundtrip(entries, "plain", "plain", signal="md5") == entries
    # detected, a list whose every line names a file is checksum output (sums), read the same
    buf = io.BytesIO()
    write_entries(entries, buf, "plain", signal="md5")
    assert detect_format(buf.getvalue()) == ("sums" if all(e.extra for e in entries) else "plain")
    assert list(read_entries(io.BytesIO(buf.getvalue()))) == entries


@pytest.mark.parametrize("hash_type", ["sha256", "pdq"])
def test_plain_64_hex_needs_a_type(hash_type: str) -> None:
    entries = [Entry({hash_type: f"{i:064x}"}) for i in range(3)]
    data = "".join(f"{i:064x}\n" for i in range(3)).encode()  # another tool's list: no type comment
    err = first_error(data)
    assert isinstance(err, AmbiguousHash) and (err.record, err.line) == (1, 1)
    assert list(read_entries(io.BytesIO(data), hash_type=hash_type)) == entries


@pytest.mark.parametrize("hash_type", ["sha256", "pdq"])
@pytest.mark.parametrize("named", [False, True])
def test_plain_export_of_64_hex_reads_back_as_written(hash_type: str, named: bool) -> None:
    """opspoor's plain list of PDQ (or SHA-256), with file names or without, reads back as the same
    signal: detected or ``--format plain``, with or without ``--type``."""
    entries = [
        Entry({hash_type: f"{i + 1:064x}"}, extra={"plain": {"name": f"dir/p {i}.jpg"}} if named else {})
        for i in range(3)
    ]
    buf = io.BytesIO()
    assert write_entries(entries + [Entry({"md5": "1" * 32})], buf, "plain") == 3  # first entry's signal
    data = buf.getvalue()
    assert data.startswith(f"# hash type: {hash_type}\n".encode())
    for fmt in ("auto", "plain"):
        for typed in (None, hash_type):
            assert list(read_entries(io.BytesIO(data), fmt, hash_type=typed)) == entries, (fmt, typed)


def test_an_explicit_type_is_honoured_for_named_64_hex_lines() -> None:
    """``HASH  name`` lines of another tool (no type comment): SHA-256 by default, PDQ when asked."""
    data = "".join(f"{i + 1:064x}  p{i}.jpg\n" for i in range(2)).encode()
    assert detect_format(data) == "sums"
    assert [e.signals for e in read_entries(io.BytesIO(data))] == [
        {"sha256": f"{i + 1:064x}"} for i in range(2)
    ]
    for fmt in ("auto", "sums", "plain"):
        got = list(read_entries(io.BytesIO(data), fmt, hash_type="pdq"))
        assert [e.signals for e in got] == [{"pdq": f"{i + 1:064x}"} for i in range(2)], fmt
        assert [e.extra for e in got] == [{"plain": {"name": f"p{i}.jpg"}} for i in range(2)]


def test_plain_mixed_lengths_comments_md5sum_bom_crlf() -> None:
    data = crlf_bom(
        f"# exported list\n\n{'A' * 32}\n{'b' * 40}  photos/x.jpg\n{'c' * 64} *bin.dat\n".encode()
    )
    got = list(read_entries(io.BytesIO(data), hash_type="sha256"))
    assert [e.signals for e in got] == [{"md5": "a" * 32}, {"sha1": "b" * 40}, {"sha256": "c" * 64}]
    assert [e.extra for e in got] == [{}, {"plain": {"name": "photos/x.jpg"}}, {"plain": {"name": "bin.dat"}}]


@pytest.mark.parametrize(
    ("line", "words"),
    [("g" * 32, ["hexadecimal"]), ("a" * 33, ["33 hex"]), ("a" * 12, ["12 hex"])],
)
def test_plain_invalid_line(line: str, words: list[str]) -> None:
    data = f"# c\n{'1' * 32}\n{line}\n\n{'3' * 32}\n".encode()
    err = first_error(data, "plain")
    assert (err.record, err.line) == (2, 3)
    for w in words:
        assert w in err.detail
    got, errs = errors_of(data, "plain")
    assert len(got) == 2 and [(e.record, e.line) for e in errs] == [(2, 3)]


def test_plain_empty() -> None:
    assert "empty" in str(first_error(b"", "plain"))
    assert "empty" in str(first_error(b"\r\n\r\n", "plain"))
    assert list(read_entries(io.BytesIO(b"# nothing yet\n"), "plain")) == []


# --- HMA / ThreatExchange ----------------------------------------------------------

hma_signals = signal_dicts(("pdq", "md5", "sha1", "sha256", "photodna", "vpdq"))


@st.composite
def hma_entries(draw: st.DrawFn, content_id: str) -> Entry:
    signals = draw(hma_signals)
    category = draw(st.none() | categories)
    extra = {}
    if category is None and draw(st.booleans()):
        extra = {"hma": {"category": draw(st.sampled_from(["POSITIVE_CLASS", "INVESTIGATION_SEED"]))}}
    return Entry(
        signals,
        category=category,
        tags=draw(tags_no_sep),
        source=draw(st.none() | st.sampled_from(["BANK_A", "BANK_B"])),
        # entries without an external id, or sharing one (even "entry-N", the id the writer makes
        # up), keep their boundaries: the writer gives each its own content id
        external_id=draw(st.none() | st.sampled_from([content_id, "shared", "entry-1", "entry-2"])),
        extra=extra,
    )


@SETTINGS
@given(data=st.data(), n=st.integers(0, 6))
def test_hma_roundtrip(data: st.DataObject, n: int) -> None:
    entries = [data.draw(hma_entries(f"c{i}")) for i in range(n)]
    # python-threatexchange's vPDQ form has no frame numbers: they come back as 0, 1, 2...
    assert roundtrip(entries, "hma") == [frames_renumbered(e) for e in entries]


def frames_renumbered(e: Entry) -> Entry:
    if "vpdq" not in e.signals:
        return e
    frames = [replace(f, frame_number=i) for i, f in enumerate(parse_vpdq(e.signals["vpdq"]))]
    return replace(e, signals={**e.signals, "vpdq": format_vpdq(frames)})


def test_hma_threatexchange_csv_and_lines() -> None:
    tx = (
        "collab,signal_type,signal_str,category,tags\n"
        f"Sample Data,pdq,{'f' * 64},POSITIVE_CLASS,media_type_photo sample\n"
        f"Sample Data,video_md5,{'e' * 32},POSITIVE_CLASS,\n"
    ).encode()
    assert detect_format(tx) == "hma"
    a, b = read_entries(io.BytesIO(tx))
    assert (
        a.signals == {"pdq": "f" * 64}
        and a.source == "Sample Data"
        and a.tags == ("media_type_photo", "sample")
    )
    assert a.extra == {"hma": {"category": "POSITIVE_CLASS"}} and b.signals == {"md5": "e" * 32}
    lines = crlf_bom(f"pdq {'a' * 64}\n\npdq {'B' * 64}\n".encode())
    assert detect_format(lines) == "hma-lines"
    assert [e.signals for e in read_entries(io.BytesIO(lines), source="TX")] == [
        {"pdq": "a" * 64},
        {"pdq": "b" * 64},
    ]


def test_hma_export_keeps_entries_without_or_sharing_an_external_id_apart() -> None:
    entries = [
        Entry({"pdq": "1" * 64, "md5": "1" * 32}),
        Entry({"pdq": "2" * 64, "md5": "2" * 32}, external_id="same"),
        Entry({"pdq": "3" * 64, "sha1": "3" * 40}, external_id="same"),
    ]
    assert roundtrip(entries, "hma") == entries


def test_hma_bank_content_grouping() -> None:
    data = (
        "bank_name,content_id,signal_type,signal\n"
        f"B1,1,pdq,{'1' * 64}\nB1,1,md5,{'1' * 32}\nB1,2,pdq,{'2' * 64}\nB2,2,pdq,{'3' * 64}\n"
    ).encode()
    got = list(read_entries(io.BytesIO(data)))
    assert [(e.source, e.external_id, sorted(e.signals)) for e in got] == [
        ("B1", "1", ["md5", "pdq"]),
        ("B1", "2", ["pdq"]),
        ("B2", "2", ["pdq"]),
    ]


def test_hma_invalid_rows() -> None:
    data = (
        "bank_name,content_id,signal_type,signal\n"
        f"B,1,pdq,{'1' * 64}\n"
        f"B,2,url,https://example.invalid/\n"
        f"B,3,pdq,{'g' * 64}\n"
        f"B,3,md5,{'3' * 32}\n"
        f"B,4,pdq,{'4' * 64}\n"
    ).encode()
    err = first_error(data)
    assert (err.record, err.line) == (2, 3) and "'url'" in err.detail
    got, errs = errors_of(data)
    # content 3 has a bad pdq: the whole content is left out, not imported half
    assert [e.external_id for e in got] == ["1", "4"]
    assert [(e.record, e.line) for e in errs] == [(2, 3), (3, 4)] and "hexadecimal" in errs[1].detail
    line_err = first_error(f"pdq {'1' * 64}\npdq\n".encode(), "hma")
    assert (line_err.record, line_err.line) == (2, 2) and "SIGNAL_TYPE SIGNAL" in line_err.detail
    assert "empty" in str(first_error(b"", "hma"))


def test_hma_tags_with_spaces_cannot_be_written() -> None:
    with pytest.raises(FormatError, match="white space"):
        write_entries([Entry({"pdq": "1" * 64}, tags=("two words",))], io.BytesIO(), "hma")


# --- vPDQ ----------------------------------------------------------------------------


@SETTINGS
@given(value=vpdqs)
def test_vpdq_roundtrip(value: str) -> None:
    e = Entry({"vpdq": value})
    assert roundtrip([e], "vpdq") == [e]


def test_vpdq_file_name_bom_crlf_and_errors(tmp_path) -> None:
    frames = f"0,100,{'a' * 64},0.000\n30,87,{'B' * 64},1.001\n"
    p = tmp_path / "clip.vpdq"
    p.write_bytes(crlf_bom(frames.encode()))
    (e,) = read_entries(p)
    assert e.signals == {"vpdq": f"0,100,{'a' * 64},0.000\n30,87,{'b' * 64},1.001"}
    assert e.extra == {"vpdq": {"name": "clip.vpdq"}}
    bad = (frames + f"60,101,{'c' * 64},2.0\n").encode()
    err = first_error(bad, "vpdq")
    assert (err.record, err.line) == (1, 3) and "quality" in err.detail
    got, errs = errors_of(bad, "vpdq")
    assert got == [] and len(errs) == 1
    assert "empty" in str(first_error(b"", "vpdq"))
    with pytest.raises(FormatError, match="one video"):
        write_entries([e, e], io.BytesIO(), "vpdq")


# --- detection and entry points -----------------------------------------------------


def test_every_format_is_detected_from_what_it_writes() -> None:
    e = Entry({"md5": "1" * 32, "sha1": "2" * 40, "pdq": "3" * 64, "vpdq": f"0,100,{'4' * 64},0.000"})
    for name, fmt in FORMATS.items():
        if fmt.writer is None:  # read only: detection is tested with each format's sample
            continue
        buf = io.BytesIO()
        opts = {"signal": "md5"} if name == "plain" else {}
        write_entries([e], buf, name, **opts)
        data = buf.getvalue()
        assert detect_format(data) == name, name
        assert detect_format(crlf_bom(data)) == name, name


@pytest.mark.parametrize(
    "head", [b"", b"\xef\xbb\xbf\r\n", b"hello world\n", b'{"a": 1}', b"\x89PNG\r\n\x1a\n"]
)
def test_detection_refuses_what_it_cannot_tell(head: bytes) -> None:
    with pytest.raises(UnknownFormat):
        detect_format(head, "x.bin")


def test_unknown_format_name() -> None:
    with pytest.raises(UnknownFormat, match="known: auto, encase, nsrl-rds3, vics2"):
        list(read_entries(io.BytesIO(b"x"), "xml"))
    with pytest.raises(UnknownFormat):
        write_entries([], io.BytesIO(), "auto")


def test_auto_detection_on_a_pipe_keeps_the_head() -> None:
    data = "\n".join(f"{i:032x}" for i in range(20_000)).encode()
    pipe = Trickle(data, 4096)
    assert not pipe.seekable()
    got = list(read_entries(pipe))  # type: ignore[arg-type]
    assert len(got) == 20_000 and got[-1].signals == {"md5": f"{19_999:032x}"}


def test_write_to_path_is_atomic(tmp_path) -> None:
    p = tmp_path / "out.json"

    def entries() -> Iterator[Entry]:
        yield Entry({"md5": "1" * 32})
        raise RuntimeError("store went away")

    with pytest.raises(RuntimeError):
        write_entries(entries(), p, "vics2")
    assert list(tmp_path.iterdir()) == []
    assert write_entries([Entry({"md5": "1" * 32})], p, "vics2") == 1
    assert [e.signals for e in read_entries(p)] == [{"md5": "1" * 32}]


def test_documented_examples_read_as_documented() -> None:
    """Every example in docs/formats.md is detected as its section's format and reads cleanly."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "formats.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(?:json|text)\n(.*?)```", doc, re.S)
    formats = [detect_format(b.encode()) for b in blocks]
    assert formats == [
        *("vics2", "vics2", "icse", "csv", "plain", "hma", "hma", "hma-lines", "vpdq", "ncmec", "sums"),
        *("hashdeep", "nsrl", "csv", "csv", "csv"),
    ]
    for block in blocks:
        assert list(read_entries(io.BytesIO(block.encode()), hash_type="pdq"))
