"""The review workspace without a browser: the one-time secret, the queue and its reasons, veiled
pictures and recorded reveals, decisions (group, per file, undo, two reviewers), known material kept
out of every page, and the loop from decisions to a hash set to a rescan that finds the files known."""

from __future__ import annotations

import io
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from opspoor.casefile.scan import scan_case
from opspoor.cli import app as cli_app
from opspoor.hashsets.model import Category
from opspoor.review.decisions import ReviewDB, key_codes
from opspoor.review.web import COOKIE, ReviewConfig, create_review_app
from opspoor.store import open_store
from opspoor.triage.config import ScanConfig
from review_case import build_case, fresh_copy


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_case(tmp_path_factory.mktemp("review"))


@pytest.fixture
def fresh(tmp_path: Path, case: dict[str, Any]) -> Path:
    """A copy of the case folder, so decisions made by one test do not reach another."""
    return fresh_copy(case["dir"], tmp_path)


def _client(case_dir: Path, reviewer: str = "alice") -> tuple[TestClient, ReviewConfig]:
    cfg = ReviewConfig(case_dir=case_dir, reviewer=reviewer)
    client = TestClient(create_review_app(cfg), base_url="http://127.0.0.1")
    assert client.get(f"/?token={cfg.secret}", follow_redirects=False).status_code == 303
    return client, cfg


@pytest.fixture
def client(fresh: Path) -> Iterator[TestClient]:
    c, _ = _client(fresh)
    yield c
    c.app.state.view.close()  # type: ignore[attr-defined]
    c.app.state.review.close()  # type: ignore[attr-defined]


def _image(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


def test_secret_is_required_and_works_once(fresh: Path) -> None:
    cfg = ReviewConfig(case_dir=fresh, reviewer="alice")
    app = create_review_app(cfg)
    secret = cfg.secret
    c = TestClient(app, base_url="http://127.0.0.1")
    for path in ("/", "/queue", "/group/G0001", "/item/G0001/0/veiled", "/api/group/G0001/state"):
        assert c.get(path).status_code == 403, path
    assert c.post("/item/G0001/0/reveal").status_code == 403
    assert c.post("/api/decide", json={"group": "G0001", "item": 0, "key": "1"}).status_code == 403
    assert c.get("/?token=wrong", follow_redirects=False).status_code == 403
    r = c.get(f"/?token={secret}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert (
        "httponly" in r.headers["set-cookie"].lower() and "samesite=strict" in r.headers["set-cookie"].lower()
    )
    assert c.get("/").status_code == 200  # by the cookie now
    other = TestClient(app, base_url="http://127.0.0.1")
    assert other.get(f"/?token={secret}", follow_redirects=False).status_code == 403  # used once
    other.cookies.set(COOKIE, "made-up")
    assert other.get("/").status_code == 403
    # another host name (DNS rebinding) is refused even with the cookie
    assert c.get("/", headers={"host": "evil.example:80"}).status_code == 403


def test_queue_in_priority_order_with_reasons(client: TestClient) -> None:
    html = client.get("/queue").text
    order = [part.split('"')[0] for part in html.split('data-group="')[1:]]
    assert order == sorted(order) and len(order) == 6
    assert "location clue: camera serial SER-9" in html  # why ranked first
    assert "same camera body serial: SER-9" in html  # why together
    assert "near-duplicate images: 2 pairs within PDQ distance" in html
    assert html.index("SER-9") < html.index("near-duplicate images")


def test_veiled_is_grayscale_and_blurred_reveal_is_limited_and_recorded(
    client: TestClient, fresh: Path
) -> None:
    veiled = client.get("/item/G0002/0/veiled")
    assert veiled.status_code == 200
    v = _image(veiled.content)
    assert np.abs(v[..., 0] - v[..., 1]).max() <= 2 and np.abs(v[..., 1] - v[..., 2]).max() <= 2  # gray
    assert max(v.shape[:2]) <= 320
    r = client.post("/item/G0002/0/reveal")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    shown = _image(r.content)
    assert max(shown.shape[:2]) == 512  # an 800 x 600 picture, limited to 512 px
    assert np.abs(shown[..., 0] - shown[..., 2]).max() > 40  # in colour
    # blurred: far less fine detail than the reveal at the same size
    small = np.asarray(Image.fromarray(shown.astype(np.uint8)).convert("L").resize(v.shape[1::-1])).astype(
        float
    )
    assert (
        np.abs(np.diff(v[..., 0].astype(float), axis=1)).mean() < 0.5 * np.abs(np.diff(small, axis=1)).mean()
    )
    full = client.post("/item/G0002/0/reveal?full=1")
    assert max(_image(full.content).shape[:2]) == 800
    # the browser's own time counts when it is shorter (the picture took a while to arrive)
    assert (
        client.post(f"/api/reveal/{r.headers['x-reveal-id']}/end", json={"seconds": 0.0}).status_code == 200
    )
    db = ReviewDB.for_case(fresh)
    assert db.exposure()["by_reviewer"]["alice"]["seconds"] == 0.0
    client.post(f"/api/reveal/{full.headers['x-reveal-id']}/end", json={})  # else the server's
    exp = db.exposure()
    assert exp["reveals"] == 2 and exp["files"] == 1 and exp["by_reviewer"]["alice"]["seconds"] > 0
    actions = [(a["action"], a["target"]) for a in db.audit_trail()]
    assert ("reveal", "dump/series_0.jpg") in actions and ("reveal-full", "dump/series_0.jpg") in actions
    db.close()
    assert client.post("/item/G0002/9/reveal").status_code == 404  # no such item: a problem, not a 500


def test_video_is_a_frame_grid_and_archive_members_open(client: TestClient, case: dict[str, Any]) -> None:
    view = client.app.state.view  # type: ignore[attr-defined]
    video = next(g for g in view.groups if g.paths[0].endswith(".mp4"))
    grid = _image(client.post(f"/item/{video.id}/0/reveal").content)
    assert grid.shape[1] == 512 and grid.shape[0] == 2 * 128  # 4 columns of 128 px; 6 frames = 2 rows
    page = client.get(f"/group/{video.id}").text
    assert "<video" not in page and "frame grid" in page  # never a playable video, never autoplay
    zipped = next(g for g in view.groups if "!/" in g.paths[0])
    assert client.post(f"/item/{zipped.id}/0/reveal").status_code == 200
    assert client.get(f"/item/{zipped.id}/0/veiled").status_code == 200


def test_known_material_never_on_a_page(client: TestClient) -> None:
    pages = [client.get(p).text for p in ("/", "/queue")]
    pages += [client.get(f"/group/G000{k}").text for k in range(1, 7)]
    assert all("known.jpg" not in p for p in pages)
    overview = pages[0]
    assert "CAT-1 child abuse material" in overview and "K-1" in overview  # counted by category and entry
    # with the set, the entry, the signal that matched and its distance, and how many files
    row = overview.split('<table id="known">', 1)[1].split("</table>", 1)[0]
    cells = r"<td>known</td><td>K-1</td><td>(md5|sha1|sha256|pdq)</td><td>\d+</td><td>1</td>"
    assert re.search(cells, row), row


def test_known_items_are_refused_without_allow_known(client: TestClient) -> None:
    for r in (client.get("/known"), client.post("/known/0/reveal")):
        assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
        assert "--allow-known" in r.json()["detail"] and r.content.count(b"\xff\xd8") == 0
    assert 'href="/known"' not in client.get("/").text


def test_allow_known_reveals_one_known_item_on_purpose_and_audits_it(fresh: Path) -> None:
    cfg = ReviewConfig(case_dir=fresh, reviewer="alice", allow_known=True)
    client = TestClient(create_review_app(cfg), base_url="http://127.0.0.1")
    assert client.get(f"/?token={cfg.secret}", follow_redirects=False).status_code == 303
    assert 'href="/known"' in client.get("/").text
    page = client.get("/known")
    # the page names the match, shows no picture and no path: pixels only on a held reveal
    assert page.status_code == 200 and "K-1" in page.text and "known.jpg" not in page.text
    assert (
        "data:image" not in page.text and 'src="' not in page.text.split("<main>", 1)[1].split("<script")[0]
    )
    r = client.post("/known/0/reveal")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.headers["cache-control"] == "no-store"
    assert max(Image.open(io.BytesIO(r.content)).size) <= 512  # a new item's reveal limit
    rid = int(r.headers["x-reveal-id"])
    assert client.post(f"/api/reveal/{rid}/end", json={"seconds": 0.4}).status_code == 200
    assert client.post("/known/5/reveal").status_code == 404
    client.app.state.view.close()  # type: ignore[attr-defined]
    review = client.app.state.review  # type: ignore[attr-defined]
    rows = [row for row in review.audit_trail() if row["action"] == "reveal-known"]
    review.close()
    assert len(rows) == 1 and rows[0]["reviewer"] == "alice" and rows[0]["target"].endswith("known.jpg")
    matched = json.loads(rows[0]["detail"])["matched"]
    assert matched["entry"] == "K-1" and matched["hashset"] == "known" and rows[0]["at"] > 0


def test_group_decision_covers_members_file_overrides_undo_and_two_reviewers(fresh: Path) -> None:
    db = ReviewDB.for_case(fresh)
    members = {"G1": ("a", "b", "c")}
    db.decide("alice", "G1", None, Category("us-cat", "3"))
    db.decide("alice", "G1", "b", Category("us-cat", "5"))
    st = db.file_states(members)
    assert [st[p].category.code for p in "abc"] == ["3", "5", "3"]  # type: ignore[union-attr]
    db.decide("bob", "G1", "a", Category("us-cat", "4"), tags=["follow-up"])
    st = db.file_states(members)
    assert st["a"].by_reviewer == {"alice": "us-cat:3", "bob": "us-cat:4"}  # both stay visible
    assert st["a"].category == Category("us-cat", "4") and st["a"].decided_by == "bob"  # latest stands
    assert st["a"].tags == {"follow-up"}
    undone = db.undo_last("alice")
    assert undone is not None and undone.path == "b"
    assert db.file_states(members)["b"].category == Category("us-cat", "3")
    db.undo_last("alice")
    st = db.file_states(members)
    assert st["c"].category is None and st["a"].by_reviewer == {"bob": "us-cat:4"}
    trail = [a["action"] for a in db.audit_trail()]
    assert trail == ["decide", "decide", "decide", "undo", "undo"]  # nothing is deleted
    db.close()
    assert key_codes("uk") == {"1": "A", "2": "B", "3": "C"} and key_codes("us-cat")["0"] == "0"


def test_a_group_decision_covers_the_members_it_was_made_on(fresh: Path) -> None:
    """A rescan may group differently: a group decision covers the files it was made on, not newcomers."""
    db = ReviewDB.for_case(fresh)
    db.decide("alice", "G1", None, Category("us-cat", "3"), members=("a", "b"))
    st = db.file_states({"G1": ("a", "b", "c")})  # "c" joined G1 after a rescan
    assert st["a"].category == st["b"].category == Category("us-cat", "3") and st["c"].category is None
    db.close()


def test_decisions_through_the_app_and_bad_input(client: TestClient) -> None:
    r = client.post("/api/decide", json={"group": "G0002", "item": None, "key": "2"}).json()
    assert [i["category"] for i in r["items"]] == ["us-cat:2"] * 3
    r = client.post("/api/decide", json={"group": "G0002", "item": 1, "key": "5"}).json()
    assert [i["category"] for i in r["items"]] == ["us-cat:2", "us-cat:5", "us-cat:2"]
    r = client.post("/api/undo").json()
    assert r["undone"]["path"] == "dump/series_1.jpg" and r["items"][1]["category"] == "us-cat:2"
    for body in (
        {"group": "G0002", "item": 0, "key": "9"},
        {"group": "G9999", "item": 0, "key": "1"},
        {"group": "G0002", "item": 7, "key": "1"},
        {"group": "G0002", "item": 0},
    ):
        bad = client.post("/api/decide", json=body)
        assert bad.status_code == 400 and bad.json()["detail"], body
    assert client.post("/api/decide", content=b"not json").status_code == 400


def test_loop_decisions_to_hash_set_to_a_rescan_that_finds_them_known(
    fresh: Path, case: dict[str, Any], tmp_path: Path
) -> None:
    client, _ = _client(fresh)
    view = client.app.state.view  # type: ignore[attr-defined]
    new_paths = {p for g in view.groups for p in g.paths}
    for g in view.groups:  # Shift+digit on every group: CAT-5 for the loners, CAT-3 for the rest
        key = "5" if "loner" in g.paths[0] else "3"
        assert client.post("/api/decide", json={"group": g.id, "item": None, "key": key}).status_code == 200
    view.close()
    client.app.state.review.close()  # type: ignore[attr-defined]
    result = CliRunner().invoke(
        cli_app, ["hashset", "from-case", str(fresh), "--name", "reviewed", "--db", case["db"]]
    )
    assert result.exit_code == 0, result.output
    assert (
        "reviewed: 7 entries added" in result.output
        and "reviewed-ignorable: 2 entries added" in result.output
    )
    # the same material in another case: a copy of the evidence, scanned with the new sets
    again = tmp_path / "again" / "dump"
    shutil.copytree(case["evidence"], again)
    cfg = ScanConfig(
        sources=[again],
        hashsets=["known", "reviewed", "reviewed-ignorable"],
        case_dir=tmp_path / "case2",
        db_url=case["db"],
        workers=1,
    )
    summary = scan_case(cfg).summary
    assert summary["by_status"]["new"] == 0 and summary["groups"]["count"] == 0
    assert summary["by_status"]["known"] == 1 + 7 and summary["by_status"]["ignorable"] == 2
    assert summary["by_hashset"].get("reviewed") == 7
    assert len(new_paths) == 9


def test_claims_give_reviewers_different_groups_and_expire(db_url: str) -> None:
    """On SQLite and PostgreSQL: what two reviewers of one case get, and a claim that runs out."""
    open_store(db_url).close()  # the shared store's review tables come from its migrations (0008)
    alice, bob = ReviewDB.at_url(db_url, "case-1"), ReviewDB.at_url(db_url, "case-1")
    other_case = ReviewDB.at_url(db_url, "case-2")
    order = ["G1", "G2", "G3"]
    assert alice.claim_next("alice", order, now=100.0) == "G1"
    assert bob.claim_next("bob", order, now=101.0) == "G2"  # G1 is alice's
    assert alice.claim_next("alice", order, now=102.0) == "G1"  # her own claim, renewed
    assert other_case.claim_next("carol", order, now=102.0) == "G1"  # another case: its own claims
    assert bob.holder("G1", now=103.0) == "alice"
    # alice walked away: after her claim expires bob may have G1
    later = 102.0 + 15 * 60 + 1
    assert bob.claim_next("bob", order, now=later) == "G1"
    assert bob.holder("G2", now=later) is None  # taking G1, bob let go of G2
    assert alice.claim_next("alice", order, now=later) == "G2"
    # a decision by one reviewer is there for the other at once (the page polls every 1.5 s)
    alice.decide("alice", "G2", None, Category("us-cat", "2"))
    assert bob.file_states({"G2": ("x",)})["x"].category == Category("us-cat", "2")
    assert other_case.file_states({"G2": ("x",)})["x"].category is None
    for db in (alice, bob, other_case):
        db.close()


def test_two_reviewers_in_the_app_get_different_groups(fresh: Path) -> None:
    a, _ = _client(fresh, "alice")
    b, _ = _client(fresh, "bob")
    first = a.get("/next?undecided=1", follow_redirects=False).headers["location"]
    second = b.get("/next?undecided=1", follow_redirects=False).headers["location"]
    assert first == "/group/G0001" and second == "/group/G0002"
    a.post("/api/decide", json={"group": "G0002", "item": 0, "key": "4"})
    assert b.get("/api/group/G0002/state").json()["items"][0]["by"] == {"alice": "us-cat:4"}
    for c in (a, b):
        c.app.state.view.close()  # type: ignore[attr-defined]
        c.app.state.review.close()  # type: ignore[attr-defined]


def test_a_group_part_for_the_page_to_swap_in(fresh: Path) -> None:
    """``?part=1``: the group's part of its page (what the page fetches ahead and swaps in), its id
    in X-Group; the group the page holds already is only named; nothing left is a 204."""
    c, _ = _client(fresh, "alice")
    r = c.get("/next?part=1&after=G0001")
    assert (
        r.status_code == 200 and r.headers["x-group"] == "G0002" and r.headers["cache-control"] == "no-store"
    )
    assert "<html" not in r.text and r.text.count('class="item') == 3 and r.text.count("data:image/jpeg") == 3
    assert '"group": "G0002"' in r.text  # the part's own settings (cfg) for the script
    assert c.get("/prev?part=1&before=G0002").headers["x-group"] == "G0001"
    assert c.get("/prev?part=1&before=G0001").status_code == 204
    assert c.get("/next?part=1&after=G0006").status_code == 204
    assert c.get("/group/G0004?part=1").text.count("/item/G0004/0/veiled") == 1  # a video's grid: a URL
    # the next undecided group, a claim; the part the page holds already comes back as its name only
    named = c.get("/next?part=1&undecided=1&after=G0001&have=G0002")
    assert (named.status_code, named.headers["x-group"], named.content) == (200, "G0002", b"")
    assert c.app.state.review.holder("G0002") == "alice"  # type: ignore[attr-defined]
    c.post("/api/decide", json={"group": "G0002", "item": None, "key": "3"})
    other = c.get("/next?part=1&undecided=1&after=G0001&have=G0002")  # decided: the one after it
    assert other.headers["x-group"] == "G0003" and "data:image/jpeg" in other.text
    assert c.get("/next?after=G0001", follow_redirects=False).headers["location"] == "/group/G0002"
    c.app.state.view.close()  # type: ignore[attr-defined]
    c.app.state.review.close()  # type: ignore[attr-defined]


def test_a_token_may_have_the_reviewer_role_after_the_migration(db_url: str) -> None:
    """Migration 0006 widens the tokens table's CHECK: a reviewer token is stored, a made-up role is not."""
    import sqlalchemy as sa

    from opspoor.store import open_store
    from opspoor.store.tokens import create_token, find_token

    with open_store(db_url) as store:
        rec, secret = create_token(store, "reviewer", "hotline", label="first reviewer")
        found = find_token(store, secret)
        assert found is not None and found.role == "reviewer"
        with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO tokens (tenant, role, secret_sha256) VALUES ('t', 'boss', 'x')")
            )


def test_a_break_is_suggested_after_the_reveal_time_set(fresh: Path) -> None:
    cfg = ReviewConfig(case_dir=fresh, reviewer="alice", break_after=0.0)
    c = TestClient(create_review_app(cfg), base_url="http://127.0.0.1")
    c.get(f"/?token={cfg.secret}")
    r = c.post("/item/G0002/0/reveal")
    c.post(f"/api/reveal/{r.headers['x-reveal-id']}/end", json={})
    assert 'id="break"' in c.get("/").text and "time for a break" in c.get("/").text
    assert c.get("/api/group/G0002/state").json()["exposure"]["break"] is True
    relaxed = ReviewConfig(case_dir=fresh, reviewer="bob", break_after=3600.0)
    c2 = TestClient(create_review_app(relaxed), base_url="http://127.0.0.1")
    c2.get(f"/?token={relaxed.secret}")
    assert 'id="break"' not in c2.get("/").text  # bob has revealed nothing today


def test_vics_export_carries_the_reviewers_categories_tags_and_series(fresh: Path, tmp_path: Path) -> None:
    from opspoor.hashsets.formats import read_entries

    db = ReviewDB.for_case(fresh)
    db.decide("alice", "G0002", None, Category("us-cat", "2"), series="Harbour series")
    db.decide("alice", "G0002", "dump/series_1.jpg", None, tags=["follow-up"])
    db.close()
    out = tmp_path / "reviewed.vics.json"
    result = CliRunner().invoke(cli_app, ["review", str(fresh), "--export-vics", str(out)])
    assert result.exit_code == 0, result.output
    entries = list(read_entries(out, "vics2"))
    by_name = {e.extra["files"][0]["FileName"]: e for e in entries if e.extra.get("files")}
    series = [by_name[f"series_{k}.jpg"] for k in range(3)]
    assert all(e.category == Category("us-cat", "2") and e.series == "Harbour series" for e in series)
    assert "follow-up" in series[1].tags and "follow-up" not in series[0].tags
    assert by_name["known.jpg"].category == Category("us-cat", "1")  # its match's category
    assert by_name["loner_0.jpg"].category == Category("us-cat", "0")  # nobody has looked yet


def test_vics_export_overwrites_an_existing_file_only_with_force(fresh: Path, tmp_path: Path) -> None:
    from opspoor.cli.options import CommandLineError

    out = tmp_path / "reviewed.vics.json"
    out.write_text("an examiner's earlier file")
    result = CliRunner().invoke(cli_app, ["review", str(fresh), "--export-vics", str(out)])
    assert isinstance(result.exception, CommandLineError), result.output
    assert str(result.exception) == f"{out}: exists; add --force to overwrite it"
    assert out.read_text() == "an examiner's earlier file"
    result = CliRunner().invoke(cli_app, ["review", str(fresh), "--export-vics", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("{")


def test_review_tables_of_another_version_are_one_clear_error(fresh: Path) -> None:
    import sqlite3

    from opspoor.errors import CaseError

    conn = sqlite3.connect(fresh / "review.sqlite")
    conn.execute("CREATE TABLE review_decisions (id INTEGER PRIMARY KEY, at REAL)")
    conn.close()
    with pytest.raises(CaseError, match="review_decisions lacks"):
        ReviewDB.for_case(fresh)
    result = CliRunner().invoke(cli_app, ["hashset", "from-case", str(fresh), "--name", "x"])
    assert result.exit_code != 0 and "Traceback" not in result.output


def test_overview_shows_views_needed_per_media_file_and_my_exposure(client: TestClient) -> None:
    media = client.app.state.view.counts()["media"]  # type: ignore[attr-defined]
    assert media == 10  # 9 new pictures and video + the known picture (the text file is not media)
    for _ in range(2):  # the same file twice: one view needed
        r = client.post("/item/G0002/1/reveal")
        client.post(f"/api/reveal/{r.headers['x-reveal-id']}/end", json={})
    html = client.get("/").text
    assert f'<td id="views-ratio">{1 / media:.3f}</td>' in html
    assert '<td id="my-exposure">2 reveals,' in html


def test_from_case_entries_carry_every_signal_the_scan_took_the_category_and_the_series(
    fresh: Path, case: dict[str, Any], tmp_path: Path
) -> None:
    """The loop test above finds the copies known by MD5 alone; here each entry must carry the
    file's SHA-1, SHA-256 and PDQ (an image) or vPDQ (a video) too, with its category, series and
    reviewer, and a not-pertinent file goes to the ignorable set."""
    from opspoor.review.caseview import CaseView
    from opspoor.store import iter_entries

    view = CaseView(fresh)
    records = {p: view.records[p] for g in view.groups for p in g.paths}
    series = next(g for g in view.groups if g.paths[0].endswith("series_0.jpg"))
    video = next(g for g in view.groups if g.paths[0].endswith(".mp4"))
    loner = next(g for g in view.groups if "loner" in g.paths[0])
    view.close()
    db = ReviewDB.for_case(fresh)
    db.decide("alice", series.id, None, Category("us-cat", "2"), series="Harbour series")
    db.decide("bob", video.id, None, Category("us-cat", "3"))
    db.decide("alice", loner.id, None, Category("us-cat", "5"))
    db.close()
    store_url = f"sqlite:///{tmp_path / 'sets.sqlite'}"
    result = CliRunner().invoke(
        cli_app, ["hashset", "from-case", str(fresh), "--name", "reviewed", "--db", store_url]
    )
    assert result.exit_code == 0, result.output
    with open_store(store_url) as store:
        known = {e.signals["md5"]: e for e in iter_entries(store, "reviewed")}
        ignorable = {e.signals["md5"]: e for e in iter_entries(store, "reviewed-ignorable")}
    assert len(known) == len(series.paths) + 1 and len(ignorable) == len(loner.paths)
    for path in series.paths:
        rec = records[path]
        e = known[rec["md5"]]
        assert {k: e.signals[k] for k in ("sha1", "sha256", "pdq")} == {
            k: rec[k] for k in ("sha1", "sha256", "pdq")
        }
        assert e.category == Category("us-cat", "2") and e.series == "Harbour series"
        assert "reviewed-by:alice" in e.tags
    clip = known[records[video.paths[0]]["md5"]]
    frames = records[video.paths[0]]["vpdq_frames"]
    assert frames and clip.signals["vpdq"].splitlines() == frames
    assert clip.category == Category("us-cat", "3") and "reviewed-by:bob" in clip.tags
    assert all(e.category == Category("us-cat", "5") for e in ignorable.values())


@pytest.mark.parametrize(
    ("scheme", "key", "code", "refused"),
    [("uk", "3", "uk:C", "4"), ("inhope", "3", "inhope:not-illegal", "4"), ("ncmec", "4", "ncmec:B2", "5")],
)
def test_the_digit_keys_follow_the_deployments_scheme(
    fresh: Path, scheme: str, key: str, code: str, refused: str
) -> None:
    """UK A/B/C, INHOPE and NCMEC A1–B2 on 1, 2, … in their order; a digit past the scheme is refused."""
    cfg = ReviewConfig(case_dir=fresh, reviewer="alice", scheme=scheme)
    c = TestClient(create_review_app(cfg), base_url="http://127.0.0.1")
    assert c.get(f"/?token={cfg.secret}", follow_redirects=False).status_code == 303
    r = c.post("/api/decide", json={"group": "G0002", "item": 0, "key": key})
    assert r.status_code == 200 and r.json()["items"][0]["category"] == code
    assert c.post("/api/decide", json={"group": "G0002", "item": 0, "key": refused}).status_code == 400
    c.app.state.view.close()  # type: ignore[attr-defined]
    c.app.state.review.close()  # type: ignore[attr-defined]
