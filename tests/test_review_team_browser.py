"""Team mode in a real browser (Debian's Chromium through Playwright), served by the real
``opspoor serve`` on a store the case was published to with ``opspoor case publish`` (SQLite, and
PostgreSQL: OPSPOOR_REQUIRE_POSTGRES=1 makes its absence a failure): a reviewer signs in with a
token on the login page and categorises a group by keyboard; two reviewers in two browser contexts
get different groups, and a decision made by one appears on the other's page by its next poll."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from opspoor.review.decisions import ReviewDB
from opspoor.store import open_store
from opspoor.store.tokens import create_token
from review_case import build_case
from test_report import browser  # noqa: F401  (the report tests' Chromium fixture, reused)

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(db: str, env: dict[str, str]) -> Iterator[str]:
    """``opspoor serve`` on the store ``db`` at a free port: its base URL once it answers; stopped at
    the end."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "opspoor", "serve", "--db", db, "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # the service starts (importing NumPy/Numba on a busy machine)
    while True:
        try:
            with urllib.request.urlopen(base + "/v1/health", timeout=10):
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("opspoor serve stopped: " + (proc.stderr.read() if proc.stderr else ""))
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"opspoor serve did not answer at {base} within 300 s")
            time.sleep(0.2)
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=60)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The shared store: a SQLite file, or a fresh PostgreSQL database for this module."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('team-store') / 'shared.sqlite'}"
        return
    import sqlalchemy as sa

    server = request.getfixturevalue("pg_server")
    name = f"opspoor_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, store_url: str) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("team-browser")
    case = build_case(root)
    db = store_url
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = [sys.executable, "-m", "opspoor"]
    pub = subprocess.run(
        [*run, "case", "publish", str(case["dir"]), "--db", db, "--case-id", "demo"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert pub.returncode == 0, pub.stderr
    with open_store(db) as store:
        _, secret = create_token(store, "reviewer", "hotline", label="carol")
        others = {
            name: create_token(store, "reviewer", "hotline", label=name)[1] for name in ("erin", "frank")
        }
    with serving(db, env) as base:
        yield {**case, "base": base, "secret": secret, "others": others, "db": db}


def test_token_login_and_keyboard_categorisation(browser: Any, served: dict[str, Any]) -> None:  # noqa: F811
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = ctx.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda e: problems.append(str(e)))
    pg.goto(served["base"] + "/review/", wait_until="load")
    assert pg.url.endswith("/review/login")  # no token yet: the login page
    pg.fill("#token", served["secret"])
    with pg.expect_navigation():
        pg.click("button[type=submit]")
    assert pg.url.endswith("/review/")
    with pg.expect_navigation():
        pg.click("a[href='/review/c/demo/']")
    with pg.expect_navigation():
        pg.keyboard.press("n")  # the next undecided group, claimed for this reviewer
    assert "/review/c/demo/group/" in pg.url
    group = pg.url.rsplit("/", 1)[1]
    pg.wait_for_selector(".item img.veiled")
    pg.keyboard.press("2")  # the selected file
    pg.wait_for_function(
        "document.querySelector('.item[data-index=\"0\"] .cat').textContent.startsWith('CAT-2')"
    )
    with pg.expect_navigation():
        pg.keyboard.press("Shift+Digit3")  # the whole group, then on to the next undecided one
    assert "/review/c/demo/group/" in pg.url and not pg.url.endswith("/" + group)
    state = pg.evaluate(f"fetch('/review/c/demo/api/group/{group}/state').then(r => r.json())")
    cats = [i["category"] for i in state["items"]]
    assert len(cats) >= 2 and cats[0] == "us-cat:2" and set(cats[1:]) == {"us-cat:3"}  # the file's own wins
    assert problems == []
    ctx.close()
    with open_store(served["db"]) as store:  # in the shared store, by this token's reviewer name
        standing = ReviewDB(store.engine, "demo", create=False).standing([group])
        assert [d.reviewer for d in standing] and {d.reviewer for d in standing} == {standing[0].reviewer}
        assert standing[0].reviewer.startswith("hotline/token-")


def _signed_in(browser: Any, served: dict[str, Any], secret: str) -> Any:  # noqa: F811
    """A browser context of its own (its own cookie), signed in on the login page, on the case."""
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = ctx.new_page()
    pg.problems = []  # type: ignore[attr-defined]
    pg.on("pageerror", lambda e: pg.problems.append(str(e)))  # type: ignore[attr-defined]
    pg.goto(served["base"] + "/review/login", wait_until="load")
    pg.fill("#token", secret)
    with pg.expect_navigation():
        pg.click("button[type=submit]")
    pg.goto(served["base"] + "/review/c/demo/", wait_until="load")
    return pg


def _group(pg: Any) -> str:
    assert "/review/c/demo/group/" in pg.url
    return str(pg.url.rsplit("/", 1)[1])


def test_two_reviewers_get_different_groups_and_see_each_others_decisions(
    browser: Any,  # noqa: F811
    served: dict[str, Any],
) -> None:
    erin = _signed_in(browser, served, served["others"]["erin"])
    frank = _signed_in(browser, served, served["others"]["frank"])
    # n on the case's overview: the next group nobody has categorised and nobody holds (a claim)
    with erin.expect_navigation():
        erin.keyboard.press("n")
    with frank.expect_navigation():
        frank.keyboard.press("n")
    mine, his = _group(erin), _group(frank)
    assert mine != his  # erin's claim keeps frank off her group
    # frank opens erin's group (looking needs no claim); erin categorises its first file
    frank.goto(served["base"] + f"/review/c/demo/group/{mine}", wait_until="load")
    frank.evaluate("window.samePage = 'yes'")
    with erin.expect_response(lambda r: r.url.endswith("/api/decide")) as resp:
        erin.keyboard.press("4")
    assert resp.value.ok
    resp.value.finished()
    # it appears on frank's page without a reload, by the first poll his page sends after the
    # decision was answered (the page polls every 1.5 s; each poll reads the store). (A poll sent
    # while the decision was being stored may bring it too, but is not the one waited for.)
    poll = frank.wait_for_event("request", lambda r: r.url.endswith(f"/group/{mine}/state"))
    assert poll.response().json()["items"][0]["category"] == "us-cat:4"
    frank.wait_for_function(
        "document.querySelector('.item[data-index=\"0\"] .cat').textContent.startsWith('CAT-4')"
    )
    assert frank.evaluate("window.samePage") == "yes"
    # frank disagrees on the same file: both stand, and erin's page shows both
    frank.keyboard.press("5")
    erin.wait_for_function(
        "(t => t.includes('us-cat:4') && t.includes('us-cat:5'))"
        "(document.querySelector('.item[data-index=\"0\"] .by').textContent)"
    )
    # erin categorises her whole group and moves on: never to the group frank holds
    with erin.expect_navigation():
        erin.keyboard.press("Shift+Digit3")
    assert _group(erin) not in (mine, his)
    assert erin.problems == [] and frank.problems == []  # type: ignore[attr-defined]
    erin.context.close()
    frank.context.close()
