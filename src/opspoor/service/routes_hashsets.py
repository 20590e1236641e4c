"""Hash sets of the caller's tenant: list, create, show, remove; add and remove entries; import a
hash-set file (streamed into the store, never held whole). Curators manage; analysts may read."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

import anyio
from fastapi import Depends, Query, Request
from pydantic import BaseModel, Field, model_validator

from opspoor.errors import FormatError, SignalError
from opspoor.hashsets.formats import FORMATS, read_entries
from opspoor.hashsets.model import DEFAULT_PDQ_DISTANCE, Category, Entry
from opspoor.service.auth import ANALYST, CURATOR, Call, require
from opspoor.service.fields import Name, Text
from opspoor.service.limits import (
    StreamReader,
    body_chunks,
    check_declared_length,
    multipart_boundary,
    multipart_file_chunks,
)
from opspoor.service.problems import http_words
from opspoor.service.routing import api_router, service_of
from opspoor.signals import SIGNALS
from opspoor.store import (
    HashSetRecord,
    ImportResult,
    create_hashset,
    entry_counts,
    get_hashset,
    hashset_counts,
    import_entries,
    list_hashsets,
    remove_entries,
    remove_hashset,
)

router = api_router(401, 403, 404, 409, 413, 422, 429, 503, tags=["hash sets"])

MAX_ENTRIES = 100_000
#: rejected records listed in an import's answer (all are counted)
MAX_REJECTS_LISTED = 100


# --- schemas ---------------------------------------------------------------------------------------
class HashSetCreate(BaseModel):
    name: Name
    kind: Literal["known", "ignorable"] = "known"
    distance: Annotated[int, Field(ge=0, le=256)] = DEFAULT_PDQ_DISTANCE
    source: Annotated[Text | None, Field(max_length=1000)] = None


class HashSetOut(BaseModel):
    name: str
    kind: str
    distance: int
    source: str | None
    created_at: datetime
    entries: int


class HashSetDetail(HashSetOut):
    signals: dict[str, int]
    categories: dict[str, int]
    conflicts: int


class HashSetList(BaseModel):
    hashsets: list[HashSetOut]


class HashSetRemoved(BaseModel):
    name: str
    removed_entries: int


class CategoryIn(BaseModel):
    scheme: Text
    code: Text


class EntryIn(BaseModel):
    signals: Annotated[dict[Text, Annotated[Text, Field(max_length=100_000)]], Field(min_length=1)]
    category: CategoryIn | None = None
    external_id: Text | None = None
    victim_identified: bool | None = None
    offender_identified: bool | None = None
    distributed: bool | None = None
    series: Text | None = None
    tags: list[Text] = []
    source: Text | None = None
    date_updated: Text | None = None


class EntriesIn(BaseModel):
    entries: Annotated[list[EntryIn], Field(min_length=1, max_length=MAX_ENTRIES)]


class EntriesDelete(BaseModel):
    """Remove by entry id, or by value of one signal type."""

    entry_ids: Annotated[list[Annotated[int, Field(ge=1, le=2**63 - 1)]], Field(max_length=MAX_ENTRIES)] = []
    #: a signal an entry carries (``hashsets.model``: any of the registry's but local features)
    signal: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,15}$")] | None = None
    values: Annotated[list[Text], Field(max_length=MAX_ENTRIES)] = []

    @model_validator(mode="after")
    def _something(self) -> EntriesDelete:
        if not self.entry_ids and not self.values:
            raise ValueError("give entry_ids, or signal and values")
        if self.values and self.signal is None:
            raise ValueError("removing by value needs the signal type")
        if self.signal is not None:
            found = SIGNALS.get(self.signal)
            if found is None or not found.entry_value:
                known = ", ".join(n for n, s in SIGNALS.items() if s.entry_value)
                raise ValueError(f"signal {self.signal!r} is not a signal of entries; one of: {known}")
        return self


class EntriesRemoved(BaseModel):
    removed: list[int]


class Reject(BaseModel):
    record: int | None
    line: int | None = None
    reason: str


class ImportOut(BaseModel):
    added: int
    duplicates: int
    conflicts: int
    rejected: int
    rejects: list[Reject] = []
    #: what decided the duplicates: the strongest hash each shares (md5, sha1, sha256)
    duplicates_by: dict[str, int] = {}
    #: entries kept with a category code their scheme does not define, by category
    unknown_categories: dict[str, int] = {}
    #: uncategorised entries (us-cat:0) not imported into a known set
    uncategorised: int = 0


def _import_json(r: ImportResult, rejected: int) -> dict[str, Any]:
    return {
        "added": r.added,
        "duplicates": r.duplicates,
        "conflicts": r.conflicts,
        "rejected": rejected,
        "duplicates_by": r.duplicates_by,
        "unknown_categories": r.unknown_categories,
        "uncategorised": r.uncategorised,
    }


def _set_json(h: HashSetRecord, entries: int) -> dict[str, Any]:
    return {
        "name": h.name,
        "kind": h.kind,
        "distance": h.distance,
        "source": h.source,
        "created_at": h.created_at,
        "entries": entries,
    }


def _entry(e: EntryIn) -> Entry:
    return Entry(
        signals={k.lower(): _stored_form(k.lower(), v) for k, v in e.signals.items()},
        category=Category(e.category.scheme.lower(), e.category.code) if e.category else None,
        victim_identified=e.victim_identified,
        offender_identified=e.offender_identified,
        distributed=e.distributed,
        series=e.series,
        tags=tuple(e.tags),
        source=e.source,
        date_updated=e.date_updated,
        external_id=e.external_id,
    )


# --- routes ----------------------------------------------------------------------------------------
@router.get("/v1/hashsets", response_model=HashSetList)
async def list_sets(
    request: Request, call: Annotated[Call, Depends(require("hashset.list", CURATOR, ANALYST))]
) -> dict[str, Any]:
    """The tenant's hash sets with their entry counts."""
    store, tenant = service_of(request).store, call.principal.tenant
    sets = await anyio.to_thread.run_sync(lambda: list_hashsets(store, tenant=tenant))
    counts = await anyio.to_thread.run_sync(lambda: entry_counts(store, tenant=tenant))
    return {"hashsets": [_set_json(h, counts.get(h.name, 0)) for h in sets]}


@router.post("/v1/hashsets", response_model=HashSetOut, status_code=201)
async def create_set(
    body: HashSetCreate,
    request: Request,
    call: Annotated[Call, Depends(require("hashset.create", CURATOR, changes=True))],
) -> dict[str, Any]:
    """Create an empty hash set."""
    store, tenant = service_of(request).store, call.principal.tenant
    call.object = f"hashset:{body.name}"
    h = await anyio.to_thread.run_sync(
        lambda: create_hashset(
            store, body.name, kind=body.kind, source=body.source, distance=body.distance, tenant=tenant
        )
    )
    return _set_json(h, 0)


@router.get("/v1/hashsets/{name}", response_model=HashSetDetail)
async def show_set(
    name: Name, request: Request, call: Annotated[Call, Depends(require("hashset.show", CURATOR, ANALYST))]
) -> dict[str, Any]:
    """A hash set with its counts by signal and category, and its number of conflicts."""
    store, tenant = service_of(request).store, call.principal.tenant

    def read() -> dict[str, Any]:
        h = get_hashset(store, name, tenant=tenant)
        c = hashset_counts(store, name, tenant=tenant)
        return {
            **_set_json(h, c.entries),
            "signals": c.signals,
            "categories": c.categories,
            "conflicts": c.conflicts,
        }

    return await anyio.to_thread.run_sync(read)


@router.delete("/v1/hashsets/{name}", response_model=HashSetRemoved)
async def remove_set(
    name: Name,
    request: Request,
    call: Annotated[Call, Depends(require("hashset.remove", CURATOR, changes=True))],
) -> dict[str, Any]:
    """Remove a hash set and all its entries; matching stops finding them within seconds."""
    store, tenant = service_of(request).store, call.principal.tenant
    n = await anyio.to_thread.run_sync(lambda: remove_hashset(store, name, tenant=tenant))
    return {"name": name, "removed_entries": n}


@router.post("/v1/hashsets/{name}/entries", response_model=ImportOut)
async def add_entries(
    name: Name,
    body: EntriesIn,
    request: Request,
    call: Annotated[Call, Depends(require("hashset.add_entries", CURATOR, changes=True))],
) -> dict[str, Any]:
    """Add entries (all or nothing: an invalid entry is named and nothing is added). Duplicates of
    entries already in the set are folded into them; disagreeing categories are kept as conflicts."""
    store, tenant = service_of(request).store, call.principal.tenant
    entries = [_entry(e) for e in body.entries]

    def run() -> dict[str, Any]:
        h = get_hashset(store, name, tenant=tenant)
        r = import_entries(store, name, entries, kind=h.kind, create=False, tenant=tenant)
        return _import_json(r, r.rejected)

    return await anyio.to_thread.run_sync(run)


@router.delete("/v1/hashsets/{name}/entries", response_model=EntriesRemoved)
async def delete_entries(
    name: Name,
    body: EntriesDelete,
    request: Request,
    call: Annotated[Call, Depends(require("hashset.remove_entries", CURATOR, changes=True))],
) -> dict[str, Any]:
    """Remove entries by id, or those carrying any of the given values of one signal type."""
    store, tenant = service_of(request).store, call.principal.tenant
    values = [_stored_form(body.signal, v) for v in body.values] if body.signal else body.values
    removed = await anyio.to_thread.run_sync(
        lambda: remove_entries(
            store, name, entry_ids=body.entry_ids, signal=body.signal, values=values, tenant=tenant
        )
    )
    return {"removed": removed}


def _stored_form(signal: str, value: str) -> str:
    """A fixed-width value as the store keeps it (its signal's canonical form: lower-case hex; a
    PhotoDNA's bytes in hex, whichever spelling is sent); any other value as given (the store
    refuses what it cannot hold, naming the entry, and a removal by it removes nothing)."""
    sig = SIGNALS.get(signal)
    if sig is None or sig.hex_length is None:
        return value
    try:
        return sig.validate(value)
    except SignalError:
        return value


_IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


@router.post("/v1/hashsets/{name}/import", response_model=ImportOut, openapi_extra=_IMPORT_BODY)
async def import_file(
    name: Name,
    request: Request,
    call: Annotated[Call, Depends(require("hashset.import", CURATOR, changes=True))],
    format: Annotated[
        str, Query(description=f"auto, or one of: {', '.join(FORMATS)}", pattern=r"^[a-z0-9]{1,16}$")
    ] = "auto",
    hash_type: Annotated[
        Literal["pdq", "sha256"] | None, Query(description="what 64-hex values of a plain list are")
    ] = None,
    source: Annotated[
        Text | None, Query(max_length=1000, description="who categorised these entries")
    ] = None,
    skip_invalid: Annotated[
        bool, Query(description="import the valid records and list the others, instead of all or nothing")
    ] = False,
) -> dict[str, Any]:
    """Import a hash-set file (VICS, ICSE, CSV, plain list, HMA, vPDQ) into an existing set, as the
    raw body (``application/octet-stream``) or the multipart field ``file``. The file is streamed
    into the store in one transaction: all or nothing unless ``skip_invalid``."""
    svc = service_of(request)
    store, tenant = svc.store, call.principal.tenant
    limit = svc.settings.max_import_bytes
    check_declared_length(request, limit, "the hash-set file")
    h = await anyio.to_thread.run_sync(lambda: get_hashset(store, name, tenant=tenant))
    boundary = multipart_boundary(request)
    chunks: AsyncIterator[bytes] = (
        multipart_file_chunks(request, boundary, "file", limit)
        if boundary is not None
        else body_chunks(request, limit, "the hash-set file")
    )
    stream = io.BufferedReader(StreamReader(chunks), 1 << 20)
    rejects: list[dict[str, Any]] = []
    count = [0]

    def reject(record: int | None, line: int | None, reason: str) -> None:
        count[0] += 1
        if len(rejects) < MAX_REJECTS_LISTED:
            rejects.append({"record": record, "line": line, "reason": http_words(reason)})

    def on_read_error(exc: FormatError) -> None:
        reject(exc.record, exc.line, exc.detail)

    def on_store_reject(position: int, entry: Entry, reason: str) -> None:
        reject(position, None, reason)

    def run() -> dict[str, Any]:
        entries = read_entries(
            stream,  # type: ignore[arg-type]
            format,
            hash_type=hash_type,
            on_error=on_read_error if skip_invalid else None,
            source=source,
        )
        r = import_entries(
            store,
            name,
            entries,
            kind=h.kind,
            create=False,
            tenant=tenant,
            on_reject=on_store_reject if skip_invalid else None,
        )
        return {**_import_json(r, count[0]), "rejects": rejects}

    try:
        return await anyio.to_thread.run_sync(run)
    except FormatError as exc:
        if exc.where is None:
            exc.where = f"import into {name!r}"
        raise
