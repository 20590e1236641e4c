"""``opspoor watch`` on loopback: a small HTTP server in the test serves HLS playlists made with
PyAV from benign generated video (demo.streams); one has a known clip (re-encoded at a low bit rate,
with a logo) and a known still spliced in at known times, the distractor has unknown ones.

Every picture is generated; the "known" items are benign ones in a test hash set. Latency is
checked in stream time here (the alert comes from the frames of the splice, within the window);
wall-clock latency is measured by bench/live.py, never asserted in a test.
"""

from __future__ import annotations

import functools
import json
import os
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from opspoor.cli import app as cli_app
from opspoor.demo.images import generate_image
from opspoor.demo.streams import STILL_SIZE, Splice, clip_frames, stream_frames, write_stream
from opspoor.hashsets.model import Category, Entry
from opspoor.signals.pdq import pdq_from_rgb
from opspoor.signals.vpdq import format_vpdq, vpdq_hash_video
from opspoor.store import import_entries, open_store
from opspoor.stream import AlertWindow, FrameHit
from opspoor.stream.pull import Sampler

FPS = 10
SIZE = (320, 180)
SECONDS = 22
CLIP, STILL = 5, 78  # the known clip's and the known still's seeds
#: where the known items are spliced into the watched stream (seconds)
CLIP_AT, STILL_AT = 6.5, 16.0
K, N = 3, 5


# --- the known set and the streams ---------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("live")
    # the known clip at another size than the stream's (same aspect), encoded on its own
    clip = write_stream(
        root / "clip.mp4", clip_frames(CLIP, 10, FPS, (384, 216)), fps=FPS, size=(384, 216), container="mp4"
    )
    frames = vpdq_hash_video(clip)
    still = pdq_from_rgb(np.asarray(generate_image(STILL, *STILL_SIZE, style="mixed").convert("RGB")))
    db = f"sqlite:///{root / 'store.db'}"
    with open_store(db) as store:
        import_entries(
            store,
            "known-live",
            [
                Entry({"vpdq": format_vpdq(frames)}, Category("us-cat", "1"), external_id="clip-5"),
                Entry({"pdq": still.hash}, Category("us-cat", "2"), external_id="still-78"),
            ],
        )
        import_entries(store, "harmless", [Entry({"pdq": "f" * 64}, external_id="white")], kind="ignorable")
    site = root / "site"
    site.mkdir()
    watched = [Splice(CLIP, CLIP_AT, 8), Splice(STILL, STILL_AT, 4, still=True)]
    write_stream(
        site / "watched.m3u8",
        stream_frames(11, SECONDS, FPS, SIZE, watched, logo=True),
        fps=FPS,
        size=SIZE,
        bit_rate=150_000,  # a low-quality re-encode
    )
    distractor = [Splice(6, CLIP_AT, 8), Splice(77, STILL_AT, 4, still=True)]  # unknown clip and still
    write_stream(site / "other.m3u8", stream_frames(12, SECONDS, FPS, SIZE, distractor), fps=FPS, size=SIZE)
    write_stream(
        site / "watched.ts",
        stream_frames(11, 12, FPS, SIZE, [Splice(CLIP, 2, 8)]),
        fps=FPS,
        size=SIZE,
        container="mpegts",
    )
    return {"root": root, "db": db, "site": site}


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(world: dict[str, Any]) -> Iterator[str]:
    """The playlists over HTTP on 127.0.0.1 (a port of the system's choosing)."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(world["site"])))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def watch(db: str, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    res = CliRunner().invoke(cli_app, ["watch", *args, "--db", db])
    alerts = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
    return res.exit_code, alerts, res.stderr


# --- the command ---------------------------------------------------------------------------------
def test_watch_alerts_on_the_spliced_clip_and_still_within_the_window(
    world: dict[str, Any], site: str
) -> None:
    code, alerts, stderr = watch(
        world["db"], f"{site}/watched.m3u8", "--hashset", "known-live", "--hashset", "harmless"
    )
    assert code == 0, stderr
    by_entry = {a["external_id"]: a for a in alerts}
    assert sorted(by_entry) == ["clip-5", "still-78"], alerts  # once each, nothing else
    clip, still = by_entry["clip-5"], by_entry["still-78"]
    assert clip["hashset"] == "known-live" and clip["category"] == {"scheme": "us-cat", "code": "1"}
    assert still["category"] == {"scheme": "us-cat", "code": "2"}
    for alert, start, length, signal in ((clip, CLIP_AT, 8, "vpdq"), (still, STILL_AT, 4, "pdq")):
        assert alert["rule"] == {"k": K, "n": N}
        assert len(alert["frames"]) >= K
        times = [f["stream_time"] for f in alert["frames"]]
        # every frame that counted lies inside the splice; the alert comes within the window:
        # K sampled frames (one a second, and the scene change at the cut) after the splice starts
        assert all(start - 0.01 <= t < start + length for t in times), times
        assert alert["stream_time"] == times[-1] <= start + K, times
        assert all(f["signal"] == signal and 0 <= f["distance"] <= 31 for f in alert["frames"])
        assert alert["latency_ms"] >= 0
    assert "3 alerts" not in stderr and "2 alerts" in stderr


def test_watch_never_alerts_on_a_distractor_stream(world: dict[str, Any], site: str) -> None:
    code, alerts, stderr = watch(
        world["db"], f"{site}/other.m3u8", "--hashset", "known-live", "--k", "2", "--n", "5"
    )
    assert code == 0, stderr
    assert alerts == []
    assert "0 alerts" in stderr and "0 matched" in stderr


def test_watch_a_local_file_posts_to_a_webhook_and_keeps_only_matching_hashes(
    world: dict[str, Any], tmp_path: Path
) -> None:
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    keep = tmp_path / "kept.jsonl"
    try:
        code, alerts, stderr = watch(
            world["db"],
            str(world["site"] / "watched.ts"),
            "--hashset",
            "known-live",
            "--no-realtime",
            "--webhook",
            f"http://127.0.0.1:{srv.server_address[1]}/alerts",
            "--keep",
            str(keep),
        )
    finally:
        srv.shutdown()
        srv.server_close()
    assert code == 0, stderr
    assert [a["external_id"] for a in alerts] == ["clip-5"]
    assert [r["external_id"] for r in received] == ["clip-5"]  # the webhook got the same alert
    assert received[0]["frames"] == alerts[0]["frames"]
    assert stat.S_IMODE(os.stat(keep).st_mode) == 0o600
    kept = [json.loads(line) for line in keep.read_text().splitlines()]
    assert kept and all(set(r) == {"stream", "stream_time", "pdq", "quality", "matches"} for r in kept)
    assert all(2 - 0.01 <= r["stream_time"] < 10 for r in kept)  # matching frames only
    assert all(m["entry_id"] and m["distance"] <= 31 for r in kept for m in r["matches"])


def test_watch_says_in_one_line_what_is_wrong(world: dict[str, Any], site: str, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        cli_app,
        ["watch", f"{site}/missing.m3u8", "--hashset", "known-live", "--db", world["db"], "--timeout", "2"],
    )
    assert res.exit_code != 0
    not_video = tmp_path / "notes.txt"
    not_video.write_text("hello")
    res = CliRunner().invoke(
        cli_app, ["watch", str(not_video), "--hashset", "known-live", "--db", world["db"]]
    )
    assert res.exit_code != 0 and "not a supported video container" in str(res.exception)
    res = CliRunner().invoke(
        cli_app, ["watch", str(not_video), "--hashset", "known-live", "--k", "6", "--db", world["db"]]
    )
    assert res.exit_code != 0 and "more than the window" in str(res.exception)


# --- the parts -----------------------------------------------------------------------------------
def hit(t: float) -> FrameHit:
    return FrameHit(t, 3, "pdq", "0" * 64)


def test_window_alerts_at_the_kth_frame_once_per_run_and_rearms() -> None:
    w = AlertWindow(3, 5)
    pattern = [1, 0, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1]
    raised = [bool(w.push({7: hit(t)} if on else {})) for t, on in enumerate(pattern)]
    # 3 of 5 reached at frame 4; still running after; gone for 5 frames, then 3 of 5 again at 14
    assert [t for t, r in enumerate(raised) if r] == [4, 14]
    w = AlertWindow(3, 5)
    assert not any(w.push({7: hit(t)} if t % 3 == 0 else {}) for t in range(30))  # 2 of 5 at most
    with pytest.raises(ValueError):
        AlertWindow(6, 5)


def test_sampler_takes_a_tick_a_second_and_scene_changes_between() -> None:
    s = Sampler(every=1.0, scene=0.1)
    flat, other = np.zeros((18, 32), np.float32), np.ones((18, 32), np.float32)
    got = [(round(t, 1), s.wants(t, other if t >= 2.35 else flat)) for t in np.arange(0, 4, 0.1)]
    sampled = [(t, r) for t, r in got if r]
    assert sampled == [(0.0, "tick"), (1.0, "tick"), (2.0, "tick"), (2.4, "scene"), (3.0, "tick")]
