"""The service when input is hostile or the store misbehaves (issue 17), on SQLite and PostgreSQL:
the audit log cannot be wedged by one row and shows rows that were never written, a write is not
answered success before its audit row is committed, text the store cannot hold is bad input (422
naming the field), and a repeated ``Authorization`` header is refused on every route.

Every hash set holds benign values only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from opspoor.cli import app as cli_app
from opspoor.errors import StoreError
from opspoor.service import auditing
from opspoor.service.auditing import AuditWriter
from opspoor.store import list_hashsets, open_store
from opspoor.store.audit import AuditEvent, append_audit, list_audit, verify_audit
from test_cli_hashset import run as run_cli
from test_service import Api, create_set, eventually, is_problem, running


@pytest.fixture(name="api")
def served(db_url: str) -> Iterator[Api]:
    """The service through FastAPI's TestClient (``test_service.running``)."""
    with running(db_url) as a:
        yield a


def audit_rows(api: Api) -> list[AuditEvent]:
    with open_store(api.url) as store:
        return [r.event for r in list_audit(store, limit=10_000)]


# --- the audit log -----------------------------------------------------------------------------------
def test_a_nul_in_an_audited_object_neither_stops_the_audit_log_nor_is_lost(api: Api) -> None:
    c = api.client
    r = c.get("/v1/hashsets/a%00b", headers=api.auth("a", "curator"))
    assert r.status_code in (404, 422), r.text
    create_set(api, "after-the-nul")  # a write behind it is audited and answered
    c.get("/v1/hashsets/after-the-nul", headers=api.auth("a", "curator"))

    def written() -> bool:
        rows = audit_rows(api)
        return any(e.object == "hashset:after-the-nul" and e.action == "hashset.show" for e in rows)

    eventually(written)
    rows = audit_rows(api)
    # the NUL is kept, escaped, in the row of the request that sent it
    assert any(e.action == "hashset.show" and e.object == "hashset:a\\x00b" for e in rows), rows
    with open_store(api.url) as store:
        assert verify_audit(store).ok


def test_a_row_the_store_refuses_is_written_as_unwritable_and_the_rows_behind_it_follow(pg_url: str) -> None:
    at = datetime.now(UTC)
    with open_store(pg_url) as store:
        writer = AuditWriter(store, flush_seconds=0.01)
        writer.start()
        writer.submit(AuditEvent(at, 1, "t", "match", "values:1", "ok", 200))
        writer.submit(AuditEvent(at, 2, "x" * 100, "match", "values:2", "ok", 200))  # tenant over 64
        writer.submit(AuditEvent(at, 3, "t", "match", "values:3", "ok", 200))
        writer.close()
        rows = [r.event for r in list_audit(store, limit=100)]
        verdict = verify_audit(store)
    assert [(e.token_id, e.result) for e in rows[:3]] == [(1, "ok"), (2, "unwritable"), (3, "ok")]
    assert rows[1].object is not None and rows[1].object.startswith("row not writable")
    assert rows[-1].action == "audit.stop" and rows[-1].object == "3"
    assert verdict.ok and verdict.unstopped == ()


def test_a_row_that_meets_a_passing_fault_is_written_intact_later(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch and then the row alone meet a lock (OperationalError): the row is retried and
    written as it was, never replaced by an ``unwritable`` placeholder."""
    real = auditing.append_audit
    faults = [2]

    def locked_twice(store: Any, events: Any) -> int:
        if faults[0]:
            faults[0] -= 1
            try:
                raise sa.exc.OperationalError("INSERT INTO audit", {}, Exception("database is locked"))
            except sa.exc.OperationalError as exc:
                raise StoreError("database is locked") from exc
        return real(store, events)

    monkeypatch.setattr(auditing, "append_audit", locked_twice)
    at = datetime.now(UTC)
    with open_store(db_url) as store:
        writer = AuditWriter(store, flush_seconds=0.01)
        writer.start()
        writer.submit(AuditEvent(at, 1, "t", "match", "values:1", "ok", 200))
        writer.submit(AuditEvent(at, 2, "t", "match", "values:2", "ok", 200))
        writer.close()
        rows = [r.event for r in list_audit(store, limit=100)]
        assert verify_audit(store).ok
    assert faults == [0]
    assert [(e.token_id, e.object, e.result, e.seq) for e in rows] == [
        (1, "values:1", "ok", 1),
        (2, "values:2", "ok", 2),
        (None, "2", "ok", 3),
    ]


def test_audit_escapes_tell_a_nul_from_text_that_looks_like_its_escape(db_url: str) -> None:
    at = datetime.now(UTC)
    objects = ["a\x00b", "a\\x00b", "c\\", "\udcff", "\\udcff"]  # NUL, literal "\x00", surrogate...
    with open_store(db_url) as store:
        append_audit(store, [AuditEvent(at, 1, "t", "hashset.show", o, "ok", 200) for o in objects])
        stored = [r.event.object for r in list_audit(store)]
        assert verify_audit(store).ok
    assert stored == ["a\\x00b", "a\\\\x00b", "c\\\\", "\\udcff", "\\\\udcff"]
    assert len(set(stored)) == len(objects)


def test_audit_rows_escaped_the_earlier_way_still_verify(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows written before backslashes were escaped (a NUL and a literal ``\\x00`` stored alike)
    keep verifying: the hash covers the row as stored, not as the current escaping would write it."""
    from opspoor.store import audit

    current = audit.storable

    def earlier(value: str | None) -> str | None:
        return None if value is None else value.replace("\x00", "\\x00")

    at = datetime.now(UTC)
    with open_store(db_url) as store:
        monkeypatch.setattr(audit, "storable", earlier)
        append_audit(
            store, [AuditEvent(at, 1, "t", "hashset.show", o, "ok", 200) for o in ("a\x00b", "a\\x00b")]
        )
        monkeypatch.setattr(audit, "storable", current)
        append_audit(store, [AuditEvent(at, 1, "t", "hashset.show", "new\\row", "ok", 200)])
        assert [r.event.object for r in list_audit(store)] == ["a\\x00b", "a\\x00b", "new\\\\row"]
        assert verify_audit(store).ok


def test_a_write_is_not_answered_success_while_its_audit_row_cannot_be_written(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = auditing.append_audit

    def store_gone(*_: Any) -> int:
        raise StoreError("connection refused")

    monkeypatch.setattr(auditing, "append_audit", store_gone)
    monkeypatch.setattr(AuditWriter, "_store_answers", lambda self: False)
    r = api.client.post("/v1/hashsets", headers=api.auth("a", "curator"), json={"name": "unaudited"})
    body = is_problem(r, 503)
    assert body["type"].endswith("audit-pending") and "hashset.create was done" in body["detail"]
    monkeypatch.setattr(auditing, "append_audit", real)  # the store is back: the queued row is written
    eventually(lambda: any(e.object == "hashset:unaudited" for e in audit_rows(api)))


def test_verify_finds_a_row_a_writer_queued_but_never_wrote(db_url: str) -> None:
    at = datetime.now(UTC)

    def row(seq: int, writer: str = "w1") -> AuditEvent:
        return AuditEvent(at, 1, "t", "match", f"values:{seq}", "ok", 200, writer, seq)

    runner = CliRunner()
    with open_store(db_url) as store:
        append_audit(store, [row(1), row(2), row(1, "w2")])
        intact = runner.invoke(cli_app, ["audit", "verify", "--db", db_url])
        assert intact.exit_code == 0 and "2 audit writer(s) have no stop row" in intact.output
        append_audit(store, [row(4)])  # writer w1's row 3 never reached the store
        verdict = verify_audit(store)
        assert not verdict.ok and verdict.bad_id == 4
        assert (
            verdict.problem
            == "writer w1's rows number 3 are missing (queued but never written), before row 4"
        )
        broken = runner.invoke(cli_app, ["audit", "verify", "--db", db_url])
        assert broken.exit_code == 1 and "number 3 are missing" in broken.output


def test_a_writer_that_stops_normally_leaves_a_stop_row_and_numbers_without_holes(db_url: str) -> None:
    with open_store(db_url) as store:
        writer = AuditWriter(store, flush_seconds=0.01)
        writer.start()
        for i in range(5):
            writer.submit(AuditEvent(datetime.now(UTC), i, "t", "match", f"values:{i}", "ok", 200))
        writer.close()
        rows = [r.event for r in list_audit(store, limit=100)]
        assert [e.seq for e in rows] == [1, 2, 3, 4, 5, 6] and {e.writer for e in rows} == {writer.writer}
        assert verify_audit(store).ok and verify_audit(store).unstopped == ()
        with store.write() as conn:  # the stop row tells that nothing was cut off the end
            conn.execute(sa.text("DELETE FROM audit WHERE id = 5"))
        assert verify_audit(store).bad_id is not None


# --- text the stores cannot hold alike is bad input ----------------------------------------------------
def test_a_nul_in_any_text_field_is_a_422_naming_the_field(api: Api) -> None:
    c, h = api.client, api.auth("a", "curator")
    md5 = "0" * 31 + "1"
    body = is_problem(c.post("/v1/hashsets", headers=h, json={"name": "a\x00b"}), 422)
    assert "name" in json.dumps(body["errors"])
    body = is_problem(c.post("/v1/hashsets", headers=h, json={"name": "ok", "source": "s\x00"}), 422)
    assert "source" in json.dumps(body["errors"])
    is_problem(c.get("/v1/hashsets/a%00b", headers=h), 422)
    is_problem(c.delete("/v1/hashsets/a%00b", headers=h), 422)
    create_set(api, "nul")
    for field, value in (("external_id", "id\x00"), ("series", "\x00"), ("tags", ["t\x00"])):
        entry = {"signals": {"md5": md5}, field: value}
        r = c.post("/v1/hashsets/nul/entries", headers=h, json={"entries": [entry]})
        assert field in json.dumps(is_problem(r, 422)["errors"]), field
    r = c.post("/v1/tokens", headers=api.auth("a", "admin"), json={"role": "analyst", "label": "l\x00"})
    assert "label" in json.dumps(is_problem(r, 422)["errors"])
    # a VICS file with a NUL in a field: the record is named
    vics = {
        "odata.metadata": "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#Media",
        "value": [
            {"MediaID": 1, "MD5": md5, "Category": 1},
            {"MediaID": 2, "MD5": "0" * 31 + "2", "Category": 1, "Series": "a\x00b"},
        ],
    }
    r = c.post("/v1/hashsets/nul/import?format=vics13", headers=h, content=json.dumps(vics).encode())
    detail = is_problem(r, 422)["detail"]
    assert "record 2" in detail and "series" in detail.lower() and "NUL" in detail
    r = c.post("/v1/hashsets/nul/import?format=vics13&skip_invalid=true", headers=h, content=json.dumps(vics))
    assert r.status_code == 200 and r.json()["added"] == 1 and r.json()["rejects"][0]["record"] == 2
    with open_store(api.url) as store:  # nothing of the refused requests reached the store
        names = {s.name for s in list_hashsets(store, tenant="a")}
    assert names == {"nul"}


def test_the_cli_import_names_the_record_with_a_nul(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    md5 = "0" * 31 + "1"
    src = tmp_path / "list.csv"
    src.write_text(f"md5,external_id\n{md5},first\n{'0' * 31}2,bad\x00id\n", encoding="utf-8")
    code, _, err = run_cli(monkeypatch, capsys, "hashset", "import", str(src), "--name", "x", "--db", db_url)
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(lines) == 1, err
    assert str(src) in lines[0] and "record 2" in lines[0] and "external_id" in lines[0] and "NUL" in lines[0]
    with open_store(db_url) as store:
        assert list_hashsets(store) == []


# --- a repeated Authorization header -----------------------------------------------------------------
def test_a_repeated_authorization_header_is_refused_on_every_route_the_fast_path_too(api: Api) -> None:
    good = api.auth("a", "platform")["Authorization"]
    other = api.auth("b", "admin")["Authorization"]
    routes = [
        ("POST", "/v1/match", {"json": {"signals": [{"type": "md5", "value": "1" * 32}]}}),  # fast path
        ("POST", "/v1/match", {"files": {"file": ("x.bin", b"benign", "application/octet-stream")}}),
        ("GET", "/v1/hashsets", {}),
        ("GET", "/v1/tokens", {}),
        ("GET", "/v1/audit", {}),
        ("GET", "/v1/ready", {}),
        ("GET", "/metrics", {}),
    ]
    for twice in ([good, good], [good, other]):
        for method, path, kw in routes:
            headers = [("Authorization", v) for v in twice]
            r = api.client.request(method, path, headers=headers, **kw)
            body = is_problem(r, 400)
            assert "Authorization" in body["detail"], (method, path)


def test_text_no_store_can_hold_is_escaped_in_the_audit_log(db_url: str) -> None:
    at = datetime.now(UTC)
    with open_store(db_url) as store:
        append_audit(store, [AuditEvent(at, 1, "t", "hashset.show", "hashset:a\x00b\udcff", "rejected", 404)])
        (row,) = list_audit(store)
        assert row.event.object == "hashset:a\\x00b\\udcff"
        assert verify_audit(store).ok


def test_migration_0005_keeps_older_audit_rows_verifiable_and_goes_back(db_url: str) -> None:
    from alembic import command

    from opspoor.store.audit import GENESIS, chain_hash
    from opspoor.store.db import alembic_config, resolve_url

    url = resolve_url(db_url)
    command.upgrade(alembic_config(url), "0003")
    engine = sa.create_engine(url)
    old = AuditEvent(datetime(2026, 12, 1, tzinfo=UTC), 1, "t", "match", "values:1", "ok", 200)
    with engine.begin() as conn:  # a row as revision 0003 wrote it: no writer, no number
        conn.execute(
            sa.text(
                "INSERT INTO audit (id, at, token_id, tenant, action, object, result, status, prev_hash,"
                " row_hash) VALUES (1, :at, 1, 't', 'match', 'values:1', 'ok', 200, :prev, :hash)"
            ),
            {"at": old.at, "prev": GENESIS, "hash": chain_hash(GENESIS, 1, old)},
        )
    command.upgrade(alembic_config(url), "head")
    with open_store(db_url) as store:
        append_audit(store, [AuditEvent(datetime.now(UTC), 2, "t", "match", "values:2", "ok", 200, "w", 1)])
        assert verify_audit(store).ok and verify_audit(store).rows == 2
    command.downgrade(alembic_config(url), "0003")
    with engine.connect() as conn:
        assert "seq" not in {c["name"] for c in sa.inspect(conn).get_columns("audit")}
    engine.dispose()


def test_an_entry_stored_with_a_nul_by_an_older_version_exports_as_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "s.sqlite")
    src = tmp_path / "list.csv"
    src.write_text(f"md5,series\n{'0' * 31}1,old\n", encoding="utf-8")
    assert run_cli(monkeypatch, capsys, "hashset", "import", str(src), "--name", "x", "--db", db)[0] == 0
    with open_store(db) as store, store.write() as conn:  # SQLite kept NUL text before it was refused
        conn.execute(sa.text("UPDATE entries SET series = 'a' || char(0) || 'b'"))
    out = tmp_path / "out.json"
    code, _, err = run_cli(monkeypatch, capsys, "hashset", "export", "x", "-o", str(out), "--db", db)
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code != 0 and len(lines) == 1 and "entry 1" in lines[0] and "NUL" in lines[0], err
    assert "Traceback" not in err


# --- the service's own pixel limit -----------------------------------------------------------------
def test_the_service_pixel_setting_is_honoured_and_held_to_the_media_limit(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``OPSPOOR_SERVICE_MAX_PIXELS`` (default 100 M, as before) refuses an upload declaring more
    pixels, and a value above ``media.limits.MAX_PIXELS`` is held to it."""
    from dataclasses import replace as with_

    from opspoor.demo.pngs import png_bytes
    from opspoor.media.limits import MAX_PIXELS
    from opspoor.service import routes_match
    from opspoor.service.settings import Settings
    from test_service import TEST_SETTINGS

    assert Settings().max_pixels == 100_000_000
    assert Settings.from_env({"OPSPOOR_SERVICE_MAX_PIXELS": "5000"}).max_pixels == 5000
    picture = png_bytes(100, 100)  # 10,000 pixels
    for limit, ok in ((5000, False), (20_000, True)):
        with running(sqlite_url, with_(TEST_SETTINGS, max_pixels=limit)) as api:
            r = api.client.post(
                "/v1/hash", headers=api.auth("a", "platform"), files={"file": ("p.png", picture)}
            )
            assert (r.status_code == 200 and bool(r.json().get("pdq"))) == ok, (limit, r.text[:300])
    seen: list[int] = []
    real = routes_match.hash_bytes

    def spy(data: bytes, **kw: Any) -> Any:
        seen.append(kw["options"].max_pixels)
        return real(data, **kw)

    monkeypatch.setattr(routes_match, "hash_bytes", spy)
    with running(sqlite_url, with_(TEST_SETTINGS, max_pixels=MAX_PIXELS * 10)) as api:
        api.client.post("/v1/hash", headers=api.auth("a", "platform"), files={"file": ("p.png", picture)})
    assert seen == [MAX_PIXELS]


# --- the words of each face ----------------------------------------------------------------------------
def test_cli_words_in_cli_messages_and_http_words_in_http_errors(
    api: Api, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 64-hex plain list without its type, and a file of no known format: the service names its
    query parameters (``hash_type``, ``format``), the command line its options (``--type``, ``--format``)."""
    c, h = api.client, api.auth("a", "curator")
    create_set(api, "words")
    ambiguous, unknown = ("f" * 64 + "\n").encode(), b"neither a list nor a table\n"
    detail = is_problem(c.post("/v1/hashsets/words/import?format=plain", headers=h, content=ambiguous), 422)
    assert "query parameter hash_type" in detail["detail"] and "--" not in detail["detail"], detail
    detail = is_problem(c.post("/v1/hashsets/words/import", headers=h, content=unknown), 422)
    assert "query parameter format" in detail["detail"] and "--" not in detail["detail"], detail
    for data, option in ((ambiguous, "--type sha256"), (unknown, "--format")):
        src = tmp_path / "list.txt"
        src.write_bytes(data)
        fmt = ["--format", "plain"] if data == ambiguous else []
        code, _, err = run_cli(
            monkeypatch, capsys, "hashset", "import", str(src), "--name", "w", "--db", db_url, *fmt
        )
        lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert code == 2 and len(lines) == 1 and option in lines[0], err
        assert "hash_type" not in lines[0] and "query parameter" not in lines[0], err


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("list.csv", b"md5,external_id\n" + b"0" * 31 + b"1,a\n" + b"0" * 31 + b"2,b\xff\n", 3),
        ("list.txt", b"a" * 32 + b"\n" + b"b" * 32 + b"\xff\n", 2),
    ],
)
def test_an_invalid_utf8_byte_is_named_at_its_line_in_one_cli_line(
    name: str,
    text: bytes,
    line: int,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = tmp_path / name
    src.write_bytes(text)
    code, _, err = run_cli(monkeypatch, capsys, "hashset", "import", str(src), "--name", "u", "--db", db_url)
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert str(src) in lines[0] and f"line {line}:" in lines[0] and "not UTF-8" in lines[0], err
