"""`facesym view`: a Foxglove WebSocket client (loopback only) receives the live graph's image, annotations and
scores; the shipped layout is the generated one."""

from __future__ import annotations

import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

from websockets.sync.client import connect

from facesym_ros.ros.foxglove_view import layout_json
from helpers.processes import LineReader

ROOT = Path(__file__).resolve().parents[1]
SUBPROTOCOLS = ['foxglove.sdk.v1', 'foxglove.websocket.v1']
"""The SDK's server (0.30) speaks foxglove.sdk.v1, the successor of foxglove.websocket.v1 with the same framing."""
MESSAGE_DATA = 0x01  # binary opcode of the Foxglove WebSocket protocol: u32 subscription, u64 log time, payload
WANTED = ('/image_raw', '/flow_heatmap', '/annotations', '/score_running')
SAMPLE_BYTES = 640 * 360 * 3


def start_view() -> tuple[subprocess.Popen, int]:
    """`facesym view --port 0`, and the port it prints."""
    process = subprocess.Popen([sys.executable, '-m', 'facesym_ros.cli', 'view', '--port', '0'],
                               stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    line = LineReader(process.stderr).wait_for('ws://127.0.0.1:', timeout=30)
    match = re.search(r'ws://127\.0\.0\.1:(\d+)', line or '')
    if match:
        return process, int(match.group(1))
    process.kill()
    raise AssertionError(f'facesym view did not start: {line!r}')


def collect(port: int, wanted: tuple[str, ...], enough: int | dict[str, int] = 3, timeout: float = 45.0
            ) -> tuple[dict[str, dict], dict[str, list[tuple[int, bytes]]]]:
    """As a Foxglove client: subscribe to these channels once advertised; (channels, [(log time, payload)] per
    channel) once each has `enough` messages (a number for all, or one per channel), or at the timeout."""
    received: dict[str, list[tuple[int, bytes]]] = {topic: [] for topic in wanted}
    needed = enough if isinstance(enough, dict) else dict.fromkeys(wanted, enough)
    channels: dict[str, dict] = {}
    with connect(f'ws://127.0.0.1:{port}', subprotocols=SUBPROTOCOLS, max_size=None, open_timeout=10) as websocket:
        assert websocket.subprotocol in SUBPROTOCOLS
        subscribed: dict[int, str] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all(len(r) >= needed[t] for t, r in received.items()):
            try:
                message = websocket.recv(timeout=1.0)
            except TimeoutError:
                continue
            if isinstance(message, str):
                control = json.loads(message)
                if control.get('op') == 'advertise':
                    channels.update({c['topic']: c for c in control['channels']})
                    new = [(len(subscribed) + i, channels[t]['id']) for i, t in enumerate(
                        t for t in wanted if t in channels and t not in subscribed.values())]
                    for subscription, channel_id in new:
                        subscribed[subscription] = next(t for t, c in channels.items() if c['id'] == channel_id)
                    if new:
                        websocket.send(json.dumps({'op': 'subscribe', 'subscriptions': [
                            {'id': subscription, 'channelId': channel_id} for subscription, channel_id in new]}))
                continue
            if message[0] == MESSAGE_DATA:
                subscription, log_time = struct.unpack_from('<IQ', message, 1)
                received[subscribed[subscription]].append((log_time, message[13:]))
    return channels, received


def test_view_serves_image_annotations_and_scores_to_a_foxglove_client(live_graph):
    graph, _ = live_graph(
        names=['image_source', 'face_detector', 'landmark_detector', 'optical_flow', 'symmetry_scorer'],
        overrides={'image_source': {'source': 'sample', 'loop': 'true', 'frame_rate': '10.0'},
                   'symmetry_scorer': {'window_seconds': '1.0', 'window_period': '0.5'}})
    graph.start()
    view, port = start_view()
    try:
        channels, received = collect(port, WANTED)
    finally:
        graph.stop()
        view.send_signal(signal.SIGTERM)
        assert view.wait(15) == 0

    assert channels['/image_raw']['schemaName'] == 'foxglove.RawImage'
    assert channels['/annotations']['schemaName'] == 'foxglove.ImageAnnotations'
    assert channels['/score_running']['encoding'] == 'json'
    assert channels['/score_running']['schemaName'] == 'facesym.SymmetryScore'
    assert {topic: len(messages) >= 3 for topic, messages in received.items()} == dict.fromkeys(WANTED, True)
    assert all(len(payload) > SAMPLE_BYTES for _, payload in received['/image_raw'])  # whole bgr8 frames
    # annotations are logged at their image's stamp: the image panel draws them over that very frame
    image_times = {log_time for log_time, _ in received['/image_raw'] + received['/flow_heatmap']}
    assert image_times & {log_time for log_time, _ in received['/annotations']}
    scores = [json.loads(payload) for _, payload in received['/score_running']]
    assert all(score['kind'] == 'window' for score in scores)
    assert all(set(score['regions']) == {'forehead', 'eye', 'cheek'} for score in scores)
    assert any(score['regions']['eye']['symmetry'] is not None for score in scores)


def test_view_relays_the_annotated_picture_compressed_and_the_patients_prompt(live_graph, rclpy_context):
    from std_msgs.msg import Header

    from facesym_ros.clinic.session_record import PROMPT_TOPIC
    from facesym_ros.msg import TaskPrompt
    from facesym_ros.ros.node_base import latched_qos

    graph, client = live_graph(overrides={'image_source': {'source': 'sample', 'loop': 'true', 'frame_rate': '10.0'}})
    prompt = TaskPrompt(header=Header(frame_id='camera'), session_id='s-1', task='smile',
                        instruction='Smile as widely as you can', task_number=2, task_count=5,
                        state=TaskPrompt.STATE_GO, duration=4.0)
    publisher = client.create_publisher(TaskPrompt, PROMPT_TOPIC, latched_qos(1))
    publisher.publish(prompt)  # latched: published before the view starts, as a session's current task is
    graph.start()
    view, port = start_view()
    try:
        channels, received = collect(port, ('/annotated', '/prompt'), enough={'/annotated': 2, '/prompt': 1},
                                     timeout=60)
    finally:
        graph.stop()
        view.send_signal(signal.SIGTERM)
        assert view.wait(15) == 0
    assert channels['/annotated']['schemaName'] == 'foxglove.CompressedImage'
    assert channels['/prompt']['schemaName'] == 'facesym.TaskPrompt'
    assert len(received['/annotated']) >= 2
    assert len(received['/prompt']) >= 1  # logged once a client subscribes, though the prompt came before
    # the payload is the protobuf CompressedImage: its JPEG data is in it, bytes as the annotator encoded them
    assert all(b'\xff\xd8\xff' in payload and b'jpeg' in payload for _, payload in received['/annotated'])
    shown = json.loads(received['/prompt'][0][1])
    assert shown == {'session_id': 's-1', 'subject_id': '', 'task': 'smile',
                     'instruction': 'Smile as widely as you can', 'task_number': 2, 'task_count': 5,
                     'state': 'go', 'duration': 4.0}


def test_the_shipped_foxglove_layout_is_the_generated_one():
    shipped = (ROOT / 'config' / 'foxglove_layout.json').read_text()
    assert shipped == layout_json(), 'regenerate: python -m facesym_ros.ros.foxglove_view > config/foxglove_layout.json'
    topics = set(re.findall(r'"(/[a-z_]+)', shipped))
    assert {'/image_raw', '/flow_heatmap', '/annotations', '/score_running', '/score'} <= topics
