"""Hash sets shared between tenants, the way hotlines and NCMEC share lists with platforms (HMA
calls these exchanges). A curator of the publishing tenant offers one of its sets to named tenants
or to all (``*``) and may revoke the offer; a curator of a receiving tenant subscribes to an offer
(or ends the subscription). While both stand, the subscriber's matches include the set's, read-only
(it stays in the publisher's tenant, where only the publisher can change it), and each such match
names its ``owner``. Every offer, revocation, subscription and its end is audited."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import Depends, Path, Request
from pydantic import BaseModel, Field

from opspoor.service.auth import ANALYST, CURATOR, PLATFORM, Call, require
from opspoor.service.fields import Name
from opspoor.service.routing import api_router, service_of
from opspoor.store.hashsets import get_hashset
from opspoor.store.sharing import (
    SharedSet,
    offer_set,
    offered_to,
    offers_of,
    revoke_offer,
    subscribe,
    subscribed_sets,
    unsubscribe,
)

router = api_router(401, 403, 404, 422, 429, 503, tags=["sharing"])

PUBLISHER = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
TENANT = r"^(\*|[A-Za-z0-9][A-Za-z0-9._-]{0,63})$"  # a tenant, or every tenant
Tenant = Annotated[str, Field(pattern=TENANT)]


class OfferIn(BaseModel):
    tenants: Annotated[list[Tenant], Field(min_length=1, max_length=1000)]


class SubscriptionIn(BaseModel):
    publisher: Annotated[str, Field(pattern=PUBLISHER)]
    hashset: Name


@router.post("/v1/hashsets/{name}/shares", status_code=201)
async def offer(
    name: Name,
    body: OfferIn,
    request: Request,
    call: Annotated[Call, Depends(require("hashset.share", CURATOR, changes=True))],
) -> dict[str, Any]:
    """Offer the set, read-only, to the named tenants (``*``: to every tenant)."""
    store, tenant = service_of(request).store, call.principal.tenant
    call.object = f"hashset:{name}->{','.join(body.tenants)}"
    new = await anyio.to_thread.run_sync(lambda: offer_set(store, tenant, name, body.tenants))
    return {"hashset": name, "offered_to": new}


@router.get("/v1/hashsets/{name}/shares")
async def list_offers(
    name: Name, request: Request, call: Annotated[Call, Depends(require("hashset.shares", CURATOR))]
) -> dict[str, Any]:
    """The tenants the set is offered to."""
    store, tenant = service_of(request).store, call.principal.tenant

    def read() -> list[str]:
        get_hashset(store, name, tenant=tenant)
        return offers_of(store, tenant, name)

    return {"hashset": name, "tenants": await anyio.to_thread.run_sync(read)}


@router.delete("/v1/hashsets/{name}/shares/{subscriber}")
async def revoke(
    name: Name,
    subscriber: Annotated[str, Path(pattern=TENANT)],
    request: Request,
    call: Annotated[Call, Depends(require("hashset.revoke_share", CURATOR, changes=True))],
) -> dict[str, Any]:
    """Revoke the offer to one tenant (or ``*``); its matches stop within seconds."""
    store, tenant = service_of(request).store, call.principal.tenant
    call.object = f"hashset:{name}->{subscriber}"
    await anyio.to_thread.run_sync(lambda: revoke_offer(store, tenant, name, subscriber))
    return {"hashset": name, "revoked": subscriber}


@router.get("/v1/shared")
async def shared_with_me(
    request: Request, call: Annotated[Call, Depends(require("shared.list", CURATOR, ANALYST, PLATFORM))]
) -> dict[str, Any]:
    """The sets other tenants offer this one, and whether it subscribes to each."""
    store, tenant = service_of(request).store, call.principal.tenant
    offers = await anyio.to_thread.run_sync(lambda: offered_to(store, tenant))
    subs = set(await anyio.to_thread.run_sync(lambda: subscribed_sets(store, tenant)))
    return {"shared": [{**s.to_json(), "subscribed": s in subs} for s in offers]}


@router.post("/v1/subscriptions", status_code=201)
async def take_up(
    body: SubscriptionIn,
    request: Request,
    call: Annotated[Call, Depends(require("shared.subscribe", CURATOR, changes=True))],
) -> dict[str, Any]:
    """Subscribe to a set offered to this tenant: matching includes it from now on."""
    store, tenant = service_of(request).store, call.principal.tenant
    shared = SharedSet(body.publisher, body.hashset)
    call.object = f"share:{shared.publisher}/{shared.hashset}"
    new = await anyio.to_thread.run_sync(lambda: subscribe(store, tenant, shared))
    return {**shared.to_json(), "subscribed": True, "new": new}


@router.delete("/v1/subscriptions/{publisher}/{name}")
async def end(
    publisher: Annotated[str, Path(pattern=PUBLISHER)],
    name: Name,
    request: Request,
    call: Annotated[Call, Depends(require("shared.unsubscribe", CURATOR, changes=True))],
) -> dict[str, Any]:
    """End a subscription."""
    store, tenant = service_of(request).store, call.principal.tenant
    shared = SharedSet(publisher, name)
    call.object = f"share:{publisher}/{name}"
    await anyio.to_thread.run_sync(lambda: unsubscribe(store, tenant, shared))
    return {**shared.to_json(), "subscribed": False}
