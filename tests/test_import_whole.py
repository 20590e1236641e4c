"""Hash lists import whole (issue 16): no entry folded away for a shared perceptual hash, unknown
category codes kept, uncategorised entries never known, short ICSE rows, integer MediaIDs.

Meta's bridge-mods pictures (../shared/reference) are benign test images; everything else is
synthetic hex. A "known" item here is a benign image in a test hash set."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from opspoor.cli import app
from opspoor.hashsets.formats import CaseInfo, read_entries, write_entries
from opspoor.hashsets.formats.arrays import ArrayBatch
from opspoor.hashsets.formats.vics import CONTEXT_V2, uk_data_model
from opspoor.hashsets.model import Category, CategoryMap, Entry
from opspoor.matching import Matcher
from opspoor.signals.engine import hash_bytes
from opspoor.store import entry_details, import_entries, iter_entries, list_conflicts, open_store
from opspoor.triage.records import verdict

runner = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.stdout + (res.stderr if res.stderr_bytes is not None else "")


def match_json(db: str, hashset: str, *values: str) -> list[dict[str, Any]]:
    res = runner.invoke(app, ["match", "--hashset", hashset, "--db", db, *values, "--json"])
    assert res.exit_code == 0, res.output
    return [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]


def summary_line(out: str, name: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(f"{name}: "))


# --- 1. an entry is one record: a shared perceptual hash folds nothing ------------------------
@pytest.fixture(scope="module")
def bridge(reference: Path) -> dict[str, dict[str, str]]:
    folder = reference / "pdq" / "data" / "bridge-mods"
    out = {}
    for path in sorted(folder.glob("*.jpg")):
        data = path.read_bytes()
        sig = hash_bytes(data)
        assert sig.pdq is not None
        out[path.name] = {"md5": sig.md5, "sha256": hashlib.sha256(data).hexdigest(), "pdq": sig.pdq}
    return out


def test_bridge_mods_share_pdqs(bridge: dict[str, dict[str, str]]) -> None:
    """What makes the next tests bite: several of the 12 files have the same PDQ."""
    assert len(bridge) == 12
    assert len({h["pdq"] for h in bridge.values()}) < 12


def test_a_csv_of_the_bridge_mods_imports_twelve_entries(
    bridge: dict[str, dict[str, str]], db_url: str, tmp_path: Path
) -> None:
    listing = tmp_path / "bridge.csv"
    with listing.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["md5", "sha256", "pdq", "external_id", "category"])
        for name, h in bridge.items():
            w.writerow([h["md5"], h["sha256"], h["pdq"], name, "us-cat:1"])
    code, out = cli("hashset", "import", str(listing), "-n", "S", "--db", db_url)
    assert code == 0, out
    assert "S: 12 entries added, 0 duplicates, 0 conflicts" in summary_line(out, "S")
    with open_store(db_url) as store:
        kept = {e.external_id: e.signals for e in iter_entries(store, "S")}
    assert kept == {
        name: {"md5": h["md5"], "sha256": h["sha256"], "pdq": h["pdq"]} for name, h in bridge.items()
    }
    (found,) = match_json(db_url, "S", bridge["blur-a-little.jpg"]["md5"])
    assert [(m["external_id"], m["signal"]) for m in found["matches"]] == [("blur-a-little.jpg", "md5")]
    # a shared PDQ finds every file that has it
    pdq = bridge["aaa-orig.jpg"]["pdq"]
    (by_pdq,) = match_json(db_url, "S", pdq)
    same = {n for n, h in bridge.items() if h["pdq"] == pdq}
    assert len(same) > 1 and same <= {m["external_id"] for m in by_pdq["matches"] if m["distance"] == 0}
    # the same list again: every record is a duplicate, decided by its SHA-256
    code, out = cli("hashset", "import", str(listing), "-n", "S", "--db", db_url)
    assert "0 entries added, 12 duplicates (same sha256 12)" in summary_line(out, "S")
    code, out = cli("hashset", "conflicts", "S", "--json", "--db", db_url)
    assert json.loads(out) == []


def test_hashset_build_of_the_bridge_mods_keeps_twelve_entries(
    bridge: dict[str, dict[str, str]], reference: Path, db_url: str
) -> None:
    folder = reference / "pdq" / "data" / "bridge-mods"
    code, out = cli("hashset", "build", str(folder), "-n", "S", "--workers", "1", "--db", db_url)
    assert code == 0, out
    assert "S: 12 entries added (12 images, 0 videos), 0 duplicates" in summary_line(out, "S")
    (found,) = match_json(db_url, "S", bridge["blur-a-little.jpg"]["md5"])
    assert [m["external_id"] for m in found["matches"]] == ["blur-a-little.jpg"]


def _photodna_vics(tmp_path: Path) -> Path:
    dna = "QUJD" * 48  # a made-up PhotoDNA: 144 bytes in base64
    media = [{"MediaID": k, "Category": 1, "MD5": f"{k:032X}", "PhotoDNA": dna} for k in range(1, 4)] + [
        {"MediaID": 4, "Category": 2, "MD5": f"{4:032X}", "PhotoDNA": dna}
    ]
    path = tmp_path / "dna.json"
    path.write_text(json.dumps({"@odata.context": CONTEXT_V2 + "#Media", "value": media}))
    return path


def test_vics_records_that_share_a_photodna_stay_apart(db_url: str, tmp_path: Path) -> None:
    path = _photodna_vics(tmp_path)
    with open_store(db_url) as store:
        r = import_entries(store, "S", read_entries(path))
        assert (r.added, r.duplicates, r.conflicts) == (4, 0, 1)
        assert sorted(e.external_id or "" for e in iter_entries(store, "S")) == ["1", "2", "3", "4"]
        # a shared PhotoDNA under another category is still a conflict to look at
        (c,) = list_conflicts(store, "S")
        assert (c.signal, c.entry.external_id, c.other.external_id) == ("photodna", "1", "4")


def _big_vics(n: int, *, context: str = CONTEXT_V2 + "#Media", category: Any = 1) -> bytes:
    """A list large enough for the compiled reader (ArrayBatch, COPY BINARY on PostgreSQL): pairs of
    records share a PDQ, and every tenth record repeats an earlier one exactly."""
    lines = []
    for i in range(n):
        k = i - 5 if i % 10 == 9 else i  # an exact repeat of an earlier record
        lines.append(
            json.dumps(
                {
                    "MediaID": i + 1,
                    "Category": category,
                    "MD5": f"{k:032X}",
                    "SHA1": f"{k:040X}",
                    "AlternativeHashes": [{"HashName": "PDQ", "HashValue": f"{k // 2:064x}"}],
                }
            )
        )
    return (f'{{"@odata.context": "{context}", "value": [\n' + ",\n".join(lines) + "\n]}\n").encode()


def test_a_large_vics_list_keeps_records_that_share_a_pdq(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(_big_vics(4000))
    assert any(isinstance(b, ArrayBatch) for b in read_entries(path).batches())  # the compiled path
    with open_store(db_url) as store:
        r = import_entries(store, "S", read_entries(path))
        assert (r.added, r.duplicates, r.conflicts) == (3600, 400, 0)
        assert r.duplicates_by == {"sha1": 400}
        pdqs = [e.signals["pdq"] for e in iter_entries(store, "S")]
    assert len(pdqs) == 3600 and len(set(pdqs)) == 2000  # 1600 pairs share their PDQ


def test_same_md5_with_another_sha256_is_not_a_duplicate(db_url: str) -> None:
    md5 = "ab" * 16
    entries = [
        Entry({"md5": md5, "sha256": "01" * 32}, Category("us-cat", "1"), external_id="a"),
        Entry({"md5": md5, "sha256": "02" * 32}, Category("us-cat", "1"), external_id="b"),
        Entry({"md5": md5}, Category("us-cat", "1"), external_id="c"),  # nothing contradicts: a repeat
    ]
    with open_store(db_url) as store:
        r = import_entries(store, "S", entries)
        assert (r.added, r.duplicates, r.duplicates_by) == (2, 1, {"md5": 1})
        assert [e.external_id for e in iter_entries(store, "S")] == ["a", "b"]


def test_same_md5_with_another_pdq_or_photodna_keeps_both_hashes(db_url: str) -> None:
    """The same file hashed by two tools (PDQ ports differ by bits): both PDQs stay searchable, each
    record keeps its external id; a repeat that brings nothing different is still a duplicate."""
    md5, pdq_a, pdq_b = "cd" * 16, "f" * 64, "0f" * 32
    entries = [
        Entry({"md5": md5, "pdq": pdq_a}, Category("us-cat", "1"), external_id="m1"),
        Entry({"md5": md5, "pdq": pdq_b}, Category("us-cat", "1"), external_id="m2"),
        Entry({"md5": md5, "photodna": "01" * 144}, Category("us-cat", "1"), external_id="m3"),
        Entry({"md5": md5, "photodna": "02" * 144}, Category("us-cat", "1"), external_id="m4"),
        Entry({"md5": md5, "pdq": pdq_a}, Category("us-cat", "1"), external_id="m5"),
    ]
    with open_store(db_url) as store:
        r = import_entries(store, "S", entries)
        kept = {e.external_id: e.signals for e in iter_entries(store, "S")}
    assert (r.added, r.duplicates) == (3, 2), r
    assert sorted(kept) == ["m1", "m2", "m4"]  # m3 folds into m1 (brings a PhotoDNA m1 lacks)
    assert {kept["m1"]["pdq"], kept["m2"]["pdq"]} == {pdq_a, pdq_b}
    assert kept["m1"]["photodna"] == "01" * 144 and kept["m4"]["photodna"] == "02" * 144


# --- 2. categories outside 0-5 ----------------------------------------------------------------
def _vics(media: list[dict[str, Any]], context: str = CONTEXT_V2 + "#Media") -> str:
    return json.dumps({"@odata.context": context, "value": media})


def test_an_unknown_category_is_kept_and_counted(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.sqlite'}"
    path = tmp_path / "nist.json"
    path.write_text(
        _vics([{"MediaID": k, "Category": c, "MD5": f"{k:032x}"} for k, c in enumerate([1, 8, 8, 5], 1)])
    )
    code, out = cli("hashset", "import", str(path), "-n", "S", "--db", db)
    assert code == 0, out
    line = summary_line(out, "S")
    assert (
        "4 entries added" in line
        and "2 with a category code their scheme does not define (us-cat:8 2)" in line
    )
    with open_store(db) as store:
        cats = [str(e.category) for e in iter_entries(store, "S")]
    assert cats == ["us-cat:1", "us-cat:8", "us-cat:8", "us-cat:5"]
    # --category-map translates it at import
    code, out = cli("hashset", "import", str(path), "-n", "T", "--category-map", "8=us-cat:5", "--db", db)
    assert code == 0 and "not define" not in summary_line(out, "T")
    with open_store(db) as store:
        assert [str(e.category) for e in iter_entries(store, "T")] == [
            "us-cat:1",
            "us-cat:5",
            "us-cat:5",
            "us-cat:5",
        ]
    # and an exported set writes the number back
    code, _ = cli("hashset", "export", "S", "-o", str(tmp_path / "out.json"), "--db", db)
    assert [m["Category"] for m in json.loads((tmp_path / "out.json").read_text())["value"]] == [1, 8, 8, 5]


def test_an_unknown_category_in_a_large_list_and_in_csv(tmp_path: Path) -> None:
    path = tmp_path / "big8.json"
    path.write_bytes(_big_vics(3000, category=8))
    cats = {str(e.category) for e in read_entries(path)}
    assert cats == {"us-cat:8"}
    rows = f"md5,category\n{'a' * 32},8\n{'b' * 32},us-cat:9\n{'c' * 32},uk:D\n"
    got = [str(e.category) for e in read_entries(io.BytesIO(rows.encode()), "csv")]
    assert got == ["us-cat:8", "us-cat:9", "uk:D"]


def test_category_map_rules() -> None:
    m = CategoryMap.parse(["8=us-cat:5", "uk:7=uk:C"])
    assert m(Category("us-cat", "8")) == Category("us-cat", "5")
    assert m(Category("uk", "8")) == Category("us-cat", "5")  # a bare code, of any scheme
    assert m(Category("uk", "7")) == Category("uk", "C")
    assert m(Category("us-cat", "7")) == Category("us-cat", "7")
    for bad in ("8", "8=us-cat:9", "=us-cat:1", "8=xx:1"):
        with pytest.raises(Exception, match="category|scheme"):
            CategoryMap.parse([bad])


def test_a_category_map_applies_to_the_compiled_path(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(_big_vics(3000, category=2))
    with open_store(db_url) as store:
        r = import_entries(store, "S", read_entries(path), category_map=CategoryMap.parse(["2=uk:B"]))
        assert r.added == 2700
        assert {str(e.category) for e in iter_entries(store, "S")} == {"uk:B"}


UK_CONTEXT = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/UK/$metadata#Media"


def test_the_uk_data_model_is_detected_from_the_context() -> None:
    assert uk_data_model(UK_CONTEXT)
    assert uk_data_model("http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/uk/$metadata#Cases")
    assert not uk_data_model(CONTEXT_V2 + "#Media")
    assert not uk_data_model(
        "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Media"
    )
    assert not uk_data_model("http://example.org/UKRAINE/$metadata#Media")
    # a US (or default) model served from a host or path that says /uk/ elsewhere is not the UK's
    assert not uk_data_model(
        "http://mirror.example.org/uk/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata"
    )
    assert not uk_data_model("http://uk/ProjectVic/DataModels/2.0.xml/Default/$metadata#Media")
    assert uk_data_model("http://mirror.example.org/uk/ProjectVic/DataModels/2.0.xml/UK/$metadata#Media")


def test_a_uk_vics_file_reads_uk_categories(tmp_path: Path) -> None:
    small = io.BytesIO(
        _vics(
            [
                {"MediaID": k, "Category": c, "MD5": f"{k:032x}"}
                for k, c in enumerate([1, "2", 3, 0, 7, "B"], 1)
            ],
            UK_CONTEXT,
        ).encode()
    )
    assert [str(e.category) for e in read_entries(small)] == [
        "uk:A",
        "uk:B",
        "uk:C",
        "us-cat:0",
        "uk:7",
        "uk:B",
    ]
    path = tmp_path / "uk.json"  # large enough for the compiled reader, which reads Project VIC numbers
    path.write_bytes(_big_vics(3000, context=UK_CONTEXT, category=3))
    assert {str(e.category) for e in read_entries(path)} == {"uk:C"}


# --- 3. uncategorised is never known ----------------------------------------------------------
def _case_export(tmp_path: Path) -> Path:
    """What a case's export-vics.json holds: matched media categorised, new media Category 0."""
    entries = [
        Entry({"md5": f"{k:032x}"}, Category("us-cat", "1" if k < 3 else "0"), external_id=str(k))
        for k in range(1, 8)
    ]
    path = tmp_path / "export-vics.json"
    write_entries(entries, path, "vics2", cases=CaseInfo(1, "case-1", {"SourceApplicationName": "opspoor"}))
    return path


def test_importing_a_case_export_leaves_uncategorised_media_out(db_url: str, tmp_path: Path) -> None:
    path = _case_export(tmp_path)
    code, out = cli("hashset", "import", str(path), "-n", "K", "--db", db_url)
    assert code == 0, out
    line = summary_line(out, "K")
    assert (
        "2 entries added" in line and "5 uncategorised (category 0) not imported: not known material" in line
    )
    (hit,) = match_json(db_url, "K", f"{5:032x}")
    assert hit["matches"] == []
    # an ignorable set keeps them (some tools write 0 for known-ignorable)
    code, out = cli("hashset", "import", str(path), "-n", "I", "--kind", "ignorable", "--db", db_url)
    assert "7 entries added" in summary_line(out, "I")


def test_a_category_0_entry_never_makes_a_match_known(db_url: str) -> None:
    """A set that holds a category-0 entry (stored before this rule, or edited): its matches are
    ``uncategorised``, and the file stays new."""
    with open_store(db_url) as store:
        import_entries(store, "K", [Entry({"md5": "cd" * 16}, Category("us-cat", "1"))])
        with store.write() as conn:
            conn.execute(sa.text("UPDATE entries SET category_code = '0'"))
        ((eid, ref),) = entry_details(store, range(1, 100)).items()
        assert ref.kind == "uncategorised"
        (ms,) = Matcher.from_store(store, ["K"]).match_batch([{"md5": "cd" * 16}])
    assert [m["kind"] for m in ms] == ["uncategorised"] and ms[0]["entry_id"] == eid
    assert verdict("image", ms, failed=False) == "new"


def test_an_undefined_category_code_never_makes_a_match_known(db_url: str) -> None:
    """``us-cat:8`` in a known set (one publisher's 8 is non-pertinent): the match is reported as
    ``unknown-category`` and the file stays new until the code is mapped; a mapped or defined code is
    known, and an ignorable set's entry stays ignorable whatever its code."""
    md5s = {"8": "a8" * 16, "1": "a1" * 16, "ign": "a0" * 16}
    with open_store(db_url) as store:
        import_entries(
            store,
            "K",
            [
                Entry({"md5": md5s["8"]}, Category("us-cat", "8")),
                Entry({"md5": md5s["1"]}, Category("us-cat", "1")),
            ],
        )
        import_entries(store, "I", [Entry({"md5": md5s["ign"]}, Category("us-cat", "8"))], kind="ignorable")
        got = Matcher.from_store(store, ["K", "I"]).match_batch([{"md5": v} for v in md5s.values()])
    kinds = [[m["kind"] for m in ms] for ms in got]
    assert kinds == [["unknown-category"], ["known"], ["ignorable"]]
    assert [verdict("image", ms, failed=False) for ms in got] == ["new", "known", "ignorable"]


def test_build_refuses_category_0_for_known(tmp_path: Path) -> None:
    from opspoor.demo.images import generate_image

    (tmp_path / "m").mkdir()
    generate_image(1, 64, 48).save(tmp_path / "m" / "a.jpg")
    db = f"sqlite:///{tmp_path / 's.sqlite'}"
    res = runner.invoke(
        app, ["hashset", "build", str(tmp_path / "m"), "-n", "x", "--category", "us-cat:0", "--db", db]
    )
    assert res.exit_code != 0 and "not yet categorised" in str(res.exception)
    code, out = cli(
        "hashset",
        "build",
        str(tmp_path / "m"),
        "-n",
        "x",
        "--category",
        "us-cat:0",
        "--kind",
        "ignorable",
        "--db",
        db,
    )
    assert code == 0 and "1 entries added" in out


# --- 4. ICSE rows with fewer fields ----------------------------------------------------------
def test_icse_rows_with_trailing_fields_missing() -> None:
    data = (
        "MD5;SHA1;PhotoDNA;Image ID;Is distributed;Victim identified;Offender identified;Series name;"
        "Number of submissions;File Available;Media Type;Baseline\n"
        f"{'a' * 32};;;1001;true\n"
        f"{'b' * 32};{'c' * 40};;1002;;;;Series X;4;true;Image;true\n"
        f"{'d' * 32}\n"
    ).encode()
    errors: list[Any] = []
    a, b, d = read_entries(io.BytesIO(data), "icse", on_error=errors.append)
    assert errors == []
    assert (a.signals, a.external_id, a.distributed, a.victim_identified, a.category) == (
        {"md5": "a" * 32},
        "1001",
        True,
        None,
        None,
    )
    assert b.category == Category("inhope", "baseline") and b.series == "Series X"
    assert d.signals == {"md5": "d" * 32} and d.external_id is None
    too_many = data.replace(b";1001;true\n", b";1001;true;;;;;;;;;x\n")  # 14 fields: still an error
    assert len(list(read_entries(io.BytesIO(too_many), "icse", on_error=errors.append))) == 2
    assert "found 14" in errors[0].detail


# --- 5. MediaID is an integer -----------------------------------------------------------------
def test_media_id_is_written_as_an_integer(tmp_path: Path) -> None:
    entries = [
        Entry({"md5": "1" * 32}, external_id="photos/a.jpg"),
        Entry({"md5": "2" * 32}, external_id="17"),
        Entry({"md5": "3" * 32}),
        Entry({"md5": "4" * 32}, external_id="007"),
    ]
    buf = io.BytesIO()
    write_entries(entries, buf, "vics2")
    media = json.loads(buf.getvalue())["value"]
    assert [m["MediaID"] for m in media] == [1, 17, 3, 4]
    assert all(type(m["MediaID"]) is int for m in media)
    assert [m.get("OpspoorExternalID") for m in media] == ["photos/a.jpg", None, None, "007"]
    back = list(read_entries(io.BytesIO(buf.getvalue())))
    assert [e.external_id for e in back] == ["photos/a.jpg", "17", "3", "007"]


def test_media_id_of_a_large_export_reads_back(tmp_path: Path) -> None:
    entries = [
        Entry({"md5": f"{k:032x}", "sha1": f"{k:040x}"}, external_id=f"dir/f{k}.jpg") for k in range(4000)
    ]
    path = tmp_path / "out.json"
    write_entries(entries, path, "vics2")
    assert all(type(m["MediaID"]) is int for m in json.loads(path.read_text())["value"])
    assert [e.external_id for e in read_entries(path)] == [e.external_id for e in entries]


def test_unknown_codes_are_written_back_without_guessing() -> None:
    """A code a scheme does not define is not taken for one it does (ICSE Baseline, VICS number)."""
    entries = [
        Entry({"md5": "1" * 32}, Category("inhope", "regional")),
        Entry({"md5": "2" * 32}, Category("inhope", "national")),
        Entry({"md5": "3" * 32}, Category("uk", "D")),
    ]
    buf = io.BytesIO()
    write_entries(entries, buf, "icse")
    rows = buf.getvalue().decode().splitlines()[1:]
    assert [r.rsplit(";", 1)[1] for r in rows[:2]] == ["", "false"]
    buf = io.BytesIO()
    write_entries(entries, buf, "vics2")
    media = json.loads(buf.getvalue())["value"]
    assert [(m["Category"], m["OpspoorCategory"]) for m in media] == [
        (0, "inhope:regional"),
        (0, "inhope:national"),
        (0, "uk:D"),
    ]
    assert [e.category for e in read_entries(io.BytesIO(buf.getvalue()))] == [e.category for e in entries]
