"""The scan under faults (issue 17): a worker that dies, hash sets that change between runs, odd
archive members, a killed main process, Ctrl-C, bad --case and source arguments. All files benign."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import psutil
import pytest
from PIL import Image

from opspoor.casefile.scan import scan_case
from opspoor.demo.images import generate_image
from opspoor.errors import CaseError, MissingSource
from opspoor.hashsets.model import Category, Entry
from opspoor.signals.engine import hash_bytes
from opspoor.sources import Limits
from opspoor.store import import_entries, open_store
from opspoor.triage.config import ScanConfig, ScanResult
from process_memory import PeakMemory
from worker_faults import command, inject

SRC = str(Path(__file__).resolve().parents[1] / "src")


def jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    """Eight small benign pictures and a store with a set p1 that holds one unrelated entry."""
    root = tmp_path_factory.mktemp("rel")
    ev = root / "ev"
    ev.mkdir()
    for k in range(8):
        (ev / f"f{k}.jpg").write_bytes(jpeg(generate_image(300 + k, 160, 120, style="shapes")))
    db = f"sqlite:///{root / 'store.sqlite'}"
    store = open_store(db)
    import_entries(store, "p1", [Entry({"md5": "0" * 32}, Category("us-cat", "1"), external_id="x")])
    store.close()
    return {"root": root, "ev": ev, "db": db}


def scan(
    world: dict[str, Path | str], case: Path, sources: list[Path] | None = None, **kw: object
) -> ScanResult:
    cfg = ScanConfig(
        sources=sources or [world["ev"]],  # type: ignore[list-item]
        hashsets=["p1"],
        case_dir=case,
        db_url=str(world["db"]),
        workers=2,
        thumbnails=False,
        local=False,
        **kw,  # type: ignore[arg-type]
    )
    return scan_case(cfg)


def records(case: Path) -> dict[str, dict]:
    return {r["path"]: r for r in map(json.loads, (case / "files.jsonl").read_text().splitlines())}


# --- a worker that dies ------------------------------------------------------------------


@pytest.mark.slow
def test_a_worker_crash_blames_only_the_file_that_crashes_alone(
    world: dict[str, Path | str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 scans, each with one or two files that kill their worker (as a decoder segfault would), at
    varying places among healthy files: only those files are blamed, every other file is hashed."""
    for run in range(20):
        culprits = {f"f{run % 8}.jpg"} | ({f"f{(run * 3 + 1) % 8}.jpg"} if run % 3 == 0 else set())
        inject(monkeypatch, ",".join(f"crash:{c}" for c in culprits))
        case = tmp_path / f"c{run}"
        result = scan(world, case)
        assert result.reconciled
        recs = records(case)
        assert len(recs) == 8
        for path, rec in recs.items():
            if path.rsplit("/", 1)[1] in culprits:
                assert rec["status"] == "error" and rec["error_reason"] == "crash", (run, rec)
            else:
                assert rec["status"] == "new" and rec["md5"] and rec["pdq"], (run, culprits, rec)
    # a resume tries the crashed files again: the machine, not the file, may have been at fault
    monkeypatch.undo()
    result = scan(world, case)
    assert result.reconciled
    assert all(r["status"] == "new" and r["md5"] for r in records(case).values())


# --- hash sets that changed between two runs of one case -------------------------------------


def test_a_resume_after_a_set_changed_matches_every_file_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ev = tmp_path / "ev"
    ev.mkdir()
    for k in range(4):
        (ev / f"f{k}.jpg").write_bytes(jpeg(generate_image(400 + k, 320, 240, style="shapes")))
    original = generate_image(500, 640, 480, style="shapes")
    (ev / "mirror.jpg").write_bytes(jpeg(original.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    db = f"sqlite:///{tmp_path / 'store.sqlite'}"
    store = open_store(db)
    import_entries(store, "p1", [Entry({"md5": "0" * 32}, Category("us-cat", "1"), external_id="x")])
    world = {"ev": ev, "db": db}
    case = tmp_path / "case"
    logs: list[str] = []
    cfg = ScanConfig(sources=[ev], hashsets=["p1"], case_dir=case, db_url=db, workers=2, local=False)
    assert scan_case(cfg, log=logs.append).reconciled
    assert {r["status"] for r in records(case).values()} == {"new"}
    # p1 gains f0 (by MD5) and the original of mirror.jpg (by PDQ: found by the robust query hashes)
    added = [
        Entry(
            {"md5": hash_bytes((ev / "f0.jpg").read_bytes()).md5}, Category("us-cat", "1"), external_id="a"
        ),
        Entry({"pdq": hash_bytes(jpeg(original)).pdq}, Category("us-cat", "2"), external_id="b"),
    ]
    import_entries(store, "p1", added)
    store.close()
    # nothing may be read again: a worker handed any of these files dies
    inject(monkeypatch, ",".join(f"crash:{p.name}" for p in ev.iterdir()))
    logs.clear()
    assert scan_case(cfg, log=logs.append).reconciled
    recs = records(case)
    assert recs["ev/f0.jpg"]["status"] == "known" and recs["ev/mirror.jpg"]["status"] == "known"
    assert recs["ev/mirror.jpg"]["matches"][0]["signal"] == "pdq"
    assert {recs[f"ev/f{k}.jpg"]["status"] for k in (1, 2, 3)} == {"new"}
    assert any(
        "hash set p1 changed since the last run: 5 files matched again (2 verdicts changed)" in m
        for m in logs
    ), logs
    summary = json.loads((case / "summary.json").read_text())
    assert summary["by_status"]["known"] == 2
    # unchanged sets: no second matching
    logs.clear()
    assert scan_case(cfg, log=logs.append).reconciled
    assert not any("changed" in m for m in logs), logs
    assert records(case) == recs
    del world


# --- odd archive members in a scan -------------------------------------------------------------


def test_a_zip_member_with_an_empty_name_is_an_error_record_not_an_aborted_scan(
    world: dict[str, Path | str], tmp_path: Path
) -> None:
    from test_sources import zip_with_raw_names

    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "odd.zip").write_bytes(zip_with_raw_names([b"ok.txt", b"", b"a\x00b", b"/abs", b"d", b"d"]))
    result = scan(world, tmp_path / "case", sources=[ev])
    assert result.reconciled and result.summary["files_in"] == 7
    recs = records(tmp_path / "case")
    for name in ("(unnamed)", "a%00b", "%2Fabs"):
        rec = recs[f"ev/odd.zip!/{name}"]
        assert rec["status"] == "error" and rec["error_reason"] == "UnsafeMemberName" and rec["md5"], rec
    assert recs["ev/odd.zip!/d"]["md5"] != recs["ev/odd.zip!/d#2"]["md5"]
    assert recs["ev/odd.zip!/ok.txt"]["status"] == "other"


# --- --case and sources that cannot be used ---------------------------------------------------


def test_case_guardrails(world: dict[str, Path | str], tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    with pytest.raises(CaseError, match="is not a folder"):
        scan(world, a_file)
    assert a_file.read_text() == "mine"
    other = tmp_path / "holiday"
    other.mkdir(mode=0o755)
    (other / "photo.txt").write_text("mine")
    os.chmod(other, 0o755)
    with pytest.raises(CaseError, match="not an opspoor case"):
        scan(world, other)
    assert sorted(p.name for p in other.iterdir()) == ["photo.txt"] and other.stat().st_mode & 0o777 == 0o755
    # a case.sqlite of another program is never changed
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    store = open_store(f"sqlite:///{foreign / 'case.sqlite'}")
    store.close()
    before = (foreign / "case.sqlite").read_bytes()
    with pytest.raises(CaseError, match="not an opspoor case database"):
        scan(world, foreign)
    assert (foreign / "case.sqlite").read_bytes() == before
    # inside a source: its own files would be scanned
    inside = Path(world["ev"]) / "case"
    with pytest.raises(CaseError, match="inside the source"):
        scan(world, inside)
    assert not inside.exists()
    # a scan that cannot start leaves nothing behind
    with pytest.raises(MissingSource):
        scan(world, tmp_path / "c1", sources=[tmp_path / "no-such-dir"])
    assert not (tmp_path / "c1").exists()
    from opspoor.errors import NotFound

    cfg = ScanConfig(
        sources=[world["ev"]], hashsets=["nope"], case_dir=tmp_path / "c2", db_url=str(world["db"])
    )  # type: ignore[list-item]
    with pytest.raises(NotFound):
        scan_case(cfg)
    assert not (tmp_path / "c2").exists()
    # an empty folder made for the case is fine
    (tmp_path / "c3").mkdir()
    assert scan(world, tmp_path / "c3").reconciled


def test_a_foreign_or_broken_case_sqlite_is_read_only_and_one_line(
    world: dict[str, Path | str], tmp_path: Path
) -> None:
    """A case.sqlite of another program (a rollback-journal database, which ``journal_mode=WAL``
    would rewrite) or one that is not a database at all: a CaseError, and neither the file's bytes
    nor its folder's mode change."""
    import sqlite3

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    con = sqlite3.connect(foreign / "case.sqlite")
    con.executescript("CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES ('mine');")
    con.close()
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "case.sqlite").write_bytes(b"not a database, just some notes\n" * 100)
    for folder, words in ((foreign, "other tables"), (garbage, "not an opspoor case database")):
        os.chmod(folder, 0o755)
        before = hashlib.sha256((folder / "case.sqlite").read_bytes()).hexdigest()
        with pytest.raises(CaseError, match=words):
            scan(world, folder)
        assert hashlib.sha256((folder / "case.sqlite").read_bytes()).hexdigest() == before
        assert folder.stat().st_mode & 0o777 == 0o755
        assert sorted(p.name for p in folder.iterdir()) == ["case.sqlite"]
    proc = cli(*scan_args(world, garbage))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def cli(*args: str, faults: str = "", **kw: object) -> subprocess.Popen[str]:
    """``opspoor ARGS`` in a subprocess; ``faults``: workers die or hang on those files (worker_faults)."""
    env = {**os.environ, "PYTHONPATH": SRC, **kw.pop("env", {})}  # type: ignore[dict-item]
    argv = command(faults, *args) if faults else [sys.executable, "-m", "opspoor", *args]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def scan_args(world: dict[str, Path | str], case: Path, *sources: Path) -> list[str]:
    srcs = [str(s) for s in sources] or [str(world["ev"])]
    return ["scan", *srcs, "--hashset", "p1", "--case", str(case), "--db", str(world["db"]), "--workers", "2"]


@pytest.mark.parametrize("what", ["missing source", "case is a file", "case inside the source"])
def test_cli_refuses_in_one_line(world: dict[str, Path | str], tmp_path: Path, what: str) -> None:
    case, sources = tmp_path / "case", [Path(world["ev"])]
    if what == "missing source":
        sources.append(tmp_path / "typo")
    elif what == "case is a file":
        case.write_text("x")
    else:
        case = Path(world["ev"]) / "case"
    proc = cli(*scan_args(world, case, *sources))
    out, errs = proc.communicate(timeout=120)
    assert proc.returncode == 2, (out, errs)
    assert len(errs.strip().splitlines()) == 1 and errs.startswith("error:") and "Traceback" not in errs, errs
    if what != "case is a file":
        assert not case.exists()


# --- Ctrl-C and a killed main process ------------------------------------------------------------


def _wait_for(cond: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
def test_ctrl_c_at_any_moment_says_how_to_resume(world: dict[str, Path | str], tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while the command loads,
    once the case exists and the workers hash, while one is stuck on a file, and twice in a row:
    one line, exit 130, and the same command finishes the case."""
    reference = tmp_path / "ref"
    ref = cli(*scan_args(world, reference))
    assert ref.wait(timeout=120) == 0
    for moment in ("loading", "hashing", "stuck", "twice"):
        case = tmp_path / moment
        faults = "hang:f5.jpg" if moment in ("stuck", "twice") else ""
        # (SIGINT as at a terminal: a test run in the background of a shell would pass it on ignored)
        proc = cli(*scan_args(world, case), faults=faults, start_new_session=True, preexec_fn=sigint_default)
        if moment == "loading":
            time.sleep(0.3)
        else:
            _wait_for(lambda case=case: (case / "case.sqlite").exists())
            time.sleep(3 if moment == "stuck" else 0.2)  # f5.jpg never finishes
        os.killpg(proc.pid, signal.SIGINT)
        if moment == "twice":
            time.sleep(0.05)
            os.killpg(proc.pid, signal.SIGINT)
        out, errs = proc.communicate(timeout=60)
        if proc.returncode == 0 and moment == "hashing":  # finished first: nothing to check then
            continue
        assert proc.returncode == 130, (moment, proc.returncode, errs)
        assert "Traceback" not in errs and "Error" not in errs, (moment, errs)
        assert errs.strip().splitlines()[-1] == "interrupted; run the same command to resume", (moment, errs)
        again = cli(*scan_args(world, case))
        out, errs = again.communicate(timeout=120)
        assert again.returncode == 0, errs
        assert records(case) == records(reference)


def test_workers_die_with_the_main_process(world: dict[str, Path | str], tmp_path: Path) -> None:
    proc = cli(*scan_args(world, tmp_path / "case"), faults="hang:f1.jpg,hang:f2.jpg")
    main = psutil.Process(proc.pid)
    _wait_for(lambda: len(main.children()) >= 2 and (tmp_path / "case" / "case.sqlite").exists())
    time.sleep(1)  # the two workers are stuck on their files
    workers = main.children(recursive=True)
    assert workers
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # (they hang on their files for ever otherwise; a loaded machine may take a while to reap them)
    gone, alive = psutil.wait_procs(workers, timeout=60)
    assert not alive, f"workers still alive 60 s after the main process was killed: {alive}"


# --- large archive members: hashed whatever their size, memory bounded ------------------------------


def compressible(n_bytes: int, seed: int) -> bytes:
    """Benign filler that deflates about 25:1 (no bomb by ratio): each KiB is 32 random bytes and zeros."""
    rows = np.zeros((n_bytes // 1024, 1024), dtype=np.uint8)
    rows[:, :32] = np.random.default_rng(seed).integers(0, 256, (len(rows), 32), dtype=np.uint8)
    return rows.tobytes()


def test_members_above_the_room_are_hashed_as_they_stream_and_memory_stays_bounded(tmp_path: Path) -> None:
    """Two 120 MiB members in a zip, with an 8 MiB in-memory room: both get MD5, SHA-1 and SHA-256
    (one is then known by its MD5), neither is held, so neither the main process nor a worker grows
    by anything like a member (the same scan of 1 MiB members is the anchor)."""
    size = 120 << 20
    first = compressible(size, 1)
    md5 = hashlib.md5(first).hexdigest()
    sha256_second = hashlib.sha256(compressible(size, 2)).hexdigest()
    db = f"sqlite:///{tmp_path / 'store.sqlite'}"
    store = open_store(db)
    import_entries(store, "p1", [Entry({"md5": md5}, Category("us-cat", "1"), external_id="big")])
    store.close()
    peaks = {}
    for name, n in (("anchor", 1 << 20), ("large", size)):
        ev = tmp_path / name
        ev.mkdir()
        with zipfile.ZipFile(ev / "big.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            zf.writestr("a.bin", first[:n])
            zf.writestr("b.bin", compressible(n, 2))
        (ev / "p.jpg").write_bytes(jpeg(generate_image(1, 160, 120, style="shapes")))
        case = tmp_path / f"case-{name}"
        cfg = ScanConfig(
            sources=[ev], hashsets=["p1"], case_dir=case, db_url=db, workers=2, local=False,
            limits=Limits(max_in_memory=8 << 20),
        )  # fmt: skip
        with PeakMemory() as peak:
            assert scan_case(cfg).reconciled
        peaks[name] = peak
    recs = records(tmp_path / "case-large")
    a, b = recs["large/big.zip!/a.bin"], recs["large/big.zip!/b.bin"]
    assert a["status"] == "known" and a["md5"] == md5 and a["size"] == size
    assert b["status"] == "error" and b["error_reason"] == "MemberTooLarge" and "not decoded" in b["error"]
    assert b["sha256"] == sha256_second and b["md5"] and b["sha1"]
    assert recs["large/p.jpg"]["status"] == "new"
    grew_main = (peaks["large"].main - peaks["anchor"].main) >> 20
    grew_worker = (peaks["large"].worker - peaks["anchor"].worker) >> 20
    assert grew_main < 60 and grew_worker < 60, (grew_main, grew_worker)
