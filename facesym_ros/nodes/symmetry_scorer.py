"""symmetry_scorer: symmetry scores of trials (and, unattended, of a rolling window).

Subscribes: region_motion (RegionMotion); faces (FaceDetections), only to learn the
            stamps of the frames in the pipeline; camera_info (CameraInfo, optional), only
            to learn the camera's clock; trial_control (TrialEvent), to drive
            trials by topic, e.g. the recorded trial_events of a bag being replayed.
Publishes:  score (SymmetryScore, reliable + transient local): final trial scores;
            score_running (SymmetryScore): the running score of an open trial and,
            unattended, rolling-window scores; trial_events (TrialEvent, transient
            local): every start, stop and reset, with the stamp it takes effect at
            and the trial's id; /diagnostics (rate, processing time).
Services:   start_trial, stop_trial, reset (std_srvs/Trigger), stamped in the images' time base:
            see image_time_ns.

Trials hold frames by their image stamps. A service call is stamped with
the node clock mapped onto the images' time base: the frames' stamps may
differ from that clock by any amount (the transport's delay; a camera that
stamps with a clock of its own, seconds or hours ahead or behind, or
drifting; with use_sim_time, /clock of a bag being played). The scorer
learns the offset as the smallest difference (clock at arrival - image stamp)
over the last OFFSET_WINDOW camera_info, faces and region_motion messages
(camera_info, where the camera publishes it, has the least delay in it), and
stamps the call with clock - offset (core.timebase.StampClock): the trial
starts (or stops) at the frames captured after the call, within that delay. Before the first frame
arrives, the clock is used as it is. A command is never stamped before
1.5 frame periods after the newest frame the scorer has heard of: the face
detector may already be on the next one, and a command can take effect
exactly only at frames no node has seen yet (core.trials.command_stamp_ns).

After a stop, the final score waits until every frame the face detector saw up
to the stop has arrived as region motion, however far the chain lags; it is
given when a later frame was seen or the stream went quiet for stop_grace, and
after final_timeout at the latest, then flagged with what was missing. These
waits run on the steady clock, so a final score follows even when /clock has
stopped at the end of a bag.

The open trial, its frames so far and the scheduled marks are saved to a state
file (state_dir, every state_period and at every command). A scorer restarted
after it died continues that trial, noting the restart in its score, when it
is back within resume_within; otherwise it closes the trial at once with a
partial score that says so.
"""

from __future__ import annotations

import math
import sys
from collections import deque

from rclpy.clock import Clock, ClockType
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo
from std_srvs.srv import Trigger

from facesym_ros.config.files import state_directory
from facesym_ros.config.node_settings import ScorerNodeSettings
from facesym_ros.core.scoring import ScoreResult, ScoringSettings
from facesym_ros.core.timebase import StampClock, ns_to_seconds
from facesym_ros.core.trials import (
    ScoreKind,
    TrialController,
    TrialError,
    TrialEventKind,
    TrialMark,
    TrialScorer,
    TrialStateFile,
    command_stamp_ns,
)
from facesym_ros.msg import FaceDetections, RegionMotion, SymmetryScore, TrialEvent
from facesym_ros.ros.conversions import mark_of, mark_to_msg, msg_to_motion, score_to_msg, stamp_to_ns
from facesym_ros.ros.node_base import (
    CONTROL_QUEUE_DEPTH,
    WARN_PERIOD,
    SettingsNode,
    image_qos,
    latched_qos,
    pipeline_qos,
    spin_node,
)

OFFSET_WINDOW = 30
"""camera_info, faces and region_motion messages over which the clock-to-image-stamp offset is taken."""


def summary(result: ScoreResult) -> str:
    """One line for the log and the console: SS per region, frame count, quality."""
    parts = [f'{r.region} {"n/a" if math.isnan(r.symmetry) else f"{r.symmetry:.3f}"}' for r in result.regions]
    quality = '; '.join(result.quality.notes) or 'quality ok'
    return f'{result.trial_id}: ' + ', '.join(parts) + f' ({result.frame_count} frames; {quality})'


class SymmetryScorerNode(SettingsNode):
    """Adapter over core.trials: a TrialController driving a TrialScorer."""

    def __init__(self, **kwargs) -> None:
        super().__init__('symmetry_scorer', **kwargs)
        node = self.settings(ScorerNodeSettings)
        self._trials = TrialController(TrialScorer(self.settings(ScoringSettings), **self._scorer_options()),
                                       id_prefix=node.trial_prefix)
        self._frame_id = ''
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._stop_requested_at: Time | None = None
        self._stop_ns: int | None = None
        self._face_stamps: deque[int] = deque(maxlen=node.motion_queue_size)
        self._last_motion_ns = -1
        self._last_input_at = self._steady.now()
        self._stamp_clock = StampClock(OFFSET_WINDOW)
        self._score_publisher = self.create_publisher(SymmetryScore, 'score', latched_qos())
        self._running_publisher = self.create_publisher(SymmetryScore, 'score_running',
                                                        pipeline_qos(CONTROL_QUEUE_DEPTH))
        self._event_publisher = self.create_publisher(TrialEvent, 'trial_events', latched_qos())
        self.create_subscription(RegionMotion, 'region_motion', self.timed(self._on_motion),
                                 pipeline_qos(node.motion_queue_size))
        self.create_subscription(FaceDetections, 'faces', self._on_faces, pipeline_qos(node.motion_queue_size))
        # the camera's own small message per frame: its delay is the transport's only (optional: faces also give
        # the offset, with the detector's time in it)
        self.create_subscription(CameraInfo, 'camera_info', self._on_camera_info, image_qos(OFFSET_WINDOW))
        self.create_subscription(TrialEvent, 'trial_control', self._on_control, pipeline_qos(CONTROL_QUEUE_DEPTH))
        self.create_service(Trigger, 'start_trial', self._start_service)
        self.create_service(Trigger, 'stop_trial', self._stop_service)
        self.create_service(Trigger, 'reset', self._reset_service)
        self.create_timer(0.1, self._check_final, clock=self._steady)
        name = self.get_fully_qualified_name().strip('/').replace('/', '.')
        self._state_file = TrialStateFile(state_directory(node.state_dir) /
                                          f'{name}.domain{self.context.get_domain_id()}.json')
        self._state_changed = False
        self._take_up_saved_trials()
        self.create_timer(node.state_period, self._save_state)

    # -- surviving a restart --------------------------------------------------------------------------------------

    def _take_up_saved_trials(self) -> None:
        """Continue (or, saved too long ago, close with a partial score) what a scorer before this one left open."""
        try:
            saved = self._state_file.load()
        except ValueError as error:
            self.get_logger().error(f'{error}; starting without it')
            return
        if saved is None:
            return
        state, age = saved
        self._frame_id = state.get('frame_id', '')
        self._trials.restore(state)
        if self._trials.idle:
            return
        within = self.settings(ScorerNodeSettings).resume_within
        trial = self._trials.scorer.trial
        if age <= within:
            self._trials.restore(state, note=f'the scorer restarted during this trial ({age:.1f} s after its last '
                                             'save); frames of that time are missing')
            stops = [mark.stamp_ns for mark in self._trials.pending if mark.event == TrialEventKind.STOP]
            if trial is not None and trial.stop_ns is not None:
                stops.insert(0, trial.stop_ns)
            if stops:
                self._stop_requested_at = self._steady.now()
                self._stop_ns = stops[0]
            # a trial may be open, or only scheduled (a START and its STOP before any frame): name what is taken up
            self.get_logger().warning(f'continuing trial {", ".join(self._trials.unfinished)} after a restart '
                                      f'({age:.1f} s after the last save of {self._state_file.path})')
            return
        if trial is not None:
            trial.notes.append(f'the scorer stopped during this trial and was back only {age:.0f} s later '
                               f'(resume_within {within:g} s): a partial score of the frames up to then')
        dropped = [mark.trial_id for mark in self._trials.pending if mark.event == TrialEventKind.START]
        if dropped:
            self.get_logger().warning(f'trial {", ".join(dropped)} had not begun when the scorer stopped '
                                      f'{age:.0f} s ago: no frame of it to score')
        for result in self._trials.end_of_stream():
            self.get_logger().warning(f'closing trial {result.trial_id}, left open by a scorer that stopped '
                                      f'{age:.0f} s ago, with a partial score')
            self._publish(ScoreKind.FINAL, result)
        self._state_changed = True
        self._save_state()

    def _save_state(self) -> None:
        if self._state_changed:
            self._state_changed = False
            try:
                self._state_file.save(self._trials, frame_id=self._frame_id)
            except OSError as error:
                self.get_logger().error(f'cannot save the trial state: {error}', throttle_duration_sec=WARN_PERIOD)

    def _scorer_options(self) -> dict[str, float]:
        node = self.settings(ScorerNodeSettings)
        return {'running_period': node.running_period, 'window_seconds': node.window_seconds,
                'window_period': node.window_period, 'max_trial_seconds': node.max_trial_seconds,
                'max_stamp_jump': node.max_stamp_jump}

    def settings_changed(self, previous: dict) -> None:
        self._trials.scorer.configure(self.settings(ScoringSettings), **self._scorer_options())
        self._trials.id_prefix = self.settings(ScorerNodeSettings).trial_prefix
        self.get_logger().info('scoring settings changed; they apply from the next trial on')

    # -- trial commands -------------------------------------------------------------------------------------------

    def _command(self, mark: TrialMark) -> TrialMark:
        """Schedule a trial command (it takes effect at its stamp) and announce it on trial_events."""
        mark = self._trials.command(mark)
        self._state_changed = True
        self._save_state()  # a started trial's id and stamp are on disk before anyone is told of it
        self._event_publisher.publish(mark_to_msg(mark, self._frame_id))
        if mark.event == TrialEventKind.STOP:
            self._stop_requested_at = self._steady.now()
            self._stop_ns = mark.stamp_ns
        elif mark.event == TrialEventKind.RESET:
            self._stop_requested_at = None
        self.get_logger().info(f'{mark.event.name.lower()} {mark.trial_id} at {ns_to_seconds(mark.stamp_ns):.3f} s')
        return mark

    def image_time_ns(self) -> int:
        """Now, in the time base of the image stamps (see the module's description), and past the frames the
        nodes may be processing: a command can take effect exactly only at frames no node has seen yet."""
        stamps = list(self._face_stamps)[-OFFSET_WINDOW:]
        return command_stamp_ns(self.get_clock().now().nanoseconds, self._stamp_clock, stamps, self._last_motion_ns)

    def _service(self, event: TrialEventKind, response: Trigger.Response) -> Trigger.Response:
        try:
            mark = self._command(TrialMark(self.image_time_ns(), event))
        except TrialError as error:
            response.message = str(error)
            return response
        response.success = True
        response.message = {TrialEventKind.START: f'{mark.trial_id} started',
                            TrialEventKind.STOP: f'{mark.trial_id} stopped; its score follows on '
                                                 f'{self._score_publisher.topic_name}',
                            TrialEventKind.RESET: 'reset'}[event]
        return response

    def _start_service(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        return self._service(TrialEventKind.START, response)

    def _stop_service(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        return self._service(TrialEventKind.STOP, response)

    def _reset_service(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        return self._service(TrialEventKind.RESET, response)

    def _on_control(self, event: TrialEvent) -> None:
        try:
            self._command(mark_of(event))
        except (TrialError, ValueError) as error:
            self.get_logger().warning(f'trial_control: {error}')

    # -- frames and scores ----------------------------------------------------------------------------------------

    def _heard(self, stamp_ns: int) -> None:
        """A per-frame message arrived: the stream is alive, and its delay feeds the clock-to-stamp offset."""
        self._last_input_at = self._steady.now()
        self._stamp_clock.heard(self.get_clock().now().nanoseconds, stamp_ns)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._stamp_clock.heard(self.get_clock().now().nanoseconds, stamp_to_ns(msg.header.stamp))

    def _on_faces(self, msg: FaceDetections) -> None:
        # faces come straight from the detector: the offset with the least processing in it
        stamp = stamp_to_ns(msg.header.stamp)
        self._face_stamps.append(stamp)
        self._heard(stamp)

    def _on_motion(self, msg: RegionMotion) -> None:
        self._frame_id = msg.header.frame_id
        motion = msg_to_motion(msg, with_polygons=False)
        self._heard(motion.stamp_ns)
        self._last_motion_ns = max(self._last_motion_ns, motion.stamp_ns)
        if self._trials.open_trial is not None and not motion.face_found:
            self.get_logger().warning('face lost during the trial; the score will be flagged',
                                      throttle_duration_sec=WARN_PERIOD)
        for kind, result in self._trials.add(motion):
            self._publish(kind, result)
        self._state_changed = self._state_changed or not self._trials.idle

    def _check_final(self) -> None:
        """After a stop: give the final score once the frames up to the stop are through, or on timeout."""
        if self._stop_requested_at is None or self._stop_ns is None:
            return
        settings = self.settings(ScorerNodeSettings)
        now = self._steady.now()
        stop = self._stop_ns
        before = [stamp for stamp in self._face_stamps if stamp <= stop]
        delivered = not before or self._last_motion_ns >= before[-1]
        later_seen = self._last_motion_ns > stop or any(stamp > stop for stamp in self._face_stamps)
        quiet = ns_to_seconds((now - self._last_input_at).nanoseconds) >= settings.stop_grace
        waited = ns_to_seconds((now - self._stop_requested_at).nanoseconds)
        note = ''
        if not (delivered and (later_seen or quiet)):
            if waited < settings.final_timeout:
                return
            missing = sum(stamp > self._last_motion_ns for stamp in before)
            note = (f'incomplete: scored {waited:.1f} s after the stop, with {missing} frames before the stop '
                    f'still missing')
        self._stop_requested_at = None
        for result in self._trials.flush(note):
            self._publish(ScoreKind.FINAL, result)

    def _publish(self, kind: ScoreKind, result: ScoreResult) -> None:
        msg = score_to_msg(result, int(kind), self._frame_id)
        if kind != ScoreKind.FINAL:
            self._running_publisher.publish(msg)
            return
        if self._trials.scorer.trial is None:
            self._stop_requested_at = None
        self.get_logger().info(summary(result))
        self._score_publisher.publish(msg)
        self._state_changed = True
        self._save_state()


def main(args: list[str] | None = None) -> int:
    return spin_node(SymmetryScorerNode, args)


if __name__ == '__main__':
    sys.exit(main())
