"""The tasks of a live session, ready for its report: the live scores, with pictures from the session bag.

The numbers are the FINAL scores the live graph published, the ones the
operator saw. The heat map, key frame and motion plot of each task come from
scoring the session bag again (session_bag.py); that pass also checks the
live numbers against the bag's, and a difference is noted. Without a bag
(--no-record, or a recording that failed), the motion plot comes from the
region motion the session heard, and the report says there are no pictures.
"""

from __future__ import annotations

from facesym_ros.bag.storage import BagError
from facesym_ros.clinic.protocol import Protocol
from facesym_ros.clinic.report_html import SessionInfo
from facesym_ros.clinic.session_bag import score_session_bag, session_info
from facesym_ros.clinic.session_record import DONE
from facesym_ros.clinic.task_result import MotionTrace, TaskResult
from facesym_ros.core.pipeline import PipelineSettings
from facesym_ros.ros.conversions import msg_to_score
from facesym_ros.ros.session_runner import LiveSessionResult

AGREEMENT = 1e-6  # largest live-minus-rescored difference of a VS or SS that counts as the same number


def live_task_results(live: LiveSessionResult, protocol: Protocol, config: PipelineSettings
                      ) -> tuple[list[TaskResult], SessionInfo, list[str]]:
    """(tasks begun and scored, in protocol order; the report's SessionInfo; notes for the operator)."""
    outcome = live.outcome
    record = outcome.record
    scores = {trial: msg_to_score(msg) for trial, msg in outcome.finals.items()}
    notes = [f'{run.task.name}: no final score arrived (trial {run.trial_id}); left out of the report'
             for run in outcome.runs if run.started and run.trial_id not in scores]
    if live.bag is not None and any(run.started for run in outcome.runs):
        try:
            scored = score_session_bag(live.bag, config, protocol=protocol, live_scores=scores)
        except (BagError, ValueError) as error:
            notes.append(f'the session bag could not be scored again for the pictures: {error}')
        else:
            difference = scored.largest_difference()
            if difference > AGREEMENT:
                notes.append(f'the live scores and the bag scored again differ by up to {difference:.3g}; the '
                             'report shows the live scores')
            return scored.tasks, session_info(record, protocol), notes + scored.problems
    tasks = []
    for run in outcome.runs:
        score = scores.get(run.trial_id)
        if score is None:
            continue
        motions = [m for m in outcome.motions if run.start_ns <= m.stamp_ns <= run.stop_ns]
        tasks.append(TaskResult(run.task, score, MotionTrace.from_motions(motions),
                                extra={'status': record.task_status.get(run.task.name, DONE)}))
    return tasks, session_info(record, protocol), notes
