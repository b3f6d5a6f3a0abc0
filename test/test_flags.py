"""The plain-words flag table: one text for every quality flag, and the rule that greys a number."""

import dataclasses
import json

import pytest

from facesym_ros.core.flags import FLAG_TEXTS, void_reason
from facesym_ros.core.scoring import Quality, QualityFlag, RegionScore, ScoreResult


def _score(flags: QualityFlag, vs: float = 0.01, min_movement: float = 0.002) -> ScoreResult:
    regions = tuple(RegionScore(name, vs, vs, 1.0) for name in ('forehead', 'eye', 'cheek'))
    return ScoreResult('t', 0, 1, 10, 9, regions, 3.8, 6.0, Quality(flags=flags),
                       method=json.dumps({'min_movement': min_movement}))


def test_every_quality_flag_has_one_plain_words_line():
    assert set(FLAG_TEXTS) == set(QualityFlag)
    for text in FLAG_TEXTS.values():
        assert text.words and '\n' not in text.words and len(text.words) < 120
        assert text.action and text.voids in ('score', 'region', 'none')


@pytest.mark.parametrize('flag', [flag for flag, text in FLAG_TEXTS.items() if text.voids == 'score'])
def test_a_voiding_flag_greys_every_region(flag):
    assert all(void_reason(_score(flag), region) for region in ('forehead', 'eye', 'cheek'))


def test_low_motion_greys_only_the_regions_that_did_not_move():
    score = _score(QualityFlag.LOW_MOTION)
    regions = list(score.regions)
    regions[0] = RegionScore('forehead', 0.0001, 0.0003, 0.999)
    score = dataclasses.replace(score, regions=tuple(regions))
    assert void_reason(score, 'forehead') == FLAG_TEXTS[QualityFlag.LOW_MOTION].reason
    assert void_reason(score, 'cheek') is None
    assert void_reason(_score(QualityFlag.DROPPED_FRAMES), 'cheek') is None
