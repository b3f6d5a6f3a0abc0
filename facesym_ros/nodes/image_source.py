"""image_source: publishes sensor_msgs/Image and CameraInfo from a camera, a video file or a folder of frames.

This is how the rig and the demo feed the graph when no camera driver
package is installed. Camera frames are stamped with the node clock when
captured; frames of a file or folder with the time they are due (start time +
index / rate), as a camera running at that rate would stamp them, so timer
jitter does not look like dropped frames. Every image carries the configured
frame_id. A folder frame that cannot be read, or whose size differs from the
first frame's, ends the source with an error in the log (the node keeps running).

Publishes: image_raw (sensor_msgs/Image, bgr8, sensor-data QoS),
           camera_info (sensor_msgs/CameraInfo, uncalibrated: size and frame only),
           /diagnostics (publishing rate; processing time = reading, converting and publishing a frame).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import cv2
import numpy as np
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from facesym_ros.config.files import SAMPLE_VIDEO
from facesym_ros.config.node_settings import ImageSourceSettings, NodeQueueSettings
from facesym_ros.core.timebase import NS_PER_SECOND, ns_to_seconds
from facesym_ros.core.video import FrameSource, SourceError
from facesym_ros.ros.conversions import bgr_to_image
from facesym_ros.ros.node_base import MATCH_SETTLE_SECONDS, SettingsNode, image_qos, spin_node

CAMERA_PREFIX = 'camera:'


class CameraSource:
    """A V4L2/USB camera through OpenCV."""

    def __init__(self, index: int, width: int, height: int) -> None:
        self._capture = cv2.VideoCapture(index)
        if not self._capture.isOpened():
            raise SourceError(f'camera {index} cannot be opened')
        if width:
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self.frame_rate = float(self._capture.get(cv2.CAP_PROP_FPS) or 30.0)

    def images(self) -> Iterator[np.ndarray]:
        while True:
            ok, image = self._capture.read()
            if not ok:
                return
            yield image

    def release(self) -> None:
        self._capture.release()


class ImageSourceNode(SettingsNode):
    """Publishes frames from a file, folder or camera at the source's (or a given) rate."""

    def __init__(self, **kwargs) -> None:
        super().__init__('image_source', **kwargs)
        depth = self.settings(NodeQueueSettings).queue_size
        self._image_publisher = self.create_publisher(Image, 'image_raw', image_qos(depth))
        self._info_publisher = self.create_publisher(CameraInfo, 'camera_info', image_qos(depth))
        self.published = 0
        self._camera: CameraSource | None = None
        self._images: Iterator[np.ndarray] | None = None
        self._timer = None
        self._open()

    def check_settings(self, settings: dict) -> None:
        source = settings[ImageSourceSettings].source
        if source.startswith(CAMERA_PREFIX):
            if not source[len(CAMERA_PREFIX):].isdigit():
                raise ValueError(f'source {source!r}: expected camera:<index>, e.g. camera:0')
        elif source != 'sample':
            FrameSource.open(source)  # raises SourceError (a ValueError) naming the problem

    def settings_changed(self, previous: dict) -> None:
        self._open()

    @property
    def finished(self) -> bool:
        return self._timer is None

    def _open(self) -> None:
        settings = self.settings(ImageSourceSettings)
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        if self._camera is not None:
            self._camera.release()
            self._camera = None
        if settings.source.startswith(CAMERA_PREFIX):
            self._camera = CameraSource(int(settings.source[len(CAMERA_PREFIX):]), settings.camera_width,
                                        settings.camera_height)
            self._images = self._camera.images()
            rate = self._camera.frame_rate
        else:
            frames = FrameSource.open(SAMPLE_VIDEO if settings.source == 'sample' else settings.source)
            self._images = (image for _, image in frames.images())
            rate = frames.frame_rate
        rate = settings.frame_rate or rate
        self._period_ns = round(NS_PER_SECOND / rate)
        self._started_ns: int | None = None
        self.published = 0
        self._waiting_since = self.get_clock().now()
        self._matched_at: float | None = None
        self.get_logger().info(f'publishing {settings.source} at {rate:g} Hz as frame {settings.frame_id!r}')
        self._timer = self.create_timer(1.0 / rate, self._publish_next)
        self._timer_started_ns = self.get_clock().now().nanoseconds

    def _subscribers_ready(self, settings: ImageSourceSettings) -> bool:
        if self._image_publisher.get_subscription_count() >= settings.wait_for_subscribers:
            if settings.wait_for_subscribers == 0:
                return True
            if self._matched_at is None:
                self._matched_at = time.monotonic()
            return time.monotonic() - self._matched_at >= MATCH_SETTLE_SECONDS
        waited = ns_to_seconds((self.get_clock().now() - self._waiting_since).nanoseconds)
        if waited < settings.wait_timeout:
            return False
        self.get_logger().warning(
            f'only {self._image_publisher.get_subscription_count()} of {settings.wait_for_subscribers} '
            f'subscribers after {settings.wait_timeout:g} s; publishing anyway')
        self._waiting_since = self.get_clock().now()
        return True

    def _publish_next(self) -> None:
        settings = self.settings(ImageSourceSettings)
        if self.published == 0 and not self._subscribers_ready(settings):
            return
        started = time.perf_counter()
        try:
            image = next(self._images, None) if self._images is not None else None
        except SourceError as error:  # an unreadable frame, or one of another size, in a folder
            self.get_logger().error(f'source stopped after {self.published} frames: {error}')
            self.destroy_timer(self._timer)
            self._timer = None
            return
        if image is None and settings.loop and self._camera is None and self.published:
            self._open()
            return
        if image is None or (settings.max_frames and self.published >= settings.max_frames):
            self.get_logger().info(f'source finished after {self.published} frames')
            self.destroy_timer(self._timer)
            self._timer = None
            return
        now = self.get_clock().now()
        if self._started_ns is None:
            # The tick this call was scheduled for, never later than now: a frame is never stamped in the future.
            ticks = (now.nanoseconds - self._timer_started_ns) // self._period_ns
            self._started_ns = self._timer_started_ns + ticks * self._period_ns
        stamp = now if self._camera is not None else Time(
            nanoseconds=self._started_ns + self.published * self._period_ns, clock_type=now.clock_type)
        header = Header(stamp=stamp.to_msg(), frame_id=settings.frame_id)
        self._image_publisher.publish(bgr_to_image(image, header))
        self._info_publisher.publish(CameraInfo(header=header, height=image.shape[0], width=image.shape[1]))
        self.published += 1
        self.record_frame(time.perf_counter() - started, header)


def main(args: list[str] | None = None) -> int:
    return spin_node(ImageSourceNode, args)


if __name__ == '__main__':
    sys.exit(main())
