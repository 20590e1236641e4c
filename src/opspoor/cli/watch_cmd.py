"""``opspoor watch``: match a live stream against hash sets while it runs; alerts as JSON lines."""

from __future__ import annotations

import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from opspoor.cli.app import DbOption, app, err
from opspoor.cli.options import DistanceOption
from opspoor.errors import SignalError, StreamError


class StreamRobust(StrEnum):
    off = "off"
    border = "border"
    full = "full"


@app.command("watch")
def watch(
    source: Annotated[
        str,
        typer.Argument(
            help="An HLS playlist URL, an rtsp://, rtmp://, srt://, tcp:// or udp:// stream, or a "
            "video file (played at real-time pace).",
            metavar="SOURCE",
        ),
    ],
    hashset: Annotated[
        list[str] | None, typer.Option("--hashset", metavar="NAME", help="Hash set to match (repeatable).")
    ] = None,
    k: Annotated[
        int,
        typer.Option(
            "--k", min=1, metavar="K", help="Alert when K of the last N sampled frames match one entry."
        ),
    ] = 3,
    n: Annotated[int, typer.Option("--n", min=1, metavar="N", help="The window of sampled frames.")] = 5,
    every: Annotated[
        float, typer.Option("--every", min=0.04, metavar="SECONDS", help="Sample a frame this often.")
    ] = 1.0,
    scene: Annotated[
        float,
        typer.Option(
            "--scene",
            min=0.0,
            max=1.0,
            metavar="THRESHOLD",
            help="Also sample a frame that differs this much from the one before (0-1; 0: off).",
        ),
    ] = 0.12,
    robust: Annotated[
        StreamRobust,
        typer.Option(
            "--robust",
            help="Extra query hashes per frame: border = also without letterbox bars and with each "
            "corner masked (a logo); full = also pictures inside a larger frame (slower); off = plain PDQ.",
        ),
    ] = StreamRobust.border,
    robust_every: Annotated[
        int,
        typer.Option(
            "--robust-every",
            min=1,
            metavar="N",
            help="Make all the robust query hashes on every Nth sampled frame (and on scene changes, "
            "and while the stream matches); plain PDQ on the others. 1: on every frame.",
        ),
    ] = 4,
    max_lag: Annotated[
        float,
        typer.Option(
            "--max-lag",
            min=0.05,
            metavar="SECONDS",
            help="When hashing falls behind, drop sampled frames that waited longer than this "
            "(oldest first; counted and reported).",
        ),
    ] = 0.8,
    distance: DistanceOption = None,
    webhook: Annotated[
        str | None, typer.Option("--webhook", metavar="URL", help="Also POST each alert as JSON to this URL.")
    ] = None,
    keep: Annotated[
        Path | None,
        typer.Option(
            "--keep",
            metavar="FILE",
            help="Append the matching frames' hashes and stream times to FILE (owner-only); "
            "without it nothing of the stream is stored.",
        ),
    ] = None,
    realtime: Annotated[
        bool, typer.Option("--realtime/--no-realtime", help="Play a video file at its own pace.")
    ] = True,
    input_format: Annotated[
        str | None,
        typer.Option(
            "--format", metavar="NAME", help="FFmpeg input format, e.g. mpegts for a raw udp:// stream."
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", min=0.1, metavar="SECONDS", help="Give up when the source is silent this long."
        ),
    ] = 10.0,
    listen: Annotated[
        bool,
        typer.Option(
            "--listen",
            help="Wait at the rtmp://, rtsp://, srt://, tcp:// or http:// URL for a sender to push the "
            "stream (an encoder's output), rather than connect to a server there.",
        ),
    ] = False,
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="TEXT", help="The stream's name in alerts (default: SOURCE)."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Watch a live stream and alert when it shows known material.

    Samples one frame a second (and scene changes), hashes each with PDQ, matches it against the
    known images and the frames of known videos, and prints an alert as one JSON line when K of
    the last N sampled frames match the same entry (docs/live.md).
    """
    from opspoor.matching import Matcher
    from opspoor.media.heap import keep_large_buffers
    from opspoor.store import open_store
    from opspoor.stream import StreamWatcher, hash_frame, warm_up
    from opspoor.stream.pull import check_source, is_url, listen_options, sample_stream
    from opspoor.stream.schedule import read_ahead
    from opspoor.stream.sinks import KeptMatches, Webhook, write_alert

    if not hashset:
        raise SignalError("name at least one --hashset")
    if k > n:
        raise SignalError(f"--k {k} is more than the window --n {n}")
    if check_source(source) is not None and listen:  # before the index loads: one line at once
        raise StreamError("--listen needs a stream URL (rtmp, rtsp, srt, tcp, http) to listen at", source)
    if listen:
        listen_options(source)
    label = name or source
    keep_large_buffers()  # each frame's PDQs reuse freed buffers, not fresh pages (media.heap)
    store = open_store(db, create=False)
    matcher = Matcher.from_store(store, hashset, distance, cache=True)
    # before the source is opened (or listened at): the first frame is not kept waiting for the
    # compiled kernels and the first search of the index
    warm_up([matcher], robust=robust.value)
    hook = Webhook(webhook) if webhook else None
    kept = KeptMatches(keep, label) if keep is not None else None
    watcher = StreamWatcher(label, k=k, n=n, keep=kept, robust_every=robust_every)
    told = [0.0]

    def dropped(count: int) -> None:  # never silent, at most one line in 10 s
        watcher.dropped = count
        if time.monotonic() - told[0] >= 10:
            told[0] = time.monotonic()
            err.print(
                f"{label}: behind: {count:,} sampled frame{'' if count == 1 else 's'} dropped so far "
                f"(waited more than {max_lag:g} s; oldest first)",
                markup=False,
                highlight=False,
            )

    broke: StreamError | None = None
    stopped = False
    try:
        frames = sample_stream(
            source,
            every=every,
            scene=scene or None,
            realtime=realtime,
            timeout=timeout,
            input_format=input_format,
            listen=listen,
        )
        if realtime or is_url(source):  # a live pace: read ahead, drop what waited too long
            frames = read_ahead(
                frames, lambda f: (f.stream_time, f.decoded_at), max_lag=max_lag, on_drop=dropped
            )
        for frame in frames:
            hashed = hash_frame(
                frame.rgb,
                frame.stream_time,
                robust=robust.value,
                decoded_at=frame.decoded_at,
                only=watcher.plan(frame.reason),
            )
            for alert in watcher.watch(matcher, hashed):
                write_alert(sys.stdout, alert)
                if hook is not None:
                    hook.post(alert.to_json())
    except StreamError as exc:
        if watcher.frames == 0:
            raise
        broke = exc
    except KeyboardInterrupt:  # the usual end of watching a live stream: say what was seen
        stopped = True
    finally:
        if hook is not None:
            hook.close()
        if kept is not None:
            kept.close()
        store.close()
    err.print(
        f"{label}: {watcher.frames:,} frames sampled, {watcher.matched:,} matched, "
        f"{watcher.alerts:,} alert{'' if watcher.alerts == 1 else 's'}"
        + (f", {watcher.dropped:,} dropped (hashing behind)" if watcher.dropped else ""),
        markup=False,
        highlight=False,
    )
    if broke is not None:
        raise broke
    if stopped:
        raise typer.Exit(130)
