"""What a new user's trial found, each checked here: a command that only reads makes no store at a
mistyped path; ``opspoor review`` leaves no ``-wal``/``-shm`` files in the case folder; the review
app answers a body that is not JSON with a problem naming the body; values that cannot be right
(an IP address of 999, an empty upload, a negative break time) are refused naming their option or
field; a 422 problem's title is RFC 9110's "Unprocessable Content"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from opspoor.review.web import ReviewConfig, create_review_app
from opspoor.service.problems import status_phrase
from review_case import build_case, fresh_copy
from test_cli_hashset import run
from test_intake import report_doc, submit, upload
from test_service import Api, is_problem, running

READ_ONLY = [
    ("hashset", "list"),
    ("hashset", "show", "known"),
    ("hashset", "export", "known"),
    ("hashset", "conflicts", "known"),
    ("hashset", "remove", "known", "--yes"),
    ("match", "--hashset", "known", "0" * 32),
    ("token", "list"),
    ("token", "revoke", "1"),
    ("audit", "verify"),
]


@pytest.mark.parametrize("args", READ_ONLY, ids=[" ".join(a[:2]) for a in READ_ONLY])
def test_a_command_that_only_reads_makes_no_store_at_a_missing_path(
    args: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "mistyped.sqlite"
    code, _, err = run(monkeypatch, capsys, *args, "--db", str(missing))
    assert code == 2, err
    assert "Traceback" not in err and err.strip().count("\n") == 0, err
    assert str(missing) in err and "no store here" in err
    assert not missing.exists() and list(tmp_path.iterdir()) == []


# --- the review workspace -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_case(tmp_path_factory.mktemp("review"))


@pytest.fixture
def fresh(tmp_path: Path, case: dict[str, Any]) -> Path:
    return fresh_copy(case["dir"], tmp_path)


def _sidecars(case_dir: Path) -> list[str]:
    return sorted(p.name for p in case_dir.iterdir() if p.name.endswith(("-wal", "-shm")))


def test_the_review_app_leaves_no_wal_or_shm_files_when_it_stops(fresh: Path) -> None:
    cfg = ReviewConfig(case_dir=fresh, reviewer="alice")
    assert _sidecars(fresh) == []
    with TestClient(create_review_app(cfg), base_url="http://127.0.0.1") as c:
        assert c.get(f"/?token={cfg.secret}", follow_redirects=False).status_code == 303
        assert c.post("/api/decide", json={"group": "G0001", "item": None, "key": "1"}).status_code == 200
        # both databases are open in WAL mode meanwhile (so the check below can fail)
        assert {"case.sqlite-wal", "review.sqlite-wal"} <= set(_sidecars(fresh))
    assert _sidecars(fresh) == []


def test_a_decision_whose_body_is_not_json_is_a_problem_naming_the_body(fresh: Path) -> None:
    cfg = ReviewConfig(case_dir=fresh, reviewer="alice")
    with TestClient(create_review_app(cfg), base_url="http://127.0.0.1") as c:
        c.get(f"/?token={cfg.secret}", follow_redirects=False)
        for body in (b"not json", b"[1, 2]", b""):
            r = c.post("/api/decide", content=body, headers={"content-type": "application/json"})
            assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
            p = r.json()
            assert (p["type"], p["title"], p["status"]) == ("about:blank", "Bad Request", 400)
            assert "request body is not a JSON object" in p["detail"]


def test_a_negative_break_time_is_refused_naming_the_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for value in ("-5", "nan", "inf"):
        code, _, err = run(monkeypatch, capsys, "review", str(tmp_path), "--break-after", value)
        assert code == 2 and "--break-after" in err and err.strip().count("\n") == 0, err


# --- intake and reports ---------------------------------------------------------------------------
@pytest.fixture
def api(sqlite_url: str) -> Iterator[Api]:
    with running(sqlite_url) as a:
        yield a


def test_report_build_refuses_an_ip_address_that_is_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.json"
    args = ["report", "build", str(tmp_path), "-o", str(out), "--incident-datetime", "2026-02-28T10:00:00Z"]
    code, _, err = run(monkeypatch, capsys, *args, "--ip", "10.0.0.1", "--ip", "999.1.1.1")
    assert code == 2 and "--ip '999.1.1.1' is not an IPv4 or IPv6 address" in err, err
    assert not out.exists()


def test_intake_refuses_an_ip_address_that_is_none_an_empty_upload_and_titles_422_as_rfc_9110(
    api: Api,
) -> None:
    person = {"ipCaptureEvent": [{"ipAddress": "999.1.1.1"}]}
    r = api.client.post(
        "/v1/intake/submit", headers=api.auth("a", "reporter"), json=report_doc(personOrUserReported=[person])
    )
    p = is_problem(r, 422)
    assert p["title"] == "Unprocessable Content" == status_phrase(422)
    assert "ipAddress" in p["detail"] and "'999.1.1.1' is not an IPv4 or IPv6 address" in p["detail"]

    ok = {"ipCaptureEvent": [{"ipAddress": "2001:db8::1"}, {"ipAddress": "193.0.6.139"}]}
    rid = submit(api, report_doc(personOrUserReported=[ok]))
    p = is_problem(upload(api, rid, b""), 422)
    assert p["type"].endswith("empty-upload") and "'file' is empty (0 bytes)" in p["detail"]
    assert p["title"] == "Unprocessable Content"
    assert upload(api, rid, b"x").status_code == 200  # one byte is a file
