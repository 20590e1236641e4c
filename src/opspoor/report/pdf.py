"""Print the case report to PDF with the system's headless Chromium (Debian's /usr/bin/chromium),
driven by Playwright. No browser is ever downloaded and the page may make no request: every
request other than the report file itself is aborted."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from opspoor.errors import ReportError

#: where Debian installs Chromium; ``$OPSPOOR_CHROMIUM`` names another
CHROMIUM = "/usr/bin/chromium"
#: headless, and nothing in the background that would reach the network
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def find_chromium() -> str | None:
    """The Chromium to print with: ``$OPSPOOR_CHROMIUM``, /usr/bin/chromium, or ``chromium`` on PATH."""
    for candidate in (os.environ.get("OPSPOOR_CHROMIUM"), CHROMIUM, shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def html_to_pdf(html: Path) -> bytes:
    """The PDF of a report file, printed as on paper (A4, its ``@media print`` styles)."""
    chromium = find_chromium()
    if chromium is None:
        raise ReportError("no Chromium found (install Debian's chromium, or set OPSPOOR_CHROMIUM)", str(html))
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import Route, sync_playwright
    except ImportError:
        raise ReportError("PDF export needs Playwright: pip install 'opspoor[pdf]'", str(html)) from None
    url = html.resolve().as_uri()

    def only_the_report(route: Route) -> None:
        if route.request.url == url:
            route.continue_()
        else:
            route.abort()

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=list(CHROMIUM_ARGS))
            try:
                page = browser.new_page()
                page.route("**/*", only_the_report)
                page.goto(url, wait_until="load")
                page.emulate_media(media="print")
                return page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
            finally:
                browser.close()
    except PlaywrightError as exc:
        raise ReportError(
            f"Chromium could not print the report: {exc.message.splitlines()[0]}", str(html)
        ) from exc


def write_pdf(html: Path, out: Path) -> int:
    """Write the report's PDF to ``out`` (owner-only, via a temporary name); returns its size."""
    data = html_to_pdf(html)
    tmp = out.with_name(out.name + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, out)
    return len(data)
