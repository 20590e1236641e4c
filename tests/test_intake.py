"""Hotline intake through the service, on SQLite and PostgreSQL: the CyberTipline flow (submit,
upload, fileinfo, finish, retract), documents in JSON and XML validated with every fault named,
files sealed at rest, expiry and retention on a settable clock, matching on finish, bundling of
reports that share a file (same MD5, or a re-encoded copy by PDQ), referral by country with its
reasons, the per-country queue, roles and tenants.

Every image is generated (gradients, shapes); the "known" set holds the MD5 of a benign picture.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image

from opspoor.demo.images import generate_image
from opspoor.errors import IntakeError
from opspoor.intake.sealing import key_from_text, unseal
from opspoor.store import open_store
from opspoor.store.intake import sealed_blobs
from opspoor.store.tokens import create_token
from test_exif import full_exif
from test_service import (
    TEST_SETTINGS,
    Api,
    add_entries,
    create_set,
    eventually,
    is_problem,
    match_values,
    running,
)

KEY = TEST_SETTINGS.intake_key
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with running(db_url) as a:
        a.client.app.state.service.clock = lambda: T0  # type: ignore[attr-defined]
        yield a


@pytest.fixture
def sqlite_api(sqlite_url: str) -> Iterator[Api]:
    with running(sqlite_url) as a:
        yield a


def set_clock(api: Api, at: datetime) -> None:
    api.client.app.state.service.clock = lambda: at  # type: ignore[attr-defined]


def picture(seed: int, quality: int = 90, exif: Image.Exif | None = None) -> bytes:
    out = io.BytesIO()
    kw: dict[str, Any] = {"quality": quality}
    if exif is not None:
        kw["exif"] = exif.tobytes()
    generate_image(seed, 480, 360, style="mixed").save(out, "JPEG", **kw)
    return out.getvalue()


def report_doc(**extra: Any) -> dict[str, Any]:
    summary = {
        "incidentType": "Child Pornography (possession, manufacture, and distribution)",
        "incidentDateTime": "2026-02-28T10:00:00Z",
    }
    summary.update(extra.pop("summary", {}))
    return {"report": {"incidentSummary": summary, **extra}}


def submit(api: Api, doc: dict[str, Any], tenant: str = "a", headers: dict[str, str] | None = None) -> int:
    r = api.client.post("/v1/intake/submit", headers=headers or api.auth(tenant, "reporter"), json=doc)
    assert r.status_code == 201, r.text
    assert r.json()["responseCode"] == 0
    return int(r.json()["reportId"])


def upload(api: Api, rid: int, data: bytes, tenant: str = "a", headers: dict[str, str] | None = None) -> Any:
    return api.client.post(
        f"/v1/intake/reports/{rid}/upload",
        headers=headers or api.auth(tenant, "reporter"),
        files={"file": ("pic.jpg", data, "image/jpeg")},
    )


def step(
    api: Api, rid: int, verb: str, tenant: str = "a", headers: dict[str, str] | None = None, **kw: Any
) -> Any:
    return api.client.post(
        f"/v1/intake/reports/{rid}/{verb}", headers=headers or api.auth(tenant, "reporter"), **kw
    )


def show(api: Api, rid: int, role: str = "hotline", tenant: str = "a") -> Any:
    return api.client.get(f"/v1/intake/reports/{rid}", headers=api.auth(tenant, role))


def second_reporter(api: Api, tenant: str = "a") -> dict[str, str]:
    with open_store(api.url) as store:
        _, secret = create_token(store, "reporter", tenant, label="another platform")
    return {"Authorization": f"Bearer {secret}"}


def known_set(api: Api, data: bytes) -> None:
    md5 = hashlib.md5(data).hexdigest()
    create_set(api, "known")
    add_entries(api, "known", [{"signals": {"md5": md5}, "category": {"scheme": "us-cat", "code": "1"}}])
    eventually(lambda: bool(match_values(api, [{"type": "md5", "value": md5}])[0]["matches"]), timeout=30)


# --- the flow ------------------------------------------------------------------------------------
def test_report_flow_matches_bundles_refers_and_queues(api: Api) -> None:
    known, new = picture(1), picture(2)
    known_set(api, known)
    doc = report_doc(
        summary={"escalateToHighPriority": "ongoing abuse"},
        personOrUserReported=[
            {
                "screenName": "user-1",
                "ipCaptureEvent": [{"ipAddress": "193.0.6.139", "eventName": "Login"}],
                "estimatedLocation": {"countryCode": "DE"},
            }
        ],
    )
    rid = submit(api, doc)
    r1, r2 = upload(api, rid, known), upload(api, rid, new)
    assert r1.status_code == 200, r1.text
    assert r1.json()["hash"] == hashlib.md5(known).hexdigest()
    assert r2.json()["hash"] == hashlib.md5(new).hexdigest() and r2.json()["fileId"] != r1.json()["fileId"]
    details = {"fileDetails": {"fileId": r2.json()["fileId"], "fileAnnotations": {"infant": True}}}
    assert step(api, rid, "fileinfo", json=details).status_code == 200
    assert show(api, rid).json()["status"] == "open"
    fin = step(api, rid, "finish")
    assert fin.status_code == 200, fin.text

    rep = show(api, rid).json()
    assert rep["status"] == "finished"
    by_md5 = {f["md5"]: f for f in rep["files"]}
    assert [m["hashset"] for m in by_md5[hashlib.md5(known).hexdigest()]["matches"]] == ["known"]
    assert by_md5[hashlib.md5(new).hexdigest()]["matches"] == []
    assert rep["priorityReasons"] == ["newMaterial", "escalateToHighPriority", "infant"]
    assert rep["referral"]["countries"] == ["DE", "NL"]
    ip_reason = next(x for x in rep["referral"]["reasons"] if x["clue"] == "ip")
    assert ip_reason["country"] == "NL" and ip_reason["data"].startswith("iptocc ")
    assert "193.0.6.139" in ip_reason["detail"]
    # the platform does not learn what the hotline's sets hold
    mine = show(api, rid, role="reporter").json()
    assert all("matches" not in f for f in mine["files"]) and "referral" not in mine

    # finished is immutable: no file, no details, no retraction
    for verb, kw in (
        ("upload", {"files": {"file": ("x.jpg", new, "image/jpeg")}}),
        ("fileinfo", {"json": details}),
        ("retract", {}),
        ("finish", {}),
    ):
        is_problem(step(api, rid, verb, **kw), 409)

    # another platform reports the same known picture: one bundle, counted once in the queue
    other = second_reporter(api)
    rid2 = submit(
        api,
        report_doc(personOrUserReported=[{"ipCaptureEvent": [{"ipAddress": "193.0.6.139"}]}]),
        headers=other,
    )
    assert upload(api, rid2, known, headers=other).status_code == 200
    assert step(api, rid2, "finish", headers=other).status_code == 200
    assert show(api, rid2, role="reporter").status_code == 404  # not that reporter's report
    bundle = show(api, rid2).json()["bundleId"]
    assert bundle is not None and show(api, rid).json()["bundleId"] == bundle
    queue = api.client.get("/v1/intake/referrals/NL", headers=api.auth("a", "hotline")).json()["queue"]
    assert len(queue) == 1 and sorted(queue[0]["reportIds"]) == [rid, rid2]
    assert queue[0]["reportId"] == rid  # the most urgent report of the bundle leads it
    b = api.client.get(f"/v1/intake/bundles/{bundle}", headers=api.auth("a", "hotline")).json()
    assert b["reportIds"] == [rid, rid2] and b["incidents"] == 2
    counts = api.client.get("/v1/intake/reports", headers=api.auth("a", "hotline")).json()["counts"]
    assert counts == {"reports": 1, "incidents": 2, "bundles": 1}
    de = api.client.get("/v1/intake/referrals/DE", headers=api.auth("a", "hotline")).json()["queue"]
    assert [q["reportId"] for q in de] == [rid]

    # the other tenant sees none of it
    assert show(api, rid, tenant="b").status_code == 404
    assert api.client.get("/v1/intake/referrals/NL", headers=api.auth("b", "hotline")).json()["queue"] == []
    is_problem(api.client.get(f"/v1/intake/bundles/{bundle}", headers=api.auth("b", "hotline")), 404)
    is_problem(upload(api, rid2, known, tenant="b"), 404)


def test_the_queue_puts_new_material_first_and_each_flag_above_all_below_it_together(
    sqlite_api: Api,
) -> None:
    """Five reports referred to NL, each of its own picture (no bundles): new material outranks an
    escalated report, which outranks infant + liveStreaming + possibleSelfProduction together, and so on."""
    api = sqlite_api
    known = {k: picture(30 + k) for k in range(4)}
    create_set(api, "known")
    entries = [{"signals": {"md5": hashlib.md5(p).hexdigest()}, "category": {"scheme": "us-cat", "code": "1"}}
               for p in known.values()]  # fmt: skip
    add_entries(api, "known", entries)
    last = hashlib.md5(known[3]).hexdigest()
    eventually(lambda: bool(match_values(api, [{"type": "md5", "value": last}])[0]["matches"]), timeout=30)
    nl = [{"ipCaptureEvent": [{"ipAddress": "193.0.6.139"}]}]

    def report(data: bytes, escalate: bool = False, **flags: bool) -> int:
        summary = {"escalateToHighPriority": "ongoing"} if escalate else {}
        rid = submit(api, report_doc(summary=summary, personOrUserReported=nl))
        up = upload(api, rid, data)
        assert up.status_code == 200, up.text
        if flags:
            info = {"fileDetails": {"fileId": up.json()["fileId"], "fileAnnotations": flags}}
            assert step(api, rid, "fileinfo", json=info).status_code == 200
        assert step(api, rid, "finish").status_code == 200
        return rid

    nothing = report(known[0])
    low = report(known[1], infant=True, liveStreaming=True, possibleSelfProduction=True)
    new = report(picture(40))
    live = report(known[2], liveStreaming=True, possibleSelfProduction=True)
    escalated = report(known[3], escalate=True)
    queue = api.client.get("/v1/intake/referrals/NL", headers=api.auth("a", "hotline")).json()["queue"]
    assert [q["reportId"] for q in queue] == [new, escalated, low, live, nothing]
    assert [q["priorityReasons"] for q in queue] == [
        ["newMaterial"],
        ["escalateToHighPriority"],
        ["infant", "liveStreaming", "possibleSelfProduction"],
        ["liveStreaming", "possibleSelfProduction"],
        [],
    ]


def test_reencoded_copies_bundle_by_pdq_and_different_pictures_do_not(api: Api) -> None:
    rids = []
    for data in (picture(5, 90), picture(5, 60), picture(6, 90)):
        rid = submit(api, report_doc())
        assert upload(api, rid, data).status_code == 200
        assert step(api, rid, "finish").status_code == 200
        rids.append(rid)
    b = [show(api, rid).json()["bundleId"] for rid in rids]
    assert b[0] is not None and b[0] == b[1]
    assert b[2] is None
    unresolved = api.client.get("/v1/intake/referrals/unresolved", headers=api.auth("a", "hotline")).json()
    assert sorted(i for q in unresolved["queue"] for i in q["reportIds"]) == sorted(rids)


def test_exif_gps_and_private_addresses_in_the_referral(api: Api) -> None:
    rid = submit(api, report_doc(personOrUserReported=[{"ipCaptureEvent": [{"ipAddress": "10.1.2.3"}]}]))
    assert upload(api, rid, picture(7, exif=full_exif("N", "E"))).status_code == 200
    assert step(api, rid, "finish").status_code == 200
    ref = show(api, rid).json()["referral"]
    assert ref["countries"] == ["NL"]
    assert [r["clue"] for r in ref["reasons"]] == ["exifGps"]
    assert any("10.1.2.3" in u for u in ref["unplaced"])


# --- documents -----------------------------------------------------------------------------------
XML_REPORT = b"""<?xml version="1.0"?>
<report>
  <incidentSummary>
    <incidentDateTime>2026-02-28T10:00:00Z</incidentDateTime>
    <incidentType>Child Sex Tourism</incidentType>
    <reportAnnotations><sextortion/></reportAnnotations>
  </incidentSummary>
  <personOrUserReported>
    <espIdentifier>u-77</espIdentifier>
    <ipCaptureEvent><ipAddress>193.0.6.139</ipAddress><eventName>Upload</eventName></ipCaptureEvent>
  </personOrUserReported>
</report>"""


def test_xml_documents_are_validated_against_the_xsd_and_stored_as_json(api: Api) -> None:
    h = {**api.auth("a", "reporter"), "content-type": "application/xml"}
    r = api.client.post("/v1/intake/submit", headers=h, content=XML_REPORT)
    assert r.status_code == 201, r.text
    rid = r.json()["reportId"]
    doc = show(api, rid).json()["report"]
    assert doc["incidentSummary"]["reportAnnotations"] == {"sextortion": True}
    assert doc["personOrUserReported"][0]["ipCaptureEvent"] == [
        {"ipAddress": "193.0.6.139", "eventName": "Upload"}
    ]
    fid = upload(api, rid, picture(3)).json()["fileId"]
    info = (
        f"<fileDetails><fileId>{fid}</fileId><industryClassification>B2</industryClassification>"
        "<fileAnnotations><liveStreaming/></fileAnnotations></fileDetails>"
    )
    assert step(api, rid, "fileinfo", content=info.encode(), headers=h).status_code == 200
    f = show(api, rid).json()["files"][0]["fileDetails"]
    assert f["fileAnnotations"] == {"liveStreaming": True} and f["industryClassification"] == "B2"

    bad = XML_REPORT.replace(b"<espIdentifier>", b"<espIdentifer>").replace(
        b"</espIdentifier>", b"</espIdentifer>"
    )
    p = is_problem(api.client.post("/v1/intake/submit", headers=h, content=bad), 422)
    assert p["errors"][0]["element"] == "espIdentifer"
    assert p["errors"][0]["pointer"].endswith("/personOrUserReported/espIdentifer")
    bad = XML_REPORT.replace(b"Child Sex Tourism", b"Shoplifting")
    p = is_problem(api.client.post("/v1/intake/submit", headers=h, content=bad), 422)
    assert p["errors"][0]["element"] == "incidentType" and "incidentType" in p["detail"]
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><report>&b;</report>'
    )
    is_problem(api.client.post("/v1/intake/submit", headers=h, content=bomb), 422)


@pytest.mark.parametrize(
    ("change", "pointer", "element"),
    [
        (
            lambda d: d["report"]["incidentSummary"].pop("incidentType"),
            "/report/incidentSummary/incidentType",
            "incidentType",
        ),
        (
            lambda d: d["report"].update(
                personOrUserReported=[{"ipCaptureEvent": [{"ipAddress": "not-an-ip!"}]}]
            ),
            "/report/personOrUserReported/0/ipCaptureEvent/0/ipAddress",
            "ipAddress",
        ),
        (
            lambda d: d["report"].update(victim=[{"estimatedLocation": {"countryCode": "nl"}}]),
            "/report/victim/0/estimatedLocation/countryCode",
            "countryCode",
        ),
        (lambda d: d["report"].update(reporterr={}), "/report/reporterr", "reporterr"),
        (
            lambda d: d["report"]["incidentSummary"].update(incidentDateTime="yesterday"),
            "/report/incidentSummary/incidentDateTime",
            "incidentDateTime",
        ),
    ],
)
def test_every_json_fault_names_its_element(sqlite_api: Api, change: Any, pointer: str, element: str) -> None:
    doc = report_doc()
    change(doc)
    p = is_problem(
        sqlite_api.client.post("/v1/intake/submit", headers=sqlite_api.auth("a", "reporter"), json=doc), 422
    )
    assert p["type"] == "urn:opspoor:problem:invalid-document"
    assert p["errors"][0] == {"pointer": pointer, "element": element, "message": p["errors"][0]["message"]}
    assert element in p["detail"]


def test_file_details_name_a_file_of_the_report(sqlite_api: Api) -> None:
    api = sqlite_api
    rid = submit(api, report_doc())
    p = is_problem(step(api, rid, "fileinfo", json={"fileDetails": {"fileId": 999}}), 404)
    assert "999" in p["detail"]
    p = is_problem(
        step(api, rid, "fileinfo", json={"fileDetails": {"fileId": 1, "industryClassification": "C3"}}), 422
    )
    assert p["errors"][0]["pointer"] == "/fileDetails/industryClassification"
    fid = upload(api, rid, picture(1)).json()["fileId"]
    p = is_problem(
        step(api, rid, "fileinfo", json={"fileDetails": {"fileId": fid, "reportId": rid + 1}}), 422
    )
    assert p["errors"][0]["pointer"] == "/fileDetails/reportId"


# --- at rest, expiry, retention, retraction ------------------------------------------------------
def test_uploaded_bytes_are_sealed_at_rest(api: Api) -> None:
    pics = [picture(10), picture(11)]
    rid = submit(api, report_doc())
    for p in pics:
        assert upload(api, rid, p).status_code == 200
    with open_store(api.url) as store:
        blobs = sealed_blobs(store)
    assert len(blobs) == 2
    for blob in blobs:
        for p in pics:
            assert p not in blob and p[:64] not in blob and p[-64:] not in blob
    rep = show(api, rid).json()
    key = key_from_text(KEY or "")
    opened = sorted(
        unseal(key, b, f"report:{rid}:sha256:{f['sha256']}") for b, f in zip(blobs, rep["files"], strict=True)
    )
    assert opened == sorted(pics)
    with pytest.raises(IntakeError):
        unseal(key_from_text("11" * 32), blobs[0], f"report:{rid}:sha256:{rep['files'][0]['sha256']}")


def test_without_a_key_the_intake_refuses_rather_than_storing_in_the_clear(sqlite_url: str) -> None:
    from dataclasses import replace

    with running(sqlite_url, replace(TEST_SETTINGS, intake_key=None)) as api:
        p = is_problem(
            api.client.post("/v1/intake/submit", headers=api.auth("a", "reporter"), json=report_doc()), 503
        )
        assert "OPSPOOR_SERVICE_INTAKE_KEY" in p["detail"]


def test_unfinished_reports_expire_with_their_files_and_finished_ones_after_retention(api: Api) -> None:
    rid = submit(api, report_doc())
    assert upload(api, rid, picture(1)).status_code == 200
    set_clock(api, T0 + timedelta(hours=2))  # idle for over an hour, but within a day of opening
    assert show(api, rid).status_code == 200
    set_clock(api, T0 + timedelta(hours=23, minutes=30))  # a change late in the day...
    assert upload(api, rid, picture(2)).status_code == 200
    set_clock(api, T0 + timedelta(hours=24, minutes=20))  # ...keeps it an hour after that change
    assert show(api, rid).status_code == 200
    set_clock(api, T0 + timedelta(hours=24, minutes=31))
    is_problem(show(api, rid), 404)
    is_problem(step(api, rid, "finish"), 404)
    # a finished report stays for its retention (a year), then goes with its files
    kept = submit(api, report_doc())
    assert upload(api, kept, picture(3)).status_code == 200
    assert step(api, kept, "finish").status_code == 200
    set_clock(api, T0 + timedelta(days=300))
    assert api.client.get("/v1/intake/reports", headers=api.auth("a", "hotline")).status_code == 200  # sweeps
    with open_store(api.url) as store:
        assert len(sealed_blobs(store)) == 1  # the expired report's two files are gone
    assert show(api, kept).json()["status"] == "finished"
    set_clock(api, T0 + timedelta(days=367))
    listed = api.client.get("/v1/intake/reports", headers=api.auth("a", "hotline")).json()
    assert listed["reports"] == []
    with open_store(api.url) as store:
        assert sealed_blobs(store) == []


def test_retract_only_before_finish_and_it_deletes_the_files(api: Api) -> None:
    rid = submit(api, report_doc())
    assert upload(api, rid, picture(1)).status_code == 200
    is_problem(step(api, rid, "retract", tenant="b"), 404)
    assert step(api, rid, "retract").json()["responseCode"] == 0
    with open_store(api.url) as store:
        assert sealed_blobs(store) == []
    assert show(api, rid).json()["status"] == "retracted"
    is_problem(step(api, rid, "finish"), 409)
    is_problem(upload(api, rid, picture(2)), 409)


def test_intake_calls_are_audited(sqlite_api: Api) -> None:
    api = sqlite_api
    rid = submit(api, report_doc())
    fid = upload(api, rid, picture(1)).json()["fileId"]
    step(api, rid, "finish")

    def rows() -> list[tuple[str, str | None]]:
        got = api.client.get("/v1/audit", headers=api.auth("a", "admin")).json()["rows"]
        return [(r["action"], r["object"]) for r in got if r["action"].startswith("intake.")]

    want = [
        ("intake.submit", f"report:{rid}"),
        ("intake.upload", f"report:{rid}/file:{fid}"),
        ("intake.finish", f"report:{rid}"),
    ]
    eventually(lambda: all(w in rows() for w in want), timeout=30)


# --- referral package ----------------------------------------------------------------------------
def test_referral_export_writes_reports_vics_and_hashes_and_files_only_when_asked(
    api: Api, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    import stat

    from test_cli_hashset import run as run_cli

    known, new = picture(1), picture(2)
    known_set(api, known)
    rid = submit(api, report_doc(personOrUserReported=[{"ipCaptureEvent": [{"ipAddress": "193.0.6.139"}]}]))
    for data in (known, new):
        assert upload(api, rid, data).status_code == 200
    assert step(api, rid, "finish").status_code == 200
    elsewhere = submit(api, report_doc(victim=[{"estimatedLocation": {"countryCode": "FR"}}]))
    assert step(api, elsewhere, "finish").status_code == 200

    base = ["referral", "export", "--country", "NL", "--tenant", "a", "--db", api.url]
    code, _, err = run_cli(monkeypatch, capsys, *base, "-o", str(tmp_path / "nl"))
    assert code == 0, err
    pkg = tmp_path / "nl"
    assert sorted(p.name for p in pkg.iterdir()) == ["hashes.csv", "hashes.vics.json", "reports.json"]
    assert stat.S_IMODE(pkg.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in pkg.iterdir())
    reports = json.loads((pkg / "reports.json").read_text())["reports"]
    assert [x["reportId"] for x in reports] == [rid]  # the FR report is not NL's
    hashes = {h["hashType"]: h["value"] for f in reports[0]["fileDetails"] for h in f["originalFileHash"]}
    assert hashes["MD5"] in {hashlib.md5(known).hexdigest(), hashlib.md5(new).hexdigest()}
    vics = json.loads((pkg / "hashes.vics.json").read_text())["value"]
    cats = sorted(str(m.get("Category")) for m in vics)
    assert len(vics) == 2 and "1" in cats
    lines = (pkg / "hashes.csv").read_text().splitlines()
    assert len(lines) == 3 and f",{hashlib.md5(known).hexdigest()}," in lines[1] + lines[2]
    for blob in (pkg / "reports.json", pkg / "hashes.vics.json", pkg / "hashes.csv"):
        assert known[:64] not in blob.read_bytes()

    # the files only with --with-files and the key, audited
    monkeypatch.delenv("OPSPOOR_SERVICE_INTAKE_KEY", raising=False)
    code, _, err = run_cli(monkeypatch, capsys, *base, "-o", str(tmp_path / "nokey"), "--with-files")
    assert code != 0 and "intake key" in err and "Traceback" not in err
    monkeypatch.setenv("OPSPOOR_SERVICE_INTAKE_KEY", KEY or "")
    code, _, err = run_cli(monkeypatch, capsys, *base, "-o", str(tmp_path / "full"), "--with-files")
    assert code == 0, err
    got = sorted(p.read_bytes() for p in (tmp_path / "full" / "files").iterdir())
    assert got == sorted([known, new])
    from opspoor.store.audit import list_audit

    with open_store(api.url) as store:
        actions = [row.event.action for row in list_audit(store, tenant="a", limit=10_000)]
    assert "referral.export_files" in actions


def test_referral_export_refuses_a_missing_store_and_a_country_code_that_is_not_one(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_cli_hashset import run as run_cli

    missing = tmp_path / "nonexistent.sqlite"
    base = ["referral", "export", "--tenant", "hotline", "-o", str(tmp_path / "out")]
    code, _, err = run_cli(monkeypatch, capsys, *base, "--country", "NL", "--db", str(missing))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert str(missing) in err and "no store" in err
    assert not missing.exists() and not (tmp_path / "out").exists()
    for bad in ("XX1", "XX"):
        code, _, err = run_cli(monkeypatch, capsys, *base, "--country", bad, "--db", str(missing))
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "--country" in err and repr(bad) in err
    assert not missing.exists()


# --- on a real socket ----------------------------------------------------------------------------
def test_the_flow_over_http_on_a_running_server(db_url: str) -> None:
    """Submit (XML), upload, fileinfo, finish as a platform would, then the hotline's queue, over
    HTTP against uvicorn on a real socket."""
    import httpx

    from test_service_server import served

    with open_store(db_url) as store:
        reporter = create_token(store, "reporter", "hl")[1]
        hotline = create_token(store, "hotline", "hl")[1]
    with served(db_url) as base, httpx.Client(base_url=base, timeout=30) as http:
        rh = {"Authorization": f"Bearer {reporter}"}
        r = http.post(
            "/v1/intake/submit", headers={**rh, "content-type": "application/xml"}, content=XML_REPORT
        )
        assert r.status_code == 201, r.text
        rid = r.json()["reportId"]
        data = picture(4)
        r = http.post(
            f"/v1/intake/reports/{rid}/upload", headers=rh, files={"file": ("a.jpg", data, "image/jpeg")}
        )
        assert r.status_code == 200 and r.json()["hash"] == hashlib.md5(data).hexdigest(), r.text
        info = {
            "fileDetails": {"fileId": r.json()["fileId"], "fileAnnotations": {"possibleSelfProduction": True}}
        }
        assert http.post(f"/v1/intake/reports/{rid}/fileinfo", headers=rh, json=info).status_code == 200
        assert http.post(f"/v1/intake/reports/{rid}/finish", headers=rh).status_code == 200
        queue = http.get("/v1/intake/referrals/NL", headers={"Authorization": f"Bearer {hotline}"}).json()[
            "queue"
        ]
        assert [q["reportId"] for q in queue] == [rid]
        assert queue[0]["priorityReasons"] == ["newMaterial", "possibleSelfProduction"]


def test_migration_0007_admits_the_new_roles_and_goes_back(db_url: str) -> None:
    import sqlalchemy as sa
    from alembic import command

    from opspoor.errors import StoreError
    from opspoor.store.db import alembic_config, resolve_url

    url = resolve_url(db_url)
    command.upgrade(alembic_config(url), "0005")
    with open_store(db_url, migrate=False) as store, pytest.raises(StoreError):
        create_token(store, "hotline", "t")  # the old CHECK refuses the role
    command.upgrade(alembic_config(url), "head")
    with open_store(db_url) as store:
        create_token(store, "hotline", "t")
        create_token(store, "platform", "t")
    command.downgrade(alembic_config(url), "0005")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        roles = set(conn.execute(sa.text("SELECT role FROM tokens")).scalars())
    engine.dispose()
    assert not tables & {"intake_reports", "intake_files", "intake_bundles", "share_offers", "subscriptions"}
    assert roles == {"platform"}  # tokens of the removed roles go with them


# --- the platform's side -------------------------------------------------------------------------
def test_report_build_from_match_answers_and_a_scan_then_sent_to_the_intake(
    sqlite_api: Api, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from test_cli_hashset import run as run_cli

    api = sqlite_api
    known, other = picture(1), picture(2)
    create_set(api, "known")
    md5 = hashlib.md5(known).hexdigest()
    add_entries(api, "known", [{"signals": {"md5": md5}, "category": {"scheme": "ncmec", "code": "B2"}}])
    eventually(lambda: bool(match_values(api, [{"type": "md5", "value": md5}])[0]["matches"]), timeout=30)
    answers = [
        api.client.post(
            "/v1/match", headers=api.auth("a", "platform"), files={"file": (name, data, "image/jpeg")}
        ).json()
        for name, data in (("known.jpg", known), ("other.jpg", other))
    ]
    (tmp_path / "answers.json").write_text(json.dumps(answers))
    out = tmp_path / "report.json"
    args = ["report", "build", str(tmp_path / "answers.json"), "-o", str(out), "--ip", "193.0.6.139"]
    code, _, err = run_cli(monkeypatch, capsys, *args, "--incident-datetime", "2026-02-28T10:00:00Z")
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert [f["md5"] for f in doc["files"]] == [md5]  # only the known file is reported
    assert doc["files"][0]["fileDetails"] == {
        "fileViewedByEsp": False,
        "originalFileName": "known.jpg",
        "industryClassification": "B2",
    }
    # a bad value is one line naming its element, nothing written
    bad = tmp_path / "bad.json"
    code, _, err = run_cli(monkeypatch, capsys, *args[:4], str(bad), "--incident-datetime", "yesterday")
    assert code != 0 and "incidentDateTime" in err and "Traceback" not in err and not bad.exists()

    # a scan's files.jsonl gives the same
    case = tmp_path / "case"
    case.mkdir()
    rec = {"path": "/evidence/dir/known.jpg", "status": "known", "md5": md5, "sha1": None, "sha256": None}
    rec["matches"] = [{"hashset": "known", "kind": "known", "category": None}]
    (case / "files.jsonl").write_text(
        json.dumps(rec) + "\n" + json.dumps({**rec, "md5": "0" * 32, "matches": []})
    )
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        "report",
        "build",
        str(case),
        "-o",
        str(tmp_path / "r2.json"),
        "--incident-datetime",
        "2026-02-28T10:00:00Z",
    )
    assert code == 0, err
    scan_doc = json.loads((tmp_path / "r2.json").read_text())
    assert [(f["path"], f["fileName"]) for f in scan_doc["files"]] == [
        ("/evidence/dir/known.jpg", "known.jpg")
    ]

    # ready to send: the intake takes it as it is
    rid = submit(api, {"report": doc["report"]})
    fid = upload(api, rid, known).json()["fileId"]
    details = {"fileDetails": {**doc["files"][0]["fileDetails"], "fileId": fid}}
    assert step(api, rid, "fileinfo", json=details).status_code == 200
    assert step(api, rid, "finish").status_code == 200
    assert show(api, rid).json()["referral"]["countries"] == ["NL"]
