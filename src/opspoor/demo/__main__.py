"""``make demo``: build the benign demo case, import its hash sets, and scan it with the real commands."""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from opspoor.demo.case import build_demo_case
from opspoor.hashsets.formats import write_entries


def run(args: list[str]) -> None:
    shown = "opspoor " + " ".join(shlex.quote(a) for a in args)
    print(f"\n$ {shown}", flush=True)
    proc = subprocess.run([sys.executable, "-m", "opspoor", *args], check=False)
    if proc.returncode != 0:
        sys.exit(f"demo step failed (exit {proc.returncode}): {shown}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", type=Path, default=Path("demo"), help="where to build the demo (default ./demo)")
    ap.add_argument("--small", action="store_true", help="a smaller case (for tests)")
    a = ap.parse_args()
    root = a.dir.resolve()
    t0 = time.time()
    print(f"building the benign demo case in {root}/evidence ...", flush=True)
    demo = build_demo_case(root, n_camera=40, n_known=16, n_icons=6) if a.small else build_demo_case(root)
    sets = root / "hashsets"
    sets.mkdir(exist_ok=True)
    write_entries(demo.known_entries, sets / "demo-known.vics.json", "vics2")
    write_entries(demo.ignorable_entries, sets / "demo-icons.vics.json", "vics2")
    # a partner's list of bare PDQ hashes (``hashset import --format plain --type pdq``)
    write_entries(demo.known_entries, sets / "demo-known.pdq.txt", "plain", signal="pdq")
    print(f"built in {time.time() - t0:.1f} s", flush=True)
    db = str(root / "store.sqlite")
    run(["hashset", "import", str(sets / "demo-known.vics.json"), "--name", "demo-known", "--db", db])
    run(
        [
            "hashset",
            "import",
            str(sets / "demo-icons.vics.json"),
            "--name",
            "demo-icons",
            "--kind",
            "ignorable",
            "--db",
            db,
        ]
    )
    case = root / "case"
    run(
        [
            "scan",
            str(demo.evidence),
            "--hashset",
            "demo-known",
            "--hashset",
            "demo-icons",
            "--case",
            str(case),
            "--db",
            db,
            "--case-number",
            "DEMO-0001",
            "--examiner",
            "demo examiner",
        ]
    )
    summary = json.loads((case / "summary.json").read_text())
    print(
        "\nsummary.json:",
        json.dumps(
            {
                k: summary[k]
                for k in ("files_in", "files_accounted", "reconciled", "by_status", "by_category", "groups")
            },
            indent=1,
        ),
    )
    print(f"\nreport: {case / 'report.html'}")
    # a small disk image (E01) with a deleted and a carved picture: docs/disk-images.md
    from opspoor.demo.disks import build_demo_disk

    e01 = build_demo_disk(root / "disk", demo.evidence)
    run(["scan", str(e01), "--hashset", "demo-known", "--case", str(root / "case-disk"), "--db", db,
         "--verify-image"])  # fmt: skip
    # reports in, bundled, referred: the hotline intake (docs/intake.md)
    from opspoor.demo.intake import run_intake_demo

    run_intake_demo(root, db)
    # the demo's hash sets live in its own store, not the default one: say how to reach it
    print(
        "\nThe demo's hash sets are in its own store. To use it with the commands of README.md:\n"
        f"  export OPSPOOR_DB={shlex.quote(db)}\n"
        "  ./opspoor hashset list        (or: source .venv/bin/activate; opspoor hashset list)"
    )


if __name__ == "__main__":
    main()
