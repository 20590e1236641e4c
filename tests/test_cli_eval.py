"""``opspoor eval robustness`` on the command line: the summary table of docs/robustness.md, a plain
word when the benchmark corpus is not there, no internal issue numbers in what it writes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_eval_prints_the_summary_table_and_says_what_it_measured(tmp_path: Path) -> None:
    out_dir = tmp_path / "rob"
    proc = subprocess.run(
        [
            sys.executable, "-m", "opspoor", "eval", "robustness", "--generated", "--n", "4",
            "--distractors", "2", "--transform", "flip h", "--no-local", "--workers", "1",
            "--out", str(out_dir),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    # the columns of the summary table of docs/robustness.md, in its order
    header = next(x for x in lines if x.startswith("method"))
    assert re.split(r"\s{2,}", header.strip()) == [
        "method", "hashes/query", "hashes/original", "recall@31 %", "false (wrong/distr.)",
        "precision@31 %", "held-out recall %",
    ]  # fmt: skip
    docs = (ROOT / "docs" / "robustness.md").read_text(encoding="utf-8")
    summary = docs[docs.index("### Summary") :].splitlines()[2]
    for words in (
        "method",
        "hashes / query",
        "hashes / original",
        "recall @31",
        "precision @31",
        "held-out recall",
    ):
        assert words in summary, words  # (the docs' table still has these columns)
    methods = [x.split()[0] for x in lines[lines.index(header) + 2 :] if x and not x.startswith("goals")]
    assert methods[0] == "pdq" and "both" in methods
    # generated pictures instead of the benchmark corpus: said plainly, on stderr
    assert "corpus: generated images" in proc.stdout
    assert "not the benchmark photo corpus" in proc.stderr and "not comparable" in proc.stderr
    report = (out_dir / "report.md").read_text(encoding="utf-8")
    for text in (proc.stdout, proc.stderr, report):
        assert not re.search(r"\bissue \d", text, re.I)
