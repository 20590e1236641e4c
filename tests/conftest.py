"""Shared fixtures: the reference data from ../shared, and a real PostgreSQL when reachable."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference" / "threatexchange"
# index caches of the tests go to a folder of their own, never the user's cache
os.environ.setdefault("OPSPOOR_CACHE", tempfile.mkdtemp(prefix="opspoor-test-cache-"))
PG_ADMIN_URL = os.environ.get("OPSPOOR_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def reference() -> Path:
    """Meta's PDQ/vPDQ reference data; skipped (with the reason printed by -ra) when absent."""
    if not REFERENCE.is_dir():
        pytest.skip(
            f"reference data not found at {REFERENCE} (../shared/reference is not beside the project)"
        )
    return REFERENCE


def _pg_reachable() -> str | None:
    """None when the server answers, else the reason it did not."""
    try:
        import sqlalchemy as sa

        eng = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as c:
            c.execute(sa.text("select 1"))
        eng.dispose()
        return None
    except Exception as exc:  # any failure means "not reachable"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


@pytest.fixture(scope="session")
def pg_server() -> str:
    """Admin URL of the PostgreSQL server. Skips when unreachable, unless OPSPOOR_REQUIRE_POSTGRES is set."""
    reason = _pg_reachable()
    if reason is not None:
        msg = f"PostgreSQL at 127.0.0.1:5432 not reachable ({reason})"
        if os.environ.get("OPSPOOR_REQUIRE_POSTGRES"):
            pytest.fail(msg + " and OPSPOOR_REQUIRE_POSTGRES is set")
        pytest.skip(msg)
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    import sqlalchemy as sa

    name = f"opspoor_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = pg_server.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.sqlite'}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run a store test on both databases."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    return request.getfixturevalue("pg_url")
