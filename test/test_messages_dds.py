"""The custom messages travel between two separate processes over real DDS (Fast DDS)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers.message_samples import samples, to_plain

TEST_DIR = Path(__file__).resolve().parent


def test_every_message_crosses_dds_between_two_processes():
    expected = samples()
    publisher = subprocess.Popen([sys.executable, '-m', 'helpers.dds_peer', 'publish'], cwd=TEST_DIR,
                                 stdout=subprocess.PIPE, text=True)
    try:
        assert publisher.stdout.readline().strip() == 'published'
        receiver = subprocess.run([sys.executable, '-m', 'helpers.dds_peer', 'receive', str(len(expected))],
                                  cwd=TEST_DIR, capture_output=True, text=True, timeout=60, check=False)
    finally:
        publisher.terminate()
        publisher.wait(timeout=10)
    received = {entry['topic']: entry for entry in map(json.loads, receiver.stdout.splitlines())}
    assert receiver.returncode == 0, receiver.stderr
    assert set(received) == set(expected)
    for topic, msg in expected.items():
        assert received[topic]['type'] == type(msg).__name__
        assert received[topic]['value'] == to_plain(msg), topic

    # A few fields by hand, so the comparison cannot pass on two equally wrong sides.
    score = received['symmetry_score']['value']
    assert score['trial_id'] == 'trial-0007'
    assert (score['task'], score['session_id'], score['subject_id']) == ('smile', 'S-12', 'P-0042')
    prompt = received['task_prompt']['value']
    assert (prompt['task'], prompt['task_number'], prompt['task_count'], prompt['state']) == ('raise_brows', 2, 7, 1)
    assert prompt['instruction'] == 'Raise your eyebrows.' and prompt['duration'] == 4.0
    assert received['trial_event']['value']['subject_id'] == 'P-0042'
    assert score['regions'][1] == {'region': 'eye', 'vs_left': 0.0194, 'vs_right': 0.0273, 'symmetry': 0.97}
    assert score['regions'][2]['symmetry'] == 'nan'
    assert score['quality_flags'] == 1 | 128
    assert score['header'] == {'stamp': {'sec': 1732000000, 'nanosec': 123456789}, 'frame_id': 'rig_camera'}
    landmarks = received['face_landmarks']['value']
    assert len(landmarks['points']) == 68
    assert landmarks['points'][67] == {'x': 267.5, 'y': 284.25}
    assert landmarks['layout'] == 'ibug68'
    motion = received['region_motion']['value']
    assert [(r['region'], r['side']) for r in motion['regions']] == [
        ('forehead', 'left'), ('forehead', 'right'), ('eye', 'left'), ('eye', 'right'), ('cheek', 'left'),
        ('cheek', 'right')]
    assert motion['regions'][5]['magnitude_sum'] == 21.0
    assert received['face_detections']['value']['faces'][1]['box'] == {'x': 10, 'y': 12, 'width': 60, 'height': 61}
