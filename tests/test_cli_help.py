"""The command line's help: ``-h`` everywhere, ``--version``, every command listed, placeholders in
the Unix style (no Python type labels), defaults stated once, format lists from the registry."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import typer.main
from typer.testing import CliRunner

from opspoor import __version__
from opspoor.cli import app
from opspoor.hashsets.formats import FORMATS

runner = CliRunner()


def every_command() -> list[list[str]]:
    """The argument paths of every command and group (``[]`` is ``opspoor`` itself)."""
    root = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(cmd: Any, path: list[str]) -> None:
        paths.append(path)
        if hasattr(cmd, "commands"):  # a group (Typer carries its own copy of click's classes)
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])

    walk(root, [])
    return paths


def help_of(path: list[str], flag: str = "--help") -> str:
    res = runner.invoke(app, [*path, flag], prog_name="opspoor")
    assert res.exit_code == 0, (path, res.output)
    return res.output


def test_version() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "opspoor", "--version"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and proc.stdout.strip() == f"opspoor {__version__}"


def test_dash_h_works_everywhere_and_help_has_no_python_types() -> None:
    paths = every_command()
    assert ["hashset", "build"] in paths and ["token", "list"] in paths and ["audit", "verify"] in paths
    for path in paths:
        text = help_of(path, "-h")
        assert text == help_of(path, "--help")
        assert "-h, --help" in text, path
        # no Typer type labels such as <list[Path]>, <int>, <path>, <float range>
        assert not re.search(r"<[a-z][a-z_\[\]|, ]*>", text), (path, text)
        flat = " ".join(text.split())
        assert not re.search(r"\(default: [^)]*\)\.?\s+\[default:", flat), (path, flat)  # said twice
        usage = text.splitlines()[0]
        assert usage.startswith("Usage: opspoor") and "{" not in usage, usage


def test_root_help_lists_every_command() -> None:
    text = help_of([])
    for name in ("hash", "match", "scan", "serve", "hashset", "db", "eval", "token", "audit"):
        assert re.search(rf"^  {name}\s", text, re.M), name
    assert "--version" in text
    assert "build" in help_of([]).split("hashset", 1)[1].splitlines()[0]  # the summary names build


def test_defaults_are_stated_once_and_right() -> None:
    for path in (["scan"], ["match"], ["hashset", "build"]):
        text = " ".join(help_of(path).split())
        assert "--workers N" in text and "default: all cores" in text, path
        assert "[default: 0]" not in text, path


def test_format_options_list_the_registry() -> None:
    # a narrow terminal may wrap a name at its hyphen ("hma-" / "lines")
    imports = " ".join(help_of(["hashset", "import"]).split()).replace("- ", "-")
    exports = " ".join(help_of(["hashset", "export"]).split()).replace("- ", "-")
    for name, fmt in FORMATS.items():
        assert name in imports
        if fmt.writer is not None:
            assert name in exports
    assert "auto" in imports


def test_match_and_scan_share_the_matching_options() -> None:
    def options(path: list[str]) -> dict[str, str]:
        cmd = typer.main.get_command(app)
        for name in path:
            cmd = cmd.commands[name]  # type: ignore[attr-defined]
        ctx = type(typer.main.get_command(app).make_context("opspoor", ["hash"]))(cmd)
        found = {}
        for p in cmd.params:
            if p.param_type_name == "option":
                record = p.get_help_record(ctx)
                found[" / ".join(p.opts + p.secondary_opts)] = record[1] if record else ""
        return found

    scan, match = options(["scan"]), options(["match"])
    shared = (
        "--robust",
        "--low-quality / --no-low-quality",
        "--local / --no-local",
        "--distance",
        "--workers",
    )
    for name in shared:
        assert name in scan and name in match, name
        assert scan[name] == match[name], name  # same help: same meaning and default
