"""The `facesym` command line as the tests run it: this interpreter, the checkout's code."""

from __future__ import annotations

import subprocess
import sys


def facesym(*args: object, check: bool = False, timeout: float = 300.0, **options: object
            ) -> subprocess.CompletedProcess:
    """Run `facesym ARGS...`; with check, the command must succeed (its stderr is the failure message)."""
    result = subprocess.run([sys.executable, '-m', 'facesym_ros.cli', *map(str, args)], capture_output=True,
                            text=True, timeout=timeout, check=False, **options)
    if check:
        assert result.returncode == 0, result.stderr
    return result
