"""A separate process on the far side of DDS: publishes the sample messages, or receives and prints them.

    python -m helpers.dds_peer publish        # latched, until killed
    python -m helpers.dds_peer receive N      # prints one JSON line per topic, exits after N topics
"""

from __future__ import annotations

import contextlib
import json
import sys
import time

import rclpy
from rclpy.node import Node

from facesym_ros.ros.node_base import latched_qos
from helpers.message_samples import samples, to_plain


def main() -> int:
    mode = sys.argv[1]
    rclpy.init()
    node = Node(f'dds_peer_{mode}')
    messages = samples()
    if mode == 'publish':
        publishers = [node.create_publisher(type(msg), topic, latched_qos(1)) for topic, msg in messages.items()]
        for publisher, msg in zip(publishers, messages.values(), strict=True):
            publisher.publish(msg)
        print('published', flush=True)
        with contextlib.suppress(KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
            rclpy.spin(node)
        return 0

    expected = int(sys.argv[2])
    received: dict[str, object] = {}
    for topic, msg in messages.items():
        node.create_subscription(type(msg), topic, lambda m, t=topic: received.setdefault(t, m), latched_qos(1))
    deadline = time.monotonic() + 30
    while len(received) < expected and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    for topic, msg in received.items():
        print(json.dumps({'topic': topic, 'type': type(msg).__name__, 'value': to_plain(msg)}), flush=True)
    return 0 if len(received) == expected else 1


if __name__ == '__main__':
    sys.exit(main())
