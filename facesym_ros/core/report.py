"""Score output for people and files: a text table, JSON and CSV."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path

from facesym_ros.core.scoring import ScoreResult

CSV_COLUMNS = ['trial_id', 'first_stamp_ns', 'last_stamp_ns', 'frames', 'flow_pairs', 'region',
               'vs_left', 'vs_right', 'symmetry', 'lambda', 'threshold_factor', 'quality_flags', 'quality_notes']


def _number(value: float, digits: int) -> str:
    return 'n/a' if math.isnan(value) else f'{value:.{digits}f}'


def format_table(result: ScoreResult, title: str = '') -> str:
    """A plain-text table of one score, with its quality notes."""
    lines = [title] if title else []
    lines.append(f'{result.frame_count} frames, {result.flow_pair_count} frame pairs with flow, '
                 f'lambda {result.symmetry_lambda}, threshold factor {result.threshold_factor}')
    lines.append(f'{"region":<10}{"VS left":>12}{"VS right":>12}{"symmetry":>10}')
    for region in result.regions:
        lines.append(f'{region.region:<10}{_number(region.vs_left, 5):>12}{_number(region.vs_right, 5):>12}'
                     f'{_number(region.symmetry, 3):>10}')
    notes = result.quality.notes
    lines.append('quality: ' + ('ok' if not notes else '; '.join(notes)))
    return '\n'.join(lines)


def json_text(payload: dict) -> str:
    """The JSON files' text: indented, no NaN (it is null in the payload)."""
    return json.dumps(payload, indent=2, allow_nan=False) + '\n'


def write_json(path: str | Path, payload: dict) -> None:
    Path(path).write_text(json_text(payload))


def write_csv(path: str | Path, results: Sequence[ScoreResult]) -> None:
    """One row per trial and region."""
    with Path(path).open('w', newline='') as stream:
        writer = csv.writer(stream)
        writer.writerow(CSV_COLUMNS)
        for result in results:
            flags = '|'.join(item for item in result.to_json_dict()['quality']['flags'])
            for region in result.regions:
                writer.writerow([
                    result.trial_id, result.first_stamp_ns, result.last_stamp_ns, result.frame_count,
                    result.flow_pair_count, region.region,
                    *('' if math.isnan(v) else repr(v) for v in (region.vs_left, region.vs_right, region.symmetry)),
                    result.symmetry_lambda, result.threshold_factor, flags, ' | '.join(result.quality.notes)])
