"""The intake in XML from end to end, as NCMEC's CyberTipline API is used: XML documents in, and
with ``Accept: application/xml`` XML answers out (``reportResponse``, ``reportDoneResponse``) and
errors as RFC 9457 problems in XML that name the faulty element. JSON stays the default.

Every image is generated (gradients, shapes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from xml.etree.ElementTree import Element, fromstring

import pytest

from test_intake import XML_REPORT, picture
from test_service import Api, running

XML = "application/xml"
NS = "{urn:ietf:rfc:7807}"


@pytest.fixture
def api(sqlite_url: str) -> Iterator[Api]:
    with running(sqlite_url) as a:
        yield a


def xml(r: object, status: int, root: str, ctype: str = XML) -> Element:
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    assert r.headers["content-type"].startswith(ctype)  # type: ignore[attr-defined]
    doc = fromstring(r.content)  # type: ignore[attr-defined]
    assert doc.tag == root
    return doc


def test_the_flow_in_xml_answers_in_ncmec_shape(api: Api) -> None:
    h = {**api.auth("a", "reporter"), "content-type": XML, "accept": XML}
    r = xml(api.client.post("/v1/intake/submit", headers=h, content=XML_REPORT), 201, "reportResponse")
    assert r.findtext("responseCode") == "0" and r.findtext("responseDescription") == "Success"
    rid = int(r.findtext("reportId") or 0)
    assert rid > 0

    data = picture(4)
    up_headers = {k: v for k, v in h.items() if k != "content-type"}
    r = xml(
        api.client.post(
            f"/v1/intake/reports/{rid}/upload",
            headers=up_headers,
            files={"file": ("a.jpg", data, "image/jpeg")},
        ),
        200,
        "reportResponse",
    )
    fid = int(r.findtext("fileId") or 0)
    assert r.findtext("hash") == hashlib.md5(data).hexdigest()

    info = f"<fileDetails><fileId>{fid}</fileId><publiclyAvailable>false</publiclyAvailable></fileDetails>"
    r = xml(
        api.client.post(f"/v1/intake/reports/{rid}/fileinfo", headers=h, content=info), 200, "reportResponse"
    )
    assert r.findtext("fileId") == str(fid)

    r = xml(
        api.client.post(f"/v1/intake/reports/{rid}/finish", headers=up_headers), 200, "reportDoneResponse"
    )
    assert r.findtext("responseCode") == "0" and r.findtext("reportId") == str(rid)
    assert [e.text for e in r.findall("files/fileId")] == [str(fid)]

    # a finished report cannot be retracted: the problem in XML
    p = xml(
        api.client.post(f"/v1/intake/reports/{rid}/retract", headers=up_headers),
        409,
        f"{NS}problem",
        "application/problem+xml",
    )
    assert p.findtext(f"{NS}status") == "409" and "finished" in (p.findtext(f"{NS}detail") or "")


def test_xml_errors_name_the_element_and_json_stays_the_default(api: Api) -> None:
    h = {**api.auth("a", "reporter"), "content-type": XML, "accept": XML}
    bad = XML_REPORT.replace(b"<espIdentifier>", b"<espIdentifer>").replace(
        b"</espIdentifier>", b"</espIdentifer>"
    )
    r = api.client.post("/v1/intake/submit", headers=h, content=bad)
    p = xml(r, 422, f"{NS}problem", "application/problem+xml")
    first = p.find(f"{NS}errors/{NS}i")
    assert first is not None
    assert first.findtext(f"{NS}element") == "espIdentifer"
    assert (first.findtext(f"{NS}pointer") or "").endswith("/personOrUserReported/espIdentifer")

    # without Accept, or preferring JSON, the answers are JSON as before
    for accept in (None, "application/json, application/xml;q=0.5", "*/*"):
        hh = {k: v for k, v in h.items() if k != "accept"}
        if accept:
            hh["accept"] = accept
        r = api.client.post("/v1/intake/submit", headers=hh, content=bad)
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
        r = api.client.post("/v1/intake/submit", headers=hh, content=XML_REPORT)
        assert r.status_code == 201 and r.json()["reportId"] > 0


def test_only_the_intake_answers_in_xml(api: Api) -> None:
    r = api.client.get("/v1/hashsets/nothing-here", headers={**api.auth("a", "curator"), "accept": XML})
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
