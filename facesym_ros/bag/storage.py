"""rosbag2 bags on disk: open for reading (salvaging damaged bags) and for writing, with the rosbags library.

A bag that a recorder did not close (killed, power lost, disk full, copied
half-way) has no metadata.yaml, or an MCAP file without its footer and index,
or an sqlite3 file with a journal still to replay. rosbags refuses such bags,
so `open_bag` falls back to the storage files themselves. Messages are always
read from the files here, not through rosbags: MCAP chunk by chunk with each
chunk's CRC checked (`mcap_io`), sqlite3 past a left-over journal and past
damaged pages (`sqlite_read`). What could not be read is said in
`BagContents.problems`, never silently dropped.

What the bag says against what its storage holds: a topic's type comes from
the storage that holds its messages (the MCAP schema of its channel, the type
in the sqlite3 topics table), since that is what its bytes were written as.
A metadata.yaml that gives another type is named in a problem line and read as
the storage says (`storage_types`), never deserialised as the wrong type.

Writing goes through rosbags' Writer (`BagWriter`), with MCAP written by the
mcap library so that every chunk carries its CRC. A write that fails (a full
disk) stops the writer cleanly: what was flushed stays readable, and no
metadata.yaml claims more than that.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import ClassVar

import apsw
import cv2
import numpy as np
from rosbags.interfaces import Connection
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer, WriterError
from rosbags.rosbag2.enums import CompressionMode
from rosbags.rosbag2.storage_sqlite3 import Sqlite3Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from facesym_ros.bag import mcap_io, sqlite_read
from facesym_ros.config.files import message_names, package_share_path
from facesym_ros.core.timebase import NS_PER_SECOND

STORAGES = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}
STORAGE_SUFFIXES = {'.mcap': 'mcap', '.db3': 'sqlite3'}
IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
BAG_VERSION = 9  # rosbag2 metadata version of Jazzy and Kilted


class BagError(ValueError):
    """A path that cannot be read as a bag, or a bag without what was asked of it."""


@cache
def typestore() -> Typestore:
    """ROS 2 Kilted's message types plus this package's, from its .msg files (no ROS install needed)."""
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for name in message_names():
        text = package_share_path('msg', f'{name}.msg').read_text()
        types.update(get_types_from_msg(text, f'facesym_ros/msg/{name}'))
    store.register(types)
    return store


@dataclass(frozen=True)
class Topic:
    """A topic of a bag: its type, the definition stored with it, and the QoS its publishers offered."""

    name: str
    msgtype: str
    msgdef: str
    rihs01: str
    offered_qos_profiles: tuple = ()
    message_count: int = 0

    @property
    def base_name(self) -> str:
        """The name without its namespace: image_raw of /rig1/image_raw."""
        return self.name.rsplit('/', 1)[-1]


@dataclass(frozen=True)
class BagMessage:
    topic: str
    msgtype: str
    log_time_ns: int
    data: bytes | memoryview


@dataclass
class BagContents:
    """An opened bag: its topics and a single pass over its messages in log-time order."""

    path: Path
    storage: str
    topics: dict[str, Topic]
    salvaged: bool = False
    problems: list[str] = field(default_factory=list)
    _reader: Reader | None = None  # only for bags whose files rosbags must decompress
    _files: tuple[Path, ...] = ()
    _damage: dict[Path, sqlite_read.Damage] = field(default_factory=dict)
    _noted: dict[object, int] = field(default_factory=dict)

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
        """Messages of the given topics (all when None). What cannot be read is skipped and added to problems."""
        wanted = set(self.topics if topics is None else topics)
        if self._reader is not None:
            yield from self._read_indexed(wanted)
            return
        for path in self._files:
            if path.suffix == '.mcap':
                for message in mcap_io.read_messages(path, wanted, self.note):
                    yield BagMessage(message.topic, message.msgtype, message.log_time, message.data)
            else:
                yield from self._read_sqlite(path, wanted)

    def note(self, problem: str, key: object = None) -> None:
        """Add a problem once, however many passes meet it; a later note with the same key replaces it."""
        key = problem if key is None else key
        if key in self._noted:
            self.problems[self._noted[key]] = problem
        else:
            self._noted[key] = len(self.problems)
            self.problems.append(problem)

    def _read_sqlite(self, path: Path, wanted: set[str]) -> Iterator[BagMessage]:
        damage = self._damage.setdefault(path, sqlite_read.Damage())
        try:
            with sqlite_read.connect(path) as db:
                topics = {topic_id: (name, msgtype) for topic_id, name, msgtype in
                          db.execute('SELECT id, name, type FROM topics') if name in wanted}
                for topic_id, timestamp, data in sqlite_read.message_rows(db, set(topics), damage):
                    yield BagMessage(*topics[topic_id], timestamp, data)
        except apsw.Error as error:
            self.note(f'{path.name}: reading stopped early: {error}')
        if damage.error:
            self.note(damage.describe(path.name), key=path)

    def _read_indexed(self, wanted: set[str]) -> Iterator[BagMessage]:
        assert self._reader is not None
        connections = [c for c in self._reader.connections if c.topic in wanted]
        if not connections:
            return
        try:
            for connection, timestamp, data in self._reader.messages(connections=connections):
                yield BagMessage(connection.topic, connection.msgtype, timestamp, data)
        except (ReaderError, OSError, ValueError, KeyError, apsw.Error) as error:
            self.note(f'{self.path}: reading stopped early: {error}')

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> BagContents:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _topic(connection: Connection) -> Topic:
    ext = connection.ext
    return Topic(connection.topic, connection.msgtype, connection.msgdef.data, connection.digest,
                 tuple(getattr(ext, 'offered_qos_profiles', ()) or ()), connection.msgcount)


def _storage_files(path: Path) -> tuple[Path, ...]:
    if path.is_file():
        return (path,) if path.suffix in STORAGE_SUFFIXES else ()
    return tuple(sorted(p for p in path.iterdir() if p.suffix in STORAGE_SUFFIXES))


def open_bag(path: str | Path) -> BagContents:
    """Open a rosbag2 bag (a folder with metadata.yaml, or a lone .mcap/.db3 file), salvaging it if damaged."""
    path = Path(path)
    if not path.exists():
        raise BagError(f'{path}: no such file or folder')
    files = _storage_files(path)
    unreplayed = [side.name for file in files if file.suffix == '.db3' for side in sqlite_read.side_files(file)]
    if path.is_dir() and (path / 'metadata.yaml').is_file() and not unreplayed:
        reader = Reader(path)
        try:
            reader.open()
        except (ReaderError, apsw.Error) as error:
            if not files:
                raise BagError(f'{path}: not a readable rosbag2 bag: {error}') from None
            contents = _salvage(path, files)
            contents.problems.insert(0, f'{path}: the bag is damaged ({error}); reading its files directly')
            return contents
        storage = 'mcap' if any(p.suffix == '.mcap' for p in files) else 'sqlite3'
        topics = {c.topic: _topic(c) for c in reader.connections}
        problems = storage_types(path, topics, files)
        if reader.compression_mode:  # compressed files or messages: rosbags decompresses them
            return BagContents(path, storage, topics, problems=problems, _reader=reader)
        reader.close()
        return BagContents(path, storage, topics, problems=problems, _files=files)
    if not files:
        raise BagError(f'{path}: not a rosbag2 bag (no metadata.yaml, no .mcap or .db3 file)')
    contents = _salvage(path, files)
    if unreplayed:
        contents.problems.insert(0, f'{path}: its writer stopped mid-transaction and left {", ".join(unreplayed)}; '
                                    'read as of its last commit, recovered as SQLite does but in memory (the bag '
                                    'is not changed); what was written after that commit is not in it')
    if path.is_dir() and not (path / 'metadata.yaml').is_file():
        contents.problems.insert(0, f'{path}: metadata.yaml is missing (the recording did not end cleanly); '
                                    'reading its files directly')
    return contents


def storage_types(path: Path, topics: dict[str, Topic], files: tuple[Path, ...]) -> list[str]:
    """Give every topic of metadata.yaml the type its storage files hold (in place); a problem line for each
    that metadata.yaml gave another type. Files this cannot read (compressed ones) are left to the reader."""
    stored: dict[str, tuple[Topic, Path]] = {}
    for file in files:
        try:
            found = _mcap_topics(file) if file.suffix == '.mcap' else _sqlite_topics(file)
        except (OSError, apsw.Error, *mcap_io.READ_ERRORS):
            continue  # read (and any damage said) when its messages are
        for topic in found:
            if topic.msgtype:
                stored.setdefault(topic.name, (topic, file))
    problems = []
    for name, topic in topics.items():
        truth, file = stored.get(name, (None, None))
        if truth is None or truth.msgtype == topic.msgtype:
            continue
        topics[name] = Topic(name, truth.msgtype, truth.msgdef, '', topic.offered_qos_profiles, topic.message_count)
        problems.append(f'{path}/metadata.yaml gives {name} the type {topic.msgtype}, but {file.name} holds '
                        f'{truth.msgtype}: read as {truth.msgtype}, what its messages were written as')
    return problems


def _salvage(path: Path, files: tuple[Path, ...]) -> BagContents:
    topics: dict[str, Topic] = {}
    for file in files:
        try:
            found = _mcap_topics(file) if file.suffix == '.mcap' else _sqlite_topics(file)
        except (OSError, apsw.Error, *mcap_io.READ_ERRORS) as error:
            raise BagError(f'{file}: not a readable {STORAGE_SUFFIXES[file.suffix]} file: {error}') from None
        for topic in found:
            topics.setdefault(topic.name, topic)
    storage = STORAGE_SUFFIXES[files[0].suffix]
    return BagContents(path, storage, topics, salvaged=True, _files=files)


def _mcap_topics(path: Path) -> list[Topic]:
    return [Topic(topic.name, topic.msgtype, topic.msgdef, '', (), topic.message_count)
            for topic in mcap_io.read_topics(path) if topic.msgtype]


def _sqlite_topics(path: Path) -> list[Topic]:
    with sqlite_read.connect(path) as db:
        rows, definitions, counts = sqlite_read.topic_rows(db)
    return [Topic(name, msgtype, definitions.get(msgtype, ''), '', (), (counts or {}).get(topic_id, 0))
            for topic_id, name, msgtype in rows]


# -- writing --------------------------------------------------------------------------------------------------------

# What a write that failed for want of space looks like: no space, quota, file size limit.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class BagWriteError(BagError):
    """A bag that could not be written to the end; what was flushed before is kept and readable."""


class _Transactions:
    """The sqlite3.Connection calls that rosbags' Sqlite3Writer makes, on apsw, whose errors come with errno.

    As with the sqlite3 module, the first INSERT opens a transaction and
    `commit` ends it.
    """

    def __init__(self, path: Path) -> None:
        self.db = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE)

    def executescript(self, script: str) -> None:
        self.commit()
        self.db.execute(script)

    def cursor(self) -> _Transactions:
        return self

    def execute(self, statement: str, parameters: tuple = ()) -> apsw.Cursor:
        if not self.db.in_transaction and statement.lstrip().upper().startswith('INSERT'):
            self.db.execute('BEGIN')
        return self.db.execute(statement, parameters)

    def commit(self) -> None:
        if self.db.in_transaction:
            self.db.execute('COMMIT')

    def rollback(self) -> None:
        if self.db.in_transaction:
            self.db.execute('ROLLBACK')

    def close(self) -> None:
        self.db.close()


class Sqlite3Storage(Sqlite3Writer):
    """rosbags' sqlite3 storage, the same file, written through apsw so that a failed write tells its errno."""

    def __init__(self, path: Path, compression: CompressionMode) -> None:
        if compression == CompressionMode.STORAGE:
            raise WriterError('SQLITE3 writer does not support storage-side compression.')
        self.path = path / f'{path.name}.db3'
        self.conn = _Transactions(self.path)
        self.conn.executescript(self.SQLITE_SCHEMA)
        self.cursor = self.conn

    chunk_full = False

    def flush(self) -> None:
        self.conn.commit()

    def abort(self) -> None:
        """Roll back to the last commit and close; a journal that SQLite could not replay then is replayed now."""
        try:
            super().abort()
        finally:
            if sqlite_read.side_files(self.path):  # e.g. a rollback that hit the full disk itself
                with suppress(apsw.Error), apsw.Connection(str(self.path)) as db:
                    db.execute('SELECT count(*) FROM sqlite_master').fetchall()  # opening replays it

    def failure_errno(self, error: apsw.Error) -> int | None:
        if isinstance(error, apsw.FullError):
            return errno.ENOSPC
        return self.conn.db.system_errno or None


class BagWriter(Writer):
    """rosbags' Writer with MCAP chunks that carry their CRC, flushes on demand, and clean stops on write errors.

    `flush` puts everything written so far on disk (commits the sqlite3
    transaction, or closes the MCAP chunk) and `flushed` counts the messages
    that are; MCAP chunks are also closed whenever they reach 1 MiB. A write,
    flush or close that fails (a full disk) aborts the bag at once: sqlite3
    rolls back to the last flush, MCAP is cut back to it, no metadata.yaml is
    written, and a BagWriteError says what happened and what was kept. The bag
    then reads like one whose recorder was killed at its last flush.
    """

    STORAGE_PLUGINS: ClassVar = {StoragePlugin.SQLITE3: Sqlite3Storage, StoragePlugin.MCAP: mcap_io.McapStorage}

    def __init__(self, path: Path | str, **kwargs) -> None:
        super().__init__(path, **kwargs)
        self.flushed = 0
        self.failed: BagWriteError | None = None

    def open(self) -> None:
        self._guard(super().open)

    def add_connection(self, *args, **kwargs) -> Connection:
        return self._guard(super().add_connection, *args, **kwargs)

    def write(self, connection: Connection, timestamp: int, data: bytes | memoryview) -> None:
        self._guard(super().write, connection, timestamp, data)
        if self.storage.chunk_full:
            self.flush()

    def flush(self) -> None:
        """Put every message written so far on disk."""
        if self.storage is not None:
            self._guard(self.storage.flush)
            self.flushed = sum(self.counts.values())

    def close(self) -> None:
        """Finish the bag (index, metadata.yaml); nothing to do after a failure, which already closed it."""
        if self.failed is not None:
            return
        self.flush()
        self._guard(super().close)
        self.flushed = sum(self.counts.values())

    def _guard(self, call, *args, **kwargs):
        if self.failed is not None:
            raise self.failed
        try:
            return call(*args, **kwargs)
        except (OSError, apsw.Error) as error:
            self.failed = self._failure(error)
            raise self.failed from None

    def _failure(self, error: OSError | apsw.Error) -> BagWriteError:
        storage = self.storage
        if isinstance(error, OSError):
            code, target = error.errno, error.filename
        else:
            code = storage.failure_errno(error) if isinstance(storage, Sqlite3Storage) else None
            target = None
        target = target or (storage.path if storage is not None else self.metapath)
        with suppress(Exception):
            self.abort()
        with suppress(OSError):
            self.metapath.with_suffix('.yaml.tmp').unlink(missing_ok=True)
        what = 'disk full' if code in DISK_FULL else 'write failed'
        return BagWriteError(f'{what} writing {target} ({os.strerror(code) if code else error}); stopped: '
                             f'the {self.flushed} messages flushed before it are kept in {self.path}, which has no '
                             'metadata.yaml (score-bag and play read it as it is)')


def create_writer(path: str | Path, storage: str = 'mcap') -> BagWriter:
    """An open rosbag2 writer (metadata version 9) at `path`, which must not exist yet."""
    path = Path(path)
    if storage not in STORAGES:
        raise BagError(f'storage must be one of {", ".join(STORAGES)}, got {storage!r}')
    if path.exists():
        raise BagError(f'{path} already exists; give a new bag folder')
    writer = BagWriter(path, version=BAG_VERSION, storage_plugin=STORAGES[storage])
    writer.open()
    return writer


def add_topic(writer: Writer, topic: Topic) -> Connection:
    """A connection for `topic`, with its stored definition, or one generated from the typestore."""
    if topic.msgdef and topic.rihs01:
        return writer.add_connection(topic.name, topic.msgtype, msgdef=topic.msgdef, rihs01=topic.rihs01,
                                     offered_qos_profiles=list(topic.offered_qos_profiles))
    return writer.add_connection(topic.name, topic.msgtype, typestore=typestore(),
                                 offered_qos_profiles=list(topic.offered_qos_profiles))


def write_image_bag(path: str | Path, images: Iterable[np.ndarray], frame_rate: float, *, storage: str = 'mcap',
                    topic: str = '/image_raw', frame_id: str = 'camera', compressed: bool = False,
                    start_ns: int = 1_700_000_000 * NS_PER_SECOND, log_delay_ns: int = 0) -> int:
    """A bag of BGR images on one topic (bgr8 Image, or JPEG CompressedImage), stamped at `frame_rate`.

    Each image is logged `log_delay_ns` after its header stamp (a recorder's receive time is later than the
    camera's stamp).
    """
    store = typestore()
    image_type = IMAGE_TYPES[1] if compressed else IMAGE_TYPES[0]
    Header = store.types['std_msgs/msg/Header']  # noqa: N806 - message classes
    Time = store.types['builtin_interfaces/msg/Time']  # noqa: N806
    message_type = store.types[image_type]
    writer = create_writer(path, storage)
    count = 0
    try:
        connection = writer.add_connection(topic, image_type, typestore=store)
        for count, image in enumerate(images, start=1):
            stamp = start_ns + round((count - 1) * NS_PER_SECOND / frame_rate)
            header = Header(stamp=Time(sec=stamp // NS_PER_SECOND, nanosec=stamp % NS_PER_SECOND), frame_id=frame_id)
            if compressed:
                ok, jpeg = cv2.imencode('.jpg', image)
                if not ok:
                    raise ValueError('OpenCV could not encode a JPEG')
                message = message_type(header=header, format='jpeg', data=jpeg.reshape(-1))
            else:
                height, width = image.shape[:2]
                message = message_type(header=header, height=height, width=width, encoding='bgr8', is_bigendian=0,
                                       step=width * 3, data=np.ascontiguousarray(image).reshape(-1))
            writer.write(connection, stamp + log_delay_ns, store.serialize_cdr(message, image_type))
    finally:
        writer.close()
    return count
