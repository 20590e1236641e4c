"""``opspoor hashset from-case --augment``: the reviewed images go into the set with the augmented
hashes of ``hashset build --augment``, made from the evidence (read-only), so a rotated copy of a
reviewed picture is found known in another case; without ``--augment`` it is not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from opspoor.casefile.scan import scan_case
from opspoor.cli import app as cli_app
from opspoor.errors import CaseError
from opspoor.review.web import ReviewConfig, create_review_app
from opspoor.triage.config import ScanConfig
from review_case import build_case, fresh_copy


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_case(tmp_path_factory.mktemp("review-augment"))


@pytest.fixture
def fresh(tmp_path: Path, case: dict[str, Any]) -> Path:
    return fresh_copy(case["dir"], tmp_path)


def _decide_loner(case_dir: Path) -> str:
    """Shift+3 on the group of ``loner_0.jpg`` in the review app; its path."""
    cfg = ReviewConfig(case_dir=case_dir, reviewer="alice")
    client = TestClient(create_review_app(cfg), base_url="http://127.0.0.1")
    assert client.get(f"/?token={cfg.secret}", follow_redirects=False).status_code == 303
    view = client.app.state.view  # type: ignore[attr-defined]
    group = next(g for g in view.groups if any(p.endswith("loner_0.jpg") for p in g.paths))
    r = client.post("/api/decide", json={"group": group.id, "item": None, "key": "3"})
    assert r.status_code == 200
    view.close()
    client.app.state.review.close()  # type: ignore[attr-defined]
    return next(p for p in group.paths if p.endswith("loner_0.jpg"))


@pytest.mark.parametrize("augment", [True, False])
def test_from_case_augment_finds_a_rotated_copy_known(
    fresh: Path, case: dict[str, Any], tmp_path: Path, augment: bool
) -> None:
    _decide_loner(fresh)
    db = f"sqlite:///{tmp_path / 'store.sqlite'}"
    args = ["hashset", "from-case", str(fresh), "--name", "reviewed", "--db", db]
    result = CliRunner().invoke(cli_app, args + (["--augment"] if augment else []))
    assert result.exit_code == 0, result.output
    assert "reviewed: 1 entries added" in result.output
    assert ("1 images stored with their augmented hashes" in result.output) is augment
    # another case: the reviewed picture turned by 6 degrees (corners black), which plain PDQ and
    # the query side's hashes do not meet, but the augmentation's small rotations do
    other = tmp_path / "other" / "dump"
    other.mkdir(parents=True)
    with Image.open(case["evidence"] / "loner_0.jpg") as im:
        im.convert("RGB").rotate(6, resample=Image.Resampling.BILINEAR).save(other / "turned.jpg", quality=90)
    cfg = ScanConfig(
        sources=[other], hashsets=["reviewed"], case_dir=tmp_path / "case2", db_url=db, workers=1
    )
    summary = scan_case(cfg).summary
    if augment:
        assert summary["by_status"].get("known") == 1 and summary["by_hashset"].get("reviewed") == 1
    else:
        assert summary["by_status"].get("new") == 1 and not summary["by_status"].get("known")


def test_augment_of_a_published_case_says_the_evidence_is_not_here(fresh: Path, tmp_path: Path) -> None:
    _decide_loner(fresh)
    db = f"sqlite:///{tmp_path / 'team.sqlite'}"
    runner = CliRunner()
    assert (
        runner.invoke(cli_app, ["case", "publish", str(fresh), "--db", db, "--case-id", "c1"]).exit_code == 0
    )
    # the decision was made in the case folder's review.sqlite; the published case has none yet,
    # so make one in the store's tables through the same ReviewDB the team app uses
    from opspoor.hashsets.model import Category
    from opspoor.review.decisions import ReviewDB
    from opspoor.review.shared import SharedCaseView
    from opspoor.store import open_store

    with open_store(db) as store:
        view = SharedCaseView(store.engine, "c1")
        review = ReviewDB.at_url(db, "c1")
        g = next(g for g in view.groups if any(p.endswith("loner_0.jpg") for p in g.paths))
        review.decide("alice", g.id, None, Category("us-cat", "3"))
        review.close()
        view.close()
    args = ["hashset", "from-case", "c1", "--published", "--name", "r", "--db", db, "--augment"]
    result = runner.invoke(cli_app, args)
    # a typed error: the CLI's entry point prints it as one line (``cli.main``)
    assert isinstance(result.exception, CaseError)
    assert str(result.exception).startswith("c1: the evidence of a published case stays with its folder")


def test_the_curators_button_adds_augmented_hashes(fresh: Path, tmp_path: Path) -> None:
    _decide_loner(fresh)
    db = f"sqlite:///{tmp_path / 'store.sqlite'}"
    cfg = ReviewConfig(case_dir=fresh, reviewer="alice", db_url=db)
    client = TestClient(create_review_app(cfg), base_url="http://127.0.0.1")
    assert client.get(f"/?token={cfg.secret}", follow_redirects=False).status_code == 303
    r = client.post("/curate/from-case", json={"name": "reviewed", "augment": True})
    assert r.status_code == 200, r.text
    assert r.json()["augmented"] == 1 and r.json()["sets"]["reviewed"]["added"] == 1
    client.app.state.view.close()  # type: ignore[attr-defined]
    client.app.state.review.close()  # type: ignore[attr-defined]
    import sqlite3

    with sqlite3.connect(tmp_path / "store.sqlite") as conn:
        (n,) = conn.execute("SELECT count(*) FROM entry_signals WHERE derived AND signal = 'pdq'").fetchone()
    assert n > 10  # crops, rotations, the middle band
