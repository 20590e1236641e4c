"""Team mode closes the loop too: two reviewers decide in the review app of ``opspoor serve`` (SQLite
and PostgreSQL), ``hashset from-case --published`` and the VICS export read the team's decisions
from the shared store, and a scan of another case finds the files known (docs/review.md)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from opspoor.casefile.scan import scan_case
from opspoor.cli import app as cli_app
from opspoor.hashsets.model import Category, Entry
from opspoor.review.shared import open_published, publish_case
from opspoor.review.team import mount_review
from opspoor.review.tohashset import entries_from_case
from opspoor.service.app import create_app
from opspoor.service.settings import Settings
from opspoor.store import import_entries, iter_entries, open_store
from opspoor.store.db import resolve_url
from opspoor.store.tokens import create_token
from opspoor.triage.config import ScanConfig
from review_case import build_case

SETTINGS = Settings(poll_seconds=0.1, audit_flush_seconds=0.02, token_cache_seconds=0.3, rate_per_second=0)


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_case(tmp_path_factory.mktemp("teamloop"))


@pytest.fixture
def settings() -> Settings:
    return SETTINGS


@pytest.fixture
def team(db_url: str, case: dict[str, Any], settings: Settings) -> Iterator[dict[str, Any]]:
    """The case published to ``db_url`` (which also holds the ``known`` set), and the service."""
    secrets: dict[str, str] = {}
    with open_store(db_url) as store:
        if db_url != case["db"]:  # the team's store holds the sets the case was scanned with
            with open_store(case["db"]) as local:
                entries = list(iter_entries(local, "known"))
            import_entries(store, "known", entries, kind="known")
        for name, role in (
            ("alice", "reviewer"),
            ("bob", "reviewer"),
            ("cur", "curator"),
            ("ann", "analyst"),
            ("adm", "admin"),
        ):
            _, secrets[name] = create_token(store, role, "hotline", label=name)
        publish_case(case["dir"], store.engine, "case-1")
    s = replace(settings, db=resolve_url(db_url))
    app = mount_review(create_app(s), s)
    with TestClient(app) as client:
        yield {"client": client, "app": app, "secrets": secrets, "db": db_url}


def signed_in(team: dict[str, Any], who: str) -> TestClient:
    c = TestClient(team["app"])
    r = c.post("/review/login", data={"token": team["secrets"][who]}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/review/", r.headers
    return c


def decide_every_group(team: dict[str, Any]) -> dict[str, Any]:
    """Alice and Bob share the groups (CAT-5 for the loners, CAT-3 for the rest); Bob then puts one
    file of Alice's series group at CAT-4: his later decision is the case's, hers stays visible."""
    alice, bob = signed_in(team, "alice"), signed_in(team, "bob")
    with open_store(team["db"]) as store:
        view, _ = open_published(store.engine, "case-1")
    series = next(g for g in view.groups if any("series_" in p for p in g.paths))
    for k, g in enumerate(view.groups):
        who = alice if g is series or k % 2 else bob
        key = "5" if "loner" in g.paths[0] else "3"
        r = who.post("/review/c/case-1/api/decide", json={"group": g.id, "item": None, "key": key})
        assert r.status_code == 200, r.text
    r = bob.post("/review/c/case-1/api/decide", json={"group": series.id, "item": 0, "key": "4"})
    assert r.status_code == 200 and set(r.json()["items"][0]["by"].values()) == {"us-cat:3", "us-cat:4"}
    return {"series": series, "groups": view.groups}


def test_from_case_reads_the_teams_decisions_and_a_rescan_finds_them_known(
    team: dict[str, Any], case: dict[str, Any], tmp_path: Path
) -> None:
    decided = decide_every_group(team)
    db = team["db"]
    # the case folder's own review.sqlite knows nothing of the team's decisions
    local = CliRunner().invoke(cli_app, ["hashset", "from-case", str(case["dir"]), "--name", "x", "--db", db])
    assert local.exit_code == 1 and "nothing categorised" in local.output
    with open_store(db) as store:
        view, review = open_published(store.engine, "case-1")
        found = entries_from_case(view, review)
    by_name = {e.external_id.rsplit("/", 1)[1]: e for e in found.known}
    assert by_name["series_0.jpg"].category == Category("us-cat", "4")  # Bob's, the later
    assert by_name["series_1.jpg"].category == Category("us-cat", "3")
    reviewers = {t for e in found.known + found.ignorable for t in e.tags if t.startswith("reviewed-by:")}
    assert len(reviewers) == 2  # both reviewers' decisions went in
    result = CliRunner().invoke(
        cli_app, ["hashset", "from-case", "case-1", "--published", "--name", "reviewed", "--db", db]
    )
    assert result.exit_code == 0, result.output
    assert (
        "reviewed: 7 entries added" in result.output
        and "reviewed-ignorable: 2 entries added" in result.output
    )
    # the VICS export of the published case carries them too
    out = tmp_path / "team.vics.json"
    res = CliRunner().invoke(
        cli_app, ["review", "case-1", "--published", "--export-vics", str(out), "--db", db]
    )
    assert res.exit_code == 0, res.output
    from opspoor.hashsets.formats import read_entries

    cats = {e.extra["files"][0]["FileName"]: e.category for e in read_entries(out, "vics2")}
    assert cats["series_0.jpg"] == Category("us-cat", "4") and cats["loner_0.jpg"] == Category("us-cat", "5")
    # another case holding the same material: found known, nobody has to look again
    again = tmp_path / "again" / "dump"
    shutil.copytree(case["evidence"], again)
    cfg = ScanConfig(
        sources=[again],
        hashsets=["known", "reviewed", "reviewed-ignorable"],
        case_dir=tmp_path / "case2",
        db_url=db,
        workers=1,
    )
    summary = scan_case(cfg).summary
    assert summary["by_status"]["new"] == 0 and summary["groups"]["count"] == 0
    assert summary["by_status"]["known"] == 1 + 7 and summary["by_status"]["ignorable"] == 2
    assert len({p for g in decided["groups"] for p in g.paths}) == 9


def test_published_needs_a_published_case(team: dict[str, Any], tmp_path: Path) -> None:
    res = CliRunner().invoke(
        cli_app, ["hashset", "from-case", "nope", "--published", "--name", "r", "--db", team["db"]]
    )
    assert res.exit_code != 0 and "no such published case" in str(res.exception)
    res = CliRunner().invoke(cli_app, ["review", "case-1", "--published"])
    assert res.exit_code != 0 and "opspoor serve" in str(res.exception)


def _reveal(client: TestClient, group: str, item: int) -> None:
    r = client.post(f"/review/c/case-1/item/{group}/{item}/reveal")
    assert r.status_code == 200, r.text
    assert (
        client.post(f"/review/c/case-1/api/reveal/{r.headers['x-reveal-id']}/end", json={}).status_code == 200
    )


def test_the_team_exposure_page_shows_views_needed_and_only_my_own_today(team: dict[str, Any]) -> None:
    alice, bob = signed_in(team, "alice"), signed_in(team, "bob")
    _reveal(alice, "G0002", 0)
    _reveal(alice, "G0002", 0)  # the same item again: still one view needed
    _reveal(bob, "G0002", 1)
    exp = alice.get("/review/c/case-1/api/exposure").json()
    media = exp["media_files"]
    assert media == 10 and exp["files_revealed"] == 2 and exp["reveals"] == 3 and exp["reviewers"] == 2
    assert exp["views_needed_per_media_file"] == round(2 / media, 4)
    assert exp["today"]["reveals"] == 3
    assert exp["mine_today"]["reveals"] == 2 and exp["mine_today"]["break"] is False
    assert bob.get("/review/c/case-1/api/exposure").json()["mine_today"]["reveals"] == 1
    page = alice.get("/review/c/case-1/exposure").text
    assert f'<td id="team-views-ratio">{2 / media:.3f}</td>' in page
    assert '<td id="my-reveals">2</td>' in page and 'id="break"' not in page
    assert "20.0 min a day" in page
    # the analyst reads the team's figures too (and has no reveals of their own)
    ann = signed_in(team, "ann").get("/review/c/case-1/api/exposure").json()
    assert ann["files_revealed"] == 2 and ann["mine_today"]["reveals"] == 0


@pytest.mark.parametrize("settings", [replace(SETTINGS, review_break_minutes=0.0)])
def test_a_break_is_suggested_in_team_mode_after_the_time_set(team: dict[str, Any]) -> None:
    alice, bob = signed_in(team, "alice"), signed_in(team, "bob")
    _reveal(alice, "G0002", 0)
    assert 'id="break"' in alice.get("/review/c/case-1/exposure").text
    assert 'id="break"' in alice.get("/review/c/case-1/").text
    assert alice.get("/review/c/case-1/api/group/G0002/state").json()["exposure"]["break"] is True
    assert 'id="break"' not in bob.get("/review/c/case-1/exposure").text  # bob revealed nothing


def test_the_curators_from_case_button_is_role_checked_and_audited(team: dict[str, Any]) -> None:
    decide_every_group(team)
    cur, alice, ann = signed_in(team, "cur"), signed_in(team, "alice"), signed_in(team, "ann")
    page = cur.get("/review/c/case-1/curate").text
    assert (
        'action="/review/c/case-1/curate/from-case"' in page
        and 'action="/review/c/case-1/curate/rematch"' in page
    )
    assert 'href="/review/c/case-1/curate"' in cur.get("/review/c/case-1/").text
    assert 'href="/review/c/case-1/curate"' not in alice.get("/review/c/case-1/").text
    for who in (alice, ann):  # a reviewer and an analyst may not
        refused = who.post("/review/c/case-1/curate/from-case", data={"name": "reviewed"})
        assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
        assert "curator" in refused.json()["detail"]
    # nor may a curator decide
    assert (
        cur.post("/review/c/case-1/api/decide", json={"group": "G0001", "item": None, "key": "1"}).status_code
        == 403
    )
    done = cur.post("/review/c/case-1/curate/from-case", data={"name": "reviewed"})
    assert done.status_code == 200, done.text
    assert "reviewed: 7 entries added" in done.text and "reviewed-ignorable: 2 entries added" in done.text
    again = cur.post("/review/c/case-1/curate/from-case", json={"name": "reviewed"})
    assert again.json()["sets"]["reviewed"] == {"added": 0, "already_there": 7}
    assert cur.post("/review/c/case-1/curate/from-case", json={"name": ""}).status_code == 400
    with open_store(team["db"]) as store:
        assert {e.category for e in iter_entries(store, "reviewed")} >= {Category("us-cat", "3")}
        _, review = open_published(store.engine, "case-1")
        trail = [r for r in review.audit_trail() if r["action"] == "from-case"]
    assert (
        len(trail) == 2 and trail[0]["target"] == "reviewed" and trail[0]["reviewer"].startswith("hotline/")
    )
    admin = {"Authorization": f"Bearer {team['secrets']['adm']}"}
    rows = team["client"].get("/v1/audit", headers=admin, params={"limit": 1000}).json()["rows"]
    found = {(r["action"], r["result"]) for r in rows}
    assert ("review.from-case", "ok") in found and ("review.from-case", "denied") in found


def test_the_curator_matches_a_published_case_again_in_the_store(team: dict[str, Any]) -> None:
    from sqlalchemy import select

    from opspoor.review.shared import case_files

    cur, alice = signed_in(team, "cur"), signed_in(team, "alice")
    with open_store(team["db"]) as store:
        view, _ = open_published(store.engine, "case-1")
        with store.engine.connect() as conn:
            rows = {
                r.path: r for r in conn.execute(select(case_files).where(case_files.c.case_id == "case-1"))
            }
    assert json.loads(rows["dump/series_0.jpg"].query)["pdq_variants"]  # published to match again
    loner = next(g for g in view.groups if g.paths == ("dump/loner_1.jpg",))
    series = next(g for g in view.groups if any("series_" in p for p in g.paths))
    ids_before = {g.id for g in view.groups}
    r = alice.post("/review/c/case-1/api/decide", json={"group": series.id, "item": None, "key": "3"})
    assert r.status_code == 200
    # the loner becomes known: a curator of the team adds it to the set the case was matched with
    rec = json.loads(rows["dump/loner_1.jpg"].record)
    entry = Entry({"md5": rec["md5"], "pdq": rec["pdq"]}, Category("us-cat", "2"), external_id="T-1")
    with open_store(team["db"]) as store:
        import_entries(store, "known", [entry], kind="known")
    assert alice.post("/review/c/case-1/curate/rematch", json={}).status_code == 403  # curators only
    done = cur.post("/review/c/case-1/curate/rematch", json={})
    assert done.status_code == 200, done.text
    changes = done.json()["changes"]
    assert changes["newly_known"]["files"] == ["dump/loner_1.jpg"]
    assert changes["newly_known"]["by_set"] == [{"hashset": "known", "category": "us-cat:2", "files": 1}]
    assert changes["files_read"] == 0 and changes["without_picture"] == []
    # every worker's app sees it; the loner's group is gone, its pictures too; decisions stay
    assert loner.id not in alice.get("/review/c/case-1/queue").text
    assert alice.get(f"/review/c/case-1/group/{loner.id}").status_code == 404
    state = alice.get(f"/review/c/case-1/api/group/{series.id}/state").json()
    assert {it["category"] for it in state["items"]} == {"us-cat:3"}
    with open_store(team["db"]) as store:
        view, _ = open_published(store.engine, "case-1")
        with store.engine.connect() as conn:
            gone = conn.execute(
                select(case_files.c.veiled, case_files.c.revealed).where(
                    case_files.c.path == "dump/loner_1.jpg"
                )
            ).one()
    assert gone == (None, None) and {g.id for g in view.groups} == ids_before - {loner.id}
    assert view.records["dump/loner_1.jpg"]["status"] == "known"
    assert {k.entry for k in view.known_counts()} == {"K-1", "T-1"}  # counted, never shown
    admin = {"Authorization": f"Bearer {team['secrets']['adm']}"}
    rows_ = team["client"].get("/v1/audit", headers=admin, params={"limit": 1000}).json()["rows"]
    found = {(r["action"], r["result"]) for r in rows_}
    assert ("review.rematch", "ok") in found and ("review.rematch", "denied") in found
