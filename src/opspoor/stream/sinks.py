"""Where alerts go: JSON lines on a text stream, a webhook, and (only when asked) a file of the
matching frames' hashes and times.

The webhook is POSTed from a thread of its own, so a slow receiver never holds up matching; a
failed POST is tried again (``WEBHOOK_TRIES``) and then reported on stderr, one line, the watch
goes on. Alerts carry hashes, ids and times, never pixels.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

from opspoor.errors import StreamError
from opspoor.stream.alerts import Alert, FrameHit, KnownEntry
from opspoor.stream.watcher import HashedFrame

WEBHOOK_TIMEOUT = 5.0
WEBHOOK_TRIES = 3


def write_alert(out: IO[str], alert: Alert) -> None:
    """One JSON line, flushed at once; the alert's latency is taken as it is written."""
    alert.mark_written()
    line = alert.to_json()
    out.write(json.dumps(line, separators=(",", ":")) + "\n")
    out.flush()


class Webhook:
    """POSTs each alert as JSON to ``url`` from a background thread."""

    def __init__(self, url: str, *, timeout: float = WEBHOOK_TIMEOUT, errors: IO[str] | None = None) -> None:
        if not url.lower().startswith(("http://", "https://")):
            raise StreamError("the webhook must be an http:// or https:// URL", url)
        self.url, self.timeout = url, timeout
        self.errors = errors if errors is not None else sys.stderr
        self.sent = 0
        self.failed = 0
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="opspoor-webhook", daemon=True)
        self._thread.start()

    def post(self, alert: dict[str, Any]) -> None:
        self._queue.put(alert)

    def close(self) -> None:
        """Send what is queued, then stop."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            self._send(item)

    def _send(self, alert: dict[str, Any]) -> None:
        body = json.dumps(alert).encode()
        last = ""
        for attempt in range(WEBHOOK_TRIES):
            req = urllib.request.Request(
                self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 (http(s) only)
                    resp.read()
                self.sent += 1
                return
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                last = str(getattr(exc, "reason", None) or exc)
            time.sleep(0.2 * (attempt + 1))
        self.failed += 1
        self.errors.write(
            f"webhook {self.url}: alert on entry {alert.get('entry_id')} not delivered: {last}\n"
        )
        self.errors.flush()


class KeptMatches:
    """The matching frames' hashes and times, one JSON line each, in an owner-only file (0o600):
    the only thing of a stream that is ever stored, and only with ``--keep``."""

    def __init__(self, path: Path, stream: str) -> None:
        self.stream = stream
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise StreamError(f"cannot write the kept matches: {exc.strerror or exc}", str(path)) from None
        os.fchmod(fd, 0o600)  # an existing file too: what matched is evidence
        self._fh = os.fdopen(fd, "a", encoding="utf-8")

    def __call__(self, frame: HashedFrame, found: list[tuple[FrameHit, KnownEntry]]) -> None:
        row = {
            "stream": self.stream,
            "stream_time": round(frame.stream_time, 3),
            "pdq": frame.pdq,
            "quality": frame.quality,
            "matches": [{"entry_id": e.entry_id, "hashset": e.hashset, **h.to_json()} for h, e in found],
        }
        self._fh.write(json.dumps(row, separators=(",", ":")) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()
