"""The HTTP service through FastAPI's TestClient, on SQLite and PostgreSQL: authentication, roles
and tenants on every route of the OpenAPI schema, hashing and matching (uploads that are media, not
media, truncated or too large), live changes reaching matching, hash-set management and import,
tokens, rate limits, problem details, metrics, and the audit log with its hash chain.

Every image is generated (gradients, shapes, text); every hash set holds benign values only.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from opspoor.cli import app as cli_app
from opspoor.demo.images import generate_image
from opspoor.service.app import create_app
from opspoor.service.settings import Settings
from opspoor.store import open_store
from opspoor.store.audit import AuditEvent, append_audit, list_audit, verify_audit
from opspoor.store.tokens import create_token, find_token

ROLES = ("platform", "curator", "analyst", "admin", "reporter", "hotline")
ALL = frozenset(ROLES)
#: who may call each route (the issue's role model); the schema walk checks it is complete
ROUTE_ROLES: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/v1/ready"): ALL,
    ("GET", "/metrics"): ALL,
    ("POST", "/v1/hash"): frozenset({"platform"}),
    ("POST", "/v1/match"): frozenset({"platform", "analyst"}),
    ("GET", "/v1/hashsets"): frozenset({"curator", "analyst"}),
    ("POST", "/v1/hashsets"): frozenset({"curator"}),
    ("GET", "/v1/hashsets/{name}"): frozenset({"curator", "analyst"}),
    ("DELETE", "/v1/hashsets/{name}"): frozenset({"curator"}),
    ("POST", "/v1/hashsets/{name}/entries"): frozenset({"curator"}),
    ("DELETE", "/v1/hashsets/{name}/entries"): frozenset({"curator"}),
    ("POST", "/v1/hashsets/{name}/import"): frozenset({"curator"}),
    ("GET", "/v1/tokens"): frozenset({"admin"}),
    ("POST", "/v1/tokens"): frozenset({"admin"}),
    ("GET", "/v1/tokens/{token_id}"): frozenset({"admin"}),
    ("DELETE", "/v1/tokens/{token_id}"): frozenset({"admin"}),
    ("GET", "/v1/audit"): frozenset({"admin"}),
    ("POST", "/v1/intake/submit"): frozenset({"reporter"}),
    ("POST", "/v1/intake/reports/{report_id}/upload"): frozenset({"reporter"}),
    ("POST", "/v1/intake/reports/{report_id}/fileinfo"): frozenset({"reporter"}),
    ("POST", "/v1/intake/reports/{report_id}/retract"): frozenset({"reporter"}),
    ("POST", "/v1/intake/reports/{report_id}/finish"): frozenset({"reporter"}),
    ("GET", "/v1/intake/reports/{report_id}"): frozenset({"reporter", "hotline"}),
    ("GET", "/v1/intake/reports"): frozenset({"reporter", "hotline"}),
    ("GET", "/v1/intake/referrals/{country}"): frozenset({"hotline"}),
    ("GET", "/v1/intake/bundles/{bundle_id}"): frozenset({"hotline"}),
    ("POST", "/v1/hashsets/{name}/shares"): frozenset({"curator"}),
    ("GET", "/v1/hashsets/{name}/shares"): frozenset({"curator"}),
    ("DELETE", "/v1/hashsets/{name}/shares/{subscriber}"): frozenset({"curator"}),
    ("GET", "/v1/shared"): frozenset({"curator", "analyst", "platform"}),
    ("POST", "/v1/subscriptions"): frozenset({"curator"}),
    ("DELETE", "/v1/subscriptions/{publisher}/{name}"): frozenset({"curator"}),
    ("POST", "/v1/streams"): frozenset({"platform"}),
    ("POST", "/v1/streams/{stream_id}/frames"): frozenset({"platform"}),
    ("DELETE", "/v1/streams/{stream_id}"): frozenset({"platform"}),
}
PUBLIC = {("GET", "/v1/health")}
TEST_SETTINGS = Settings(
    poll_seconds=0.1,
    audit_flush_seconds=0.02,
    token_cache_seconds=0.3,
    rate_per_second=0,
    max_upload_bytes=2 * 1024 * 1024,
    max_json_bytes=1024 * 1024,
    max_import_bytes=1024 * 1024,
    intake_key="00" * 32,
)
PROBLEM = "application/problem+json"


# --- fixtures --------------------------------------------------------------------------------------
@dataclass
class Api:
    client: TestClient
    url: str
    secrets: dict[tuple[str, str], str]  # (tenant, role) -> token secret
    ids: dict[tuple[str, str], int]

    def auth(self, tenant: str, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[tenant, role]}"}

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.client.get("/v1/ready", headers=self.auth("b", "admin")).status_code == 200:
                return
            time.sleep(0.05)
        raise AssertionError("the service did not become ready")


@contextmanager
def running(url: str, settings: Settings = TEST_SETTINGS) -> Iterator[Api]:
    secrets: dict[tuple[str, str], str] = {}
    ids: dict[tuple[str, str], int] = {}
    with open_store(url) as store:
        for tenant in ("a", "b"):
            for role in ROLES:
                rec, secret = create_token(store, role, tenant, label=f"{tenant}-{role}")
                secrets[tenant, role], ids[tenant, role] = secret, rec.id
    with TestClient(create_app(replace(settings, db=url))) as client:
        api = Api(client, url, secrets, ids)
        api.wait_ready()
        yield api


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with running(db_url) as a:
        yield a


@pytest.fixture
def sqlite_api(sqlite_url: str) -> Iterator[Api]:
    with running(sqlite_url) as a:
        yield a


def image_bytes(seed: int, fmt: str = "JPEG", size: tuple[int, int] = (480, 360)) -> bytes:
    out = io.BytesIO()
    generate_image(seed, *size, style="mixed").save(out, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def eventually(check: Callable[[], bool], timeout: float = 30.0) -> float:
    """Seconds until ``check()`` held; fails after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout} s")


def match_values(api: Api, signals: list[dict[str, str]], tenant: str = "a") -> list[dict[str, Any]]:
    r = api.client.post("/v1/match", headers=api.auth(tenant, "platform"), json={"signals": signals})
    assert r.status_code == 200, r.text
    return list(r.json()["results"])


def add_entries(api: Api, name: str, entries: list[dict[str, Any]], tenant: str = "a") -> dict[str, Any]:
    r = api.client.post(
        f"/v1/hashsets/{name}/entries", headers=api.auth(tenant, "curator"), json={"entries": entries}
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def create_set(api: Api, name: str, tenant: str = "a", **extra: Any) -> None:
    r = api.client.post("/v1/hashsets", headers=api.auth(tenant, "curator"), json={"name": name, **extra})
    assert r.status_code == 201, r.text


def is_problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status and body["type"].startswith("urn:opspoor:problem:") and body["detail"]
    return dict(body)


# --- routes, roles and tenants ---------------------------------------------------------------------
def test_every_route_needs_a_token_of_its_role_and_shows_no_other_tenants_data(api: Api) -> None:
    c = api.client
    schema = c.get("/openapi.json").json()
    ops = {(m.upper(), p) for p, item in schema["paths"].items() for m in item}
    assert ops == set(ROUTE_ROLES) | PUBLIC, "a route without a declared role model"

    # tenant a's data, which tenant b must never see nor touch
    pic = image_bytes(1)
    pic_md5 = hashlib.md5(pic).hexdigest()
    create_set(api, "victim-set", source="victim-src-x")
    add_entries(
        api,
        "victim-set",
        [
            {
                "signals": {"md5": pic_md5},
                "external_id": "victim-ext-7",
                "category": {"scheme": "us-cat", "code": "1"},
            }
        ],
    )
    eventually(lambda: bool(match_values(api, [{"type": "md5", "value": pic_md5}])[0]["matches"]))
    a_token = api.ids["a", "admin"]
    markers = ("victim-ext-7", "victim-src-x", "victim-screen-9")  # stored by a, never sent by b
    a_report = c.post(
        "/v1/intake/submit",
        headers=api.auth("a", "reporter"),
        json={
            "report": {
                "incidentSummary": {
                    "incidentType": "Child Sex Tourism",
                    "incidentDateTime": "2026-01-01T00:00:00Z",
                },
                "personOrUserReported": [{"screenName": "victim-screen-9"}],
            }
        },
    ).json()["reportId"]

    def call(method: str, path: str, headers: dict[str, str]) -> Any:
        url = path.replace("{name}", "victim-set").replace("{token_id}", str(a_token))
        url = url.replace("{subscriber}", "b").replace("{publisher}", "a")
        url = url.replace("{report_id}", str(a_report)).replace("{country}", "NL").replace("{bundle_id}", "1")
        kw: dict[str, Any] = {"headers": headers}
        if (method, path) in (("POST", "/v1/hash"), ("POST", "/v1/intake/reports/{report_id}/upload")):
            kw["files"] = {"file": ("x.jpg", pic, "image/jpeg")}
        elif (method, path) == ("POST", "/v1/match"):
            kw["json"] = {"signals": [{"type": "md5", "value": pic_md5}]}
        elif (method, path) == ("POST", "/v1/hashsets"):
            kw["json"] = {"name": "b-own-set"}
        elif (method, path) == ("POST", "/v1/hashsets/{name}/entries"):
            kw["json"] = {"entries": [{"signals": {"md5": "0" * 32}}]}
        elif (method, path) == ("DELETE", "/v1/hashsets/{name}/entries"):
            kw["json"] = {"signal": "md5", "values": [pic_md5]}
        elif (method, path) == ("POST", "/v1/hashsets/{name}/import"):
            kw["content"] = (pic_md5 + "\n").encode()
            kw["headers"] = {**headers, "content-type": "application/octet-stream"}
        elif (method, path) == ("POST", "/v1/intake/reports/{report_id}/fileinfo"):
            kw["json"] = {"fileDetails": {"fileId": 1}}
        elif (method, path) == ("POST", "/v1/hashsets/{name}/shares"):
            kw["json"] = {"tenants": ["b"]}
        elif (method, path) == ("POST", "/v1/subscriptions"):
            kw["json"] = {"publisher": "a", "hashset": "victim-set"}
        elif (method, path) == ("POST", "/v1/intake/submit"):
            kw["json"] = {"report": {}}
        elif (method, path) == ("POST", "/v1/tokens"):
            kw["json"] = {"role": "platform"}
        return c.request(method, url, **kw)

    for method, path in sorted(ROUTE_ROLES):
        where = f"{method} {path}"
        r = call(method, path, {})
        assert r.status_code == 401, where
        is_problem(r, 401)
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert call(method, path, {"Authorization": "Bearer opspoor_not-a-real-token"}).status_code == 401, (
            where
        )
        assert call(method, path, {"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 401, where
        for role in sorted(set(ROLES) - ROUTE_ROLES[method, path]):
            is_problem(call(method, path, api.auth("a", role)), 403)
        for role in sorted(ROUTE_ROLES[method, path]):
            r = call(method, path, api.auth("b", role))
            assert r.status_code < 500 and r.status_code not in (401, 403), f"{where} as b/{role}: {r.text}"
            for marker in markers:
                assert marker not in r.text, f"{where} as b/{role} shows tenant a's {marker}"
            if (
                path.startswith(("/v1/hashsets/{name}", "/v1/intake/reports/{"))
                or path == "/v1/tokens/{token_id}"
            ):
                assert r.status_code == 404, f"{where} as b/{role} reached tenant a's object"
            if (method, path) == ("POST", "/v1/match"):
                assert r.json()["results"][0]["matches"] == []
            if (method, path) == ("GET", "/v1/hashsets"):
                assert "victim-set" not in {h["name"] for h in r.json()["hashsets"]}
            if (method, path) == ("GET", "/v1/tokens"):
                assert {t["tenant"] for t in r.json()["tokens"]} == {"b"}
            if (method, path) == ("GET", "/v1/audit"):
                assert {row["tenant"] for row in r.json()["rows"]} <= {"b"}

    # tenant a's set, entry and token survived tenant b's attempts
    shown = c.get("/v1/hashsets/victim-set", headers=api.auth("a", "analyst")).json()
    assert shown["entries"] == 1
    assert (
        match_values(api, [{"type": "md5", "value": pic_md5}])[0]["matches"][0]["external_id"]
        == "victim-ext-7"
    )
    assert c.get("/v1/tokens", headers=api.auth("a", "admin")).status_code == 200


def test_health_needs_no_token_and_ready_reports_the_index(api: Api) -> None:
    assert api.client.get("/v1/health").json() == {"status": "ok"}
    r = api.client.get("/v1/ready", headers=api.auth("b", "curator"))
    body = r.json()
    assert r.status_code == 200 and body["ready"] is True and body["change_log_age_seconds"] < 5
    assert set(body["index"]) >= {"md5", "pdq"}


# --- matching --------------------------------------------------------------------------------------
def test_match_by_values_and_by_file_reports_entries(api: Api) -> None:
    pic = image_bytes(2)
    h = api.client.post(
        "/v1/hash", headers=api.auth("a", "platform"), files={"file": ("p.jpg", pic, "image/jpeg")}
    )
    sig = h.json()
    assert h.status_code == 200 and sig["md5"] == hashlib.md5(pic).hexdigest() and sig["pdq_quality"] >= 50
    assert (
        sig["sha256"] == hashlib.sha256(pic).hexdigest() and sig["kind"] == "image" and sig["error"] is None
    )
    create_set(api, "known", distance=20)
    add_entries(
        api,
        "known",
        [
            {
                "signals": {"pdq": sig["pdq"]},
                "external_id": "e-pdq",
                "category": {"scheme": "uk", "code": "B"},
            },
            {"signals": {"sha1": sig["sha1"]}, "external_id": "e-sha1"},
        ],
    )
    near = bytearray.fromhex(sig["pdq"])
    near[0] ^= 0b111  # 3 bits away
    far = bytes(b ^ 0xFF for b in near)

    def found() -> bool:
        return bool(match_values(api, [{"type": "pdq", "value": near.hex()}])[0]["matches"])

    eventually(found)
    res = match_values(
        api,
        [
            {"type": "pdq", "value": near.hex().upper()},
            {"type": "pdq", "value": far.hex()},
            {"type": "sha1", "value": sig["sha1"]},
            {"type": "md5", "value": "0" * 32},
        ],
    )
    assert [r["input"] for r in res] == [0, 1, 2, 3]
    (m,) = res[0]["matches"]
    assert (m["hashset"], m["external_id"], m["distance"], m["signal"]) == ("known", "e-pdq", 3, "pdq")
    assert m["category"] == {"scheme": "uk", "code": "B"} and isinstance(m["entry_id"], int)
    assert res[1]["matches"] == [] and res[3]["matches"] == []
    assert res[2]["matches"][0]["external_id"] == "e-sha1" and res[2]["matches"][0]["category"] is None

    # the same picture, re-encoded (other bytes): found by PDQ only; the original by both
    recoded = io.BytesIO()
    from PIL import Image

    Image.open(io.BytesIO(pic)).save(recoded, "PNG")
    for data, want in ((pic, {"e-pdq", "e-sha1"}), (recoded.getvalue(), {"e-pdq"})):
        r = api.client.post(
            "/v1/match", headers=api.auth("a", "analyst"), files={"file": ("q", data, "image/png")}
        )
        assert r.status_code == 200, r.text
        (result,) = r.json()["results"]
        assert {x["external_id"] for x in result["matches"]} == want
        assert result["file"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_match_request_limits_and_validation(api: Api) -> None:
    c, h = api.client, api.auth("a", "platform")
    ok = [{"type": "md5", "value": f"{i:032x}"} for i in range(1000)]
    assert len(match_values(api, ok)) == 1000
    is_problem(c.post("/v1/match", headers=h, json={"signals": ok + ok[:1]}), 422)
    is_problem(c.post("/v1/match", headers=h, json={"signals": []}), 422)
    bad_hex = is_problem(
        c.post("/v1/match", headers=h, json={"signals": [{"type": "pdq", "value": "zz" * 32}]}), 422
    )
    assert "signals.0.value" in bad_hex["detail"]
    short = is_problem(
        c.post("/v1/match", headers=h, json={"signals": [{"type": "pdq", "value": "ab" * 16}]}), 422
    )
    assert "64 hex" in short["detail"]
    is_problem(
        c.post("/v1/match", headers=h, json={"signals": [{"type": "photodna", "value": "ab" * 16}]}), 422
    )
    is_problem(
        c.post("/v1/match", headers={**h, "content-type": "application/json"}, content=b"{not json"), 422
    )
    is_problem(c.post("/v1/match", headers={**h, "content-type": "text/plain"}, content=b"x"), 415)


# --- uploads -------------------------------------------------------------------------------------
def test_uploads_that_are_not_media_or_truncated_still_get_their_digests(api: Api) -> None:
    c, h = api.client, api.auth("a", "platform")
    text = b"just some text, not a picture\n" * 10
    r = c.post("/v1/hash", headers=h, files={"file": ("notes.txt", text, "text/plain")})
    body = r.json()
    assert r.status_code == 200 and body["kind"] == "other" and body["pdq"] is None and body["error"] is None
    assert (body["md5"], body["sha1"], body["size"]) == (
        hashlib.md5(text).hexdigest(),
        hashlib.sha1(text).hexdigest(),
        len(text),
    )
    jpeg = image_bytes(3)
    cut = jpeg[: len(jpeg) // 3]
    r = c.post("/v1/hash", headers=h, files={"file": ("cut.jpg", cut, "image/jpeg")})
    body = r.json()
    assert r.status_code == 200 and body["kind"] == "image" and body["pdq"] is None
    assert body["error"]["reason"] and body["error"]["message"]
    assert body["sha256"] == hashlib.sha256(cut).hexdigest()
    # matching a truncated copy still works by its digest
    create_set(api, "cuts")
    add_entries(api, "cuts", [{"signals": {"sha256": body["sha256"]}, "external_id": "cut-1"}])

    def found() -> bool:
        r = c.post("/v1/match", headers=h, files={"file": ("cut.jpg", cut, "image/jpeg")})
        return bool(r.json()["results"][0]["matches"])

    eventually(found)
    empty = c.post("/v1/hash", headers=h, files={"file": ("empty", b"", "application/octet-stream")}).json()
    assert empty["size"] == 0 and empty["md5"] == hashlib.md5(b"").hexdigest()


def test_upload_limits_and_malformed_requests(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from opspoor.service import routes_match

    released = threading.Event()

    def slow_hash(*args: Any, **kwargs: Any) -> Any:
        # a decode that lasts until the answer has come, whatever the load: a real one of a small
        # picture (or one a fixed time long) can finish before a loaded machine lets the event loop
        # notice the deadline
        released.wait(120)
        return real_hash(*args, **kwargs)

    real_hash = routes_match.hash_bytes
    settings = replace(TEST_SETTINGS, max_upload_bytes=256 * 1024, max_json_bytes=4096, decode_seconds=0.05)
    with running(sqlite_url, settings) as api:
        c, h = api.client, api.auth("a", "platform")
        big = np.random.default_rng(0).bytes(300 * 1024)
        body = is_problem(c.post("/v1/hash", headers=h, files={"file": ("big.bin", big)}), 413)
        assert "262,144" in body["detail"]
        is_problem(c.post("/v1/match", headers=h, files={"file": ("big.bin", big)}), 413)
        # the same without a Content-Length (chunked): counted as it streams
        boundary = "xYzBoUnDaRy"
        payload = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="b"\r\n\r\n'.encode()
            + big
            + f"\r\n--{boundary}--\r\n".encode()
        )
        chunked = c.post(
            "/v1/hash",
            headers={**h, "content-type": f"multipart/form-data; boundary={boundary}"},
            content=iter([payload[i : i + 8192] for i in range(0, len(payload), 8192)]),
        )
        is_problem(chunked, 413)
        is_problem(c.post("/v1/hash", headers=h, files={"other": ("x", b"abc")}), 422)
        is_problem(c.post("/v1/hash", headers=h, json={"file": "abc"}), 415)
        garbled = c.post(
            "/v1/hash",
            headers={**h, "content-type": "multipart/form-data; boundary=zz"},
            content=b"--zz\r\nnonsense",
        )
        assert garbled.status_code in (400, 422) and garbled.headers["content-type"].startswith(PROBLEM)
        # decoding longer than the limit (50 ms here) is refused, not waited for
        pic = image_bytes(4)
        assert len(pic) < 256 * 1024
        monkeypatch.setattr(routes_match, "hash_bytes", slow_hash)
        try:
            r = c.post("/v1/hash", headers=h, files={"file": ("slow.jpg", pic)})
        finally:
            released.set()
        assert is_problem(r, 422)["type"].endswith("decode-timeout")
        # JSON bodies have their own limit
        is_problem(c.post("/v1/hashsets", headers=api.auth("a", "curator"), json={"name": "x" * 5000}), 413)


# --- live changes ----------------------------------------------------------------------------------
def test_changes_reach_matching_within_seconds_without_a_restart(api: Api) -> None:
    c = api.client
    create_set(api, "live")
    md5s = [hashlib.md5(str(i).encode()).hexdigest() for i in range(3)]
    add_entries(api, "live", [{"signals": {"md5": m}, "external_id": f"x{i}"} for i, m in enumerate(md5s)])

    def matched(m: str) -> bool:
        return bool(match_values(api, [{"type": "md5", "value": m}])[0]["matches"])

    assert eventually(lambda: all(matched(m) for m in md5s)) < 5
    r = c.request(
        "DELETE",
        "/v1/hashsets/live/entries",
        headers=api.auth("a", "curator"),
        json={"signal": "md5", "values": [md5s[0]]},
    )
    assert r.status_code == 200 and len(r.json()["removed"]) == 1
    eventually(lambda: not matched(md5s[0]))
    entry_id = match_values(api, [{"type": "md5", "value": md5s[1]}])[0]["matches"][0]["entry_id"]
    r = c.request(
        "DELETE",
        "/v1/hashsets/live/entries",
        headers=api.auth("a", "curator"),
        json={"entry_ids": [entry_id]},
    )
    assert r.json()["removed"] == [entry_id]
    eventually(lambda: not matched(md5s[1]))
    assert matched(md5s[2])
    r = c.delete("/v1/hashsets/live", headers=api.auth("a", "curator"))
    assert r.json() == {"name": "live", "removed_entries": 1}
    eventually(lambda: not matched(md5s[2]))
    # a new set of the same name starts empty and is followed too
    create_set(api, "live")
    add_entries(api, "live", [{"signals": {"md5": md5s[0]}, "external_id": "again"}])
    eventually(lambda: matched(md5s[0]))
    assert not matched(md5s[2])
    is_problem(
        c.request("DELETE", "/v1/hashsets/live/entries", headers=api.auth("a", "curator"), json={}), 422
    )


# --- hash sets -------------------------------------------------------------------------------------
def test_hashset_management_and_import(api: Api) -> None:
    c, h = api.client, api.auth("a", "curator")
    create_set(api, "plain", kind="ignorable", source="unit test")
    is_problem(c.post("/v1/hashsets", headers=h, json={"name": "plain"}), 409)
    is_problem(c.post("/v1/hashsets", headers=h, json={"name": "k", "kind": "nonsense"}), 422)
    is_problem(c.post("/v1/hashsets", headers=h, json={"name": "k", "distance": 999}), 422)
    md5s = [hashlib.md5(f"item {i}".encode()).hexdigest() for i in range(5)]
    r = c.post(
        "/v1/hashsets/plain/import?format=plain",
        headers={**h, "content-type": "application/octet-stream"},
        content=("\n".join(md5s) + "\n").encode(),
    )
    assert r.status_code == 200, r.text
    assert r.json()["added"] == 5
    csv = "md5,category\n" + "".join(f"{m},us-cat:5\n" for m in md5s[:2]) + f"{'e' * 32},us-cat:5\n"
    r = c.post("/v1/hashsets/plain/import", headers=h, files={"file": ("list.csv", csv.encode(), "text/csv")})
    assert r.status_code == 200, r.text
    assert r.json()["added"] + r.json()["duplicates"] == 3
    listed = c.get("/v1/hashsets", headers=api.auth("a", "analyst")).json()["hashsets"]
    assert [(s["name"], s["kind"], s["source"]) for s in listed] == [("plain", "ignorable", "unit test")]
    shown = c.get("/v1/hashsets/plain", headers=h).json()
    assert shown["entries"] == listed[0]["entries"] >= 6 and shown["signals"]["md5"] == shown["entries"]

    # all or nothing: a broken file adds nothing and names the record at fault
    before = shown["entries"]
    broken = c.post(
        "/v1/hashsets/plain/import?format=plain",
        headers={**h, "content-type": "application/octet-stream"},
        content=f"{'a' * 32}\nnot-a-hash\n".encode(),
    )
    assert "line 2" in is_problem(broken, 422)["detail"] or "record 2" in broken.json()["detail"]
    assert c.get("/v1/hashsets/plain", headers=h).json()["entries"] == before
    skipped = c.post(
        "/v1/hashsets/plain/import?format=plain&skip_invalid=true",
        headers={**h, "content-type": "application/octet-stream"},
        content=f"{'a' * 32}\nnot-a-hash\n".encode(),
    ).json()
    assert skipped["added"] == 1 and skipped["rejected"] == 1 and skipped["rejects"][0]["reason"]
    is_problem(c.post("/v1/hashsets/nope/import", headers=h, content=b"x"), 404)
    too_big = c.post("/v1/hashsets/plain/import?format=plain", headers=h, content=b"0" * (1024 * 1024 + 10))
    is_problem(too_big, 413)
    is_problem(
        c.post("/v1/hashsets/plain/entries", headers=h, json={"entries": [{"signals": {"md5": "xyz"}}]}), 422
    )
    is_problem(
        c.post(
            "/v1/hashsets/plain/entries",
            headers=h,
            json={"entries": [{"signals": {"md5": "b" * 32}, "category": {"scheme": "xx", "code": "9"}}]},
        ),
        422,
    )
    assert c.delete("/v1/hashsets/plain", headers=h).status_code == 200
    is_problem(c.get("/v1/hashsets/plain", headers=h), 404)


# --- tokens and rates ------------------------------------------------------------------------------
def test_tokens_are_shown_once_stored_hashed_and_revocable(api: Api) -> None:
    c, h = api.client, api.auth("a", "admin")
    r = c.post("/v1/tokens", headers=h, json={"role": "platform", "label": "uploader"})
    assert r.status_code == 201
    made = r.json()
    secret = made["token"]
    assert (made["tenant"], made["role"], made["created_by"]) == ("a", "platform", api.ids["a", "admin"])
    listed = c.get("/v1/tokens", headers=h).json()["tokens"]
    assert secret not in json.dumps(listed) and all("token" not in t for t in listed)
    with open_store(api.url) as store, store.read() as conn:
        stored = conn.execute(
            sa.text("SELECT secret_sha256 FROM tokens WHERE id = :i"), {"i": made["id"]}
        ).scalar_one()
    assert stored == hashlib.sha256(secret.encode()).hexdigest() and secret not in stored
    mine = {"Authorization": f"Bearer {secret}"}
    assert c.post("/v1/hash", headers=mine, files={"file": ("x", b"abc")}).status_code == 200
    assert c.get(f"/v1/tokens/{made['id']}", headers=h).json()["revoked_at"] is None
    assert c.delete(f"/v1/tokens/{made['id']}", headers=h).json()["revoked_at"] is not None
    eventually(lambda: c.post("/v1/hash", headers=mine, files={"file": ("x", b"abc")}).status_code == 401)
    is_problem(c.delete(f"/v1/tokens/{api.ids['b', 'admin']}", headers=h), 404)
    is_problem(c.post("/v1/tokens", headers=h, json={"role": "root"}), 422)


def test_rate_limit_per_token_answers_429(sqlite_url: str) -> None:
    with running(sqlite_url, replace(TEST_SETTINGS, rate_per_second=1, rate_burst=3)) as api:
        c = api.client
        codes = [
            c.post("/v1/hash", headers=api.auth("a", "platform"), files={"file": ("x", b"a")}).status_code
            for _ in range(5)
        ]
        assert codes[:3] == [200, 200, 200] and codes[-1] == 429
        r = c.post(
            "/v1/match",
            headers=api.auth("a", "platform"),
            json={"signals": [{"type": "md5", "value": "0" * 32}]},
        )
        body = is_problem(r, 429)
        assert int(r.headers["retry-after"]) >= 1 and "too many" in body["detail"]
        # another token has its own budget
        assert (
            c.post("/v1/hash", headers=api.auth("b", "platform"), files={"file": ("x", b"a")}).status_code
            == 200
        )


# --- errors and metrics ----------------------------------------------------------------------------
def test_errors_are_problem_details_and_metrics_need_a_token(api: Api) -> None:
    c = api.client
    is_problem(c.get("/v1/nothing-here"), 404)
    is_problem(c.put("/v1/hashsets", headers=api.auth("a", "curator")), 405)
    is_problem(c.get("/v1/tokens/not-a-number", headers=api.auth("a", "admin")), 422)
    is_problem(c.get("/metrics"), 401)
    c.get("/v1/hashsets", headers=api.auth("a", "curator"))
    r = c.get("/metrics", headers=api.auth("b", "platform"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert re.search(
        r'opspoor_http_requests_total\{method="GET",route="/v1/hashsets",status="200"\} [1-9]', r.text
    )
    assert 'route="/v1/nothing-here"' not in r.text  # templates, never raw paths
    for secret in api.secrets.values():
        assert secret not in r.text


# --- audit -----------------------------------------------------------------------------------------
def test_requests_are_audited_with_who_what_and_result(api: Api) -> None:
    c = api.client
    create_set(api, "audited")
    # a change is audited before it is answered
    with open_store(api.url) as store:
        rows = list_audit(store, tenant="a")
    assert any(r.event.action == "hashset.create" and r.event.object == "hashset:audited" for r in rows)
    c.get("/v1/hashsets/audited", headers=api.auth("b", "curator"))  # not b's: 404
    c.get("/v1/hashsets", headers=api.auth("a", "platform"))  # wrong role: 403
    c.post(
        "/v1/match", headers=api.auth("a", "platform"), json={"signals": [{"type": "md5", "value": "1" * 32}]}
    )
    c.get("/v1/ready", headers=api.auth("a", "platform"))  # not data: not audited

    def rows() -> list[tuple[Any, ...]]:
        with open_store(api.url) as store:
            return [
                (
                    r.event.token_id,
                    r.event.tenant,
                    r.event.action,
                    r.event.object,
                    r.event.result,
                    r.event.status,
                )
                for r in list_audit(store, limit=1000)
            ]

    want = [
        (api.ids["a", "curator"], "a", "hashset.create", "hashset:audited", "ok", 201),
        (api.ids["b", "curator"], "b", "hashset.show", "hashset:audited", "rejected", 404),
        (api.ids["a", "platform"], "a", "hashset.list", None, "denied", 403),
        (api.ids["a", "platform"], "a", "match", "values:1", "ok", 200),
    ]
    eventually(lambda: all(w in rows() for w in want))
    assert not any(r[2] == "ready" for r in rows())
    shown = c.get("/v1/audit", headers=api.auth("a", "admin")).json()["rows"]
    assert {r["tenant"] for r in shown} == {"a"} and all(len(r["row_hash"]) == 64 for r in shown)
    with open_store(api.url) as store:
        assert verify_audit(store).ok


def test_audit_verify_reports_the_first_altered_or_deleted_row(db_url: str) -> None:
    from datetime import UTC, datetime

    runner = CliRunner()
    with open_store(db_url) as store:
        append_audit(
            store,
            [AuditEvent(datetime.now(UTC), i, "t", "match", f"values:{i}", "ok", 200) for i in range(1, 6)],
        )
        append_audit(store, [AuditEvent(datetime.now(UTC), 9, "t", "hashset.create", "hashset:x", "ok", 201)])
        good = verify_audit(store)
        assert good.ok and good.rows == good.last_id == 6

        ok = runner.invoke(cli_app, ["audit", "verify", "--db", db_url])
        assert ok.exit_code == 0 and "intact: 6 rows" in ok.output
        anchored = runner.invoke(
            cli_app, ["audit", "verify", "--db", db_url, "--anchor", f"6:{good.last_hash}"]
        )
        assert anchored.exit_code == 0

        with store.write() as conn:  # someone edits a row in the database
            conn.execute(sa.text("UPDATE audit SET object = 'values:999' WHERE id = 3"))
        bad = runner.invoke(cli_app, ["audit", "verify", "--db", db_url])
        assert bad.exit_code == 1 and "row 3 is altered" in bad.output
        with store.write() as conn:
            conn.execute(sa.text("UPDATE audit SET object = 'values:3' WHERE id = 3"))
        assert verify_audit(store).ok

        with store.write() as conn:  # ... or deletes one
            conn.execute(sa.text("DELETE FROM audit WHERE id = 4"))
        gone = runner.invoke(cli_app, ["audit", "verify", "--db", db_url])
        assert gone.exit_code == 1 and "row 4 is missing" in gone.output
        assert verify_audit(store).bad_id == 4

        with store.write() as conn:  # ... or the newest rows, which only an anchor can tell
            conn.execute(sa.text("DELETE FROM audit WHERE id >= 4"))
        assert verify_audit(store).ok
        tail = runner.invoke(cli_app, ["audit", "verify", "--db", db_url, "--anchor", f"6:{good.last_hash}"])
        assert tail.exit_code == 1 and "row 6 (the anchor) is missing" in tail.output


# --- the command line ------------------------------------------------------------------------------
def test_token_commands(sqlite_url: str) -> None:
    runner = CliRunner()
    made = runner.invoke(
        cli_app, ["token", "create", "--role", "curator", "--tenant", "hotline-1", "--db", sqlite_url]
    )
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"opspoor_[A-Za-z0-9_-]{43}", secret)
    with open_store(sqlite_url) as store:
        rec = find_token(store, secret)
    assert rec is not None and (rec.role, rec.tenant, rec.active) == ("curator", "hotline-1", True)
    listed = runner.invoke(cli_app, ["token", "list", "--json", "--db", sqlite_url])
    assert listed.exit_code == 0 and secret not in listed.output and '"hotline-1"' in listed.output
    assert runner.invoke(cli_app, ["token", "revoke", str(rec.id), "--db", sqlite_url]).exit_code == 0
    with open_store(sqlite_url) as store:
        again = find_token(store, secret)
    assert again is not None and not again.active
    bad = runner.invoke(cli_app, ["token", "create", "--role", "root", "--tenant", "x", "--db", sqlite_url])
    assert bad.exit_code != 0


def test_uploads_are_hashed_in_memory_never_on_disk(sqlite_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an upload reached a temporary file")

    import starlette.formparsers

    for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile", "mkstemp", "mkdtemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", refuse)
    pic = image_bytes(5)
    big = pic + b"\0" * (1536 * 1024 - len(pic))  # 1.5 MB: past Starlette's 1 MB spool size
    r = sqlite_api.client.post(
        "/v1/hash", headers=sqlite_api.auth("a", "platform"), files={"file": ("p.png", big)}
    )
    assert r.status_code == 200, r.text
    assert r.json()["sha256"] == hashlib.sha256(big).hexdigest()


# --- the change-log follower -----------------------------------------------------------------------
def test_follower_applies_changes_committed_out_of_order_and_video_entries(sqlite_url: str) -> None:
    from opspoor.hashsets.model import Entry
    from opspoor.matching import Query
    from opspoor.service.live import IndexFollower
    from opspoor.signals.vpdq import VpdqFrame, format_vpdq
    from opspoor.store import import_entries, remove_entries

    rng = np.random.default_rng(5)

    def video(n: int) -> tuple[str, list[str]]:
        frames = [rng.bytes(32).hex() for _ in range(n)]
        return format_vpdq([VpdqFrame(i, 90, h, float(i)) for i, h in enumerate(frames)]), frames

    v1, frames1 = video(6)
    v2, frames2 = video(5)
    with open_store(sqlite_url) as store:
        import_entries(store, "vid", [Entry({"vpdq": v1}, external_id="v1")], tenant="t")
        follower = IndexFollower(store)
        follower.load()
        follower.poll()
        m = follower.matcher("t")

        def hits(frames: list[str]) -> set[str | None]:
            return {x.external_id for x in m.match_queries([Query(vpdq_frames=frames)])[0]}

        assert hits(frames1) == {"v1"} and hits(frames2) == set()
        # a writer whose change id is lower commits after one with a higher id (PostgreSQL can do this)
        import_entries(store, "vid", [Entry({"md5": "1" * 32}, external_id="m1")], tenant="t")
        with store.write() as conn:
            conn.execute(sa.text("UPDATE changes SET id = 5 WHERE id = 2"))
        follower.poll()
        assert follower.last_change == 5 and {
            x.external_id for x in m.match_queries([Query(md5="1" * 32)])[0]
        } == {"m1"}
        import_entries(
            store, "vid", [Entry({"vpdq": v2}, external_id="v2")], tenant="t"
        )  # change id 3: a gap
        follower.poll()
        assert hits(frames2) == {"v2"} and hits(frames1) == {"v1"}
        (gone,) = m.match_queries([Query(vpdq_frames=frames1)])[0]
        remove_entries(store, "vid", entry_ids=[gone.entry_id], tenant="t")
        follower.poll()
        assert hits(frames1) == set() and hits(frames2) == {"v2"}
        assert follower.matcher("other").match_queries([Query(vpdq_frames=frames2)]) == [[]]


def test_follower_puts_local_features_of_added_entries_into_a_new_local_index(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries added while the service runs are matched by their local features once the follower
    has built a new local index (at most every LOCAL_REBUILD_SECONDS); removed ones stop at once,
    and their features are left out of the next local index."""
    from opspoor.hashsets.model import Entry
    from opspoor.matching import Query
    from opspoor.service import live
    from opspoor.signals.local import local_features
    from opspoor.store import changes_since, import_entries, remove_entries
    from pictures import busy_picture

    def entry(seed: int) -> Entry:
        features = local_features(np.asarray(busy_picture(seed))).encode()
        return Entry({"md5": f"{seed:032x}"}, external_id=f"p{seed}", derived={"local": [features]})

    def found(m: live.LiveMatcher, seed: int) -> list[tuple[str | None, str]]:
        img = busy_picture(seed)
        crop = img.crop((0, 0, img.width * 4 // 5, img.height * 4 // 5))  # no PDQ reaches it
        query = Query(local=local_features(np.asarray(crop), mirror=True).encode())
        return [(x.external_id, x.signal) for x in m.match_queries([query])[0]]

    with open_store(db_url) as store:
        import_entries(store, "own", [entry(50)], tenant="t")
        import_entries(store, "plain", [Entry({"md5": "1" * 32}, external_id="m1")], tenant="u")
        follower = live.IndexFollower(store)
        follower.load()
        follower.poll()
        t, u = follower.matcher("t"), follower.matcher("u")
        assert t.has_local and not u.has_local
        assert found(t, 50) == [("p50", "local")] and found(t, 51) == []

        import_entries(store, "own", [entry(51)], tenant="t")
        import_entries(store, "plain", [entry(52)], tenant="u")
        monkeypatch.setattr(live, "LOCAL_REBUILD_SECONDS", 3600.0)
        follower.poll()  # read, but not yet in a local index
        assert len(t.local_pending) == 1 and found(t, 51) == [] and not u.has_local
        monkeypatch.setattr(live, "LOCAL_REBUILD_SECONDS", 0.0)
        follower.poll()
        assert t.local_pending == [] and found(t, 51) == [("p51", "local")]
        assert found(t, 50) == [("p50", "local")]  # the features held before are kept
        assert u.has_local and found(u, 52) == [("p52", "local")] and found(u, 51) == []
        # an add applied again (as one made during the load is) leaves the index as it was
        before = len(t.local)
        for change in changes_since(store, 0):
            follower._apply_add(change)
        follower.poll()
        assert len(t.local) == before and found(t, 51) == [("p51", "local")]

        (gone,) = t.match_queries([Query(md5=f"{50:032x}")])[0]
        held = len(t.local)
        monkeypatch.setattr(live, "LOCAL_REBUILD_SECONDS", 3600.0)
        remove_entries(store, "own", entry_ids=[gone.entry_id], tenant="t")
        follower.poll()
        assert found(t, 50) == [] and found(t, 51) == [("p51", "local")]  # at once
        assert gone.entry_id in t.local.owner  # its descriptors wait for the next local index
        monkeypatch.setattr(live, "LOCAL_REBUILD_SECONDS", 0.0)
        follower.poll()
        assert gone.entry_id not in t.local.owner and len(t.local) < held
        assert t.local_removed == set() and found(t, 51) == [("p51", "local")] and found(t, 50) == []
        follower.poll()  # nothing new: the index stays the one built
        assert len(t.local) < held


def test_an_upload_is_matched_by_local_features_against_a_set_that_holds_them(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A hotline's own set built with --augment: an upload that is a crop off the centre of one of
    its originals (no PDQ method reaches it) is found by its local features, for that tenant only."""
    from pictures import busy_picture

    originals = tmp_path / "originals"
    originals.mkdir()
    for k in range(3):
        busy_picture(40 + k).save(originals / f"item{k}.png")
    args = ["hashset", "build", str(originals), "--name", "own", "--augment", "--workers", "1"]
    res = CliRunner().invoke(cli_app, [*args, "--db", sqlite_url])
    assert res.exit_code == 0, res.output
    with open_store(sqlite_url) as store:  # the CLI builds into the default tenant
        _, secret = create_token(store, "analyst", "default", label="default-analyst")
    crop = busy_picture(41).crop((0, 0, 640, 480))
    buf = io.BytesIO()
    crop.save(buf, "JPEG", quality=90)
    with running(sqlite_url) as api:
        headers = {"Authorization": f"Bearer {secret}"}
        r = api.client.post("/v1/match", headers=headers, files={"file": ("crop.jpg", buf.getvalue())})
        assert r.status_code == 200, r.text
        found = r.json()["results"][0]["matches"]
        assert [(m["external_id"], m["signal"]) for m in found] == [("item1.png", "local")]
        # what decided it: the patches that agree, not a Hamming distance of 0
        assert found[0]["distance"] is None and found[0]["inliers"] >= 16
        other = api.client.post(
            "/v1/match", headers=api.auth("a", "analyst"), files={"file": ("crop.jpg", buf.getvalue())}
        )
        assert other.json()["results"][0]["matches"] == []  # another tenant's sets hold nothing


def test_import_counts_duplicates_unknown_categories_and_uncategorised(api: Api) -> None:
    """The import answer counts what the CLI's summary line does (issue 16)."""
    c, h = api.client, api.auth("a", "curator")
    create_set(api, "whole")
    rows = [f"{'1' * 32},{'a' * 64},us-cat:1", f"{'2' * 32},{'a' * 64},us-cat:1", f"{'3' * 32},,8"]
    rows += [f"{'4' * 32},,us-cat:0", f"{'1' * 32},,us-cat:1"]
    csv = "md5,pdq,category\n" + "\n".join(rows) + "\n"
    r = c.post("/v1/hashsets/whole/import", headers=h, files={"file": ("l.csv", csv.encode(), "text/csv")})
    assert r.status_code == 200, r.text
    got = r.json()
    # the two rows sharing a PDQ are two entries; the repeat of the first MD5 is a duplicate
    assert (got["added"], got["duplicates"], got["duplicates_by"]) == (3, 1, {"md5": 1})
    assert (got["unknown_categories"], got["uncategorised"]) == ({"us-cat:8": 1}, 1)
