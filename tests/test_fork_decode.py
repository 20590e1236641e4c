"""A process that scaled video frames itself can still fork workers that decode video.

PyAV keeps a swscale context per thread; a child forked after the parent's thread used it, with its
slice threads, hung for ever at its first scale (the CI suite hung in scan workers this way). Each
check runs in a fresh interpreter under a timeout, so a regression fails here instead of hanging.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from subprocess import PIPE

import pytest

TIMEOUT = 120  # seconds; the work below takes a few


def run_fresh(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "check.py"
    path.write_text(textwrap.dedent(script))
    # a session of its own, so that a hang takes its forked workers down with it
    with subprocess.Popen(
        [sys.executable, str(path)], stdout=PIPE, stderr=PIPE, text=True, cwd=tmp_path, start_new_session=True
    ) as proc:
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"the child process hung (no exit within {TIMEOUT} s): a forked decoder deadlocked")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


PARENT_SCALES_FIRST = """
    import numpy as np, av
    frame = av.VideoFrame.from_ndarray(
        np.random.default_rng(1).integers(0, 255, (360, 640, 3), dtype=np.uint8), format="rgb24"
    ).reformat(format="yuv420p")
    frame.to_ndarray(format="rgb24", width=320, height=180)  # PyAV's own per-thread context, threaded
"""


def test_a_child_forked_after_the_parent_scaled_a_frame_scales_its_own(tmp_path: Path) -> None:
    done = run_fresh(
        PARENT_SCALES_FIRST
        + """
    import os, signal
    from opspoor.media.frames import frame_array
    pid = os.fork()
    if pid == 0:
        signal.alarm(60)  # a hung child dies instead of leaving the test waiting
        out = frame_array(frame, format="rgb24", width=100, height=50)
        os._exit(0 if out.shape == (50, 100, 3) else 3)
    _, status = os.waitpid(pid, 0)
    print("child", os.waitstatus_to_exitcode(status))
    """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "child 0", "the forked child did not scale its frame (-14: it hung)"


def test_a_scan_of_a_video_after_the_process_decoded_one_itself_finishes(tmp_path: Path) -> None:
    done = run_fresh(
        PARENT_SCALES_FIRST
        + """
    import json
    from pathlib import Path
    from opspoor.casefile.scan import scan_case
    from opspoor.demo.videos import generate_video
    from opspoor.hashsets.model import Category, Entry
    from opspoor.store import import_entries, open_store
    from opspoor.triage.config import ScanConfig
    ev = Path("dump"); ev.mkdir()
    generate_video(ev / "clip.mp4", seed=5, seconds=3, fps=10, size=(160, 120))
    db = "sqlite:///store.sqlite"
    with open_store(db) as store:  # a set that holds nothing of this case
        import_entries(store, "known", [Entry({"md5": "0" * 32}, Category("us-cat", "1"))], kind="known")
    cfg = ScanConfig(sources=[ev], hashsets=["known"], case_dir=Path("case"), db_url=db, workers=2)
    result = scan_case(cfg)
    rows = [json.loads(x) for x in Path("case/files.jsonl").read_text().splitlines()]
    print(json.dumps({"reconciled": result.reconciled, "vpdq_frames": [len(r["vpdq_frames"]) for r in rows]}))
    """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.strip().splitlines()[-1]
    assert out == '{"reconciled": true, "vpdq_frames": [3]}', out
