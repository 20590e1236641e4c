"""``opspoor review CASE_DIR`` (the review workspace of one case, on this machine only) and
``opspoor hashset from-case`` (the reviewers' decisions into hash sets). See docs/review.md."""

from __future__ import annotations

import getpass
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from opspoor.cli.app import DbOption, app, err, out
from opspoor.cli.hashset_cmd import hashset_app
from opspoor.cli.options import CommandLineError, check_output_file, listening_socket, store_label
from opspoor.errors import CaseError
from opspoor.hashsets.model import SCHEMES

if TYPE_CHECKING:
    from opspoor.review.caseview import CaseView
    from opspoor.review.decisions import ReviewDB
    from opspoor.review.tohashset import FromCase
    from opspoor.store import Store

CaseArg = Annotated[Path, typer.Argument(metavar="CASE_DIR", help="A case folder written by opspoor scan.")]
PublishedOption = Annotated[
    bool,
    typer.Option(
        "--published",
        help="CASE_DIR is the ID of a case published to the store (--db): read the team's decisions there.",
    ),
]


@contextmanager
def case_and_decisions(
    case_dir: Path, published: bool, store: Store | None
) -> Iterator[tuple[CaseView, ReviewDB]]:
    """A case folder and its ``review.sqlite``, or (``published``) a case published to ``store``
    and the team's decisions there."""
    from opspoor.review.caseview import CaseView
    from opspoor.review.decisions import ReviewDB
    from opspoor.review.shared import open_published

    if published:
        assert store is not None
        yield open_published(store.engine, str(case_dir))  # (the engine is the store's)
        return
    local = CaseView(case_dir)
    try:
        review_db = ReviewDB.for_case(case_dir)
    except BaseException:
        local.close()
        raise
    try:
        yield local, review_db
    finally:
        local.close()
        review_db.close()


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
    published: PublishedOption = False,
    db: DbOption = None,
    allow_known: Annotated[
        bool,
        typer.Option(
            "--allow-known",
            help="Let the known-items page reveal a known file on purpose (each reveal recorded with "
            "the entry it matched). Without it, known files are only counted.",
        ),
    ] = False,
) -> None:
    """Review a case's new groups in the browser: blurred, by keyboard.

    Serves on 127.0.0.1 only and prints a URL carrying a one-time secret; open it in a browser on
    this machine."""
    import uvicorn

    from opspoor.review.web import ReviewConfig, create_review_app

    if not 0 <= break_after < math.inf:  # (NaN fails too)
        raise CommandLineError(f"--break-after must be a number of minutes, 0 or more, not {break_after:g}")
    if export_vics is not None:
        check_output_file(export_vics, force)
        _export_vics(case_dir, export_vics, published, db)
        return
    if published:
        raise CommandLineError(
            "a published case is reviewed in `opspoor serve` (/review/); here only with --export-vics",
            "--published",
        )

    if scheme not in SCHEMES:
        raise CaseError(f"unknown scheme {scheme!r}; one of {', '.join(SCHEMES)}", "--scheme")

    def rematch() -> dict[str, Any]:  # the curator's "match again" (casefile: the outputs too)
        from opspoor.casefile.rematch import rematch_case

        return rematch_case(case_dir, db_url=db).changes

    config = ReviewConfig(
        case_dir=case_dir,
        reviewer=reviewer or _reviewer(),
        scheme=scheme,
        break_after=break_after * 60,
        db_url=db,
        rematch=rematch,
        allow_known=allow_known,
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


def _export_vics(case_dir: Path, path: Path, published: bool, db: str | None) -> None:
    from opspoor.review.tohashset import write_reviewed_vics
    from opspoor.store import open_store

    if published:
        with open_store(db) as store, case_and_decisions(case_dir, True, store) as (view, review_db):
            n = write_reviewed_vics(view, review_db, path)
    else:
        with case_and_decisions(case_dir, False, None) as (view, review_db):
            n = write_reviewed_vics(view, review_db, path)
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
    published: PublishedOption = False,
    augment: Annotated[
        bool,
        typer.Option(
            "--augment",
            help="Also store each reviewed image's augmented hashes (as hashset build --augment), "
            "from its evidence (read-only).",
        ),
    ] = False,
) -> None:
    """Add the files reviewers categorised in a case to hash sets, with all their signals.

    With --published, CASE_DIR is a case published to the store (`opspoor case publish`) and the
    team's decisions there are read."""
    from opspoor.review.tohashset import entries_from_case, write_hashsets
    from opspoor.store import open_store

    if not published:  # the case folder first: a wrong one is said before any store is opened
        with case_and_decisions(case_dir, False, None) as (view, review_db):
            found = entries_from_case(view, review_db, augment=augment)
        _something_categorised(case_dir, found)
    with open_store(db) as store:
        if published:
            with case_and_decisions(case_dir, True, store) as (view, review_db):
                found = entries_from_case(view, review_db, augment=augment)
        _something_categorised(case_dir, found)
        results = write_hashsets(store, name, found, ignorable_name=ignorable)
        where = store_label(store)
    for set_name, res in results.items():
        out.print(
            f"{set_name}: {res.added} entries added, {res.duplicates} already there ({where})", markup=False
        )
    if augment:
        out.print(f"{found.augmented} images stored with their augmented hashes", markup=False)
    out.print(f"{found.undecided} new files not categorised, not added", markup=False)


def _something_categorised(case_dir: Path, found: FromCase) -> None:
    if not (found.known or found.ignorable):
        err.print(
            f"nothing categorised in {case_dir} yet ({found.undecided} new files undecided)", markup=False
        )
        raise typer.Exit(1)


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
