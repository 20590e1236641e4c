"""The compiled VICS reader: the same entries as the careful path, or it gives up on the run."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opspoor.errors import FormatError
from opspoor.hashsets.formats import read_entries
from opspoor.hashsets.formats.arrays import ArrayBatch
from opspoor.hashsets.formats.vics import CONTEXT_V2, media_entry
from opspoor.hashsets.formats.vics_arrays import media_arrays


def _hex(nbytes: int) -> st.SearchStrategy[str]:
    return st.tuples(st.binary(min_size=nbytes, max_size=nbytes), st.booleans()).map(
        lambda t: t[0].hex().upper() if t[1] else t[0].hex()
    )


# text without escapes or characters whose UTF-8 lead byte is shared with a Unicode space
_CHAR = st.one_of(
    st.characters(min_codepoint=32, max_codepoint=0x7E, exclude_characters='\\"'),
    st.characters(min_codepoint=0xC0, max_codepoint=0x7FF),
    st.characters(min_codepoint=0x4000, max_codepoint=0xD7FF),
)
_TEXT = st.text(_CHAR, max_size=12)
_FLAG = st.sampled_from([None, True, False, "", "true", "false", "True", "False", "TRUE", "FALSE", 0, 1])
_ABSENT = st.sampled_from([None, ""])


@st.composite
def media(draw: st.DrawFn) -> dict[str, Any]:
    """A Media record of the usual shape, with optional properties left out or absent."""
    alt_names = draw(st.lists(st.sampled_from(["MD5", "SHA1", "SHA256", "PDQ"]), unique=True, max_size=3))
    top = draw(st.lists(st.sampled_from(["MD5", "SHA1", "SHA256"]), unique=True, max_size=3))
    top = [k for k in top if k not in alt_names]
    if not top and not alt_names:
        top = ["MD5"]
    widths = {"MD5": 16, "SHA1": 20, "SHA256": 32, "PDQ": 32}
    options: dict[str, st.SearchStrategy[Any]] = {
        "MediaID": st.one_of(st.integers(0, 10**15), _TEXT, _ABSENT),
        "Category": st.one_of(st.integers(0, 5), st.sampled_from(["0", "3", "5"]), _ABSENT),
        "MediaSize": st.one_of(st.integers(0, 10**12), st.none()),
        "VictimIdentified": _FLAG,
        "OffenderIdentified": _FLAG,
        "IsDistributed": _FLAG,
        "Series": st.one_of(_TEXT, st.just("  a b  "), st.just(" Zoë "), _ABSENT),
        "Tags": _ABSENT,
        "DateUpdated": st.one_of(st.just("2024-01-01T00:00:00Z"), _TEXT, _ABSENT),
        "PhotoDNA": _ABSENT,
        "MediaFiles": st.none(),
        "OpspoorCategory": _ABSENT,
        "IsPrecategorized": st.sampled_from(["true", "false"]),
        "Notes": _TEXT,
        "Count": st.integers(0, 10**6),
        "Flag": st.sampled_from([True, False, None]),
    }
    record: dict[str, Any] = {}
    for key in draw(st.permutations(list(options) + top + (["AlternativeHashes"] if alt_names else []))):
        if key in widths:
            record[key] = draw(st.one_of(_hex(widths[key]), _ABSENT) if len(top) > 1 else _hex(widths[key]))
        elif key == "AlternativeHashes":
            record[key] = [{"HashName": n, "HashValue": draw(_hex(widths[n]))} for n in alt_names]
        elif draw(st.booleans()):
            record[key] = draw(options[key])
    if not any(record.get(k) for k in top) and not alt_names:
        record[top[0]] = draw(_hex(widths[top[0]]))
    return record


def _run(records: list[dict[str, Any]], sep: str = ",\n", **dumps: Any) -> bytes:
    return sep.join(json.dumps(r, ensure_ascii=False, **dumps) for r in records).encode()


def _careful(records: list[dict[str, Any]], source: str | None = None) -> list[Any]:
    return [media_entry(r, None, source) for r in records]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(media(), min_size=1, max_size=8), st.sampled_from([(", ", ": "), (",", ":")]))
def test_arrays_hold_what_the_careful_path_reads(records: list[dict[str, Any]], seps: Any) -> None:
    batch = media_arrays(_run(records, separators=seps), "hotline")
    assert batch is not None
    assert list(batch.entries()) == _careful(records, "hotline")


@pytest.mark.parametrize("series", ["\u00a0x", "x\u3000", "\u2003"])
def test_gives_up_on_a_series_that_may_end_in_a_unicode_space(series: str) -> None:
    assert media_arrays(_run([{"MD5": "f" * 32, "Series": series}]), None) is None
    assert media_entry({"MD5": "f" * 32, "Series": series}, None, None).series == (series.strip() or None)


@pytest.mark.parametrize("series", ["’quoted’", "snow ☃", "、x", "Zoë", "¡hola"])
def test_reads_a_series_that_begins_or_ends_beyond_ascii(series: str) -> None:
    batch = media_arrays(_run([{"MD5": "f" * 32, "Series": f" {series} "}]), None)
    assert batch is not None and [e.series for e in batch.entries()] == [series]


def test_hex_of_either_case_and_spans_of_non_ascii_text() -> None:
    rec = {
        "MediaID": "ä-7",
        "MD5": "ABCDEF0123456789abcdef0123456789",
        "Series": "  Zoë ",
        "Weather": "zonnig ☀",
        "Category": "4",
    }
    batch = media_arrays(_run([rec]), None)
    assert batch is not None and len(batch) == 1
    (entry,) = batch.entries()
    assert entry.signals == {"md5": "abcdef0123456789abcdef0123456789"}
    assert (entry.external_id, entry.series, str(entry.category)) == ("ä-7", "Zoë", "us-cat:4")
    assert entry.extra == {"vics": {"Weather": "zonnig ☀"}}
    assert entry == media_entry(rec, None, None)


MD5 = "0" * 31 + "1"
DNA = "QUJD" * 48  # a made-up PhotoDNA: 144 bytes in base64 (read by the careful path)


@pytest.mark.parametrize(
    "record",
    [
        {"MD5": MD5, "Series": "a\\u00e9"},  # an escape (json.dumps writes the backslash)
        {"MD5": MD5, "PhotoDNA": DNA},
        {"MD5": MD5, "AlternativeHashes": [{"HashName": "vPDQ", "HashValue": "x"}]},
        {"MD5": MD5, "AlternativeHashes": [{"HashName": "Other", "HashValue": "x"}]},
        {"MD5": MD5, "AlternativeHashes": [{"HashName": "MD5", "HashValue": MD5}]},  # twice
        {"MD5": MD5, "Tags": "a,b"},
        {"MD5": MD5, "MediaFiles": []},
        {"MD5": MD5, "OpspoorCategory": "uk:A"},
        {"MD5": MD5, "Score": 1.5},
        {"MD5": MD5, "Nested": {"a": 1}},
        {"MD5": MD5, "Category": 6},
        {"MD5": MD5, "Category": True},
        {"MD5": MD5, "Category": 2.0},
        {"MD5": MD5, "MediaSize": -1},
        {"MD5": MD5, "VictimIdentified": "yes"},
        {"MD5": MD5, "md5": MD5},  # a known property spelled otherwise
        {"MD5": MD5[:-1]},
        {"MD5": MD5[:-1] + "g"},
        {"Category": 1},
        {},
    ],
)
def test_gives_up_on_what_it_does_not_read_exactly(record: dict[str, Any]) -> None:
    good = {"MD5": "f" * 32, "Category": 1}
    assert media_arrays(_run([good]), None) is not None
    assert media_arrays(_run([good, record]), None) is None


@pytest.mark.parametrize(
    "run",
    [
        b'{"MD5": "' + MD5.encode() + b'", "MD5": "' + MD5.encode() + b'"}',  # a repeated property
        b'{"MD5": "' + MD5.encode() + b'", "X": 1, "X": 2}',
        b'{"MD5": "' + MD5.encode() + b'"},',  # a trailing comma
        b'{"MD5": "' + MD5.encode() + b'"} {"MD5": "' + MD5.encode() + b'"}',
        b'{"MD5": "' + MD5.encode() + b'", "Size": 01}',
        b'{"MD5": "' + MD5.encode() + b'", "Series": "tab\there"}',
        b'{"MD5": "' + MD5.encode() + b'"',
        # AlternativeHashes items that json refuses, and runs that end inside them
        b'{"MD5": "'
        + MD5.encode()
        + b'", "AlternativeHashes": [{"HashName": "PDQ" "HashValue": "'
        + b"a" * 64
        + b'"}]}',
        b'{"MD5": "'
        + MD5.encode()
        + b'", "AlternativeHashes": [{"HashName": "PDQ", "HashValue": "'
        + b"a" * 64
        + b'",}]}',
        b'{"MD5": "' + MD5.encode() + b'", "AlternativeHashes": [',
        b'{"MD5": "'
        + MD5.encode()
        + b'", "AlternativeHashes": [{"HashName": "PDQ", "HashValue": "'
        + b"a" * 64
        + b'"},',
    ],
)
def test_gives_up_on_malformed_or_ambiguous_runs(run: bytes) -> None:
    assert media_arrays(run, None) is None


def _vics(records: list[dict[str, Any]]) -> bytes:
    body = ",\n".join(json.dumps(r, ensure_ascii=False) for r in records)
    return f'{{"@odata.context": "{CONTEXT_V2}#Media", "value": [\n{body}\n]}}\n'.encode()


def test_a_small_file_is_not_read_by_the_compiled_reader(tmp_path: Path) -> None:
    records = [{"MediaID": i, "MD5": f"{i:032x}"} for i in range(1, 101)]
    path = tmp_path / "small.json"
    path.write_bytes(_vics(records))
    batches = list(read_entries(path).batches())
    assert batches and not any(isinstance(b, ArrayBatch) for b in batches)
    assert [e for b in batches for e in b.entries()] == _careful(records)


def test_a_file_mixes_array_runs_with_careful_records(tmp_path: Path) -> None:
    usual = [{"MediaID": i, "Category": i % 6, "MD5": f"{i:032x}", "Pre": "true"} for i in range(1, 20_001)]
    odd = {"MediaID": "odd", "MD5": "e" * 32, "Tags": "a,b", "PhotoDNA": DNA}
    records = usual[:10_000] + [odd] + usual[10_000:]  # runs before and after it are compiled
    path = tmp_path / "mixed.json"
    path.write_bytes(_vics(records))
    batches = list(read_entries(path).batches())
    assert any(isinstance(b, ArrayBatch) for b in batches)
    assert not all(isinstance(b, ArrayBatch) for b in batches)
    entries = [e for b in batches for e in b.entries()]
    assert entries == _careful(records)
    assert list(read_entries(io.BytesIO(_vics(records)))) == entries


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("fault", ["not hex", "syntax"])
def test_an_invalid_record_is_still_named_by_the_careful_path(tmp_path: Path, bom: bytes, fault: str) -> None:
    records = [{"MediaID": i, "MD5": f"{i:032x}"} for i in range(1, 20_001)]
    records[12_000]["MD5"] = "not hex"
    data = _vics(records)
    if fault == "syntax":
        data = data.replace(b'"not hex"', b'"ab" x')
    path = tmp_path / "bad.json"
    path.write_bytes(bom + data)
    with pytest.raises(FormatError) as info:
        list(read_entries(path).batches())
    # after runs read from the file's bytes, the record, line and column are still exact
    assert (info.value.record, info.value.line) == (12_001, 12_002)
    if fault == "syntax":
        assert "(column 32)" in str(info.value)
    else:
        assert "md5" in str(info.value).lower()


class _Pipe(io.RawIOBase):
    """A stream that cannot seek, like standard input."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        return self._data.readinto(b)


@pytest.mark.parametrize("how", ["file", "pipe", "non-ascii"])
def test_runs_are_compiled_from_bytes_text_or_pipes_alike(
    tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opspoor.hashsets.formats.jsonstream import JsonReader

    skipped: list[int] = []
    skip = JsonReader.skip_raw
    monkeypatch.setattr(JsonReader, "skip_raw", lambda jr, b: (skipped.append(len(b)), skip(jr, b))[1])
    records = [
        {"MediaID": i, "MD5": f"{i:032x}", "Series": "Zoë" if how == "non-ascii" else "Zoe"}
        for i in range(1, 20_001)
    ]
    data = _vics(records)
    source: Any = io.BufferedReader(_Pipe(data)) if how == "pipe" else tmp_path / "set.json"
    if how != "pipe":
        source.write_bytes(data)
    batches = list(read_entries(source).batches())
    assert sum(isinstance(b, ArrayBatch) for b in batches) >= 2
    assert [e for b in batches for e in b.entries()] == _careful(records)
    # a seekable ASCII file is read as bytes; a pipe or non-ASCII text through the decoded text
    assert bool(skipped) == (how == "file")


def test_a_large_export_of_ours_reads_back_through_the_compiled_reader(tmp_path: Path) -> None:
    from opspoor.hashsets.formats import write_entries
    from opspoor.hashsets.model import Category, Entry

    rng = random.Random(3)
    entries = [
        Entry(
            {"md5": rng.randbytes(16).hex(), "sha1": rng.randbytes(20).hex(), "pdq": rng.randbytes(32).hex()},
            category=Category("us-cat", str(i % 6)) if i % 7 else None,
            victim_identified=(None, True, False)[i % 3],
            distributed=bool(i % 2),
            series=f"Serie {i % 11}" if i % 4 == 0 else None,
            date_updated="2024-05-01T12:00:00Z",
            external_id=str(i),
            size=i * 17,
            extra={"vics": {"IsPrecategorized": "true"}} if i % 5 == 0 else {},
        )
        for i in range(1, 15_001)
    ]
    path = tmp_path / "export.json"
    write_entries(entries, path, "vics2")
    batches = list(read_entries(path).batches())
    assert sum(isinstance(b, ArrayBatch) for b in batches) >= 2
    assert [e for b in batches for e in b.entries()] == entries
