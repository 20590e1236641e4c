"""Team mode closes the loop too: two reviewers decide in the review app of ``opspoor serve`` (SQLite
and PostgreSQL), ``hashset from-case --published`` and the VICS export read the team's decisions
from the shared store, and a scan of another case finds the files known (docs/review.md)."""

from __future__ import annotations

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
from opspoor.hashsets.model import Category
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
def team(db_url: str, case: dict[str, Any]) -> Iterator[dict[str, Any]]:
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
        ):
            _, secrets[name] = create_token(store, role, "hotline", label=name)
        publish_case(case["dir"], store.engine, "case-1")
    app = mount_review(create_app(replace(SETTINGS, db=resolve_url(db_url))))
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
