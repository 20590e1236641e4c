"""``opspoor report``: the case report in other forms."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import typer

from opspoor.cli.app import app, out
from opspoor.cli.options import CommandLineError
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


@report_app.command("build")
def build(
    source: Annotated[
        Path,
        typer.Argument(help="A case folder (its files.jsonl) or a JSON file of the service's match answers."),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="The report document to write (JSON).")],
    incident_datetime: Annotated[
        str,
        typer.Option(
            "--incident-datetime",
            metavar="ISO8601",
            help="When the incident happened, with its zone (2026-02-28T10:00:00Z).",
        ),
    ],
    ip: Annotated[
        list[str] | None,
        typer.Option("--ip", metavar="ADDRESS", help="An IP address of the reported user (repeatable)."),
    ] = None,
    screen_name: Annotated[
        str | None, typer.Option("--screen-name", help="The reported user's screen name.")
    ] = None,
    esp_identifier: Annotated[
        str | None, typer.Option("--esp-id", help="The reported user's id at the platform.")
    ] = None,
    country: Annotated[
        str | None,
        typer.Option("--country", metavar="CC", help="The platform's own estimate of the user's country."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --output file.")] = False,
) -> None:
    """A report document in the CyberTipline shape from match hits (files that matched a known
    set), ready for the intake API (docs/intake.md) or NCMEC."""
    import json
    import os

    from opspoor.intake.build import build_report, read_hits

    for address in ip or []:
        try:
            ipaddress.ip_address(address.strip())
        except ValueError:
            raise CommandLineError(f"--ip {address!r} is not an IPv4 or IPv6 address") from None
    if output.exists() and not force:
        raise ReportError("file exists; use --force to replace it", str(output))
    doc = build_report(
        list(read_hits(source)),
        incident_datetime=incident_datetime,
        ip_addresses=ip,
        screen_name=screen_name,
        esp_identifier=esp_identifier,
        country=country,
    )
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1)
    out.print(f"wrote {output}: a report of {len(doc['files'])} known files")
