"""rosbag2 sqlite3 files read as far as they can be read, without ever writing to them.

Two kinds of damage are handled here:

- A writer that stopped mid-transaction (killed, out of disk) leaves a hot
  rollback journal (`-journal`), or a write-ahead log (`-wal`), beside the
  database. SQLite must replay it before the file reads consistently, and a
  read-only connection cannot ("attempt to write a readonly database").
  Such a file is opened through `_ReplayVfs`: SQLite replays the journal as it
  always does, but every write lands in memory, so the bag on disk is never
  changed, and nothing is copied however large the bag.
- A damaged page (`CorruptError`) costs only the rows stored on it: reading
  then goes on row by row, and the rows that could not be read are counted.
"""

# ruff: noqa: N802 - the VFS methods are named by apsw (xRead, xWrite, ...)

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import apsw

BLOCK = 4096  # granularity of the in-memory overlay; SQLite writes whole pages, which are multiples of it
_SIDE_FILES = ('-journal', '-wal')
_OPEN_KINDS = apsw.SQLITE_OPEN_MAIN_DB | apsw.SQLITE_OPEN_MAIN_JOURNAL | apsw.SQLITE_OPEN_WAL
_vfs_numbers = itertools.count()


def _name(name: str | apsw.URIFilename | None) -> str | None:
    return name.filename() if isinstance(name, apsw.URIFilename) else name


class _OverlayFile(apsw.VFSFile):
    """A database, journal or WAL file opened read-only, whose writes and truncations stay in memory."""

    def __init__(self, vfs: _ReplayVfs, name: str | apsw.URIFilename, flags: list[int]) -> None:
        wanted = flags[0]
        read_only = wanted & ~(apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE) | apsw.SQLITE_OPEN_READONLY
        super().__init__('', name, [read_only, 0])
        flags[1] = wanted  # SQLite may write; it writes into the overlay
        self._state = vfs.overlay(_name(name), super().xFileSize())
        self._base_lock = apsw.SQLITE_LOCK_NONE

    # -- data: the file on disk, patched by the blocks SQLite wrote, cut to the size it truncated to --
    def xFileSize(self) -> int:
        return self._state.size

    def xRead(self, amount: int, offset: int) -> bytes:
        state = self._state
        end = min(offset + amount, state.size)
        if not state.blocks and end <= state.disk_size:
            return super().xRead(end - offset, offset) if end > offset else b''
        out = bytearray()
        position = offset
        while position < end:
            block, inner = divmod(position, BLOCK)
            take = min(BLOCK - inner, end - position)
            out += self._block(block)[inner:inner + take]
            position += take
        return bytes(out)  # shorter than asked past the end: SQLite gets a short read, as from a real file

    def _block(self, block: int) -> bytes | bytearray:
        state = self._state
        if block in state.blocks:
            return state.blocks[block]
        start = block * BLOCK
        length = max(0, min(BLOCK, state.disk_size - start, state.size - start))
        data = super().xRead(length, start) if length else b''
        return data + bytes(BLOCK - len(data))

    def xWrite(self, data: bytes, offset: int) -> None:
        state = self._state
        position, view = offset, memoryview(data)
        while view:
            block, inner = divmod(position, BLOCK)
            take = min(BLOCK - inner, len(view))
            patched = bytearray(self._block(block))
            patched[inner:inner + take] = view[:take]
            state.blocks[block] = patched
            position += take
            view = view[take:]
        state.size = max(state.size, offset + len(data))

    def xTruncate(self, newsize: int) -> None:
        state = self._state
        state.size = newsize
        state.disk_size = min(state.disk_size, newsize)
        for block in [b for b in state.blocks if b * BLOCK >= newsize]:
            del state.blocks[block]
        last, inner = divmod(newsize, BLOCK)
        if inner and last in state.blocks:
            state.blocks[last][inner:] = bytes(BLOCK - inner)

    def xSync(self, flags: int) -> None:
        pass

    # -- locks: a real shared lock (a live writer still sees the reader); higher ones are only pretended,
    #    since nothing is ever written to the file --
    def xLock(self, level: int) -> None:
        if self._base_lock < apsw.SQLITE_LOCK_SHARED <= level:
            super().xLock(apsw.SQLITE_LOCK_SHARED)
            self._base_lock = apsw.SQLITE_LOCK_SHARED

    def xUnlock(self, level: int) -> None:
        if level < self._base_lock:
            super().xUnlock(level)
            self._base_lock = level


class _Overlay:
    def __init__(self, disk_size: int) -> None:
        self.disk_size = disk_size
        self.size = disk_size
        self.blocks: dict[int, bytearray] = {}


class _ReplayVfs(apsw.VFS):
    """One connection's view of a database and its journal or WAL: real files below, SQLite's writes in memory."""

    def __init__(self) -> None:
        self.vfs_name = f'facesym-replay-{next(_vfs_numbers)}'
        self._overlays: dict[str, _Overlay] = {}
        self._deleted: set[str] = set()
        super().__init__(self.vfs_name, '')

    def overlay(self, name: str | None, disk_size: int) -> _Overlay:
        if name is None:
            return _Overlay(disk_size)
        return self._overlays.setdefault(name, _Overlay(disk_size))

    def xOpen(self, name: str | apsw.URIFilename | None, flags: list[int]) -> apsw.VFSFile:
        if name is None or not flags[0] & _OPEN_KINDS:
            return apsw.VFSFile('', name, flags)  # SQLite's own temporary files: real, private, deleted on close
        if _name(name) in self._deleted:
            raise apsw.CantOpenError(f'{_name(name)} was replayed and removed (in memory)')
        return _OverlayFile(self, name, flags)

    def xDelete(self, filename: str, syncdir: bool) -> None:
        self._deleted.add(filename)  # a replayed journal: gone for this connection, untouched on disk

    def xAccess(self, pathname: str, flags: int) -> bool:
        if pathname in self._deleted:
            return False
        return super().xAccess(pathname, flags)


def side_files(path: Path) -> list[Path]:
    """The journal or WAL a writer left beside the database (non-empty ones only)."""
    return [side for suffix in _SIDE_FILES
            if (side := path.with_name(path.name + suffix)).is_file() and side.stat().st_size > 0]


@contextmanager
def connect(path: Path) -> Iterator[apsw.Connection]:
    """A read-only view of the database as of its last commit; a left-over journal or WAL is replayed in memory."""
    if not side_files(path):
        connection = apsw.Connection(f'{path.resolve().as_uri()}?mode=ro',
                                     flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
        try:
            yield connection
        finally:
            connection.close()
        return
    vfs = _ReplayVfs()
    try:
        connection = apsw.Connection(str(path.resolve()), flags=apsw.SQLITE_OPEN_READWRITE, vfs=vfs.vfs_name)
        try:
            connection.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1)
            # exclusive locking keeps a WAL's index in memory: no -shm file is needed or touched
            connection.execute('PRAGMA locking_mode=EXCLUSIVE')
            yield connection
        finally:
            connection.close()
    finally:
        vfs.unregister()


def topic_rows(db: apsw.Connection) -> tuple[list[tuple[int, str, str]], dict[str, str], dict[int, int] | None]:
    """(id, name, type) of each topic, the stored message definitions, and message counts (None if unreadable)."""
    rows = [tuple(row) for row in db.execute('SELECT id, name, type FROM topics')]
    definitions = {}
    if db.execute("SELECT name FROM sqlite_master WHERE name = 'message_definitions'").fetchone():
        definitions = dict(db.execute('SELECT topic_type, encoded_message_definition FROM message_definitions'))
    try:
        counts = dict(db.execute('SELECT topic_id, COUNT(*) FROM messages GROUP BY topic_id'))
    except apsw.Error:
        counts = None  # a damaged page: the messages are counted while they are read
    return rows, definitions, counts


@dataclass
class Damage:
    """What damaged pages of one file cost, gathered over every pass through it."""

    error: str = ''
    total: int = 0  # rows found, readable or not
    unreadable: set[int] = field(default_factory=set)  # ids of rows that could not be read
    unlisted_after: int | None = None  # rows after this id could not even be found

    def describe(self, name: str) -> str:
        if not self.unreadable and self.unlisted_after is None:
            return f'{name}: damaged ({self.error}), but every message was read'
        lost = ''
        if self.unreadable:
            lost = (f'{len(self.unreadable)} of {self.total} messages could not be read '
                    f'(row ids {_ranges(sorted(self.unreadable))})')
        if self.unlisted_after is not None:
            lost += ('; ' if lost else '') + f'rows after id {self.unlisted_after} could not be found'
        return f'{name}: damaged ({self.error}): {lost}; the rest were read'


def message_rows(db: apsw.Connection, topic_ids: set[int], damage: Damage) -> Iterator[tuple[int, int, bytes]]:
    """(topic id, log time, data) of the topics' messages in log-time order, past damaged pages.

    The fast path is one query in index order. Should it hit a damaged page,
    every row's key is listed (by a table scan, then by looking each remaining
    id up on its own) and each row is read on its own, so the damage costs only
    the rows it holds; they are counted in `damage`.
    """
    ids = ','.join(str(int(topic_id)) for topic_id in sorted(topic_ids)) or 'NULL'
    last = (-1, -1)
    try:
        for row_id, topic_id, timestamp, data in db.execute(
                f'SELECT id, topic_id, timestamp, data FROM messages WHERE topic_id IN ({ids}) '
                'ORDER BY timestamp, id'):
            last = (timestamp, row_id)
            yield topic_id, timestamp, data
        return
    except apsw.Error as error:
        damage.error = damage.error or str(error)
    keys = _row_keys(db, damage)
    for timestamp, row_id, topic_id in sorted(keys):
        if (timestamp, row_id) <= last or topic_id not in topic_ids:
            continue
        try:
            row = db.execute('SELECT data FROM messages WHERE id = ?', (row_id,)).fetchone()
        except apsw.Error:
            damage.unreadable.add(row_id)
            continue
        if row is not None:
            yield topic_id, timestamp, row[0]


def _row_keys(db: apsw.Connection, damage: Damage) -> list[tuple[int, int, int]]:
    """(timestamp, id, topic id) of every row whose key can be read; the others go to `damage`."""
    keys: list[tuple[int, int, int]] = []
    try:
        for row_id, topic_id, timestamp in db.execute('SELECT id, topic_id, timestamp FROM messages ORDER BY id'):
            keys.append((timestamp, row_id, topic_id))
        damage.total = len(keys)
        return keys
    except apsw.Error:
        pass
    # The scan stopped at a damaged page: look each later id up on its own (rowids are a b-tree key,
    # so a lookup descends past the damage unless the damaged page is on its path).
    highest = None
    for query in ('SELECT max(id) FROM messages', 'SELECT max(id) FROM messages INDEXED BY timestamp_idx'):
        with suppress(apsw.Error):
            highest = db.execute(query).fetchone()[0]
            break
    scanned = keys[-1][1] if keys else 0
    if highest is None:
        damage.unlisted_after = scanned
    unlisted = 0
    for row_id in range(scanned + 1, (highest or scanned) + 1):
        try:
            row = db.execute('SELECT topic_id, timestamp FROM messages WHERE id = ?', (row_id,)).fetchone()
        except apsw.Error:
            damage.unreadable.add(row_id)
            unlisted += 1
            continue
        if row is not None:
            keys.append((row[1], row_id, row[0]))
    damage.total = len(keys) + unlisted
    return keys


def _ranges(numbers: list[int]) -> str:
    spans = []
    for _, group in itertools.groupby(enumerate(numbers), key=lambda pair: pair[1] - pair[0]):
        run = [number for _, number in group]
        spans.append(f'{run[0]}-{run[-1]}' if len(run) > 1 else str(run[0]))
    return ', '.join(spans[:10]) + (f' and {len(spans) - 10} more ranges' if len(spans) > 10 else '')
