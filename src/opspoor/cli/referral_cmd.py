"""``opspoor referral``: referral packages of the hotline intake."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from opspoor.cli.app import app, out
from opspoor.cli.options import country_code

referral_app = typer.Typer(help="Referral packages of the hotline intake.", no_args_is_help=True)
app.add_typer(referral_app, name="referral")


@referral_app.command("export")
def export(
    country: Annotated[
        str, typer.Option("--country", metavar="CC", help="ISO 3166 alpha-2 code, or 'unresolved'.")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="New folder to write the package into.")],
    tenant: Annotated[str, typer.Option("--tenant", help="The hotline's tenant.")] = "default",
    db: Annotated[
        str | None, typer.Option("--db", help="Store URL or SQLite path (default: $OPSPOOR_DB).")
    ] = None,
    with_files: Annotated[
        bool,
        typer.Option(
            "--with-files",
            help="Also the files themselves, unsealed with $OPSPOOR_SERVICE_INTAKE_KEY (audited).",
        ),
    ] = False,
) -> None:
    """Write the referral package of a country: the reports (NCMEC element names), a VICS file of
    hashes and categories, per-file hashes; the files only with --with-files."""
    from opspoor.intake.export import export_referral
    from opspoor.intake.referral import UNRESOLVED
    from opspoor.intake.sealing import key_from_text
    from opspoor.store import open_store

    wanted = UNRESOLVED if country.strip().lower() == UNRESOLVED else country_code(country)
    key_text = os.environ.get("OPSPOOR_SERVICE_INTAKE_KEY")
    key = key_from_text(key_text) if with_files and key_text else None
    with open_store(db, create=False) as store:  # only reads: a mistyped path makes no new store
        pkg = export_referral(store, tenant, wanted, output, key=key, with_files=with_files)
    files = " with the files" if pkg.with_files else ""
    out.print(f"wrote {pkg.folder}: {pkg.reports} reports, {pkg.files} files' hashes{files}")
