"""``opspoor serve``, ``opspoor token`` and ``opspoor audit``: the HTTP service, its tokens, and
verification of its audit log."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import replace
from typing import Annotated, Any

import typer

from opspoor.cli.app import DbOption, app, err, out
from opspoor.cli.options import listening_socket, store_label
from opspoor.cli.tables import Column, print_table
from opspoor.errors import IntakeError, SettingsError, StoreError
from opspoor.hashsets.model import SCHEMES
from opspoor.intake.sealing import key_from_text
from opspoor.service.settings import ENV_PREFIX, Settings
from opspoor.store import open_store, resolve_url
from opspoor.store.audit import verify_audit
from opspoor.store.models_service import ROLES
from opspoor.store.tokens import create_token, list_tokens, revoke_token

token_app = typer.Typer(help="API tokens of the service.", no_args_is_help=True)
audit_app = typer.Typer(help="The service's audit log.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")


@app.command("serve")
def serve(
    db: DbOption = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (loopback by default).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8080,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 1,
    max_upload_mb: Annotated[
        float | None,
        typer.Option(
            "--max-upload-mb", help="Largest upload to /v1/hash and /v1/match, 413 above. [default: 100]"
        ),
    ] = None,
    decode_seconds: Annotated[
        float | None,
        typer.Option(
            "--decode-seconds", help="Time limit for decoding and hashing one upload. [default: 30]"
        ),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate", help="Requests per second per token, in each worker; 0: no limit. [default: 100]"
        ),
    ] = None,
    burst: Annotated[
        int | None, typer.Option("--burst", help="Requests a token may send at once. [default: 200]")
    ] = None,
    review_scheme: Annotated[
        str | None,
        typer.Option(
            "--review-scheme",
            metavar="[" + "|".join(SCHEMES) + "]",
            help="Category scheme of the review app's digit keys. [default: us-cat]",
        ),
    ] = None,
    review_break_after: Annotated[
        float | None,
        typer.Option(
            "--review-break-after",
            metavar="MINUTES",
            min=0,
            help="The review app suggests a break after this much reveal time a day. [default: 20]",
        ),
    ] = None,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log every request (method, path, status).")
    ] = False,
    log_level: Annotated[
        str, typer.Option("--log-level", help="critical, error, warning, info, debug.")
    ] = "info",
) -> None:
    """Run the HTTP API (FastAPI on uvicorn). See docs/service.md."""
    import uvicorn

    from opspoor.service.transport import HTTP_PROTOCOL

    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(
            f"warning: listening on {host}, beyond this machine; put the service behind a TLS proxy",
            markup=False,
        )
    # every setting can come from OPSPOOR_SERVICE_* (see service.settings); options win
    settings = Settings.from_env()
    _check_settings(settings)
    listening_socket(host, port).close()  # a taken port: one line now, not uvicorn's log and exit 3
    url = resolve_url(db)
    with open_store(url):  # migrate (or refuse) once, before the workers start
        pass
    given: dict[str, Any] = {
        "max_upload_bytes": None if max_upload_mb is None else int(max_upload_mb * 1024 * 1024),
        "decode_seconds": decode_seconds,
        "rate_per_second": rate,
        "rate_burst": burst,
        "review_scheme": review_scheme,
        "review_break_minutes": review_break_after,
    }
    settings = replace(settings, db=url, workers=workers, **{k: v for k, v in given.items() if v is not None})
    _check_settings(settings)
    os.environ.update(settings.to_env())
    # every worker writes its metrics here and /metrics adds them up (see service.metrics)
    metrics_dir = tempfile.mkdtemp(prefix="opspoor-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            "opspoor.review.team:service_app_from_env",  # the service with the review app
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=access_log,
            http=HTTP_PROTOCOL,
            server_header=False,
            proxy_headers=False,
            # a worker importing NumPy/Numba on a busy machine can take longer than uvicorn's 5 s
            timeout_worker_healthcheck=60,
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _check_settings(settings: Settings) -> None:
    """Settings each worker would refuse at startup, refused once here with the variable's name."""
    if settings.review_scheme not in SCHEMES:
        raise SettingsError(
            f"unknown scheme {settings.review_scheme!r}; one of {', '.join(SCHEMES)}",
            where="--review-scheme (" + ENV_PREFIX + "REVIEW_SCHEME)",
        )
    if settings.intake_key:
        try:
            key_from_text(settings.intake_key)
        except IntakeError as exc:
            raise IntakeError(exc.message, where=ENV_PREFIX + "INTAKE_KEY") from None


@token_app.command("create")
def token_create(
    role: Annotated[
        str, typer.Option("--role", metavar="[" + "|".join(ROLES) + "]", help="What the token may do.")
    ],
    tenant: Annotated[
        str, typer.Option("--tenant", metavar="NAME", help="Tenant whose data the token may reach.")
    ],
    label: Annotated[str | None, typer.Option("--label", help="What the token is for.")] = None,
    db: DbOption = None,
) -> None:
    """Create a token. The secret is printed alone on the last line, once: it is stored only hashed."""
    with open_store(db) as store:
        rec, secret = create_token(store, role, tenant, label=label)
        where = store_label(store)
    err.print(
        f"token {rec.id} created in {where}: role {rec.role}, tenant {rec.tenant}. "
        "Keep the secret below: it is not shown again."
    )
    print(secret)


@token_app.command("list")
def token_list(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's tokens.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    db: DbOption = None,
) -> None:
    """List tokens (never their secrets)."""
    with open_store(db, create=False) as store:
        tokens = list_tokens(store, tenant=tenant)
        where = store_label(store)
    if json_out:
        out.print_json(json.dumps([t.to_json() for t in tokens]))
        return
    if not tokens:
        out.print(f"no tokens in {where}", markup=False)
        return
    columns = [Column(c, right=c == "id") for c in ("id", "tenant", "role", "label", "created", "revoked")]
    rows = [
        [
            str(t.id),
            t.tenant,
            t.role,
            t.label or "",
            t.created_at.strftime("%Y-%m-%d %H:%M"),
            t.revoked_at.strftime("%Y-%m-%d %H:%M") if t.revoked_at else "",
        ]
        for t in tokens
    ]
    print_table(columns, rows)
    err.print(f"{len(tokens)} tokens in {where}", markup=False)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="Id of the token (see `opspoor token list`).")],
    db: DbOption = None,
) -> None:
    """Revoke a token. Running services refuse it within their token cache time (5 s)."""
    with open_store(db, create=False) as store:
        rec = revoke_token(store, token_id)
        where = store_label(store)
    out.print(f"token {rec.id} ({rec.role}, tenant {rec.tenant}) revoked in {where}", markup=False)


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[
        str | None,
        typer.Option("--anchor", help="ID:HASH of a row noted earlier, to catch deleted newest rows."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Check the audit log's hash chain. Exits 1 and names the first altered or missing row."""
    expect: tuple[int, str] | None = None
    if anchor is not None:
        row, sep, digest = anchor.partition(":")
        if not sep or not row.isdigit() or len(digest) != 64:
            raise StoreError(f"--anchor must be ID:HASH (a row id and its 64-hex hash), not {anchor!r}")
        expect = (int(row), digest.lower())
    with open_store(db, create=False) as store:
        verdict = verify_audit(store, anchor=expect)
    if not verdict.ok:
        err.print(
            f"audit log BROKEN: {verdict.problem}; the {verdict.rows:,} rows before it are intact",
            markup=False,
        )
        raise typer.Exit(1)
    out.print(
        f"audit log intact: {verdict.rows:,} rows; newest row {verdict.last_id} hash {verdict.last_hash}"
    )
    if verdict.unstopped:
        out.print(
            f"{len(verdict.unstopped)} audit writer(s) have no stop row (still running, or killed: rows "
            f"they queued in their last flush interval may be missing): {', '.join(verdict.unstopped)}",
            markup=False,
        )
