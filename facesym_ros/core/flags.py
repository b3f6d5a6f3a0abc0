"""What each quality flag means, in plain words: the one table the report, the console and the docs use.

Every QualityFlag has a FlagText. `voids` says what a raised flag does to a number:

- ``score``: no SS of the trial means anything (too few frames, several faces, a face box set anew after the
  trial's first frame, the head moved, another face, another image size): every SS is greyed and left out of
  every mean;
- ``region``: only the regions the flag names mean nothing (low motion: the region hardly moved on either
  side; an empty region: no pixels, no SS);
- ``none``: the score stands; read it with the caution the words give.

`void_reason` applies the table to one region of one score, so every consumer greys and leaves out the same
numbers for the same reason.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Literal

from facesym_ros.core.scoring import QualityFlag, ScoreResult, ScoringSettings

Voids = Literal['score', 'region', 'none']


@dataclass(frozen=True)
class FlagText:
    flag: QualityFlag
    words: str  # one line, for a clinician
    action: str  # what to do about it
    voids: Voids
    short: str = ''  # the greyed cell's reason; `words` when empty

    @property
    def name(self) -> str:
        return (self.flag.name or '').lower()

    @property
    def reason(self) -> str:
        return self.short or self.words


FLAG_TEXTS: dict[QualityFlag, FlagText] = {text.flag: text for text in (
    FlagText(QualityFlag.NO_FACE, 'The face was not found in some frames.',
             'Check the light and that the patient faces the camera.', 'none'),
    FlagText(QualityFlag.DROPPED_FRAMES, 'Some frames were lost; the score uses the frames that came.',
             'Close other programs on the rig PC; check the camera cable and rate.', 'none'),
    FlagText(QualityFlag.LOW_LANDMARK_CONFIDENCE, 'The face points were uncertain in some frames.',
             'Improve the light; ask the patient to face the camera.', 'none'),
    FlagText(QualityFlag.HEAD_MOTION, 'The head moved during the task, so face and head motion are mixed.',
             'Repeat the task with the head still.', 'score', 'head moved: repeat the task'),
    FlagText(QualityFlag.TOO_FEW_FRAMES, 'Too few frames of the task were scored to give a number.',
             'Repeat the task; check the camera and the rig PC.', 'score', 'too few frames'),
    FlagText(QualityFlag.MULTIPLE_FACES, 'Another face was in view.',
             'Keep other people out of the camera\'s view and repeat the task.', 'score', 'another face in view'),
    FlagText(QualityFlag.FACE_BOX_CHANGED, 'The face moved out of its box and was found again.',
             'Ask the patient to keep the head still.', 'none'),
    FlagText(QualityFlag.EMPTY_REGION, 'A face region was outside the picture: that region has no score.',
             'Centre the face in the camera.', 'region', 'region outside the picture'),
    FlagText(QualityFlag.LOW_MOTION, 'A region hardly moved on either side: its symmetry says nothing.',
             'Was the task done? Repeat it with a clear movement.', 'region', 'no movement: task not done?'),
    FlagText(QualityFlag.INCOMPLETE, 'The task was recorded only in part.',
             'Repeat the task if the part is short.', 'none'),
    FlagText(QualityFlag.SMALL_FACE, 'The face was small in the picture; small movements may be missed.',
             'Move the camera closer or zoom in.', 'none'),
    FlagText(QualityFlag.LATE_ANCHOR, 'The live score did not start at the task\'s first frame.',
             'Score the recording again (facesym session --from-bag).', 'score', 'late start: rescore the bag'),
    FlagText(QualityFlag.FACE_CHANGED, 'The face stopped looking like the task\'s first face: another person?',
             'Keep one person in front of the camera and repeat the task.', 'score', 'another face: repeat'),
    FlagText(QualityFlag.IMAGE_CHANGED, 'The camera\'s image size changed during the task.',
             'Keep the camera settings fixed during a session and repeat the task.', 'score',
             'image size changed: repeat'),
)}


def flags_of(result: ScoreResult) -> list[FlagText]:
    """The texts of the flags a score raises, in the table's order."""
    return [text for flag, text in FLAG_TEXTS.items() if flag in result.quality.flags]


def _min_movement(result: ScoreResult) -> float:
    try:
        return float(json.loads(result.method).get('min_movement'))
    except (TypeError, ValueError, AttributeError):
        return ScoringSettings().min_movement


def void_reason(result: ScoreResult, region: str) -> str | None:
    """Why the SS of `region` in `result` means nothing (a short reason), or None when it stands."""
    quality = result.quality.flags
    for flag, text in FLAG_TEXTS.items():
        if flag in quality and text.voids == 'score':
            return text.reason
    scored = result.region(region)
    if math.isnan(scored.symmetry):
        return FLAG_TEXTS[QualityFlag.EMPTY_REGION].reason if QualityFlag.EMPTY_REGION in quality else 'no score'
    if QualityFlag.LOW_MOTION in quality:
        limit = _min_movement(result)
        if scored.vs_left < limit and scored.vs_right < limit:
            return FLAG_TEXTS[QualityFlag.LOW_MOTION].reason
    return None


TABLE_BEGIN = '<!-- flag table: generated by scripts/flag_table.py from facesym_ros/core/flags.py -->'
TABLE_END = '<!-- end of the flag table -->'
_VOIDS_WORDS = {'score': 'every SS of the task', 'region': 'the SS of the regions it names', 'none': 'nothing'}


def flags_markdown() -> str:
    """The table of quality flags (flag, value, meaning, what to do, what it greys) as Markdown, from FLAG_TEXTS."""
    def cell(text: str) -> str:
        return text.replace('|', '\\|')

    rows = ['| flag | value | meaning | what to do | greyed and left out of means |',
            '|---|---|---|---|---|']
    rows += [f'| `{text.name}` | {int(flag)} | {cell(text.words)} | {cell(text.action)} | '
             f'{_VOIDS_WORDS[text.voids]}{f" (“{cell(text.reason)}”)" if text.voids != "none" else ""} |'
             for flag, text in FLAG_TEXTS.items()]
    return '\n'.join(rows)


def with_flag_table(document: str) -> str:
    """`document` with the text between TABLE_BEGIN and TABLE_END replaced by flags_markdown()."""
    if TABLE_BEGIN not in document or TABLE_END not in document:
        raise ValueError(f'the document has no {TABLE_BEGIN!r} ... {TABLE_END!r} section')
    head, rest = document.split(TABLE_BEGIN, 1)
    _, tail = rest.split(TABLE_END, 1)
    return f'{head}{TABLE_BEGIN}\n{flags_markdown()}\n{TABLE_END}{tail}'
