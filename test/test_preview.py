"""Whole camera frames go to face_detector alone: the annotator draws on face_detector's scaled-down
image_preview, its face box, landmarks, regions and heat map scaled to it."""

from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import Image

from facesym_ros.config.registry import IMAGE_TOPIC, NODES, PREVIEW_TOPIC, camera_subscribers, node
from facesym_ros.core.annotate import (
    LANDMARK_COLOUR,
    annotate,
    paste_scaled_patch,
    preview_image,
    scaled_box,
)
from facesym_ros.core.geometry import Box, Landmarks
from facesym_ros.ros.node_base import image_qos


def test_only_face_detector_takes_the_camera_topic_and_the_annotator_the_preview():
    assert camera_subscribers(NODES) == 1
    assert node('annotator').topic('image') == PREVIEW_TOPIC
    assert node('face_detector').topic('image') == IMAGE_TOPIC
    assert PREVIEW_TOPIC in node('face_detector').publishes


@pytest.mark.parametrize(('size', 'width', 'expected'), [
    ((1080, 1920), 960, (540, 960)), ((720, 1280), 960, (360, 640)), ((360, 640), 960, (360, 640)),
    ((1080, 1920), 0, (1080, 1920)), ((1081, 1921), 640, (270, 480)), ((1080, 1920), 700, (360, 640))])
def test_a_preview_is_scaled_down_by_a_whole_factor_to_at_most_its_width(size, width, expected):
    image = np.random.default_rng(1).integers(0, 256, (*size, 3), dtype=np.uint8)
    preview = preview_image(image, width)
    assert preview.shape[:2] == expected
    factor = size[1] // expected[1]
    if factor > 1:  # each preview pixel is the mean of its factor x factor block (area interpolation)
        block = image[:factor, :factor].reshape(-1, 3).mean(axis=0)
        assert np.abs(preview[0, 0].astype(float) - block).max() <= 1.0


def test_the_heat_map_and_the_drawing_land_where_they_are_in_the_whole_frame():
    scale = 0.5
    preview = np.zeros((540, 960, 3), np.uint8)
    place = Box(800, 300, 400, 400)  # in the 1920x1080 frame
    patch = np.full((400, 400, 3), 200, np.uint8)
    pasted = paste_scaled_patch(preview, patch, place, scale)
    assert (pasted[150:350, 400:600] == 200).all()
    assert (pasted[:150] == 0).all() and (pasted[350:] == 0).all() and (pasted[:, :400] == 0).all()
    # a patch reaching past the edge is cut where the preview ends
    edge = paste_scaled_patch(preview, np.full((300, 300, 3), 90, np.uint8), Box(1800, 900, 300, 300), scale)
    assert (edge[450:, 900:] == 90).all()
    assert scaled_box(Box(1800, 900, 300, 300), scale, 960, 540) == Box(900, 450, 60, 90)

    points = np.tile(np.array([[1000.0, 500.0]], np.float32), (68, 1))
    landmarks = Landmarks(points, None, 'test')
    drawn = annotate(preview, None, landmarks, [], scale=scale)
    assert tuple(drawn[250, 500]) == LANDMARK_COLOUR  # (1000, 500) in the frame is (500, 250) in the preview
    assert tuple(drawn[500, 1000 // 2 + 200]) == (0, 0, 0)


def test_the_annotator_draws_on_the_preview_of_face_detector(live_graph):
    width = 320
    graph, client = live_graph(
        names=['image_source', 'face_detector', 'landmark_detector', 'optical_flow', 'symmetry_scorer', 'annotator'],
        overrides={'image_source': {'source': 'sample', 'loop': 'true', 'frame_rate': '10.0'},
                   'face_detector': {'preview_width': str(width)}})
    sizes: list[tuple[int, int]] = []
    client.create_subscription(Image, 'annotated', lambda msg: sizes.append((msg.width, msg.height)), image_qos(5))
    graph.start()
    assert client.spin_until(lambda: len(sizes) >= 3, 90), 'the annotator drew nothing'
    assert set(sizes) == {(width, 180)}  # the 640x360 sample at half its size
    # (a node of an earlier test's graph may linger in discovery a while: only this graph's wiring is asserted)
    assert 'annotator' in {info.node_name for info in client.get_subscriptions_info_by_topic(f'/{PREVIEW_TOPIC}')}
    camera_readers = {info.node_name for info in client.get_subscriptions_info_by_topic(f'/{IMAGE_TOPIC}')}
    assert 'face_detector' in camera_readers and 'annotator' not in camera_readers
