"""Bad input gives a clear error (exit status 2, one line, no traceback) or a rejected parameter, never a crash
or a silently wrong score: the real command and real node processes, real files."""

from __future__ import annotations

import os
import subprocess
import time

import cv2
import pytest
import torch
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient

from facesym_ros.config.files import SAMPLE_VIDEO
from facesym_ros.core.video import FrameSource
from helpers.cli import facesym
from helpers.ros import spin_call

NOT_A_MODEL = '/etc/hostname'




def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The error line of a command that must fail with exit status 2 and one line, no traceback."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in result.stderr, result.stderr
    return lines[0]


@pytest.fixture(scope='module')
def sample_images() -> list:
    return [image for _, image in FrameSource.open(SAMPLE_VIDEO).images()]


def test_a_file_that_is_not_a_dlib_model_is_a_one_line_error():
    line = one_line_error(facesym('score', '--sample', '--model', NOT_A_MODEL))
    assert f'{NOT_A_MODEL} is not a dlib shape predictor model' in line


def test_a_file_that_is_not_a_cascade_is_a_one_line_error(tmp_path):
    params = tmp_path / 'params.yaml'
    params.write_text(f'face_detector:\n  ros__parameters:\n    cascade: {NOT_A_MODEL}\n')
    line = one_line_error(facesym('score', '--sample', '--params-file', str(params)))
    assert f'{NOT_A_MODEL} is not a Haar cascade' in line


class _RunsCode:
    def __reduce__(self):
        return os.system, ('true',)


def test_an_unsafe_san_checkpoint_is_refused_without_inviting_an_unsafe_load(tmp_path):
    path = tmp_path / 'unsafe.pth'
    torch.save({'state_dict': {}, 'optimizer': _RunsCode()}, path)
    line = one_line_error(facesym('score', '--sample', '--landmarks', 'san', '--model', str(path)))
    assert f'refusing to load {path}' in line and 'system' in line  # names what it would have run
    assert 'weights_only' not in line and 'succeed' not in line.lower()


def test_synth_refuses_a_folder_with_frames_and_overwrite_replaces_them(tmp_path, sample_images):
    out = tmp_path / 'frozen'
    out.mkdir()
    for index in range(80):  # an earlier, longer run
        cv2.imwrite(str(out / f'frame_{index:05d}.png'), sample_images[0])
    line = one_line_error(facesym('synth', '--sample', str(out), '--freeze', 'left'))
    assert f'{out} is not empty' in line and '--overwrite' in line
    assert len(list(out.glob('*.png'))) == 80  # nothing written, nothing removed

    result = facesym('synth', '--sample', str(out), '--freeze', 'left', '--overwrite')
    assert result.returncode == 0, result.stderr
    assert len(list(out.glob('*.png'))) == 72  # only this run's frames: the old 72..79 are gone

    video = tmp_path / 'frozen.mp4'
    video.write_bytes(b'an earlier video')
    assert '--overwrite' in one_line_error(facesym('synth', '--sample', str(video), '--freeze', 'left'))
    assert video.read_bytes() == b'an earlier video'


def test_a_folder_whose_frame_size_changes_is_refused_naming_the_file(tmp_path, sample_images):
    folder = tmp_path / 'mixed'
    folder.mkdir()
    for index, image in enumerate(sample_images[:40]):
        # from 025 on, a second recording, 400 px high, in the same folder
        frame = cv2.resize(image, (image.shape[1] * 400 // image.shape[0], 400)) if index >= 25 else image
        cv2.imwrite(str(folder / f'{index:03d}.png'), frame)
    line = one_line_error(facesym('score', str(folder)))
    assert str(folder / '025.png') in line and '000.png' in line


def test_image_source_stops_at_a_frame_of_another_size_and_stays_up(live_graph, tmp_path, sample_images):
    folder = tmp_path / 'mixed'
    folder.mkdir()
    for index, image in enumerate(sample_images[:12]):
        frame = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2)) if index >= 8 else image
        cv2.imwrite(str(folder / f'{index:03d}.png'), frame)
    graph, client = live_graph(names=['image_source'], overrides={'image_source': {'source': str(folder)}})
    graph.start()
    log = tmp_path / 'graph-0.log'
    assert client.spin_until(lambda: 'source stopped' in log.read_text(), 30.0), log.read_text()
    assert f'source stopped after 8 frames: {folder / "008.png"}' in log.read_text()
    assert 'Traceback' not in log.read_text()
    assert graph.exited() is None  # it used to die in its timer callback


def test_a_cascade_set_live_that_is_not_a_cascade_is_rejected_and_the_node_lives(live_graph, rclpy_context):
    from rclpy.executors import SingleThreadedExecutor

    graph, client = live_graph(names=['face_detector'])
    graph.start()
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(client)
    parameters = AsyncParameterClient(client, 'face_detector')

    def call(future, timeout=30.0):
        return spin_call(executor, future, timeout)

    try:
        deadline = time.monotonic() + 30
        while not parameters.services_are_ready() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        result = call(parameters.set_parameters([Parameter('cascade', value=NOT_A_MODEL)])).results[0]
        assert not result.successful
        assert f'{NOT_A_MODEL} is not a Haar cascade' in result.reason
        assert call(parameters.get_parameters(['cascade'])).values[0].string_value == \
            'haarcascade_frontalface_default.xml'
        time.sleep(0.5)
        assert graph.exited() is None  # it used to die here with a SystemError
    finally:
        executor.remove_node(client)
