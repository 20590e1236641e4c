"""``opspoor review CASE --allow-known`` in Debian's Chromium: the known-items page shows no
picture until a button is held; holding it reveals that one known file (at most 512 px), letting
go hides it, and each reveal is a ``reveal-known`` row of the case's review audit."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from opspoor.review.decisions import ReviewDB
from review_case import build_case, serve_review
from test_report import browser  # noqa: F401  (the report tests' Chromium fixture, reused)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    case = build_case(tmp_path_factory.mktemp("review-known"))
    with serve_review(case["dir"], "--allow-known") as run:
        yield {**case, **run}


def _end_beacon(response: Any) -> bool:
    return bool(re.search(r"/api/reveal/\d+/end$", response.url))


def test_a_known_item_is_revealed_only_while_held_and_audited(browser: Any, served: dict[str, Any]) -> None:  # noqa: F811
    ctx = browser.new_context(viewport={"width": 1000, "height": 800})
    pg = ctx.new_page()
    images: list[str] = []
    pg.on(
        "response",
        lambda r: images.append(r.url) if "image/" in (r.headers.get("content-type") or "") else None,
    )
    pg.goto(served["url"], wait_until="load")
    pg.click("#known-link")
    pg.wait_for_url(served["base"] + "/known")
    img = pg.locator("#known-items .item img").first
    assert img.get_attribute("src") is None and not img.is_visible()
    assert images == []  # nothing of a known file came by itself
    button = pg.locator("#known-items button.reveal").first
    box = button.bounding_box()
    assert box is not None
    pg.mouse.move(box["x"] + 5, box["y"] + 5)
    pg.mouse.down()
    img.wait_for(state="visible")
    width = pg.evaluate("document.querySelector('#known-items .item img').naturalWidth")
    assert 0 < width <= 512
    with pg.expect_response(_end_beacon):  # (answered, so that the reveal's row is complete)
        pg.mouse.up()
    img.wait_for(state="hidden")
    assert img.get_attribute("src") is None
    # the keyboard: space held on the focused button, then let go
    button.focus()
    pg.keyboard.down(" ")
    img.wait_for(state="visible")
    with pg.expect_response(_end_beacon):
        pg.keyboard.up(" ")
    img.wait_for(state="hidden")
    ctx.close()
    # only the two held reveals fetched pixels from the server (the blob: URLs are their display)
    fetched = [u.removeprefix(served["base"]) for u in images if u.startswith("http")]
    assert fetched == ["/known/0/reveal", "/known/0/reveal"]
    review = ReviewDB.for_case(served["dir"])
    rows = [r for r in review.audit_trail() if r["action"] == "reveal-known"]
    review.close()
    assert len(rows) == 2 and all(
        r["reviewer"] == "alice" and r["target"].endswith("known.jpg") for r in rows
    )
    assert json.loads(rows[0]["detail"])["matched"]["entry"] == "K-1"
