"""The intake's new files in the review workspace (docs/intake.md, "Into the review queue"), on
SQLite and PostgreSQL: files of finished reports that no set matched are the tenant's review case
``intake:TENANT``, a group per bundle; known files are only counted; the pictures are veiled from
the sealed uploads in memory; only the tenant's tokens see it; a decision there, added to a hash
set by the curator's button, makes the same picture known when the next report is finished.

Every picture is generated (gradients, shapes).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from opspoor.intake.sealing import key_from_text
from opspoor.review.intake import IntakeCaseView
from opspoor.review.shared import case_files
from opspoor.review.team import mount_review
from opspoor.service.app import create_app
from opspoor.store import open_store
from opspoor.store.models_service import ROLES
from opspoor.store.tokens import create_token
from test_intake import KEY, known_set, picture, report_doc, show, step, submit, upload
from test_service import TEST_SETTINGS, Api, eventually, match_values

CASE = "/review/c/intake:a"


@contextmanager
def serving(url: str) -> Iterator[Api]:
    """The service with the review app mounted (as ``opspoor serve`` runs it), tokens of every role."""
    secrets: dict[tuple[str, str], str] = {}
    ids: dict[tuple[str, str], int] = {}
    with open_store(url) as store:
        for tenant in ("a", "b"):
            for role in ROLES:
                rec, secret = create_token(store, role, tenant, label=f"{tenant}-{role}")
                secrets[tenant, role], ids[tenant, role] = secret, rec.id
    with TestClient(mount_review(create_app(replace(TEST_SETTINGS, db=url)))) as client:
        api = Api(client, url, secrets, ids)
        api.wait_ready()
        yield api


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with serving(db_url) as a:
        yield a


def finished(api: Api, *files: bytes) -> int:
    rid = submit(api, report_doc())
    for data in files:
        assert upload(api, rid, data).status_code == 200
    assert step(api, rid, "finish").status_code == 200
    return rid


def reencoded(data: bytes, quality: int) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).save(out, "JPEG", quality=quality)
    return out.getvalue()


def view_of(api: Api, tenant: str = "a") -> IntakeCaseView:
    store = api.client.app.state.service.store  # type: ignore[attr-defined]
    return IntakeCaseView(store, tenant, key_from_text(KEY or ""), datetime.now(UTC) + timedelta(seconds=1))


def test_new_files_of_reports_enter_the_review_queue_and_a_decision_makes_them_known(api: Api) -> None:
    known, new = picture(41), picture(42)
    known_set(api, known)
    r1 = finished(api, new, known)
    r2 = finished(api, reencoded(new, 70))  # the same picture, another MD5: bundled with r1
    bundle = show(api, r1).json()["bundleId"]
    assert bundle is not None and show(api, r2).json()["bundleId"] == bundle
    known_id = show(api, r1).json()["files"][1]["fileId"]

    alice = {"Authorization": f"Bearer {api.secrets['a', 'reviewer']}"}
    # the case list names the tenant's intake queue; the queue holds the bundle's two new files
    assert 'href="/review/c/intake%3Aa/"' in api.client.get("/review/", headers=alice).text
    nxt = api.client.get(f"{CASE}/next?undecided=1", headers=alice, follow_redirects=False)
    assert nxt.status_code == 303 and nxt.headers["location"].endswith(f"/group/B{bundle}")
    page = api.client.get(f"{CASE}/group/B{bundle}", headers=alice).text
    assert page.count('class="veiled"') == 2 and f"reports {r1}, {r2} share a picture" in page
    overview = api.client.get(f"{CASE}/", headers=alice)
    assert overview.status_code == 200
    view = view_of(api)
    assert [g.id for g in view.groups] == [f"B{bundle}"]
    assert [p.split("/")[0] for p in view.groups[0].paths] == [f"report-{r1}", f"report-{r2}"]
    assert not any(f"/file-{known_id}/" in p for p in view.groups[0].paths)  # known: only counted
    assert view.counts()["known"] == 1 and view.counts()["new"] == 2

    # pictures: veiled (grayscale) from the sealed upload, the reveal in colour; nothing copied out
    veiled = api.client.get(f"{CASE}/item/B{bundle}/0/veiled", headers=alice)
    assert veiled.status_code == 200 and veiled.headers["content-type"] == "image/jpeg"
    rgb = np.asarray(Image.open(io.BytesIO(veiled.content)).convert("RGB")).astype(int)
    assert np.abs(rgb[..., 0] - rgb[..., 1]).max() <= 8  # grayscale
    shown = api.client.post(f"{CASE}/item/B{bundle}/0/reveal", headers=alice)
    assert shown.status_code == 200 and max(Image.open(io.BytesIO(shown.content)).size) <= 512
    with open_store(api.url) as store, store.read() as conn:
        held = select(func.count()).where(case_files.c.case_id.like("intake:%"))
        assert conn.execute(held).scalar_one() == 0

    # another tenant's tokens do not see it; their own queue is empty
    bob = {"Authorization": f"Bearer {api.secrets['b', 'reviewer']}"}
    for path in ("/", f"/group/B{bundle}", f"/item/B{bundle}/0/veiled"):
        assert api.client.get(CASE + path, headers=bob).status_code == 404
    assert api.client.post(f"{CASE}/item/B{bundle}/0/reveal", headers=bob).status_code == 404
    assert api.client.get(
        "/review/c/intake:b/next?undecided=1", headers=bob, follow_redirects=False
    ).is_redirect
    assert view_of(api, "b").groups == []

    # the decision, into the tenant's hash set by the curator's button
    d = api.client.post(
        f"{CASE}/api/decide", headers=alice, json={"group": f"B{bundle}", "item": None, "key": "3"}
    )
    assert d.status_code == 200, d.text
    curator = {"Authorization": f"Bearer {api.secrets['a', 'curator']}"}
    done = api.client.post(f"{CASE}/curate/from-case", headers=curator, json={"name": "reviewed"})
    assert done.status_code == 200, done.text
    assert done.json()["sets"]["reviewed"]["added"] == 2
    md5 = hashlib.md5(new).hexdigest()
    eventually(lambda: bool(match_values(api, [{"type": "md5", "value": md5}])[0]["matches"]), timeout=30)

    # the next report of the same picture (re-encoded again) is known at finish: not in the queue
    r3 = finished(api, reencoded(new, 60))
    found = show(api, r3).json()["files"][0]["matches"]
    assert {(m["hashset"], m["kind"]) for m in found} == {("reviewed", "known")}
    assert {m["category"]["code"] for m in found} == {"3"}
    after = view_of(api)
    assert not any(f"report-{r3}/" in p for g in after.groups for p in g.paths)
    assert after.records[next(p for p in after.records if p.startswith(f"report-{r3}/"))]["status"] == "known"
