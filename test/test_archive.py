"""`facesym score-archive` on a real Dask cluster: the table equals each input scored alone, a rerun scores
nothing, a driver SIGKILLed mid-run loses and doubles no row, a worker SIGKILLed mid-task is replaced."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from facesym_ros.bag.storage import write_image_bag
from facesym_ros.config.files import SAMPLE_VIDEO
from facesym_ros.core.video import FrameSource
from facesym_ros.msg import TrialEvent
from helpers.cli import facesym
from helpers.session_bag import write_session_bag

RATE = 30.0
KEY = ('source', 'trial_id', 'region')
COMPARED = ('subject_id', 'session_id', 'task', 'trial_id', 'first_stamp_ns', 'last_stamp_ns', 'frames',
            'flow_pairs', 'region', 'vs_left', 'vs_right', 'symmetry', 'lambda', 'threshold_factor',
            'quality_flags', 'quality_notes')


@pytest.fixture(scope='module')
def archive(tmp_path_factory) -> dict:
    """Six inputs (two plain bags, one with trial markers; two videos; a session bag; a damaged bag), named by a
    folder searched, a list file and a session bag given directly; and each scored alone by its command."""
    root = tmp_path_factory.mktemp('archive')
    clip = [image for _, image in FrameSource.open(SAMPLE_VIDEO).images()]
    site = root / 'clinic' / 'site-a'
    site.mkdir(parents=True)
    write_image_bag(site / 'visit-plain', clip[:45], RATE, compressed=True)
    shutil.copy(SAMPLE_VIDEO, site / 'visit.mp4')
    broken = root / 'clinic' / 'site-b' / 'copied-half'
    broken.mkdir(parents=True)
    (broken / 'copied-half_0.mcap').write_bytes(b'not an mcap file; the copy stopped here' * 20)
    others = root / 'others'
    others.mkdir()
    marked = _bag_with_markers(others, clip[:50])
    writer = cv2.VideoWriter(str(others / 'old.avi'), cv2.VideoWriter_fourcc(*'MJPG'), RATE, clip[0].shape[1::-1])
    for image in clip[:36]:
        writer.write(image)
    writer.release()
    listed = root / 'more.txt'
    listed.write_text(f'# inputs kept elsewhere\n{marked}\nothers/old.avi\n\n')
    session = write_session_bag(root / 'session-bag', clip, RATE)
    inputs = [root / 'clinic', listed, session]

    alone: dict[str, list[dict]] = {}
    for bag in (site / 'visit-plain', marked):
        out = root / f'{bag.name}.json'
        facesym('score-bag', bag, '--json', out, '--quiet', check=True)
        alone[str(bag)] = _rows(json.loads(out.read_text())['trials'])
    for video in (site / 'visit.mp4', others / 'old.avi'):
        out = root / f'{video.name}.json'
        facesym('score', video, '--json', out, check=True)
        alone[str(video)] = _rows([json.loads(out.read_text())])
    reports = root / 'session-alone'
    facesym('session', '--from-bag', session, '--output', reports, check=True)
    alone[str(session)] = _rows([task['score'] for task in json.loads((reports / 'report.json').read_text())['tasks']])
    # one trial of three regions from the plain bag and each video, two from the marked bag and the session
    assert sorted(len(rows) for rows in alone.values()) == [3, 3, 3, 6, 6]
    refused = facesym('score-bag', broken, '--quiet')
    assert refused.returncode == 2
    reason = refused.stderr.strip().removeprefix('facesym score-bag: error: ')
    return {'root': root, 'inputs': inputs, 'alone': alone, 'broken': str(broken), 'reason': reason,
            'session': session, 'session_report': reports}


def _bag_with_markers(folder: Path, images: list[np.ndarray]) -> Path:
    """A sqlite3 bag with two trials marked as the scorer records them."""
    from builtin_interfaces.msg import Time
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header

    from facesym_ros.bag.storage import Topic, add_topic, create_writer, open_bag

    images_only = folder / 'marked-images'
    write_image_bag(images_only, images, RATE, compressed=True)
    start = 1_700_000_000 * 10**9
    marks = []
    for seconds, event, trial_id in ((0.1, TrialEvent.START, 'first'), (0.7, TrialEvent.STOP, 'first'),
                                     (0.8, TrialEvent.START, 'second'), (1.6, TrialEvent.STOP, 'second')):
        stamp = start + round(seconds * 1e9)
        message = TrialEvent(header=Header(stamp=Time(sec=stamp // 10**9, nanosec=stamp % 10**9)), event=event,
                             trial_id=trial_id)
        marks.append((stamp, serialize_message(message)))
    bag = folder / 'marked'
    writer = create_writer(bag, 'sqlite3')
    with open_bag(images_only) as contents:
        image_connection = add_topic(writer, contents.topics['/image_raw'])
        mark_connection = add_topic(writer, Topic('/trial_events', 'facesym_ros/msg/TrialEvent', '', ''))
        for message in contents.messages():
            while marks and marks[0][0] <= message.log_time_ns:
                writer.write(mark_connection, *marks.pop(0))
            writer.write(image_connection, message.log_time_ns, message.data)
    writer.close()
    shutil.rmtree(images_only)
    return bag


def _rows(trials: list[dict]) -> list[dict]:
    """A score JSON's trials (`score-bag --json`, `score --json`, report.json's task scores) as table rows."""
    return [{'subject_id': trial['subject_id'], 'session_id': trial['session_id'], 'task': trial['task'],
             'trial_id': trial['trial_id'], 'first_stamp_ns': trial['first_stamp_ns'],
             'last_stamp_ns': trial['last_stamp_ns'], 'frames': trial['frames'], 'flow_pairs': trial['flow_pairs'],
             'region': region, 'vs_left': values['vs_left'], 'vs_right': values['vs_right'],
             'symmetry': values['symmetry'], 'lambda': trial['lambda'], 'threshold_factor': trial['threshold_factor'],
             'quality_flags': '|'.join(trial['quality']['flags']),
             'quality_notes': ' | '.join(trial['quality']['notes'])}
            for trial in trials for region, values in trial['regions'].items()]


def _table(output: Path) -> list[dict]:
    return pq.read_table(output / 'trials.parquet').to_pylist()


def _assert_complete(output: Path, archive: dict) -> None:
    """The archive's table is exactly each input's rows scored alone, each row once, and the one failure."""
    rows = _table(output)
    assert len({tuple(row[name] for name in KEY) for row in rows}) == len(rows)  # no row doubled
    by_source: dict[str, list[dict]] = {}
    for row in rows:
        by_source.setdefault(row['source'], []).append({name: row[name] for name in COMPARED})
    assert by_source == archive['alone']
    failures = (output / 'failures.csv').read_text().splitlines()
    assert failures[0] == 'source,input_kind,reason'
    assert failures[1:] == [f'{archive["broken"]},bag,{archive["reason"]}']


def _score_archive(archive: dict, output: Path, *extra: object) -> subprocess.CompletedProcess:
    return facesym('score-archive', *archive['inputs'], '--output', output, '--dashboard-address', ':0', *extra,
                   check=True)


def test_the_archive_is_each_input_scored_alone_and_a_rerun_scores_nothing(archive, tmp_path):
    output = tmp_path / 'out'
    run = _score_archive(archive, output, '--workers', 2)
    assert '6 inputs, 0 already scored' in run.stderr and 'Dask dashboard: http://' in run.stderr
    _assert_complete(output, archive)
    kinds = {row['source']: row['input_kind'] for row in _table(output)}
    assert kinds[str(archive['session'])] == 'session_bag' and set(kinds.values()) == {'bag', 'session_bag', 'video'}
    # the session's report is the one `session --from-bag` writes
    [folder] = (output / 'sessions').glob('*/*')
    assert folder.relative_to(output / 'sessions').parts == ('S-0001', 'visit-1')
    alone = archive['session_report']
    assert (folder / 'report.json').read_bytes() == (alone / 'report.json').read_bytes()
    assert (folder / 'report.html').read_bytes() == (alone / 'report.html').read_bytes()
    # the CSV holds what the Parquet does, the floats exactly
    csv_lines = (output / 'trials.csv').read_text().splitlines()
    assert len(csv_lines) == 1 + len(_table(output))

    parts = {path.name: path.stat().st_mtime_ns for path in (output / 'parts').glob('*.json')}
    assert len(parts) == 6
    again = _score_archive(archive, output)
    assert '6 inputs, 6 already scored' in again.stderr and '0 to score' in again.stderr
    assert 'Dask dashboard' not in again.stderr  # no cluster started for nothing
    assert {path.name: path.stat().st_mtime_ns for path in (output / 'parts').glob('*.json')} == parts
    _assert_complete(output, archive)
    # an input changed since (its mtime) is scored again, alone
    video = Path(next(source for source in archive['alone'] if source.endswith('.mp4')))
    os.utime(video, ns=(time.time_ns(), time.time_ns()))
    changed = _score_archive(archive, output, '--workers', 1)
    assert '6 inputs, 5 already scored' in changed.stderr and '1 to score' in changed.stderr
    _assert_complete(output, archive)


def test_a_driver_killed_mid_run_loses_and_doubles_no_row(archive, tmp_path):
    output = tmp_path / 'out'
    driver = subprocess.Popen([sys.executable, '-m', 'facesym_ros.cli', 'score-archive', *map(str, archive['inputs']),
                               '--output', str(output), '--workers', '1', '--dashboard-address', 'none', '--quiet'],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while len(list((output / 'parts').glob('*.json'))) < 2 and driver.poll() is None:
            assert time.monotonic() < deadline, 'no input finished'
            time.sleep(0.05)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        _end_group(driver)
    done = len(list((output / 'parts').glob('*.json')))
    assert 2 <= done < 6, done
    assert not (output / 'trials.parquet').exists()
    again = _score_archive(archive, output, '--workers', 2)
    assert f'6 inputs, {done} already scored' in again.stderr
    _assert_complete(output, archive)


def _end_group(process: subprocess.Popen) -> None:
    """End what is left of a process group this test started (a killed driver's worker processes)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def test_a_worker_killed_mid_task_on_a_running_cluster_is_replaced_and_its_task_run_again(archive, tmp_path):
    from distributed import Client

    scheduler_file = tmp_path / 'scheduler.json'
    dask = [sys.executable, '-m', 'distributed.cli.dask_scheduler']
    cluster = [subprocess.Popen([*dask, '--host', '127.0.0.1', '--port', '0', '--no-dashboard',
                                 '--scheduler-file', str(scheduler_file)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)]
    driver = None
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            assert time.monotonic() < deadline, 'the scheduler did not start'
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())['address']
        assert address.startswith('tcp://127.0.0.1:')
        cluster.append(subprocess.Popen(
            [sys.executable, '-m', 'distributed.cli.dask_worker', address, '--nworkers', '2', '--nthreads', '1',
             '--no-dashboard'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        with Client(address, timeout='60s') as client:
            client.wait_for_workers(2, timeout=120)
            driver = subprocess.Popen(
                [sys.executable, '-m', 'facesym_ros.cli', 'score-archive', *map(str, archive['inputs']),
                 '--output', str(tmp_path / 'out'), '--scheduler', address, '--quiet'],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            victim = _worker_mid_task(client, deadline=time.monotonic() + 120)
            pid = client.run(os.getpid, workers=[victim])[victim]
            os.kill(pid, signal.SIGKILL)
            _, stderr = driver.communicate(timeout=300)
            assert driver.returncode == 0, stderr
            client.wait_for_workers(2, timeout=120)  # the nanny started a new worker process
            assert pid not in client.run(os.getpid).values()
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
        for process in reversed(cluster):
            process.terminate()
        for process in reversed(cluster):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
    _assert_complete(tmp_path / 'out', archive)


def _worker_mid_task(client, deadline: float) -> str:
    """The address of a worker running a score-archive task, once one is."""
    while time.monotonic() < deadline:
        for worker, keys in client.processing().items():
            if any(str(key).startswith('facesym-score-') for key in keys):
                return worker
        time.sleep(0.02)
    raise AssertionError('no worker ran a score-archive task')
