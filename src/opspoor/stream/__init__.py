"""stream box of opspoor: live streams matched while they run (DESIGN.md §1, "watch").

``pull`` (frames from an HLS/RTSP/RTMP/SRT/MPEG-TS URL or a file played at real-time pace, sampled
one a second plus scene changes; SRT through ``relay`` when FFmpeg has no libsrt), ``watcher``
(frames hashed with PDQ and robust query hashes, matched against known images and known videos'
frames; ``warm_up`` before the first stream), ``alerts`` (k of the last n frames on one known entry
raise an alert), ``sinks`` (JSON lines, webhook, the optional file of matching frames).
The command line's ``opspoor watch`` and the service's stream sessions both use it. Knows no HTTP
routes and stores nothing of a stream by itself.
"""

from opspoor.stream.alerts import DEFAULT_K, DEFAULT_N, Alert, AlertWindow, FrameHit, KnownEntry
from opspoor.stream.watcher import (
    ROBUST_MODES,
    HashedFrame,
    StreamWatcher,
    hash_frame,
    hashed_value,
    match_frames,
    warm_up,
)

__all__ = [
    "DEFAULT_K",
    "DEFAULT_N",
    "ROBUST_MODES",
    "Alert",
    "AlertWindow",
    "FrameHit",
    "HashedFrame",
    "KnownEntry",
    "StreamWatcher",
    "hash_frame",
    "hashed_value",
    "match_frames",
    "warm_up",
]
