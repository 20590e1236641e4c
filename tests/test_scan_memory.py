"""A scan worker's memory is bounded by its budget whatever the size of an archive's members (issue 17:
a 42 MB zip holding two 700 MB members took a worker to 3.2 GB).

A zip on disk holds a raw (uncompressed) video of about 210 MiB, a BMP of about 190 MiB, a small PNG
whose decode would take about 170 MiB, and a small picture in the hash set: all benign, generated,
and highly compressible. Its members fit the archive room (1 GiB, the default) but not the worker
budget of this test (128 MiB; 512 MiB by default, bench/scan_memory.py measures 700 MiB members with
it): the video is hashed and decoded from the zip as a stream, the BMP and the PNG are hashed and
refused with an error record naming them, the picture matches. The resident memory of the main
process and of each worker is sampled and compared with the same scan of a zip of small members (the
anchor). Before the fix, the main process read each member into memory and sent it to a worker:
+200 MiB in the main process and about twice that in a worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from large_media import make_zip
from opspoor.casefile.scan import scan_case
from opspoor.hashsets.model import Category, Entry
from opspoor.signals.engine import ROBUST_PRESETS, HashOptions
from opspoor.store import import_entries, open_store
from opspoor.triage.config import ScanConfig
from process_memory import PeakMemory

MIB = 1 << 20
BUDGET = 128 * MIB


def scan(folder: Path, case: Path, db: str) -> tuple[PeakMemory, dict[str, dict]]:
    # the default archive room (1 GiB: every member fits it) and a worker budget of 128 MiB
    options = HashOptions(robust=ROBUST_PRESETS["fast"], max_in_memory=BUDGET)
    cfg = ScanConfig(
        sources=[folder],
        hashsets=["known"],
        case_dir=case,
        db_url=db,
        workers=2,
        local=False,
        options=options,
    )
    with PeakMemory(interval=0.02) as peaks:
        result = scan_case(cfg)
    assert result.reconciled
    recs = {r["path"]: r for r in map(json.loads, (case / "files.jsonl").read_text().splitlines())}
    return peaks, recs


@pytest.mark.slow
def test_a_zip_of_large_members_keeps_every_process_within_its_memory_budget(tmp_path: Path) -> None:
    anchor_md5 = make_zip(tmp_path / "small", frames=4, bmp_side=64, png_side=64)
    big_md5 = make_zip(tmp_path / "large", frames=80, bmp_side=8_200, png_side=6_000)
    db = f"sqlite:///{tmp_path / 'store.sqlite'}"
    with open_store(db) as store:
        import_entries(store, "known", [Entry({"md5": big_md5["p.jpg"]}, Category("us-cat", "1"))])
    anchor, small = scan(tmp_path / "small", tmp_path / "case-small", db)
    big, recs = scan(tmp_path / "large", tmp_path / "case-large", db)

    film = recs["large/big.zip!/film.avi"]
    assert film["size"] > 200 * MIB and film["md5"] == big_md5["film.avi"]
    assert not film["error"] and film["vpdq_frames"] and film["status"] == "new"  # decoded as a stream
    bmp = recs["large/big.zip!/scan.bmp"]
    assert bmp["size"] > 190 * MIB and bmp["md5"] == big_md5["scan.bmp"]
    assert bmp["error_reason"] == "MediaTooLarge" and "in-memory limit" in bmp["error"]
    png = recs["large/big.zip!/huge.png"]
    assert png["md5"] and png["error_reason"] == "MediaTooLarge" and "decoding would take" in png["error"]
    assert recs["large/big.zip!/p.jpg"]["status"] == "known"
    assert small["small/big.zip!/film.avi"]["md5"] == anchor_md5["film.avi"]

    d_main, d_worker = (big.main - anchor.main) / MIB, (big.worker - anchor.worker) / MIB
    print(f"over the anchor: main +{d_main:.0f} MiB, worker +{d_worker:.0f} MiB")
    assert d_main < 96, f"the main process grew {d_main:.0f} MiB"
    assert d_worker < BUDGET / MIB + 64, f"a worker grew {d_worker:.0f} MiB"
