"""``opspoor hash``: print the signals of files. (stub)"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from opspoor.cli.app import app


@app.command("hash")
def hash_files(
    files: Annotated[list[Path], typer.Argument(help="Files to hash.")],
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Hash files: MD5, SHA-1, SHA-256, PDQ (images) and vPDQ (videos)."""
    raise NotImplementedError
