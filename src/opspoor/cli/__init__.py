"""The ``opspoor`` command. Each sub-module registers its commands on ``app``."""

from __future__ import annotations

import sys

# each module registers its commands on ``app``
from opspoor.cli import (  # noqa: F401
    build_cmd,
    db_cmd,
    eval_cmd,
    hash_cmd,
    hashset_cmd,
    match_cmd,
    referral_cmd,
    report_cmd,
    review_cmd,
    scan_cmd,
    serve_cmd,
    watch_cmd,
)
from opspoor.cli.app import app, err
from opspoor.cli.options import store_label
from opspoor.errors import NotFound, OpspoorError
from opspoor.triage import interrupt


def main(interrupted: bool = False) -> None:
    """Entry point: an ``OpspoorError`` becomes one readable line and exit status 2, never a traceback.
    ``interrupted``: Ctrl-C came while the command was loading."""
    if sys.argv[1:2] == ["scan"]:  # the scan stops at a safe point on Ctrl-C (opspoor.triage.interrupt)
        interrupt.install(scan_cmd.INTERRUPTED, deferred=True, requested=interrupted)
    try:
        app(prog_name="opspoor")
    except OpspoorError as exc:
        where = f" in {store_label(exc.store)}" if isinstance(exc, NotFound) and exc.store else ""
        err.print(f"[bold red]error:[/] {exc}{where}", markup=True, highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        if sys.argv[1:2] == ["scan"]:
            scan_cmd.say_interrupted()
        else:
            err.print("interrupted")
        sys.exit(130)
