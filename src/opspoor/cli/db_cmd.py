"""``opspoor db``: schema migrations of the store."""

from __future__ import annotations

import typer

from opspoor.cli.app import DbOption, app, out
from opspoor.cli.options import store_label
from opspoor.store.db import open_store, upgrade

db_app = typer.Typer(help="The store's schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade_cmd(db: DbOption = None) -> None:
    """Migrate the store to the newest schema (creates it when empty). Safe to run twice."""
    with open_store(db, migrate=False) as store:
        before, after = upgrade(store)
        where = store_label(store)
    if before == after:
        out.print(f"{where}: schema is up to date (revision {after})")
    else:
        out.print(f"{where}: schema upgraded from {before or 'empty'} to revision {after}")
