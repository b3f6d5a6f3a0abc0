"""Per-stage cost of the scoring core at 1x, 2x and 3x face size, against a plain single-loop reading of the paper.

    python -m bench.bench_core [--frames N] [--scales 1 2 3] [--threads N]

Frames: the bundled clip letterboxed to 640x480 (1x, a 193 px face), and the
same frames upscaled 2x and 3x (cv2.INTER_CUBIC, full frames: 1280x960 and
1920x1440), so the face is two and three times as large. The upscaling is
done outside the timed stages.

For each size it prints milliseconds per frame for grayscale conversion,
detection (Haar: the first frame's search, then the fixed-box check),
landmarks (dlib), flow (Farneback in the face crop, threshold, region sums)
and scoring, for

- the core as shipped (config/facesym.yaml: the face crop resampled to the
  reference inter-ocular distance, the cheap fixed-box check), and
- the baseline, a plain single-loop reading of the paper: Haar over the
  whole frame on every frame (the box stays the first frame's, so the flow
  sees the same crop) and full-resolution Farneback on the native face crop
  (FlowSettings(face_scale='native')).

Then the speed ratio (baseline time / core time) against the target that the
core is at least twice as fast as the baseline. Benchmarks print figures;
they assert nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Iterator

import cv2
import numpy as np

from bench.frames import letterboxed_frames
from facesym_ros.config.params import load_params_file, pipeline_config
from facesym_ros.core.detection import FaceTrack, FaceTracker, HaarFaceDetector, TrackState
from facesym_ros.core.frame import Frame
from facesym_ros.core.landmarks import LandmarkBackend
from facesym_ros.core.pipeline import FacePipeline, PipelineSettings
from facesym_ros.core.scoring import ScoreResult, score_frames

TARGET_SPEED_RATIO = 2.0
FRAME_RATE = 30.0


class DetectEveryFrame(FaceTracker):
    """The baseline's detection: Haar over the whole frame on every frame; the box stays the first frame's."""

    def update(self, gray: np.ndarray) -> FaceTrack:
        detections = tuple(self.detector.detect(gray))
        if not detections:
            return FaceTrack(TrackState.NO_FACE, None, (), -1)
        if self._box is None:
            self._box = detections[0].box
            return FaceTrack(TrackState.DETECTED, self._box, detections, 0)
        return FaceTrack(TrackState.TRACKED, self._box, detections, 0)


def scaled(images: list[np.ndarray], scale: int) -> Iterator[np.ndarray]:
    """The images upscaled by an integer factor, one at a time (3x frames of a whole clip would fill memory)."""
    for image in images:
        yield image if scale == 1 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)


def run(images: list[np.ndarray], scale: int, config: PipelineSettings, landmarks: LandmarkBackend,
        baseline: bool) -> tuple[dict[str, float], float, int, ScoreResult]:
    """Seconds per stage over all frames, detection seconds per frame after the first, the face box side and
    the score."""
    pipeline = FacePipeline(config, landmarks)
    if baseline:
        pipeline.tracker = DetectEveryFrame(HaarFaceDetector(config.detector))
    grayscale = first_detection = 0.0
    motions = []
    side = 0
    for index, image in enumerate(scaled(images, scale)):
        began = time.perf_counter()
        frame = Frame.from_bgr(image, round(index * 1e9 / FRAME_RATE))
        grayscale += time.perf_counter() - began
        result = pipeline.process(frame)
        motions.append(result.motion)
        if index == 0:
            first_detection = pipeline.stage_seconds['detection']
        if result.track.box is not None:
            side = result.track.box.width
    began = time.perf_counter()
    score = score_frames(motions, config.scoring)
    stages = {'grayscale': grayscale, **pipeline.stage_seconds, 'scoring': time.perf_counter() - began}
    later = (pipeline.stage_seconds['detection'] - first_detection) / max(1, len(motions) - 1)
    return stages, later, side, score


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--frames', type=int, default=144,
                        help='frames per size (the 72-frame clip played forwards and backwards)')
    parser.add_argument('--scales', type=int, nargs='+', default=[1, 2, 3], help='face sizes (upscaling factors)')
    parser.add_argument('--threads', type=int, default=1, help='OpenCV threads (1: the one-core figure)')
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    images = letterboxed_frames(-(-args.frames // 72))[:args.frames]
    config = pipeline_config(load_params_file())
    baseline_config = dataclasses.replace(config, flow=dataclasses.replace(config.flow, face_scale='native'))

    warm = FacePipeline(config)
    warm.process(Frame.from_bgr(images[0], 0))  # model and cascade loaded before any timing
    landmarks = warm.landmarks
    print(f'scoring core vs the plain single-loop baseline, {len(images)} frames per size, '
          f'OpenCV threads: {args.threads}, CPUs: {os.cpu_count()}')
    print('  baseline: Haar over the whole frame every frame, Farneback on the native face crop')
    for scale in args.scales:
        core, core_check, side, core_score = run(images, scale, config, landmarks, baseline=False)
        base, base_check, _, base_score = run(images, scale, baseline_config, landmarks, baseline=True)
        count = len(images)
        height, width = images[0].shape[0] * scale, images[0].shape[1] * scale
        print(f'{scale}x: {width}x{height}, face box {side} px'
              f'{"":>4}{"core ms/frame":>15}{"baseline ms/frame":>19}')
        for stage in core:
            print(f'  {stage:<33}{1000 * core[stage] / count:>15.2f}{1000 * base[stage] / count:>19.2f}')
            if stage == 'detection':
                print(f'  {"  per frame after the first":<33}{1000 * core_check:>15.2f}{1000 * base_check:>19.2f}')
        core_total, base_total = sum(core.values()), sum(base.values())
        print(f'  {"total":<33}{1000 * core_total / count:>15.2f}{1000 * base_total / count:>19.2f}')
        print(f'  {"frames per second":<33}{count / core_total:>15.1f}{count / base_total:>19.1f}')
        ratio = base_total / core_total
        print(f'  speed ratio core/baseline: {ratio:.2f}x (target >= {TARGET_SPEED_RATIO:g}x: '
              f'{"met" if ratio >= TARGET_SPEED_RATIO else "NOT met"})')
        for name, score in (('core', core_score), ('baseline', base_score)):
            print(f'  symmetry {name + ":":<10}' + ', '.join(f'{r.region} {r.symmetry:.3f}' for r in score.regions))
    return 0


if __name__ == '__main__':
    sys.exit(main())
