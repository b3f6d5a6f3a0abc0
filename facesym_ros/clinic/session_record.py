"""What a live assessment session records about itself, and what it shows the patient.

SessionRecord is published by `facesym session` on the latched session_info
topic (std_msgs/String, JSON) when the session begins and again when it
ends, so the session bag holds, beside the images and the trial events, the
subject, the session, the protocol text and how the session ended: enough
to score it again with `facesym session --from-bag` on a machine that has
neither the protocol file nor the operator's notes.

banner_text turns a task prompt (the TaskPrompt message's fields) into the
line the annotator draws over a frame, from the frame's own stamp, so a
recorded or delayed frame shows what the patient saw when it was taken.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

from facesym_ros.clinic.protocol import Protocol, protocol_from_text
from facesym_ros.core.timebase import ns_to_seconds, seconds_to_ns

SESSION_INFO_TOPIC = 'session_info'
PROMPT_TOPIC = 'prompt'

DONE_BANNER_SECONDS = 5.0

RUNNING, COMPLETE, INTERRUPTED = 'running', 'complete', 'interrupted'
DONE, TASK_INTERRUPTED, NOT_DONE = 'done', 'interrupted', 'not done'
"""A task's status in a session: scored over its whole span, cut short, or never begun."""


@dataclass
class SessionRecord:
    """Who, when, which protocol, and how far the session came."""

    subject_id: str
    session_id: str
    date: str  # ISO date
    protocol_source: str
    protocol_text: str
    status: str = RUNNING  # RUNNING, COMPLETE or INTERRUPTED
    reason: str = ''  # why an interrupted session ended
    interrupted_task: str = ''  # the task that was running when it ended, if any
    task_status: dict[str, str] = field(default_factory=dict)  # task name -> DONE, TASK_INTERRUPTED, NOT_DONE

    def protocol(self) -> Protocol:
        return protocol_from_text(self.protocol_text, self.protocol_source)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> SessionRecord:
        try:
            data = json.loads(text)
            return cls(**data)
        except (json.JSONDecodeError, TypeError) as error:
            raise ValueError(f'{where}: not a facesym session record ({error})') from None


def starts_later(start_ns: int, frame_ns: int) -> bool:
    """A go comes ahead of its start's stamp (start_ns 0: not yet known): until then the task is next."""
    return bool(start_ns) and frame_ns < start_ns


def countdown_view(state: str, task: str, start_ns: int, now_ns: int, duration: float) -> tuple[str, str]:
    """(phase, countdown) of a prompt for the pages, by the newest frame's stamp, as banner_text counts.

    state: 'get_ready', 'go' or 'done'.
    """
    if state == 'go' and starts_later(start_ns, now_ns):
        state = 'get_ready'
    if state == 'get_ready':
        if not task:
            return 'relax', ''  # paused between tasks
        if start_ns > now_ns:
            return state, f'relax; starts in {math.ceil(ns_to_seconds(start_ns - now_ns))} s'
        if duration <= 0:
            return state, 'starts when the operator says'
        return state, ''
    if state == 'go':
        if duration <= 0:
            return state, 'until the operator stops it'
        left = duration - ns_to_seconds(now_ns - start_ns)
        return (state, f'{math.ceil(left)} s left') if left > 0 else ('relax', 'done, relax')
    return state, ''


def banner_text(frame_ns: int, *, state: int, task: str, instruction: str, task_number: int, task_count: int,
                start_ns: int, duration: float) -> str:
    """The prompt line for a frame stamped frame_ns (state: TaskPrompt.STATE_*; start_ns 0: not yet known)."""
    get_ready, go, done = 0, 1, 2  # TaskPrompt.STATE_GET_READY, STATE_GO, STATE_DONE
    if state == done:  # shown for a while after the session ended, then the image is plain again
        return instruction if frame_ns - start_ns < seconds_to_ns(DONE_BANNER_SECONDS) else ''
    where = f'{task_number}/{task_count} {task}'
    if state == get_ready or starts_later(start_ns, frame_ns):
        countdown = f' (starts in {math.ceil(ns_to_seconds(start_ns - frame_ns))} s)' if start_ns > frame_ns else ''
        return f'Next, {where}: {instruction}{countdown}'
    if state != go:
        return ''
    if duration <= 0:
        return f'{where}: {instruction}'
    left = duration - ns_to_seconds(frame_ns - start_ns)
    return f'{where}: {instruction} ({math.ceil(left)} s left)' if left > 0 else f'{where}: done, relax'
