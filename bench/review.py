"""How little a reviewer has to see, and how fast the next group comes (docs/review.md, docs/benchmarks.md).

Part 1, on the demo case (``python -m opspoor.demo``: benign generated pictures and videos, scanned
against its two demo sets), served by the real ``opspoor review`` command and driven in headless
Chromium by keyboard alone: ``n`` opens the first group nobody has categorised; in each group the
reviewer holds ``space`` once (one reveal, of the selected first file) and presses ``Shift``+digit
(the whole group, then on to the next). It reports the files revealed ÷ media files next to new
groups ÷ media files, and the keystrokes spent categorising next to groups + 1.
Goals: views needed ÷ media files <= new groups ÷ media files; categorising keystrokes <= groups + 1.

Part 2, at scale: a synthetic case of ``--files`` records in ``--groups`` groups (no pictures: a
fixed veiled thumbnail per file). Server times in-process (FastAPI's TestClient) over 200 groups,
interleaved with the anchor (a refused request, the cheapest answer the same app gives): the group
as a page (``/next`` + the page), the part of the next group the page fetches ahead
(``/next?part=1``), and ``Shift``+digit's requests (the decision, then the next undecided group,
named only). Then, in the same run, the browser: the real ``opspoor review`` in headless Chromium,
``--rounds`` rounds of ``n`` (after a ``--dwell``), ``n`` at once, ``Shift+3``, and a full page load
of the next group (the anchor: how ``n`` worked before), each measured from the key's event to the
first frame after the group is in the page (the page's User Timing measure), p50/p95; the load
average before, between and after.
Goal: p95 < 150 ms.

Usage: ``python bench/review.py [--small] [--files 100000] [--groups 10000] [--rounds 40] [--dwell 300]
[--skip-demo] [--skip-scale]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402

from opspoor.media.thumbs import safe_thumbnail  # noqa: E402
from opspoor.report.pdf import CHROMIUM_ARGS, find_chromium  # noqa: E402
from opspoor.review.caseview import CaseView  # noqa: E402
from opspoor.review.decisions import ReviewDB  # noqa: E402
from opspoor.triage.case import CaseDB  # noqa: E402
from setup_info import setup_line  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}


def serve(case_dir: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "opspoor", "review", str(case_dir), "--reviewer", "bench"],
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert proc.stdout is not None
    for _ in range(5):
        m = re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", proc.stdout.readline())
        if m:
            return proc, m.group(0)
    proc.kill()
    sys.exit("opspoor review printed no URL")


def demo_exposure(small: bool) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="opspoor-bench-review-"))
    args = [sys.executable, "-m", "opspoor.demo", "--dir", str(tmp / "demo")] + (["--small"] if small else [])
    subprocess.run(args, check=True, env=ENV, stdout=subprocess.DEVNULL)
    case_dir = tmp / "demo" / "case"
    summary = json.loads((case_dir / "summary.json").read_text())
    proc, url = serve(case_dir)
    keys = 0
    groups_seen = 0
    try:
        with sync_playwright() as p:
            chromium = find_chromium()
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=list(CHROMIUM_ARGS))
            page = browser.new_page()
            page.goto(url, wait_until="load")
            with page.expect_navigation():
                page.keyboard.press("n")
                keys += 1
            while "/group/" in page.url:
                groups_seen += 1
                with page.expect_response(lambda r: "/reveal" in r.url):
                    page.keyboard.down("Space")  # one look, at the group's first file
                page.wait_for_selector(".item img.revealed")
                page.keyboard.up("Space")
                page.wait_for_selector('.item[data-index="0"] img.veiled')
                with page.expect_navigation():
                    page.keyboard.press("Shift+Digit3")
                    keys += 1
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    db = ReviewDB.for_case(case_dir)
    exposure = db.exposure()
    db.close()
    view = CaseView(case_dir)
    media = view.counts()["media"]  # image and video files, whatever their status
    view.close()
    n_groups = summary["groups"]["count"]
    return {
        "files": summary["files_in"],
        "new_files": summary["by_status"]["new"],
        "known_files": summary["by_status"]["known"],
        "groups": n_groups,
        "groups_visited": groups_seen,
        "revealed_files": exposure["files"],
        "media_files": media,
        "views_per_media": exposure["files"] / media,
        "groups_per_media": n_groups / media,
        "categorising_keys": keys,
        "groups_plus_one": n_groups + 1,
    }


def synthetic_case(case_dir: Path, n_files: int, n_groups: int) -> None:
    rng = np.random.default_rng(7)
    thumb = safe_thumbnail(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    case = CaseDB(case_dir)
    rows = []
    for i in range(n_files):
        md5 = rng.bytes(16).hex()
        rec = {"path": f"dump/f{i:07d}.jpg", "size": 1000, "type": "jpeg", "md5": md5, "sha1": None,
               "sha256": None, "status": "new", "error": None, "pdq": None, "pdq_quality": None,
               "vpdq_frames": None, "matches": [], "group": f"G{i % n_groups:05d}", "exif": None}  # fmt: skip
        rows.append((i, rec, thumb))
        if len(rows) == 20_000:
            case.add_files(rows)
            rows = []
    case.add_files(rows)
    groups = []
    for g in range(n_groups):
        paths = [f"dump/f{i:07d}.jpg" for i in range(g, n_files, n_groups)]
        info = {"size": len(paths), "paths": paths, "cameras": [], "serials": [], "gps": [],
                "date_first": None, "date_last": None, "types": [["jpeg", len(paths)]],
                "why_ranked": ["no location clue"], "why_together": ["synthetic"]}  # fmt: skip
        groups.append((f"G{g:05d}", g + 1, info))
    case.replace_groups(groups)
    case.close()


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1)


MEASURE = "opspoor:group-on-screen"
PAINTED = "bench:first-frame-after-load"
ON_SCREEN = f"""() => performance.getEntriesByName('{MEASURE}').map(
    m => ({{ms: m.duration, key: m.detail.key, group: m.detail.group}}))"""


def browser_next(
    base: str, url: str, start: str, rounds: int, dwell_ms: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Interleaved, in one Chromium page: ``n`` after a dwell (the next group fetched ahead), ``n``
    at once (skimming: the fetch ahead may still be under way), ``Shift+3`` (the group decided, then
    the next undecided group: a claim), and the anchor, a full page load of the next group as ``n``
    did before (from the navigation's start to the first frame after its load event; and to the
    load event, as measured before the swap existed). The key measures are the page's own
    ("opspoor:group-on-screen": the key's event to the first frame after the swap)."""
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {
        "n": [],
        "n_at_once": [],
        "shift": [],
        "full_page": [],
        "full_page_load_event": [],
    }
    # where a full page's time goes (Navigation Timing): /next answered (the redirect), the page
    # received, the new document parsed and its script run, then its pictures and the load event
    phases: dict[str, list[float]] = {"redirect": [], "page": [], "parse": [], "load": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium(), headless=True, args=list(CHROMIUM_ARGS))
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        # a new page's "on screen": the first frame after its load event (as the swap's measure ends)
        page.add_init_script(
            "addEventListener('load', () => requestAnimationFrame(() => setTimeout(() =>"
            f" performance.mark('{PAINTED}'), 0)))"
        )
        page.goto(url, wait_until="load")

        def ahead() -> Any:  # the fetch of the next group's part, made once a group is shown
            return page.expect_response(lambda r: "/next?part=1&after=" in r.url)

        def measured(before: int) -> dict[str, Any]:
            page.wait_for_function(f"performance.getEntriesByName('{MEASURE}').length > {before}")
            return page.evaluate(ON_SCREEN)[-1]  # type: ignore[no-any-return]

        with ahead():
            page.goto(f"{base}/group/{start}", wait_until="load")
        for _ in range(rounds):
            # A: n after a dwell
            page.wait_for_timeout(dwell_ms)
            count = len(page.evaluate(ON_SCREEN))
            with ahead():
                page.keyboard.press("n")
            out["n"].append(measured(count)["ms"])
            # B: n at once, then n again right after that group is on screen
            count += 1
            page.wait_for_timeout(dwell_ms)
            page.keyboard.press("n")
            measured(count)
            with ahead():
                page.keyboard.press("n")
            out["n_at_once"].append(measured(count + 1)["ms"])
            # C: Shift+3 after a dwell (decide the group, on to the next undecided one)
            count += 2
            page.wait_for_timeout(dwell_ms)
            with ahead():
                page.keyboard.press("Shift+Digit3")
            out["shift"].append(measured(count)["ms"])
            # anchor: the next group as a new page (what n did before), from the navigation's start
            page.wait_for_timeout(dwell_ms)
            here = page.evaluate("location.pathname").rsplit("/", 1)[-1]
            with ahead(), page.expect_navigation(wait_until="load"):
                page.evaluate(f"location.href = '/next?after={here}'")
            page.wait_for_function(f"performance.getEntriesByName('{PAINTED}').length > 0")
            nav = page.evaluate("performance.getEntriesByType('navigation')[0].toJSON()")
            out["full_page"].append(page.evaluate(f"performance.getEntriesByName('{PAINTED}')[0].startTime"))
            out["full_page_load_event"].append(float(nav["loadEventEnd"]))
            phases["redirect"].append(nav["redirectEnd"] - nav["startTime"])
            phases["page"].append(nav["responseEnd"] - nav["redirectEnd"])
            phases["parse"].append(nav["domInteractive"] - nav["responseEnd"])
            phases["load"].append(nav["loadEventEnd"] - nav["domInteractive"])
        browser.close()
    return out, phases


def scale(n_files: int, n_groups: int, rounds: int, dwell_ms: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from opspoor.review.web import ReviewConfig, create_review_app

    tmp = Path(tempfile.mkdtemp(prefix="opspoor-bench-review-scale-"))
    t0 = time.perf_counter()
    synthetic_case(tmp / "case", n_files, n_groups)
    built = time.perf_counter() - t0
    t0 = time.perf_counter()
    cfg = ReviewConfig(case_dir=tmp / "case", reviewer="bench")
    app = create_review_app(cfg)
    opened = time.perf_counter() - t0
    client = TestClient(app, base_url="http://127.0.0.1")
    refused = TestClient(app, base_url="http://127.0.0.1")
    client.get(f"/?token={cfg.secret}")
    load_before = os.getloadavg()
    rng = np.random.default_rng(3)
    ids = [f"G{g:05d}" for g in rng.choice(n_groups - 1, 200, replace=False)]
    # half the groups before each asked one are decided already, as in a review under way
    for gid in ids[:100]:
        client.post("/api/decide", json={"group": gid, "item": None, "key": "3"})
    per_group = n_files // n_groups
    server: dict[str, list[float]] = {"anchor": [], "page": [], "part": [], "shift": []}
    for k, gid in enumerate(ids):  # interleaved: anchor, page, part, shift, anchor, …
        t = time.perf_counter()
        refused.get("/queue")  # refused: no cookie (the cheapest answer the same app gives)
        server["anchor"].append(time.perf_counter() - t)
        # the next undecided group as a page (the overview's n): /next, then the page
        t = time.perf_counter()
        r = client.get(f"/next?after={gid}&undecided=1", follow_redirects=False)
        page = client.get(r.headers["location"])
        assert page.status_code == 200 and page.text.count("data:image/jpeg") == per_group
        server["page"].append(time.perf_counter() - t)
        # what the page fetches ahead for n: the next group's part, its pictures inside
        t = time.perf_counter()
        part = client.get(f"/next?part=1&after={gid}")
        assert part.status_code == 200 and part.text.count("data:image/jpeg") == per_group
        server["part"].append(time.perf_counter() - t)
        # Shift+digit: the decision, then the next undecided group, named only (fetched ahead)
        if k >= 100:
            t = time.perf_counter()
            client.post("/api/decide", json={"group": gid, "item": None, "key": "3"})
            nxt = client.get(f"/next?part=1&undecided=1&after={gid}&have={part.headers['X-Group']}")
            assert nxt.status_code == 200 and nxt.headers["X-Group"]
            server["shift"].append(time.perf_counter() - t)
    ms = {k: [x * 1000 for x in v] for k, v in server.items()}
    load_server = os.getloadavg()
    proc, url = serve(tmp / "case")
    try:
        b, phases = browser_next(url.split("/?")[0], url, f"G{n_groups // 2:05d}", rounds, dwell_ms)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    load_after = os.getloadavg()
    anchor_ms = float(np.median(ms["anchor"]))
    full_p95 = float(np.percentile(b["full_page"], 95))
    return {
        "files": n_files,
        "groups": n_groups,
        "synthetic_case_seconds": round(built, 1),
        "app_open_seconds": round(opened, 2),
        "load_average_1min": [round(load_before[0], 2), round(load_server[0], 2), round(load_after[0], 2)],
        "anchor_refused_ms_p50": round(anchor_ms, 2),
        **{f"server_{k}_ms_p50": _pct(v, 50) for k, v in ms.items() if k != "anchor"},
        **{f"server_{k}_ms_p95": _pct(v, 95) for k, v in ms.items() if k != "anchor"},
        "server_page_p95_over_anchor": round(float(np.percentile(ms["page"], 95)) / anchor_ms, 1),
        "browser_rounds": rounds,
        "browser_dwell_ms": dwell_ms,
        **{f"browser_{k}_ms_p50": _pct(v, 50) for k, v in b.items()},
        **{f"browser_{k}_ms_p95": _pct(v, 95) for k, v in b.items()},
        **{f"browser_full_page_{k}_ms_p50": _pct(v, 50) for k, v in phases.items()},
        "browser_full_page_p95_over_n_p95": round(full_p95 / float(np.percentile(b["n"], 95)), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="the small demo case")
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--groups", type=int, default=10_000)
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--rounds", type=int, default=40, help="browser rounds (n, n at once, Shift+3, anchor)")
    ap.add_argument("--dwell", type=int, default=300, help="ms the reviewer looks at a group before a key")
    a = ap.parse_args()
    print("setup:", setup_line(), flush=True)
    if not a.skip_demo:
        d = demo_exposure(a.small)
        print("demo case:", json.dumps(d, indent=1), flush=True)
        ok1 = d["views_per_media"] <= d["groups_per_media"]
        ok2 = d["categorising_keys"] <= d["groups_plus_one"]
        print(f"goal views/media <= groups/media: {'met' if ok1 else 'NOT met'}; "
              f"keys <= groups + 1: {'met' if ok2 else 'NOT met'}")  # fmt: skip
    if not a.skip_scale:
        s = scale(a.files, a.groups, a.rounds, a.dwell)
        print("scale:", json.dumps(s, indent=1), flush=True)
        for k in ("server_page_ms_p95", "server_shift_ms_p95", "browser_n_ms_p95", "browser_shift_ms_p95"):
            print(f"goal p95 < 150 ms, {k}: {'met' if s[k] < 150 else 'NOT met'}")


if __name__ == "__main__":
    main()
