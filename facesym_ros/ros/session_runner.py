"""`facesym session`: an assessment session run against the live graph, one trial per protocol task.

The runner paces the session in the time base of the image stamps, which it
learns from the face detector's `faces` messages: task k starts lead_in
seconds after task k-1 stopped (the first one lead_in after the session
began) and lasts its duration. It commands the scorer on trial_control with
those stamps, each command COMMAND_MARGIN seconds before it takes effect, so
a trial holds exactly the frames of its planned span however far the nodes
lag, and the session bag can be scored again to the same numbers. An
operator-paced task starts and stops when the operator presses Enter.

The patient sees the task on the annotated image (the annotator draws the
`prompt` topic as a banner), the operator in the terminal. The session record
(subject, session, protocol, how it ended) goes out on the latched
session_info topic when the session begins and when it ends, for the bag.

Ctrl-C, or no frame for stall_seconds, ends the session early: a task that
was running is stopped at once and scored as far as it came (interrupted),
the tasks after it are not done, and the caller writes a partial report.

A SessionControl (the console's) is the operator's hand on a session from
another thread: its go() paces operator-paced tasks in place of Enter; stop()
ends the session as Ctrl-C does; skip() leaves out the task shown (not done
before its start, interrupted once it runs, and the session goes on); pause()
holds the session before the next task's start (a running task always ends
at its planned stop). Without one, the terminal paces and Ctrl-C stops.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from std_msgs.msg import Header, String

from facesym_ros.clinic.protocol import Protocol, ProtocolTask
from facesym_ros.clinic.session_record import (
    COMPLETE,
    DONE,
    INTERRUPTED,
    NOT_DONE,
    PROMPT_TOPIC,
    SESSION_INFO_TOPIC,
    TASK_INTERRUPTED,
    SessionRecord,
)
from facesym_ros.config.files import dds_environment
from facesym_ros.config.registry import IMAGE_TOPIC, SOURCE_NODE, camera_subscribers
from facesym_ros.core.scoring import TrialLabels
from facesym_ros.core.timebase import ns_to_seconds, seconds_to_ns
from facesym_ros.core.trials import TrialEventKind, TrialMark, frame_ahead_ns, new_trial_id
from facesym_ros.msg import FaceDetections, RegionMotion, SymmetryScore, TaskPrompt, TrialEvent
from facesym_ros.ros.bringup import ProcessGraph, RespawnLimitError
from facesym_ros.ros.conversions import mark_to_msg, msg_to_motion, ns_to_stamp, stamp_to_ns
from facesym_ros.ros.node_base import CONTROL_QUEUE_DEPTH, latched_qos, pipeline_qos
from facesym_ros.ros.signals import StopSignals

COMMAND_MARGIN = 1.0
"""Seconds of image time before a trial's start or stop at which the runner sends the command: the nodes it
must reach are at most this far behind the newest frame the face detector has finished."""
ACCEPT_TIMEOUT = 10.0  # s for the scorer to announce a commanded start on trial_events
FRAME_HISTORY = 64
MOTION_QUEUE_DEPTH = 300  # region_motion waiting to be taken (as deep as the scorer's motion_queue_size)


class SessionError(Exception):
    """The session cannot go on (no frames, the scorer refused); the message says why."""


class OperatorStop(KeyboardInterrupt):
    """The operator stopped the session from a SessionControl; ends it as Ctrl-C does, with this reason."""


class _TaskSkippedError(Exception):
    pass


class _PausedError(Exception):
    pass


class SessionControl:
    """The operator's hand on a running Session from another thread (see the module's description)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._goes = 0
        self._skip = False
        self._stop = ''
        self.paused = False
        self.waiting_for = ''  # 'start' or 'stop' while an operator-paced task waits for go()
        self.runs: list[TaskRun] = []  # the session's tasks, as it runs them (set by Session)

    def go(self) -> None:
        with self._lock:
            self._goes += 1

    def skip(self) -> None:
        with self._lock:
            self._skip = True

    def stop(self, reason: str = 'stopped by the operator (console)') -> None:
        with self._lock:
            self._stop = reason

    def pause(self, paused: bool = True) -> None:
        self.paused = paused

    def _take(self, name: str):
        with self._lock:
            value = getattr(self, name)
            setattr(self, name, type(value)())
        return value

    def take_go(self) -> bool:
        with self._lock:
            if self._goes:
                self._goes -= 1
                return True
            return False


@dataclass(frozen=True)
class SessionOptions:
    lead_in: float = 3.0  # s between a task's prompt and its start (and between tasks)
    stall_seconds: float = 10.0  # no frame for this long ends the session
    graph_timeout: float = 30.0  # s to wait for the graph and its first frame
    final_timeout: float = 30.0  # s to wait for the last final scores


@dataclass
class TaskRun:
    task: ProtocolTask
    trial_id: str = ''
    start_ns: int = 0
    stop_ns: int = 0
    started: bool = False  # START sent
    stopped: bool = False  # STOP sent
    status: str = NOT_DONE


@dataclass
class SessionOutcome:
    record: SessionRecord
    runs: list[TaskRun]
    finals: dict[str, SymmetryScore]  # trial id -> FINAL score
    motions: list = field(default_factory=list)  # core RegionMotion of every frame heard (no polygons): the motion
    # plots when the session has no bag, or its bag cannot be read


class SessionRunner(Node):
    """Publishes trial commands, prompts and the session record; listens to frames, trial events and scores."""

    def __init__(self, record: SessionRecord, *, namespace: str = '', context=None) -> None:
        super().__init__('facesym_session', namespace=namespace, context=context)
        self.record = record
        self.face_stamps: deque[int] = deque(maxlen=FRAME_HISTORY)
        self.last_frame_at = time.monotonic()
        self.finals: dict[str, SymmetryScore] = {}
        self.events: list[TrialEvent] = []
        self.motions: list = []
        self.on_final: Callable[[SymmetryScore], None] | None = None
        self.own_trials: set[str] = set()
        """The trials this session started: the only ones whose scores and events are its own."""
        self.session_start_ns: int | None = None
        """The stamp of the session's first frame, once heard."""
        self._control = self.create_publisher(TrialEvent, 'trial_control', pipeline_qos(CONTROL_QUEUE_DEPTH))
        self._prompt = self.create_publisher(TaskPrompt, PROMPT_TOPIC, latched_qos(1))
        self._info = self.create_publisher(String, SESSION_INFO_TOPIC, latched_qos(1))
        self.create_subscription(FaceDetections, 'faces', self._on_faces, pipeline_qos(FRAME_HISTORY))
        self.create_subscription(SymmetryScore, 'score', self._on_score, latched_qos())
        self.create_subscription(TrialEvent, 'trial_events', self.events.append, latched_qos())
        self.create_subscription(RegionMotion, 'region_motion', self._on_motion, pipeline_qos(MOTION_QUEUE_DEPTH))

    def _on_faces(self, msg: FaceDetections) -> None:
        self.face_stamps.append(stamp_to_ns(msg.header.stamp))
        self.last_frame_at = time.monotonic()

    def _on_motion(self, msg: RegionMotion) -> None:
        self.motions.append(msg_to_motion(msg, with_polygons=False))

    def _on_score(self, msg: SymmetryScore) -> None:
        # the scorer's latched scores of trials before this session (another session's) are not its own
        if msg.kind == SymmetryScore.KIND_FINAL and msg.trial_id in self.own_trials and msg.trial_id not in self.finals:
            self.finals[msg.trial_id] = msg
            if self.on_final is not None:
                self.on_final(msg)

    @property
    def scorer_listening(self) -> bool:
        return self._control.get_subscription_count() > 0

    def newest_ns(self) -> int:
        return self.face_stamps[-1]

    def next_frame_ns(self) -> int:
        """Just after the newest frame and the one the detector may be on: where a command 'now' takes effect."""
        return self.face_stamps[-1] + frame_ahead_ns(self.face_stamps)

    def command(self, mark: TrialMark) -> None:
        if mark.event == TrialEventKind.START:
            self.own_trials.add(mark.trial_id)
        self._control.publish(mark_to_msg(mark, ''))

    def owns_event(self, data: bytes) -> bool:
        """Whether a serialised TrialEvent is this session's: of a trial it started, or a RESET (by anyone)
        stamped after its first frame. The scorer's latched events of earlier trials are not, so the session
        bag never holds another session's trial, open or closed."""
        event = deserialize_message(data, TrialEvent)
        if event.event == TrialEvent.RESET:
            return self.session_start_ns is not None and stamp_to_ns(event.header.stamp) >= self.session_start_ns
        return event.trial_id in self.own_trials

    def owns_score(self, data: bytes) -> bool:
        """Whether a serialised SymmetryScore is of a trial this session started."""
        return deserialize_message(data, SymmetryScore).trial_id in self.own_trials

    def prompt(self, state: int, run: TaskRun | None, number: int, count: int, instruction: str = '') -> None:
        task = run.task if run is not None else None
        stamp = self.face_stamps[-1] if self.face_stamps else 0
        self._prompt.publish(TaskPrompt(
            header=Header(stamp=ns_to_stamp(run.start_ns if run is not None and run.start_ns else stamp)),
            session_id=self.record.session_id, subject_id=self.record.subject_id,
            task=task.name if task else '', instruction=instruction or (task.instruction if task else ''),
            task_number=number, task_count=count, state=state,
            duration=0.0 if task is None or task.operator_paced else float(task.duration)))

    def publish_record(self) -> None:
        self._info.publish(String(data=self.record.to_json()))


class Session:
    """Runs a protocol's tasks with a SessionRunner (see the module's description)."""

    def __init__(self, runner: SessionRunner, executor: SingleThreadedExecutor, protocol: Protocol,
                 options: SessionOptions, *, say: Callable[[str], None] = print,
                 ready: Callable[[], bool] = lambda: True, on_connected: Callable[[], None] = lambda: None,
                 tick: Callable[[], None] = lambda: None, control: SessionControl | None = None,
                 signals: StopSignals | None = None) -> None:
        self.runner = runner
        self.executor = executor
        self.protocol = protocol
        self.options = options
        self.say = say
        self.ready = ready
        self.on_connected = on_connected
        self.tick = tick  # called while waiting, e.g. to restart nodes of a graph the session brought up
        self.runs = [TaskRun(task) for task in protocol.tasks]
        self.control = control
        self.signals = signals  # Ctrl-C and SIGTERM: spin_until raises KeyboardInterrupt for each
        self._current: TaskRun | None = None  # the task a control's skip and pause act on
        if control is not None:
            control.runs = self.runs

    # -- waiting ------------------------------------------------------------------------------------------------

    def spin_until(self, done: Callable[[], bool], timeout: float | None = None, *, frames: bool = True) -> bool:
        """Spin until done(); False at the timeout. With frames, no frame for stall_seconds interrupts."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done():
            if deadline is not None and time.monotonic() > deadline:
                return False
            if frames and time.monotonic() - self.runner.last_frame_at > self.options.stall_seconds:
                raise SessionError(f'no frame for {self.options.stall_seconds:g} s: the camera or the face '
                                         'detector stopped')
            if self.signals is not None and self.signals.take():
                raise KeyboardInterrupt  # Ctrl-C or SIGTERM, counted by the handler (facesym_ros/ros/signals.py)
            if self.control is not None:
                self._check_control()
            self.tick()
            self.executor.spin_once(timeout_sec=0.02)
        return True

    def _check_control(self) -> None:
        reason = self.control._take('_stop')
        if reason:
            raise OperatorStop(reason)
        run = self._current
        if run is not None and self.control._take('_skip'):
            raise _TaskSkippedError
        if run is not None and self.control.paused and not run.started:
            raise _PausedError

    def wait_until_image_time(self, stamp_ns: int) -> None:
        self.spin_until(lambda: self.runner.newest_ns() >= stamp_ns)

    def wait_for_enter(self, what: str) -> None:
        if self.control is not None:
            self.control.waiting_for = what
            self.say(f'  press {what.capitalize()} on the console')
            try:
                self.spin_until(self.control.take_go)
            finally:
                self.control.waiting_for = ''
            return
        if not sys.stdin.isatty():
            raise SessionError(f'{what} needs the operator to press Enter, and there is no terminal')
        self.say(f'  press Enter to {what}')

        def pressed() -> bool:
            readable, _, _ = select.select([sys.stdin], [], [], 0)
            return bool(readable) and sys.stdin.readline() is not None

        self.spin_until(pressed)

    # -- the session --------------------------------------------------------------------------------------------

    def connect(self) -> None:
        """Wait for the scorer and (ready) the recorder; refuse while a trial of someone else runs."""
        timeout = self.options.graph_timeout
        if not self.spin_until(lambda: self.runner.scorer_listening and self.ready(), timeout, frames=False):
            raise SessionError(f'no facesym graph answered within {timeout:g} s (no symmetry_scorer on '
                                     f'{self.runner.resolve_topic_name("trial_control")}): start it with '
                                     '`facesym bringup` or the launch file, or give --source')
        self.spin_until(lambda: False, 0.5, frames=False)  # the latched trial events of the scorer come in
        if self.runner.events and self.runner.events[-1].event == TrialEvent.START:
            raise SessionError(f'trial {self.runner.events[-1].trial_id} is running on the scorer; stop it '
                                     'before a session starts')

    def run(self) -> SessionOutcome:
        """All tasks in order; on Ctrl-C or a fault the outcome of the part that was done (record says why)."""
        runner, record = self.runner, self.runner.record
        record.task_status = {run.task.name: NOT_DONE for run in self.runs}
        runner.publish_record()
        try:
            self.connect()
            runner.face_stamps.clear()  # the session's time begins with the first frame heard from now on
            self.on_connected()
            runner.last_frame_at = time.monotonic()
            if not self.spin_until(lambda: bool(runner.face_stamps), self.options.graph_timeout, frames=False):
                raise SessionError(f'no frame arrived on {runner.resolve_topic_name("faces")} within '
                                         f'{self.options.graph_timeout:g} s: is the camera running?')
            anchor = runner.session_start_ns = runner.face_stamps[0]
            for number, run in enumerate(self.runs, start=1):
                anchor = self._controlled_task(run, number, anchor) if self.control else \
                    self._run_task(run, number, anchor)
            self._wait_for_finals(self.options.final_timeout)
            record.status = COMPLETE
            runner.prompt(TaskPrompt.STATE_DONE, None, 0, len(self.runs), 'Session finished. Thank you.')
        except (KeyboardInterrupt, SessionError) as error:
            reason = str(error) if isinstance(error, (OperatorStop, SessionError)) else \
                'stopped by the operator (Ctrl-C)'
            self._interrupt(reason)
        runner.publish_record()
        with contextlib.suppress(KeyboardInterrupt):  # the session has ended: a later Ctrl-C only cuts this short
            self.spin_until(lambda: False, 0.3, frames=False)  # the last record and prompt reach the recorder
        return SessionOutcome(record, self.runs, dict(runner.finals), list(runner.motions))

    def _run_task(self, run: TaskRun, number: int, anchor: int) -> int:
        runner, task, count = self.runner, run.task, len(self.runs)
        margin = seconds_to_ns(COMMAND_MARGIN)
        labels = TrialLabels(task.name, runner.record.session_id, runner.record.subject_id)
        run.trial_id = new_trial_id(task.name)
        if task.operator_paced:
            runner.prompt(TaskPrompt.STATE_GET_READY, run, number, count)
            self.say(f'[{number}/{count}] {task.name}: "{task.instruction}" (operator-paced)')
            self.wait_for_enter('start')
            self.wait_until_image_time(anchor)  # a go within COMMAND_MARGIN of the last stop: after that stop
            run.start_ns = runner.next_frame_ns()
        else:
            run.start_ns = max(anchor + seconds_to_ns(self.options.lead_in), runner.newest_ns() + margin)
            run.stop_ns = run.start_ns + seconds_to_ns(task.duration)
            runner.prompt(TaskPrompt.STATE_GET_READY, run, number, count)
            self.say(f'[{number}/{count}] {task.name}: "{task.instruction}" '
                     f'({task.duration:g} s, starting in {ns_to_seconds(run.start_ns - runner.newest_ns()):.1f} s)')
            self.wait_until_image_time(run.start_ns - margin)
        known = len(runner.events)
        runner.command(TrialMark(run.start_ns, TrialEventKind.START, run.trial_id, labels))
        run.started, run.status = True, TASK_INTERRUPTED
        runner.prompt(TaskPrompt.STATE_GO, run, number, count)
        self.say(f'  {task.name}: trial {run.trial_id} begins')
        accepted = self.spin_until(lambda: any(e.trial_id == run.trial_id and e.event == TrialEvent.START
                                               for e in runner.events[known:]), ACCEPT_TIMEOUT)
        if not accepted:
            raise SessionError(f'the scorer did not take the start of {task.name} (see its log)')
        if task.operator_paced:
            self.wait_for_enter('stop')
            run.stop_ns = max(run.start_ns, runner.next_frame_ns())
        else:
            self.wait_until_image_time(run.stop_ns - margin)
        runner.command(TrialMark(run.stop_ns, TrialEventKind.STOP, run.trial_id))
        run.stopped, run.status = True, DONE
        runner.record.task_status[task.name] = DONE
        return run.stop_ns

    def _controlled_task(self, run: TaskRun, number: int, anchor: int) -> int:
        """_run_task under a SessionControl: held while paused before its start, skipped on skip()."""
        while True:
            self._current = run
            try:
                return self._run_task(run, number, anchor)
            except _PausedError:
                self._current = None  # while held, only stop() acts
                self.runner.prompt(TaskPrompt.STATE_GET_READY, None, number, len(self.runs), 'Paused. Relax.')
                self.say(f'  paused before {run.task.name}')
                self.spin_until(lambda: not self.control.paused)
                anchor = self.runner.newest_ns()  # a whole lead-in again after the pause
            except _TaskSkippedError:
                return self._skip(run)
            finally:
                self._current = None

    def _skip(self, run: TaskRun) -> int:
        """Leave out a task: not done before its start; stopped now and interrupted once it ran."""
        runner = self.runner
        if run.started and not run.stopped:
            run.stop_ns = max(run.start_ns, runner.next_frame_ns())
            runner.command(TrialMark(run.stop_ns, TrialEventKind.STOP, run.trial_id))
            run.stopped, run.status = True, TASK_INTERRUPTED
            runner.record.task_status[run.task.name] = TASK_INTERRUPTED
            self.say(f'  {run.task.name}: skipped by the operator, stopped and scored as far as it came')
            return run.stop_ns
        run.status = NOT_DONE
        self.say(f'  {run.task.name}: skipped by the operator before its start')
        return runner.newest_ns()

    def _wait_for_finals(self, timeout: float) -> list[str]:
        """Wait for the final score of every trial begun; the ids still without one."""
        wanted = [run.trial_id for run in self.runs if run.started]
        self.spin_until(lambda: all(trial in self.runner.finals for trial in wanted), timeout, frames=False)
        return [trial for trial in wanted if trial not in self.runner.finals]

    def _interrupt(self, reason: str) -> None:
        runner, record = self.runner, self.runner.record
        record.status, record.reason = INTERRUPTED, reason
        running = next((run for run in self.runs if run.started and not run.stopped), None)
        if running is not None:
            record.interrupted_task = running.task.name
            record.task_status[running.task.name] = TASK_INTERRUPTED
            stop = max(running.start_ns, runner.next_frame_ns()) if runner.face_stamps else running.start_ns
            running.stop_ns = stop
            runner.command(TrialMark(stop, TrialEventKind.STOP, running.trial_id))
            running.stopped = True
        self.say(f'session interrupted: {reason}')
        runner.prompt(TaskPrompt.STATE_DONE, None, 0, len(self.runs), 'Session stopped.')
        try:
            missing = self._wait_for_finals(self.options.final_timeout)
        except (KeyboardInterrupt, SessionError):  # a second Ctrl-C, or the graph gave up: stop waiting
            missing = [run.trial_id for run in self.runs if run.started and run.trial_id not in runner.finals]
        for trial in missing:
            self.say(f'no final score for {trial} arrived: that task is left out of the report')


@dataclass
class LiveSessionResult:
    outcome: SessionOutcome
    bag: Path | None  # the session bag, None when not recorded
    bag_failure: str = ''  # why the recording stopped early, if it did


def run_live_session(record: SessionRecord, protocol: Protocol, options: SessionOptions, *, bag: Path | None,
                     storage: str = 'mcap', namespace: str = '', image_topic: str = IMAGE_TOPIC,
                     graph: ProcessGraph | None = None, say: Callable[[str], None] = print,
                     control: SessionControl | None = None) -> LiveSessionResult:
    """Run the session in this process (the runner and, with `bag`, the recorder); with `graph`, bring it up.

    SIGINT and SIGTERM end the session early, never the process: their handler counts them and the session acts
    on them between spins (StopSignals), so no signal interrupts rclpy halfway through taking a message. The
    running task is stopped and scored, the bag closed, and the caller gets what was done. That holds when it
    runs in the main thread; in another (the console's), `control` paces and stops it and the process keeps its
    own signal handlers.
    """
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from facesym_ros.bag.record import DEFAULT_TOPICS, BagRecorderNode
    from facesym_ros.bag.storage import BagWriteError, create_writer

    signals = StopSignals().install()  # acted on between spins: see facesym_ros/ros/signals.py
    os.environ.update(dds_environment())
    context = rclpy.Context()
    rclpy.init(args=[], context=context, signal_handler_options=SignalHandlerOptions.NO)
    executor = SingleThreadedExecutor(context=context)
    runner = SessionRunner(record, namespace=namespace, context=context)
    runner.on_final = lambda msg: say(f'  {msg.task or msg.trial_id} scored: ' + ', '.join(
        f'{r.region} SS {"n/a" if math.isnan(r.symmetry) else f"{r.symmetry:.3f}"}' for r in msg.regions)
        + f' ({msg.frame_count} frames' + (f'; {"; ".join(msg.quality_notes)})' if msg.quality_notes else ')'))
    executor.add_node(runner)
    writer = recorder = None
    failure = ''
    try:
        chain = []
        if graph is not None:
            chain = [spec for spec in graph.specs if spec.name != SOURCE_NODE]
            graph.start([spec.name for spec in chain])
        topics = [image_topic if name == IMAGE_TOPIC else name for name in DEFAULT_TOPICS]
        required = {runner.resolve_topic_name(name) for name in ('trial_events', 'score', PROMPT_TOPIC,
                                                                  SESSION_INFO_TOPIC)}
        if graph is None:
            required.add(runner.resolve_topic_name(image_topic))
        if bag is not None:
            writer = create_writer(bag, storage)
            # the session's own trial events and scores only: never the scorer's latched ones of earlier trials
            recorder = BagRecorderNode(writer, topics, namespace=namespace, context=context,
                                       keep={'trial_events': runner.owns_event, 'score': runner.owns_score})
            executor.add_node(recorder)

        def ready() -> bool:
            return recorder is None or not required & set(recorder.waiting_for)

        def start_source() -> None:
            if graph is not None and SOURCE_NODE in {spec.name for spec in graph.specs}:
                listeners = camera_subscribers(chain) + (recorder is not None)
                graph.overrides.setdefault(SOURCE_NODE, {})['wait_for_subscribers'] = str(listeners)
                graph.start([SOURCE_NODE])

        def supervise() -> None:
            if graph is not None:
                try:
                    for line in graph.supervise():
                        say(f'  graph: {line}')
                except RespawnLimitError as error:
                    raise SessionError(str(error)) from None

        session = Session(runner, executor, protocol, options, say=say, ready=ready, on_connected=start_source,
                          tick=supervise, control=control, signals=signals)
        outcome = session.run()
        if recorder is not None:
            drain_until = time.monotonic() + 0.5  # what the middleware holds goes into the bag
            while recorder.failure is None and time.monotonic() < drain_until:
                executor.spin_once(timeout_sec=0.01)
            if recorder.failure is not None:
                failure = str(recorder.failure)
        return LiveSessionResult(outcome, bag, failure)
    finally:
        if writer is not None:
            try:
                writer.close()
            except BagWriteError as error:  # a close that fails (a full disk) is reported, not raised
                failure = failure or str(error)
        if graph is not None:
            graph.stop()
        executor.shutdown()
        rclpy.try_shutdown(context=context)
        signals.restore()
