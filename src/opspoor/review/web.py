"""The review app (FastAPI, Jinja2 templates, one plain script; every asset inside the package).

``create_review_app`` serves one case. On a workstation (``opspoor review CASE_DIR``) it listens on
127.0.0.1 only and admits one browser: the URL printed at start carries a one-time secret, which
is exchanged for a session cookie (HttpOnly, SameSite=Strict) and then forgotten; any request
without that cookie is refused, as is one naming another host (DNS rebinding).

Pages never load an unveiled picture by themselves: ``/item/…/veiled`` is grayscale and blurred
before it is encoded; ``/item/…/reveal`` (POST, so nothing prefetches it) is asked for by the script
only while the reviewer holds a key or the mouse button, and every reveal is recorded.

A group comes on screen without a new page: ``/next``, ``/prev`` and ``/group/…`` with ``part=1``
answer the part of the group's page that changes (``group_part.html``, veiled pictures inside), which
the script fetches ahead for the neighbouring groups and swaps in on ``n``, ``p`` or ``Shift``+digit.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from opspoor.errors import OpspoorError
from opspoor.hashsets.model import CATEGORY_NAMES, Category, category_name
from opspoor.media.sniff import VIDEO_TYPES, kind_of
from opspoor.review.caseview import CaseView, ReviewGroup
from opspoor.review.decisions import ReviewDB, key_codes
from opspoor.review.tohashset import entries_from_case, write_hashsets
from opspoor.store import Store, open_store
from opspoor.store.hashsets.schema import DEFAULT_TENANT

COOKIE = "opspoor_review"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})
#: after this much reveal time in a day the page suggests a break (seconds)
DEFAULT_BREAK_AFTER = 20 * 60


@dataclass
class ReviewConfig:
    case_dir: Path
    reviewer: str
    scheme: str = "us-cat"
    break_after: float = DEFAULT_BREAK_AFTER
    #: the one-time secret of the printed URL; None once exchanged
    secret: str | None = field(default_factory=lambda: secrets.token_urlsafe(24))
    sessions: set[str] = field(default_factory=set)
    #: team mode (``review.team``): who the request's token names, and whether it may decide, are
    #: set on ``request.state`` by the gate; the local app has one reviewer, who may
    team: bool = False
    #: where a curator's ``from-case`` writes the hash sets: the store at ``db_url`` (``opspoor
    #: review --db``; None: the default store), or in team mode the service's own (``store``)
    db_url: str | None = None
    store: Callable[[], AbstractContextManager[Store]] | None = None
    #: matches the case again against its hash sets as they are now (``opspoor scan --rematch``),
    #: given by the command line on a workstation (it writes the case's outputs, a layer above);
    #: in team mode, the published case matched again in the shared store (``shared.rematch_published``)
    rematch: Callable[[], dict[str, Any]] | None = None
    #: the case read again after a re-match (default: the case folder)
    reopen: Callable[[], CaseView] | None = None
    #: ``opspoor review --allow-known``: the known-items page offers one reveal per item, audited;
    #: without it (and always in team mode) known items never reach the browser
    allow_known: bool = False
    #: the tenant whose hash sets a curator's ``from-case`` adds to (an intake case: its tenant's)
    tenant: str = DEFAULT_TENANT


class OneTimeSecret(BaseHTTPMiddleware):
    """Admit a browser that brings the printed URL's secret once, and then only by its cookie."""

    def __init__(self, app: Any, config: ReviewConfig) -> None:
        super().__init__(app)
        self.config = config

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        cfg = self.config
        host = (request.headers.get("host") or "").rsplit(":", 1)[0]
        if host not in LOCAL_HOSTS:
            return _refused("this review is served to this machine only (host not allowed)")
        if request.cookies.get(COOKIE) in cfg.sessions:
            return await call_next(request)
        given = request.query_params.get("token")
        if given and cfg.secret and hmac.compare_digest(given, cfg.secret):
            cfg.secret = None  # one time: the link cannot admit a second browser
            session = secrets.token_urlsafe(32)
            cfg.sessions.add(session)
            resp = RedirectResponse(request.url.path, status_code=303)
            resp.set_cookie(COOKIE, session, httponly=True, samesite="strict", path="/")
            return resp
        return _refused("open the link printed by `opspoor review` (its secret works once)")


def _refused(why: str) -> Response:
    body = f"<!doctype html><title>refused</title><p>Refused: {why}.</p>"
    return HTMLResponse(body, status_code=403, headers={"Cache-Control": "no-store"})


def review_env() -> Environment:
    env = Environment(loader=PackageLoader("opspoor.review", "templates"), autoescape=select_autoescape())
    env.globals["category_name"] = category_name
    env.globals["video_types"] = VIDEO_TYPES
    return env


def reviewer_of(request: Request, config: ReviewConfig) -> str:
    return getattr(request.state, "reviewer", None) or config.reviewer


def may_decide(request: Request) -> bool:
    return bool(getattr(request.state, "may_decide", True))


def may_curate(request: Request) -> bool:
    """A curator's actions (``from-case``, re-match): the token's role in team mode (the gate
    sets it); on a workstation the one investigator may."""
    return bool(getattr(request.state, "may_curate", True))


def create_review_app(
    config: ReviewConfig, case_view: CaseView | None = None, review: ReviewDB | None = None
) -> FastAPI:
    """The review app of one case: on a workstation (the case folder, ``review.sqlite``, the
    one-time secret) or, given ``view`` and ``review`` from the shared store, behind the service's
    tokens (``review.team`` puts its gate in front and mounts it)."""
    # what the app opens, it closes when it stops (given ones belong to the caller: review.team)
    own_view, own_review = case_view is None, review is None
    view: CaseView = case_view if case_view is not None else CaseView(config.case_dir)
    review = review if review is not None else ReviewDB.for_case(config.case_dir)
    keys = key_codes(config.scheme)
    env = review_env()
    script = (files("opspoor.review") / "templates" / "review.js").read_text(encoding="utf-8")

    @asynccontextmanager
    async def closing(_app: FastAPI) -> AsyncIterator[None]:
        # the last connection to close removes the databases' -wal and -shm files
        try:
            yield
        finally:
            if own_view:
                view.close()
            if own_review:
                review.close()

    app = FastAPI(title="opspoor review", docs_url=None, redoc_url=None, openapi_url=None, lifespan=closing)
    if not config.team:
        app.add_middleware(OneTimeSecret, config=config)
    app.state.view, app.state.review, app.state.config = view, review, config

    def page(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        base = request.scope.get("root_path", "")
        who = reviewer_of(request, config)
        html = env.get_template(name).render(
            case=view,
            config=config,
            base=base,
            reviewer=who,
            may_decide=may_decide(request),
            may_curate=may_curate(request),
            **ctx,
        )
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    def problem(status: int, detail: str) -> JSONResponse:
        """An RFC 9457 problem."""
        body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
        return JSONResponse(body, status_code=status, media_type="application/problem+json")

    def exposure_today(who: str) -> dict[str, Any]:
        midnight = time.mktime(time.localtime()[:3] + (0, 0, 0, 0, 0, -1))
        exp = review.exposure(since=midnight)
        mine = exp["by_reviewer"].get(who, {"reveals": 0, "seconds": 0.0})
        # (someone who revealed nothing today needs no break, whatever the time set)
        return {**mine, "break": mine["reveals"] > 0 and mine["seconds"] >= config.break_after}

    def team_exposure(who: str) -> dict[str, Any]:
        """The case's exposure for everyone who reviews it (views needed ÷ media files), today's for
        the team, and the asker's own today; no other reviewer's own figures."""
        counts = view.counts()
        media = counts.get("media", 0)
        every = review.exposure()
        midnight = time.mktime(time.localtime()[:3] + (0, 0, 0, 0, 0, -1))
        today = review.exposure(since=midnight)
        return {
            "media_files": media,
            "new_groups": counts["groups"],
            "files_revealed": every["files"],
            "reveals": every["reveals"],
            "views_needed_per_media_file": round(every["files"] / media, 4) if media else 0.0,
            "new_groups_per_media_file": round(counts["groups"] / media, 4) if media else 0.0,
            "reviewers": len(every["by_reviewer"]),
            "seconds": round(sum(r["seconds"] for r in every["by_reviewer"].values()), 3),
            "today": {
                "reveals": today["reveals"],
                "files_revealed": today["files"],
                "reviewers": len(today["by_reviewer"]),
                "seconds": round(sum(r["seconds"] for r in today["by_reviewer"].values()), 3),
            },
            "mine_today": exposure_today(who),
            "break_after_seconds": config.break_after,
        }

    def group_state(group_id: str, who: str) -> dict[str, Any]:
        g = view.group(group_id)
        states = review.file_states({g.id: g.paths})
        items = []
        for p in g.paths:
            st = states[p]
            cat = st.category
            items.append(
                {
                    "category": f"{cat.scheme}:{cat.code}" if cat else None,
                    "name": category_name(cat.scheme, cat.code) if cat else "not categorised",
                    "by": st.by_reviewer,
                    "tags": sorted(st.tags),
                }
            )
        return {"group": g.id, "items": items, "exposure": exposure_today(who)}

    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request) -> HTMLResponse:
        counts = view.counts()
        exp = review.exposure()
        decided = review.file_states(view.members())
        by_cat: dict[str, int] = {}
        for st in decided.values():
            name = (
                category_name(st.category.scheme, st.category.code) if st.category else "not categorised yet"
            )
            by_cat[name] = by_cat.get(name, 0) + 1
        media = counts.get("media", 0)
        return page(
            request,
            "overview.html",
            counts=counts,
            decided=sorted(by_cat.items()),
            known=view.known_counts(),
            timeline=view.timeline(),
            exposure=exp,
            today=exposure_today(reviewer_of(request, config)),
            views_ratio=(exp["files"] / media) if media else 0.0,
            groups_ratio=(counts["groups"] / media) if media else 0.0,
        )

    @app.get("/queue", response_class=HTMLResponse)
    def queue(request: Request, offset: int = 0, limit: int = 200) -> HTMLResponse:
        offset, limit = max(0, offset), min(max(1, limit), 1000)
        shown = view.groups[offset : offset + limit]
        states = review.file_states({g.id: g.paths for g in shown})
        done = {g.id: sum(1 for p in g.paths if states[p].category is not None) for g in shown}
        return page(
            request, "queue.html", groups=shown, done=done, offset=offset, limit=limit, total=len(view.groups)
        )

    def group_ctx(request: Request, g: ReviewGroup) -> dict[str, Any]:
        members = [view.records.get(p, {}) for p in g.paths]
        # the scan's veiled thumbnails go inside the page (one request puts the group on screen);
        # a video's frame grid is made on demand, so it stays a URL
        veiled_src = []
        for i, (p, rec) in enumerate(zip(g.paths, members, strict=True)):
            thumb = view.thumb(p) if kind_of(rec.get("type")) != "video" else None
            if thumb is None:
                veiled_src.append(f"{request.scope.get('root_path', '')}/item/{g.id}/{i}/veiled")
            else:
                veiled_src.append("data:image/jpeg;base64," + base64.b64encode(thumb).decode("ascii"))
        return {
            "group": g,
            "members": members,
            "veiled_src": veiled_src,
            "position": view.position[g.id] + 1,
            "total": len(view.groups),
        }

    def group_part(request: Request, target: str | None, have: str = "") -> Response:
        """The group's part of its page (``group_part.html``), which the script swaps in without a
        new page; its id in ``X-Group``. Nothing left: 204. The group the script already holds
        (``have``, fetched ahead): its id and no body."""
        if target is None:
            return Response(status_code=204, headers={"Cache-Control": "no-store"})
        headers = {"Cache-Control": "no-store", "X-Group": target}
        if target == have:
            return Response(status_code=200, headers=headers)
        ctx = group_ctx(request, view.group(target))
        html = env.get_template("group_part.html").render(base=request.scope.get("root_path", ""), **ctx)
        return HTMLResponse(html, headers=headers)

    @app.get("/group/{group_id}", response_class=HTMLResponse)
    def group_page(request: Request, group_id: str, part: int = 0) -> Response:
        try:
            g = view.group(group_id)
        except OpspoorError as exc:
            return HTMLResponse(f"<p>{exc}</p>", status_code=404)
        if part:
            return group_part(request, g.id)
        return page(
            request,
            "group.html",
            **group_ctx(request, g),
            keys=keys,
            names=CATEGORY_NAMES.get(config.scheme, {}),
            script=script,
        )

    def _open(g: ReviewGroup) -> bool:
        states = review.file_states({g.id: g.paths})
        return any(states[p].category is None for p in g.paths)

    def _target(request: Request, group_id: str, step: int, undecided: bool) -> str | None:
        """The group ``step`` from ``group_id``: the next in order, or the next undecided one."""
        k = view.position.get(group_id, -1 if step > 0 else len(view.groups)) + step
        if undecided and may_decide(
            request
        ):  # the next group nobody has categorised and no other reviewer holds (a claim)
            later = view.groups[k:] if step > 0 else view.groups[k::-1] if k >= 0 else []
            return review.claim_next(reviewer_of(request, config), (g.id for g in later if _open(g)))
        if undecided:  # a reader (analyst) takes no claim: the next group not categorised yet
            later = view.groups[k:] if k >= 0 else []
            return next((g.id for g in later if _open(g)), None)
        return view.groups[k].id if 0 <= k < len(view.groups) else None

    def _step(request: Request, target: str | None) -> RedirectResponse:
        base = request.scope.get("root_path", "")
        if target is not None:
            return RedirectResponse(f"{base}/group/{target}", status_code=303)
        return RedirectResponse(f"{base}/queue?done=1", status_code=303)

    @app.get("/next")
    def next_group(
        request: Request, after: str = "", undecided: int = 0, part: int = 0, have: str = ""
    ) -> Response:
        """The next group: a redirect to its page, or with ``part=1`` its part (see ``group_part``)."""
        target = _target(request, after, +1, bool(undecided))
        return group_part(request, target, have) if part else _step(request, target)

    @app.get("/prev")
    def prev_group(request: Request, before: str = "", part: int = 0, have: str = "") -> Response:
        target = _target(request, before, -1, False)
        return group_part(request, target, have) if part else _step(request, target)

    def _item(group_id: str, index: int) -> tuple[str, dict[str, Any]]:
        g = view.group(group_id)
        if not 0 <= index < len(g.paths):
            raise OpspoorError(f"group {group_id} has no item {index}")
        return g.paths[index], view.records.get(g.paths[index], {})

    @app.get("/item/{group_id}/{index}/veiled")
    def veiled(group_id: str, index: int) -> Response:
        try:
            path, rec = _item(group_id, index)
            data = view.veiled(path, kind_of(rec.get("type")))
        except OpspoorError as exc:
            return problem(404, str(exc))
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    @app.post("/item/{group_id}/{index}/reveal")
    def reveal(request: Request, group_id: str, index: int, full: int = 0) -> Response:
        try:
            path, rec = _item(group_id, index)
            data = view.revealed(path, kind_of(rec.get("type")), full_size=bool(full))
        except OpspoorError as exc:
            return problem(404, str(exc))
        rid = review.reveal_started(reviewer_of(request, config), path, full_size=bool(full))
        return Response(
            data, media_type="image/jpeg", headers={"Cache-Control": "no-store", "X-Reveal-Id": str(rid)}
        )

    @app.post("/api/reveal/{reveal_id}/end")
    async def reveal_end(reveal_id: int, request: Request) -> JSONResponse:
        body = await _json(request) or {}  # (a beacon sent while the page closes may carry none)
        seconds = body.get("seconds")
        who = reviewer_of(request, config)
        review.reveal_ended(who, reveal_id, float(seconds) if isinstance(seconds, int | float) else None)
        return JSONResponse({"exposure": exposure_today(who)})

    @app.get("/api/group/{group_id}/state")
    def state(request: Request, group_id: str) -> JSONResponse:
        try:
            return JSONResponse(group_state(group_id, reviewer_of(request, config)))
        except OpspoorError as exc:
            return problem(404, str(exc))

    @app.post("/api/decide")
    async def decide(request: Request) -> JSONResponse:
        body = await _json(request)
        if body is None:
            return problem(400, 'the request body is not a JSON object ({"group": "G0001", "key": "1"})')
        try:
            group_id = str(body.get("group"))
            index = body.get("item")
            path = _item(group_id, int(index))[0] if index is not None else None
            view.group(group_id)
            category = None
            if body.get("key") is not None:
                code = keys.get(str(body["key"]))
                if code is None:
                    return problem(400, f"key {body['key']!r} means no category of {config.scheme}")
                category = Category(config.scheme, code)
            tags = [str(t)[:100] for t in body.get("tags") or []]
            series = str(body["series"])[:200] if body.get("series") else None
            note = str(body["note"])[:2000] if body.get("note") else None
            if category is None and not (tags or series or note):
                return problem(400, "a decision needs a category key, a tag, a series name or a note")
        except (OpspoorError, ValueError, TypeError) as exc:
            return problem(400, str(exc))
        who = reviewer_of(request, config)
        d = review.decide(
            who,
            group_id,
            path,
            category,
            tags=tags,
            note=note,
            series=series,
            members=view.group(group_id).paths,
        )
        return JSONResponse({"decision": d.as_json(), **group_state(group_id, who)})

    @app.post("/api/undo")
    def undo(request: Request) -> JSONResponse:
        who = reviewer_of(request, config)
        d = review.undo_last(who)
        if d is None:
            return JSONResponse({"undone": None})
        return JSONResponse({"undone": d.as_json(), **group_state(d.group_id, who)})

    # --- known items: counted only, unless the investigator started with --allow-known ---------
    def known_refused() -> JSONResponse | None:
        if config.team:
            return problem(403, "known files' pixels never enter the shared store: none can be seen here")
        if not config.allow_known:
            return problem(403, "known items are not shown (start `opspoor review CASE --allow-known`)")
        return None

    @app.get("/known", response_class=HTMLResponse)
    def known_page(request: Request) -> Response:
        no = known_refused()
        return no if no is not None else page(request, "known.html", items=view.known_items())

    @app.post("/known/{index}/reveal")
    def known_reveal(request: Request, index: int, full: int = 0) -> Response:
        """One known item on purpose, at a new item's limits; audited with the entry it matched."""
        no = known_refused()
        if no is not None:
            return no
        items = view.known_items()
        if not 0 <= index < len(items):
            return problem(404, f"there is no known item {index}")
        it = items[index]
        try:
            data = view.revealed(it.path, it.kind, full_size=bool(full))
        except OpspoorError as exc:
            return problem(404, str(exc))
        who = reviewer_of(request, config)
        rid = review.reveal_started(who, it.path, full_size=bool(full), known=it.match())
        return Response(
            data, media_type="image/jpeg", headers={"Cache-Control": "no-store", "X-Reveal-Id": str(rid)}
        )

    @app.get("/exposure", response_class=HTMLResponse)
    def exposure_page(request: Request) -> HTMLResponse:
        return page(request, "exposure.html", exp=team_exposure(reviewer_of(request, config)))

    @app.get("/api/exposure")
    def exposure_json(request: Request) -> JSONResponse:
        return JSONResponse(
            team_exposure(reviewer_of(request, config)), headers={"Cache-Control": "no-store"}
        )

    # --- a curator's actions: the case's decisions into hash sets, the case matched again -------
    def curated(request: Request, status: int, result: dict[str, Any], wants_json: bool) -> Response:
        if wants_json:
            body = result if status < 400 else {"title": "refused", "status": status, **result}
            return JSONResponse(
                body, status_code=status, media_type=None if status < 400 else "application/problem+json"
            )
        return page(request, "curate.html", status=status, result=result)

    def refused_curate(request: Request) -> dict[str, Any] | None:
        if may_curate(request):
            return None
        return {"detail": "this needs a token of role curator"}

    @app.get("/curate", response_class=HTMLResponse)
    def curate_page(request: Request) -> Response:
        return page(request, "curate.html", result=None)

    @app.post("/curate/from-case")
    async def curate_from_case(request: Request) -> Response:
        body, wants_json = await _form_or_json(request)
        no = refused_curate(request)
        if no is not None:
            return curated(request, 403, no, wants_json)
        name = str(body.get("name") or "").strip()
        ignorable = str(body.get("ignorable") or "").strip() or None
        if not name or len(name) > 200 or (ignorable is not None and len(ignorable) > 200):
            return curated(
                request, 400, {"detail": "give the hash set's name (1-200 characters)"}, wants_json
            )
        who = reviewer_of(request, config)
        augment = str(body.get("augment") or "").lower() in ("1", "true", "on", "yes")
        try:
            found = entries_from_case(view, review, augment=augment)
        except OpspoorError as exc:  # the evidence not here (a published case) or not readable
            return curated(request, 409, {"detail": str(exc)}, wants_json)
        if not (found.known or found.ignorable):
            detail = f"nothing categorised yet ({found.undecided} new files undecided)"
            return curated(request, 409, {"detail": detail}, wants_json)
        opener = config.store or (lambda: open_store(config.db_url))
        try:
            with opener() as store:
                results = write_hashsets(store, name, found, ignorable_name=ignorable, tenant=config.tenant)
        except OpspoorError as exc:  # a set of another kind under that name, a store refusing
            return curated(request, 409, {"detail": str(exc)}, wants_json)
        sets = {n: {"added": r.added, "already_there": r.duplicates} for n, r in results.items()}
        done = {"sets": sets, "undecided": found.undecided, "augmented": found.augmented}
        review.note(who, "from-case", name, done)
        return curated(request, 200, {"action": "from-case", **done}, wants_json)

    @app.post("/curate/rematch")
    async def curate_rematch(request: Request) -> Response:
        nonlocal view
        _, wants_json = await _form_or_json(request)
        no = refused_curate(request)
        if no is not None:
            return curated(request, 403, no, wants_json)
        if config.rematch is None:
            return curated(request, 409, {"detail": "this case cannot be matched again here"}, wants_json)
        try:
            changes = config.rematch()
        except OpspoorError as exc:
            return curated(request, 409, {"detail": str(exc)}, wants_json)
        # its groups as they are now (the old view is left to requests still using it)
        view = app.state.view = config.reopen() if config.reopen else CaseView(config.case_dir)
        summary = {k: v for k, v in changes.items() if not isinstance(v, dict) or "count" not in v}
        moved = {k: v["count"] for k, v in changes.items() if isinstance(v, dict) and "count" in v}
        review.note(
            reviewer_of(request, config), "rematch", "case", {**moved, "hashsets": changes["hashsets"]}
        )
        return curated(
            request, 200, {"action": "rematch", "changes": changes, "summary": summary}, wants_json
        )

    return app


async def _form_or_json(request: Request) -> tuple[dict[str, Any], bool]:
    """A form's fields (the page's buttons) or a JSON body (a script), and whether it was JSON."""
    if (request.headers.get("content-type") or "").startswith("application/json"):
        return await _json(request) or {}, True
    raw = (await request.body())[:8192].decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(raw).items()}, False


async def _json(request: Request) -> dict[str, Any] | None:
    """The request's JSON object, or None when the body is not one."""
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
