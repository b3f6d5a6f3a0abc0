"""Per-frame cost of issue 17's trial rules on the live path, against the same frames without them, in one run.

    python -m bench.bench_trial_rules [--runs 3] [--scales 1 2]

The rules that run per frame live: one face per trial (core.identity: a 32x32 thumbnail of the face crop, its
correlation and colour histogram against the trial's first face, in optical_flow), and one image size per trial
and the face in most frames (counters in TrialAccumulator, in symmetry_scorer). Frame order and the bag's types
are checked once per folder or bag, not per frame.

The face side (detection, landmarks) is observed once; then the flow and scoring stages (optical_flow's and
symmetry_scorer's work) run over the same observations with the rules (as shipped) and without them (the
identity check replaced by a constant, the size check skipped), alternating, `runs` times. It prints the median
ms/frame of each and their difference, and the rules' own cost timed alone. It asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2

from bench.frames import letterboxed_frames
from facesym_ros.core.flow import RegionMotionEstimator
from facesym_ros.core.frame import Frame
from facesym_ros.core.identity import Appearance
from facesym_ros.core.pipeline import FacePipeline, Observation
from facesym_ros.core.scoring import ScoringSettings, TrialAccumulator
from facesym_ros.core.timebase import NS_PER_SECOND


class WithoutRules(RegionMotionEstimator):
    def _face_changed(self, frame: Frame, crop) -> bool:
        return False


class AccumulatorWithoutRules(TrialAccumulator):
    def _check_image_size(self, size: tuple[int, int]) -> None:
        return None


def flow_and_score(observations: list[Observation], pipeline: FacePipeline, rules: bool) -> float:
    """Seconds per frame of the flow and scoring stages over the observations."""
    estimator = (RegionMotionEstimator if rules else WithoutRules)(pipeline.config.flow, pipeline.landmarks.name)
    trial = (TrialAccumulator if rules else AccumulatorWithoutRules)(ScoringSettings())
    start = time.perf_counter()
    for observed in observations:
        seen = observed.patch if observed.patch is not None else observed.frame
        track = observed.track
        trial.add(estimator.update(seen, track.state, track.box, track.faces_in_image, observed.landmarks))
    trial.result()
    return (time.perf_counter() - start) / len(observations)


def rule_alone(observations: list[Observation]) -> float:
    """Seconds per frame of the identity rule alone (thumbnail, correlation, histogram distance)."""
    crops = [o.frame.local(o.track.box.clipped(o.frame.width, o.frame.height)).crop(o.frame.bgr)
             for o in observations if o.track.box is not None]
    first = Appearance.of(crops[0])
    start = time.perf_counter()
    for crop in crops:
        Appearance.of(crop).same_face(first, 0.4, 0.3)
    return (time.perf_counter() - start) / len(crops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--scales', type=int, nargs='+', default=[1, 2])
    args = parser.parse_args()
    images = letterboxed_frames()
    for scale in args.scales:
        pipeline = FacePipeline()
        observations = []
        for index, image in enumerate(images):
            big = image if scale == 1 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
            observations.append(pipeline.observe(Frame.from_bgr(big, round(index * NS_PER_SECOND / 30))))
        timed: dict[bool, list[float]] = {True: [], False: []}
        alone = []
        for _ in range(args.runs):
            for rules in (False, True):
                timed[rules].append(flow_and_score(observations, pipeline, rules))
            alone.append(rule_alone(observations))
        before, after = (statistics.median(timed[rules]) * 1e3 for rules in (False, True))
        print(f'{scale}x ({images[0].shape[1] * scale}x{images[0].shape[0] * scale}, {len(images)} frames), '
              f'median of {args.runs}: flow + scoring without the rules {before:.3f} ms/frame, with them '
              f'{after:.3f} ms/frame (difference {after - before:+.3f}); the identity rule alone '
              f'{statistics.median(alone) * 1e3:.3f} ms/frame')


if __name__ == '__main__':
    main()
