"""The Typer application and the options every store-touching command shares."""

from __future__ import annotations

from typing import Annotated, Any

import typer
import typer.core
from rich.console import Console

from opspoor import __version__

app = typer.Typer(
    name="opspoor",
    help="Recognise known material, bring forward the new.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    # inherited by every sub-command's context: ``-h`` works everywhere
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"opspoor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Recognise known material, bring forward the new."""
    # A callback keeps ``opspoor`` a command group even while only one command is registered
    # (Typer would otherwise run that command directly and read its name as an argument).


# Help text in the usual Unix style: placeholders in capitals (``FILE...``, ``--workers N``), choices
# as ``[off|fast|full]``, never Python type labels such as ``<list[Path]>`` (Typer's own style since
# 0.2x, with no setting to turn it off). A parameter's ``metavar`` names its placeholder.
_TYPE_WORDS = {int: "N", float: "NUMBER", str: "TEXT"}


def _placeholder(param: Any, ctx: Any) -> str | None:
    if param.metavar is not None:
        return str(param.metavar)
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    desc = param.type_descriptor
    if desc.is_choice and desc.choices:
        choices = [str(getattr(c, "value", c)) for c in desc.choices]
        return "[" + "|".join(choices) + "]"
    if desc.is_path:
        return "PATH"
    ann = desc.annotation
    inner = typer.core.get_args(ann)[0] if desc.is_list and typer.core.get_args(ann) else ann
    return _TYPE_WORDS.get(inner, str(param.name).upper())


def _option_type(self: Any, ctx: Any) -> str | None:
    return _placeholder(self, ctx)


def _argument_type(self: Any, ctx: Any) -> str | None:
    return None  # the argument's name is its placeholder already


def _argument_name(self: Any) -> str:
    name = str(self.metavar or self.name).upper()
    return name if self.nargs == 1 else f"{name}..."


def _argument_usage(self: Any) -> str:
    name = _argument_name(self)
    return name if self.required else f"[{name}]"


typer.core.TyperOption.display_type_rich = _option_type  # type: ignore[method-assign]
typer.core.TyperArgument.display_type_rich = _argument_type  # type: ignore[method-assign]
typer.core.TyperArgument._rich_display_name = _argument_name  # type: ignore[method-assign]
typer.core.TyperArgument._usage_display_name = _argument_usage  # type: ignore[method-assign]


#: human output goes to stdout; progress and errors to stderr
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # an error stays one line

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="OPSPOOR_DB",
        metavar="STORE",
        help="Store: a SQLite file path or a PostgreSQL URL (default: $OPSPOOR_DB, else "
        "opspoor.sqlite in the user data folder).",
        show_default=False,
    ),
]
