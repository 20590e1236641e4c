"""``opspoor review CASE_DIR`` (the review workspace of one case, on this machine only) and
``opspoor hashset from-case`` (the reviewers' decisions into hash sets). See docs/review.md."""

from __future__ import annotations

import getpass
import math
from pathlib import Path
from typing import Annotated

import typer

from opspoor.cli.app import DbOption, app, err, out
from opspoor.cli.hashset_cmd import hashset_app
from opspoor.cli.options import CommandLineError, check_output_file, listening_socket, store_label
from opspoor.errors import CaseError
from opspoor.hashsets.model import SCHEMES

CaseArg = Annotated[Path, typer.Argument(metavar="CASE_DIR", help="A case folder written by opspoor scan.")]


def _reviewer() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "reviewer"


@app.command("review")
def review(
    case_dir: CaseArg,
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 (0: any free port).")] = 0,
    reviewer: Annotated[
        str | None, typer.Option("--reviewer", metavar="NAME", help="Who decides (default: your login name).")
    ] = None,
    scheme: Annotated[
        str,
        typer.Option(
            "--scheme", metavar="[" + "|".join(SCHEMES) + "]", help="Category scheme of the digit keys."
        ),
    ] = "us-cat",
    break_after: Annotated[
        float,
        typer.Option(
            "--break-after", metavar="MINUTES", help="Suggest a break after this much reveal time a day."
        ),
    ] = 20.0,
    export_vics: Annotated[
        Path | None,
        typer.Option(
            "--export-vics",
            metavar="FILE",
            help="Write the case's VICS export with the reviewers' categories, tags and series, and exit.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="With --export-vics: overwrite FILE if it exists.")
    ] = False,
) -> None:
    """Review a case's new groups in the browser: blurred, by keyboard, on this machine only.

    Prints a URL carrying a one-time secret; open it in a browser on this machine."""
    import uvicorn

    from opspoor.review.web import ReviewConfig, create_review_app

    if not 0 <= break_after < math.inf:  # (NaN fails too)
        raise CommandLineError(f"--break-after must be a number of minutes, 0 or more, not {break_after:g}")
    if export_vics is not None:
        check_output_file(export_vics, force)
        _export_vics(case_dir, export_vics)
        return

    if scheme not in SCHEMES:
        raise CaseError(f"unknown scheme {scheme!r}; one of {', '.join(SCHEMES)}", "--scheme")
    config = ReviewConfig(
        case_dir=case_dir, reviewer=reviewer or _reviewer(), scheme=scheme, break_after=break_after * 60
    )
    review_app = create_review_app(config)
    sock = listening_socket("127.0.0.1", port)
    bound = sock.getsockname()[1]
    out.print(f"Reviewing {case_dir} as {config.reviewer}. Open this link (it works once):", markup=False)
    out.print(f"  http://127.0.0.1:{bound}/?token={config.secret}", markup=False)
    out.print("Ctrl-C stops.", markup=False)
    server = uvicorn.Server(
        uvicorn.Config(review_app, log_level="warning", server_header=False, proxy_headers=False)
    )
    try:
        server.run(sockets=[sock])
    finally:
        review_app.state.view.close()
        review_app.state.review.close()


def _export_vics(case_dir: Path, path: Path) -> None:
    from opspoor.review.caseview import CaseView
    from opspoor.review.decisions import ReviewDB
    from opspoor.review.tohashset import write_reviewed_vics

    view = CaseView(case_dir)
    review_db = ReviewDB.for_case(case_dir)
    try:
        n = write_reviewed_vics(view, review_db, path)
    finally:
        view.close()
        review_db.close()
    out.print(f"wrote {path} ({n} media)", markup=False)


@hashset_app.command("from-case")
def from_case(
    case_dir: CaseArg,
    name: Annotated[
        str, typer.Option("--name", metavar="NAME", help="Hash set of known material to add to.")
    ],
    ignorable: Annotated[
        str | None,
        typer.Option(
            "--ignorable", metavar="NAME", help="Set for not-pertinent files (default: NAME-ignorable)."
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Add the files reviewers categorised in a case to hash sets, with all their signals."""
    from opspoor.review.caseview import CaseView
    from opspoor.review.decisions import ReviewDB
    from opspoor.review.tohashset import entries_from_case, write_hashsets
    from opspoor.store import open_store

    view = CaseView(case_dir)
    review_db = ReviewDB.for_case(case_dir)
    try:
        found = entries_from_case(view, review_db)
        if not (found.known or found.ignorable):
            err.print(
                f"nothing categorised in {case_dir} yet ({found.undecided} new files undecided)", markup=False
            )
            raise typer.Exit(1)
        with open_store(db) as store:
            results = write_hashsets(store, name, found, ignorable_name=ignorable)
            where = store_label(store)
    finally:
        view.close()
        review_db.close()
    for set_name, res in results.items():
        out.print(
            f"{set_name}: {res.added} entries added, {res.duplicates} already there ({where})", markup=False
        )
    out.print(f"{found.undecided} new files not categorised, not added", markup=False)


case_app = typer.Typer(help="Cases in the shared store (the team's review).", no_args_is_help=True)
app.add_typer(case_app, name="case")


@case_app.command("publish")
def publish(
    case_dir: CaseArg,
    db: DbOption = None,
    case_id: Annotated[
        str | None,
        typer.Option("--case-id", metavar="ID", help="The case's name in the store (default: the folder's)."),
    ] = None,
) -> None:
    """Put a scanned case into the shared store, for the review app of `opspoor serve`."""
    from opspoor.review.shared import publish_case
    from opspoor.store import open_store

    with open_store(db) as store:  # migrated (or refused) as the service opens it
        where = store_label(store)
        done = publish_case(case_dir, store.engine, case_id)
    out.print(
        f"published {done.case_id} to {where}: {done.groups} groups, {done.files} files, "
        f"{done.pictures} veiled pictures and reveals (the evidence stays here)",
        markup=False,
    )
    if done.missing:
        err.print(
            f"{len(done.missing)} members have no picture (their evidence could not be read)", markup=False
        )
