"""Bags under faults (issue 10): a killed recorder, a full disk, a damaged sqlite3 page, a bad MCAP chunk.

Each fault ends in the right result, a result whose problems name the fault,
or a one-line error with exit status 2; and every message flushed before a
recording fault is read back.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import apsw
import numpy as np
import pytest
from mcap.records import Chunk, Message
from mcap.stream_reader import StreamReader, breakup_chunk

from facesym_ros.bag.record import FLUSH_PERIOD
from facesym_ros.bag.storage import open_bag, typestore, write_image_bag
from facesym_ros.config.files import SAMPLE_VIDEO
from facesym_ros.core.timebase import NS_PER_SECOND as NS
from facesym_ros.core.video import FrameSource
from facesym_ros.ros.conversions import stamp_to_ns
from helpers.bags import facesym, score_json, start_recorder, wait_for_line

FRAME_RATE = 30.0
FRAMES = 24
SMALL_DISK = 2 * 1024 * 1024
START_NS = 1_700_000_000 * NS  # write_image_bag's first stamp


@pytest.fixture(scope='module')
def clip() -> list[np.ndarray]:
    return [image for _, image in FrameSource.open(SAMPLE_VIDEO).images()][:FRAMES]


def _stamps(bag: Path) -> tuple[list[int], list[str]]:
    """The header stamps [ns] of the bag's images in order, and its problems."""
    with open_bag(bag) as contents:
        stamps = [stamp_to_ns(typestore().deserialize_cdr(bytes(m.data), 'sensor_msgs/msg/Image').header.stamp)
                  for m in contents.messages()]
        return stamps, list(contents.problems)


def _frame_numbers(stamps: list[int]) -> list[int]:
    """Frame numbers of write_image_bag's stamps."""
    return [round((stamp - START_NS) * FRAME_RATE / NS) for stamp in stamps]


def _files_digest(bag: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(bag.iterdir())}


class _Camera:
    """Publishes numbered bgr8 images on /image_raw (reliable, as a camera driver would)."""

    def __init__(self, context, width: int, height: int) -> None:
        from rclpy.node import Node
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        self.node = Node('test_camera', context=context)
        self.publisher = self.node.create_publisher(
            Image, 'image_raw', QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
        self.image = Image(height=height, width=width, encoding='bgr8', step=width * 3,
                           data=bytes(width * height * 3))
        self.sent = 0

    def publish(self) -> None:
        self.image.header.stamp.sec = self.sent
        self.publisher.publish(self.image)
        self.sent += 1

    def publish_and_wait_until_flushed(self, count: int) -> None:
        """Publish `count` images, wait until the recorder has them and one flush period has passed."""
        from rclpy.duration import Duration

        for _ in range(count):
            self.publish()
        assert self.publisher.wait_for_all_acked(Duration(seconds=10))
        time.sleep(3 * FLUSH_PERIOD)  # a flush every period; a busy machine can run its timer late

    def close(self) -> None:
        self.node.destroy_node()


def _rest_of_output(process: subprocess.Popen) -> str:
    process.wait(timeout=30)
    return process.stdout.read() or ''


# -- a recorder killed mid-transaction ------------------------------------------------------------------------------

JOURNAL_MAGIC = bytes.fromhex('d9d505f920a163d7')  # a rollback journal's header, written once it must be replayed


def _record_and_kill_mid_transaction(context, bag: Path) -> int:
    """Record images to sqlite3, flush 5, then SIGKILL the recorder while a transaction holds more; return sent."""
    journal = bag / f'{bag.name}.db3-journal'
    camera = _Camera(context, 640, 480)
    recorder = start_recorder(bag, 'image_raw', '--storage', 'sqlite3')
    try:
        wait_for_line(recorder, 'recording /image_raw')
        camera.publish_and_wait_until_flushed(5)
        # More images than SQLite's page cache holds: pages spill into the file before the commit, and the
        # journal is made hot first. Killed then, the bag needs that journal replayed to read consistently.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            camera.publish()
            time.sleep(1 / FRAME_RATE)
            with contextlib.suppress(OSError), journal.open('rb') as stream:
                if stream.read(8) == JOURNAL_MAGIC:
                    recorder.send_signal(signal.SIGKILL)
                    break
        recorder.wait(timeout=30)
        return camera.sent
    finally:
        if recorder.poll() is None:
            recorder.kill()
        camera.close()


def test_a_killed_sqlite3_recording_reads_back_everything_committed_and_is_left_unchanged(rclpy_context, tmp_path):
    for attempt in range(3):  # the kill races the recorder's commit once a second: rarely, it lands after one
        bag = tmp_path / f'killed{attempt}'
        sent = _record_and_kill_mid_transaction(rclpy_context, bag)
        journal = bag / f'{bag.name}.db3-journal'
        if journal.is_file() and journal.read_bytes()[:8] == JOURNAL_MAGIC:
            break
    else:
        pytest.fail('the recorder was never killed mid-transaction')
    before = _files_digest(bag)

    # What SQLite itself recovers, on a copy it may write to: every message committed before the kill.
    copy = tmp_path / 'copy'
    shutil.copytree(bag, copy)
    db = apsw.Connection(str(copy / journal.name.removesuffix('-journal')))
    committed = [typestore().deserialize_cdr(data, 'sensor_msgs/msg/Image').header.stamp.sec
                 for (data,) in db.execute('SELECT data FROM messages ORDER BY timestamp, id')]
    db.close()
    assert not (copy / journal.name).exists()  # SQLite rolled the journal back

    stamps, problems = _stamps(bag)
    assert [stamp // NS for stamp in stamps] == committed == list(range(len(stamps)))
    assert 5 <= len(stamps) < sent
    assert any('metadata.yaml is missing' in p for p in problems)
    assert any(f'left {journal.name}' in p for p in problems), problems

    report = score_json(bag, tmp_path)
    assert report['frames_read'] == len(stamps)
    played = facesym('play', bag, '--rate', '100', '--wait', '0.5')
    assert played.returncode == 0, played.stderr
    assert f'/image_raw {len(stamps)}' in played.stderr and 'Traceback' not in played.stderr
    assert _files_digest(bag) == before  # reading replayed the journal in memory only


def test_a_wal_mode_bag_whose_writer_died_reads_back_every_commit_from_its_log(tmp_path):
    """ros2 bag's resilient preset writes sqlite3 in WAL mode: a dead writer leaves -wal and -shm files."""
    bag = tmp_path / 'wal'
    write_image_bag(bag, [np.full((12, 16, 3), index, np.uint8) for index in range(10)], FRAME_RATE,
                    storage='sqlite3')
    (bag / 'metadata.yaml').unlink()
    writer = f"""
import os, sqlite3
db = sqlite3.connect({str(bag / 'wal.db3')!r})
db.execute('PRAGMA journal_mode=WAL')
topic, stamp, data = db.execute('SELECT topic_id, timestamp, data FROM messages ORDER BY id DESC').fetchone()
for extra in range(1, 7):
    db.execute('INSERT INTO messages (topic_id, timestamp, data) VALUES (?, ?, ?)', (topic, stamp + extra, data))
    if extra < 6:
        db.commit()  # five commits in the log; the sixth insert never committed
os._exit(0)  # dies without checkpointing
"""
    subprocess.run([sys.executable, '-c', writer], check=True)
    assert (bag / 'wal.db3-wal').stat().st_size > 0
    before = _files_digest(bag)
    stamps, problems = _stamps(bag)
    assert _frame_numbers(stamps[:10]) == list(range(10)) and len(stamps) == 15
    assert any('left wal.db3-wal' in p for p in problems), problems
    assert _files_digest(bag) == before


# -- a full disk ----------------------------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """(folder, Popen options): writing a file of more than 2 MiB there fails as on a full disk.

    A 2 MiB tmpfs where mounting is allowed (ENOSPC); otherwise the recorder
    runs with a 2 MiB file size limit and SIGXFSZ ignored (EFBIG).
    """
    folder = tmp_path / 'small-disk'
    folder.mkdir()
    mounted = shutil.which('mount') is not None and subprocess.run(
        ['mount', '-t', 'tmpfs', '-o', f'size={SMALL_DISK}', 'tmpfs', str(folder)],
        capture_output=True, check=False).returncode == 0
    if mounted:
        yield folder, {}
        subprocess.run(['umount', '--lazy', str(folder)], check=False)
        return

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (SMALL_DISK, SMALL_DISK))

    yield folder, {'preexec_fn': limit_file_size}


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_a_full_disk_stops_the_recorder_cleanly_and_keeps_what_was_flushed(rclpy_context, small_disk, storage):
    folder, popen = small_disk
    bag = folder / 'session'
    camera = _Camera(rclpy_context, 320, 240)  # 230 kB an image: the disk holds about 9
    recorder = start_recorder(bag, 'image_raw', '--storage', storage, **popen)
    try:
        wait_for_line(recorder, 'recording /image_raw')
        camera.publish_and_wait_until_flushed(4)
        deadline = time.monotonic() + 20
        while recorder.poll() is None and time.monotonic() < deadline:
            camera.publish()
            time.sleep(1 / FRAME_RATE)
        output = _rest_of_output(recorder)
    finally:
        if recorder.poll() is None:
            recorder.kill()
        camera.close()

    assert recorder.returncode == 2, output
    assert 'Traceback' not in output
    error = output.strip().splitlines()[-1]
    assert error.startswith(f'facesym record: error: disk full writing {bag}/session.'), error
    kept = int(re.search(r'the (\d+) messages flushed before it are kept', error)[1])
    assert not (bag / 'metadata.yaml').exists()  # nothing claims more than the files hold

    stamps, problems = _stamps(bag)
    assert [stamp // NS for stamp in stamps] == list(range(kept))  # every flushed message, in order, none torn
    assert 4 <= kept < camera.sent
    assert any('metadata.yaml is missing' in p for p in problems)
    assert not any('unreadable' in p or 'damaged' in p for p in problems), problems
    if storage == 'mcap':
        chunks = _mcap_chunks(next(bag.glob('*.mcap')))
        assert chunks and all(chunk.uncompressed_crc == zlib.crc32(chunk.data) != 0 for _, chunk in chunks)
    else:
        assert not list(bag.glob('*-journal'))  # rolled back to the last flush, on disk: other tools read it too


# -- a damaged sqlite3 page -----------------------------------------------------------------------------------------

def _message_pages(db3: Path) -> list[tuple[int, str, int]]:
    """(page number, kind, cells) of the pages of the messages table, in b-tree order."""
    with apsw.Connection(f'{db3.as_uri()}?mode=ro', flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI) as db:
        return [(pageno, f'{pagetype} {path}', ncell) for pageno, pagetype, path, ncell in db.execute(
            "SELECT pageno, pagetype, path, ncell FROM dbstat WHERE name = 'messages'")]


def _overwrite_page(db3: Path, page: int, data: bytes) -> None:
    with apsw.Connection(f'{db3.as_uri()}?mode=ro', flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI) as db:
        size = db.execute('PRAGMA page_size').fetchone()[0]
    with db3.open('r+b') as stream:
        stream.seek((page - 1) * size)
        stream.write(data[:size].ljust(size, b'\xff'))


@pytest.mark.parametrize('where', ['row leaf', 'first overflow page'])
def test_a_damaged_sqlite3_page_costs_only_the_messages_on_it(tmp_path, clip, where):
    bag = tmp_path / 'damaged'
    write_image_bag(bag, clip, FRAME_RATE, storage='sqlite3')
    db3 = bag / 'damaged.db3'
    pages = _message_pages(db3)
    if where == 'row leaf':
        candidates = [(page, cells) for page, kind, cells in pages if kind.startswith('leaf')]
    else:  # the start of a message's overflow chain: its next-page pointer is what SQLite checks
        candidates = [(page, 1) for page, kind, _ in pages if kind.startswith('overflow') and kind.endswith('+000000')]
    page, lost = candidates[len(candidates) // 2]
    _overwrite_page(db3, page, random.Random(page).randbytes(65536))

    stamps, problems = _stamps(bag)
    frames = _frame_numbers(stamps)
    missing = sorted(set(range(FRAMES)) - set(frames))
    assert frames == sorted(set(frames)) and len(frames) == FRAMES - lost
    assert missing == list(range(missing[0], missing[0] + lost))  # the rows on that page, and only those
    assert any(f'{lost} of {FRAMES} messages could not be read' in p for p in problems), problems

    result = facesym('score-bag', bag, '--quiet', '--json', tmp_path / 'score.json')
    assert result.returncode == 0 and 'Traceback' not in result.stderr, result.stderr
    report = json.loads((tmp_path / 'score.json').read_text())
    assert report['frames_read'] == FRAMES - lost
    assert any('damaged' in p and 'could not be read' in p for p in report['problems'])
    [trial] = report['trials']
    assert 'dropped_frames' in trial['quality']['flags']  # the lost frames leave a gap the score shows


@pytest.mark.parametrize(('where', 'reason'), [('schema page', 'not a readable sqlite3 file'),
                                               ('table root', f'{FRAMES} of {FRAMES} messages could not be read')])
def test_a_sqlite3_bag_with_nothing_readable_gets_a_one_line_error(tmp_path, clip, where, reason):
    bag = tmp_path / 'ruined'
    write_image_bag(bag, clip, FRAME_RATE, storage='sqlite3')
    db3 = bag / 'ruined.db3'
    page = 1 if where == 'schema page' else next(p for p, kind, _ in _message_pages(db3) if kind == 'internal /')
    _overwrite_page(db3, page, random.Random(page).randbytes(65536))
    for command in (('score-bag', bag, '--quiet'), ('play', bag, '--rate', '100', '--wait', '0.5')):
        result = facesym(*command)
        if command[0] == 'play' and where == 'table root':
            # play publishes what it can read (nothing) and says why
            assert result.returncode == 0 and reason in result.stderr, result.stderr
            continue
        assert result.returncode == 2, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert reason in line and 'Traceback' not in result.stderr


# -- MCAP chunk CRCs ------------------------------------------------------------------------------------------------

def _mcap_chunks(path: Path) -> list[tuple[int, Chunk]]:
    """(offset of the chunk's data, chunk) of every chunk record, in file order (readable even without a summary)."""
    chunks = []
    with path.open('rb') as stream:
        try:
            for record in StreamReader(stream, emit_chunks=True).records:
                if isinstance(record, Chunk):
                    chunks.append((stream.tell() - len(record.data), record))
        except Exception:
            pass
    return chunks


def test_mcap_chunks_carry_crcs_and_a_bad_chunk_is_reported_and_skipped(tmp_path, clip):
    bag = tmp_path / 'rotten'
    write_image_bag(bag, clip, FRAME_RATE)
    mcap = bag / 'rotten.mcap'
    chunks = _mcap_chunks(mcap)
    assert len(chunks) > 3
    assert all(chunk.uncompressed_crc == zlib.crc32(chunk.data) != 0 for _, chunk in chunks)

    offset, chunk = chunks[len(chunks) // 2]
    lost = sum(isinstance(record, Message) for record in breakup_chunk(chunk))
    data = bytearray(mcap.read_bytes())
    data[offset + len(chunk.data) // 2] ^= 0x10  # one flipped bit in an archived bag
    mcap.write_bytes(data)

    reviewed = tmp_path / 'reviewed'
    report = score_json(bag, tmp_path, '--output-bag', reviewed)
    assert report['frames_read'] == FRAMES - lost
    [problem] = [p for p in report['problems'] if 'CRC mismatch' in p]
    assert f'its {lost} messages (/image_raw {lost}) are skipped' in problem
    # what score-bag writes carries CRCs too
    written = _mcap_chunks(reviewed / 'reviewed.mcap')
    assert written and all(c.uncompressed_crc == zlib.crc32(c.data) != 0 for _, c in written)

    # without summary and metadata.yaml (a recorder that never finished), the record-by-record read checks too
    (bag / 'metadata.yaml').unlink()
    last_offset, last = chunks[-1]
    mcap.write_bytes(bytes(data[:last_offset + len(last.data)]))
    stamps, problems = _stamps(bag)
    assert len(stamps) == FRAMES - lost
    assert any('CRC mismatch' in p and f'its {lost} messages' in p for p in problems), problems
