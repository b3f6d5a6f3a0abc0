"""One image geometry per trial, live (issue 17, class 4): a camera whose image size changes mid-trial gives a
score flagged image_changed through real nodes over DDS, as a folder of mixed sizes is refused offline."""

from __future__ import annotations

import math
import time

import cv2
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from facesym_ros.config.files import SAMPLE_VIDEO
from facesym_ros.config.registry import NODES
from facesym_ros.core.video import FrameSource
from facesym_ros.msg import SymmetryScore, TrialEvent
from facesym_ros.ros.conversions import bgr_to_image, ns_to_stamp
from facesym_ros.ros.node_base import CONTROL_QUEUE_DEPTH, image_qos, pipeline_qos

CHAIN = ('face_detector', 'landmark_detector', 'optical_flow', 'symmetry_scorer')
PERIOD_NS = 66_666_667  # 15 Hz


def test_the_issues_480_to_496_size_change_mid_trial_is_flagged_live(live_graph):
    graph, client = live_graph(names=list(CHAIN))
    graph.start()
    client.wait_for_graph([spec for spec in NODES if spec.name in CHAIN])
    camera = client.create_publisher(Image, 'image_raw', image_qos(50))
    control = client.create_publisher(TrialEvent, 'trial_control', pipeline_qos(CONTROL_QUEUE_DEPTH))
    assert client.spin_until(lambda: camera.get_subscription_count() > 0
                             and control.get_subscription_count() > 0, 30.0)
    frames = [image for _, image in FrameSource.open(SAMPLE_VIDEO).images()][:30]
    square = [image[:, 140:500] for image in frames]  # 360x360 around the face
    sizes = [480] * 15 + [496] * 15
    first_ns = time.time_ns()
    control.publish(TrialEvent(header=Header(stamp=ns_to_stamp(first_ns)), event=TrialEvent.START,
                               trial_id='size-change'))
    client.spin_until(lambda: False, 0.5)
    for index, (image, side) in enumerate(zip(square, sizes, strict=True)):
        resized = cv2.resize(image, (side, side), interpolation=cv2.INTER_CUBIC)
        camera.publish(bgr_to_image(resized, Header(frame_id='camera',
                                                    stamp=ns_to_stamp(first_ns + index * PERIOD_NS))))
        client.spin_until(lambda: False, PERIOD_NS / 1e9)
    client.wait_for_frames(len(square), timeout=120.0)
    client.stop_trial(stamp_ns=first_ns + (len(square) - 1) * PERIOD_NS)
    final = client.wait_for_final('size-change', timeout=60.0)
    assert final.frame_count == len(square)
    assert final.quality_flags & SymmetryScore.FLAG_IMAGE_CHANGED
    assert any(note.startswith('image size changed: 15 of 30 frames were 496x496, the first 480x480')
               for note in final.quality_notes), final.quality_notes
    assert not any(math.isnan(region.vs_left) for region in final.regions)  # the motion is kept, for the record
    assert graph.exited() is None
