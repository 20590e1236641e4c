"""Hash sets shared between tenants, through the service on SQLite and PostgreSQL: a publisher
offers a set to named tenants or to all, a subscriber takes it up and matches against it as if it
were its own (each match names the owner), the publisher revokes, and isolation holds both ways:
no tenant matches a set not offered to it, or one it has not subscribed to, and no subscriber can
change the publisher's set. Every step is audited. All values are benign test hashes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from test_service import Api, add_entries, create_set, eventually, is_problem, match_values, running


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with running(db_url) as a:
        yield a


MD5_A = hashlib.md5(b"benign picture of tenant a").hexdigest()
MD5_B = hashlib.md5(b"benign picture of tenant b").hexdigest()


def owners(api: Api, tenant: str, md5: str) -> list[tuple[str, str | None]]:
    found = match_values(api, [{"type": "md5", "value": md5}], tenant=tenant)[0]["matches"]
    return sorted((m["hashset"], m.get("owner")) for m in found)


def test_offer_subscribe_match_revoke_and_isolation_both_ways(api: Api) -> None:
    c = api.client
    create_set(api, "hotline-list", tenant="a")
    add_entries(
        api,
        "hotline-list",
        [{"signals": {"md5": MD5_A}, "category": {"scheme": "us-cat", "code": "1"}}],
        tenant="a",
    )
    create_set(api, "own", tenant="b")
    add_entries(api, "own", [{"signals": {"md5": MD5_B}}], tenant="b")
    eventually(lambda: owners(api, "a", MD5_A) == [("hotline-list", None)], timeout=30)
    eventually(lambda: owners(api, "b", MD5_B) == [("own", None)], timeout=30)

    # not offered: b can neither see nor subscribe; a's set does not match for b
    assert c.get("/v1/shared", headers=api.auth("b", "curator")).json() == {"shared": []}
    sub = {"publisher": "a", "hashset": "hotline-list"}
    is_problem(c.post("/v1/subscriptions", headers=api.auth("b", "curator"), json=sub), 404)
    assert owners(api, "b", MD5_A) == []

    # offered to b: still nothing until b subscribes
    r = c.post("/v1/hashsets/hotline-list/shares", headers=api.auth("a", "curator"), json={"tenants": ["b"]})
    assert r.status_code == 201 and r.json()["offered_to"] == ["b"]
    assert c.get("/v1/hashsets/hotline-list/shares", headers=api.auth("a", "curator")).json()["tenants"] == [
        "b"
    ]
    shared = c.get("/v1/shared", headers=api.auth("b", "curator")).json()["shared"]
    assert shared == [{"publisher": "a", "hashset": "hotline-list", "subscribed": False}]
    assert owners(api, "b", MD5_A) == []
    r = c.post("/v1/subscriptions", headers=api.auth("b", "curator"), json=sub)
    assert r.status_code == 201, r.text
    eventually(lambda: owners(api, "b", MD5_A) == [("hotline-list", "a")], timeout=30)
    # ...as if it were b's own, alongside its own sets; a does not match b's sets in return
    assert owners(api, "b", MD5_B) == [("own", None)]
    assert owners(api, "a", MD5_B) == []
    # read-only: b cannot change or even see the set in its own tenant
    is_problem(c.get("/v1/hashsets/hotline-list", headers=api.auth("b", "curator")), 404)
    is_problem(c.delete("/v1/hashsets/hotline-list", headers=api.auth("b", "curator")), 404)
    is_problem(
        c.post("/v1/hashsets/hotline-list/shares", headers=api.auth("b", "curator"), json={"tenants": ["b"]}),
        404,
    )

    # revoked: the matches stop, for b only
    assert c.delete("/v1/hashsets/hotline-list/shares/b", headers=api.auth("a", "curator")).status_code == 200
    eventually(lambda: owners(api, "b", MD5_A) == [], timeout=30)
    assert owners(api, "a", MD5_A) == [("hotline-list", None)]
    is_problem(c.delete("/v1/hashsets/hotline-list/shares/b", headers=api.auth("a", "curator")), 404)

    # offered to everyone: b's standing subscription matches again; ending it stops that
    c.post("/v1/hashsets/hotline-list/shares", headers=api.auth("a", "curator"), json={"tenants": ["*"]})
    eventually(lambda: owners(api, "b", MD5_A) == [("hotline-list", "a")], timeout=30)
    assert c.delete("/v1/subscriptions/a/hotline-list", headers=api.auth("b", "curator")).status_code == 200
    eventually(lambda: owners(api, "b", MD5_A) == [], timeout=30)

    # every offer, revocation, subscription and its end is audited, on both sides
    def actions(tenant: str) -> list[str]:
        rows = c.get("/v1/audit", headers=api.auth(tenant, "admin")).json()["rows"]
        return [f"{r['action']} {r['object']} {r['status']}" for r in rows]

    eventually(lambda: "hashset.share hashset:hotline-list->* 201" in actions("a"), timeout=30)
    a_rows, b_rows = actions("a"), actions("b")
    assert "hashset.share hashset:hotline-list->b 201" in a_rows
    assert "hashset.revoke_share hashset:hotline-list->b 200" in a_rows
    assert "shared.subscribe share:a/hotline-list 404" in b_rows  # the refused attempt too
    assert "shared.subscribe share:a/hotline-list 201" in b_rows
    assert "shared.unsubscribe share:a/hotline-list 200" in b_rows
