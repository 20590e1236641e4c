"""The scan under faults (issue 17): a worker that dies, hash sets that change between runs, odd
archive members, a killed main process, Ctrl-C, bad --case and source arguments. All files benign."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import psutil
import pytest
from PIL import Image

from opspoor.demo.images import generate_image
from opspoor.errors import CaseError, MissingSource
from opspoor.hashsets.model import Category, Entry
from opspoor.signals.engine import hash_bytes
from opspoor.store import import_entries, open_store
from opspoor.triage.scan import ScanConfig, ScanResult, run_scan
from opspoor.triage.worker import FAULT_ENV

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


def scan(world: dict[str, Path | str], case: Path, sources: list[Path] | None = None, **kw: object) -> ScanResult:
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
    return run_scan(cfg)


def records(case: Path) -> dict[str, dict]:
    return {r["path"]: r for r in map(json.loads, (case / "files.jsonl").read_text().splitlines())}


# --- a worker that dies ------------------------------------------------------------------


def test_a_worker_crash_blames_only_the_file_that_crashes_alone(
    world: dict[str, Path | str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 scans, each with one or two files that kill their worker (as a decoder segfault would), at
    varying places among healthy files: only those files are blamed, every other file is hashed."""
    for run in range(20):
        culprits = {f"f{run % 8}.jpg"} | ({f"f{(run * 3 + 1) % 8}.jpg"} if run % 3 == 0 else set())
        monkeypatch.setenv(FAULT_ENV, ",".join(f"crash:{c}" for c in culprits))
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
    monkeypatch.delenv(FAULT_ENV)
    result = scan(world, case)
    assert result.reconciled
    assert all(r["status"] == "new" and r["md5"] for r in records(case).values())
