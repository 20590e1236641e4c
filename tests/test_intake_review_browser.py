"""The intake's review queue in a real browser (Debian's Chromium through Playwright), served by the
real ``opspoor serve`` on SQLite with an intake key: two reports sent over HTTP, one with a new
picture and a known one; a reviewer signs in, opens the tenant's intake queue from the case list,
sees the new picture's group veiled, and categorises it by keyboard (``n``, ``Shift``+``3``)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from opspoor.review.decisions import ReviewDB
from opspoor.store import open_store
from opspoor.store.tokens import create_token
from test_intake import picture, report_doc
from test_report import browser  # noqa: F401  (the report tests' Chromium fixture, reused)
from test_review_team_browser import SRC, serving
from test_service import eventually

KEY = "11" * 32


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    db = f"sqlite:///{tmp_path_factory.mktemp('intake-browser') / 'store.sqlite'}"
    env = {
        **os.environ,
        "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "OPSPOOR_SERVICE_INTAKE_KEY": KEY,
    }
    with open_store(db) as store:
        tokens = {
            role: create_token(store, role, "hotline", label=role)[1]
            for role in ("reporter", "reviewer", "curator", "platform")
        }
    with serving(db, env) as base:
        yield {"base": base, "db": db, "tokens": tokens}


def _send(served: dict[str, Any], *files: bytes) -> int:
    h = {"Authorization": f"Bearer {served['tokens']['reporter']}"}
    url = served["base"] + "/v1/intake"
    with httpx.Client(headers=h, timeout=60) as c:
        rid = int(c.post(f"{url}/submit", json=report_doc()).json()["reportId"])
        for data in files:
            assert c.post(
                f"{url}/reports/{rid}/upload", files={"file": ("p.jpg", data, "image/jpeg")}
            ).is_success
        assert c.post(f"{url}/reports/{rid}/finish").is_success
    return rid


def test_a_reviewer_categorises_a_reported_picture_by_keyboard(browser: Any, served: dict[str, Any]) -> None:  # noqa: F811
    known, new = picture(51), picture(52)
    h = {"Authorization": f"Bearer {served['tokens']['curator']}"}
    with httpx.Client(base_url=served["base"], headers=h, timeout=60) as c:
        assert c.post("/v1/hashsets", json={"name": "known", "kind": "known"}).is_success
        entry = {
            "signals": {"md5": hashlib.md5(known).hexdigest()},
            "category": {"scheme": "us-cat", "code": "1"},
        }
        assert c.post("/v1/hashsets/known/entries", json={"entries": [entry]}).is_success
    md5 = hashlib.md5(known).hexdigest()
    p = {"Authorization": f"Bearer {served['tokens']['platform']}"}
    with httpx.Client(base_url=served["base"], headers=p, timeout=60) as c:  # the workers follow the store

        def known_now() -> bool:  # 503 until the worker has loaded and warmed its index
            r = c.post("/v1/match", json={"signals": [{"type": "md5", "value": md5}]})
            return r.status_code == 200 and bool(r.json()["results"][0]["matches"])

        eventually(known_now, timeout=30)
    r1, r2 = _send(served, new), _send(served, known)
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = ctx.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda e: problems.append(str(e)))
    pg.goto(served["base"] + "/review/login", wait_until="load")
    pg.fill("#token", served["tokens"]["reviewer"])
    with pg.expect_navigation():
        pg.click("button[type=submit]")
    with pg.expect_navigation():
        pg.click("a[href='/review/c/intake%3Ahotline/']")
    with pg.expect_navigation():
        pg.keyboard.press("n")
    assert pg.url.endswith(f"/group/R{r1}"), pg.url  # the known picture's report has no group
    pg.wait_for_selector(".item img.veiled")
    assert pg.locator(".item img.veiled").count() == 1
    with pg.expect_response(lambda r: r.url.endswith("/api/decide") and r.request.method == "POST") as resp:
        pg.keyboard.press("Shift+Digit3")
    assert resp.value.ok  # answered once stored
    with open_store(served["db"]) as store:
        standing = ReviewDB(store.engine, "intake:hotline", create=False).standing([f"R{r1}"])
    assert standing and standing[0].category is not None and standing[0].category.code == "3"
    assert problems == []
    ctx.close()
    assert r2 != r1
