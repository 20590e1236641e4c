"""The matching options ``scan`` and ``match`` share (same names, same meaning, same defaults), and
how messages name the store a command used."""

from __future__ import annotations

import socket
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from opspoor.errors import OpspoorError
from opspoor.signals.engine import ROBUST_PRESETS, robust_methods
from opspoor.store import Store


class Robust(StrEnum):
    off = "off"
    fast = "fast"
    full = "full"


RobustOption = Annotated[
    Robust,
    typer.Option(
        "--robust",
        help="Extra query hashes per image: fast = rotations, flips, borders removed; "
        "full = also pictures inside a larger canvas; off = plain PDQ.",
    ),
]
LowQualityOption = Annotated[
    bool,
    typer.Option(
        "--low-quality/--no-low-quality",
        help="With --robust fast|full: also weak region hashes (PDQ quality 10-49: a flat picture "
        "padded or in a screenshot; or a regular pattern such as stripes), matched only within 12 bits.",
    ),
]
LocalOption = Annotated[
    bool,
    typer.Option(
        "--local/--no-local",
        help="Also match images by their local features when the sets hold their originals' "
        "(hashset build --augment): finds crops that are not centred.",
    ),
]
DistanceOption = Annotated[
    int | None,
    typer.Option(
        "--distance",
        min=0,
        max=64,
        metavar="BITS",
        show_default=False,
        help="PDQ match distance, 0-64 (default: each hash set's own, 31 unless set otherwise).",
    ),
]


def _not_negative(value: int) -> int:
    if value < 0:
        raise typer.BadParameter("must be 0 (all cores) or more")
    return value


WorkersOption = Annotated[
    int,
    typer.Option(
        "--workers",
        metavar="N",
        show_default=False,
        callback=_not_negative,
        help="Processes (default: all cores).",
    ),
]


class ExecutorKind(StrEnum):
    local = "local"
    dask = "dask"


ExecutorOption = Annotated[
    ExecutorKind,
    typer.Option(
        "--executor",
        help="Where the per-file work runs: local (a process pool) or dask (the cluster at --scheduler; "
        "docs/scale.md).",
    ),
]

SchedulerOption = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        metavar="URL",
        show_default=False,
        help="With --executor dask: the dask scheduler, e.g. tcp://host:8786.",
    ),
]


def robust_query_methods(robust: Robust, low_quality: bool) -> frozenset[str]:
    """The robust query methods (signals.robust) that ``--robust`` and ``--low-quality`` ask for."""
    return robust_methods(ROBUST_PRESETS[robust.value], low_quality)


def store_label(store: Store | str) -> str:
    """How messages name the store a command used: a SQLite file's path, or the URL without its password."""
    url = make_url(store if isinstance(store, str) else store.url)
    if url.get_backend_name() == "sqlite" and url.database:
        return url.database
    return url.render_as_string(hide_password=True)


class CommandLineError(OpspoorError):
    """What was asked on the command line cannot be done as asked (an output file that exists, a
    confirmation that cannot be asked): one line naming the option or file, exit status 2."""


def check_output_file(output: Path, force: bool) -> None:
    """An output file can be written: its folder exists, it is not a folder, and it is overwritten
    only with --force."""
    if output.is_dir():
        raise CommandLineError("a folder; -o takes a file name", str(output))
    parent = output.parent
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise CommandLineError(f"cannot write: the folder {str(parent)!r} {what}", str(output))
    if output.exists() and not force:
        raise CommandLineError("exists; add --force to overwrite it", str(output))


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (0: any free port), or one line saying why not (port taken,
    address not on this machine), before a server prints that it started."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CommandLineError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", "--port") from None
    return sock


def country_code(value: str, option: str = "--country") -> str:
    """``value`` as an assigned ISO 3166-1 alpha-2 code, upper case, or one line naming ``option``.
    The list is libphonenumber's regions (shipped with ``phonenumbers``, which the clues use too):
    every country and territory people live in, plus XK (Kosovo)."""
    import phonenumbers

    code = value.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise CommandLineError(f"{value!r} is not an ISO 3166 alpha-2 country code (e.g. NL)", option)
    return code
