"""`facesym score` and `facesym synth`: the method on video files and folders of frames."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from facesym_ros.core.annotate import FlowSum, annotate, heatmap_overlay
from facesym_ros.core.landmarks.factory import make_landmark_backend
from facesym_ros.core.pipeline import FacePipeline, FrameResult
from facesym_ros.core.scoring import RegionScore, ScoreResult, score_frames
from facesym_ros.core.synth import keep_motion_half
from facesym_ros.core.video import FrameSource
from facesym_ros.params import load_params_file, pipeline_config
from facesym_ros.report import format_table, write_json
from facesym_ros.samples import SAMPLE_VIDEO

VIDEO_SUFFIXES = {'.mp4', '.avi', '.mov', '.mkv'}


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--params-file', help='ROS 2 parameter file (default: config/facesym.yaml)')
    parser.add_argument('--landmarks', choices=('dlib', 'san'), help='landmark backend (overrides the file)')
    parser.add_argument('--model', help='landmark model file (a SAN checkpoint for --landmarks san)')


def resolve_config(args: argparse.Namespace):
    params = load_params_file(args.params_file)
    overrides = params['landmark_detector']
    if args.landmarks:
        overrides['backend'] = args.landmarks
    if args.model:
        overrides['model_path'] = args.model
    return pipeline_config(params)


def resolve_input(args: argparse.Namespace) -> Path:
    if args.sample:
        return SAMPLE_VIDEO
    if not args.input:
        raise ValueError('give an INPUT video or folder, or --sample')
    return Path(args.input)


def _polygons(result: FrameResult) -> list[tuple[str, str, np.ndarray]]:
    return [(side.region, side.side, side.polygon) for side in result.motion.regions]


def annotated_frame(result: FrameResult, heatmap_max: float, *, scores: Sequence[RegionScore] = (),
                    title: str = '', notes: Sequence[str] = ()) -> np.ndarray:
    """The frame with its flow heat map (paper Fig. 4), face box, landmarks, regions and a score panel."""
    motion = result.motion
    image = result.frame.bgr
    if motion.flow_valid and motion.magnitude is not None and motion.crop_box is not None:
        image = heatmap_overlay(image, motion.crop_box, motion.magnitude, heatmap_max)
    return annotate(image, result.track.box, result.landmarks, _polygons(result), scores=scores, title=title,
                    notes=notes)


def write_annotations(directory: Path, results: list[FrameResult], score: ScoreResult, heatmap_max: float) -> None:
    """Per-frame annotated images and heatmap_total.png, the summed flow over the sequence (paper Fig. 4)."""
    directory.mkdir(parents=True, exist_ok=True)
    total = FlowSum()
    for index, result in enumerate(results):
        total.add(result.motion)
        cv2.imwrite(str(directory / f'frame_{index:05d}.png'),
                    annotated_frame(result, heatmap_max, title=f'frame {index}'))
    reference = next((r for r in results if r.motion.regions), results[0] if results else None)
    if reference is None:
        return
    summary = total.image(reference, scores=score.regions, notes=score.quality.notes)
    cv2.imwrite(str(directory / 'heatmap_total.png'), summary)


def score_command(args: argparse.Namespace) -> int:
    path = resolve_input(args)
    config = resolve_config(args)
    source = FrameSource.open(path, args.frame_rate)
    pipeline = FacePipeline(config)
    keep = args.annotate is not None
    results: list[FrameResult] = []
    motions = []
    for frame in source.frames():
        result = pipeline.process(frame)
        motions.append(result.motion)
        if keep:
            results.append(result)
    score = score_frames(motions, config.scoring, trial_id=path.stem)
    print(format_table(score, title=f'{path} ({source.frame_rate:g} fps, landmarks: {pipeline.landmarks.name})'))
    if args.json:
        payload = score.to_json_dict()
        payload['input'] = str(path)
        write_json(args.json, payload)
    if keep:
        write_annotations(Path(args.annotate), results, score, args.heatmap_max)
    return 0


def synth_command(args: argparse.Namespace) -> int:
    path = resolve_input(args)
    config = resolve_config(args)
    source = FrameSource.open(path, args.frame_rate)
    backend = make_landmark_backend(config.landmarks)
    alpha = args.keep_motion
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f'--keep-motion must be a fraction in [0, 1], got {alpha}')
    frames = keep_motion_half(source.frames(), args.freeze, alpha, backend, mirrored=config.flow.mirrored,
                              detector_config=config.detector)
    output = Path(args.output)
    # Lossy codecs change the frozen pixels a little; a folder of PNG frames keeps them exact.
    as_video = output.suffix.lower() in VIDEO_SUFFIXES
    (output.parent if as_video else output).mkdir(parents=True, exist_ok=True)
    writer = None
    count = 0
    try:
        for count, frame in enumerate(frames, start=1):
            if not as_video:
                cv2.imwrite(str(output / f'frame_{count - 1:05d}.png'), frame.bgr)
                continue
            if writer is None:
                writer = cv2.VideoWriter(str(output), cv2.VideoWriter_fourcc(*'mp4v'), source.frame_rate,
                                         (frame.width, frame.height))
                if not writer.isOpened():
                    raise ValueError(f'{output}: OpenCV cannot write this video format')
            writer.write(frame.bgr)
    finally:
        if writer is not None:
            writer.release()
    what = 'frozen at frame 0' if alpha == 0.0 else f'keeping {alpha:g} of its motion'
    print(f'{output}: {count} frames with the patient\'s {args.freeze} half {what}', file=sys.stderr)
    return 0
