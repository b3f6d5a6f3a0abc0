"""SAN, the Style Aggregated Network (Dong, Yan, Ouyang & Yang, CVPR 2018), as a 68-point landmark backend.

Weights: the SAN authors' pre-trained 300-W model, the snapshot
`SAN_300W_GTB_itn_cpm_3_50_sigma4_128x128x8/checkpoint_49.pth.tar` from the
`snapshots` folder their README links (github.com/D-X-Y/landmark-detection,
directory SAN/; the code is MIT, the weights were trained on iBUG 300-W,
whose licence excludes commercial use). The file is not bundled: the user
downloads it and passes its path.

Checkpoint format, as SAN's training code writes it with torch.save (in
PyTorch 0.4's pre-zip file format): a dict with 'epoch', 'args' (the training options, an
argparse.Namespace which also holds a `models.model_utils.ModelConfig`),
'state_dict' (saved from nn.DataParallel, so every key starts with
'module.') and 'optimizer'. It is read with torch.load(weights_only=True):
only tensors, plain containers and the two option classes above are
rebuilt, so no code in the file runs; ModelConfig is rebuilt as a plain
record here, SAN's class is never imported. From 'args' come the input
size (crop_width x crop_height, 128 x 128 for the published model), the
face-box expansion (pre_crop_expand, 0.2) and the sub-pixel window
(argmax_size, 3).

The network (`itn_cpm` in SAN's code): VGG-16 conv1_1..conv4_3 (stride 8),
two more 3x3 feature layers, and three belief-map stages over 68 landmark
maps plus one background map. Stage 1 sees the features; stage 2 the
features and stage-1 beliefs; stage 3 the features and stage-2 beliefs.
SAN feeds two faces through the shared trunk and stage 1 — the original and
its style-aggregated version — and stages 2 and 3 see both. At inference
SAN's own eval code (san_eval.py, san_api.py) makes the second face with
the two CycleGAN generators stored in the same state_dict, as the mean of
their outputs; this backend does exactly that rather than feeding the
original twice, so it computes what the published model was evaluated
with (at the cost of two generator passes per face).

That model was trained on boxes spanning the ground-truth landmarks (GTB);
a detector's box (e.g. Haar's) frames the face somewhat differently, which
costs some accuracy.
"""

from __future__ import annotations

import argparse
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from facesym_ros.core.frame import PATCH_MARGIN, Frame
from facesym_ros.core.geometry import IBUG68_POINT_COUNT, Box, Landmarks

MAX_BOX_EXPAND = round(PATCH_MARGIN - 0.05, 2)
"""The largest pre_crop_expand whose crop (rounded outwards) stays inside the face patch."""

BELIEF_MAPS = IBUG68_POINT_COUNT + 1
"""68 landmark maps and a background map, the last channel."""
STRIDE = 8
"""Input pixels per belief-map cell: the three max-pools of the VGG trunk."""
MODULE_PREFIX = 'module.'
"""What nn.DataParallel puts before every key of the state_dict it saves."""


# --- network -------------------------------------------------------------------------------------------------------
# Attribute names and layer order make the state_dict keys, so they follow SAN's snapshot
# (features.0.weight, stage2.16.bias, netG_A.model.10.conv_block.5.weight, ...).

def _conv_relu_stack(in_channels: int, layers: list[tuple[int, int] | str], last_relu: bool = True) -> nn.Sequential:
    """Convolutions given as (out_channels, kernel), each followed by ReLU; 'pool' is a 2x2 max-pool.

    Padding keeps the spatial size. Without last_relu the final convolution
    stays linear (a belief-map output).
    """
    modules: list[nn.Module] = []
    channels = in_channels
    for index, layer in enumerate(layers):
        if layer == 'pool':
            modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        out_channels, kernel = layer
        modules.append(nn.Conv2d(channels, out_channels, kernel_size=kernel, padding=kernel // 2))
        if last_relu or index < len(layers) - 1:
            modules.append(nn.ReLU(inplace=True))
        channels = out_channels
    return nn.Sequential(*modules)


def _refinement_stage(in_channels: int) -> nn.Sequential:
    """Stage 2 or 3: three 7x7 layers for a wide receptive field, four 3x3, then 1x1 layers to belief maps."""
    return _conv_relu_stack(in_channels, [(128, 7)] * 3 + [(128, 3)] * 4 + [(128, 1), (BELIEF_MAPS, 1)],
                            last_relu=False)


class _ResidualBlock(nn.Module):
    """x + (pad, 3x3 conv, instance norm, ReLU, pad, 3x3 conv, instance norm): a CycleGAN generator block."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class _StyleGenerator(nn.Module):
    """CycleGAN's ResNet generator (two stride-2 downsamplings, six residual blocks, two upsamplings).

    SAN trains two of them between its style clusters; the mean of their
    outputs is the style-aggregated face. Output in [-1, 1] like the input.
    """

    def __init__(self, blocks: int = 6) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, 64, 7), nn.InstanceNorm2d(64), nn.ReLU(True)]
        for channels in (64, 128):
            layers += [nn.Conv2d(channels, channels * 2, 3, stride=2, padding=1), nn.InstanceNorm2d(channels * 2),
                       nn.ReLU(True)]
        layers += [_ResidualBlock(256) for _ in range(blocks)]
        for channels in (256, 128):
            layers += [nn.ConvTranspose2d(channels, channels // 2, 3, stride=2, padding=1, output_padding=1),
                       nn.InstanceNorm2d(channels // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(64, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class SanNetwork(nn.Module):
    """SAN's inference network; maps a normalised (N, 3, H, W) face to (N, 69, H/8, W/8) final belief maps."""

    def __init__(self) -> None:
        super().__init__()
        self.netG_A = _StyleGenerator()
        self.netG_B = _StyleGenerator()
        # VGG-16 blocks 1-4 up to conv4_3 (its last pool dropped): stride 8, 512 channels.
        self.features = _conv_relu_stack(3, [(64, 3), (64, 3), 'pool', (128, 3), (128, 3), 'pool',
                                             (256, 3), (256, 3), (256, 3), 'pool', (512, 3), (512, 3), (512, 3)])
        self.CPM_feature = _conv_relu_stack(512, [(256, 3), (128, 3)])
        self.stage1 = _conv_relu_stack(128, [(128, 3)] * 4 + [(512, 1), (BELIEF_MAPS, 1)], last_relu=False)
        self.stage2 = _refinement_stage(2 * 128 + 2 * BELIEF_MAPS)  # both faces' features and stage-1 beliefs
        self.stage3 = _refinement_stage(2 * 128 + BELIEF_MAPS)  # both faces' features and the stage-2 beliefs

    def style_aggregated(self, image: torch.Tensor) -> torch.Tensor:
        """The second input: the mean of the two generators' restylings of the face, as SAN's eval computes it."""
        return (self.netG_A(image) + self.netG_B(image)) / 2

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        faces = (image, self.style_aggregated(image))
        features = [self.CPM_feature(self.features(face)) for face in faces]
        first = [self.stage1(feature) for feature in features]
        both = torch.cat(features, 1)
        second = self.stage2(torch.cat([both, *first], 1))
        return self.stage3(torch.cat([both, second], 1))


# --- checkpoint ----------------------------------------------------------------------------------------------------

class _PickledModelConfig:
    """Stands in for SAN's models.model_utils.ModelConfig inside a snapshot's 'args'.

    The unpickler only creates it and fills its __dict__ (pts_num,
    num_stages, pretrained, argmax); it has no behaviour, so allowing it
    lets no code run.
    """


SNAPSHOT_GLOBALS = [argparse.Namespace, (_PickledModelConfig, 'models.model_utils.ModelConfig')]
"""The only classes, besides tensors and plain containers, that loading a SAN snapshot may rebuild."""


@dataclass(frozen=True)
class SanInputSettings:
    """How a face is cut out and read back; from the snapshot's training options ('args')."""

    input_width: int = 128
    input_height: int = 128
    box_expand: float = 0.2
    """Fraction of the face box's width/height added on each side before cropping (SAN's pre_crop_expand)."""
    refine_radius: int = 3
    """Half-size in cells of the window whose weighted centroid refines each peak (SAN's argmax_size)."""

    @classmethod
    def from_args(cls, args: object) -> SanInputSettings:
        """Settings from SAN's saved options; the published model's values where an option is absent."""
        if args is None:
            return cls()
        if not isinstance(args, argparse.Namespace):
            raise ValueError(f"the checkpoint's 'args' is a {type(args).__name__}, not SAN's argparse.Namespace")
        arch = getattr(args, 'arch', 'itn_cpm')
        if arch != 'itn_cpm':
            raise ValueError(f"the checkpoint is a {arch!r} model; the san backend runs SAN's 'itn_cpm' network")
        num_pts = getattr(args, 'num_pts', IBUG68_POINT_COUNT)
        if num_pts != IBUG68_POINT_COUNT:
            raise ValueError(f'the checkpoint predicts {num_pts} points, not the 68 iBUG points')
        downsample = getattr(args, 'downsample', STRIDE)
        if downsample != STRIDE:
            raise ValueError(f'the checkpoint uses heatmap stride {downsample}; the network has stride {STRIDE}')
        defaults = cls()
        width = getattr(args, 'crop_width', defaults.input_width)
        height = getattr(args, 'crop_height', defaults.input_height)
        expand = getattr(args, 'pre_crop_expand', defaults.box_expand)
        radius = getattr(args, 'argmax_size', defaults.refine_radius)
        for option, size in (('crop_width', width), ('crop_height', height)):
            if not isinstance(size, int) or size < 2 * STRIDE or size % STRIDE:
                raise ValueError(f"the checkpoint's {option}={size!r} is not a multiple of {STRIDE} "
                                 f'of at least {2 * STRIDE}')
        if not isinstance(expand, int | float) or expand < 0:
            raise ValueError(f"the checkpoint's pre_crop_expand={expand!r} is not a fraction >= 0")
        if expand > MAX_BOX_EXPAND:
            raise ValueError(f"the checkpoint's pre_crop_expand={expand!r} reaches beyond the face patch the "
                             f'landmarks see (at most {MAX_BOX_EXPAND})')
        if not isinstance(radius, int) or radius < 1:
            raise ValueError(f"the checkpoint's argmax_size={radius!r} is not an integer >= 1")
        settings = cls(input_width=width, input_height=height, box_expand=float(expand), refine_radius=radius)
        return settings


def _first_line(error: BaseException | str) -> str:
    """The first non-blank line of an error message (torch's are long)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


CODE_REFUSAL = re.compile(r'GLOBAL ([\w.]+)|call reduce|allowlisted')
"""What the weights-only unpickler says when it meets a global it does not allow, as opposed to malformed data."""


def _refusal_reason(error: pickle.UnpicklingError) -> str:
    """Our one-line reason for torch's weights-only refusal.

    torch's message also advises re-running with weights_only=False, which would run the file's code;
    that advice is never passed on. The reason names the global the file asked for, where torch says it.
    """
    text = str(error)
    found = CODE_REFUSAL.search(text)
    if found is None:
        _, marker, detail = text.partition('WeightsUnpickler error:')
        return _first_line(detail) if marker and detail.strip() else 'malformed data'
    if found.group(1):
        return f'it asks for {found.group(1)}, which is not a tensor, a number or one of SAN\'s option objects'
    return 'it asks to call a function while loading'


def load_san_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], SanInputSettings]:
    """The network weights (without the 'module.' prefix) and input settings of a SAN snapshot.

    Raises FileNotFoundError for a missing file and ValueError, with the
    reason, for anything that is not a SAN snapshot or that would need to
    run pickled code to load.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'SAN checkpoint not found: {path}')
    try:
        with torch.serialization.safe_globals(SNAPSHOT_GLOBALS):
            checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as error:
        reason = _refusal_reason(error)
        if CODE_REFUSAL.search(str(error)):
            raise ValueError(f'refusing to load {path}: it holds objects whose loading would run code '
                             f'({reason}); use a checkpoint of plain weights') from None
        raise ValueError(f'{path} is not a torch checkpoint: {reason}') from None
    except (RuntimeError, EOFError, OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise ValueError(f'{path} is not a torch checkpoint: {_first_line(error)}') from None

    if not isinstance(checkpoint, Mapping) or 'state_dict' not in checkpoint:
        found = type(checkpoint).__name__
        if isinstance(checkpoint, Mapping):
            found += f' with keys {sorted(map(str, checkpoint))[:5]}'
        raise ValueError(f"{path} is not a SAN checkpoint: expected a dict with a 'state_dict' entry, got a {found}")
    state = checkpoint['state_dict']
    if not isinstance(state, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                 for k, v in state.items()):
        raise ValueError(f"{path} is not a SAN checkpoint: its 'state_dict' is not a mapping of names to tensors")
    if state and all(key.startswith(MODULE_PREFIX) for key in state):
        state = {key[len(MODULE_PREFIX):]: value for key, value in state.items()}
    return dict(state), SanInputSettings.from_args(checkpoint.get('args'))


def _mismatch(network: nn.Module, state: Mapping[str, torch.Tensor]) -> str | None:
    """Why the weights do not fit the network (a few examples of each problem), or None when they fit."""
    expected = network.state_dict()
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    reshaped = [f'{key} is {tuple(state[key].shape)} in the checkpoint, {tuple(tensor.shape)} in the network'
                for key, tensor in expected.items() if key in state and state[key].shape != tensor.shape]
    problems = []
    for what, items in (('missing keys', missing), ('unexpected keys', unexpected), ('shape mismatches', reshaped)):
        if items:
            examples = '; '.join(items[:3]) + ('; ...' if len(items) > 3 else '')
            problems.append(f'{len(items)} {what} ({examples})')
    return ', '.join(problems) or None


# --- pre- and post-processing ----------------------------------------------------------------------------------------

def crop_window(box: Box, frame_width: int, frame_height: int, expand: float) -> Box:
    """The image region SAN feeds the network for a face box.

    As SAN's eval crop: the box grows by `expand` of its width and height on
    every side, is rounded outwards to whole pixels and clipped to the image
    (no padding), so the network sees the face at the scale it was trained
    on. SAN's boxes are (x1, y1, x2, y2) with x2, y2 the last pixel, hence
    box.x2 - 1.
    """
    x1, y1, x2, y2 = box.x, box.y, box.x2 - 1, box.y2 - 1
    grow_x, grow_y = (x2 - x1) * expand, (y2 - y1) * expand
    left, top = max(int(np.floor(x1 - grow_x)), 0), max(int(np.floor(y1 - grow_y)), 0)
    right, bottom = min(int(np.ceil(x2 + grow_x)), frame_width), min(int(np.ceil(y2 + grow_y)), frame_height)
    if right <= left or bottom <= top:
        raise ValueError(f'the face box {box} lies outside the {frame_width}x{frame_height} frame')
    return Box(left, top, right - left, bottom - top)


def preprocess(bgr: np.ndarray, window: Box, input_width: int, input_height: int,
               device: torch.device | str = 'cpu') -> torch.Tensor:
    """The (1, 3, H, W) network input: the window's RGB pixels resized to the input size, scaled to [-1, 1].

    SAN resizes the crop to the input size regardless of its aspect ratio
    with PIL's bilinear filter, which smooths when shrinking; torch's
    antialiased bilinear resize does the same. SAN's transforms normalise
    with mean 0.5 and std 0.5 per channel, not ImageNet's statistics.
    """
    rgb = np.ascontiguousarray(window.crop(bgr)[:, :, ::-1])
    image = torch.from_numpy(rgb).to(device).permute(2, 0, 1).unsqueeze(0).float() / 255.0
    image = functional.interpolate(image, size=(input_height, input_width), mode='bilinear', align_corners=False,
                          antialias=True)
    return (image - 0.5) / 0.5


def decode_belief_maps(maps: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Input-pixel positions (K, 2) and peak values (K,) of K belief maps (K, H, W).

    Each map's argmax cell is refined to sub-cell precision by the centroid
    of the non-negative values in the (2*radius+1)^2 window around it (cut
    at the map's edge), because a peak's true position rarely falls on a
    cell of the stride-8 grid. Cell (i, j) covers input pixels 8j..8j+7, so
    its centre is 8j + 3.5 in pixel-centre coordinates; SAN's training
    targets put Gaussians on the same centres.
    """
    count, height, width = maps.shape
    flat = maps.reshape(count, -1)
    peak_index = flat.argmax(axis=1)
    peaks = flat[np.arange(count), peak_index]
    rows, cols = np.divmod(peak_index, width)
    offsets = np.arange(-radius, radius + 1)
    win_rows, win_cols = rows[:, None] + offsets, cols[:, None] + offsets
    inside = (((win_rows >= 0) & (win_rows < height))[:, :, None]
              & ((win_cols >= 0) & (win_cols < width))[:, None, :])
    window = maps[np.arange(count)[:, None, None], win_rows.clip(0, height - 1)[:, :, None],
                  win_cols.clip(0, width - 1)[:, None, :]]
    weights = np.where(inside, np.maximum(window, 0.0), 0.0).astype(np.float64)
    total = weights.sum(axis=(1, 2))
    safe_total = np.where(total > 0, total, 1.0)
    d_row = np.where(total > 0, (weights.sum(axis=2) * offsets).sum(axis=1) / safe_total, 0.0)
    d_col = np.where(total > 0, (weights.sum(axis=1) * offsets).sum(axis=1) / safe_total, 0.0)
    cells = np.stack([cols + d_col, rows + d_row], axis=1)
    points = cells * STRIDE + (STRIDE / 2 - 0.5)
    return points.astype(np.float32), np.clip(peaks, 0.0, 1.0).astype(np.float32)


def input_to_frame(points: np.ndarray, window: Box, input_width: int, input_height: int) -> np.ndarray:
    """Network-input pixel positions mapped back into the frame.

    The inverse of how SAN scaled its training labels into the input (a pure
    scale by input size / crop size, then the crop offset), so it reads the
    network's output in the convention it learned.
    """
    scale = np.array([window.width / input_width, window.height / input_height], dtype=np.float64)
    offset = np.array([window.x, window.y], dtype=np.float64)
    return (np.asarray(points, dtype=np.float64) * scale + offset).astype(np.float32)


# --- backend ---------------------------------------------------------------------------------------------------------

class SanLandmarkBackend:
    """68 iBUG landmarks from a SAN checkpoint; confidence is each belief map's peak, clipped to [0, 1]."""

    name = 'san'

    def __init__(self, model_path: str | Path, device: str = 'cpu') -> None:
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError) as error:
            raise ValueError(f'not a torch device: {device!r} ({_first_line(error)})') from None
        self.model_path = Path(model_path)
        state, self.settings = load_san_checkpoint(self.model_path)
        with torch.device('meta'):  # no point initialising weights that the checkpoint replaces
            network = SanNetwork()
        problem = _mismatch(network, state)
        if problem:
            raise ValueError(f"{self.model_path}: the state_dict does not match SAN's itn_cpm network: {problem}")
        network.load_state_dict(state, strict=True, assign=True)
        try:
            self.network = network.to(device=self.device, dtype=torch.float32).eval()
        except (RuntimeError, AssertionError) as error:
            raise ValueError(f'torch device {device!r} is not usable: {_first_line(error)}') from None

    def belief_maps(self, frame: Frame, box: Box) -> tuple[np.ndarray, Box]:
        """The 68 final landmark belief maps (68, H/8, W/8) of the face in `box`, and the frame window they cover."""
        s = self.settings
        window = crop_window(box, frame.width, frame.height, s.box_expand)
        with torch.inference_mode():
            image = preprocess(frame.bgr, frame.local(window), s.input_width, s.input_height, self.device)
            maps = self.network(image)[0, :IBUG68_POINT_COUNT]
            return maps.float().cpu().numpy(), window

    def predict(self, frame: Frame, box: Box) -> Landmarks:
        maps, window = self.belief_maps(frame, box)
        s = self.settings
        points, confidence = decode_belief_maps(maps, s.refine_radius)
        points = input_to_frame(points, window, s.input_width, s.input_height)
        return Landmarks(points=points, confidence=confidence, backend=self.name)
