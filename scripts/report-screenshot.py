"""Take docs/report.png: the top of a case report in headless Chromium (the system's, offline).

python scripts/report-screenshot.py demo/case/report.html docs/report.png
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import Route, sync_playwright

from opspoor.report.pdf import CHROMIUM_ARGS, find_chromium


def main() -> None:
    html, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    height = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    url = html.as_uri()
    chromium = find_chromium()
    if chromium is None:
        sys.exit("no Chromium found (scripts/install-system-deps.sh installs it)")

    def only_the_report(route: Route) -> None:
        route.continue_() if route.request.url == url else route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=list(CHROMIUM_ARGS))
        page = browser.new_page(viewport={"width": 1200, "height": height})
        page.route("**/*", only_the_report)
        page.goto(url, wait_until="load")
        page.screenshot(path=str(out))
        browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
