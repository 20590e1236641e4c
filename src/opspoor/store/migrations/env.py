"""Alembic environment for the opspoor store. The configuration is built in code
(``opspoor.store.db.alembic_config``); callers may pass an open connection in
``config.attributes["connection"]`` so migrations share their transaction."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from opspoor.store import models_intake, models_service, models_sharing  # noqa: F401  (their tables join Base.metadata)
from opspoor.store.models import Base

config = context.config
target_metadata = Base.metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copy
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    shared = config.attributes.get("connection")
    if shared is not None:
        run(shared)
    else:
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.begin() as conn:
            run(conn)
        engine.dispose()
