"""The fast path (``service.fastpath``) answers a JSON ``POST /v1/match`` exactly as the route it
shadows: the same requests are sent with the fast path on and off (``Settings.fast_path``), and
status, headers that matter, body, audit rows and metrics must agree, on SQLite and PostgreSQL.

Every hash set holds benign values only.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from prometheus_client import REGISTRY

from opspoor.service import fastpath
from opspoor.service.limits import RateLimiter
from opspoor.store import open_store
from opspoor.store.audit import list_audit
from test_service import TEST_SETTINGS, Api, add_entries, create_set, eventually, running

KNOWN_MD5 = "0123456789abcdef0123456789abcdef"
KNOWN_SHA1 = "0123456789abcdef0123456789abcdef01234567"
#: a made-up PhotoDNA (144 bytes), stored in base64 and asked for in its other spellings
KNOWN_DNA = bytes((7 * i + 3) % 256 for i in range(144))
OTHER_DNA = bytes((7 * i + 4) % 256 for i in range(144))
#: every token may take this many requests at once; the rate case sends more with one token
BURST = 30
MAX_JSON = 128 * 1024  # room for 1,001 signals
WATCHED = (
    "opspoor_http_requests_total",
    "opspoor_http_request_seconds_count",
    "opspoor_auth_failures_total",
    "opspoor_match_inputs_total",
    "opspoor_match_hits_total",
)


@dataclass
class Case:
    name: str
    token: tuple[str, str] | None = ("a", "platform")
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunked: bool = False  # sent without a Content-Length


def _signals(*pairs: tuple[str, str]) -> bytes:
    return json.dumps({"signals": [{"type": t, "value": v} for t, v in pairs]}).encode()


VALID = _signals(("md5", KNOWN_MD5.upper()), ("sha1", KNOWN_SHA1), ("pdq", "ab" * 32), ("sha256", "0" * 64))
CASES = [
    Case("valid, with matches", body=VALID),
    Case("valid, charset in the content type", body=VALID, content_type="application/json; charset=utf-8"),
    Case("valid, as an analyst", token=("a", "analyst"), body=VALID),
    Case("another tenant's sets are not searched", token=("b", "platform"), body=VALID),
    Case("invalid JSON", body=b"{not json"),
    Case("empty body", body=b""),
    Case("not an object", body=b"[1, 2]"),
    Case("no signals", body=_signals()),
    Case("too many signals", body=_signals(*[("md5", f"{i:032x}") for i in range(1001)])),
    Case("unknown signal type", body=_signals(("vpdq", "ab" * 16))),
    Case(
        "photodna as decimal bytes and upper-case hex, another one",
        body=_signals(
            ("photodna", ",".join(map(str, KNOWN_DNA))),
            ("photodna", KNOWN_DNA.hex().upper()),
            ("photodna", OTHER_DNA.hex()),
        ),
    ),
    Case("photodna not 144 bytes", body=_signals(("photodna", "QUJD"))),
    Case("not hex", body=_signals(("pdq", "zz" * 32))),
    Case("pdq too short", body=_signals(("pdq", "ab" * 16))),
    Case("md5 of sha1 length", body=_signals(("md5", KNOWN_SHA1))),
    Case("wrong role", token=("a", "curator"), body=VALID),
    Case("admin is not a matcher", token=("a", "admin"), body=VALID),
    Case("no token", token=None, body=VALID),
    Case("not a bearer token", token=None, body=VALID, headers=[("Authorization", "Basic abc")]),
    Case("unknown token", token=None, body=VALID, headers=[("Authorization", "Bearer ops_unknown")]),
    Case("repeated Authorization", body=VALID, headers=[("Authorization", "Bearer ops_unknown")]),
    Case("declared body over the limit", body=b" " * (MAX_JSON + 1) + VALID),
    Case("streamed body over the limit", body=b" " * (MAX_JSON + 1) + VALID, chunked=True),
    Case("streamed body within the limit", body=VALID, chunked=True),
    Case("not JSON at all: the route's 415 in both", body=b"x", content_type="text/plain"),
    *[Case(f"rate {i}", token=("b", "analyst"), body=_signals(("md5", KNOWN_MD5))) for i in range(BURST + 2)],
]


@dataclass
class Answer:
    status: int
    content_type: str
    headers: dict[str, str]
    body: Any


def _send(api: Api, case: Case) -> Answer:
    headers = [("Content-Type", case.content_type)]
    if case.token is not None:
        headers.append(("Authorization", api.auth(*case.token)["Authorization"]))
    headers += case.headers
    content: Any = iter([case.body[:100], case.body[100:]]) if case.chunked else case.body
    r = api.client.post("/v1/match", headers=headers, content=content)
    kept = {k: r.headers[k] for k in ("www-authenticate", "retry-after") if k in r.headers}
    body = r.json()
    if r.status_code == 429:  # the wait is counted from the moment of the request: compare its form
        assert int(kept.pop("retry-after")) >= 1
        body["detail"] = re.sub(r"[0-9.]+ s$", "N s", body["detail"])
    return Answer(r.status_code, r.headers["content-type"], kept, body)


def _metrics() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The watched samples of ``POST /v1/match`` (and of the counters without a route label)."""
    out = {}
    for family in REGISTRY.collect():
        for s in family.samples:
            ours = (
                s.labels.get("route", "/v1/match") == "/v1/match" and s.labels.get("method", "POST") == "POST"
            )
            if s.name in WATCHED and ours:
                out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


def _delta(before: dict[Any, float], after: dict[Any, float]) -> dict[Any, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}


def _audit(url: str, after: int) -> list[tuple[Any, ...]]:
    with open_store(url) as store:
        return [
            (r.event.token_id, r.event.tenant, r.event.action, r.event.object, r.event.result, r.event.status)
            for r in list_audit(store, after=after, limit=10_000)
            if r.event.action != "audit.stop"
        ]


@dataclass
class Run:
    answers: list[Answer]
    audit: list[tuple[Any, ...]]
    metrics: dict[Any, float]


@pytest.fixture
def store_with_a_set(db_url: str) -> Iterator[str]:
    with running(db_url) as api:
        create_set(api, "known")
        add_entries(api, "known", [{"signals": {"md5": KNOWN_MD5, "sha1": KNOWN_SHA1}}])
        dna = base64.b64encode(KNOWN_DNA).decode()
        add_entries(api, "known", [{"signals": {"photodna": dna}, "external_id": "dna"}])
    yield db_url


def _run(url: str, *, fast: bool, monkeypatch: pytest.MonkeyPatch) -> Run:
    settings = replace(TEST_SETTINGS, fast_path=fast, max_json_bytes=MAX_JSON)
    served = []
    real = fastpath.serve_fast

    async def counting(*args: Any) -> None:
        served.append(1)
        await real(*args)

    monkeypatch.setattr("opspoor.service.app.serve_fast", counting)
    with running(url, settings) as api:
        # a budget of BURST requests per token from now on (not while waiting for the index)
        api.client.app.state.service.rate = RateLimiter(0.001, BURST)  # type: ignore[attr-defined]
        with open_store(url) as store:
            last = list_audit(store, limit=1_000_000)
        after = last[-1].id if last else 0
        before = _metrics()
        answers = [_send(api, case) for case in CASES]
        metrics = _delta(before, _metrics())
        # the route's 415 and every other request: the fast path took them all but the non-JSON one
        assert len(served) == (len(CASES) - 1 if fast else 0)
        expected_rows = sum(a.status not in (400, 401, 429) for a in answers)
        eventually(lambda: len(_audit(url, after)) >= expected_rows)
        who = {token_id: key for key, token_id in api.ids.items()}  # each run has its own tokens
        audit = [(who.get(row[0]), *row[1:]) for row in _audit(url, after)]
    return Run(answers, audit, metrics)


def _answer(run: Run, name: str) -> Any:
    return next(a.body for case, a in zip(CASES, run.answers, strict=True) if case.name == name)


def test_the_fast_path_answers_audits_and_counts_as_the_route_does(
    store_with_a_set: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    route = _run(store_with_a_set, fast=False, monkeypatch=monkeypatch)
    fast = _run(store_with_a_set, fast=True, monkeypatch=monkeypatch)

    for case, r, f in zip(CASES, route.answers, fast.answers, strict=True):
        assert f == r, case.name
    assert fast.audit == route.audit
    assert fast.metrics == route.metrics

    # and the answers are the ones each case is about (so agreeing is not agreeing on nothing)
    statuses = {case.name: a.status for case, a in zip(CASES, route.answers, strict=True)}
    assert statuses["valid, with matches"] == statuses["another tenant's sets are not searched"] == 200
    found = route.answers[0].body["results"]
    assert [len(x["matches"]) for x in found] == [1, 1, 0, 0] and found[0]["value"] == KNOWN_MD5
    assert route.answers[3].body["results"][0]["matches"] == []
    for name in ("invalid JSON", "empty body", "not an object", "no signals", "too many signals"):
        assert statuses[name] == 422, name
    for name in ("unknown signal type", "not hex", "pdq too short", "md5 of sha1 length"):
        assert statuses[name] == 422, name
    assert "photodna value must be 144 bytes, got 3" in _answer(route, "photodna not 144 bytes")["detail"]
    dna = _answer(route, "photodna as decimal bytes and upper-case hex, another one")["results"]
    assert [[(m["signal"], m["external_id"], m["distance"]) for m in x["matches"]] for x in dna] == [
        [("photodna", "dna", 0)],
        [("photodna", "dna", 0)],
        [],
    ]
    assert [x["value"] for x in dna] == [KNOWN_DNA.hex(), KNOWN_DNA.hex(), OTHER_DNA.hex()]  # canonical
    assert statuses["wrong role"] == statuses["admin is not a matcher"] == 403
    assert statuses["no token"] == statuses["not a bearer token"] == statuses["unknown token"] == 401
    assert statuses["repeated Authorization"] == 400
    assert statuses["declared body over the limit"] == statuses["streamed body over the limit"] == 413
    assert statuses["streamed body within the limit"] == 200
    assert statuses["not JSON at all: the route's 415 in both"] == 415
    rates = [statuses[f"rate {i}"] for i in range(BURST + 2)]
    assert rates.count(429) >= 2 and set(rates) == {200, 429}
    assert all(a.body["detail"].endswith("retry in N s") for a in route.answers if a.status == 429)
    assert any(a.headers.get("www-authenticate") for a in route.answers if a.status == 401)
    assert {row[4] for row in route.audit} == {"ok", "rejected", "denied"}
    assert route.metrics  # counted at all
