"""The platform's side: a report document in the CyberTipline shape from its match hits, ready to
send to the intake API (or NCMEC's).

Hits come from a scan (a case folder's ``files.jsonl``) or from the service's match answers
(``POST /v1/match`` with file uploads, saved as JSON: one answer, a list of them, or one per
line). Only files that matched a *known* set are reported. The report part is checked against the
shipped schema before it is written; each file carries its hashes, the path to upload it from (a
scan's) and its ``fileDetails`` (the ``fileId`` is filled in when the file is uploaded).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from opspoor.errors import IntakeError
from opspoor.intake.documents import parse_document

FILES_JSONL = "files.jsonl"
CHILD_PORNOGRAPHY = "Child Pornography (possession, manufacture, and distribution)"


def read_hits(source: Path) -> Iterator[dict[str, Any]]:
    """(file name, path, hashes, matches) of every input of a scan or of saved match answers."""
    path = source / FILES_JSONL if source.is_dir() else source
    if not path.is_file():
        raise IntakeError(
            "neither a case folder with files.jsonl nor a JSON file of match answers", str(source)
        )
    text = path.read_bytes()
    try:
        docs: list[Any] = [orjson.loads(text)]
    except orjson.JSONDecodeError:
        try:
            docs = [orjson.loads(line) for line in text.splitlines() if line.strip()]
        except orjson.JSONDecodeError as exc:
            raise IntakeError(f"not JSON: {exc}", str(path)) from None
    for doc in docs:
        for item in doc if isinstance(doc, list) else [doc]:
            yield from _hits_of(item, path)


def _hits_of(item: Any, where: Path) -> Iterator[dict[str, Any]]:
    if not isinstance(item, dict):
        raise IntakeError("expected JSON objects (scan records or match answers)", str(where))
    if "results" in item:  # a service match answer
        for r in item["results"]:
            f = r.get("file") or {}
            if f.get("md5"):
                yield {
                    "fileName": f.get("filename"),
                    "path": None,
                    **_hashes(f),
                    "matches": r.get("matches", []),
                }
    elif "md5" in item and "path" in item:  # a scan record
        name = str(item["path"]).rsplit("!/", 1)[-1].rsplit("/", 1)[-1]
        yield {"fileName": name, "path": item["path"], **_hashes(item), "matches": item.get("matches") or []}


def _hashes(d: dict[str, Any]) -> dict[str, Any]:
    return {k: d.get(k) for k in ("md5", "sha1", "sha256", "pdq")}


def build_report(
    hits: list[dict[str, Any]],
    *,
    incident_datetime: str,
    incident_type: str = CHILD_PORNOGRAPHY,
    ip_addresses: list[str] | None = None,
    screen_name: str | None = None,
    esp_identifier: str | None = None,
    country: str | None = None,
) -> dict[str, Any]:
    """``{"report": …, "files": [{"fileName", "path", "md5", …, "fileDetails": …}]}``."""
    person: dict[str, Any] = {}
    if esp_identifier:
        person["espIdentifier"] = esp_identifier
    if screen_name:
        person["screenName"] = screen_name
    if ip_addresses:
        person["ipCaptureEvent"] = [{"ipAddress": a, "eventName": "Upload"} for a in ip_addresses]
    if country:
        person["estimatedLocation"] = {"countryCode": country}
    report: dict[str, Any] = {
        "incidentSummary": {"incidentType": incident_type, "incidentDateTime": incident_datetime}
    }
    if person:
        report["personOrUserReported"] = [person]
    valid = parse_document(json.dumps({"report": report}).encode(), "report", xml=False)
    files = []
    for h in hits:
        known = [m for m in h["matches"] if m.get("kind", "known") == "known"]
        if not known:
            continue
        details: dict[str, Any] = {"fileViewedByEsp": False}
        if h.get("fileName"):
            details["originalFileName"] = h["fileName"]
        ncmec = next(
            (m["category"]["code"] for m in known if (m.get("category") or {}).get("scheme") == "ncmec"), None
        )
        if ncmec:
            details["industryClassification"] = ncmec
        files.append(
            {
                **{k: v for k, v in h.items() if k != "matches"},
                "matchedSets": sorted({m["hashset"] for m in known}),
                "fileDetails": details,
            }
        )
    return {"report": valid, "files": files}
