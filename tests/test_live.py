"""``opspoor watch`` on loopback: a small HTTP server in the test serves HLS playlists made with
PyAV from benign generated video (demo.streams); one has a known clip (re-encoded at a low bit rate,
with a logo) and a known still spliced in at known times, the distractor has unknown ones.

Every picture is generated; the "known" items are benign ones in a test hash set. Latency is
checked in stream time here (the alert comes from the frames of the splice, within the window);
wall-clock latency is measured by bench/live.py, never asserted in a test.
"""

from __future__ import annotations

import functools
import io
import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image
from starlette.websockets import WebSocketDisconnect
from typer.testing import CliRunner

from opspoor.cli import app as cli_app
from opspoor.demo.images import generate_image
from opspoor.demo.streams import (
    STILL_SIZE,
    Splice,
    add_logo,
    clip_frames,
    still_frame,
    stream_frames,
    write_stream,
)
from opspoor.errors import StreamError
from opspoor.hashsets.model import Category, Entry
from opspoor.signals.pdq import pdq_from_rgb
from opspoor.signals.vpdq import format_vpdq, vpdq_hash_video
from opspoor.store import import_entries, open_store
from opspoor.store.audit import list_audit
from opspoor.stream import AlertWindow, FrameHit, StreamWatcher, hash_frame
from opspoor.stream.pull import Sampler, sample_stream
from opspoor.stream.schedule import FrameQueue, read_ahead
from test_service import PROBLEM, TEST_SETTINGS, Api, running

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
    known = [
        Entry({"vpdq": format_vpdq(frames)}, Category("us-cat", "1"), external_id="clip-5"),
        Entry({"pdq": still.hash}, Category("us-cat", "2"), external_id="still-78"),
    ]
    with open_store(db) as store:
        import_entries(store, "known-live", known)
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
    return {"root": root, "db": db, "site": site, "known": known}


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
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        print("watch raised:", repr(res.exception))
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
    assert "2 alerts" in stderr


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


def test_watch_names_a_missing_file_a_folder_and_a_playlist_on_disk(
    world: dict[str, Any], tmp_path: Path
) -> None:
    on_disk = tmp_path / "live.m3u8"
    on_disk.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:2\n")
    cases = {
        str(tmp_path / "gone.ts"): "no such file",
        str(tmp_path): "is a folder",
        str(tmp_path / "gone.m3u8"): "no such file, and a playlist on disk is not opened",
        str(on_disk): "a playlist on disk is not opened",
        "ftp://127.0.0.1/x.ts": "not a stream URL this command opens",
        # PyAV's FFmpeg has no libsrt: through the relay (without it, said so); nothing listens here
        "srt://127.0.0.1:9/x": "cannot open",
    }
    for source, says in cases.items():
        res = CliRunner().invoke(
            cli_app, ["watch", source, "--hashset", "known-live", "--db", world["db"], "--timeout", "2"]
        )
        assert res.exit_code != 0, source
        line = str(res.exception)
        assert line.startswith(f"{source}: ") and says in line and "\n" not in line, line


def known_from_zero(path: Path) -> Path:
    """A 4 s MPEG-TS stream whose first seconds are the known clip (the first frame is known)."""
    frames = stream_frames(11, 4, FPS, SIZE, [Splice(CLIP, 0, 4)])
    return Path(write_stream(path, frames, fps=FPS, size=SIZE, container="mpegts"))


def test_a_fresh_watch_hashes_and_matches_the_first_frame_of_a_stream(world: dict[str, Any]) -> None:
    """A watch in a fresh process (nothing hashed yet) on a stream whose first seconds are the
    known clip, played at its own pace: the hashing is warmed up before the source is opened, so
    the frame at 0 s is hashed and matched, counts towards the alert, and nothing is dropped."""
    import subprocess
    import sys

    first = known_from_zero(world["root"] / "first.ts")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    done = subprocess.run(
        [sys.executable, "-m", "opspoor", "watch", str(first), "--hashset", "known-live",
         "--db", world["db"], "--name", "cam-0"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    alerts = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert [a["external_id"] for a in alerts] == ["clip-5"], alerts
    times = [f["stream_time"] for f in alerts[0]["frames"]]
    assert times[0] == 0.0 and len(times) >= K and alerts[0]["stream_time"] <= K, times
    assert "cam-0: " in done.stderr and "dropped" not in done.stderr and "behind" not in done.stderr


# --- the parts -----------------------------------------------------------------------------------
def test_the_srt_relay_calls_or_listens_with_the_urls_options_and_says_when_it_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opspoor.stream import relay

    caller = relay.relay_command("srt://10.0.0.5:9000?passphrase=s3cret-phrase&streamid=cam-7", timeout=4)
    assert caller[-2] == "srt://10.0.0.5:9000?mode=caller&passphrase=s3cret-phrase&streamid=cam-7"
    assert caller[-1] == "file://con" and "-t:4" in caller and "-a:no" in caller
    listener = relay.relay_command("srt://0.0.0.0:9000?latency=200", listen=True)
    assert listener[-2] == "srt://:9000?mode=listener&latency=200&adapter=0.0.0.0"
    assert not any(a.startswith("-t:") for a in listener)  # waits for the sender as long as it takes
    assert relay.relay_command("srt://127.0.0.1:9000?mode=listener")[-2].startswith(
        "srt://:9000?mode=listener"
    )
    for bad in ("srt://10.0.0.5", "srt://:9000"):
        with pytest.raises(StreamError):
            relay.relay_command(bad)
    monkeypatch.setattr(relay, "RELAY", "srt-live-transmit-not-here")
    with pytest.raises(StreamError, match="srt-live-transmit-not-here is not installed"):
        list(sample_stream("srt://127.0.0.1:9000", timeout=1))


def test_frame_queue_drops_the_oldest_first_counts_them_per_stream_and_keeps_the_rest() -> None:
    q: FrameQueue[str] = FrameQueue(max_lag=5.0)
    now = time.monotonic()
    q.put("a", "a0", now - 60)  # waited long past max_lag: dropped when its turn comes
    q.put("b", "b0", now - 30)
    q.put("a", "a1", now + 60)  # (due in the future: never late, however slow this machine is)
    q.put("b", "b1", now + 61)
    q.close()
    assert q.get() == ("a", "a1")
    assert q.get() == ("b", "b1")
    assert q.get() is None
    assert q.dropped == {"a": 1, "b": 1}


def test_read_ahead_hands_frames_on_in_order_and_raises_the_source_error_after_them() -> None:
    def source() -> Iterator[tuple[float, float]]:
        soon = time.monotonic() + 60  # (in the future: never late, however slow this machine is)
        for t in range(5):
            yield (float(t), soon)
        raise StreamError("the stream broke off", "udp://@:5000")

    got, drops = [], []
    with pytest.raises(StreamError, match="broke off"):
        for frame in read_ahead(source(), lambda f: f, on_drop=drops.append):
            got.append(frame[0])
    assert got == [0.0, 1.0, 2.0, 3.0, 4.0] and drops == []
    late = [(0.0, time.monotonic() - 30), (1.0, time.monotonic() + 60)]  # the first decoded long ago
    assert [f[0] for f in read_ahead(iter(late), lambda f: f, on_drop=drops.append)] == [1.0]
    assert drops == [1]


def test_plan_makes_every_query_hash_on_a_schedule_and_on_scene_changes_else_only_what_matched() -> None:
    w = StreamWatcher("s", robust_every=3)
    plans = [w.plan() for _ in range(7)]
    assert plans == [None, frozenset(), frozenset(), None, frozenset(), frozenset(), None]
    assert w.plan("scene") is None  # a cut: a spliced clip starts here
    w.window.push({4: FrameHit(1.0, 20, "vpdq", "0" * 64, "corner/top-right")})
    assert w.plan() == {"corner/top-right"}  # the window holds a match through a masked corner
    with pytest.raises(ValueError):
        StreamWatcher("s", robust_every=0)
    framed = add_logo(still_frame(STILL, (640, 360)), 3)
    assert [lk[1] for lk in hash_frame(framed, 0.0, only=frozenset()).lookups] == ["pdq"]
    assert [lk[1] for lk in hash_frame(framed, 0.0, only={"corner/top-right"}).lookups] == [
        "pdq",
        "corner/top-right",
    ]


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


# --- the same through the service: stream sessions -----------------------------------------------
SERVICE = replace(TEST_SETTINGS, stream_idle_seconds=30.0)


@pytest.fixture
def live_api(world: dict[str, Any], tmp_path: Path) -> Iterator[Api]:
    url = f"sqlite:///{tmp_path / 'service.db'}"
    with open_store(url) as store:
        import_entries(store, "known-live", world["known"], tenant="a")
    with running(url, SERVICE) as api:
        yield api


def sampled(path: Path) -> list[tuple[float, str, int]]:
    """A stream's sampled frames as the platform hashes them: (time, PDQ, quality)."""
    return [
        (f.stream_time, h.pdq, h.quality)
        for f in sample_stream(str(path), realtime=False)
        for h in [hash_frame(f.rgb, f.stream_time)]
    ]


def push_values(
    api: Api, sid: str, frames: list[tuple[float, str, int]], tenant: str = "a"
) -> list[dict[str, Any]]:
    alerts = []
    for t, pdq, quality in frames:  # one call per frame, as a platform pushes them live
        r = api.client.post(
            f"/v1/streams/{sid}/frames",
            json={"frames": [{"time": t, "pdq": pdq, "quality": quality}]},
            headers=api.auth(tenant, "platform"),
        )
        assert r.status_code == 200, r.text
        assert r.json()["frames"] == 1
        alerts += r.json()["alerts"]
    return alerts


def open_stream(api: Api, **body: Any) -> str:
    r = api.client.post("/v1/streams", json=body, headers=api.auth("a", "platform"))
    assert r.status_code == 201, r.text
    return str(r.json()["stream"])


def test_service_stream_alerts_on_pushed_frames_and_not_on_a_distractor(
    world: dict[str, Any], live_api: Api
) -> None:
    api, site = live_api, world["site"]
    watched, other = open_stream(api, name="cam-1"), open_stream(api, name="cam-2", k=2, n=5)
    alerts = push_values(api, watched, sampled(site / "watched.ts"))
    assert [a["external_id"] for a in alerts] == ["clip-5"]
    (alert,) = alerts
    assert alert["stream"] == "cam-1" and alert["category"] == {"scheme": "us-cat", "code": "1"}
    times = [f["stream_time"] for f in alert["frames"]]
    assert len(times) == K and all(2 - 0.01 <= t < 10 for t in times) and alert["stream_time"] <= 2 + K
    assert all(f["signal"] == "vpdq" and f["distance"] <= 31 for f in alert["frames"])
    # the distractor's frames (unknown clip and still), pushed to a session of its own at the same time
    other_frames = [f for seg in sorted(site.glob("other-*.ts")) for f in sampled(seg)]
    assert other_frames and push_values(api, other, other_frames) == []
    # closing answers what the session saw; the session is gone afterwards
    r = api.client.delete(f"/v1/streams/{watched}", headers=api.auth("a", "platform"))
    assert r.status_code == 200
    assert r.json()["alerts"] == 1 and r.json()["matched"] >= K and r.json()["name"] == "cam-1"
    r = api.client.post(
        f"/v1/streams/{watched}/frames",
        json={"frames": [{"pdq": "0" * 64}]},
        headers=api.auth("a", "platform"),
    )
    assert r.status_code == 404 and r.headers["content-type"].startswith(PROBLEM)


def test_service_stream_opens_only_once_warm_and_matches_a_first_frame_at_zero(
    world: dict[str, Any], live_api: Api
) -> None:
    """A session is opened only by a worker whose index is loaded and warm (503, Retry-After,
    before; the WebSocket closes with 1013, try again later); then the frame at 0 s of a stream
    that starts with the known clip counts towards the alert."""
    api = live_api
    svc = api.client.app.state.service  # type: ignore[attr-defined]
    follower = svc.index
    svc.index = type("Loading", (), {"loaded": False})()  # as a worker still loading its index
    try:
        r = api.client.post("/v1/streams", json={}, headers=api.auth("a", "platform"))
        assert r.status_code == 503 and r.headers["Retry-After"] == "2"
        assert r.json()["type"].endswith("not-ready")
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            api.client.websocket_connect("/v1/streams/socket", headers=api.auth("a", "platform")) as ws,
        ):
            ws.receive_json()
        assert closed.value.code == 1013
    finally:
        svc.index = follower
    first = known_from_zero(world["root"] / "first-pushed.ts")
    alerts = push_values(api, open_stream(api, name="cam-0"), sampled(first))
    assert [a["external_id"] for a in alerts] == ["clip-5"]
    assert alerts[0]["frames"][0]["stream_time"] == 0.0


def test_service_stream_takes_images_and_video_segments(world: dict[str, Any], live_api: Api) -> None:
    api, site = live_api, world["site"]
    sid = open_stream(api)
    # the HLS segments of the watched stream (2 s each), pushed as they are cut, at their stream time
    alerts = []
    for i, seg in enumerate(sorted(site.glob("watched-*.ts"))):
        r = api.client.post(
            f"/v1/streams/{sid}/frames",
            params={"time": 2 * i},
            files={"file": (seg.name, seg.read_bytes(), "video/mp2t")},
            headers=api.auth("a", "platform"),
        )
        assert r.status_code == 200, r.text
        alerts += r.json()["alerts"]
    by_entry = {a["external_id"]: a for a in alerts}
    assert sorted(by_entry) == ["clip-5", "still-78"], alerts
    for name, start, length in (("clip-5", CLIP_AT, 8), ("still-78", STILL_AT, 4)):
        times = [f["stream_time"] for f in by_entry[name]["frames"]]
        assert all(start - 0.01 <= t < start + length for t in times), times
    # single frames as JPEG images: the known still with a logo, three times
    still = io.BytesIO()
    Image.fromarray(add_logo(still_frame(STILL, SIZE))).save(still, "JPEG", quality=80)
    sid = open_stream(api)
    got = []
    for t in (0.0, 1.0, 2.0):
        r = api.client.post(
            f"/v1/streams/{sid}/frames",
            params={"time": t},
            files={"file": ("f.jpg", still.getvalue(), "image/jpeg")},
            headers=api.auth("a", "platform"),
        )
        assert r.status_code == 200, r.text
        got.append([a["external_id"] for a in r.json()["alerts"]])
    assert got == [[], [], ["still-78"]]  # the third frame completes 3 of 5
    # a text file is not a frame
    r = api.client.post(
        f"/v1/streams/{sid}/frames",
        files={"file": ("a.txt", b"hello", "text/plain")},
        headers=api.auth("a", "platform"),
    )
    assert r.status_code == 415 and r.headers["content-type"].startswith(PROBLEM)


def test_service_streams_are_per_tenant_audited_and_expire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opspoor.service import streams

    url = f"sqlite:///{tmp_path / 'expire.db'}"
    with running(url, SERVICE) as api:
        sid = open_stream(api, name="quiet")
        ok = {"frames": [{"time": 0, "pdq": "a" * 64}]}
        r = api.client.post(f"/v1/streams/{sid}/frames", json=ok, headers=api.auth("b", "platform"))
        assert r.status_code == 404  # another tenant's stream does not exist for b
        r = api.client.post(f"/v1/streams/{sid}/frames", json=ok, headers=api.auth("a", "platform"))
        assert r.status_code == 200 and r.json() == {"stream": sid, "frames": 1, "matched": 0, "alerts": []}
        bad = api.client.post(
            f"/v1/streams/{sid}/frames", json={"frames": [{"pdq": "xyz"}]}, headers=api.auth("a", "platform")
        )
        assert bad.status_code == 422 and "pdq" in bad.json()["detail"]
        r = api.client.post("/v1/streams", json={"k": 6, "n": 5}, headers=api.auth("a", "platform"))
        assert r.status_code == 422
        # quiet for longer than the idle time: the sessions' clock moved on (a real wait as short
        # as an idle time would be no longer than the calls above take on a loaded machine)
        later = SERVICE.stream_idle_seconds + 1
        monkeypatch.setattr(streams, "time", SimpleNamespace(monotonic=lambda: time.monotonic() + later))
        r = api.client.post(f"/v1/streams/{sid}/frames", json=ok, headers=api.auth("a", "platform"))
        assert r.status_code == 404 and "expired" in r.json()["detail"]
        deadline = time.monotonic() + 10
        while True:
            with open_store(url) as store:
                rows = [
                    (row.event.action, row.event.result, row.event.status)
                    for row in list_audit(store, tenant="a", limit=100)
                    if row.event.object == f"stream:{sid}"
                ]
            if ("stream-expire", "ok", 200) in rows or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert ("stream-open", "ok", 201) in rows
    assert ("stream-push", "ok", 200) in rows and ("stream-push", "rejected", 422) in rows
    assert ("stream-expire", "ok", 200) in rows
    assert ("stream-push", "rejected", 404) in rows


def _rows_per_table(url: str) -> dict[str, int]:
    import sqlalchemy as sa

    with open_store(url) as store, store.engine.connect() as conn:
        names = sa.inspect(conn).get_table_names()
        return {n: conn.execute(sa.text(f'SELECT count(*) FROM "{n}"')).scalar_one() for n in names}


def test_a_stream_session_leaves_nothing_in_the_store_but_its_audit_rows(tmp_path: Path) -> None:
    """Nothing of a stream is stored by the service: a session that matched and alerted adds audit
    rows, and no other row anywhere (the test's tokens exist before the count)."""
    url = f"sqlite:///{tmp_path / 'quiet.db'}"
    known = "a5" * 32
    with open_store(url) as store:
        import_entries(store, "known-live", [Entry({"pdq": known}, Category("us-cat", "1"), external_id="k")],
                       tenant="a")  # fmt: skip
    with running(url, SERVICE) as api:
        before = _rows_per_table(url)
        sid = open_stream(api, name="cam-1")
        alerts = push_values(api, sid, [(float(t), known, 100) for t in range(4)])
        assert [a["external_id"] for a in alerts] == ["k"]  # it matched, and said so
        assert api.client.delete(f"/v1/streams/{sid}", headers=api.auth("a", "platform")).status_code == 200
        after = _rows_per_table(url)
    grown = {name for name in after if after[name] != before.get(name)}
    assert grown <= {"audit"}, {n: (before.get(n), after[n]) for n in grown}


def test_a_push_that_reaches_another_worker_is_refused_as_misdirected(
    world: dict[str, Any], tmp_path: Path
) -> None:
    """Two workers of one service (two apps on one store, as ``serve --workers 2`` runs them): a
    session lives in the worker that opened it; a push routed to the other is a 421 problem that
    says so (and is audited), never a silent loss nor a plain "no such stream"."""
    url = f"sqlite:///{tmp_path / 'workers.db'}"
    with open_store(url) as store:
        import_entries(store, "known-live", world["known"], tenant="a")
    with running(url, SERVICE) as first, running(url, SERVICE) as second:
        sid = open_stream(first, name="cam-4")
        frame = {"frames": [{"time": 0, "pdq": "a" * 64}]}
        r = second.client.post(f"/v1/streams/{sid}/frames", json=frame, headers=first.auth("a", "platform"))
        assert r.status_code == 421 and r.headers["content-type"].startswith(PROBLEM)
        problem = r.json()
        assert problem["type"].endswith("stream-in-another-worker") and sid in problem["detail"]
        assert "another worker" in problem["detail"] and "sticky" in problem["detail"]
        r = first.client.post(f"/v1/streams/{sid}/frames", json=frame, headers=first.auth("a", "platform"))
        assert r.status_code == 200 and r.json()["frames"] == 1  # the worker that opened it takes it
        r = second.client.delete(f"/v1/streams/{sid}", headers=first.auth("a", "platform"))
        assert r.status_code == 421  # nor can another worker close it
        r = first.client.delete(f"/v1/streams/{sid}", headers=first.auth("a", "platform"))
        assert r.status_code == 200 and r.json()["frames"] == 1
        # a closed session in its own worker is a 404, as before
        r = first.client.post(f"/v1/streams/{sid}/frames", json=frame, headers=first.auth("a", "platform"))
        assert r.status_code == 404
    with open_store(url) as store:
        rows = {
            (row.event.action, row.event.status)
            for row in list_audit(store, tenant="a", limit=100)
            if row.event.object == f"stream:{sid}"
        }
    assert ("stream-push", 421) in rows and ("stream-push", 200) in rows


def test_service_stream_over_one_websocket(world: dict[str, Any], live_api: Api) -> None:
    api, site = live_api, world["site"]
    with api.client.websocket_connect(
        "/v1/streams/socket?name=cam-9", headers=api.auth("a", "platform")
    ) as ws:
        opened = ws.receive_json()
        assert opened["name"] == "cam-9" and opened["k"] == K
        alerts = []
        for t, pdq, quality in sampled(site / "watched.ts"):
            ws.send_text(json.dumps({"frames": [{"time": t, "pdq": pdq, "quality": quality}]}))
            answer = ws.receive_json()
            assert answer["frames"] == 1
            alerts += answer["alerts"]
        assert [a["external_id"] for a in alerts] == ["clip-5"]
        ws.send_text('{"frames": [{"pdq": "nothex"}]}')  # a bad message is answered, the session goes on
        assert ws.receive_json()["problem"]["status"] == 422
        jpeg = io.BytesIO()
        Image.fromarray(add_logo(still_frame(STILL, SIZE))).save(jpeg, "JPEG", quality=80)
        got = []
        for _ in range(3):
            ws.send_bytes(jpeg.getvalue())
            got.append([a["external_id"] for a in ws.receive_json()["alerts"]])
        assert got == [[], [], ["still-78"]]
    sid = opened["stream"]
    # closed with the connection; audited like the HTTP calls
    r = api.client.delete(f"/v1/streams/{sid}", headers=api.auth("a", "platform"))
    assert r.status_code == 404
    deadline = time.monotonic() + 10
    while True:
        with open_store(api.url) as store:
            actions = {
                row.event.action
                for row in list_audit(store, tenant="a", limit=1000)
                if row.event.object == f"stream:{sid}"
            }
        if "stream-close" in actions or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert {"stream-open", "stream-push", "stream-close"} <= actions
    # refused without a platform token
    for headers in ({}, api.auth("a", "curator")):
        with (
            pytest.raises(WebSocketDisconnect),
            api.client.websocket_connect("/v1/streams/socket", headers=headers) as ws,
        ):
            ws.receive_json()


def test_a_corner_logo_is_masked_by_a_corner_query_hash() -> None:
    from opspoor.demo.videos import render_frame

    def bits(a: str, b: str) -> int:
        return bin(int(a, 16) ^ int(b, 16)).count("1")

    clean = render_frame(107, 0, 200, (640, 360))
    known = pdq_from_rgb(clean).hash
    framed = hash_frame(add_logo(clean, 3), 0.0)
    methods = {lk[1]: bits(known, lk[0]) for lk in framed.lookups}
    assert {"pdq", "corner/top-right", "corner/top-left", "corner/bottom-right", "corner/bottom-left"} <= set(
        methods
    )
    assert methods["pdq"] > 31 >= methods["corner/top-right"]  # the logo alone moves it past the distance
    assert [lk[1] for lk in hash_frame(clean, 0.0, robust="off").lookups] == ["pdq"]


def test_watch_mpegts_over_tcp(world: dict[str, Any]) -> None:
    """MPEG-TS pushed over a TCP connection on loopback (as an encoder's ``tcp://`` output)."""
    import socket

    data = (world["site"] / "watched.ts").read_bytes()
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    try:
        port = srv.getsockname()[1]
        code, alerts, stderr = watch(
            world["db"], f"tcp://127.0.0.1:{port}", "--format", "mpegts", "--hashset", "known-live"
        )
    finally:
        srv.close()
    assert code == 0, stderr
    assert [a["external_id"] for a in alerts] == ["clip-5"]
    assert all(2 - 0.01 <= f["stream_time"] < 10 for f in alerts[0]["frames"])


# --- other sources on loopback ---------------------------------------------------------------------
# the silence that ends a watch of a live source: longer than an encoder of the test stalls on a
# loaded machine (3 s broke an RTMP watch off mid-stream under load)
SILENCE = "10"


def _free_port(kind: int) -> int:
    import socket

    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bound(port: int, proto: str, listening: bool = False) -> bool:
    """The port is bound on this machine (``/proc/net/tcp`` in state LISTEN, or ``/proc/net/udp``)."""
    for table in (f"/proc/net/{proto}", f"/proc/net/{proto}6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            if int(local.rsplit(":", 1)[1], 16) == port and (not listening or state == "0A"):
                return True
    return False


def _wait_bound(port: int, proto: str, listening: bool = False) -> None:
    deadline = time.monotonic() + 30
    while not _bound(port, proto, listening):
        assert time.monotonic() < deadline, f"nothing bound {proto} port {port}"
        time.sleep(0.02)


def test_watch_mpegts_over_udp(world: dict[str, Any]) -> None:
    """MPEG-TS datagrams on loopback (as an encoder's ``udp://`` output), sent once ``watch`` has
    bound the port."""
    import socket

    data = (world["site"] / "watched.ts").read_bytes()
    port = _free_port(socket.SOCK_DGRAM)

    def send() -> None:
        _wait_bound(port, "udp")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(0, len(data), 1316):  # 7 TS packets a datagram, as FFmpeg sends them
                s.sendto(data[i : i + 1316], ("127.0.0.1", port))
                time.sleep(0.0005)  # paced: a burst would overflow the socket buffer

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    code, alerts, stderr = watch(
        world["db"], f"udp://127.0.0.1:{port}", "--format", "mpegts", "--hashset", "known-live",
        "--timeout", SILENCE,
    )  # fmt: skip
    sender.join()
    assert code == 0, stderr
    assert [a["external_id"] for a in alerts] == ["clip-5"]
    assert all(2 - 0.01 <= f["stream_time"] < 10 for f in alerts[0]["frames"])


def _push(
    url: str, container: str, port: int, options: dict[str, str] | None = None
) -> tuple[threading.Thread, list[BaseException]]:
    """An encoder pushing the known clip's stream (spliced at 2 s) to ``url`` once ``watch`` listens."""
    failed: list[BaseException] = []

    def send() -> None:
        try:
            _wait_bound(port, "tcp", listening=True)
            write_stream(
                url,
                stream_frames(11, 12, FPS, SIZE, [Splice(CLIP, 2, 8)]),
                fps=FPS,
                size=SIZE,
                container=container,
                options=options,
            )
        except BaseException as exc:  # reported by the test
            failed.append(exc)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    return sender, failed


@pytest.mark.parametrize(
    ("scheme", "container", "options"),
    [("rtmp", "flv", None), ("rtsp", "rtsp", {"rtsp_transport": "tcp"})],
)
def test_watch_listens_for_an_encoder_pushing_rtmp_or_rtsp(
    world: dict[str, Any], scheme: str, container: str, options: dict[str, str] | None
) -> None:
    """``watch --listen``: an encoder (FFmpeg's RTMP or RTSP muxer, on loopback) pushes the stream
    to the watcher, as to a platform's ingest point."""
    import socket

    port = _free_port(socket.SOCK_STREAM)
    url = f"{scheme}://127.0.0.1:{port}/live/cam-3"
    sender, failed = _push(url, container, port, options)
    code, alerts, stderr = watch(
        world["db"], url, "--listen", "--hashset", "known-live", "--timeout", SILENCE
    )
    sender.join(30)
    assert not failed, failed
    assert code == 0, stderr
    assert [a["external_id"] for a in alerts] == ["clip-5"]
    assert all(2 - 0.01 <= f["stream_time"] < 10 for f in alerts[0]["frames"])


def test_watch_follows_a_live_hls_playlist_as_it_grows(world: dict[str, Any], tmp_path: Path) -> None:
    """A live playlist (no ENDLIST) served on loopback gains a 1 s segment every half second;
    ``watch`` reloads it, follows the new segments and alerts on the clip spliced in at 2 s."""
    site = tmp_path / "live"
    site.mkdir()
    write_stream(
        site / "src.m3u8",
        stream_frames(11, 12, FPS, SIZE, [Splice(CLIP, 2, 8)]),
        fps=FPS,
        size=SIZE,
        segment_seconds=1,
    )
    segments = sorted(p.name for p in site.glob("src-*.ts"))
    started = time.monotonic()
    fetched: list[int] = []  # segments listed at each playlist request

    class Live(_Quiet):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if not self.path.startswith("/live.m3u8"):
                return super().do_GET()
            n = min(len(segments), 1 + int((time.monotonic() - started) / 0.5))
            fetched.append(n)
            lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:1", "#EXT-X-MEDIA-SEQUENCE:0"]
            for name in segments[:n]:
                lines += ["#EXTINF:1.0,", name]
            if n == len(segments):
                lines.append("#EXT-X-ENDLIST")
            body = ("\n".join(lines) + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.apple.mpegurl")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return None

    srv = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Live, directory=str(site)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        code, alerts, stderr = watch(
            world["db"], f"http://127.0.0.1:{srv.server_address[1]}/live.m3u8", "--hashset", "known-live"
        )
    finally:
        srv.shutdown()
        srv.server_close()
    assert code == 0, stderr
    assert fetched[0] < len(segments) and len(fetched) > 1  # it was live when first read, and reloaded
    assert fetched[-1] == len(segments)
    assert [a["external_id"] for a in alerts] == ["clip-5"]
    assert all(2 - 0.01 <= f["stream_time"] < 10 for f in alerts[0]["frames"])


def _paced(frames: Iterator[np.ndarray], fps: int) -> Iterator[np.ndarray]:
    """``frames`` at their own pace, as a live encoder takes them from a camera."""
    start = time.monotonic()
    for i, frame in enumerate(frames):
        wait = start + i / fps - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        yield frame


def test_watch_rtsp_as_a_client_of_an_rtsp_server(world: dict[str, Any]) -> None:
    """An RTSP server on loopback (Debian's rtsp-server-perl: an encoder ANNOUNCEs and RECORDs a
    stream to its source port, viewers PLAY it from its client port); an encoder pushes the known
    clip's stream at its own pace and ``watch`` connects to the server as a viewer does."""
    import shutil
    import socket
    import subprocess

    if shutil.which("rtsp-server-perl") is None:
        pytest.skip("rtsp-server-perl is not installed (scripts/install-system-deps.sh installs it)")
    viewers, sources = _free_port(socket.SOCK_STREAM), _free_port(socket.SOCK_STREAM)
    server = subprocess.Popen(
        ["rtsp-server-perl", "--clientport", str(viewers), "--serverport", str(sources),
         "--client_listen_address", "127.0.0.1", "--source_listen_address", "127.0.0.1",
         "--rtp_start_port", str(_free_port(socket.SOCK_DGRAM))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    failed: list[BaseException] = []

    def push() -> None:
        try:
            write_stream(
                f"rtsp://127.0.0.1:{sources}/live/cam-5",
                _paced(stream_frames(11, 12, FPS, SIZE, [Splice(CLIP, 4, 8)]), FPS),
                fps=FPS,
                size=SIZE,
                container="rtsp",
            )
        except BaseException as exc:  # reported by the test
            failed.append(exc)

    try:
        _wait_bound(viewers, "tcp", listening=True)
        _wait_bound(sources, "tcp", listening=True)
        encoder = threading.Thread(target=push, daemon=True)
        encoder.start()
        deadline = time.monotonic() + 20
        while True:  # the viewer may PLAY once the encoder has ANNOUNCEd its stream
            code, alerts, stderr = watch(
                world["db"], f"rtsp://127.0.0.1:{viewers}/live/cam-5", "--hashset", "known-live",
                "--timeout", "3",
            )  # fmt: skip
            if alerts or "frames sampled" in stderr or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        encoder.join(30)
    finally:
        server.terminate()
        server.wait(10)
    assert not failed, failed
    # the relay does not tell its viewers that the source ended: the watch ends on the silence
    assert "frames sampled" in stderr, stderr
    assert [a["external_id"] for a in alerts] == ["clip-5"]
    assert len(alerts[0]["frames"]) >= K and all(f["signal"] == "vpdq" for f in alerts[0]["frames"])


@pytest.mark.parametrize("listen", [False, True], ids=["watch-calls", "watch-listens"])
def test_watch_srt_through_the_relay(world: dict[str, Any], listen: bool) -> None:
    """SRT on loopback: a sender (Debian's srt-live-transmit) takes the MPEG-TS stream with the
    known clip spliced in over UDP and sends it as SRT; ``watch srt://…`` connects to it (or, with
    ``--listen``, the sender connects to the watch). PyAV's FFmpeg has no libsrt, so the watch reads
    the stream through its own srt-live-transmit relay (``stream.relay``)."""
    import shutil
    import socket
    import subprocess

    if shutil.which("srt-live-transmit") is None:
        pytest.skip("srt-live-transmit is not installed (scripts/install-system-deps.sh installs srt-tools)")
    data = (world["site"] / "watched.ts").read_bytes()
    udp_in, srt_port = _free_port(socket.SOCK_DGRAM), _free_port(socket.SOCK_DGRAM)
    sender_cmd = [
        "srt-live-transmit", "-a:no", f"udp://127.0.0.1:{udp_in}",
        f"srt://127.0.0.1:{srt_port}?mode={'caller' if listen else 'listener'}",
    ]  # fmt: skip
    senders: list[subprocess.Popen[bytes]] = []
    connected = threading.Event()
    failed: list[BaseException] = []

    def start_sender() -> None:
        proc = subprocess.Popen(
            sender_cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        senders.append(proc)

        def follow() -> None:  # "Accepted SRT target connection" / "SRT target connected"
            assert proc.stderr is not None
            for line in proc.stderr:
                if b"connect" in line.lower():
                    connected.set()

        threading.Thread(target=follow, daemon=True).start()
        _wait_bound(udp_in, "udp")

    def send() -> None:
        try:
            if listen:  # the watch's relay listens: the sender calls it
                _wait_bound(srt_port, "udp")
                start_sender()
            assert connected.wait(30), "the SRT sender never connected"
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                for i in range(0, len(data), 1316):  # 7 TS packets a datagram, paced
                    s.sendto(data[i : i + 1316], ("127.0.0.1", udp_in))
                    time.sleep(0.0005)
            time.sleep(0.5)  # delivered (SRT's latency is 120 ms), then the sender hangs up
            senders[-1].terminate()
        except BaseException as exc:  # reported by the test
            failed.append(exc)

    try:
        if not listen:  # the sender listens first; the watch calls it
            start_sender()
            _wait_bound(srt_port, "udp")
        feeder = threading.Thread(target=send, daemon=True)
        feeder.start()
        url = f"srt://127.0.0.1:{srt_port}"
        code, alerts, stderr = watch(
            world["db"],
            url,
            *(["--listen"] if listen else []),
            "--hashset",
            "known-live",
            "--timeout",
            SILENCE,
        )
        feeder.join(30)
    finally:
        for proc in senders:
            proc.kill()
            proc.wait(10)
    assert not failed, failed
    assert code == 0, stderr
    assert [a["external_id"] for a in alerts] == ["clip-5"]
    assert all(2 - 0.01 <= f["stream_time"] < 10 for f in alerts[0]["frames"])


def _established(port: int) -> int:
    """TCP connections established to local ``port`` (``/proc/net/tcp``, state 01)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            count += int(local.rsplit(":", 1)[1], 16) == port and state == "01"
    return count


NGINX_RTMP = """load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 32; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        application live {{
            live on;
            record off;
        }}
    }}
}}
"""


def test_watch_rtmp_as_a_client_of_an_rtmp_server(world: dict[str, Any], tmp_path: Path) -> None:
    """An RTMP server on loopback (Debian's nginx with libnginx-mod-rtmp, run as a process of the
    test with its own configuration): ``watch rtmp://…/live/cam-7`` plays the stream as a viewer
    does, and an encoder (PyAV, flv) publishes the known clip's stream to it once the watch is
    connected. The server keeps a viewer waiting after the encoder ends (a live stream may come
    back): the watch ends on ``--timeout`` of silence (exit 2 after the summary)."""
    import shutil
    import socket
    import subprocess

    module = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
    if shutil.which("nginx") is None or not module.exists():
        pytest.skip("nginx with libnginx-mod-rtmp is not installed (scripts/install-system-deps.sh)")
    port = _free_port(socket.SOCK_STREAM)
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_RTMP.format(dir=tmp_path, port=port))
    server = subprocess.Popen(
        ["nginx", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"rtmp://127.0.0.1:{port}/live/cam-7"
    failed: list[BaseException] = []

    def publish() -> None:
        try:
            deadline = time.monotonic() + 30
            while not _established(port):  # the watch is there: it sees the stream from its start
                assert time.monotonic() < deadline, "the watch never connected to the RTMP server"
                time.sleep(0.02)
            time.sleep(0.3)  # its play command reached the server
            frames = stream_frames(11, 8, FPS, SIZE, [Splice(CLIP, 2, 5)])
            write_stream(url, _paced(frames, 4 * FPS), fps=FPS, size=SIZE, container="flv")  # 4x its pace
        except BaseException as exc:  # reported by the test
            failed.append(exc)

    try:
        _wait_bound(port, "tcp", listening=True)
        encoder = threading.Thread(target=publish, daemon=True)
        encoder.start()
        code, alerts, stderr = watch(world["db"], url, "--hashset", "known-live", "--timeout", SILENCE)
        encoder.join(30)
    finally:
        server.terminate()
        server.wait(10)
    assert not failed, failed
    assert code != 0 and "frames sampled" in stderr, stderr  # the summary, then the silence is an error
    assert [a["external_id"] for a in alerts] == ["clip-5"]
    assert all(2 - 0.01 <= f["stream_time"] < 7 for f in alerts[0]["frames"])
