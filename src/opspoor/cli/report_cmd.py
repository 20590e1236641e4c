"""``opspoor report``: the case report in other forms."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from opspoor.cli.app import app, out
from opspoor.errors import ReportError

report_app = typer.Typer(help="The case report (report.html) in other forms.", no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("pdf")
def pdf(
    case: Annotated[Path, typer.Argument(help="Case directory of a finished scan (holds report.html).")],
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="PDF file to write (default: CASE/report.pdf).", show_default=False
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --output file.")] = False,
) -> None:
    """Print the case report to an A4 PDF with the system's headless Chromium (owner-only file)."""
    from opspoor.casefile.outputs import REPORT_HTML
    from opspoor.report.pdf import write_pdf

    html = case / REPORT_HTML
    if not html.is_file():
        raise ReportError("no report.html here: run opspoor scan with --case first", str(case))
    target = output or case / "report.pdf"
    if output is not None and output.exists() and not force:
        raise ReportError("file exists; use --force to replace it", str(output))
    size = write_pdf(html, target)
    out.print(f"wrote {target} ({size:,} bytes)")
