"""report.pdf: a session's report.html printed by headless Chromium, for the patient record.

`write_report_pdf(html)` is the one PDF writer: `facesym report --pdf`,
`facesym session --pdf` and any other program (a browser console's server)
call it. Playwright drives the system's Chromium (Debian's
/usr/bin/chromium, or $FACESYM_CHROMIUM); no browser is ever downloaded.
Every page carries the subject id, session and date (read from the page's
facesym-* meta tags) in its header, and the page number in its footer.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CHROMIUM_ENV = 'FACESYM_CHROMIUM'
PAPERS = ('A4', 'Letter')
REPORT_PDF = 'report.pdf'
# Headless, offline, and quiet: no GPU, no background fetches, no updates, no first-run pages.
CHROMIUM_ARGS = ('--disable-gpu', '--disable-background-networking', '--disable-component-update',
                 '--no-first-run')
MARGIN = {'top': '16mm', 'bottom': '14mm', 'left': '12mm', 'right': '12mm'}
HEADER_META = ('facesym-subject', 'facesym-session', 'facesym-date')


class NoChromiumError(ValueError):
    """No Chromium to print with; the message is one line."""


def find_chromium() -> str | None:
    """The Chromium to drive: $FACESYM_CHROMIUM if set (it must exist), else `chromium` on the PATH."""
    chosen = os.environ.get(CHROMIUM_ENV)
    if chosen:
        return chosen if os.access(chosen, os.X_OK) else None
    return shutil.which('chromium')


@contextlib.contextmanager
def chromium_browser(executable: str | None = None) -> Iterator:
    """A Playwright Browser on the system Chromium (closed on exit); NoChromiumError when there is none."""
    from playwright.sync_api import Error, sync_playwright

    binary = executable or find_chromium()
    if not binary:
        chosen = os.environ.get(CHROMIUM_ENV)
        raise NoChromiumError(f'{CHROMIUM_ENV}={chosen} is not a program' if chosen else
                              f'no Chromium found (install Debian\'s chromium, or set {CHROMIUM_ENV})')
    args = [*CHROMIUM_ARGS, *(['--no-sandbox'] if os.geteuid() == 0 else [])]  # its sandbox refuses root
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=binary, args=args, headless=True)
        except Error as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise NoChromiumError(f'{binary} did not start: {first}') from None
        try:
            yield browser
        finally:
            browser.close()


def _header(subject: str, session: str, date: str) -> str:
    text = html.escape(f'facesym session report · subject {subject} · session {session} · {date}')
    return (f'<div style="font-size:8pt; width:100%; margin:0 12mm; font-family:sans-serif; color:#333;">'
            f'{text}</div>')


FOOTER = ('<div style="font-size:8pt; width:100%; margin:0 12mm; text-align:right; font-family:sans-serif; '
          'color:#333;">page <span class="pageNumber"></span> of <span class="totalPages"></span></div>')


def _print(page_path: Path, pdf_path: Path, paper: str, executable: str | None) -> Path:
    with chromium_browser(executable) as browser:
        page = browser.new_page()
        page.goto(page_path.resolve().as_uri(), wait_until='load')
        meta = page.evaluate('names => names.map(n => document.querySelector(`meta[name="${n}"]`)?.content ?? "")',
                             list(HEADER_META))
        page.emulate_media(media='print')
        page.pdf(path=str(pdf_path), format=paper, print_background=True, display_header_footer=True,
                 header_template=_header(*meta), footer_template=FOOTER, margin=MARGIN)
    return pdf_path


def write_report_pdf(page: str | Path, pdf: str | Path | None = None, *, paper: str = 'A4',
                     executable: str | None = None) -> Path:
    """Print a report.html to PDF (default: report.pdf beside it) on A4 or Letter; returns the PDF's path.

    Raises NoChromiumError (a ValueError, one line) when there is no Chromium to print with. Safe to call from
    inside a running asyncio loop: the browser is then driven from a worker thread.
    """
    if paper not in PAPERS:
        raise ValueError(f'paper must be one of {", ".join(PAPERS)}, got {paper!r}')
    page = Path(page)
    if not page.is_file():
        raise ValueError(f'{page}: no report page to print')
    target = Path(pdf) if pdf else page.with_name(REPORT_PDF)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _print(page, target, paper, executable)
    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API refuses to run on an asyncio loop's thread
        return pool.submit(_print, page, target, paper, executable).result()
