"""A short session bag as `facesym session` records it: camera images, the scorer's trial events (each START
naming its task, session and subject) and the session record on session_info, without running the live graph."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from builtin_interfaces.msg import Time
from rclpy.serialization import serialize_message
from std_msgs.msg import Header, String

from facesym_ros.bag.storage import Topic, add_topic, create_writer, open_bag, write_image_bag
from facesym_ros.clinic.session_record import COMPLETE, DONE, SessionRecord
from facesym_ros.msg import TrialEvent

START_NS = 1_700_000_000 * 10**9
PROTOCOL = """tasks:
  - name: rest
    instruction: Relax your face and look at the camera.
    duration: 1
    primary: [forehead, eye, cheek]
    baseline: true
  - name: smile
    instruction: Give a big smile.
    duration: 1
    primary: [cheek]
    watch: [eye]
"""
TASKS = (('rest', 0.1, 1.0), ('smile', 1.2, 2.2))  # task, start and stop in seconds after the first image


def write_session_bag(path: Path, images: Sequence[np.ndarray], frame_rate: float, *, subject: str = 'S-0001',
                      session: str = 'visit-1', tasks: Sequence[tuple[str, float, float]] = TASKS) -> Path:
    """The session bag at `path` (MCAP): the images from START_NS at frame_rate, a trial per task."""
    images_only = path.with_name(path.name + '-images')
    write_image_bag(images_only, images, frame_rate, compressed=True, start_ns=START_NS)
    record = SessionRecord(subject, session, '2026-11-30', 'test protocol', PROTOCOL, status=COMPLETE,
                           task_status={name: DONE for name, _, _ in tasks})
    events: list[tuple[int, str, bytes]] = [(START_NS, 'info', serialize_message(String(data=record.to_json())))]
    for number, (task, start, stop) in enumerate(tasks, start=1):
        trial_id = f'{session}-{number:02d}-{task}'
        for seconds, kind in ((start, TrialEvent.START), (stop, TrialEvent.STOP)):
            stamp = START_NS + round(seconds * 1e9)
            message = TrialEvent(header=Header(stamp=Time(sec=stamp // 10**9, nanosec=stamp % 10**9)), event=kind,
                                 trial_id=trial_id, task=task, session_id=session, subject_id=subject)
            events.append((stamp, 'event', serialize_message(message)))
    events.sort(key=lambda event: event[0])
    writer = create_writer(path, 'mcap')
    with open_bag(images_only) as contents:
        connections = {
            'image': add_topic(writer, contents.topics['/image_raw']),
            'event': add_topic(writer, Topic('/trial_events', 'facesym_ros/msg/TrialEvent', '', '')),
            'info': add_topic(writer, Topic('/session_info', 'std_msgs/msg/String', '', ''))}
        for message in contents.messages():
            while events and events[0][0] <= message.log_time_ns:
                stamp, name, data = events.pop(0)
                writer.write(connections[name], stamp, data)
            writer.write(connections['image'], message.log_time_ns, message.data)
    for stamp, name, data in events:
        writer.write(connections[name], stamp, data)
    writer.close()
    return path
