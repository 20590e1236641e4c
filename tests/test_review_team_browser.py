"""Team mode in a real browser (Debian's Chromium through Playwright), served by the real
``opspoor serve`` on a store the case was published to with ``opspoor case publish``: a reviewer
signs in with a token on the login page and categorises a group by keyboard; the decision is in the
shared store for the other reviewers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
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


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("team-browser")
    case = build_case(root)
    db = f"sqlite:///{root / 'shared.sqlite'}"
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
    port = _free_port()
    proc = subprocess.Popen(
        [*run, "serve", "--db", db, "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):  # the service starts (importing NumPy/Numba on a busy machine takes a while)
        try:
            with urllib.request.urlopen(base + "/v1/health", timeout=1):
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("opspoor serve stopped: " + (proc.stderr.read() if proc.stderr else ""))
            time.sleep(0.2)
    yield {**case, "base": base, "secret": secret, "db": db}
    proc.terminate()
    proc.wait(timeout=20)


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
