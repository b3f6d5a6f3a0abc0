"""A summary leaves out, and names, every score whose flags say it means nothing (issue 17, class 7)."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facesym_ros.clinic.protocol import SessionSettings, load_protocol
from facesym_ros.clinic.session_score import score_task, summarize, summary_json
from facesym_ros.core.flags import FLAG_TEXTS, void_reason
from facesym_ros.core.regions import REGION_NAMES
from facesym_ros.core.scoring import (
    NO_FLAGS,
    Quality,
    QualityFlag,
    RegionScore,
    ScoringSettings,
    score_frames,
    symmetry_score,
)

PROTOCOL = load_protocol()
FLAGS = list(FLAG_TEXTS)


def result(vs: dict[str, tuple[float, float]], flags: QualityFlag = NO_FLAGS):
    """A ScoreResult of the core with these VS per region and flags (SS by the core's formula)."""
    base = score_frames([], ScoringSettings())
    regions = tuple(RegionScore(r, left, right, symmetry_score(left, right, 3.8)) for r, (left, right) in vs.items())
    return dataclasses.replace(base, regions=regions, flow_pair_count=10, frame_count=11,
                               quality=Quality(flags=flags))


vs_value = st.one_of(st.floats(0.0, 0.05), st.just(0.0005), st.just(math.nan))
a_score = st.builds(lambda values, flags: result(dict(zip(REGION_NAMES, values, strict=True)), flags),
                    st.lists(st.tuples(vs_value, vs_value), min_size=3, max_size=3),
                    st.lists(st.sampled_from(FLAGS), max_size=3).map(lambda f: QualityFlag(sum(set(f)))))


@settings(max_examples=200, deadline=None)
@given(st.lists(a_score, min_size=len(PROTOCOL.tasks), max_size=len(PROTOCOL.tasks)))
def test_every_mean_is_over_exactly_the_scores_that_mean_something_and_names_the_rest(scores):
    tasks = [score_task(task, score, SessionSettings()) for task, score in zip(PROTOCOL.tasks, scores, strict=True)]
    summary = summarize(tasks)
    for region in REGION_NAMES:
        targeting = [ts for ts in tasks if not ts.task.baseline and region in ts.task.primary]
        counted = [ts.region(region).symmetry.value for ts in targeting if void_reason(ts.score, region) is None
                   and not ts.region(region).symmetry.missing]
        left_out = {ts.task.name for ts in targeting} - {ts.task.name for ts in targeting
                                                       if void_reason(ts.score, region) is None
                                                       and not ts.region(region).symmetry.missing}
        assert {entry.task for entry in summary.excluded_from(region)} == left_out
        assert all(entry.reason for entry in summary.excluded_from(region))
        mean = summary.region_means[region]
        if counted:
            assert mean.value == pytest.approx(sum(counted) / len(counted))
        elif targeting:
            assert mean.missing and all(name in mean.reason for name in left_out)
    means = list(summary.region_means.values())
    if any(mean.missing for mean in means):
        assert summary.index.missing and summary.index.reason
    else:
        assert summary.index.value == pytest.approx(sum(mean.value for mean in means) / len(means))
    payload = summary_json(summary)
    assert len(payload['excluded']) == len(summary.excluded)


def test_the_issues_raise_brows_without_forehead_motion_counts_in_no_mean():
    moved = {'forehead': (0.02, 0.015), 'eye': (0.03, 0.028), 'cheek': (0.05, 0.045)}
    still = {**moved, 'forehead': (0.00101, 0.00100)}  # SS 0.99994, the brows did not move
    scores = [result(still, QualityFlag.LOW_MOTION) if task.name == 'raise_brows' else result(moved)
              for task in PROTOCOL.tasks]
    tasks = [score_task(task, score, SessionSettings()) for task, score in zip(PROTOCOL.tasks, scores, strict=True)]
    assert tasks[1].task.name == 'raise_brows' and tasks[1].region('forehead').symmetry.value > 0.9999
    summary = summarize(tasks)
    assert math.isnan(summary.region_means['forehead'].value)
    assert 'raise_brows: no movement: task not done?' in summary.region_means['forehead'].reason
    assert math.isnan(summary.index.value) and 'forehead' in summary.index.reason
    assert summary_json(summary)['regions']['forehead']['excluded'] == [
        {'task': 'raise_brows', 'region': 'forehead', 'reason': 'no movement: task not done?'}]
    # its flag greys only the region that did not move: raise_brows's other regions are no primary anyway
    assert summary.region_means['cheek'].value == pytest.approx(1 - 3.8 * 0.005)
