"""Running the bag commands in tests: the `facesym` command line and a `facesym record` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from helpers.cli import facesym


def score_json(bag: Path, tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / f'{bag.name}-score.json'
    result = facesym('score-bag', bag, '--json', out, '--quiet', *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text())


def start_recorder(bag: Path, *args: str, **popen: object) -> subprocess.Popen:
    """`facesym record BAG ARGS...`, its stdout and stderr together on a pipe (Popen options in `popen`)."""
    return subprocess.Popen([sys.executable, '-u', '-m', 'facesym_ros.cli', 'record', str(bag), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def wait_for_line(process: subprocess.Popen, text: str, timeout: float = 60.0) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    os.set_blocking(process.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line:
            lines.append(line)
            if text in line:
                return lines
        else:
            time.sleep(0.05)
    raise AssertionError(f'recorder never printed {text!r}: {"".join(lines)}')
