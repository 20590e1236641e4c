"""The hotline intake in the demo: three generated reports in, one bundle, one referral package.

Runs the real commands against the demo's embedded SQLite store: ``opspoor token create`` for a
platform (reporter) and the hotline, ``opspoor serve`` (one worker, on a free loopback port), the
CyberTipline-shaped calls over HTTP (submit, upload, finish), then the hotline's view (the bundle,
the Dutch queue) and ``opspoor referral export --country NL``. Every picture is generated (benign
gradients and shapes); the addresses are public registry addresses (RIPE NCC's, placed in NL).
"""

from __future__ import annotations

import io
import json
import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from opspoor.demo.images import generate_image

TENANT = "hotline"
NL_ADDRESS = "193.0.6.139"  # RIPE NCC, Amsterdam: iptocc places it in NL


def _picture(seed: int, quality: int) -> bytes:
    out = io.BytesIO()
    generate_image(seed, 480, 360, style="mixed").save(out, "JPEG", quality=quality)
    return out.getvalue()


def _opspoor(args: list[str], env: dict[str, str] | None = None) -> str:
    print("$ opspoor " + " ".join(shlex.quote(a) for a in args), flush=True)
    proc = subprocess.run(
        [sys.executable, "-m", "opspoor", *args], capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode != 0:
        sys.exit(f"demo step failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def _token(db: str, role: str) -> str:
    return (
        _opspoor(["token", "create", "--role", role, "--tenant", TENANT, "--db", db]).strip().splitlines()[-1]
    )


class _Api:
    def __init__(self, base: str) -> None:
        self.base = base

    def call(self, token: str, path: str, body: bytes | None = None, ctype: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        if ctype:
            headers["Content-Type"] = ctype
        req = urllib.request.Request(
            self.base + path, data=body, headers=headers, method="POST" if body is not None else "GET"
        )
        try:
            with urllib.request.urlopen(req, timeout=300) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:
            sys.exit(f"demo step failed: {path}: {exc.code} {exc.read()[:300]!r}")

    def report(self, token: str, person: dict[str, Any], files: list[bytes]) -> int:
        doc = {
            "report": {
                "incidentSummary": {
                    "incidentType": "Child Pornography (possession, manufacture, and distribution)",
                    "incidentDateTime": "2026-02-28T10:00:00Z",
                },
                "personOrUserReported": [person],
            }
        }
        rid = int(
            self.call(token, "/v1/intake/submit", json.dumps(doc).encode(), "application/json")["reportId"]
        )
        for i, data in enumerate(files):
            boundary = uuid.uuid4().hex
            body = (
                (
                    f"--{boundary}\r\nContent-Disposition: form-data; "
                    f'name="file"; filename="photo{i}.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
                ).encode()
                + data
                + f"\r\n--{boundary}--\r\n".encode()
            )
            self.call(
                token, f"/v1/intake/reports/{rid}/upload", body, f"multipart/form-data; boundary={boundary}"
            )
        self.call(token, f"/v1/intake/reports/{rid}/finish", b"")
        return rid


def _wait_ready(base: str, token: str, server: subprocess.Popen[bytes]) -> None:
    """Until the server answers ready: its match index (the demo's hash sets) is loaded."""
    deadline = time.monotonic() + 300
    req = urllib.request.Request(base + "/v1/ready", headers={"Authorization": f"Bearer {token}"})
    while True:
        try:
            with urllib.request.urlopen(req, timeout=10):
                return
        except OSError:  # not listening yet, or 503 while the index loads
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit("demo step failed: the server did not become ready")
            time.sleep(0.3)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_intake_demo(root: Path, db: str) -> Path:
    """Reports in, bundled and referred; answers the referral package's folder."""
    print("\n-- hotline intake: reports in, bundled, referred (docs/intake.md) --", flush=True)
    reporter, hotline = _token(db, "reporter"), _token(db, "hotline")
    env = {**os.environ, "OPSPOOR_SERVICE_INTAKE_KEY": os.urandom(32).hex()}
    port = _free_port()
    # a generous decode limit: a busy machine must not turn the demo's uploads away
    cmd = ["serve", "--db", db, "--port", str(port), "--decode-seconds", "300", "--log-level", "warning"]
    print("$ opspoor " + " ".join(cmd) + "   (in the background)", flush=True)
    server = subprocess.Popen([sys.executable, "-m", "opspoor", *cmd], env=env)
    api = _Api(f"http://127.0.0.1:{port}")
    try:
        _wait_ready(api.base, hotline, server)
        photo, other = _picture(2201, 90), _picture(2202, 90)
        a = api.report(
            reporter, {"screenName": "user1", "ipCaptureEvent": [{"ipAddress": NL_ADDRESS}]}, [photo]
        )
        # the same photo re-encoded, reported by the platform for another user it places in Germany
        b = api.report(
            reporter,
            {"screenName": "user2", "estimatedLocation": {"countryCode": "DE"}},
            [_picture(2201, 60)],
        )
        c = api.report(
            reporter, {"screenName": "user3", "ipCaptureEvent": [{"ipAddress": NL_ADDRESS}]}, [other]
        )
        print(
            f"three reports finished: {a}, {b}, {c} "
            f"(report {b} holds a re-encoded copy of report {a}'s photo)"
        )
        shown = api.call(hotline, f"/v1/intake/reports/{b}")
        bundle = api.call(hotline, f"/v1/intake/bundles/{shown['bundleId']}")
        print(
            f"bundle {bundle['bundleId']}: reports {bundle['reportIds']}, "
            f"counted as 1 report of {bundle['incidents']} incidents"
        )
        for rid in (a, b, c):
            ref = api.call(hotline, f"/v1/intake/reports/{rid}")["referral"]
            why = "; ".join(f"{r['country']} by {r['clue']} ({r['data']})" for r in ref["reasons"])
            print(f"report {rid} -> {', '.join(ref['countries'])}: {why}")
        queue = api.call(hotline, "/v1/intake/referrals/NL")["queue"]
        print("NL queue:", ", ".join(f"reports {q['reportIds']}" for q in queue))
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    folder = root / "referral-NL"
    if folder.exists():  # a rerun of the demo writes it afresh
        import shutil

        shutil.rmtree(folder)
    print(
        _opspoor(
            ["referral", "export", "--country", "NL", "--tenant", TENANT, "--db", db, "-o", str(folder)]
        ).strip()
    )
    print("package:", ", ".join(sorted(p.name for p in folder.iterdir())))
    return folder
