"""The README's and docs/hashing.md's console examples, run as written against a demo case.

Each ```console block is read as a shell session: a ``$ opspoor …`` line is a command, the lines
after it (up to the next ``$``) what it prints. The demo is built as ``make demo`` builds it
(``python -m opspoor.demo``, the small variant), in a temporary folder that stands for the
repository's root, with ``OPSPOOR_DB`` pointing at the demo's store as the README says. Every
command runs in order, with no traceback, and what it prints must have the shape of what the
document shows: the same lines once numbers, paths and hashes are masked (so columns, keys and
wording must match; counts, sizes and times may differ), JSON lines with the same keys.

Two commands are not run here, and say why: ``serve`` runs until it is stopped (tests/test_service*
start the service), and ``eval robustness`` takes minutes at the README's sizes (test_cli_eval.py
runs it small and checks the same table).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = ("README.md", "docs/hashing.md")
NOT_RUN = {
    "serve": "runs until it is stopped",
    "eval": "minutes at the README's sizes; test_cli_eval.py runs it small",
}


@dataclass
class Example:
    document: str
    line: int
    command: str
    expected: list[str]

    @property
    def args(self) -> list[str]:
        return shlex.split(self.command, comments=True)[1:]


def console_examples(text: str, document: str) -> list[Example]:
    """The ``$ opspoor`` commands of every ```console block, with the lines each is shown printing."""
    examples: list[Example] = []
    block = False
    current: Example | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            block = line.strip() == "```console"
            current = None
            continue
        if not block:
            continue
        if line.startswith("$ "):
            current = None
            if line.startswith("$ opspoor"):
                current = Example(document, number, line[2:], [])
                examples.append(current)
        elif current is not None:
            current.expected.append(line)
    return examples


_PROGRESS = re.compile(r"[━⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]")


def skeleton(line: str) -> str | None:
    """A line with what varies between runs masked: any word holding a digit or a slash (numbers,
    sizes, times, paths, hashes), and long words (secrets). Table rules become one mark; progress
    bars (which a terminal redraws) are left out."""
    if _PROGRESS.search(line):
        return None
    if line.strip() and set(line.strip()) <= {"─", " "}:
        return "─"
    words = ["#" if re.search(r"[\d/]", w) or len(w) >= 24 else w for w in line.split()]
    return " ".join(words)


def json_shape(value: Any) -> Any:
    """The keys of a JSON value, recursively (lists by their first item)."""
    if isinstance(value, dict):
        return {k: json_shape(v) for k, v in value.items() if not isinstance(v, type(None))} | {
            k: None for k, v in value.items() if v is None
        }
    if isinstance(value, list):
        return [json_shape(value[0])] if value and isinstance(value[0], dict) else []
    return None


def shape_problems(example: Example, printed: str) -> list[str]:
    lines = printed.splitlines()
    problems = []
    expected_json = [json.loads(x) for x in example.expected if x.startswith("{")]
    printed_json = [json.loads(x) for x in lines if x.startswith("{")]
    if len(expected_json) != len(printed_json):
        problems.append(f"{len(printed_json)} JSON lines printed, {len(expected_json)} shown")
    for shown, got in zip(expected_json, printed_json, strict=False):
        if set(json_shape(shown)) != set(json_shape(got)):
            problems.append(f"JSON keys {sorted(json_shape(got))} printed, {sorted(json_shape(shown))} shown")
        for key in ("matches",):  # the keys of each match too
            if shown.get(key) and got.get(key) and set(shown[key][0]) != set(got[key][0]):
                problems.append(f"match keys {sorted(got[key][0])} printed, {sorted(shown[key][0])} shown")
    have = {skeleton(x) for x in lines if not x.startswith("{")}
    for shown_line in example.expected:
        if shown_line.startswith("{"):
            continue
        want = skeleton(shown_line)
        if want is not None and want not in have:
            problems.append(f"shown but not printed: {shown_line.strip()[:120]!r}")
    return problems


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("readme")
    proc = subprocess.run(
        [sys.executable, "-m", "opspoor.demo", "--dir", "demo", "--small"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    # the intake part: one bundle of two reports, one referral package (docs/intake.md)
    assert "counted as 1 report of 2 incidents" in proc.stdout, proc.stdout[-2000:]
    assert "package: hashes.csv, hashes.vics.json, reports.json" in proc.stdout
    # the demo ends by saying how to reach its store, as the README does
    assert f"export OPSPOOR_DB={root / 'demo' / 'store.sqlite'}" in proc.stdout
    return root


def all_examples() -> list[Example]:
    found = []
    for doc in DOCUMENTS:
        found += console_examples((ROOT / doc).read_text(encoding="utf-8"), doc)
    return found


def test_the_examples_are_found() -> None:
    """The parser sees the README's commands (a test that ran none would prove nothing)."""
    commands = [e.args[0] for e in all_examples()]
    for name in ("hash", "hashset", "match", "scan", "eval", "token", "--help"):
        assert name in commands, name
    help_example = next(e for e in all_examples() if e.args == ["--help"])
    assert any("hashset" in line for line in help_example.expected)


def test_the_help_shown_names_every_command() -> None:
    """The shape check asks only that what is shown is printed; the command list of ``--help`` must
    also be whole, so a new command is not missing from the README's overview."""
    from typer.main import get_command

    from opspoor.cli import app as cli_app

    help_example = next(e for e in all_examples() if e.args == ["--help"])
    listed = help_example.expected[help_example.expected.index("Commands:") + 1 :]
    shown = [line.split()[0] for line in listed if line.startswith("  ")]
    assert sorted(shown) == sorted(get_command(cli_app).commands)  # type: ignore[attr-defined]


def test_readme_examples_run_as_written(demo_root: Path) -> None:
    env = {
        **os.environ,
        "OPSPOOR_DB": str(demo_root / "demo" / "store.sqlite"),
        "OPSPOOR_CACHE": str(demo_root / "cache"),
    }
    failures = []
    ran = 0
    for example in all_examples():
        if example.args[0] in NOT_RUN:
            continue
        proc = subprocess.run(
            [sys.executable, "-m", "opspoor", *example.args],
            cwd=demo_root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=600,
            check=False,
        )
        ran += 1
        where = f"{example.document}:{example.line}: $ {example.command}"
        if (
            "Traceback" in proc.stdout
            or "no such file" in proc.stdout.lower()
            and not any("no such file" in x for x in example.expected)
        ):
            failures.append(f"{where}\n{proc.stdout}")
            continue
        failures += [f"{where}\n  {p}" for p in shape_problems(example, proc.stdout)]
    assert ran >= 15
    assert not failures, "\n".join(failures)


def test_the_shape_comparison_catches_a_renamed_key_or_column() -> None:
    example = Example(
        "x", 1, "opspoor hash --json f", ['{"path": "f", "pdq_quality": 1}', "a  b   c", "3 files in /x"]
    )
    assert shape_problems(example, '{"path": "g", "pdq_quality": 7}\na b c\n7 files in /tmp/y') == []
    assert shape_problems(example, '{"path": "g", "quality": 7}\na b c\n7 files in /tmp/y')
    assert shape_problems(example, '{"path": "g", "pdq_quality": 7}\na b d\n7 files in /tmp/y')
