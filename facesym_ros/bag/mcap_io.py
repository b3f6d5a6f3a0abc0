"""MCAP files: written through the mcap library with every chunk's CRC, read chunk by chunk with the CRCs checked.

rosbags' own MCAP writer stores 0 ("not computed") as the CRC of every chunk,
so bit rot in an archived bag would never be noticed. `McapStorage` plugs the
mcap library's writer (CRC-32 of each chunk and of the summary) into rosbags'
Writer in its place; the layout is what rosbag2 writes (profile ros2, ros2msg
schemas, cdr channels with their offered QoS, the rosbag2 metadata record).

Reading checks each chunk's CRC. A chunk that does not match (or cannot be
decompressed or parsed) is reported with the number of messages it held, and
reading goes on with the next chunk. Files with a summary are read through
their chunk index, skipping chunks without the wanted topics; files without
one (a writer that never finished) are read record by record up to the first
incomplete record.
"""

from __future__ import annotations

import heapq
import io
import struct
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from mcap.data_stream import ReadDataStream
from mcap.exceptions import EndOfFile, McapError
from mcap.reader import SeekingReader
from mcap.records import Channel, Chunk, ChunkIndex, Message, MessageIndex, Schema
from mcap.stream_reader import StreamReader, breakup_chunk
from mcap.writer import CompressionType
from mcap.writer import Writer as McapWriter
from rosbags.interfaces import Connection, MessageDefinitionFormat
from rosbags.rosbag2 import WriterError
from rosbags.rosbag2.enums import CompressionMode

MAGIC = b'\x89MCAP0\r\n'
CHUNK_SIZE = 1 << 20  # as rosbags and rosbag2 write them
# What the mcap library raises on a damaged record or chunk
READ_ERRORS = (McapError, ValueError, EOFError, OSError, KeyError, IndexError, MemoryError, struct.error)


# -- writing --------------------------------------------------------------------------------------------------------

class McapStorage:
    """A storage plugin for rosbags' Writer (`Writer.STORAGE_PLUGINS`) on the mcap library's writer.

    Chunks are closed at 1 MiB or by `flush`, which also hands the file its
    bytes, so everything before the last flush is on disk. `flushed_offset`
    is the end of what was flushed, where `abort` cuts a file whose last write
    failed, so that it ends on a whole record.
    """

    def __init__(self, path: Path, compression: CompressionMode) -> None:
        if compression != CompressionMode.NONE:
            raise WriterError('facesym_ros writes MCAP chunks uncompressed')
        self.path = path / f'{path.name}.mcap'
        self._stream = self.path.open('xb')
        # chunks are closed here (`flush`), never inside the library, so what is on disk is always known
        self._writer = McapWriter(self._stream, chunk_size=2**62, compression=CompressionType.NONE,
                                  enable_crcs=True)
        self._writer.start(profile='ros2', library=f'facesym_ros (mcap {version("mcap")})')
        self._schemas: dict[str, int] = {}
        self._channels: dict[int, int] = {}
        self.pending = 0
        self.flushed_offset = 0
        self.flush()

    @property
    def chunk_full(self) -> bool:
        return self.pending >= CHUNK_SIZE

    def add_msgtype(self, connection: Connection) -> None:
        encoding = 'ros2msg' if connection.msgdef.format == MessageDefinitionFormat.MSG else 'ros2idl'
        self._schemas[connection.msgtype] = self._writer.register_schema(
            connection.msgtype, encoding, connection.msgdef.data.encode())

    def add_connection(self, connection: Connection, offered_qos_profiles: str) -> None:
        self._channels[connection.id] = self._writer.register_channel(
            connection.topic, connection.ext.serialization_format, self._schemas[connection.msgtype],
            {'offered_qos_profiles': offered_qos_profiles})

    def write(self, connection: Connection, timestamp: int, data: bytes | memoryview) -> None:
        self._writer.add_message(self._channels[connection.id], log_time=timestamp, data=bytes(data),
                                 publish_time=timestamp)
        self.pending += len(data) + 31  # the message record's header

    def flush(self) -> None:
        """Close the open chunk and hand everything to the operating system."""
        self._writer.flush()
        self.pending = 0
        self.flushed_offset = self._stream.tell()

    def close(self, version: int, metadata: str) -> None:
        _ = version
        self.flush()
        self._writer.add_metadata('rosbag2', {'serialized_metadata': metadata})
        self._writer.finish()
        self._stream.close()

    def abort(self) -> None:
        """Close without the summary, cut back to the end of the last flush (a failed write leaves a torn record)."""
        with suppress(OSError):  # what the buffer still held could not be written: it is cut off below anyway
            self._stream.close()
        try:
            with self.path.open('r+b') as stream:
                stream.truncate(self.flushed_offset)
        except OSError:
            pass  # the reader stops at the torn record instead


# -- reading --------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class McapTopic:
    name: str
    msgtype: str
    msgdef: str
    message_count: int


@dataclass(frozen=True)
class McapMessage:
    topic: str
    msgtype: str
    log_time: int
    data: bytes


Note = Callable[[str], None]


def read_topics(path: Path) -> list[McapTopic]:
    """The topics of an MCAP file, from its summary or, without one, from its records. Raises if it is no MCAP."""
    with path.open('rb') as stream:
        if stream.read(len(MAGIC)) != MAGIC:
            raise ValueError('no MCAP magic at the start of the file')
        summary = _summary(stream)
        if summary is not None:
            counts = dict(summary.statistics.channel_message_counts) if summary.statistics else {}
            return [_topic(channel, summary.schemas.get(channel.schema_id), counts.get(channel.id, 0))
                    for channel in summary.channels.values()]
        schemas: dict[int, Schema] = {}
        channels: dict[int, Channel] = {}
        counts: Counter[int] = Counter()
        for record in _records(path, stream, lambda _: None):
            if isinstance(record, Schema):
                schemas[record.id] = record
            elif isinstance(record, Channel):
                channels[record.id] = record
            elif isinstance(record, Message):
                counts[record.channel_id] += 1
        return [_topic(channel, schemas.get(channel.schema_id), counts[channel.id]) for channel in channels.values()]


def read_messages(path: Path, topics: set[str], note: Note) -> Iterator[McapMessage]:
    """The messages of these topics in log-time order (file order without a summary); damage goes to `note`."""
    with path.open('rb') as stream:
        summary = _summary(stream)
        if summary is not None and summary.chunk_indexes:
            yield from _indexed_messages(path, stream, summary, topics, note)
        else:
            yield from _streamed_messages(path, stream, topics, note)


def _topic(channel: Channel, schema: Schema | None, count: int) -> McapTopic:
    return McapTopic(channel.topic, schema.name if schema else '', schema.data.decode() if schema else '', count)


def _summary(stream: io.BufferedReader):
    """The file's summary, or None when it has none or it cannot be read (the records are then read in order)."""
    try:
        stream.seek(0)
        return SeekingReader(stream).get_summary()
    except READ_ERRORS:
        return None


def _indexed_messages(path: Path, stream: io.BufferedReader, summary, topics: set[str],
                      note: Note) -> Iterator[McapMessage]:
    channels = {cid: (channel.topic, summary.schemas[channel.schema_id].name
                      if channel.schema_id in summary.schemas else '')
                for cid, channel in summary.channels.items()}
    wanted = {cid for cid, (topic, _) in channels.items() if topic in topics}
    # a heap of (log time, chunk offset, index in chunk, item): chunks are opened when their first time comes up
    queue: list = []
    for chunk_index in summary.chunk_indexes:
        offsets = chunk_index.message_index_offsets
        if not offsets or wanted & set(offsets):
            queue.append((chunk_index.message_start_time, chunk_index.chunk_start_offset, -1, chunk_index))
    heapq.heapify(queue)
    while queue:
        log_time, offset, _, item = heapq.heappop(queue)
        if isinstance(item, Message):
            topic, msgtype = channels[item.channel_id]
            yield McapMessage(topic, msgtype, log_time, item.data)
            continue
        try:
            stream.seek(item.chunk_start_offset + 9)
            chunk = Chunk.read(ReadDataStream(stream))
            records = breakup_chunk(chunk, validate_crc=True)
        except READ_ERRORS as error:
            note(_bad_chunk(path, (item.chunk_start_offset, item.message_start_time, item.message_end_time),
                            _indexed_counts(stream, item, channels), error))
            continue
        for position, record in enumerate(records):
            if isinstance(record, Message) and record.channel_id in wanted:
                heapq.heappush(queue, (record.log_time, offset, position, record))


def _indexed_counts(stream: io.BufferedReader, chunk_index: ChunkIndex, channels: dict) -> Counter[str] | None:
    """Messages per topic in a chunk, from its message index records (None if those cannot be read either)."""
    counts: Counter[str] = Counter()
    try:
        for channel_id, offset in chunk_index.message_index_offsets.items():
            stream.seek(offset + 9)
            counts[channels.get(channel_id, (f'channel {channel_id}',))[0]] += len(
                MessageIndex.read(ReadDataStream(stream)).records)
    except READ_ERRORS:
        return None
    return counts


def _streamed_messages(path: Path, stream: io.BufferedReader, topics: set[str], note: Note) -> Iterator[McapMessage]:
    channels: dict[int, tuple[str, str]] = {}
    schemas: dict[int, str] = {}
    orphans: Counter[int] = Counter()
    for record in _records(path, stream, note):
        if isinstance(record, Schema):
            schemas[record.id] = record.name
        elif isinstance(record, Channel):
            channels[record.id] = (record.topic, schemas.get(record.schema_id, ''))
        elif isinstance(record, Message):
            if record.channel_id not in channels:
                orphans[record.channel_id] += 1
                continue
            topic, msgtype = channels[record.channel_id]
            if topic in topics:
                yield McapMessage(topic, msgtype, record.log_time, record.data)
    if orphans:
        note(f'{path.name}: {sum(orphans.values())} messages skipped: their channel '
             f'({", ".join(map(str, sorted(orphans)))}) is defined in no readable record')


def _records(path: Path, stream: io.BufferedReader, note: Note) -> Iterator[object]:
    """Records in file order, chunks opened and CRC-checked, up to the first incomplete or unreadable record.

    A chunk that fails its check is reported (with its message count, from the
    message index records that follow it) and skipped.
    """
    stream.seek(0)
    reader = StreamReader(stream, skip_magic=False, emit_chunks=True)
    bad: tuple[int, Chunk, Exception] | None = None
    counts: Counter[str] = Counter()
    channel_topics: dict[int, str] = {}

    def report() -> None:
        offset, chunk, error = bad
        note(_bad_chunk(path, (offset, chunk.message_start_time, chunk.message_end_time), counts, error))

    boundary = stream.tell()
    try:
        for record in reader.records:
            boundary = stream.tell()
            if bad is not None and isinstance(record, MessageIndex):
                counts[channel_topics.get(record.channel_id, f'channel {record.channel_id}')] += len(record.records)
                continue
            if bad is not None:
                report()
                bad = None
            if not isinstance(record, Chunk):
                yield record
                continue
            try:
                records = breakup_chunk(record, validate_crc=True)
            except READ_ERRORS as error:
                start = stream.tell() - 9 - (40 + len(record.compression.encode()) + len(record.data))
                bad, counts = (start, record, error), Counter()
                continue
            for inner in records:
                if isinstance(inner, Channel):
                    channel_topics[inner.id] = inner.topic
                yield inner
    except READ_ERRORS as error:
        size = path.stat().st_size
        if isinstance(error, EndOfFile) and boundary == size:
            note(f'{path.name}: ends after its last whole record, without summary or footer (its writer did '
                 'not finish); everything in it was read')
        else:
            note(f'{path.name}: unreadable from byte {stream.tell()} of {size} '
                 f'({type(error).__name__}: {error or "file ends mid-record"}); messages after that point are lost')
    if bad is not None:
        report()


def _bad_chunk(path: Path, where: tuple[int, int, int], counts: Counter[str] | None, error: Exception) -> str:
    """A problem line for a chunk at (byte offset, first log time, last log time) that could not be read."""
    offset, start_ns, end_ns = where
    reason = 'CRC mismatch' if 'crc' in str(error).lower() else f'unreadable ({type(error).__name__}: {error})'
    if counts:
        lost = (f'its {sum(counts.values())} messages '
                f'({", ".join(f"{topic} {count}" for topic, count in sorted(counts.items()))}) are skipped')
    else:
        lost = 'its messages are skipped (how many is unknown)'
    return (f'{path.name}: chunk at byte {offset} (log times {start_ns / 1e9:.3f} to {end_ns / 1e9:.3f} s): '
            f'{reason}; {lost}; the other chunks are read')
