"""Could the flow run at a smaller, faster analysis scale? Scores at each scale against the reference scale.

    python -m bench.bench_analysis_scale [--interoculars 72 68 56] [--alphas 0 0.25 0.5 0.75 1] [--sizes 1 2 3]

Issue 9 allows a faster analysis scale as the default only if the scores of
the sample, its frozen half and its graded versions stay within 0.03 of the
reference-scale computation. The core computes the flow at
analysis_interocular and converts the magnitudes back (x reference /
analysis inter-ocular: reference pixels per frame again; the 6x-mean
threshold is a ratio and needs no conversion). So for each analysis
inter-ocular distance this scores, with the shipped settings otherwise, and
against analysis_interocular = reference_interocular:

- the sample letterboxed to 640x480 (1x, a 193 px face) and the same
  frames upscaled 2x and 3x (bench_core's full frames: 1280x960, 1920x1440);
- each with the patient's left half keeping a fraction alpha of its motion
  (core.synth.keep_motion_half: 0 is the frozen half, 1 the frames as they are);

and prints every region's SS at each scale, the largest difference from the
reference scale, the whole core's time per frame, and whether the 0.03 rule holds.
Benchmarks print figures; they assert nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np

from bench.bench_core import scaled
from bench.frames import letterboxed_frames
from facesym_ros.config.params import load_params_file, pipeline_config
from facesym_ros.core.frame import Frame
from facesym_ros.core.landmarks.factory import make_landmark_backend
from facesym_ros.core.pipeline import score_sequence
from facesym_ros.core.regions import REGION_NAMES
from facesym_ros.core.synth import keep_motion_half
from facesym_ros.core.timebase import NS_PER_SECOND

FRAME_RATE = 30.0
ALLOWED_DIFFERENCE = 0.03


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--interoculars', type=float, nargs='+', default=[72.0, 68.0, 56.0],
                        help='analysis inter-ocular distances to try [px] (the reference is the shipped one; '
                             'the shipped analysis scale is among the defaults)')
    parser.add_argument('--alphas', type=float, nargs='+', default=[0.0, 0.25, 0.5, 0.75, 1.0],
                        help='fractions of the left half\'s motion kept (0 frozen, 1 as recorded)')
    parser.add_argument('--sizes', type=int, nargs='+', default=[1, 2, 3], choices=(1, 2, 3), help='face sizes')
    args = parser.parse_args(argv)

    config = pipeline_config(load_params_file())
    backend = make_landmark_backend(config.landmarks)
    reference = config.flow.reference_interocular
    scales = [reference, *args.interoculars]
    period = round(NS_PER_SECOND / FRAME_RATE)
    print(f'analysis scale against the reference ({reference:g} px inter-ocular; shipped analysis scale '
          f'{config.flow.analysis_interocular:g}); SS per region, magnitudes in reference pixels; left half keeps '
          'alpha of its motion')
    print(f'{"case":<16}' + ''.join(f'{f"io {s:g}":>24}' for s in scales))
    worst = dict.fromkeys(args.interoculars, 0.0)
    flow_ms = {scale: [] for scale in scales}
    clip = letterboxed_frames()
    for size in args.sizes:
        plain = [Frame.from_bgr(image, index * period) for index, image in enumerate(scaled(clip, size))]
        for alpha in args.alphas:
            frames = list(keep_motion_half(plain, 'left', alpha, backend))
            scores = {}
            for scale in scales:
                flow = dataclasses.replace(config.flow, analysis_interocular=scale)
                started = time.perf_counter()
                result = score_sequence(frames, dataclasses.replace(config, flow=flow), backend)
                flow_ms[scale].append(1000 * (time.perf_counter() - started) / len(frames))
                scores[scale] = {region.region: region.symmetry for region in result.regions}
            for scale in args.interoculars:
                differences = [abs(scores[scale][r] - scores[reference][r]) for r in REGION_NAMES
                               if not (np.isnan(scores[scale][r]) or np.isnan(scores[reference][r]))]
                worst[scale] = max(worst[scale], *differences)
            cells = [' '.join(f'{scores[scale][r]:.3f}' for r in REGION_NAMES) for scale in scales]
            print(f'{f"{size}x alpha {alpha:g}":<16}' + ''.join(f'{cell:>24}' for cell in cells), flush=True)
    print(f'(regions in each cell: {", ".join(REGION_NAMES)})')
    print('whole core ms/frame (median over cases): '
          + ', '.join(f'io {s:g}: {np.median(flow_ms[s]):.1f}' for s in scales))
    for scale in args.interoculars:
        verdict = 'allowed as the default' if worst[scale] <= ALLOWED_DIFFERENCE else 'NOT allowed as the default'
        print(f'io {scale:g}: largest SS difference from io {reference:g}: {worst[scale]:.3f} '
              f'(rule: <= {ALLOWED_DIFFERENCE}): {verdict}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
