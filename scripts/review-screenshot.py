"""Take docs/review.png: a group of a case in the review workspace, in headless Chromium (the
system's), served by the real ``opspoor review`` command; the second file held revealed.

python scripts/review-screenshot.py demo/case docs/review.png [GROUP]
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

from opspoor.report.pdf import CHROMIUM_ARGS, find_chromium


def main() -> None:
    case, out = Path(sys.argv[1]), Path(sys.argv[2])
    group = sys.argv[3] if len(sys.argv) > 3 else "G0001"
    chromium = find_chromium()
    if chromium is None:
        sys.exit("no Chromium found (scripts/install-system-deps.sh installs it)")
    proc = subprocess.Popen(
        [sys.executable, "-m", "opspoor", "review", str(case), "--reviewer", "analyst"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = None
    for _ in range(5):
        m = re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", proc.stdout.readline())
        if m:
            url = m.group(0)
            break
    try:
        if url is None:
            sys.exit("opspoor review printed no URL")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=list(CHROMIUM_ARGS))
            page = browser.new_page(viewport={"width": 1200, "height": 760})
            page.goto(url, wait_until="load")
            page.goto(url.split("/?")[0] + f"/group/{group}", wait_until="networkidle")
            page.keyboard.press("j")
            page.keyboard.down("Space")
            page.wait_for_selector('.item[data-index="1"] img.revealed')
            page.wait_for_timeout(300)
            page.screenshot(path=str(out))
            page.keyboard.up("Space")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
