"""``./opspoor`` at the repository's root runs the command from ``.venv`` (README: after ``make demo``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from opspoor import __version__

ROOT = Path(__file__).resolve().parent.parent


def test_wrapper_runs_the_venv_command(tmp_path: Path) -> None:
    wrapper = tmp_path / "opspoor"
    shutil.copy2(ROOT / "opspoor", wrapper)
    assert os.access(ROOT / "opspoor", os.X_OK)
    proc = subprocess.run([str(wrapper), "--version"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "make install" in proc.stderr  # no .venv yet: says what to do
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    venv_python = tmp_path / ".venv" / "bin" / "python"  # stands for .venv's python: the test's own
    venv_python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    venv_python.chmod(0o755)
    proc = subprocess.run(
        [str(wrapper), "--version"], capture_output=True, text=True, check=False, cwd=tmp_path.parent
    )
    assert proc.returncode == 0 and proc.stdout.strip() == f"opspoor {__version__}", proc.stderr
