"""The service as it runs: ``opspoor serve`` with two workers (a change made through one request
reaches matching in every worker within 5 s; audit rows are flushed when the server stops), and a
short schemathesis run against the served OpenAPI schema on SQLite and PostgreSQL (no answer is a
server error, every answer conforms to the schema, and the audit log verifies afterwards).
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode, checks

from opspoor.service.app import create_app
from opspoor.service.settings import Settings
from opspoor.store import open_store
from opspoor.store.audit import list_audit, verify_audit
from opspoor.store.follow import last_change_id
from opspoor.store.tokens import create_token

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_get(url: str, token: str) -> httpx.Response:
    """On a new connection each time, so the two workers both get asked."""
    return httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)


@pytest.mark.slow
def test_two_workers_follow_a_change_within_five_seconds(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    with open_store(url) as store:
        _, curator = create_token(store, "curator", "hotline")
        _, platform = create_token(store, "platform", "hotline")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OPSPOOR_SERVICE_POLL_SECONDS": "0.5", "OPSPOOR_SERVICE_AUDIT_FLUSH_SECONDS": "600"}
    cmd = [sys.executable, "-m", "opspoor", "serve", "--db", url, "--port", str(port), "--workers", "2"]
    server = subprocess.Popen(
        [*cmd, "--log-level", "warning"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 120
        workers: set[int] = set()
        while len(workers) < 2:  # both workers up and ready
            assert time.monotonic() < deadline, "the server did not start two ready workers"
            assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
            try:
                r = fresh_get(f"{base}/v1/ready", platform)
                if r.status_code == 200:
                    workers.add(r.json()["worker"])
            except httpx.TransportError:
                time.sleep(0.2)

        md5 = hashlib.md5(b"a benign test file").hexdigest()
        h = {"Authorization": f"Bearer {curator}"}
        assert httpx.post(f"{base}/v1/hashsets", headers=h, json={"name": "live"}).status_code == 201
        r = httpx.post(
            f"{base}/v1/hashsets/live/entries",
            headers=h,
            json={"entries": [{"signals": {"md5": md5}, "external_id": "benign-1"}]},
        )
        assert r.status_code == 200 and r.json()["added"] == 1
        changed = time.monotonic()
        with open_store(url) as store:
            target = last_change_id(store)

        applied: dict[int, float] = {}
        while set(applied) != workers:  # every worker has applied the change
            elapsed = time.monotonic() - changed
            assert elapsed < 5, f"workers {workers - set(applied)} had not applied the change after 5 s"
            body = fresh_get(f"{base}/v1/ready", platform).json()
            if body["change_id"] >= target:
                applied.setdefault(body["worker"], elapsed)
        matches = 0
        for _ in range(12):  # and every answer, whichever worker gives it, has the match
            r = httpx.post(
                f"{base}/v1/match",
                headers={"Authorization": f"Bearer {platform}"},
                json={"signals": [{"type": "md5", "value": md5}]},
            )
            (result,) = r.json()["results"]
            assert [m["external_id"] for m in result["matches"]] == ["benign-1"]
            matches += 1
        assert max(applied.values()) < 5
        # /metrics adds up the workers' samples, whichever worker answers
        scraped = fresh_get(f"{base}/metrics", platform).text
        counted = re.findall(
            r'opspoor_http_requests_total\{method="POST",route="/v1/match",status="200"\} (\S+)', scraped
        )
        assert counted and float(counted[0]) == matches
    finally:
        server.terminate()  # a normal stop: the workers flush their queued audit rows
        out, _ = server.communicate(timeout=60)
    assert server.returncode == 0, out.decode(errors="replace")
    with open_store(url) as store:
        rows = list_audit(store, limit=10_000)
        verdict = verify_audit(store)
    # both workers stopped normally: each wrote its stop row, and no number of theirs is missing
    assert verdict.ok and verdict.unstopped == (), verdict
    assert len({r.event.writer for r in rows if r.event.action == "audit.stop"}) == 2
    # reads were queued for 600 s: they reached the log only through the flush at shutdown
    assert sum(1 for r in rows if r.event.action == "match" and r.event.result == "ok") == matches


# --- schemathesis ---------------------------------------------------------------------------------
ROLE_FOR = {
    "/v1/intake/referrals": "hotline",
    "/v1/intake/bundles": "hotline",
    "/v1/intake": "reporter",
    "/v1/hash": "platform",
    "/v1/match": "platform",
    "/v1/tokens": "admin",
    "/v1/audit": "admin",
}


@contextmanager
def served(url: str) -> Iterator[str]:
    """The app on a real socket in this process (uvicorn in a thread)."""
    s = replace(
        Settings(),
        db=url,
        rate_per_second=0,
        poll_seconds=0.1,
        max_upload_bytes=1 << 20,
        max_import_bytes=1 << 20,
        intake_key="00" * 32,
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(s), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 120  # (the app starts its workers; a loaded machine is slow)
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


#: what every answer must be: no server error, and what the OpenAPI schema says (status code,
#: content type, headers and body)
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


def fuzz(
    op: schemathesis.APIOperation, base: str, headers: dict[str, str], statuses: dict[int, int]
) -> list[str]:
    """Generated requests for one operation; the answers that were server errors or did not
    conform to the schema."""
    failures: list[str] = []

    # valid requests, and invalid ones (negative mode: wrong types, missing fields, ...)
    @given(case=st.one_of(*(op.as_strategy(mode) for mode in GenerationMode)))
    @settings(
        max_examples=int(os.environ.get("OPSPOOR_FUZZ_EXAMPLES", "25")),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=base, headers=headers, timeout=30)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        try:
            case.validate_response(response, checks=CHECKS)
        except Exception as exc:  # schemathesis' FailureGroup: one line each
            failures.append(
                f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]} "
                f"({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__})"
            )

    check()
    return failures


def test_schemathesis_finds_no_server_error_and_answers_conform_on_both_stores(db_url: str) -> None:
    tokens: dict[str, str] = {}
    with open_store(db_url) as store:
        for role in ("platform", "curator", "analyst", "admin", "reporter", "hotline"):
            tokens[role] = create_token(store, role, "fuzz")[1]
    statuses: dict[int, int] = {}
    failures: list[str] = []
    with served(db_url) as base:
        schema = schemathesis.openapi.from_dict(httpx.get(f"{base}/openapi.json").json())
        for result in schema.get_all_operations():
            op = result.ok()
            role = next(
                (r for p, r in ROLE_FOR.items() if op.path == p or op.path.startswith(p + "/")), "curator"
            )
            failures += fuzz(op, base, {"Authorization": f"Bearer {tokens[role]}"}, statuses)
    print(f"{db_url.split(':')[0]}: {sum(statuses.values())} requests, statuses {sorted(statuses.items())}")
    assert sum(statuses.values()) >= 100
    assert failures == []
    assert sum(n for s, n in statuses.items() if s < 300) >= 20, statuses  # it got past validation too
    with open_store(db_url) as store:  # and every request it made is in an intact audit log
        verdict = verify_audit(store)
        rows = list_audit(store, limit=100_000)
    assert verdict.ok and verdict.unstopped == (), verdict
    assert len(rows) >= sum(n for s, n in statuses.items() if s not in (401, 429)) * 0.5


def serve_refusal(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """``opspoor serve`` that must refuse before uvicorn starts: its exit status and stderr lines."""
    cmd = [sys.executable, "-m", "opspoor", "serve", "--db", str(tmp_path / "store.sqlite"), *args]
    done = subprocess.run(
        cmd, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stderr.strip().splitlines()


def test_serve_refuses_a_bad_intake_key_in_one_line_naming_the_variable(tmp_path: Path) -> None:
    code, lines = serve_refusal(tmp_path, "--port", "0", env={"OPSPOOR_SERVICE_INTAKE_KEY": "abc"})
    assert code == 2
    assert len(lines) == 1, lines
    assert "OPSPOOR_SERVICE_INTAKE_KEY" in lines[0] and "32 bytes" in lines[0]
    assert not (tmp_path / "store.sqlite").exists()  # refused before anything was made


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("OPSPOOR_SERVICE_MAX_PIXELS", "lots", "whole number"),
        ("OPSPOOR_SERVICE_RATE_PER_SECOND", "fast", "number"),
    ],
)
def test_serve_refuses_a_setting_of_the_wrong_kind_in_one_line(
    tmp_path: Path, variable: str, value: str, said: str
) -> None:
    code, lines = serve_refusal(tmp_path, "--port", "0", env={variable: value})
    assert code == 2
    assert len(lines) == 1, lines
    assert variable in lines[0] and said in lines[0] and repr(value) in lines[0]
    assert not (tmp_path / "store.sqlite").exists()


def test_serve_refuses_a_busy_port_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, lines = serve_refusal(tmp_path, "--port", str(port))
    assert code == 2
    assert len(lines) == 1, lines
    assert f"127.0.0.1:{port}" in lines[0] and "--port" in lines[0]
    assert not any("startup complete" in line for line in lines)
