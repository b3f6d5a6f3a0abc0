"""Headless Chromium, to see a report page as a person would."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    """Headless Chromium (Debian package `chromium`, installed by scripts/setup.sh)."""
    binary = shutil.which('chromium')
    assert binary, 'chromium is not installed: run scripts/setup.sh as root, or apt-get install chromium'
    flags = ['--headless', '--disable-gpu', '--hide-scrollbars', '--no-first-run',
             f'--user-data-dir={tmp / "chromium-profile"}']
    if os.geteuid() == 0:
        flags.append('--no-sandbox')  # Chromium's sandbox refuses to run as root
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=120, check=True)
