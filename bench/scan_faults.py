"""The scan under faults: the figures of docs/reliability.md ("Scan"), reproducible on any machine.

Four loops over benign generated files (40 pictures, a zip of 8 more, and the malformed corpus of
``opspoor.demo.malformed``: corrupt media, bombs, encrypted and odd members, FIFOs, broken links):

  malformed: one scan; every expected error record present with its reason, the scan reconciled.
  kill:      ``opspoor scan`` killed with SIGKILL at a random moment, then run again: the case must
             equal a reference scan's, and the killed scan's workers must be gone within 5 s.
  interrupt: SIGINT to the process group (Ctrl-C) at a random moment: exit 130 and one line, then the
             same command finishes a case equal to the reference.
  crash:     scans in which one or two files kill their worker (SIGKILL through the test-only hook
             ``tests/worker_faults.py``, as a decoder segfault or the OOM killer would): only those
             files may be blamed; a run again retries them.

Usage: ``python bench/scan_faults.py [--kills 10] [--interrupts 5] [--interrupt-delays 0.2,6]
[--crashes 30] [--no-malformed] [--seed 1]``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))  # worker_faults: the test-only hook that makes a worker die

import psutil  # noqa: E402

from opspoor.casefile.scan import scan_case  # noqa: E402
from opspoor.demo.images import generate_image  # noqa: E402
from opspoor.demo.malformed import make_malformed_corpus  # noqa: E402
from opspoor.hashsets.model import Category, Entry  # noqa: E402
from opspoor.signals.engine import hash_bytes  # noqa: E402
from opspoor.store import import_entries, open_store  # noqa: E402
from opspoor.triage.config import ScanConfig  # noqa: E402
from setup_info import setup_line  # noqa: E402
from worker_faults import installed  # noqa: E402


def jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    generate_image(seed, 480, 360, style="shapes").save(buf, "JPEG", quality=88)
    return buf.getvalue()


def make_world(work: Path) -> tuple[Path, dict[str, str], str]:
    ev = work / "evidence"
    (ev / "pics").mkdir(parents=True)
    known = []
    for k in range(40):
        data = jpeg(k)
        (ev / "pics" / f"p{k:02d}.jpg").write_bytes(data)
        if k % 5 == 0:
            known.append(Entry({"md5": hash_bytes(data).md5}, Category("us-cat", "1"), external_id=f"k{k}"))
    with zipfile.ZipFile(ev / "bundle.zip", "w") as zf:
        for k in range(8):
            zf.writestr(f"in/z{k}.jpg", jpeg(100 + k))
    expected = make_malformed_corpus(ev / "malformed")
    expected = {f"evidence/{p}": r for p, r in expected.items()}
    db = f"sqlite:///{work / 'store.sqlite'}"
    store = open_store(db)
    import_entries(store, "known", known)
    store.close()
    return ev, expected, db


def records(case: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (case / "files.jsonl").read_text().splitlines()]


def cli(
    ev: Path, case: Path, db: str, stderr: int = subprocess.PIPE, json_log: bool = True, **kw: Any
) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    args = [
        "scan",
        str(ev),
        "--hashset",
        "known",
        "--case",
        str(case),
        "--db",
        db,
        "--workers",
        "2",
        *(["--json-log"] if json_log else []),
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "opspoor", *args], stdout=subprocess.DEVNULL, stderr=stderr,
        text=True, env=env, **kw,
    )  # fmt: skip


def malformed(ev: Path, expected: dict[str, str], db: str, work: Path) -> None:
    case = work / "malformed-case"
    t0 = time.perf_counter()
    result = scan_case(ScanConfig(sources=[ev], hashsets=["known"], case_dir=case, db_url=db, workers=2))
    seconds = time.perf_counter() - t0
    got = {r["path"]: r for r in records(case)}
    wrong = [p for p, reason in expected.items() if got.get(p, {}).get("error_reason") != reason]
    s = result.summary
    print(
        f"malformed corpus among {s['files_in']} files: {s['files_accounted']} accounted for, "
        f"reconciled={s['reconciled']}; "
        f"{len(expected)} expected error records, {len(expected) - len(wrong)} with the expected reason "
        f"({seconds:.1f} s); by status {s['by_status']}"
    )
    for p in wrong:
        print(f"  unexpected: {p}: {got.get(p)}")


def kill_loop(
    ev: Path, db: str, work: Path, reference: list[dict[str, Any]], n: int, rng: random.Random
) -> None:
    same = orphans = 0
    for k in range(n):
        case = work / f"kill{k}"
        # (no pipe: a worker that outlives the kill would hold it open)
        proc = cli(ev, case, db, stderr=subprocess.DEVNULL)
        main = psutil.Process(proc.pid)
        time.sleep(rng.uniform(0.5, 6.0))
        workers = main.children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _, alive = psutil.wait_procs(workers, timeout=5)
        orphans += len(alive)
        for p in alive:
            p.kill()
        again = cli(ev, case, db)
        _, err = again.communicate()
        same += again.returncode == 0 and records(case) == reference
    print(
        f"kill -9 and resume: {same}/{n} cases equal to the reference; "
        f"workers alive 5 s after the kill: {orphans}"
    )


def interrupt_loop(
    ev: Path,
    db: str,
    work: Path,
    reference: list[dict[str, Any]],
    n: int,
    rng: random.Random,
    delays: tuple[float, float],
) -> None:
    """Half the runs with the Rich progress bar on stderr (as at a terminal), half with --json-log."""
    codes: dict[int | str, int] = {}
    same = clean = hangs = 0
    for k in range(n):
        case = work / f"int{k}"
        # (SIGINT as at a terminal: a bench run with nohup or & would pass it on ignored)
        proc = cli(
            ev, case, db, json_log=bool(k % 2), start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        time.sleep(rng.uniform(*delays))
        os.killpg(proc.pid, signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # a hang: stop it, and the case is resumed all the same
            hangs += 1
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            codes["hang"] = codes.get("hang", 0) + 1
        else:
            codes[proc.returncode] = codes.get(proc.returncode, 0) + 1
            last = [line for line in err.splitlines() if line.strip() and not line.startswith("{")]
            clean += proc.returncode == 0 or (
                proc.returncode == 130
                and "Traceback" not in err
                and last[-1:] == ["interrupted; run the same command to resume"]
            )
        again = cli(ev, case, db)
        again.communicate(timeout=300)
        same += again.returncode == 0 and records(case) == reference
    print(
        f"Ctrl-C after {delays[0]}-{delays[1]} s and resume: exit codes {codes}; "
        f"{clean}/{n} finished or exit 130 with the one line last and no traceback; "
        f"{hangs} hung (no exit within 60 s); {same}/{n} resumed cases equal to the reference"
    )


def crash_loop(ev: Path, db: str, work: Path, n: int, rng: random.Random) -> None:
    pics = sorted(p.name for p in (ev / "pics").iterdir())
    innocent = blamed = missed = aborted = 0
    t0 = time.perf_counter()
    for k in range(n):
        culprits = set(rng.sample(pics, rng.choice((1, 2))))
        case = work / f"crash{k}"
        try:
            with installed(",".join(f"crash:{c}" for c in culprits)):
                result = scan_case(
                    ScanConfig(
                        sources=[ev / "pics"],
                        hashsets=["known"],
                        case_dir=case,
                        db_url=db,
                        workers=2,
                        local=False,
                    )
                )
        except Exception:
            aborted += 1
            continue
        aborted += not result.reconciled
        for rec in records(case):
            crashed = rec.get("error_reason") == "crash"
            is_culprit = rec["path"].rsplit("/", 1)[1] in culprits
            innocent += crashed and not is_culprit
            blamed += crashed and is_culprit
            missed += is_culprit and not crashed
    retried = scan_case(
        ScanConfig(sources=[ev / "pics"], hashsets=["known"], case_dir=case, db_url=db, workers=2)
    )
    left = sum(r.get("error_reason") == "crash" for r in records(case))
    print(
        f"worker crashes: {n} scans ({time.perf_counter() - t0:.0f} s); culprits blamed {blamed}, "
        f"innocent files blamed {innocent}, culprits missed {missed}, "
        f"scans aborted or not reconciled {aborted}; "
        f"after a run without the fault, crash records left: {left} (reconciled={retried.reconciled})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--interrupts", type=int, default=5)
    ap.add_argument("--crashes", type=int, default=30)
    ap.add_argument("--interrupt-delays", default="0.2,6", help="Ctrl-C after MIN,MAX seconds")
    ap.add_argument("--no-malformed", action="store_true", help="skip the malformed-corpus scan")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    print(setup_line())
    with tempfile.TemporaryDirectory(prefix="opspoor-scan-faults-") as tmp:
        work = Path(tmp)
        ev, expected, db = make_world(work)
        if not args.no_malformed:
            malformed(ev, expected, db, work)
        ref = cli(ev, work / "reference", db)
        _, err = ref.communicate()
        assert ref.returncode == 0, err
        reference = records(work / "reference")
        print(f"reference scan: {len(reference)} records")
        kill_loop(ev, db, work, reference, args.kills, rng)
        lo, hi = (float(x) for x in args.interrupt_delays.split(","))
        interrupt_loop(ev, db, work, reference, args.interrupts, rng, (lo, hi))
        if args.crashes:
            crash_loop(ev, db, work, args.crashes, rng)


if __name__ == "__main__":
    main()
