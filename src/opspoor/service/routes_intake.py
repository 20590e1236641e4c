"""Hotline intake in the shape of NCMEC's CyberTipline API: open a report (``submit``), upload its
files (``upload``, repeatable: each answered with its file id and MD5), describe them
(``fileinfo``), ``finish``; ``retract`` only before finish. Documents are JSON or XML in NCMEC's
element names, validated against the schemas in ``opspoor/intake/schema`` (every fault names its
element, as an RFC 9457 problem with ``errors[].pointer``).

Uploaded bytes are hashed in memory and stored sealed with AES-GCM (``Settings.intake_key``);
without a key the intake answers 503. On finish the files are matched against the tenant's sets,
the report is bundled with the finished reports that share a file, referred to countries and given
its queue priority. A ``reporter`` token (a platform) sees its own reports; a ``hotline`` token
sees all reports of its tenant, the referral queues and bundles.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import anyio
from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel

from opspoor.intake.documents import is_xml, parse_document
from opspoor.intake.priority import priority, priority_reasons
from opspoor.intake.referral import refer
from opspoor.intake.sealing import seal
from opspoor.matching import Query as MatchQuery
from opspoor.service.auth import HOTLINE, REPORTER, Call, require
from opspoor.service.limits import body_chunks, check_declared_length, read_upload
from opspoor.service.problems import Problem
from opspoor.service.routes_match import hash_upload, match_json, match_queries
from opspoor.service.routing import api_router, service_of
from opspoor.service.state import Service
from opspoor.service.xml_answers import answer, wants_xml
from opspoor.signals.vpdq import format_vpdq
from opspoor.store.intake import (
    IntakeReport,
    NewFile,
    Outcome,
    add_file,
    bundle_counts,
    expire_reports,
    finish_report,
    get_report,
    intake_counts,
    list_reports,
    open_report,
    report_state,
    reports_with_files,
    retract_report,
    set_file_details,
)

router = api_router(401, 403, 404, 409, 413, 415, 422, 429, 503, tags=["intake"])

ReportId = Annotated[int, Path(ge=1, le=2**63 - 1)]
#: expired reports are swept at most this often (by the intake clock), on submit and on listing
SWEEP_SECONDS = 60.0
OK = {"responseCode": 0, "responseDescription": "Success"}
_DOCUMENT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/xml": {"schema": {"type": "string"}},
        },
    }
}
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            }
        },
    }
}


class ReportOpened(BaseModel):
    responseCode: int
    responseDescription: str
    reportId: int


class FileUploaded(ReportOpened):
    fileId: int
    hash: str  # MD5, as NCMEC answers


# --- helpers -------------------------------------------------------------------------------------
def _sealing_key(svc: Service) -> bytes:
    if svc.intake_key is None:
        raise Problem(
            503,
            "the intake has no key to seal uploaded files with; set OPSPOOR_SERVICE_INTAKE_KEY",
            slug="intake-not-configured",
        )
    return svc.intake_key


async def _document(request: Request, kind: str) -> dict[str, Any]:
    svc = service_of(request)
    limit = svc.settings.max_json_bytes
    check_declared_length(request, limit, "the document")
    body = b"".join([c async for c in body_chunks(request, limit, "the document")])
    xml = is_xml(request.headers.get("content-type"), body)
    return await anyio.to_thread.run_sync(lambda: parse_document(body, kind, xml=xml))  # type: ignore[arg-type]


async def _sweep(svc: Service, now: datetime) -> None:
    last: datetime | None = getattr(svc, "intake_swept", None)
    if last is not None and 0 <= (now - last).total_seconds() < SWEEP_SECONDS:
        return
    svc.intake_swept = now  # type: ignore[attr-defined]
    await anyio.to_thread.run_sync(lambda: expire_reports(svc.store, now))


def _own(call: Call) -> int | None:
    """A reporter acts on its own reports only; a hotline on all of its tenant's."""
    return call.principal.token_id if call.principal.role == REPORTER else None


def report_json(rep: IntakeReport, *, hotline: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "reportId": rep.id,
        "status": rep.status,
        "openedAt": rep.opened_at.isoformat(),
        "finishedAt": rep.finished_at.isoformat() if rep.finished_at else None,
        "expiresAt": rep.expires_at.isoformat(),
        "report": rep.document,
        "files": [f.to_json() for f in rep.files],
    }
    if not hotline:  # the platform does not learn what the hotline's sets hold
        for f in out["files"]:
            f.pop("matches", None)
        return out
    out.update(
        {
            "bundleId": rep.bundle_id,
            "priority": rep.priority,
            "priorityReasons": priority_reasons(rep.priority or 0),
            "referral": rep.referral,
        }
    )
    return out


# --- the CyberTipline flow -----------------------------------------------------------------------
@router.post("/v1/intake/submit", response_model=ReportOpened, status_code=201, openapi_extra=_DOCUMENT_BODY)
async def submit(
    request: Request, call: Annotated[Call, Depends(require("intake.submit", REPORTER, changes=True))]
) -> dict[str, Any]:
    """Open a report from a ``report`` document (JSON or XML); answers its ``reportId``."""
    svc = service_of(request)
    _sealing_key(svc)
    now = svc.clock()
    await _sweep(svc, now)
    doc = await _document(request, "report")
    p = call.principal
    rid = await anyio.to_thread.run_sync(
        lambda: open_report(svc.store, p.tenant, p.token_id, doc, now, svc.intake_life)
    )
    call.object = f"report:{rid}"
    return answer(request, {**OK, "reportId": rid}, status=201)


@router.post("/v1/intake/reports/{report_id}/upload", response_model=FileUploaded, openapi_extra=_UPLOAD_BODY)
async def upload(
    report_id: ReportId,
    request: Request,
    call: Annotated[Call, Depends(require("intake.upload", REPORTER, changes=True))],
) -> dict[str, Any]:
    """Add a file (multipart field ``file``) to an open report; answers its ``fileId`` and MD5. The
    file is hashed in memory and stored sealed (AES-GCM), never in the clear."""
    svc = service_of(request)
    key = _sealing_key(svc)
    p = call.principal
    state = await anyio.to_thread.run_sync(  # 404/409 before the upload is read and hashed
        lambda: report_state(svc.store, p.tenant, report_id, svc.clock(), token_id=p.token_id)
    )
    if state.status != "open":
        raise Problem(
            409, f"report {report_id} is {state.status}; it can no longer be changed", slug="report-state"
        )
    async with svc.upload_slots:
        up = await read_upload(request, svc.settings.max_upload_bytes)
        if not up.data:
            raise Problem(
                422, "the field 'file' is empty (0 bytes): send the file's content", slug="empty-upload"
            )
        sig = await hash_upload(request, up)
        sealed = seal(key, up.data, f"report:{report_id}:sha256:{sig.sha256}")
    gps = sig.exif.gps if sig.exif is not None else None
    vpdq = format_vpdq(sig.vpdq_frames) if sig.vpdq_frames else None
    f = NewFile(
        up.filename,
        sig.size,
        sig.md5,
        sig.sha1,
        sig.sha256,
        sig.pdq,
        sig.quality,
        sig.type,
        gps,
        sealed,
        vpdq=vpdq,
    )
    now = svc.clock()
    fid = await anyio.to_thread.run_sync(
        lambda: add_file(svc.store, p.tenant, report_id, p.token_id, f, now, svc.intake_life, state.opened_at)
    )
    call.object = f"report:{report_id}/file:{fid}"
    return answer(request, {**OK, "reportId": report_id, "fileId": fid, "hash": sig.md5})


@router.post("/v1/intake/reports/{report_id}/fileinfo", openapi_extra=_DOCUMENT_BODY)
async def fileinfo(
    report_id: ReportId,
    request: Request,
    call: Annotated[Call, Depends(require("intake.fileinfo", REPORTER, changes=True))],
) -> dict[str, Any]:
    """Details of an uploaded file: a ``fileDetails`` document naming its ``fileId``."""
    svc = service_of(request)
    doc = await _document(request, "fileDetails")
    if doc.get("reportId", report_id) != report_id:
        raise Problem(
            422,
            f"fileDetails/reportId is {doc['reportId']}, but this is report {report_id}",
            slug="invalid-document",
            extra={
                "errors": [
                    {"pointer": "/fileDetails/reportId", "element": "reportId", "message": "another report"}
                ]
            },
        )
    doc["reportId"] = report_id
    p, now = call.principal, svc.clock()
    await anyio.to_thread.run_sync(
        lambda: set_file_details(
            svc.store, p.tenant, report_id, p.token_id, doc["fileId"], doc, now, svc.intake_life
        )
    )
    return answer(request, {**OK, "reportId": report_id, "fileId": doc["fileId"]})


@router.post("/v1/intake/reports/{report_id}/retract")
async def retract(
    report_id: ReportId,
    request: Request,
    call: Annotated[Call, Depends(require("intake.retract", REPORTER, changes=True))],
) -> dict[str, Any]:
    """Withdraw an open report; its files are deleted at once. A finished report cannot be."""
    svc = service_of(request)
    p, now = call.principal, svc.clock()
    await anyio.to_thread.run_sync(
        lambda: retract_report(svc.store, p.tenant, report_id, p.token_id, now, svc.intake_life)
    )
    return answer(request, {**OK, "reportId": report_id})


@router.post("/v1/intake/reports/{report_id}/finish")
async def finish(
    report_id: ReportId,
    request: Request,
    call: Annotated[Call, Depends(require("intake.finish", REPORTER, changes=True))],
) -> dict[str, Any]:
    """Finish the report: from now on it cannot change. Its files are matched against the tenant's
    hash sets, it is bundled with the reports that share a file, referred to countries and queued."""
    svc = service_of(request)
    p, now = call.principal, svc.clock()
    rep = await anyio.to_thread.run_sync(
        lambda: get_report(svc.store, p.tenant, report_id, now, token_id=p.token_id)
    )
    queries = [MatchQuery.from_signals(f.signals()) for f in rep.files]
    found = await match_queries(svc, call, queries) if queries else []
    matches = {f.id: [match_json(m) for m in ms] for f, ms in zip(rep.files, found, strict=True)}
    details = [f.details or {"fileId": f.id} for f in rep.files]
    gps = [(f.id, f.gps) for f in rep.files if f.gps is not None]
    referral = await anyio.to_thread.run_sync(lambda: refer(rep.document, details, gps))  # type: ignore[arg-type]
    new = any(not ms for ms in matches.values())
    outcome = Outcome(matches, priority(rep.document, details, new), referral.countries, referral.to_json())
    life, distance, index = svc.intake_life, svc.settings.intake_bundle_distance, svc.intake_bundles
    await anyio.to_thread.run_sync(
        lambda: finish_report(svc.store, p.tenant, report_id, p.token_id, outcome, now, life, distance, index)
    )
    if wants_xml(request):  # NCMEC's reportDoneResponse: the file ids
        done = {"responseCode": 0, "reportId": report_id, "files": {"fileId": [f.id for f in rep.files]}}
        return answer(request, done, root="reportDoneResponse")
    return {**OK, "reportId": report_id, "files": [{"fileId": f.id, "hash": f.md5} for f in rep.files]}


# --- reading (reporter: own reports; hotline: the tenant's) ---------------------------------------
@router.get("/v1/intake/reports/{report_id}")
async def show_report(
    report_id: ReportId,
    request: Request,
    call: Annotated[Call, Depends(require("intake.show", REPORTER, HOTLINE))],
) -> dict[str, Any]:
    """A report with its files' hashes and details; for a hotline also the matches, bundle,
    priority and referral."""
    svc = service_of(request)
    p, now = call.principal, svc.clock()
    rep = await anyio.to_thread.run_sync(
        lambda: get_report(svc.store, p.tenant, report_id, now, token_id=_own(call))
    )
    return report_json(rep, hotline=p.role == HOTLINE)


@router.get("/v1/intake/reports")
async def list_all(
    request: Request,
    call: Annotated[Call, Depends(require("intake.list", REPORTER, HOTLINE))],
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    """Reports, newest first (a reporter's own; a hotline's whole tenant), with the tenant's counts
    as NCMEC counts them (a bundle once; incidents unbundled)."""
    svc = service_of(request)
    p, now = call.principal, svc.clock()
    await _sweep(svc, now)
    reps = await anyio.to_thread.run_sync(
        lambda: list_reports(svc.store, p.tenant, now, token_id=_own(call), limit=limit)
    )
    out: dict[str, Any] = {
        "reports": [{"reportId": r.id, "status": r.status, "openedAt": r.opened_at.isoformat()} for r in reps]
    }
    if p.role == HOTLINE:
        out["counts"] = await anyio.to_thread.run_sync(lambda: intake_counts(svc.store, p.tenant))
    return out


@router.get("/v1/intake/referrals/{country}")
async def referral_queue(
    country: Annotated[str, Path(pattern=r"^([A-Z]{2}|unresolved)$")],
    request: Request,
    call: Annotated[Call, Depends(require("intake.queue", HOTLINE))],
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    """The referral queue of a country (or ``unresolved``), most urgent first; a bundle (a viral
    file reported many times) is queued once, with the number of reports it holds."""
    svc = service_of(request)
    p, now = call.principal, svc.clock()
    reps = await anyio.to_thread.run_sync(
        lambda: list_reports(svc.store, p.tenant, now, country=country, limit=limit)
    )
    return {"country": country, "queue": queue_items(reps)}


def queue_items(reps: list[IntakeReport]) -> list[dict[str, Any]]:
    """One item per bundle (its most urgent report first, as ``reps`` are ordered) or loose report."""
    items: list[dict[str, Any]] = []
    by_bundle: dict[int, dict[str, Any]] = {}
    for r in reps:
        if r.bundle_id is not None and r.bundle_id in by_bundle:
            by_bundle[r.bundle_id]["reportIds"].append(r.id)
            continue
        item = {
            "reportId": r.id,
            "bundleId": r.bundle_id,
            "reportIds": [r.id],
            "priority": r.priority,
            "priorityReasons": priority_reasons(r.priority or 0),
            "finishedAt": r.finished_at.isoformat() if r.finished_at else None,
        }
        if r.bundle_id is not None:
            by_bundle[r.bundle_id] = item
        items.append(item)
    return items


@router.get("/v1/intake/bundles/{bundle_id}")
async def show_bundle(
    bundle_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    request: Request,
    call: Annotated[Call, Depends(require("intake.bundle", HOTLINE))],
) -> dict[str, Any]:
    """The reports a bundle holds, and its incidents (the reports it unbundles to)."""
    svc = service_of(request)
    ids, incidents = await anyio.to_thread.run_sync(
        lambda: bundle_counts(svc.store, call.principal.tenant, bundle_id)
    )
    return {"bundleId": bundle_id, "reportIds": ids, "reports": 1, "incidents": incidents}


__all__ = ["queue_items", "report_json", "reports_with_files", "router"]
