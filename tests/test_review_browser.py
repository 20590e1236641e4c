"""The review page in a real browser (Debian's Chromium through Playwright), served by the real
``opspoor review`` command: the secret is required, pictures are grayscale and blurred by default
(computed CSS filter and the pixels received), a held key or mouse button reveals one item and
letting go veils it again, keyboard categorisation of a file and of a whole group, undo, and known
material absent from every page and from the network; the loop from keyboard decisions to a hash
set to a rescan that finds the files known."""

from __future__ import annotations

import base64
import contextlib
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
from playwright.sync_api import Error as PlaywrightError

from review_case import build_case, serve_review
from test_report import browser  # noqa: F401  (the report tests' Chromium fixture, reused)

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``opspoor review CASE_DIR`` as a user runs it; the URL it prints."""
    case = build_case(tmp_path_factory.mktemp("review-browser"))
    with serve_review(case["dir"]) as run:
        yield {**case, **run}


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
    with session.expect_navigation(url="**/queue", wait_until="load"):  # the queue page, loaded
        session.click("header a[href$='/queue']")
    assert session.locator("#queue tr[data-group]").count() == 6
    assert "same camera body serial: SER-9" in session.inner_text("#queue")


def test_blurred_by_default_reveal_on_hold_and_keyboard(session: Any, served: dict[str, Any]) -> None:
    session.goto(served["base"] + "/group/G0002", wait_until="networkidle")
    assert session.problems == []
    for k in range(3):
        f = _filter(session, k)
        assert "grayscale(1)" in f and "blur(12px)" in f, f
    # hold space: the selected item (the first) is revealed; let go: veiled again
    with session.expect_response(lambda r: "/reveal?" in r.url):
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
    _wait_selected(session, 1)  # (a poll may show the label before the decision's answer moves on)
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


def _veiled_jpeg(data: bytes, where: str) -> None:
    px = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
    assert np.abs(px[..., 0] - px[..., 2]).max() <= 2, where  # grayscale
    assert max(px.shape[:2]) <= 320, where  # a thumbnail, never the picture itself


def test_pixels_received_are_veiled_unless_revealed_and_known_never_sent(
    session: Any, served: dict[str, Any]
) -> None:
    """Every byte the server sends is kept (a route in front of the page): pages, the parts of the
    groups fetched ahead (their pictures inside), pictures fetched (a video's frame grid), reveals."""
    received: list[tuple[str, str, str, bytes]] = []  # method, URL, content type, body

    def keep(route: Any) -> None:
        resp = route.fetch(max_redirects=0)
        received.append(
            (route.request.method, route.request.url, resp.headers.get("content-type", ""), resp.body())
        )
        with contextlib.suppress(PlaywrightError):  # a background request in flight when the route was let go
            route.fulfill(response=resp)

    def reveal_first(group: str) -> None:
        assert session.url.endswith(f"/group/{group}")
        with session.expect_response(lambda r: "/reveal?" in r.url):
            session.keyboard.down("Space")
        session.wait_for_selector('.item[data-index="0"] img.revealed')
        session.keyboard.up("Space")
        session.wait_for_selector('.item[data-index="0"] img.veiled')

    session.route(served["base"] + "/**", keep)
    try:
        session.responses.clear()
        # pictures inside the page, a group swapped in (fetched ahead), the video's frame grid (a URL)
        session.goto(served["base"] + "/group/G0001", wait_until="networkidle")
        reveal_first("G0001")
        with session.expect_response(lambda r: "/next?part=1&after=G0002" in r.url):
            session.keyboard.press("n")
        reveal_first("G0002")
        session.goto(served["base"] + "/group/G0004", wait_until="networkidle")
        reveal_first("G0004")
        with session.expect_response(lambda r: "/next?part=1&after=G0005" in r.url):
            session.keyboard.press("n")
        reveal_first("G0005")
        session.wait_for_load_state("networkidle")
    finally:
        session.unroute(served["base"] + "/**", keep)
    assert all(r.url.startswith(("blob:", "data:", served["base"])) for r in session.responses)
    kinds: dict[str, int] = {"inline": 0, "fetched": 0, "reveal": 0}
    for method, url, ctype, body in received:
        assert b"known.jpg" not in body and "known" not in url  # known material: never named, never sent
        if ctype.startswith("text/html"):  # the pages and the parts of groups: their inline pictures
            for b64 in re.findall(rb"data:image/jpeg;base64,([A-Za-z0-9+/=]+)", body):
                _veiled_jpeg(base64.b64decode(b64), url)
                kinds["inline"] += 1
        elif ctype == "image/jpeg" and method == "POST":
            assert re.search(r"/item/G000[1245]/0/reveal\?full=0$", url), url  # only while a key was held
            kinds["reveal"] += 1
        elif ctype == "image/jpeg":
            assert "/veiled" in url
            _veiled_jpeg(body, url)
            kinds["fetched"] += 1
        else:
            assert not ctype.startswith("image/"), url
    # G0001 (2), G0002 (3, in the part fetched ahead), G0003 and G0005 (parts), loner G0006's part
    assert kinds["inline"] >= 2 + 3 + 1 and kinds["fetched"] >= 1 and kinds["reveal"] == 4, kinds
    assert "known.jpg" not in session.content()


def _wait_label(page: Any, index: int, starts: str) -> None:
    page.wait_for_function(
        f"document.querySelector('.item[data-index=\"{index}\"] .cat').textContent.startsWith({starts!r})"
    )


def _selected(page: Any) -> list[int]:
    return list(page.eval_on_selector_all(".item.selected", "els => els.map(e => +e.dataset.index)"))


def _wait_selected(page: Any, index: int) -> None:
    """Until file ``index`` alone is selected: a digit moves the selection on only when the server
    has answered, and the page's poll can show the category before that answer arrives."""
    page.wait_for_function(
        "i => (s => s.length === 1 && +s[0].dataset.index === i)"
        "(document.querySelectorAll('.item.selected'))",
        arg=index,
    )


def _standing(case_dir: Path, group: str) -> list[Any]:
    from opspoor.review.decisions import ReviewDB

    db = ReviewDB.for_case(case_dir)
    try:
        return db.standing([group])
    finally:
        db.close()


def test_every_key_works_without_a_mouse(session: Any, served: dict[str, Any]) -> None:
    """Every key of the key table (docs/review.md), pressed in Chromium, no mouse: the digits 0–5,
    Shift+digit, j/k, n/p (the next and previous group swapped into the same page), t, f, s, u,
    space (hold) and o, ? and Escape."""
    pg = session
    pg.goto(served["base"] + "/group/G0001", wait_until="networkidle")
    pg.evaluate("window.samePage = 'yes'")  # gone if a key loads a new page instead of swapping
    # j / k: next and previous file, bounded at both ends
    assert _selected(pg) == [0]
    pg.keyboard.press("j")
    assert _selected(pg) == [1]
    pg.keyboard.press("j")  # the last file stays selected
    assert _selected(pg) == [1]
    pg.keyboard.press("k")
    pg.keyboard.press("k")
    assert _selected(pg) == [0]
    # 0–5: each digit categorises the selected file (and selects the next file)
    for digit in "012345":
        pg.keyboard.press("k")
        pg.keyboard.press(digit)
        _wait_label(pg, 0, f"CAT-{digit}")
        _wait_selected(pg, 1)
        assert _selected(pg) == [1]
    assert _label(pg, 1) == "not categorised"
    # t: a tag typed into the prompt; f: the follow-up tag (both on the selected file)
    pg.once("dialog", lambda d: d.accept("blue-room"))
    pg.keyboard.press("t")
    pg.wait_for_function(
        "document.querySelector('.item[data-index=\"1\"] .tags').textContent === '#blue-room'"
    )
    pg.keyboard.press("f")
    pg.wait_for_function(
        "document.querySelector('.item[data-index=\"1\"] .tags').textContent === '#blue-room #follow-up'"
    )
    # s: a series name for the whole group; u takes it back (the latest decision of this reviewer)
    pg.once("dialog", lambda d: d.accept("Series Blue"))
    with pg.expect_response(lambda r: r.url.endswith("/api/decide")):
        pg.keyboard.press("s")
    assert [d.series for d in _standing(served["dir"], "G0001") if d.series] == ["Series Blue"]
    with pg.expect_response(lambda r: r.url.endswith("/api/undo")):
        pg.keyboard.press("u")
    assert [d.series for d in _standing(served["dir"], "G0001") if d.series] == []
    # o: full size for reveals (the 640 px picture itself, not the 512 px view); o again: off
    for full, width in (("on", 640), ("off", 512)):
        pg.keyboard.press("o")
        assert pg.inner_text("#fullsize") == full
        with pg.expect_response(lambda r: "/reveal?" in r.url) as resp:
            pg.keyboard.down("Space")
        assert f"full={int(full == 'on')}" in resp.value.url
        pg.wait_for_selector('.item[data-index="1"] img.revealed')
        # complete: the revealed picture itself is decoded (until then the previous one is current)
        pg.wait_for_function(
            "(i => i.complete && i.naturalWidth > 320)(document.querySelector('.item[data-index=\"1\"] img'))"
        )
        assert pg.eval_on_selector('.item[data-index="1"] img', "el => el.naturalWidth") == width
        pg.keyboard.up("Space")
        pg.wait_for_selector('.item[data-index="1"] img.veiled')
    pg.keyboard.press("o")
    pg.keyboard.press("o")
    assert pg.inner_text("#fullsize") == "off"
    # ? shows the keys, Escape or ? again hides them
    pg.keyboard.press("?")
    assert pg.is_visible("#help")
    pg.keyboard.press("Escape")
    assert not pg.is_visible("#help")
    pg.keyboard.press("?")
    pg.keyboard.press("?")
    assert not pg.is_visible("#help")
    # n / p: the next and the previous group, swapped into the same page, veiled, keys working there
    with pg.expect_navigation():
        pg.keyboard.press("n")
    assert pg.url.endswith("/group/G0002") and "Group G0002" in pg.inner_text("h1")
    assert pg.title().startswith("group G0002")
    assert pg.locator(".item").count() == 3 and _selected(pg) == [0]
    assert all("blur(12px)" in _filter(pg, k) for k in range(3))
    with pg.expect_response(lambda r: "/reveal?" in r.url) as resp:
        pg.keyboard.down("Space")
    assert "/item/G0002/0/reveal" in resp.value.url
    pg.wait_for_selector('.item[data-index="0"] img.revealed')
    pg.keyboard.up("Space")
    pg.wait_for_selector('.item[data-index="0"] img.veiled')
    with pg.expect_navigation():
        pg.keyboard.press("p")
    assert pg.url.endswith("/group/G0001") and "Group G0001" in pg.inner_text("h1")
    _wait_label(pg, 0, "CAT-5")  # its state read again: this reviewer's decisions stand
    # Shift+digit: the whole group, then the next group nobody has categorised
    with pg.expect_navigation():
        pg.keyboard.press("Shift+Digit4")
    here = pg.url.rsplit("/", 1)[1]
    state = pg.evaluate(f"fetch('/api/group/{here}/state').then(r => r.json())")
    assert here != "G0001" and None in [i["category"] for i in state["items"]]
    cats = {d.path: d.category for d in _standing(served["dir"], "G0001") if d.category}
    assert cats[None] is not None and cats[None].code == "4"  # the group decision (file 0 keeps CAT-5)
    # u after moving on: the group decision is undone and its group comes back
    with pg.expect_navigation():
        pg.keyboard.press("u")
    assert pg.url.endswith("/group/G0001")
    assert all(d.path is not None for d in _standing(served["dir"], "G0001") if d.category)
    assert pg.evaluate("window.samePage") == "yes"  # every move swapped a group in: no new page
    pg.reload(wait_until="networkidle")  # back / forward and a reload give the group's own page
    assert "Group G0001" in pg.inner_text("h1")
    assert pg.evaluate("window.samePage") is None
    pg.go_back(wait_until="load")  # the group before (Shift+digit's), its own page again
    pg.wait_for_function(f"document.querySelector('h1').textContent.startsWith('Group {here}')")
    assert pg.url.endswith(f"/group/{here}") and pg.locator(".item img.veiled").count() >= 1
    assert session.problems == []


def test_the_loop_from_keyboard_decisions_to_a_hash_set_to_a_rescan(
    session: Any, served: dict[str, Any], tmp_path: Path
) -> None:
    """Every group categorised in Chromium by keyboard alone (Shift+digit) goes into hash sets
    (`hashset from-case`), and another case holding the same material comes out known: nobody
    has to look at it again."""
    pg = session
    pg.goto(served["base"] + "/", wait_until="load")
    with pg.expect_navigation(url="**/queue", wait_until="load"):  # not the overview still on screen
        pg.click("header a[href$='/queue']")
    groups = pg.eval_on_selector_all("#queue tr[data-group]", "rows => rows.map(r => r.dataset.group)")
    assert len(groups) == 6
    for group in groups:
        pg.goto(served["base"] + f"/group/{group}", wait_until="networkidle")
        with pg.expect_response(
            lambda r: r.url.endswith("/api/decide") and r.request.method == "POST"
        ) as resp:
            pg.keyboard.press("Shift+Digit2")
        assert resp.value.ok
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = subprocess.run(
        [sys.executable, "-m", "opspoor", "hashset", "from-case", str(served["dir"]), "--name", "loop"]
        + ["--db", served["db"]],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    from opspoor.casefile.scan import scan_case
    from opspoor.triage.config import ScanConfig

    again = tmp_path / "again"
    again.mkdir()
    for f in served["evidence"].iterdir():
        (again / f.name).write_bytes(f.read_bytes())
    sets = ["known", "loop"] + (["loop-ignorable"] if "loop-ignorable" in run.stdout else [])
    cfg = ScanConfig(
        sources=[again], hashsets=sets, case_dir=tmp_path / "case2", db_url=served["db"], workers=1
    )
    summary = scan_case(cfg).summary
    assert summary["by_status"].get("new", 0) == 0 and summary["groups"]["count"] == 0, summary["by_status"]
    assert summary["by_status"]["known"] >= 9  # the known picture and every reviewed file
