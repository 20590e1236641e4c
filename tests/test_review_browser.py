"""The review page in a real browser (Debian's Chromium through Playwright), served by the real
``opspoor review`` command: the secret is required, pictures are grayscale and blurred by default
(computed CSS filter and the pixels received), a held key or mouse button reveals one item and
letting go veils it again, keyboard categorisation of a file and of a whole group, undo, and known
material absent from every page and from the network."""

from __future__ import annotations

import base64
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from review_case import build_case
from test_report import browser  # noqa: F401  (the report tests' Chromium fixture, reused)

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``opspoor review CASE_DIR`` as a user runs it; the URL it prints."""
    case = build_case(tmp_path_factory.mktemp("review-browser"))
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "opspoor", "review", str(case["dir"]), "--reviewer", "alice"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    url = None
    assert proc.stdout is not None
    for _ in range(5):
        line = proc.stdout.readline()
        m = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=(\S+)", line)
        if m:
            url = m.group(0)
            break
    if url is None:
        proc.kill()
        pytest.fail("opspoor review printed no URL: " + (proc.stderr.read() if proc.stderr else ""))
    base = url.split("/?")[0]
    yield {**case, "url": url, "base": base, "proc": proc}
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def session(browser: Any, served: dict[str, Any]) -> Iterator[Any]:  # noqa: F811
    """One browser context that has exchanged the secret (the cookie); every response is kept."""
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = ctx.new_page()
    pg.responses = []  # type: ignore[attr-defined]
    pg.problems = []  # type: ignore[attr-defined]
    pg.on("response", lambda r: pg.responses.append(r))  # type: ignore[attr-defined]
    pg.on("pageerror", lambda e: pg.problems.append(str(e)))  # type: ignore[attr-defined]
    pg.goto(served["url"], wait_until="load")
    assert pg.url == served["base"] + "/"
    yield pg
    ctx.close()


def _filter(page: Any, index: int) -> str:
    return str(page.eval_on_selector(f'.item[data-index="{index}"] img', "el => getComputedStyle(el).filter"))


def _label(page: Any, index: int) -> str:
    return str(page.inner_text(f'.item[data-index="{index}"] .cat'))


def test_the_secret_is_required(browser: Any, served: dict[str, Any], session: Any) -> None:  # noqa: F811
    ctx = browser.new_context()  # a second browser: no cookie
    pg = ctx.new_page()
    r = pg.goto(served["base"] + "/group/G0001")
    assert r.status == 403 and "Refused" in pg.content()
    assert pg.goto(served["url"]).status == 403  # the session exchanged the secret: it works once
    ctx.close()


def test_overview_and_queue(session: Any, served: dict[str, Any]) -> None:
    session.goto(served["base"] + "/", wait_until="load")
    assert "new groups to review" in session.content()
    session.click("text=queue")
    assert session.locator("#queue tr[data-group]").count() == 6
    assert "same camera body serial: SER-9" in session.inner_text("#queue")


def test_blurred_by_default_reveal_on_hold_and_keyboard(session: Any, served: dict[str, Any]) -> None:
    session.goto(served["base"] + "/group/G0002", wait_until="networkidle")
    assert session.problems == []
    for k in range(3):
        f = _filter(session, k)
        assert "grayscale(1)" in f and "blur(12px)" in f, f
    # hold space: the selected item (the first) is revealed; let go: veiled again
    with session.expect_response(lambda r: "/reveal" in r.url):
        session.keyboard.down("Space")
    session.wait_for_selector('.item[data-index="0"] img.revealed')
    assert _filter(session, 0) == "none" and "blur" in _filter(session, 1)
    session.keyboard.up("Space")
    session.wait_for_selector('.item[data-index="0"] img.veiled')
    assert "blur(12px)" in _filter(session, 0)
    # the mouse: held on the second picture reveals it, released veils it
    box = session.locator('.item[data-index="1"] .frame').bounding_box()
    session.mouse.move(box["x"] + 20, box["y"] + 20)
    session.mouse.down()
    session.wait_for_selector('.item[data-index="1"] img.revealed')
    assert _filter(session, 1) == "none"
    session.mouse.up()
    session.wait_for_selector('.item[data-index="1"] img.veiled')
    assert "grayscale(1)" in _filter(session, 1)
    # keyboard: j selects the next file, a digit categorises the selected one, u undoes it
    session.keyboard.press("k")  # back to the first
    session.keyboard.press("k")
    session.keyboard.press("2")
    session.wait_for_function(
        "document.querySelector('.item[data-index=\"0\"] .cat').textContent.startsWith('CAT-2')"
    )
    assert _label(session, 1) == "not categorised"
    session.keyboard.press("u")
    session.wait_for_function(
        "document.querySelector('.item[data-index=\"0\"] .cat').textContent === 'not categorised'"
    )
    session.keyboard.press("k")  # (the digit moved the selection on to the next file)
    session.keyboard.press("f")  # the follow-up tag, on the selected file
    session.wait_for_function(
        "document.querySelector('.item[data-index=\"0\"] .tags').textContent === '#follow-up'"
    )
    # Shift+digit: the whole group, then on to the next group not yet categorised
    with session.expect_navigation():
        session.keyboard.press("Shift+Digit3")
    assert session.url.endswith("/group/G0003")
    state = session.evaluate("fetch('/api/group/G0002/state').then(r => r.json())")
    assert [i["category"] for i in state["items"]] == ["us-cat:3"] * 3
    session.keyboard.press("?")
    assert session.is_visible("#help")
    assert session.problems == []


def test_pixels_received_are_veiled_unless_revealed_and_known_never_sent(
    session: Any, served: dict[str, Any]
) -> None:
    for group in ("G0001", "G0004"):  # pictures (inside the page), then the video's frame grid (fetched)
        session.responses.clear()
        session.goto(served["base"] + f"/group/{group}", wait_until="networkidle")
        with session.expect_response(lambda r: "/reveal" in r.url):
            session.keyboard.down("Space")
        session.wait_for_selector('.item[data-index="0"] img.revealed')
        session.keyboard.up("Space")
        session.wait_for_selector('.item[data-index="0"] img.veiled')
        # what the server sent (a ``blob:`` is the page's own copy of the reveal it asked for)
        sent = [r for r in session.responses if r.url.startswith(served["base"])]
        assert all(r.url.startswith(("blob:", served["base"])) for r in session.responses)
        images = [r for r in sent if r.headers.get("content-type") == "image/jpeg"]
        # the pictures inside the page (the scan's veiled thumbnails, as data: URIs) and those fetched
        srcs = session.eval_on_selector_all(".item img", "els => els.map(e => e.getAttribute('src'))")
        inline = [base64.b64decode(x.split(",", 1)[1]) for x in srcs if x.startswith("data:")]
        fetched = [r for r in images if r.request.method == "GET"]
        assert len(inline) + len(fetched) >= len(srcs) and (inline if group == "G0001" else fetched)
        for data in inline:
            px = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
            assert np.abs(px[..., 0] - px[..., 2]).max() <= 2 and max(px.shape[:2]) <= 320
        for r in images:
            if r.request.method == "POST":
                assert "/reveal" in r.url  # the only unveiled pixels: a reveal while a key was held
                continue
            px = np.asarray(Image.open(io.BytesIO(r.body())).convert("RGB")).astype(int)
            assert np.abs(px[..., 0] - px[..., 2]).max() <= 2, r.url  # grayscale
            assert max(px.shape[:2]) <= 320, r.url
        assert all("known" not in r.url for r in session.responses)
        assert "known.jpg" not in session.content()
