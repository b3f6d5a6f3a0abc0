"""Scores with the mediapipe landmark backend against dlib's, on the sample and its graded asymmetric versions.

    python -m bench.bench_landmark_scores [--sizes 1 2] [--alphas 0 0.25 0.5 0.75]

Issue 20 makes mediapipe the default only if every SS it gives is within 0.03
of dlib's on the sample, its frozen-half version and its --keep-motion 0.25,
0.5 and 0.75 versions, at 1x and 2x, and if the SS falls monotonically as
less motion is kept, on both sides. The graded versions are made once per
case with dlib's landmarks (core.synth.keep_motion_half, as `facesym synth
--landmarks dlib`), so both backends score the same frames; each is scored
with the shipped settings (config/facesym.yaml) and only the backend
changed. Frames: the bundled clip letterboxed to 640x480 and upscaled
(bench_core's frames). Prints the table, the largest difference and the
monotonicity of the moving regions (eye, cheek); asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys

import numpy as np

from bench.bench_core import scaled
from bench.frames import letterboxed_frames
from facesym_ros.config.params import load_params_file, pipeline_config
from facesym_ros.core.frame import Frame
from facesym_ros.core.landmarks.factory import LandmarkSettings, make_landmark_backend
from facesym_ros.core.pipeline import score_sequence
from facesym_ros.core.regions import REGION_NAMES
from facesym_ros.core.synth import keep_motion_half
from facesym_ros.core.timebase import NS_PER_SECOND

FRAME_RATE = 30.0
ALLOWED_DIFFERENCE = 0.03
BACKENDS = ('dlib', 'mediapipe')
MOVING_REGIONS = ('eye', 'cheek')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[1, 2], choices=(1, 2, 3), help='face sizes')
    parser.add_argument('--alphas', type=float, nargs='+', default=[0.0, 0.25, 0.5, 0.75],
                        help='fractions of one half\'s motion kept (0: the frozen half); 1, the sample, is added')
    args = parser.parse_args(argv)
    config = pipeline_config(load_params_file())
    backends = {name: make_landmark_backend(LandmarkSettings(backend=name)) for name in BACKENDS}
    configs = {name: dataclasses.replace(config, landmarks=LandmarkSettings(backend=name)) for name in BACKENDS}
    period = round(NS_PER_SECOND / FRAME_RATE)
    alphas = [*sorted(set(args.alphas)), 1.0]
    print('SS per region (forehead eye cheek), dlib | mediapipe; "side" is the half that keeps alpha of its motion')
    worst, monotonic = 0.0, True
    clip = letterboxed_frames()
    for size in args.sizes:
        plain = [Frame.from_bgr(image, index * period) for index, image in enumerate(scaled(clip, size))]
        for side in ('left', 'right'):
            series: dict[str, list[dict[str, float]]] = {name: [] for name in BACKENDS}
            for alpha in alphas:
                frames = plain if alpha == 1.0 else list(keep_motion_half(plain, side, alpha, backends['dlib']))
                scores = {}
                for name in BACKENDS:
                    result = score_sequence(frames, configs[name], backends[name])
                    scores[name] = {region.region: region.symmetry for region in result.regions}
                    series[name].append(scores[name])
                differences = [abs(scores['mediapipe'][r] - scores['dlib'][r]) for r in REGION_NAMES
                               if not (np.isnan(scores['mediapipe'][r]) or np.isnan(scores['dlib'][r]))]
                worst = max(worst, *differences)
                cells = ' | '.join(' '.join(f'{scores[name][r]:.3f}' for r in REGION_NAMES) for name in BACKENDS)
                print(f'{size}x {side:5s} alpha {alpha:4g}:  {cells}   largest difference {max(differences):.3f}',
                      flush=True)
            for name in BACKENDS:
                for region in MOVING_REGIONS:
                    values = [score[region] for score in series[name][:-1]]  # the graded versions
                    rising = all(b >= a for a, b in itertools.pairwise(values))
                    monotonic &= rising
                    if not rising:
                        print(f'  {size}x {side}: {name} {region} SS does not rise with alpha: '
                              + ' '.join(f'{v:.3f}' for v in values))
    print(f'largest SS difference mediapipe - dlib: {worst:.3f} (rule: <= {ALLOWED_DIFFERENCE}): '
          f'{"holds" if worst <= ALLOWED_DIFFERENCE else "FAILS"}')
    print(f'SS of {" and ".join(MOVING_REGIONS)} rises with the motion kept (alpha {alphas[0]:g} to {alphas[-2]:g}), '
          'both sides, both backends: '
          f'{"yes" if monotonic else "NO"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
