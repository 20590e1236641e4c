"""PhotoDNA is stored and matched exactly, never computed, through the signal registry: a value is
its 144 bytes whichever spelling a list or a query uses (base64, hex, comma-separated decimal
bytes), stored as their hex and looked up in the matcher's exact index like MD5. Imported from
VICS, NCMEC and ICSE files, it is found by ``opspoor match``, the library's matcher and the service
(its route and fast path are compared in ``tests/test_service_fastpath.py``).

Every PhotoDNA here is made up (patterned bytes); no hash of any real picture.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from opspoor.cli import app as cli_app
from opspoor.errors import SignalError
from opspoor.hashsets.formats import read_entries, write_entries
from opspoor.hashsets.formats.vics import CONTEXT_V2
from opspoor.hashsets.model import Category, Entry
from opspoor.matching import Matcher, Query
from opspoor.signals import get_signal
from opspoor.signals.photodna import photodna_base64
from opspoor.store import iter_entries, open_store
from test_service import add_entries, create_set, eventually, match_values, running

runner = CliRunner()


def dna(k: int) -> bytes:
    """A made-up PhotoDNA: 144 patterned bytes."""
    return bytes((k * 31 + i * 7) % 256 for i in range(144))


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def decimals(raw: bytes) -> str:
    return ",".join(map(str, raw))


def test_every_spelling_is_the_same_value_and_anything_else_is_refused() -> None:
    photodna = get_signal("photodna")
    raw = dna(1)
    for spelling in (b64(raw), b64(raw)[:64] + "\r\n" + b64(raw)[64:], raw.hex().upper(), decimals(raw)):
        assert photodna.validate(spelling) == raw.hex()
    assert photodna.validate(", ".join(map(str, raw))) == raw.hex()
    assert photodna_base64(raw.hex()) == b64(raw)
    for bad, why in (
        ("", "empty"),
        ("QUJD", "144 bytes, got 3"),
        (b64(raw + b"x"), "144 bytes, got 145"),
        (raw.hex()[:-2], "144 bytes"),
        ("300" + decimals(raw)[decimals(raw).index(",") :], "above 255"),
        ("pdna-1", "not base64, hex or comma-separated decimal bytes"),
        ("QUJD=A", "not base64"),
    ):
        with pytest.raises(SignalError, match=why):
            photodna.validate(bad)


def _lists(tmp_path: Path) -> dict[str, Path]:
    """The same kind of list in three formats, each spelling PhotoDNA its own way."""
    vics = tmp_path / "set.json"
    media = [
        {"MediaID": 1, "Category": 1, "MD5": "1" * 32, "PhotoDNA": b64(dna(1))},
        {"MediaID": 2, "Category": 2, "MD5": "2" * 32, "PhotoDNA": b64(dna(2))},
    ]
    vics.write_text(json.dumps({"@odata.context": CONTEXT_V2 + "#Media", "value": media}))
    ncmec = tmp_path / "ncmec.xml"
    ncmec.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2"><images count="1">'
        "<image><id>n-3</id><classification>A1</classification><fingerprints>"
        f"<md5>{'3' * 32}</md5><pdna>{decimals(dna(3))}</pdna></fingerprints></image></images></queryResult>"
    )
    icse = tmp_path / "icse.csv"
    icse.write_text(
        "MD5;SHA1;PhotoDNA;Image ID;Is distributed;Victim identified;Offender identified;Series name;"
        "Number of submissions;File Available;Media Type;Baseline\n"
        f"{'4' * 32};;{dna(4).hex().upper()};i-4;;;;;;;;true\n"
    )
    return {"vics2": vics, "ncmec": ncmec, "icse": icse}


def _import(db: str, name: str, path: Path) -> None:
    res = runner.invoke(cli_app, ["hashset", "import", str(path), "--name", name, "--db", db])
    assert res.exit_code == 0, res.output


def _cli_match(db: str, hashsets: list[str], values: list[str]) -> list[list[tuple[str, Any, int]]]:
    args = ["match", "--db", db, "--json", *[a for h in hashsets for a in ("--hashset", h)], *values]
    res = runner.invoke(cli_app, args)
    assert res.exit_code == 0, res.output
    out = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    return [[(m["signal"], m["external_id"], m["distance"]) for m in o["matches"]] for o in out]


def test_photodna_from_vics_ncmec_and_icse_is_matched_exactly_in_any_spelling(
    tmp_path: Path, sqlite_url: str
) -> None:
    lists = _lists(tmp_path)
    for name, path in lists.items():
        _import(sqlite_url, name, path)
    with open_store(sqlite_url) as store:  # stored as the bytes' hex, whichever spelling came in
        stored = {e.external_id: e.signals["photodna"] for n in lists for e in iter_entries(store, n)}
    assert stored == {"1": dna(1).hex(), "2": dna(2).hex(), "n-3": dna(3).hex(), "i-4": dna(4).hex()}

    sets = list(lists)
    for _ in range(2):  # the index built from the store, then mapped from the index cache
        found = _cli_match(
            sqlite_url,
            sets,
            [
                f"photodna:{dna(1).hex()}",  # stored from base64, asked in hex
                decimals(dna(2)),  # untyped: only PhotoDNA takes decimal bytes
                f"PhotoDNA:{b64(dna(3))}",  # stored from decimal bytes, asked in base64
                b64(dna(4)),  # stored from upper-case hex
                b64(dna(5)),  # a PhotoDNA no set holds
                "1" * 32,  # MD5 still
            ],
        )
        assert found == [
            [("photodna", "1", 0)],
            [("photodna", "2", 0)],
            [("photodna", "n-3", 0)],
            [("photodna", "i-4", 0)],
            [],
            [("md5", "1", 0)],
        ]

    res = runner.invoke(cli_app, ["match", "--db", sqlite_url, "--hashset", "vics2", "photodna:QUJD"])
    assert res.exit_code == 1 and "photodna value must be 144 bytes, got 3" in res.output

    with open_store(sqlite_url) as store:  # the library's matcher: a keyword of Query
        matcher = Matcher.from_store(store, sets, 31)
        hits = matcher.match_queries([Query(photodna=dna(3).hex()), Query(photodna=dna(6).hex())])
    assert [[(m.hashset, m.signal, m.distance, m.external_id) for m in ms] for ms in hits] == [
        [("ncmec", "photodna", 0, "n-3")],
        [],
    ]
    assert matcher.size["photodna"] == 4


def test_vics_writes_photodna_in_base64_and_reads_it_back() -> None:
    entry = Entry({"md5": "1" * 32, "photodna": dna(1).hex()}, category=Category("us-cat", "1"))
    for fmt in ("vics2", "vics13"):
        buf = io.BytesIO()
        write_entries([entry], buf, fmt)
        assert b64(dna(1)) in buf.getvalue().decode() and dna(1).hex() not in buf.getvalue().decode()
        (back,) = read_entries(io.BytesIO(buf.getvalue()))
        assert back.signals == entry.signals


def test_the_service_stores_matches_and_removes_photodna_in_any_spelling(sqlite_url: str) -> None:
    with running(sqlite_url) as api:
        create_set(api, "known")
        added = add_entries(api, "known", [{"signals": {"photodna": decimals(dna(1))}, "external_id": "d1"}])
        assert added["added"] == 1

        def found(value: str) -> list[tuple[str, str, int]]:
            (r,) = match_values(api, [{"type": "photodna", "value": value}])
            assert r["value"] == get_signal("photodna").validate(value)  # answered in canonical form
            return [(m["signal"], m["external_id"], m["distance"]) for m in r["matches"]]

        eventually(lambda: found(b64(dna(1))) == [("photodna", "d1", 0)])
        assert found(dna(1).hex().upper()) == [("photodna", "d1", 0)]
        assert found(dna(2).hex()) == []
        r = api.client.request(
            "DELETE",
            "/v1/hashsets/known/entries",
            headers=api.auth("a", "curator"),
            json={"signal": "photodna", "values": [b64(dna(1))]},
        )
        assert r.status_code == 200 and len(r.json()["removed"]) == 1, r.text
        eventually(lambda: found(dna(1).hex()) == [])
