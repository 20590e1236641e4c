"""SRT through a local relay, for an FFmpeg built without libsrt (PyAV's wheels).

``srt-live-transmit`` (Debian's ``srt-tools``, the SRT library's own tool) connects to the SRT
source (or, with ``listen``, waits for a sender to connect) and writes the stream's payload, the
MPEG-TS the sender put into SRT, to its standard output; the stream is read from that pipe. Nothing
else changes: the same sampling, hashing and alerts as for MPEG-TS over UDP or TCP. The relay is a
child process of the watch, ended with it.

The SRT URL's own options (``passphrase``, ``streamid``, ``latency``, …) are passed on to the
relay; ``mode`` is set from ``listen`` (or a ``mode=listener`` in the URL).
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import shutil
import subprocess
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit

from opspoor.errors import StreamError

#: the relay program (Debian package srt-tools)
RELAY = "srt-live-transmit"
#: seconds the relay is given to end when the watch ends
_STOP_SECONDS = 5.0


def relay_available() -> bool:
    return shutil.which(RELAY) is not None


def relay_command(source: str, *, listen: bool = False, timeout: float = 10.0) -> list[str]:
    """The ``srt-live-transmit`` command line that relays ``source`` (``srt://host:port?…``) to
    standard output: as a caller (connects to a listener there, giving up after ``timeout``
    seconds), or with ``listen`` as a listener on host:port (waits for the sender as long as it
    takes)."""
    parts = urlsplit(source)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme.lower() != "srt" or port is None:
        raise StreamError("an SRT URL names a host and a port: srt://host:port", source)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    listen = listen or params.pop("mode", "caller").lower() == "listener"
    params.pop("mode", None)
    host = parts.hostname or ""
    if not host and not listen:
        raise StreamError(
            "an SRT URL to connect to names its host (srt://host:port), or use --listen", source
        )
    exe = shutil.which(RELAY) or RELAY
    command = [exe, "-q", "-a:no", "-ll:error"]
    if listen:
        if host:
            params["adapter"] = host  # the address to listen at
        uri = f"srt://:{port}?" + urlencode({"mode": "listener", **params})
    else:
        command += [f"-t:{max(1, math.ceil(timeout))}", "-tm:1"]  # connected within the timeout
        uri = f"srt://{host}:{port}?" + urlencode({"mode": "caller", **params})
    return [*command, uri, "file://con"]


class RelayPipe:
    """The relay's standard output as a file PyAV reads: ``read`` waits at most ``timeout``
    seconds for data. Silence before the first byte is a relay that could not connect (or, with
    ``listen``, a sender not yet there: waited for); silence after it, a stream that broke off.
    The end of the pipe (the relay ended: the sender hung up) is the end of the stream.

    A failure is not raised inside PyAV's read (it may drop it and read again): the pipe ends,
    and ``error`` says why; the reader raises it (:meth:`check`)."""

    def __init__(self, proc: subprocess.Popen[bytes], source: str, timeout: float, listen: bool) -> None:
        assert proc.stdout is not None
        self.proc, self.source, self.timeout, self.listen = proc, source, timeout, listen
        self._fd = proc.stdout.fileno()
        self.received = 0
        self.error: StreamError | None = None

    def read(self, size: int = -1) -> bytes:
        if self.error is not None:
            return b""
        size = 1 << 16 if size is None or size < 0 else size
        while True:
            ready, _, _ = select.select([self._fd], [], [], self.timeout)
            if ready:
                break
            if self.received or not self.listen:
                self.error = StreamError(
                    f"the SRT stream was silent for {self.timeout:g} s after {self.received:,} bytes"
                    if self.received
                    else f"cannot open the stream: no SRT data within {self.timeout:g} s (nothing "
                    "listening there, or nothing sent)",
                    self.source,
                )
                return b""
        data = os.read(self._fd, size)
        if not data and not self.received:
            self.error = self._failed()
        self.received += len(data)
        return data

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def _failed(self) -> StreamError:
        """Why the relay ended before any data came."""
        try:
            code = self.proc.wait(_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            code = None
        said = _last_line(self.proc)
        return StreamError(
            "cannot open the stream: the SRT relay (srt-live-transmit) got no data"
            + (f" and exited with status {code}" if code else "")
            + (f": {said}" if said else " (nothing listening there, or it refused the connection)"),
            self.source,
        )


def _last_line(proc: subprocess.Popen[bytes]) -> str:
    if proc.stderr is None or proc.poll() is None:
        return ""
    lines = [ln.strip() for ln in proc.stderr.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


@contextlib.contextmanager
def srt_relay(source: str, *, listen: bool = False, timeout: float = 10.0) -> Iterator[RelayPipe]:
    """A running relay of ``source`` and the pipe its stream arrives on; the relay is ended (and
    waited for) when the block ends."""
    if not relay_available():
        raise StreamError(
            "this FFmpeg cannot open srt:// streams (PyAV's wheels have no libsrt) and the SRT relay "
            f"{RELAY} is not installed (Debian package srt-tools; scripts/install-system-deps.sh)",
            source,
        )
    command = relay_command(source, listen=listen, timeout=timeout)
    try:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as exc:
        raise StreamError(f"cannot start the SRT relay {RELAY}: {exc.strerror or exc}", source) from None
    try:
        yield RelayPipe(proc, source, timeout, listen)
    finally:
        proc.terminate()
        try:
            proc.wait(_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
