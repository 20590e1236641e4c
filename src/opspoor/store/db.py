"""Opening the store: URL resolution, engine set-up, and Alembic migrations run from the package.

SQLite (the embedded default) is migrated to the newest schema whenever it is opened. PostgreSQL is
migrated automatically only when it is empty; a database at an older revision must be upgraded on
purpose with ``opspoor db upgrade`` (take a backup, stop the workers), so opening it fails with a
message that says so.

A SQLite path is checked before anything is written to it: a file that is not an opspoor store (not
SQLite, or a SQLite database with tables of something else, such as a case's ``case.sqlite``) is
refused and left as it was; a path whose folder does not exist is an error, never a new empty store
somewhere unexpected; a new store file is created owner-only (0600), like case folders, and SQLite
gives its -wal and -shm files the same mode.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from opspoor.errors import StoreError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_MS = 30_000
SQLITE_MAGIC = b"SQLite format 3\x00"
#: tables SQLite and Alembic add beside ours
_HOUSEKEEPING = {"alembic_version", "sqlite_sequence", "sqlite_stat1", "sqlite_stat4"}
#: tables migration 0008 creates for the review workspace's team mode, which the review box defines
#: (``review.decisions``, ``review.shared``): the store may not import it
REVIEW_TABLES = frozenset(
    {"review_cases", "review_files", "review_groups", "review_decisions", "review_reveals"}
    | {"review_audit", "review_claims"}
)
#: advisory lock key that serialises concurrent migrations on PostgreSQL ("opspoor" in ASCII)
MIGRATION_LOCK = 0x6F7073706F6F72


def default_url() -> str:
    """``$OPSPOOR_DB``, else ``opspoor.sqlite`` in the user's data directory (created owner-only)."""
    env = os.environ.get("OPSPOOR_DB")
    if env:
        return resolve_url(env)
    data_dir = Path(platformdirs.user_data_dir("opspoor"))
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return f"sqlite:///{data_dir / 'opspoor.sqlite'}"


def resolve_url(db: str | None) -> str:
    """A store URL from what the user typed: ``None`` → default, a file path → SQLite,
    ``postgresql://`` → the psycopg 3 driver."""
    if not db:
        return default_url()
    if "://" not in db:
        return f"sqlite:///{Path(db).expanduser().resolve()}"
    for plain in ("postgresql://", "postgres://"):
        if db.startswith(plain):
            return "postgresql+psycopg://" + db[len(plain) :]
    return db


class Store:
    """An open store: the engine plus the few transaction shapes the queries need."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading. Database errors become ``StoreError``."""
        with self._errors(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, rolled back on any exception. On SQLite it takes the write lock at
        BEGIN, so it waits for other writers (busy timeout) instead of failing half-way when it
        upgrades a read lock."""
        with self._errors(), self.engine.connect() as conn:
            if self.is_sqlite:
                conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            with conn.begin():
                yield conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except _db_errors() as exc:
            raise StoreError(_first_line(exc), where=repr(self)) from exc

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({make_url(self.url).render_as_string(hide_password=True)})"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # We emit BEGIN ourselves (see _sqlite_begin): pysqlite's implicit transactions defer locks.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))


def create_store_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"not a store URL: {exc}", where=url) from None
    if parsed.get_backend_name() == "sqlite":
        db_path = parsed.database
        if db_path and db_path != ":memory:" and not db_path.startswith("file:"):
            prepare_sqlite_file(Path(db_path))
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_MS / 1000}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    raise StoreError("only SQLite and PostgreSQL stores are supported", where=url)


def _refuse_missing_sqlite(url: str) -> None:
    try:
        parsed = make_url(url)
    except ArgumentError:
        return  # create_store_engine says what is wrong with it
    db_path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not db_path or db_path == ":memory:":
        return
    if not db_path.startswith("file:") and not Path(db_path).exists():
        raise StoreError("no store here (a command that only reads creates none)", where=db_path)


def prepare_sqlite_file(path: Path) -> None:
    """Refuse a path that is not (and cannot become) an opspoor store; create a new one 0600."""
    where = str(path)
    if path.is_dir():
        raise StoreError("is a folder, not a store file", where=where)
    if not path.parent.is_dir():
        raise StoreError(f"the folder {path.parent} does not exist (create it first)", where=where)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        _check_existing_sqlite(path)
    except OSError as exc:
        raise StoreError(f"cannot create the store: {exc.strerror}", where=where) from None
    else:
        os.close(fd)  # an empty file is an empty SQLite database; migrations fill it


def _check_existing_sqlite(path: Path) -> None:
    where = str(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise StoreError(f"cannot read the store: {exc.strerror}", where=where) from None
    if not head:
        return  # empty: a new store
    if head != SQLITE_MAGIC:
        raise StoreError("not an opspoor store (not a SQLite file); left unchanged", where=where)
    from opspoor.store import models_service  # its tables join Base.metadata

    try:  # read-only: nothing is written to a file that turns out not to be ours
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"not an opspoor store ({exc}); left unchanged", where=where) from None
    foreign = sorted(tables - set(models_service.Base.metadata.tables) - _HOUSEKEEPING - REVIEW_TABLES)
    if foreign or (tables and "alembic_version" not in tables):
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise StoreError(
            f"not an opspoor store (it has tables of something else: {shown or 'no schema version'}); "
            "left unchanged",
            where=where,
        )


def open_store(url: str | None = None, *, migrate: bool = True, create: bool = True) -> Store:
    """Open (and on first use create) the store at ``url``; see the module note on migrations.
    ``create=False`` (a command that only reads): a SQLite file that does not exist is an error."""
    resolved = resolve_url(url)
    if not create:
        _refuse_missing_sqlite(resolved)
    engine = create_store_engine(resolved)
    store = Store(engine, resolved)
    try:
        if migrate:
            _ensure_schema(store)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StoreError(f"cannot open the store: {_first_line(exc)}", where=repr(store)) from None
    except BaseException:
        engine.dispose()
        raise
    return store


# --- migrations ------------------------------------------------------------------------------
def alembic_config(url: str) -> Any:
    """An Alembic ``Config`` built in code, so migrations run from an installed package."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation: a literal % in a password must be doubled
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def upgrade(store: Store, revision: str = "head") -> tuple[str | None, str]:
    """Run migrations up to ``revision``; returns (revision before, revision after)."""
    from alembic import command

    cfg = alembic_config(store.url)
    with store.write() as conn:
        if not store.is_sqlite:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        before = current_revision(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        after = current_revision(conn)
    assert after is not None
    return before, after


def _ensure_schema(store: Store) -> None:
    head = head_revision()
    with store.read() as conn:
        current = current_revision(conn)
    if current == head:
        return
    if current is not None and not _is_known_revision(current):
        raise StoreError(
            f"the database schema is at revision {current}, which this opspoor does not know "
            f"(written by a newer version?); it needs {head}",
            where=repr(store),
        )
    if current is None or store.is_sqlite:
        upgrade(store)  # under the migration lock: a no-op if another process just did it
        return
    raise StoreError(
        f"the database schema is at revision {current}, this opspoor needs {head}: "
        f"run `opspoor db upgrade --db URL` (after a backup)",
        where=repr(store),
    )


def _db_errors() -> tuple[type[BaseException], ...]:
    """Errors of the database layers (SQLAlchemy, and the drivers used directly for bulk writes)."""
    import sqlite3

    import psycopg

    return (SQLAlchemyError, sqlite3.Error, psycopg.Error)


def _is_known_revision(rev: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(rev) is not None
    except CommandError:
        return False


def _first_line(exc: BaseException) -> str:
    s = str(getattr(exc, "orig", None) or exc).strip()
    return s.splitlines()[0] if s else type(exc).__name__
