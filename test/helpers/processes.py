"""Which processes are alive, by /proc (a launch's node processes, and that none is left after a stop), and a
child's output read line by line."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import IO


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


class LineReader:
    """A child's output lines, read by a thread as they come: a wait for a line never misses one that arrived in
    the same read as the line before it (select() sees the pipe, not the reader's buffer)."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._ended = False
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float = 60.0) -> str | None:
        """The first line from now on that contains `text`; None at the timeout or at the end of the output."""
        deadline = time.monotonic() + timeout
        while not self._ended:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return None
            if line is None:
                self._ended = True
                return None
            self.lines.append(line)
            if text in line:
                return line
        return None

    def drain(self, seconds: float) -> list[str]:
        """Every line that comes in the next `seconds` (or until the output ends); all lines read so far."""
        deadline = time.monotonic() + seconds
        while not self._ended and time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                self._ended = True
            else:
                self.lines.append(line)
        return self.lines
