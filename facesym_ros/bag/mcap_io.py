"""MCAP files read chunk by chunk, with the CRCs checked.

Reading checks each chunk's CRC, where its writer stored one. A chunk that
does not match (or cannot be decompressed or parsed) is reported with the number of messages it held, and
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
from dataclasses import dataclass
from pathlib import Path

from mcap.data_stream import ReadDataStream
from mcap.exceptions import EndOfFile, McapError
from mcap.reader import SeekingReader
from mcap.records import Channel, Chunk, ChunkIndex, Message, MessageIndex, Schema
from mcap.stream_reader import StreamReader, breakup_chunk

MAGIC = b'\x89MCAP0\r\n'
# What the mcap library raises on a damaged record or chunk
READ_ERRORS = (McapError, ValueError, EOFError, OSError, KeyError, IndexError, MemoryError, struct.error)


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
