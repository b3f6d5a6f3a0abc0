"""A stand-in for a third-party camera driver: plain rclpy, no facesym code on the wire, no DDS profile.

    python -m helpers.camera_driver TOPIC FRAMES RATE reliable|best_effort

Publishes FRAMES 640x480 bgr8 images (the sample's first frame, scaled) at RATE Hz once a subscriber is
matched, stamped 1, 2, 3 ... seconds, then prints how many it published.
"""

from __future__ import annotations

import sys
import time

import cv2
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from facesym_ros.config.files import SAMPLE_VIDEO


def main() -> int:
    topic, frames, rate, reliability = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    capture = cv2.VideoCapture(str(SAMPLE_VIDEO))
    ok, image = capture.read()
    assert ok, 'cannot read the sample'
    data = cv2.resize(image, (640, 480)).tobytes()
    rclpy.init()
    node = rclpy.create_node('camera_driver')
    policy = ReliabilityPolicy.RELIABLE if reliability == 'reliable' else ReliabilityPolicy.BEST_EFFORT
    publisher = node.create_publisher(Image, topic, QoSProfile(depth=10, reliability=policy))
    deadline = time.monotonic() + 30
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(1.0)  # let the match settle on both sides
    start = time.monotonic()
    for index in range(frames):
        while time.monotonic() < start + index / rate:
            time.sleep(0.001)
        msg = Image(height=480, width=640, encoding='bgr8', step=640 * 3, data=data)
        msg.header.frame_id = 'driver_camera'
        msg.header.stamp.sec = index + 1
        publisher.publish(msg)
    time.sleep(0.5)
    print(f'published {frames}', flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
