"""Per-stage cost of the scoring core at 640x480 on a real clip, and where it stands against 60 fps on one core.

    python -m bench.bench_core [--repeats N] [--threads N]

Prints milliseconds per frame for detection (Haar, with the fixed-box check),
landmarks (dlib), flow (Farneback in the face crop, threshold, region sums)
and scoring, frames per second of the whole core, and Farneback on a full
frame for comparison. Benchmarks print figures; they assert nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import cv2

from bench.frames import letterboxed_frames
from facesym_ros.core.frame import Frame
from facesym_ros.core.pipeline import FacePipeline
from facesym_ros.core.scoring import score_frames

TARGET_FPS = 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--repeats', type=int, default=4, help='play the 72-frame clip this many times')
    parser.add_argument('--threads', type=int, default=1, help='OpenCV threads (1: the one-core figure)')
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    images = letterboxed_frames(args.repeats)

    pipeline = FacePipeline()
    pipeline.process(Frame.from_bgr(images[0], 0))  # warm-up: model and cascade loaded
    pipeline = FacePipeline(landmark_backend=pipeline.landmarks)
    began = time.perf_counter()
    frames = []
    for index, image in enumerate(images):
        frames.append(Frame.from_bgr(image, round(index * 1e9 / 30)))  # includes the grayscale conversion
    converted = time.perf_counter()
    motions = [pipeline.process(frame).motion for frame in frames]
    processed = time.perf_counter() - began
    scoring_began = time.perf_counter()
    result = score_frames(motions, pipeline.config.scoring)
    scoring = time.perf_counter() - scoring_began

    count = len(frames)
    stages = {'grayscale': converted - began, **pipeline.stage_seconds, 'scoring': scoring}
    total = processed + scoring
    print(f'scoring core, {count} frames of {images[0].shape[1]}x{images[0].shape[0]}, '
          f'OpenCV threads: {args.threads}, CPUs: {os.cpu_count()}')
    for stage, seconds in stages.items():
        print(f'  {stage:<10} {1000 * seconds / count:7.2f} ms/frame')
    print(f'  {"total":<10} {1000 * total / count:7.2f} ms/frame = {count / total:6.1f} fps '
          f'(target {TARGET_FPS:g} fps: {"met" if count / total >= TARGET_FPS else "NOT met"})')

    gray = frames[0].gray
    start = time.perf_counter()
    for _ in range(5):
        cv2.calcOpticalFlowFarneback(gray, frames[1].gray, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    full = (time.perf_counter() - start) / 5
    crop = motions[1].crop_box
    print(f'  reference: Farneback on the full {gray.shape[1]}x{gray.shape[0]} frame {1000 * full:.1f} ms; '
          f'the face crop is {crop.width}x{crop.height}')
    print('  symmetry: ' + ', '.join(f'{r.region} {r.symmetry:.3f}' for r in result.regions))
    return 0


if __name__ == '__main__':
    sys.exit(main())
