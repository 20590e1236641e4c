"""The Typer application and the options every store-touching command shares."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    name="opspoor",
    help="Recognise known material, bring forward the new.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root() -> None:
    """Recognise known material, bring forward the new."""
    # A callback keeps ``opspoor`` a command group even while only one command is registered
    # (Typer would otherwise run that command directly and read its name as an argument).


#: human output goes to stdout; progress and errors to stderr
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # an error stays one line

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="OPSPOOR_DB",
        help="Store URL or SQLite file path (default: $OPSPOOR_DB, else a SQLite file in the user data dir).",
        show_default=False,
    ),
]
