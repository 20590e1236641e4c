"""Team mode: the review app inside ``opspoor serve``, on the shared store, behind the service's tokens.

The same app as on a workstation (``web.create_review_app``), one per published case, under
``/review/c/<case_id>/``; only the gate in front and the case's store differ. The gate:

- finds the token in ``Authorization: Bearer …`` (scripts) or in the ``opspoor_review`` cookie a
  browser gets from the login page (``/review/login``: paste the token once; the cookie is HttpOnly,
  SameSite=Strict, limited to ``/review``, Secure behind HTTPS) and checks it as every service route
  does (unknown or revoked: 401, the browser is sent to the login page);
- admits ``reviewer`` (may categorise, reveal, take claims) and ``analyst`` (read only: any change is
  a 403 problem); other roles are refused;
- applies the token's rate limit and writes the service's audit row of every request (``review.*``
  actions), a change only answered once its row is committed.

Several workers share nothing but the store: claims and decisions live there, the cookie carries the
token itself (no server-side session to lose), and each page polls its group's state.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment
from sqlalchemy.engine import Engine
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.types import Receive, Scope, Send

from opspoor.errors import OpspoorError
from opspoor.review.decisions import ReviewDB
from opspoor.review.intake import IntakeCaseView, intake_case_id, intake_tenant
from opspoor.review.shared import (
    SharedCaseView,
    check_shared_tables,
    list_cases,
    published_at,
    rematch_published,
)
from opspoor.review.web import ReviewConfig, create_review_app, review_env
from opspoor.service.auth import ANALYST, CURATOR, REVIEWER, Call, admit, authenticate, record
from opspoor.service.problems import Problem, problem_response
from opspoor.service.settings import Settings
from opspoor.store.intake_review import finished_stamp

PREFIX = "/review"
COOKIE = "opspoor_review"
READERS = (REVIEWER, ANALYST, CURATOR)
#: what only a curator may do (``/curate/…``): the case's decisions into hash sets
CURATOR_ACTIONS = frozenset({"from-case", "rematch"})
#: a published case is looked at again this often, so a re-publish reaches every worker
RECHECK_SECONDS = 5.0


class TokenGate(BaseHTTPMiddleware):
    """Service tokens in front of the review app (see the module's text)."""

    def __init__(self, app: Any, parent: FastAPI) -> None:
        super().__init__(app)
        self.parent = parent

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        route = request.url.path[len(request.scope.get("root_path", "")) :]
        if route in ("/login", "/logout"):
            return await call_next(request)
        service = self.parent.state.service
        headers = request.headers.getlist("authorization")
        cookie = request.cookies.get(COOKIE)
        if not headers and cookie:
            headers = [f"Bearer {cookie}"]
        changes = request.method not in ("GET", "HEAD")
        try:
            principal = await authenticate(service.tokens, headers)
        except Problem as p:
            if not changes and not request.headers.getlist("authorization") and "/api/" not in route:
                return RedirectResponse(f"{PREFIX}/login", status_code=303)
            return problem_response(request, p)
        action = "review." + _action(route, request.method)
        call = Call(principal, action, f"review:{route}"[:500], changes)
        try:
            admit(call, READERS, service.rate)
            needs = CURATOR if action.removeprefix("review.") in CURATOR_ACTIONS else REVIEWER
            if changes and principal.role != needs:
                raise Problem(
                    403,
                    f"{action} needs a token of role {needs}; this token's role is {principal.role}"
                    + (" (read only)" if principal.role == ANALYST else ""),
                    slug="forbidden",
                )
            owner = intake_tenant(_case_of(route) or "")
            if owner is not None and owner != principal.tenant:  # another tenant's reports: not there
                raise Problem(404, f"no published case {_case_of(route)!r}", slug="not-found")
        except Problem as p:
            await record(service.audit, call, p.status)
            return problem_response(request, p)
        request.state.reviewer = f"{principal.tenant}/token-{principal.token_id}"
        request.state.tenant = principal.tenant
        request.state.may_decide = principal.role == REVIEWER
        request.state.may_curate = principal.role == CURATOR
        response = await call_next(request)
        await record(service.audit, call, response.status_code)
        return response


def _case_of(route: str) -> str | None:
    parts = route.split("/")
    return unquote(parts[2]) if len(parts) >= 3 and parts[1] == "c" else None


def _action(route: str, method: str) -> str:
    parts = [p for p in route.split("/") if p]
    if len(parts) >= 2 and parts[0] == "c":
        parts = parts[2:]  # the case id is the object, not the action
    if not parts:
        return "overview" if method == "GET" else "post"
    if parts[0] == "api" and len(parts) >= 2:
        return parts[1] if parts[1] != "reveal" else "reveal-end"
    if parts[0] == "item" and len(parts) >= 4:
        return parts[3]
    if parts[0] == "curate" and len(parts) >= 2:
        return parts[1]
    return parts[0]


class CaseApps:
    """The review app of each published case (made when first asked, remade after a re-publish)."""

    def __init__(self, parent: FastAPI, scheme: str, break_after: float) -> None:
        self.parent = parent
        self._checked = False
        self.scheme = scheme
        self.break_after = break_after
        self._apps: dict[str, tuple[object, float, FastAPI]] = {}  # case -> (stamp, checked, app)

    @property
    def engine(self) -> Engine:
        """The service's own store (its engine, opened by the worker's lifespan)."""
        engine: Engine = self.parent.state.service.store.engine
        if not self._checked:
            check_shared_tables(engine)
            self._checked = True
        return engine

    def app_for(self, case_id: str) -> FastAPI:
        now = time.monotonic()
        held = self._apps.get(case_id)
        if held is not None and now - held[1] < RECHECK_SECONDS:
            return held[2]
        tenant = intake_tenant(case_id)
        if tenant is not None:
            return self._intake_app(case_id, tenant, held, now)
        stamp = published_at(self.engine, case_id)
        if stamp is None:
            raise Problem(404, f"no published case {case_id!r}", slug="not-found")
        if held is not None and held[0] == stamp:
            self._apps[case_id] = (stamp, now, held[2])
            return held[2]
        view = SharedCaseView(self.engine, case_id)
        config = self._team_config(
            case_id,
            rematch=lambda: rematch_published(self.engine, case_id, self.parent.state.service.store),
            reopen=lambda: SharedCaseView(self.engine, case_id),
        )
        app = create_review_app(config, view, ReviewDB(self.engine, case_id, create=False))
        self._apps[case_id] = (view.published_at, now, app)
        return app

    def _team_config(self, case_id: str, **extra: Any) -> ReviewConfig:
        """A case's review app in team mode: no secret of its own, the service's store and tokens."""
        service = self.parent.state.service
        return ReviewConfig(
            case_dir=Path(case_id),
            reviewer="",
            scheme=self.scheme,
            break_after=self.break_after,
            secret=None,
            team=True,
            store=lambda: nullcontext(service.store),  # the service's own
            **extra,
        )

    def _intake_app(
        self, case_id: str, tenant: str, held: tuple[object, float, FastAPI] | None, now: float
    ) -> FastAPI:
        """The tenant's intake queue (``review.intake``), read again once a report was finished."""
        service = self.parent.state.service
        stamp = finished_stamp(service.store, tenant)
        if held is not None and held[0] == stamp:
            self._apps[case_id] = (stamp, now, held[2])
            return held[2]
        view = IntakeCaseView(service.store, tenant, service.intake_key, service.clock())
        # the decisions go into the tenant's own sets, matched at each finish
        config = self._team_config(case_id, tenant=tenant)
        app = create_review_app(config, view, ReviewDB(self.engine, case_id, create=False))
        self._apps[case_id] = (view.stamp, now, app)
        return app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        case_id = scope["path_params"]["case_id"]
        try:
            # off the event loop: reading a case (an intake queue: every finished report's files)
            # must not hold up the worker's other requests
            app = await anyio.to_thread.run_sync(self.app_for, case_id)
        except Problem as p:
            await problem_response(None, p)(scope, receive, send)
            return
        except OpspoorError as exc:  # the store lacks the review tables (no `opspoor db upgrade`)
            await problem_response(None, Problem(503, str(exc), slug="review-unavailable"))(
                scope, receive, send
            )
            return
        await app(scope, receive, send)


def create_team_review(parent: FastAPI, *, scheme: str = "us-cat", break_after: float = 1200) -> FastAPI:
    """The review front (login, case list, one app per case) for ``parent``, the service app; it
    uses the service's store, so the review tables are checked at the first request."""
    env: Environment = review_env()
    front = FastAPI(title="opspoor review", docs_url=None, redoc_url=None, openapi_url=None)
    apps = CaseApps(parent, scheme, break_after)

    @front.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, failed: int = 0) -> HTMLResponse:
        html = env.get_template("login.html").render(base=request.scope.get("root_path", ""), failed=failed)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @front.post("/login")
    async def login(request: Request) -> Response:
        raw = (await request.body())[:4096].decode("utf-8", "replace")
        secret = (parse_qs(raw).get("token") or [""])[0].strip()
        service = parent.state.service
        try:
            principal = await authenticate(service.tokens, [f"Bearer {secret}"])
        except Problem:
            return RedirectResponse(f"{PREFIX}/login?failed=1", status_code=303)
        if principal.role not in READERS:
            return RedirectResponse(f"{PREFIX}/login?failed=2", status_code=303)
        resp = RedirectResponse(f"{PREFIX}/", status_code=303)
        resp.set_cookie(
            COOKIE,
            secret,
            httponly=True,
            samesite="strict",
            path=PREFIX,
            secure=request.url.scheme == "https",
        )
        return resp

    @front.post("/logout")
    def logout() -> Response:
        resp = RedirectResponse(f"{PREFIX}/login", status_code=303)
        resp.delete_cookie(COOKIE, path=PREFIX)
        return resp

    @front.get("/", response_class=HTMLResponse)
    def case_list(request: Request) -> HTMLResponse:
        html = env.get_template("cases.html").render(
            base=request.scope.get("root_path", ""),
            cases=[
                {"case_id": intake_case_id(request.state.tenant), "name": "reports to the intake"},
                *list_cases(apps.engine),
            ],
            reviewer=request.state.reviewer,
            may_decide=request.state.may_decide,
        )
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @front.exception_handler(OpspoorError)
    async def unavailable(request: Request, exc: OpspoorError) -> Response:
        return problem_response(request, Problem(503, str(exc), slug="review-unavailable"))

    front.mount("/c/{case_id}", apps)
    front.add_middleware(TokenGate, parent=parent)
    return front


def mount_review(app: FastAPI, settings: Settings | None = None) -> FastAPI:
    """Put the review app into the service ``app`` under ``/review`` (on the service's store), with
    the category scheme and the break time of ``settings`` (``OPSPOOR_SERVICE_REVIEW_*``)."""
    s = settings or Settings()
    app.mount(
        PREFIX, create_team_review(app, scheme=s.review_scheme, break_after=s.review_break_minutes * 60)
    )
    return app


def service_app_from_env() -> FastAPI:
    """The factory ``opspoor serve`` gives uvicorn: the service, with the review app mounted."""
    from opspoor.service.app import create_app

    settings = Settings.from_env()
    return mount_review(create_app(settings, freeze_heap=True), settings)
