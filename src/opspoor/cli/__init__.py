"""The ``opspoor`` command. Each sub-module registers its commands on ``app``."""

from __future__ import annotations

import sys

from opspoor.cli import db_cmd, hash_cmd, hashset_cmd, match_cmd, scan_cmd  # noqa: F401  (registers commands)
from opspoor.cli import build_cmd, eval_cmd, serve_cmd  # noqa: F401  (registers commands)
from opspoor.cli.app import app, err
from opspoor.errors import OpspoorError


def main() -> None:
    """Entry point: an ``OpspoorError`` becomes one readable line and exit status 2, never a traceback."""
    try:
        app()
    except OpspoorError as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
