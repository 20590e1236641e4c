"""Scans and hash-set builds on a Dask cluster (issue 25): a ``distributed.LocalCluster`` of two
single-threaded worker processes on loopback. The results must equal a local scan's, a resume must
work, and a worker killed mid-scan must cost nothing (its tasks run again on the other). All benign."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from opspoor.casefile.scan import scan_case
from opspoor.demo.images import generate_image
from opspoor.errors import ExecutorError
from opspoor.hashsets.model import Category, Entry
from opspoor.signals.engine import hash_bytes
from opspoor.store import import_entries, iter_entries, open_store
from opspoor.triage.case import CaseDB
from opspoor.triage.config import ScanConfig
from opspoor.triage.dask_pool import CLUSTER_CONFIG

distributed = pytest.importorskip("distributed")

SRC = str(Path(__file__).resolve().parents[1] / "src")


def jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Started with the settings docs/scale.md gives a cluster (``dask_pool.CLUSTER_CONFIG``)."""
    import dask

    # (the workers are spawned processes: they find this tree's sources through PYTHONPATH)
    os.environ["PYTHONPATH"] = os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])
    with (
        dask.config.set(CLUSTER_CONFIG),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
        ) as c,
    ):
        yield c


def _worker_settings(dask_worker: Any) -> dict[str, Any]:
    return {
        "profiling": "profile" in dask_worker.periodic_callbacks,
        "memory_check_ms": dask_worker.periodic_callbacks["memory_monitor"].callback_time,
    }


def test_the_cluster_settings_reach_the_workers(cluster: Any) -> None:
    """CLUSTER_CONFIG names settings Dask knows, and a cluster started with them has workers that do
    not profile their tasks and check their memory once a second, not ten times."""
    import dask

    defaults = dask.config.merge(*dask.config.defaults)  # (a misspelt key is set without complaint)
    for key in CLUSTER_CONFIG:
        dask.config.get(key, config=defaults)  # KeyError for a setting Dask does not have
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        seen = client.run(_worker_settings)
    assert len(seen) == 2
    assert all(s == {"profiling": False, "memory_check_ms": 1000} for s in seen.values())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """24 benign pictures in folders, 8 more in a zip (one nested zip inside), one text file, an
    empty file; a set holding the exact hashes of 3 of them and a mirrored one's original."""
    root = tmp_path_factory.mktemp("dask")
    ev = root / "ev"
    (ev / "a").mkdir(parents=True)
    (ev / "b").mkdir()
    known = []
    for k in range(24):
        data = jpeg(generate_image(1000 + k, 960, 720, style="shapes"))
        (ev / ("a" if k % 2 else "b") / f"p{k:02d}.jpg").write_bytes(data)
        if k % 8 == 0:
            s = hash_bytes(data)
            known.append(Entry({"md5": s.md5, "pdq": s.pdq}, Category("us-cat", "1"), external_id=f"k{k}"))
    original = generate_image(2000, 640, 480, style="shapes")
    s = hash_bytes(jpeg(original))
    known.append(Entry({"md5": s.md5, "pdq": s.pdq}, Category("us-cat", "2"), external_id="orig"))
    (ev / "a" / "mirrored.jpg").write_bytes(jpeg(original.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("deep.jpg", jpeg(generate_image(3000, 640, 480, style="shapes")))
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as zf:
        for k in range(8):
            zf.writestr(f"m/member{k}.jpg", jpeg(generate_image(4000 + k, 800, 600, style="shapes")))
        zf.writestr("m/inner.zip", inner.getvalue())
    (ev / "bundle.zip").write_bytes(outer.getvalue())
    (ev / "notes.txt").write_text("benign text\n")
    (ev / "empty.bin").write_bytes(b"")
    db = f"sqlite:///{root / 'store.sqlite'}"
    store = open_store(db)
    import_entries(store, "known", known, kind="known")
    store.close()
    return {"root": root, "ev": ev, "db": db}


def config(world: dict[str, Any], case: Path, **kw: Any) -> ScanConfig:
    return ScanConfig(
        sources=[world["ev"]], hashsets=["known"], case_dir=case, db_url=world["db"], workers=2, **kw
    )


def files_jsonl(case: Path) -> list[dict[str, Any]]:
    """The case's records in file order; nothing in a record is a timestamp of the scan."""
    return [json.loads(line) for line in (case / "files.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def local_records(world: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    case = tmp_path_factory.mktemp("local") / "case"
    assert scan_case(config(world, case)).reconciled
    return files_jsonl(case)


def test_a_dask_scan_equals_a_local_scan(
    world: dict[str, Any], cluster: Any, local_records: list[dict[str, Any]], tmp_path: Path
) -> None:
    result = scan_case(config(world, tmp_path / "case", executor="dask", scheduler=cluster.scheduler_address))
    assert result.reconciled
    got = files_jsonl(tmp_path / "case")
    assert got == local_records
    statuses = {r["status"] for r in got}
    assert {"known", "new", "other"} <= statuses  # (the comparison covers every kind of record)
    assert any(r["path"].endswith("deep.jpg") and r["pdq"] for r in got)  # a nested member, hashed
    mirrored = next(r for r in got if r["path"].endswith("mirrored.jpg"))
    assert mirrored["status"] == "known"  # found by a robust query hash computed on a worker
    case = CaseDB(tmp_path / "case")
    try:
        thumbs = {f.record["path"] for f in case.iter_files(with_thumbs=True) if f.thumb}
    finally:
        case.close()
    images = {r["path"] for r in got if r.get("pdq") and r["path"].endswith(".jpg")}
    assert images and thumbs >= images  # the workers' thumbnails reached the case


class StopAfter:
    """A progress display that stops the scan (as Ctrl-C would) once ``n`` files are committed."""

    def __init__(self, n: int) -> None:
        self.n, self.files = n, 0

    def start(self, total: int | None) -> None:
        pass

    def advance(self, files: int, nbytes: int) -> None:
        self.files += files
        if self.files >= self.n:
            raise KeyboardInterrupt

    def finish(self) -> None:
        pass


def test_a_stopped_dask_scan_resumes_to_the_same_records(
    world: dict[str, Any],
    cluster: Any,
    local_records: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("opspoor.triage.scan.BATCH", 4)  # commit every few files
    case = tmp_path / "case"
    cfg = config(world, case, executor="dask", scheduler=cluster.scheduler_address)
    with pytest.raises(KeyboardInterrupt):
        scan_case(cfg, StopAfter(8))
    logged: list[str] = []
    result = scan_case(cfg, log=logged.append)
    assert result.reconciled
    assert any(m.startswith("resuming: ") and int(m.split()[1]) >= 8 for m in logged), logged
    got = files_jsonl(case)
    assert len({r["path"] for r in got}) == len(got)
    assert got == local_records


class KillAWorker:
    """Once the first files are committed, SIGKILLs a worker process that is busy with a file."""

    def __init__(self, scheduler: str) -> None:
        self.client = distributed.Client(scheduler, set_as_default=False)
        self.killed: list[str] = []  # the keys the killed worker was running

    def start(self, total: int | None) -> None:
        pass

    def advance(self, files: int, nbytes: int) -> None:
        if self.killed:
            return
        busy = {w: keys for w, keys in self.client.processing().items() if keys}
        if not busy:
            return
        worker, keys = sorted(busy.items())[0]
        pid = self.client.run(os.getpid, workers=[worker])[worker]
        os.kill(pid, signal.SIGKILL)
        self.killed = list(keys)

    def finish(self) -> None:
        pass


def test_a_worker_killed_mid_scan_loses_and_duplicates_nothing(
    world: dict[str, Any],
    cluster: Any,
    local_records: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("opspoor.triage.scan.BATCH", 2)  # the first commit comes with most files in flight
    killer = KillAWorker(cluster.scheduler_address)
    try:
        case = tmp_path / "case"
        result = scan_case(config(world, case, executor="dask", scheduler=cluster.scheduler_address), killer)
    finally:
        killer.client.close()
    assert killer.killed, "a worker was killed while it was running a file"
    assert result.reconciled
    got = files_jsonl(case)
    assert len({r["path"] for r in got}) == len(got) == len(local_records)
    assert not [r for r in got if r.get("error_reason") == "crash"]
    assert got == local_records
    # (its nanny starts a new worker process; the tests after need no more than one worker)


def test_the_cli_scans_on_dask_with_a_json_log(
    world: dict[str, Any], cluster: Any, local_records: list[dict[str, Any]], tmp_path: Path
) -> None:
    case = tmp_path / "case"
    proc = subprocess.run(
        [sys.executable, "-m", "opspoor", "scan", str(world["ev"]), "--hashset", "known", "--case", str(case),
         "--db", world["db"], "--executor", "dask", "--scheduler", cluster.scheduler_address, "--json-log"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": SRC},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    kinds = [e["event"] for e in events]
    assert "hashed" in kinds and kinds[-1] == "done"
    hashed = next(e for e in events if e["event"] == "hashed")
    assert hashed["files"] == len(local_records)
    assert files_jsonl(case) == local_records


def test_an_unreachable_scheduler_is_one_line(world: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ExecutorError, match="cannot reach the dask scheduler"):
        scan_case(config(world, tmp_path / "c", executor="dask", scheduler="tcp://127.0.0.1:9"))
    assert not (tmp_path / "c").exists()  # a scan that could not start leaves no case folder
    proc = subprocess.run(
        [sys.executable, "-m", "opspoor", "scan", str(world["ev"]), "--hashset", "known", "--case",
         str(tmp_path / "c2"), "--db", world["db"], "--executor", "dask"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": SRC},
    )  # fmt: skip
    assert proc.returncode != 0
    assert "--scheduler" in proc.stderr and "Traceback" not in proc.stderr


def test_hashset_build_on_dask_equals_a_local_build(
    world: dict[str, Any], cluster: Any, tmp_path: Path
) -> None:
    db = str(tmp_path / "s.sqlite")
    for name, extra in (("here", ["--workers", "2"]), ("there", ["--executor", "dask", "--scheduler",
                                                                  cluster.scheduler_address])):  # fmt: skip
        proc = subprocess.run(
            [sys.executable, "-m", "opspoor", "hashset", "build", str(world["ev"] / "a"), "-n", name,
             "--augment", "--db", db, *extra],
            capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": SRC},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    store = open_store(db)
    try:

        def entries(name: str) -> list[tuple[Any, ...]]:
            return sorted(
                (
                    e.external_id,
                    sorted(e.signals.items()),
                    sorted((k, sorted(v)) for k, v in e.derived.items()),
                )
                for e in iter_entries(store, name)
            )

        here, there = entries("here"), entries("there")
    finally:
        store.close()
    assert len(here) == 13  # 12 pictures and the mirrored one
    assert there == here


def one_worker() -> Any:
    """A cluster of one worker process that imports the test-only fault hooks (``tests/``)."""
    return distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
        env={"PYTHONPATH": os.pathsep.join([SRC, str(Path(__file__).parent)])},
    )


def test_a_file_that_kills_every_worker_is_recorded_as_a_crash(
    world: dict[str, Any],
    local_records: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A file that kills each worker it is handed to (as a decoder segfault would) is given up after
    Dask's allowed failures and gets a ``crash`` record; nothing is lost. Unlike the local pool,
    Dask counts a worker's death against every file in flight on it, so a file queued next to the
    culprit on its only worker may be given up too (docs/scale.md): a crash record, never a wrong
    one; every other file is hashed as locally."""
    import dask

    import worker_faults
    from opspoor.triage import dask_pool

    # the test-only per-file function travels to the workers by reference: they import it from tests/
    monkeypatch.setattr(dask_pool, "run_task", worker_faults.faulty("crash:p03.jpg"))

    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),
        one_worker() as one,
    ):
        logged: list[str] = []
        result = scan_case(
            config(world, tmp_path / "case", executor="dask", scheduler=one.scheduler_address),
            log=logged.append,
        )
    assert result.reconciled
    got = {r["path"]: r for r in files_jsonl(tmp_path / "case")}
    crashed = [p for p, r in got.items() if r.get("error_reason") == "crash"]
    assert any(p.endswith("/p03.jpg") for p in crashed)
    assert len(crashed) <= 4  # at most the culprit and what was queued with it (4 per worker thread)
    assert all(got[p]["status"] == "error" and not got[p]["md5"] for p in crashed)

    def ungrouped(r: dict[str, Any]) -> dict[str, Any]:  # (groups are numbered over the new media)
        return {k: v for k, v in r.items() if k != "group"}

    assert {p: ungrouped(r) for p, r in got.items() if p not in crashed} == {
        r["path"]: ungrouped(r) for r in local_records if r["path"] not in crashed
    }
    assert any("killed every dask worker" in m for m in logged), logged


def test_a_cluster_left_without_workers_stops_the_scan_with_one_line(
    world: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every worker gone for good (stopped, none restarted) while files are in flight: the scan
    stops with an ``ExecutorError`` naming the wait, instead of waiting for ever."""
    import threading

    import worker_faults
    from opspoor.triage import dask_pool

    monkeypatch.setattr(dask_pool, "QUIET_SECONDS", 1.0)
    monkeypatch.setattr(dask_pool, "NO_WORKER_SECONDS", 3.0)
    monkeypatch.setattr(dask_pool, "run_task", worker_faults.faulty("hang:p03.jpg"))
    with one_worker() as one:

        def stop_workers() -> None:  # once the hung file holds the only worker
            with distributed.Client(one.scheduler_address, set_as_default=False) as c:
                while not any(c.processing().values()):
                    threading.Event().wait(0.2)
            one.scale(0)

        stopper = threading.Thread(target=stop_workers, daemon=True)
        stopper.start()
        with pytest.raises(ExecutorError, match="no worker for 3 s"):
            scan_case(config(world, tmp_path / "case", executor="dask", scheduler=one.scheduler_address))
        stopper.join(60)
        assert not stopper.is_alive()


def test_files_travel_in_batches_and_members_alone_without_a_copy_in_the_client(
    cluster: Any, tmp_path: Path
) -> None:
    """Files the workers read go ``BATCH_FILES`` to a Dask task (a part batch is sent when the scan
    waits); a member goes alone, and the client keeps its size, not its bytes (the scheduler has
    them). Every file's result comes back once, as ``run_task`` gives it."""
    import hashlib

    from opspoor.signals.engine import HashOptions
    from opspoor.triage.dask_pool import BATCH_FILES, DaskPool
    from opspoor.triage.worker import Task

    files = []
    for k in range(BATCH_FILES + 1):
        p = tmp_path / f"f{k}.jpg"
        p.write_bytes(jpeg(generate_image(500 + k, 320, 240, style="shapes")))
        files.append(p)
    member = jpeg(generate_image(600, 320, 240, style="shapes"))
    pool = DaskPool(cluster.scheduler_address, HashOptions())
    try:
        for k, p in enumerate(files):
            pool.submit(Task(k, str(p), str(p), None, p.stat().st_size))
        pool.submit(Task(len(files), "bundle.zip!/m.jpg", None, member, len(member)))
        assert len(pool) == len(files) + 1
        assert sorted(len(tasks) for tasks, _ in pool.inflight.values()) == [1, BATCH_FILES]  # one pending
        assert pool.held == len(member)
        assert all(t.data is None for tasks, _ in pool.inflight.values() for t in tasks)
        results = []
        while len(pool):
            results += pool.collect(block=True)
        assert pool.held == 0
        md5 = {seq: sig["md5"] for seq, _, sig, _ in results}
        want = [hashlib.md5(p.read_bytes()).hexdigest() for p in files] + [hashlib.md5(member).hexdigest()]
        assert md5 == dict(enumerate(want))
    finally:
        pool.shutdown()
