"""`facesym console` as the tests run it (a real process on a free port), and Chromium under Playwright."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = ['--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run']
ADDRESS = re.compile(r'operator page (http://\S+?)/ ')


@dataclass
class Console:
    url: str
    process: subprocess.Popen
    output: Path
    lines: list[str] = field(default_factory=list)

    @property
    def log(self) -> str:
        return ''.join(self.lines)


@contextmanager
def running_console(output: Path, *args: object, timeout: float = 60.0) -> Iterator[Console]:
    """Start `facesym console --port 0 --output OUTPUT ARGS...`; yields once it serves; Ctrl-C at the end."""
    process = subprocess.Popen([sys.executable, '-m', 'facesym_ros.cli', 'console', '--port', '0', '--output',
                                str(output), *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, '')), daemon=True).start()
    deadline = time.monotonic() + timeout
    url = None
    while url is None and time.monotonic() < deadline and process.poll() is None:
        found = [ADDRESS.search(line) for line in list(lines)]
        url = next((match.group(1) for match in found if match), None)
        time.sleep(0.1)
    console = Console(url or '', process, output, lines)
    try:
        assert url, f'the console did not start: {console.log}'
        yield console
    except BaseException:
        print(f'the console\'s output:\n{console.log}')  # shown with the failure
        raise
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def chromium_browser() -> Iterator[object]:
    """Debian's Chromium under Playwright (nothing is downloaded), headless."""
    from playwright.sync_api import sync_playwright

    arguments = [*CHROMIUM_ARGS, *(['--no-sandbox'] if os.geteuid() == 0 else [])]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=arguments)
        try:
            yield browser
        finally:
            browser.close()
