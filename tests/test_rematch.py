"""``opspoor scan --rematch``: a finished case matched again against updated hash sets from the
signals it holds (the evidence is gone: nothing is read), the change said, nothing lost when it is
interrupted (docs/review.md, "Re-matching a case")."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from opspoor.casefile.rematch import rematch_case
from opspoor.cli import app as cli_app
from opspoor.cli.options import CommandLineError
from opspoor.errors import CaseError, OpspoorError
from opspoor.hashsets.model import Category, Entry
from opspoor.store import import_entries, open_store
from review_case import build_case


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_case(tmp_path_factory.mktemp("rematch"))


@pytest.fixture
def case(built: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """A copy of the case and its store, and no evidence at all: a re-match must not need it."""
    shutil.copytree(built["dir"], tmp_path / "case")
    shutil.copy(built["root"] / "store.sqlite", tmp_path / "store.sqlite")
    assert not (tmp_path / "dump").exists()
    return {"dir": tmp_path / "case", "db": f"sqlite:///{tmp_path / 'store.sqlite'}"}


def _statuses(case_dir: Path) -> dict[str, tuple[str, Any]]:
    con = sqlite3.connect(case_dir / "case.sqlite")
    try:
        return {
            p: (s, json.loads(r).get("group"))
            for p, s, r in con.execute("SELECT path, status, record FROM files")
        }
    finally:
        con.close()


def _record(case_dir: Path, name: str) -> dict[str, Any]:
    for line in (case_dir / "files.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["path"].endswith(name):
            return rec
    raise AssertionError(name)


def _add_to_set(db: str, name: str, rec: dict[str, Any], code: str = "2") -> None:
    entry = Entry({"md5": rec["md5"], "pdq": rec["pdq"]}, Category("us-cat", code), external_id="X-1")
    with open_store(db) as store:
        import_entries(store, name, [entry], kind="known")


def test_a_file_added_to_a_set_is_known_after_a_rematch_without_the_evidence(case: dict[str, Any]) -> None:
    loner = _record(case["dir"], "loner_1.jpg")
    assert loner["status"] == "new" and loner["group"]
    groups_before = json.loads((case["dir"] / "summary.json").read_text())["groups"]["count"]
    _add_to_set(case["db"], "extra", loner)
    args = ["scan", "--rematch", "--case", str(case["dir"]), "--hashset", "known", "--hashset", "extra"]
    result = CliRunner().invoke(cli_app, [*args, "--db", case["db"]])
    assert result.exit_code == 0, result.output
    assert "(no file read)" in result.output
    assert "newly known: 1 (extra us-cat:2: 1)" in result.output
    assert "no longer known: 0" in result.output
    assert f"new groups for review: {groups_before - 1} (before: {groups_before})" in result.output
    # the case and every output say so
    after = _record(case["dir"], "loner_1.jpg")
    assert after["status"] == "known" and after["group"] is None
    assert any(m["hashset"] == "extra" for m in after["matches"])
    summary = json.loads((case["dir"] / "summary.json").read_text())
    assert (
        summary["by_hashset"] == {"known": 1, "extra": 1} and summary["groups"]["count"] == groups_before - 1
    )
    assert summary["hashsets"] == ["known", "extra"]
    changes = json.loads((case["dir"] / "rematch.json").read_text())
    assert len(changes) == 1 and changes[0]["files_read"] == 0
    assert changes[0]["newly_known"]["files"] == [loner["path"]]
    assert changes[0]["newly_known"]["by_set"] == [{"hashset": "extra", "category": "us-cat:2", "files": 1}]
    assert "extra" in (case["dir"] / "report.html").read_text()
    vics = json.loads((case["dir"] / "export-vics.json").read_text())
    cats = {m["MD5"].lower(): m["Category"] for m in vics["value"][0]["Media"]}
    assert cats[loner["md5"]] == 2
    groups = {g for s, g in _statuses(case["dir"]).values() if s == "new"}
    assert len(groups) == groups_before - 1 and None not in groups
    # again: nothing changes, and rematch.json keeps both runs
    result = CliRunner().invoke(cli_app, [*args, "--db", case["db"]])
    assert result.exit_code == 0 and "newly known: 0" in result.output, result.output
    assert len(json.loads((case["dir"] / "rematch.json").read_text())) == 2


def test_files_no_longer_known_and_the_case_sets_by_default(case: dict[str, Any]) -> None:
    known = _record(case["dir"], "known.jpg")
    assert known["status"] == "known"
    _add_to_set(case["db"], "other", _record(case["dir"], "loner_0.jpg"))
    result = rematch_case(case["dir"], ["other"], db_url=case["db"])
    assert result.changes["no_longer_known"]["files"] == [known["path"]]
    assert _record(case["dir"], "known.jpg")["status"] == "new"
    # without --hashset: the sets the case is now of (``other``), matched as they are now
    _add_to_set(case["db"], "other", known, code="1")
    result = CliRunner().invoke(
        cli_app, ["scan", "--rematch", "--case", str(case["dir"]), "--db", case["db"]]
    )
    assert result.exit_code == 0, result.output
    assert "against other" in result.output and "newly known: 1 (other us-cat:1: 1)" in result.output


def test_an_interrupted_rematch_changes_nothing_and_runs_again(
    case: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import opspoor.triage.rematch as rematch_mod

    _add_to_set(case["db"], "extra", _record(case["dir"], "loner_1.jpg"))
    before = _statuses(case["dir"])
    real = rematch_mod.assign_groups

    def cut(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)  # verdicts and groups written inside the transaction, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(rematch_mod, "assign_groups", cut)
    with pytest.raises(KeyboardInterrupt):
        rematch_case(case["dir"], ["known", "extra"], db_url=case["db"])
    assert _statuses(case["dir"]) == before
    assert not (case["dir"] / "rematch.json").exists()
    monkeypatch.setattr(rematch_mod, "assign_groups", real)
    result = rematch_case(case["dir"], ["known", "extra"], db_url=case["db"])
    assert result.changes["newly_known"]["count"] == 1


def test_a_wrong_set_or_an_unfinished_scan_is_one_line_and_changes_nothing(case: dict[str, Any]) -> None:
    before = _statuses(case["dir"])
    result = CliRunner().invoke(
        cli_app, ["scan", "--rematch", "--case", str(case["dir"]), "--hashset", "nope", "--db", case["db"]]
    )
    assert result.exit_code != 0 and isinstance(result.exception, OpspoorError), result.output
    assert _statuses(case["dir"]) == before
    result = CliRunner().invoke(cli_app, ["scan", "src", "--rematch", "--case", str(case["dir"])])
    assert isinstance(result.exception, CommandLineError) and "give no SOURCE" in str(result.exception)
    con = sqlite3.connect(case["dir"] / "case.sqlite")
    con.execute("DELETE FROM meta WHERE key = 'files_in'")
    con.commit()
    con.close()
    with pytest.raises(CaseError, match="has not finished"):
        rematch_case(case["dir"], db_url=case["db"])
    result = CliRunner().invoke(cli_app, ["scan", "--hashset", "known", "--case", str(case["dir"])])
    assert isinstance(result.exception, CommandLineError) and str(result.exception).startswith(
        "SOURCE: missing"
    )


def test_the_rematch_button_keeps_group_ids_and_decisions(case: dict[str, Any]) -> None:
    from fastapi.testclient import TestClient

    from opspoor.review.caseview import CaseView
    from opspoor.review.decisions import ReviewDB
    from opspoor.review.web import ReviewConfig, create_review_app

    view = CaseView(case["dir"])
    series = next(g for g in view.groups if any("series_" in p for p in g.paths))
    loner = next(g for g in view.groups if g.paths == ("dump/loner_1.jpg",))
    ids_before = {g.id: g.paths for g in view.groups}
    view.close()
    db = ReviewDB.for_case(case["dir"])
    db.decide("alice", series.id, None, Category("us-cat", "3"), members=series.paths)
    db.close()
    _add_to_set(case["db"], "extra", _record(case["dir"], "loner_1.jpg"))
    cfg = ReviewConfig(
        case_dir=case["dir"],
        reviewer="alice",
        db_url=case["db"],
        rematch=lambda: rematch_case(case["dir"], ["known", "extra"], db_url=case["db"]).changes,
    )
    client = TestClient(create_review_app(cfg), base_url="http://127.0.0.1")
    client.get(f"/?token={cfg.secret}")
    assert 'action="/curate/rematch"' in client.get("/curate").text
    r = client.post("/curate/rematch", data={})  # the page's button (a form)
    assert r.status_code == 200 and "1 newly known" in r.text and "extra us-cat:2: 1" in r.text, r.text
    # the app shows the case as it is now; every other group kept its id, so decisions still apply
    ids_after = {g.id: g.paths for g in client.app.state.view.groups}  # type: ignore[attr-defined]
    assert ids_after == {k: v for k, v in ids_before.items() if k != loner.id}
    assert loner.id not in client.get("/queue").text
    assert client.get(f"/group/{loner.id}").status_code == 404
    state = client.get(f"/api/group/{series.id}/state").json()
    assert {it["category"] for it in state["items"]} == {"us-cat:3"}
    # the curator's from-case button on a workstation writes to the store of --db
    done = client.post("/curate/from-case", data={"name": "reviewed"})
    assert done.status_code == 200 and "reviewed: 3 entries added" in done.text, done.text
    actions = [r["action"] for r in client.app.state.review.audit_trail()]  # type: ignore[attr-defined]
    assert "rematch" in actions and "from-case" in actions
    client.app.state.view.close()  # type: ignore[attr-defined]
    client.app.state.review.close()  # type: ignore[attr-defined]


def test_regrouped_groups_keep_the_ids_most_of_their_members_had() -> None:
    from opspoor.triage.priority import Group
    from opspoor.triage.summary import keep_group_ids

    def g(gid: str, rank: int, *paths: str) -> Group:
        return Group(id=gid, rank=rank, members=[{"path": p} for p in paths])

    # before: G01 {a, b}, G02 {c}, G03 {d, e, f}; a and c became known, x came back as new
    earlier = {"a": "G01", "b": "G01", "c": "G02", "d": "G03", "e": "G03", "f": "G03"}
    groups = [g("G01", 1, "d", "e", "f"), g("G02", 2, "b"), g("G03", 3, "x"), g("G04", 4, "y", "d2")]
    keep_group_ids(groups, earlier)
    assert [(x.id, x.rank) for x in groups] == [("G03", 1), ("G01", 2), ("G04", 3), ("G05", 4)]
