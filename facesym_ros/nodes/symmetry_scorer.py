"""symmetry_scorer: symmetry scores of trials (and, unattended, of a rolling window).

Subscribes: region_motion (RegionMotion); trial_control (TrialEvent), to drive
            trials by topic, e.g. the recorded trial_events of a bag being replayed.
Publishes:  score (SymmetryScore, reliable + transient local): final trial scores;
            score_running (SymmetryScore): the running score of an open trial and,
            unattended, rolling-window scores; trial_events (TrialEvent, transient
            local): every start, stop and reset, with the stamp it takes effect at
            and the trial's id.
Services:   start_trial, stop_trial, reset (std_srvs/Trigger), stamped in the images' time base:
            see image_time_ns.

Trials hold frames by their image stamps. A service call is stamped with
the node clock, which is the images' time base live (image_source and
camera drivers stamp frames with the system clock). With use_sim_time the
node clock is /clock, e.g. the log time of a bag being played, and the
frames' stamps may differ from it (the recording latency, or a camera on a
clock of its own). Then the scorer learns the offset as the smallest
difference (clock at arrival - image stamp) over the last OFFSET_WINDOW
region_motion messages, and stamps the call with clock - offset: the trial
starts (or stops) at the frames recorded after the call. Before the first
frame arrives, the clock is used as it is. The stop's grace period
(stop_grace) runs on the steady clock, so a final score follows even when
/clock has stopped at the end of a bag.
"""

from __future__ import annotations

import math
import sys
from collections import deque

from rclpy.clock import Clock, ClockType
from rclpy.time import Time
from std_srvs.srv import Trigger

from facesym_ros.config.node_settings import ScorerNodeSettings
from facesym_ros.core.scoring import ScoreResult, ScoringSettings
from facesym_ros.core.timebase import ns_to_seconds
from facesym_ros.core.trials import ScoreKind, TrialController, TrialError, TrialEventKind, TrialMark, TrialScorer
from facesym_ros.msg import RegionMotion, SymmetryScore, TrialEvent
from facesym_ros.ros.conversions import mark_of, mark_to_msg, msg_to_motion, score_to_msg, stamp_to_ns
from facesym_ros.ros.node_base import (
    CONTROL_QUEUE_DEPTH,
    WARN_PERIOD,
    SettingsNode,
    latched_qos,
    pipeline_qos,
    spin_node,
)

OFFSET_WINDOW = 30
"""region_motion messages over which, with use_sim_time, the clock-to-image-stamp offset is taken."""


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
        self._offsets_ns: deque[int] = deque(maxlen=OFFSET_WINDOW)
        self._score_publisher = self.create_publisher(SymmetryScore, 'score', latched_qos())
        self._running_publisher = self.create_publisher(SymmetryScore, 'score_running',
                                                        pipeline_qos(CONTROL_QUEUE_DEPTH))
        self._event_publisher = self.create_publisher(TrialEvent, 'trial_events', latched_qos())
        self.create_subscription(RegionMotion, 'region_motion', self._on_motion, pipeline_qos(node.motion_queue_size))
        self.create_subscription(TrialEvent, 'trial_control', self._on_control, pipeline_qos(CONTROL_QUEUE_DEPTH))
        self.create_service(Trigger, 'start_trial', self._start_service)
        self.create_service(Trigger, 'stop_trial', self._stop_service)
        self.create_service(Trigger, 'reset', self._reset_service)
        self.create_timer(0.1, self._check_grace, clock=self._steady)

    def _scorer_options(self) -> dict[str, float]:
        node = self.settings(ScorerNodeSettings)
        return {'running_period': node.running_period, 'window_seconds': node.window_seconds,
                'window_period': node.window_period, 'max_trial_seconds': node.max_trial_seconds}

    def settings_changed(self, previous: dict) -> None:
        self._trials.scorer.configure(self.settings(ScoringSettings), **self._scorer_options())
        self._trials.id_prefix = self.settings(ScorerNodeSettings).trial_prefix
        self.get_logger().info('scoring settings changed; they apply from the next trial on')

    # -- trial commands -------------------------------------------------------------------------------------------

    def _command(self, mark: TrialMark) -> TrialMark:
        """Schedule a trial command (it takes effect at its stamp) and announce it on trial_events."""
        mark = self._trials.command(mark)
        self._event_publisher.publish(mark_to_msg(mark, self._frame_id))
        if mark.event == TrialEventKind.STOP:
            self._stop_requested_at = self._steady.now()
        elif mark.event == TrialEventKind.RESET:
            self._stop_requested_at = None
        self.get_logger().info(f'{mark.event.name.lower()} {mark.trial_id} at {ns_to_seconds(mark.stamp_ns):.3f} s')
        return mark

    def image_time_ns(self) -> int:
        """Now, in the time base of the image stamps (see the module's description)."""
        now = self.get_clock().now().nanoseconds
        if not self._offsets_ns or not self.get_parameter('use_sim_time').value:
            return now
        return now - min(self._offsets_ns)

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

    def _on_motion(self, msg: RegionMotion) -> None:
        self._frame_id = msg.header.frame_id
        self._offsets_ns.append(self.get_clock().now().nanoseconds - stamp_to_ns(msg.header.stamp))
        motion = msg_to_motion(msg, with_polygons=False)
        if self._trials.open_trial is not None and not motion.face_found:
            self.get_logger().warning('face lost during the trial; the score will be flagged',
                                      throttle_duration_sec=WARN_PERIOD)
        for kind, result in self._trials.add(motion):
            self._publish(kind, result)

    def _check_grace(self) -> None:
        """After a stop, wait stop_grace for the frames stamped before it that are still in the pipeline."""
        if self._stop_requested_at is None:
            return
        waited = ns_to_seconds((self._steady.now() - self._stop_requested_at).nanoseconds)
        if waited >= self.settings(ScorerNodeSettings).stop_grace:
            self._stop_requested_at = None
            for result in self._trials.flush():
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


def main(args: list[str] | None = None) -> int:
    return spin_node(SymmetryScorerNode, args)


if __name__ == '__main__':
    sys.exit(main())
