"""The san landmark backend: SAN's snapshot format, safe loading, belief-map decoding and prediction on a real face.

No SAN weights ship with the package, so the tests write checkpoints in the
format of SAN's published snapshot (a PyTorch 0.4-style pickle of
{'epoch', 'args', 'state_dict' with 'module.' keys, 'optimizer'}, where
'args' holds an argparse.Namespace and SAN's models.model_utils.ModelConfig)
from weights of their own: a seeded random initialisation, or weights built
so that the belief maps, and with them the landmarks, are known.
"""

from __future__ import annotations

import argparse
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from facesym_ros.config.files import SAMPLE_STILL
from facesym_ros.core.detection import DetectorSettings, HaarFaceDetector
from facesym_ros.core.frame import Frame
from facesym_ros.core.geometry import Box, Landmarks
from facesym_ros.core.landmarks.factory import LandmarkSettings, make_landmark_backend
from facesym_ros.core.landmarks.san import (
    SanLandmarkBackend,
    SanNetwork,
    crop_window,
    decode_belief_maps,
    input_to_frame,
    preprocess,
)

INPUT = 128  # the published model's crop_width and crop_height
SIGMA = 4.0  # the published model's training heatmap sigma, in input pixels


@contextmanager
def san_models_package() -> Iterator[type]:
    """SAN's `models.model_utils` module, so that a ModelConfig pickles under the name the published snapshot uses.

    Only present while saving: loading must not need (or import) it.
    """

    class ModelConfig:
        def __init__(self, pts_num: int, num_stages: int, pretrained: bool, argmax: int) -> None:
            self.pts_num, self.num_stages, self.pretrained, self.argmax = pts_num, num_stages, pretrained, argmax

    ModelConfig.__module__, ModelConfig.__qualname__ = 'models.model_utils', 'ModelConfig'
    package, module = types.ModuleType('models'), types.ModuleType('models.model_utils')
    module.ModelConfig = ModelConfig
    package.model_utils = module
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, 'models', package)
        patch.setitem(sys.modules, 'models.model_utils', module)
        yield ModelConfig


def san_args(model_config: object, **overrides: object) -> argparse.Namespace:
    """Training options as SAN's scripts/300W/300W_CYCLE_128.sh sets them (the ones the snapshot carries)."""
    options = dict(arch='itn_cpm', num_pts=68, cpm_stage=3, crop_width=INPUT, crop_height=INPUT,
                   pre_crop_expand=0.2, argmax_size=3, sigma=SIGMA, downsample=8, heatmap_type='gaussian',
                   dataset_name='300W_GTB', scale_eval=1.0, gpu_ids=[0, 1], use_cuda=True, pretrain=True,
                   cycle_model_path='./snapshots/cycle-gan/itn-epoch-200-201', modelconfig=model_config)
    options.update(overrides)
    return argparse.Namespace(**options)


def save_snapshot(path: Path, state: dict[str, torch.Tensor], prefix: str = 'module.', legacy: bool = True,
                  **arg_overrides: object) -> Path:
    """A checkpoint laid out like SAN's checkpoint_49.pth.tar; legacy=True writes torch's pre-1.6 (0.4) format."""
    with san_models_package() as model_config:
        snapshot = {
            'epoch': 49,
            'args': san_args(model_config(69, 3, True, 3), **arg_overrides),
            'state_dict': {prefix + key: value for key, value in state.items()},
            'optimizer': {'state': {}, 'param_groups': [{'lr': 5e-05, 'momentum': 0.9, 'dampening': 0,
                                                         'weight_decay': 0.0005, 'nesterov': True,
                                                         'initial_lr': 5e-05, 'params': [0, 1, 2]}]},
        }
        torch.save(snapshot, path, _use_new_zipfile_serialization=not legacy)
    return path


@pytest.fixture(scope='module')
def weights() -> dict[str, torch.Tensor]:
    """Seeded He-initialised weights: activations keep their scale through the deep ReLU stack, so the belief maps
    depend on the face (torch's default initialisation shrinks them until the output is nearly constant)."""
    torch.manual_seed(1234)
    network = SanNetwork()
    for module in network.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity='relu')
            nn.init.zeros_(module.bias)
    return network.state_dict()


@pytest.fixture(scope='module')
def snapshot(weights, tmp_path_factory) -> Path:
    return save_snapshot(tmp_path_factory.mktemp('san') / 'checkpoint_49.pth.tar', weights)


@pytest.fixture(scope='module')
def still() -> Frame:
    return Frame.from_bgr(cv2.imread(str(SAMPLE_STILL)), 0)


@pytest.fixture(scope='module')
def face_box(still) -> Box:
    return HaarFaceDetector(DetectorSettings()).detect(still.gray)[0].box


def san_precrop(box: Box, width: int, height: int, expand: float = 0.2) -> Box:
    """SAN's PreCrop written out independently: grow (x1, y1, x2, y2) by expand, floor/ceil, clip."""
    x1, y1, x2, y2 = box.x, box.y, box.x + box.width - 1, box.y + box.height - 1
    ex, ey = (x2 - x1) * expand, (y2 - y1) * expand
    left, top = max(int(np.floor(x1 - ex)), 0), max(int(np.floor(y1 - ey)), 0)
    right, bottom = min(int(np.ceil(x2 + ex)), width), min(int(np.ceil(y2 + ey)), height)
    return Box(left, top, right - left, bottom - top)


# --- network layout ----------------------------------------------------------------------------------------------

def test_state_dict_keys_and_shapes_are_sans(weights):
    """Keys and shapes of SAN's itn_cpm state_dict (from SAN's lib/models/itn_cpm.py and generator_model.py)."""
    assert len(weights) == 144
    expected = {
        'features.0.weight': (64, 3, 3, 3), 'features.21.weight': (512, 512, 3, 3),
        'CPM_feature.2.weight': (128, 256, 3, 3),
        'stage1.10.weight': (69, 512, 1, 1), 'stage1.10.bias': (69,),
        'stage2.0.weight': (128, 394, 7, 7), 'stage2.16.weight': (69, 128, 1, 1),
        'stage3.0.weight': (128, 325, 7, 7), 'stage3.16.bias': (69,),
        'netG_A.model.1.weight': (64, 3, 7, 7), 'netG_A.model.7.weight': (256, 128, 3, 3),
        'netG_A.model.10.conv_block.1.weight': (256, 256, 3, 3), 'netG_B.model.15.conv_block.5.bias': (256,),
        'netG_B.model.16.weight': (256, 128, 3, 3), 'netG_B.model.19.weight': (128, 64, 3, 3),
        'netG_B.model.23.weight': (3, 64, 7, 7),
    }
    assert {key: tuple(weights[key].shape) for key in expected} == expected
    assert not any('running' in key for key in weights)  # SAN's instance norms keep no statistics


def test_second_input_is_the_generators_style_aggregated_face(weights):
    """As in SAN's eval, the generators' mean restyling is the second input, so their weights change the output."""
    network = SanNetwork().eval()
    network.load_state_dict(weights)
    face = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.inference_mode():
        maps = network(face)
        restyled = network.style_aggregated(face)
        for generator in (network.netG_A, network.netG_B):  # a generator whose last conv is zero outputs tanh(0)
            generator.model[-2].weight.zero_()
            generator.model[-2].bias.zero_()
        assert torch.equal(network.style_aggregated(face), torch.zeros_like(face))
        flat_second_face = network(face)
    assert maps.shape == (1, 69, 8, 8)
    assert not torch.allclose(restyled, face)
    assert not torch.allclose(maps, flat_second_face)


# --- pre- and post-processing ------------------------------------------------------------------------------------

def test_crop_window_is_sans_precrop():
    box = Box(100, 80, 100, 120)
    assert crop_window(box, 640, 480, 0.2) == san_precrop(box, 640, 480) == Box(80, 56, 139, 167)
    corner = Box(5, 300, 100, 100)  # grows past the left and bottom edges: clipped, not padded
    assert crop_window(corner, 640, 360, 0.2) == Box(0, 280, 124, 80)
    with pytest.raises(ValueError, match='outside'):
        crop_window(Box(700, 10, 50, 50), 640, 480, 0.0)


def test_preprocess_gives_rgb_scaled_to_minus_one_one():
    bgr = np.zeros((300, 200, 3), np.uint8)
    bgr[:, :, 0] = 255  # pure blue
    image = preprocess(bgr, Box(10, 20, 150, 250), INPUT, INPUT)
    assert image.shape == (1, 3, INPUT, INPUT) and image.dtype == torch.float32
    assert torch.allclose(image[0, 2], torch.ones(INPUT, INPUT))
    assert torch.allclose(image[0, :2], -torch.ones(2, INPUT, INPUT))
    gray = preprocess(np.full((64, 64, 3), 51, np.uint8), Box(0, 0, 64, 64), INPUT, INPUT)
    assert torch.allclose(gray, torch.full_like(gray, 51 / 255 * 2 - 1), atol=1e-6)


def test_decode_known_gaussian_peaks_to_frame_pixels():
    """68 SAN-style Gaussian targets at known sub-pixel frame positions decode back to those positions."""
    window = Box(100, 60, 250, 310)  # not square: x and y scales differ
    scale = np.array([window.width / INPUT, window.height / INPUT])
    rng = np.random.default_rng(7)
    cells = rng.uniform(1.0, 14.0, size=(68, 2))  # (col, row) in belief-map cells, off the cell centres
    cells[0] = (5.0, 9.0)  # one exactly on a cell centre
    cells[1] = (5.5, 9.5)  # one exactly between four cells
    truth = np.array([window.x, window.y]) + (cells * 8 + 3.5) * scale  # the same positions as frame pixels
    heights = np.linspace(0.2, 0.95, 68)
    heights[2] = 1.7  # an over-confident map: confidence is clipped to 1
    rows, cols = np.mgrid[0:INPUT // 8, 0:INPUT // 8]
    sigma_cells = SIGMA / 8
    maps = np.stack([h * np.exp(-((cols - cx) ** 2 + (rows - cy) ** 2) / (2 * sigma_cells ** 2))
                     for (cx, cy), h in zip(cells, heights, strict=True)]).astype(np.float32)

    points, confidence = decode_belief_maps(maps, radius=3)
    frame_points = input_to_frame(points, window, INPUT, INPUT)

    assert frame_points.dtype == np.float32 and frame_points.shape == (68, 2)
    error = np.abs(frame_points - truth) / scale  # in input pixels
    assert error.max() < 0.25, f'worst decoding error {error.max():.3f} input px at point {error.max(1).argmax()}'
    assert error[0].max() < 1e-3
    assert error[1].max() < 1e-3
    nearest_cell_error = np.abs(np.round(cells) - cells) * 8
    assert nearest_cell_error.max() > 3, 'the positions must need sub-cell refinement to be found'
    np.testing.assert_allclose(confidence, np.clip(maps.reshape(68, -1).max(1), 0, 1), rtol=1e-6)
    assert confidence[2] == 1.0 and confidence.dtype == np.float32


def test_decode_flat_or_negative_maps():
    maps = np.full((68, 16, 16), -0.3, np.float32)
    maps[1] = 0.4
    maps[2, 15, 15] = 0.9  # a single-cell peak in the corner: the window is cut at the map's edge
    points, confidence = decode_belief_maps(maps, radius=3)
    np.testing.assert_allclose(points[0], (3.5, 3.5))  # no positive evidence: the argmax cell's centre
    np.testing.assert_allclose(points[1], (1.5 * 8 + 3.5, 1.5 * 8 + 3.5))  # flat: centroid of the cut window
    np.testing.assert_allclose(points[2], (15 * 8 + 3.5, 15 * 8 + 3.5))
    np.testing.assert_allclose(confidence[:3], (0.0, 0.4, 0.9))


# --- prediction ------------------------------------------------------------------------------------------------------

def test_predict_on_a_real_face(snapshot, still, face_box):
    backend = make_landmark_backend(LandmarkSettings(backend='san', model_path=str(snapshot)))
    assert isinstance(backend, SanLandmarkBackend) and backend.name == 'san'
    assert (backend.settings.input_width, backend.settings.box_expand, backend.settings.refine_radius) == \
        (INPUT, 0.2, 3)
    landmarks = backend.predict(still, face_box)
    assert isinstance(landmarks, Landmarks) and landmarks.backend == 'san'
    assert landmarks.points.shape == (68, 2) and landmarks.points.dtype == np.float32
    assert np.isfinite(landmarks.points).all()
    assert landmarks.confidence is not None and landmarks.confidence.dtype == np.float32
    assert landmarks.confidence.shape == (68,)
    assert ((landmarks.confidence >= 0) & (landmarks.confidence <= 1)).all()
    window = san_precrop(face_box, still.width, still.height)
    assert (landmarks.points[:, 0] >= window.x).all() and (landmarks.points[:, 0] <= window.x2 - 1).all()
    assert (landmarks.points[:, 1] >= window.y).all() and (landmarks.points[:, 1] <= window.y2 - 1).all()
    assert len(np.unique(landmarks.points.round(1), axis=0)) > 10  # the maps' peaks differ: the output is not flat
    again = backend.predict(still, face_box)
    np.testing.assert_array_equal(again.points, landmarks.points)


def test_predict_maps_known_belief_maps_into_the_face_box(weights, still, face_box, tmp_path):
    """A stage-3 output layer with zero weights makes every belief map constant (its bias): known landmarks."""
    state = dict(weights)
    state['stage3.16.weight'] = torch.zeros_like(state['stage3.16.weight'])
    bias = torch.linspace(-0.5, 1.5, 69)
    state['stage3.16.bias'] = bias
    path = save_snapshot(tmp_path / 'constant.pth', state, prefix='', legacy=False)  # also: no 'module.' prefix

    landmarks = SanLandmarkBackend(path, device='cpu').predict(still, face_box)

    window = san_precrop(face_box, still.width, still.height)
    positive = bias[:68].numpy() > 0
    # Constant map: argmax is cell (0, 0); a positive map's refinement window (cells 0..3, cut at the edge) is flat,
    # its centroid is cell 1.5 = input pixel 1.5 * 8 + 3.5; a non-positive one stays on cell 0 = input pixel 3.5.
    in_input = np.where(positive, 15.5, 3.5)
    expected = np.stack([window.x + in_input * window.width / INPUT,
                         window.y + in_input * window.height / INPUT], axis=1)
    np.testing.assert_allclose(landmarks.points, expected, atol=1e-3)
    np.testing.assert_allclose(landmarks.confidence, np.clip(bias[:68].numpy(), 0, 1), atol=1e-6)


# --- loading errors --------------------------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='SAN checkpoint not found'):
        SanLandmarkBackend(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='SAN checkpoint not found'):
        make_landmark_backend(LandmarkSettings(backend='san', model_path=str(tmp_path)))  # a directory


def test_files_that_are_not_checkpoints(tmp_path):
    with pytest.raises(ValueError, match='is not a torch checkpoint'):
        SanLandmarkBackend(SAMPLE_STILL)  # a PNG
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    with pytest.raises(ValueError, match='is not a torch checkpoint'):
        SanLandmarkBackend(empty)
    tensor = tmp_path / 'tensor.pth'
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(ValueError, match="is not a SAN checkpoint: expected a dict with a 'state_dict' entry"):
        SanLandmarkBackend(tensor)
    no_state = tmp_path / 'no_state.pth'
    torch.save({'epoch': 1, 'model': {'w': torch.zeros(1)}}, no_state)
    with pytest.raises(ValueError, match=r"'state_dict' entry, got a dict with keys \['epoch', 'model'\]"):
        SanLandmarkBackend(no_state)
    not_tensors = tmp_path / 'not_tensors.pth'
    torch.save({'state_dict': {'features.0.weight': [1.0, 2.0]}}, not_tensors)
    with pytest.raises(ValueError, match='not a mapping of names to tensors'):
        SanLandmarkBackend(not_tensors)


def test_state_dict_with_wrong_keys(weights, tmp_path):
    state = {key: value for key, value in weights.items() if not key.startswith('stage3.')}
    state['stage4.0.weight'] = torch.zeros(1)
    path = save_snapshot(tmp_path / 'wrong_keys.pth', state)
    with pytest.raises(ValueError, match=r'does not match SAN.s itn_cpm network: 18 missing keys \(stage3\.0\.bias; '
                                         r'.*1 unexpected keys \(stage4\.0\.weight\)') as error:
        SanLandmarkBackend(path)
    assert 'shape' not in str(error.value)


def test_state_dict_with_wrong_shapes(weights, tmp_path):
    """A 68-map head (no background map): keys match, shapes do not."""
    state = dict(weights)
    for key in ('stage1.10', 'stage2.16', 'stage3.16'):
        state[key + '.weight'] = state[key + '.weight'][:68].clone()
        state[key + '.bias'] = state[key + '.bias'][:68].clone()
    state['stage2.0.weight'] = state['stage2.0.weight'][:, :392].clone()
    state['stage3.0.weight'] = state['stage3.0.weight'][:, :324].clone()
    path = save_snapshot(tmp_path / 'wrong_shapes.pth', state)
    with pytest.raises(ValueError, match=r'8 shape mismatches \(stage1\.10\.weight is \(68, 512, 1, 1\) in the '
                                         r'checkpoint, \(69, 512, 1, 1\) in the network') as error:
        SanLandmarkBackend(path)
    assert 'missing' not in str(error.value)


def test_checkpoint_of_another_san_model_is_refused(tmp_path):
    path = save_snapshot(tmp_path / 'vgg.pth', {'features.0.weight': torch.zeros(1)}, arch='vgg16_base')
    with pytest.raises(ValueError, match="'vgg16_base' model"):
        SanLandmarkBackend(path)
    path = save_snapshot(tmp_path / 'odd_size.pth', {'features.0.weight': torch.zeros(1)}, crop_width=100)
    with pytest.raises(ValueError, match=r"checkpoint's crop_width=100 is not a multiple of 8"):
        SanLandmarkBackend(path)
    # a crop wider than the face patch the landmark node receives (the box grown by 0.25): refused, not cut off
    path = save_snapshot(tmp_path / 'wide_crop.pth', {'features.0.weight': torch.zeros(1)}, pre_crop_expand=0.3)
    with pytest.raises(ValueError, match=r"pre_crop_expand=0.3 reaches beyond the face patch .*at most 0.2"):
        SanLandmarkBackend(path)


def test_bad_device_is_reported(snapshot):
    with pytest.raises(ValueError, match='not a torch device'):
        SanLandmarkBackend(snapshot, device='gpu-please')
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch device 'cuda:0' is not usable"):
            SanLandmarkBackend(snapshot, device='cuda:0')


# --- no pickled code runs --------------------------------------------------------------------------------------------

def _leave_marker(path: str) -> str:
    """What a malicious checkpoint would run while being unpickled (here: harmless, it writes a file)."""
    Path(path).write_text('pickled code ran')
    return path


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return _leave_marker, (str(self.marker),)


def test_loading_does_not_run_pickled_code(weights, tmp_path):
    marker = tmp_path / 'marker.txt'
    path = tmp_path / 'malicious.pth.tar'
    with san_models_package() as model_config:
        torch.save({'epoch': 49, 'args': san_args(model_config(69, 3, True, 3)),
                    'state_dict': {'module.' + key: value for key, value in list(weights.items())[:2]},
                    'optimizer': _Payload(marker)}, path, _use_new_zipfile_serialization=False)

    with pytest.raises(ValueError, match=r'refusing to load .*would run code .*_leave_marker'):
        SanLandmarkBackend(path)
    assert not marker.exists()

    with san_models_package():
        torch.load(path, weights_only=False)  # the payload is live: an unrestricted load does run it
    assert marker.read_text() == 'pickled code ran'


def test_only_sans_option_classes_are_allowed(tmp_path):
    """argparse.Namespace and SAN's ModelConfig are allowed; any other class in the file is refused."""
    path = tmp_path / 'path_in_args.pth'
    torch.save({'args': argparse.Namespace(save_path=Path('snapshots')), 'state_dict': {}}, path)
    with pytest.raises(ValueError, match=r'refusing to load .*Path'):
        SanLandmarkBackend(path)
