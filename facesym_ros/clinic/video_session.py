"""A recorded session scored offline: one video, the protocol, and the time span of each task.

The live session runner marks task starts and stops as they happen; for a
video the spans are given instead (seconds from the first frame). Frames are
run through the same core pipeline as `facesym score`, in one pass, with the
regions re-anchored at each task's first frame, as the live scorer does at a
trial start.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from facesym_ros.clinic.protocol import Protocol
from facesym_ros.clinic.task_result import TaskCollector, TaskResult
from facesym_ros.core.pipeline import FacePipeline, PipelineSettings
from facesym_ros.core.timebase import ns_to_seconds, seconds_to_ns
from facesym_ros.core.trials import TrialController
from facesym_ros.core.video import FrameSource

Span = tuple[float, float]


def parse_spans(text: str) -> list[Span]:
    """'0:2,2:4.5,...' -> [(0, 2), (2, 4.5), ...]; each START:STOP in seconds, STOP after START."""
    spans = []
    for item in text.split(','):
        parts = item.strip().split(':')
        try:
            start, stop = (float(part) for part in parts)
        except ValueError:
            raise ValueError(f'task span {item.strip()!r} is not START:STOP in seconds') from None
        if not 0.0 <= start < stop:
            raise ValueError(f'task span {item.strip()!r}: START must be >= 0 and before STOP')
        spans.append((start, stop))
    return spans


def check_spans(spans: Sequence[Span], protocol: Protocol) -> None:
    """One span per protocol task, in order, not overlapping."""
    if len(spans) != len(protocol.tasks):
        raise ValueError(f'{len(spans)} task spans for {len(protocol.tasks)} tasks in {protocol.source} '
                         f'({", ".join(task.name for task in protocol.tasks)})')
    for (task, (_, stop)), (start, _) in zip(zip(protocol.tasks, spans, strict=True), spans[1:], strict=False):
        if start < stop:
            raise ValueError(f'the span of the task after {task.name!r} starts at {start:g} s, before '
                             f'{task.name!r} stops at {stop:g} s')


def score_video_tasks(path: str | Path, protocol: Protocol, spans: Sequence[Span],
                      config: PipelineSettings, frame_rate: float | None = None) -> list[TaskResult]:
    """Each task's TaskResult from the frames of `path` inside its span."""
    check_spans(spans, protocol)
    source = FrameSource.open(path, frame_rate)
    pipeline = FacePipeline(config)
    collectors = [TaskCollector(task, span) for task, span in zip(protocol.tasks, spans, strict=True)]
    # The regions are anchored at each task's first frame, by the same controller the live graph uses.
    trials = TrialController(motion=pipeline.motion)
    for task, (start, stop) in zip(protocol.tasks, spans, strict=True):
        trials.start(seconds_to_ns(start), task.name)
        # Spans are START <= t < STOP, as the collectors take frames; a STOP mark keeps a frame at its own stamp,
        # so it goes 1 ns before STOP: a task that starts where the last one stops is anchored at its first frame.
        trials.stop(seconds_to_ns(stop) - 1)
    for frame in source.frames():
        seconds = ns_to_seconds(frame.stamp_ns)
        index = next((i for i, (start, stop) in enumerate(spans) if start <= seconds < stop), None)
        trials.before_frame(frame.stamp_ns)
        result = pipeline.process(frame)  # every frame, so the face track stays continuous
        if index is not None:
            collectors[index].add(result)
    empty = [c.task.name for c in collectors if not c.motions]
    if empty:
        length = source.frame_count / source.frame_rate
        raise ValueError(f'{path}: no frames in the span of task {empty[0]!r} '
                         f'(the video is about {length:.1f} s long)')
    return [collector.result(config.scoring) for collector in collectors]
