"""Which processes are alive, by /proc: a launch's node processes, and that none is left after a stop."""

from __future__ import annotations

import time
from pathlib import Path


def _state(pid: int) -> tuple[str, int] | None:
    """(state letter, parent pid) of a process, None once it is gone."""
    try:
        fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def children(pid: int) -> set[int]:
    """The live (not zombie) processes whose parent is pid."""
    found = set()
    for entry in Path('/proc').iterdir():
        if entry.name.isdigit():
            state = _state(int(entry.name))
            if state is not None and state[1] == pid and state[0] != 'Z':
                found.add(int(entry.name))
    return found


def alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if (state := _state(pid)) is not None and state[0] != 'Z'}


def wait_gone(pids: set[int], timeout: float = 20.0) -> set[int]:
    """Wait until none of these processes lives; those still alive at the timeout."""
    deadline = time.monotonic() + timeout
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive(pids)
