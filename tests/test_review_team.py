"""Team mode of the review workspace: ``opspoor case publish`` into the shared store (SQLite and
PostgreSQL), and the review app inside the service behind its tokens (docs/review.md, "Team mode")."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select
from typer.testing import CliRunner

from opspoor.cli import app as cli_app
from opspoor.review.decisions import ReviewDB
from opspoor.review.shared import case_files, publish_case
from opspoor.review.team import COOKIE, mount_review
from opspoor.service.app import create_app
from opspoor.service.settings import Settings
from opspoor.store import open_store
from opspoor.store.db import resolve_url
from opspoor.store.tokens import create_token
from review_case import build_case

SETTINGS = Settings(poll_seconds=0.1, audit_flush_seconds=0.02, token_cache_seconds=0.3, rate_per_second=0)
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_case(tmp_path_factory.mktemp("team"))


@pytest.fixture
def team(db_url: str, case: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A published case and the service with the review app, tokens of every role."""
    secrets: dict[str, str] = {}
    with open_store(db_url) as store:
        for name, role in (("alice", "reviewer"), ("bob", "reviewer"), ("ann", "analyst"), ("adm", "admin")):
            _, secrets[name] = create_token(store, role, "hotline", label=name)
        published = publish_case(case["dir"], store.engine, "case-1")
    app = mount_review(create_app(replace(SETTINGS, db=resolve_url(db_url))))
    with TestClient(app) as client:
        yield {"client": client, "app": app, "secrets": secrets, "published": published, "db": db_url}


def _as(team: dict[str, Any], who: str) -> TestClient:
    """A second client on the same app, signed in through the login page (the token into the cookie)."""
    c = TestClient(team["app"])  # the lifespan (the service) is the main client's
    r = c.post("/review/login", data={"token": team["secrets"][who]}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/review/"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/review" in cookie
    return c


def _image(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


def test_publish_puts_groups_and_veiled_pictures_in_the_store_and_keeps_decisions(
    db_url: str, case: dict[str, Any]
) -> None:
    with open_store(db_url) as store:
        done = publish_case(case["dir"], store.engine, "case-p")
        assert (done.groups, done.missing) == (6, ())
        members = done.pictures
        with store.engine.connect() as conn:
            rows = {
                r.path: r for r in conn.execute(select(case_files).where(case_files.c.case_id == "case-p"))
            }
        # every file's record, but pictures only of the new groups' members: known material has none
        assert len(rows) == done.files and members == sum(1 for r in rows.values() if r.veiled)
        known = [p for p, r in rows.items() if json.loads(r.record)["status"] == "known"]
        assert known and all(rows[p].veiled is None and rows[p].revealed is None for p in known)
        series = rows["dump/series_0.jpg"]
        v = _image(series.veiled)
        assert np.abs(v[..., 0] - v[..., 2]).max() <= 2 and max(v.shape[:2]) <= 320  # grayscale
        assert max(_image(series.revealed).shape[:2]) == 512  # limited, like the local reveal
        review = ReviewDB(store.engine, "case-p", create=False)
        review.decide("x", "G0001", None, None, tags=["kept"])
        again = publish_case(case["dir"], store.engine, "case-p")  # re-publish: decisions stay
        assert again.groups == 6 and [d.tags for d in review.standing()] == [("kept",)]


def test_publish_command_and_a_store_without_the_tables(tmp_path: Path, case: dict[str, Any]) -> None:
    db = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    res = CliRunner().invoke(cli_app, ["case", "publish", str(case["dir"]), "--db", db])
    assert res.exit_code == 0, res.output
    assert "published case" in res.output and "6 groups" in res.output
    from sqlalchemy import create_engine

    bare = create_engine(f"sqlite:///{tmp_path / 'bare.sqlite'}")
    from opspoor.errors import CaseError

    with pytest.raises(CaseError, match="opspoor db upgrade"):
        publish_case(case["dir"], bare, "x")


def test_tokens_gate_the_review_app(team: dict[str, Any]) -> None:
    c: TestClient = team["client"]
    r = c.get("/review/", follow_redirects=False)  # a browser without a token: the login page
    assert r.status_code == 303 and r.headers["location"] == "/review/login"
    assert "Sign in" in c.get("/review/login").text
    api = c.get("/review/c/case-1/api/group/G0001/state")
    assert api.status_code == 401 and api.headers["content-type"] == PROBLEM
    bad = c.post("/review/login", data={"token": "ops_wrong"}, follow_redirects=False)
    assert bad.headers["location"].endswith("failed=1") and COOKIE not in bad.headers.get("set-cookie", "")
    admin = c.post("/review/login", data={"token": team["secrets"]["adm"]}, follow_redirects=False)
    assert admin.headers["location"].endswith("failed=2")  # admin is not a review role
    headers = {"Authorization": f"Bearer {team['secrets']['adm']}"}
    assert c.get("/review/c/case-1/", headers=headers).status_code == 403
    alice = _as(team, "alice")
    page = alice.get("/review/")
    assert page.status_code == 200 and "case-1" in page.text
    overview = alice.get("/review/c/case-1/")
    assert overview.status_code == 200 and 'href="/review/c/case-1/queue"' in overview.text
    assert alice.get("/review/c/no-such/").status_code == 404


def test_two_reviewers_get_different_groups_analyst_reads_only_and_decisions_are_shared(
    team: dict[str, Any],
) -> None:
    alice, bob, ann = _as(team, "alice"), _as(team, "bob"), _as(team, "ann")
    a = alice.get("/review/c/case-1/next?undecided=1", follow_redirects=False).headers["location"]
    b = bob.get("/review/c/case-1/next?undecided=1", follow_redirects=False).headers["location"]
    assert a.startswith("/review/c/case-1/group/") and b.startswith("/review/c/case-1/group/")
    assert a != b  # the claims give them different groups
    group_a = a.rsplit("/", 1)[1]
    page = alice.get(a).text
    assert '"base": "/review/c/case-1"' in page and "hotline/token-" in page
    # the analyst reads, but may not decide, undo or reveal: a 403 problem, and no row is written
    assert ann.get(a).status_code == 200
    for path, body in (("/api/decide", {"group": group_a, "item": 0, "key": "1"}), ("/api/undo", {})):
        refused = ann.post(f"/review/c/case-1{path}", json=body)
        assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
        assert "reviewer" in refused.json()["detail"]
    assert ann.post(f"/review/c/case-1/item/{group_a}/0/reveal").status_code == 403
    # an analyst's "next" takes no claim: bob's group is not taken from him
    ann.get("/review/c/case-1/next?undecided=1", follow_redirects=False)
    # alice decides; bob's very next poll sees it (each request reads the store)
    before = bob.get(f"/review/c/case-1/api/group/{group_a}/state").json()
    assert before["items"][0]["category"] is None
    d = alice.post("/review/c/case-1/api/decide", json={"group": group_a, "item": None, "key": "2"})
    assert d.status_code == 200, d.text
    seen = bob.get(f"/review/c/case-1/api/group/{group_a}/state").json()
    assert {it["category"] for it in seen["items"]} == {"us-cat:2"}
    assert all(list(it["by"]) == [next(iter(it["by"]))] for it in seen["items"])
    assert next(iter(seen["items"][0]["by"])).startswith("hotline/token-")
    # bob's open page asks for the state at most every 2 s (the same request as above)
    polls = re.findall(r"setInterval\(refresh, (\d+)\)", bob.get(f"/review/c/case-1/group/{group_a}").text)
    assert polls and int(polls[0]) <= 2000
    # the service's audit log has the review calls, the analyst's refusal among them
    admin = {"Authorization": f"Bearer {team['secrets']['adm']}"}
    rows = team["client"].get("/v1/audit", headers=admin, params={"limit": 1000}).json()
    found = {(r["action"], r["result"]) for r in rows["rows"]}
    assert ("review.decide", "ok") in found and ("review.decide", "denied") in found


def test_known_items_cannot_be_seen_in_team_mode(team: dict[str, Any]) -> None:
    """Known files' pixels never enter the shared store: the known-items page and its reveal are a
    403 problem for every role (a reviewer here), and the refusal is in the service's audit."""
    alice, ann = _as(team, "alice"), _as(team, "ann")
    for who in (alice, ann):
        for r in (who.get("/review/c/case-1/known"), who.post("/review/c/case-1/known/0/reveal")):
            assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
            assert "never enter the shared store" in r.json()["detail"] or "reviewer" in r.json()["detail"]
    r = alice.post("/review/c/case-1/known/0/reveal")
    assert "never enter the shared store" in r.json()["detail"]
    assert "/known" not in alice.get("/review/c/case-1/").text
    admin = {"Authorization": f"Bearer {team['secrets']['adm']}"}
    rows = team["client"].get("/v1/audit", headers=admin, params={"limit": 1000}).json()["rows"]
    assert any(r["action"] == "review.known" and r["result"] != "ok" for r in rows)
