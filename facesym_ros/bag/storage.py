"""rosbag2 bags on disk, through the rosbags library: open for reading (salvaging damaged bags) and for writing.

A bag that a recorder did not close (killed, power lost, disk full, copied
half-way) has no metadata.yaml, or an MCAP file without its footer and index.
rosbags refuses such bags, so `open_bag` falls back to reading the storage
files themselves: an MCAP file record by record until the first incomplete
record, an sqlite3 file table by table. What could not be read is said in
`BagContents.problems`, never silently dropped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from rosbags.interfaces import Connection
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

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
    _reader: Reader | None = None
    _files: tuple[Path, ...] = ()

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
        """Messages of the given topics (all when None). A read error ends the pass and is added to problems."""
        wanted = set(self.topics if topics is None else topics)
        if self._reader is not None:
            yield from self._read_indexed(wanted)
            return
        for path in self._files:
            if path.suffix == '.mcap':
                yield from _salvage_mcap(path, wanted, self.problems)
            else:
                yield from _salvage_sqlite(path, wanted, self.problems)

    def _read_indexed(self, wanted: set[str]) -> Iterator[BagMessage]:
        assert self._reader is not None
        connections = [c for c in self._reader.connections if c.topic in wanted]
        if not connections:
            return
        try:
            for connection, timestamp, data in self._reader.messages(connections=connections):
                yield BagMessage(connection.topic, connection.msgtype, timestamp, data)
        except (ReaderError, OSError, ValueError, KeyError) as error:
            self.problems.append(f'{self.path}: reading stopped early: {error}')

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
    if path.is_dir() and (path / 'metadata.yaml').is_file():
        reader = Reader(path)
        try:
            reader.open()
        except ReaderError as error:
            if not files:
                raise BagError(f'{path}: not a readable rosbag2 bag: {error}') from None
            contents = _salvage(path, files)
            contents.problems.insert(0, f'{path}: the bag is damaged ({error}); reading its files directly')
            return contents
        storage = 'mcap' if any(p.suffix == '.mcap' for p in files) else 'sqlite3'
        topics = {c.topic: _topic(c) for c in reader.connections}
        return BagContents(path, storage, topics, _reader=reader)
    if not files:
        raise BagError(f'{path}: not a rosbag2 bag (no metadata.yaml, no .mcap or .db3 file)')
    contents = _salvage(path, files)
    if path.is_dir():
        contents.problems.insert(0, f'{path}: metadata.yaml is missing (the recording did not end cleanly); '
                                    'reading its files directly')
    return contents


def _salvage(path: Path, files: tuple[Path, ...]) -> BagContents:
    topics: dict[str, Topic] = {}
    for file in files:
        try:
            found = _mcap_topics(file) if file.suffix == '.mcap' else _sqlite_topics(file)
        except (OSError, sqlite3.Error, ValueError) as error:
            raise BagError(f'{file}: not a readable {STORAGE_SUFFIXES[file.suffix]} file: {error}') from None
        for topic in found:
            topics.setdefault(topic.name, topic)
    storage = STORAGE_SUFFIXES[files[0].suffix]
    return BagContents(path, storage, topics, salvaged=True, _files=files)


# -- MCAP without footer or index -----------------------------------------------------------------------------------

def _mcap_records(path: Path, problems: list[str] | None) -> Iterator[object]:
    """Records of an MCAP file in file order, chunks unpacked, up to the first incomplete or corrupt record."""
    from mcap.exceptions import McapError
    from mcap.stream_reader import StreamReader

    with path.open('rb') as stream:
        reader = StreamReader(stream, skip_magic=False)
        try:
            yield from reader.records
        except (McapError, ValueError, EOFError, OSError) as error:
            if problems is not None:
                size = path.stat().st_size
                problems.append(f'{path.name}: unreadable from byte {stream.tell()} of {size} '
                                f'({type(error).__name__}: {error or "file ends mid-record"}); '
                                'messages after that point are lost')


def _mcap_topics(path: Path) -> list[Topic]:
    from mcap.records import Channel, Message, Schema

    schemas: dict[int, Schema] = {}
    channels: dict[int, Channel] = {}
    counts: dict[int, int] = {}
    for record in _mcap_records(path, None):
        if isinstance(record, Schema):
            schemas[record.id] = record
        elif isinstance(record, Channel):
            channels[record.id] = record
        elif isinstance(record, Message):
            counts[record.channel_id] = counts.get(record.channel_id, 0) + 1
    if not schemas and not channels:
        with path.open('rb') as stream:
            if stream.read(8) != b'\x89MCAP0\r\n':
                raise ValueError('no MCAP magic at the start of the file')
    topics = []
    for channel in channels.values():
        schema = schemas.get(channel.schema_id)
        if schema is None:
            continue
        topics.append(Topic(channel.topic, schema.name, schema.data.decode(), '', (), counts.get(channel.id, 0)))
    return topics


def _salvage_mcap(path: Path, wanted: set[str], problems: list[str]) -> Iterator[BagMessage]:
    from mcap.records import Channel, Message, Schema

    channels: dict[int, tuple[str, str]] = {}
    schemas: dict[int, str] = {}
    for record in _mcap_records(path, problems):
        if isinstance(record, Schema):
            schemas[record.id] = record.name
        elif isinstance(record, Channel):
            channels[record.id] = (record.topic, schemas.get(record.schema_id, ''))
        elif isinstance(record, Message) and record.channel_id in channels:
            topic, msgtype = channels[record.channel_id]
            if topic in wanted:
                yield BagMessage(topic, msgtype, record.log_time, record.data)


# -- sqlite3 without metadata.yaml ----------------------------------------------------------------------------------

def _connect_read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f'{path.resolve().as_uri()}?mode=ro', uri=True)


def _sqlite_topics(path: Path) -> list[Topic]:
    with _connect_read_only(path) as db:
        rows = db.execute('SELECT id, name, type FROM topics').fetchall()
        definitions = {}
        if db.execute("SELECT name FROM sqlite_master WHERE name = 'message_definitions'").fetchone():
            definitions = dict(db.execute('SELECT topic_type, encoded_message_definition FROM message_definitions'))
        counts = dict(db.execute('SELECT topic_id, COUNT(*) FROM messages GROUP BY topic_id'))
    return [Topic(name, msgtype, definitions.get(msgtype, ''), '', (), counts.get(topic_id, 0))
            for topic_id, name, msgtype in rows]


def _salvage_sqlite(path: Path, wanted: set[str], problems: list[str]) -> Iterator[BagMessage]:
    try:
        with _connect_read_only(path) as db:
            topics = {topic_id: (name, msgtype) for topic_id, name, msgtype in
                      db.execute('SELECT id, name, type FROM topics') if name in wanted}
            for topic_id, timestamp, data in db.execute(
                    'SELECT topic_id, timestamp, data FROM messages ORDER BY timestamp, id'):
                if topic_id in topics:
                    yield BagMessage(*topics[topic_id], timestamp, data)
    except sqlite3.Error as error:
        problems.append(f'{path.name}: reading stopped early: {error}')


# -- writing --------------------------------------------------------------------------------------------------------

def create_writer(path: str | Path, storage: str = 'mcap') -> Writer:
    """An open rosbag2 writer (metadata version 9) at `path`, which must not exist yet."""
    path = Path(path)
    if storage not in STORAGES:
        raise BagError(f'storage must be one of {", ".join(STORAGES)}, got {storage!r}')
    if path.exists():
        raise BagError(f'{path} already exists; give a new bag folder')
    writer = Writer(path, version=BAG_VERSION, storage_plugin=STORAGES[storage])
    writer.open()
    return writer


def add_topic(writer: Writer, topic: Topic) -> Connection:
    """A connection for `topic`, with its stored definition, or one generated from the typestore."""
    if topic.msgdef and topic.rihs01:
        return writer.add_connection(topic.name, topic.msgtype, msgdef=topic.msgdef, rihs01=topic.rihs01,
                                     offered_qos_profiles=list(topic.offered_qos_profiles))
    return writer.add_connection(topic.name, topic.msgtype, typestore=typestore(),
                                 offered_qos_profiles=list(topic.offered_qos_profiles))


def flush_writer(writer: Writer) -> None:
    """Put what was written so far on disk, so a recorder that is killed loses at most the last moments.

    rosbags keeps sqlite3 writes in one transaction and MCAP messages in a
    1 MiB chunk until close; this commits the transaction, or closes the
    chunk, and flushes the file.
    """
    storage = writer.storage
    if storage is None:
        return
    connection = getattr(storage, 'conn', None)
    if connection is not None:
        connection.commit()
        return
    chunk = getattr(storage, 'chunk', None)
    if chunk is not None and chunk.bio.tell():
        storage.close_chunk()
    stream = getattr(storage, 'bio', None)
    if stream is not None:
        stream.flush()


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
