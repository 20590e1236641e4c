"""python-threatexchange as the oracle of the ``hma`` and ``hma-lines`` formats, both ways.

opspoor's export is read by python-threatexchange's own local-file exchange and its ``dataset``
command; what ``threatexchange dataset`` prints is read back by opspoor. Every hash is synthetic.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from threatexchange.exchanges.impl.file_api import FileCollaborationConfig, LocalFileSignalExchangeAPI
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal
from threatexchange.signal_type.sha256 import VideoSHA256Signal

from opspoor.hashsets.formats import detect_format, read_entries, write_entries
from opspoor.hashsets.model import Entry
from opspoor.signals.vpdq import VpdqFrame, format_vpdq

PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
MD5 = "0123456789abcdef0123456789abcdef"
SHA256 = "89abcdef" * 8
VPDQ = format_vpdq([VpdqFrame(0, 100, "a" * 64, 0.0), VpdqFrame(1, 87, "b" * 64, 1.5)])


def te_vpdq_util() -> types.ModuleType:
    """python-threatexchange's vPDQ (de)serialiser. Its module imports Meta's ``vpdq`` video
    hasher at the top, which only builds against FFmpeg; the two functions used here never call
    it, so a stand-in module is put in its place when the real one is missing."""
    try:
        import vpdq  # noqa: F401
    except ImportError:
        stand_in = types.ModuleType("vpdq")
        stand_in.VpdqFeature = object  # type: ignore[attr-defined] # only named in an annotation
        sys.modules["vpdq"] = stand_in
        try:
            from threatexchange.extensions.vpdq import vpdq_util
        finally:
            del sys.modules["vpdq"]  # nothing else sees the stand-in
        return vpdq_util
    from threatexchange.extensions.vpdq import vpdq_util

    return vpdq_util


def te_reads(path: Path) -> set[tuple[str, str]]:
    """(type, signal) pairs as python-threatexchange's local-file exchange reads ``path``."""
    api = LocalFileSignalExchangeAPI(
        FileCollaborationConfig(name="opspoor", api="local_file", enabled=True, filename=str(path))
    )
    (delta,) = api.fetch_iter([], None)
    return set(delta.updates)


def test_python_threatexchange_reads_the_lines_export(tmp_path: Path) -> None:
    entries = [
        Entry({"pdq": PDQ, "md5": MD5}),
        Entry({"sha256": SHA256, "sha1": "1" * 40}),
        Entry({"vpdq": VPDQ}),
        Entry({"sha1": "2" * 40}),  # no python-threatexchange type: left out
    ]
    out = tmp_path / "export.txt"
    assert write_entries(entries, out, "hma-lines") == 3
    got = te_reads(out)
    vpdq_util = te_vpdq_util()
    te_vpdq = next(s for t, s in got if t == "vpdq")
    assert [(f.pdq_hex, f.quality, f.timestamp) for f in vpdq_util.json_to_vpdq(te_vpdq)] == [
        ("a" * 64, 100, 0.0),
        ("b" * 64, 87, 1.5),
    ]
    assert got == {
        ("pdq", PdqSignal.validate_signal_str(PDQ)),
        ("video_md5", VideoMD5Signal.validate_signal_str(MD5)),
        ("video_sha256", VideoSHA256Signal.validate_signal_str(SHA256)),
        ("vpdq", te_vpdq),
    }
    # and opspoor reads its own export back
    assert detect_format(out.read_bytes()) == "hma-lines"
    assert [e.signals for e in read_entries(out)] == [
        {"pdq": PDQ},
        {"md5": MD5},
        {"sha256": SHA256},
        {"vpdq": VPDQ},
    ]


def test_opspoor_reads_python_threatexchange_vpdq() -> None:
    vpdq_util = te_vpdq_util()
    features = [
        vpdq_util.VpdqCompactFeature("c" * 64, 90, 0.0),
        vpdq_util.VpdqCompactFeature("D" * 64, 40, 2.25),
    ]
    signal = vpdq_util.vpdq_to_json(features)
    assert " " in signal  # JSON with spaces: the type ends at the first space only
    data = f"url https://example.invalid/x\nvpdq {signal}\n".encode()
    assert detect_format(data) == "hma-lines"  # from the second line: the first is no media hash
    errs: list = []
    (e,) = read_entries(io.BytesIO(data), on_error=errs.append)
    assert len(errs) == 1 and errs[0].line == 1 and "'url'" in errs[0].detail
    assert e.signals == {
        "vpdq": format_vpdq([VpdqFrame(0, 90, "c" * 64, 0.0), VpdqFrame(1, 40, "d" * 64, 2.25)])
    }


def run_te(home: Path, *args: str) -> str:
    env = {**os.environ, "HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "threatexchange", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_threatexchange_cli_round_trip(tmp_path: Path) -> None:
    """opspoor export -> threatexchange fetch -> threatexchange dataset (CSV and lines) -> opspoor."""
    entries = [
        Entry({"pdq": PDQ}),
        Entry({"md5": MD5}),
        Entry({"sha256": SHA256}),
        Entry({"pdq": "0" * 63 + "1"}),
    ]
    export = tmp_path / "opspoor.txt"
    write_entries(entries, export, "hma-lines")
    run_te(
        tmp_path,
        "config",
        "collab",
        "edit",
        "local_file",
        "--create",
        "--filename",
        str(export),
        "opspoor-set",
    )
    run_te(tmp_path, "fetch")
    as_csv = run_te(tmp_path, "dataset", "-P", "--csv").encode()
    as_lines = run_te(tmp_path, "dataset", "-P", "-S").encode()
    as_p = run_te(tmp_path, "dataset", "-P").encode()
    assert detect_format(as_csv) == "hma"
    assert detect_format(as_lines) == detect_format(as_p) == "hma-lines"
    want = sorted(str(e.signals) for e in entries)
    for data in (as_csv, as_lines, as_p):
        got = list(read_entries(io.BytesIO(data)))
        assert sorted(str(e.signals) for e in got) == want
    csv_entry = next(e for e in read_entries(io.BytesIO(as_csv)) if "pdq" in e.signals)
    p_entry = next(e for e in read_entries(io.BytesIO(as_p)) if "pdq" in e.signals)
    # the collaboration and python-threatexchange's opinion come along
    assert csv_entry.source == p_entry.source == "opspoor-set"
    assert csv_entry.extra["hma"]["category"] == p_entry.extra["hma"]["category"] == "INVESTIGATION_SEED"


def test_every_threatexchange_media_signal_type() -> None:
    lines = (
        f"pdq {PDQ}\nvideo_md5 {MD5.upper()}\nphoto_md5 {'9' * 32}\nvideo_sha256 {SHA256}\n"
        f'vpdq ["{"a" * 64},100,0.0", "{"b" * 64},87,1.5"]\n'
    ).encode()
    want = [{"pdq": PDQ}, {"md5": MD5}, {"md5": "9" * 32}, {"sha256": SHA256}, {"vpdq": VPDQ}]
    assert detect_format(lines) == "hma-lines"
    assert [e.signals for e in read_entries(io.BytesIO(lines))] == want
    rows = [ln.split(" ", 1) for ln in lines.decode().splitlines()]
    csv_text = "signal_type,signal_str,collab,category,tags\n" + "".join(
        f'{t},"{v.replace(chr(34), chr(34) * 2)}",C,POSITIVE_CLASS,\n' for t, v in rows
    )
    assert detect_format(csv_text.encode()) == "hma"
    assert [e.signals for e in read_entries(io.BytesIO(csv_text.encode()))] == want


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("vpdq [not json", "not a JSON list"),
        (f'vpdq ["{"a" * 64},101,0.0"]', "frame 1"),
        (f'vpdq ["{"a" * 64},100"]', "frame 1"),
        ("vpdq []", "non-empty"),
        (f"pdq {PDQ} trailing words here", "unexpected text"),
    ],
)
def test_bad_threatexchange_lines_are_named(line: str, words: str) -> None:
    data = f"pdq {PDQ}\n{line}\n".encode()
    errs: list = []
    got = list(read_entries(io.BytesIO(data), "hma-lines", on_error=errs.append))
    assert len(got) == 1 and (errs[0].record, errs[0].line) == (2, 2) and words in errs[0].detail
