"""What several commands share: the parameter-file and landmark-model arguments, and the settings they give."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facesym_ros.config.files import SAMPLE_VIDEO
from facesym_ros.config.node_settings import OpticalFlowNodeSettings
from facesym_ros.config.params import load_params_file, owner_of, pipeline_config, settings_from
from facesym_ros.core.detection import DetectorSettings
from facesym_ros.core.landmarks.factory import BACKENDS, LandmarkSettings
from facesym_ros.core.pipeline import PipelineSettings


def add_params_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--params-file', type=Path, help='ROS 2 parameter file (default: config/facesym.yaml)')


def add_method_arguments(parser: argparse.ArgumentParser, *, heatmap: bool = True) -> None:
    """The parameter file, the landmark model and (where it draws) the heat-map scale of a command."""
    add_params_argument(parser)
    parser.add_argument('--landmarks', choices=BACKENDS, help='landmark backend (overrides the file)')
    parser.add_argument('--model', help='landmark model file (a SAN checkpoint for --landmarks san)')
    parser.add_argument('--patient-region', metavar='X,Y,WIDTH,HEIGHT',
                        help='only a face whose centre lies in this box of the image is the patient\'s [px] '
                             '(overrides face_detector.patient_region of the file)')
    if heatmap:
        parser.add_argument('--heatmap-max', type=float,
                            help='flow magnitude shown as the hottest colour in heat maps [px/frame] '
                                 '(default: optical_flow.heatmap_max of the parameter file)')


@dataclass(frozen=True)
class MethodSettings:
    """The settings a command scores with, all from the parameter file (and its command-line overrides)."""

    pipeline: PipelineSettings
    heatmap_max: float
    params: dict[str, dict[str, Any]]


def resolve_settings(args: argparse.Namespace) -> MethodSettings:
    params = load_params_file(args.params_file)
    overrides = params[owner_of(LandmarkSettings)]
    if getattr(args, 'landmarks', None):
        overrides['backend'] = args.landmarks
    if getattr(args, 'model', None):
        overrides['model_path'] = args.model
    if getattr(args, 'patient_region', None) is not None:
        params[owner_of(DetectorSettings)]['patient_region'] = parse_region(args.patient_region)
    flow_node = settings_from(params, OpticalFlowNodeSettings)
    heatmap_max = getattr(args, 'heatmap_max', None)
    if heatmap_max is not None and not heatmap_max > 0:
        raise ValueError(f'--heatmap-max must be positive, got {heatmap_max}')
    return MethodSettings(pipeline_config(params), heatmap_max or flow_node.heatmap_max, params)


def parse_region(text: str) -> list[int]:
    """--patient-region X,Y,WIDTH,HEIGHT as four integers (their ranges are DetectorSettings')."""
    try:
        values = [int(part) for part in text.split(',')]
    except ValueError:
        values = []
    if len(values) != 4:
        raise ValueError(f'--patient-region must be X,Y,WIDTH,HEIGHT in image pixels (four integers), got {text!r}')
    return values


def resolve_input(args: argparse.Namespace) -> Path:
    """The INPUT argument, or the bundled sample with --sample."""
    if args.sample:
        return SAMPLE_VIDEO
    if not args.input:
        raise ValueError('give an INPUT video or folder, or --sample')
    return Path(args.input)
