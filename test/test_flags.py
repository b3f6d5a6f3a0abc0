"""The plain-words flag table: one text for every quality flag, and the rule that greys a number."""

import dataclasses
import json
from pathlib import Path

import pytest

from facesym_ros.core.flags import FLAG_TEXTS, TABLE_BEGIN, TABLE_END, flags_markdown, void_reason, with_flag_table
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


def test_a_greyed_cell_gets_a_short_reason():
    for text in FLAG_TEXTS.values():
        if text.voids != 'none':
            assert text.short and len(text.short) <= 40 and '\n' not in text.short, text.name


def test_the_docs_flag_table_is_the_one_generated_from_the_flag_table():
    """docs/reading-the-report.md carries flags_markdown() between its markers (scripts/flag_table.py)."""
    document = (Path(__file__).resolve().parent.parent / 'docs' / 'reading-the-report.md').read_text()
    assert with_flag_table(document) == document, 'run scripts/flag_table.py to regenerate the table'
    table = document.split(TABLE_BEGIN)[1].split(TABLE_END)[0]
    for flag, text in FLAG_TEXTS.items():
        assert f'| `{text.name}` | {int(flag)} | {text.words} |' in table


def test_the_generator_replaces_a_stale_table():
    stale = f'# Doc\n{TABLE_BEGIN}\n| old |\n{TABLE_END}\nafter\n'
    fresh = with_flag_table(stale)
    assert '| old |' not in fresh and flags_markdown() in fresh and fresh.endswith(f'{TABLE_END}\nafter\n')
    with pytest.raises(ValueError, match='no'):
        with_flag_table('# a document without the markers')
