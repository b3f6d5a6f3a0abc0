"""symmetry_scorer: symmetry scores of trials (and, unattended, of a rolling window).

Subscribes: region_motion (RegionMotion); trial_control (TrialEvent), to drive
            trials by topic, e.g. the recorded trial_events of a bag being replayed.
Publishes:  score (SymmetryScore, reliable + transient local): final trial scores;
            score_running (SymmetryScore): the running score of an open trial and,
            unattended, rolling-window scores; trial_events (TrialEvent, transient
            local): every start, stop and reset, with the stamp it takes effect at.
Services:   start_trial, stop_trial, reset (std_srvs/Trigger).
"""

from __future__ import annotations

import math
import sys

from std_msgs.msg import Header
from std_srvs.srv import Trigger

from facesym_ros.core.scoring import ScoreResult, ScoringConfig
from facesym_ros.core.trials import ScoreKind, TrialError, TrialScorer
from facesym_ros.msg import RegionMotion, SymmetryScore, TrialEvent
from facesym_ros.node_settings import ScorerNodeSettings
from facesym_ros.ros.conversions import msg_to_motion, ns_to_stamp, score_to_msg, stamp_to_ns
from facesym_ros.ros.node_base import SettingsNode, latched_qos, pipeline_qos, spin_node

WARN_PERIOD = 5.0
MOTION_QUEUE = 50


def summary(result: ScoreResult) -> str:
    """One line for the log and the console: SS per region, frame count, quality."""
    parts = [f'{r.region} {"n/a" if math.isnan(r.symmetry) else f"{r.symmetry:.3f}"}' for r in result.regions]
    quality = '; '.join(result.quality.notes) or 'quality ok'
    return f'{result.trial_id}: ' + ', '.join(parts) + f' ({result.frame_count} frames; {quality})'


class SymmetryScorerNode(SettingsNode):
    """Adapter over core.trials.TrialScorer."""

    def __init__(self, **kwargs) -> None:
        super().__init__('symmetry_scorer', (ScoringConfig, ScorerNodeSettings), **kwargs)
        self._scorer = self._make_scorer()
        self._trial_count = 0
        self._frame_id = ''
        self._stop_requested_at = None
        self._score_publisher = self.create_publisher(SymmetryScore, 'score', latched_qos())
        self._running_publisher = self.create_publisher(SymmetryScore, 'score_running', pipeline_qos(10))
        self._event_publisher = self.create_publisher(TrialEvent, 'trial_events', latched_qos())
        self.create_subscription(RegionMotion, 'region_motion', self._on_motion, pipeline_qos(MOTION_QUEUE))
        self.create_subscription(TrialEvent, 'trial_control', self._on_control, pipeline_qos(10))
        self.create_service(Trigger, 'start_trial', self._start_service)
        self.create_service(Trigger, 'stop_trial', self._stop_service)
        self.create_service(Trigger, 'reset', self._reset_service)
        self.create_timer(0.1, self._check_grace)

    def _make_scorer(self) -> TrialScorer:
        node = self.settings(ScorerNodeSettings)
        return TrialScorer(self.settings(ScoringConfig), running_period=node.running_period,
                           window_seconds=node.window_seconds, window_period=node.window_period,
                           max_trial_seconds=node.max_trial_seconds)

    def settings_changed(self, previous: dict) -> None:
        trial = self._scorer.trial
        self._scorer = self._make_scorer()
        self._scorer.trial = trial
        self.get_logger().info('scoring settings changed; they apply to the current trial too')

    # -- trial commands -------------------------------------------------------------------------------------------

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def start(self, start_ns: int, trial_id: str = '') -> str:
        if not trial_id:
            self._trial_count += 1
            trial_id = f'{self.settings(ScorerNodeSettings).trial_prefix}-{self._trial_count:04d}'
        trial = self._scorer.start(trial_id, start_ns)
        self._publish_event(TrialEvent.START, trial.trial_id, start_ns)
        self.get_logger().info(f'{trial_id} started')
        return trial_id

    def stop(self, stop_ns: int) -> str:
        trial = self._scorer.stop(stop_ns)
        self._stop_requested_at = self.get_clock().now()
        self._publish_event(TrialEvent.STOP, trial.trial_id, trial.stop_ns)
        return trial.trial_id

    def reset(self, stamp_ns: int) -> None:
        self._scorer.reset()
        self._stop_requested_at = None
        self._publish_event(TrialEvent.RESET, '', stamp_ns)
        self.get_logger().info('reset: open trial discarded')

    def _publish_event(self, event: int, trial_id: str, stamp_ns: int) -> None:
        header = Header(stamp=ns_to_stamp(stamp_ns), frame_id=self._frame_id)
        self._event_publisher.publish(TrialEvent(header=header, event=event, trial_id=trial_id))

    def _start_service(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        try:
            response.message = f'{self.start(self._now_ns())} started'
            response.success = True
        except TrialError as error:
            response.message = str(error)
        return response

    def _stop_service(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        try:
            trial_id = self.stop(self._now_ns())
            response.message = f'{trial_id} stopped; its score follows on {self._score_publisher.topic_name}'
            response.success = True
        except TrialError as error:
            response.message = str(error)
        return response

    def _reset_service(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.reset(self._now_ns())
        response.success = True
        response.message = 'reset'
        return response

    def _on_control(self, event: TrialEvent) -> None:
        stamp = stamp_to_ns(event.header.stamp)
        try:
            if event.event == TrialEvent.START:
                self.start(stamp, event.trial_id)
            elif event.event == TrialEvent.STOP:
                self.stop(stamp)
            elif event.event == TrialEvent.RESET:
                self.reset(stamp)
            else:
                self.get_logger().warning(f'unknown trial event {event.event} ignored')
        except TrialError as error:
            self.get_logger().warning(f'trial_control: {error}')

    # -- frames and scores ----------------------------------------------------------------------------------------

    def _on_motion(self, msg: RegionMotion) -> None:
        self._frame_id = msg.header.frame_id
        motion = msg_to_motion(msg, with_polygons=False)
        if self._scorer.open and not motion.face_found:
            self.get_logger().warning('face lost during the trial; the score will be flagged',
                                      throttle_duration_sec=WARN_PERIOD)
        for kind, result in self._scorer.add(motion):
            self._publish(kind, result)

    def _check_grace(self) -> None:
        trial = self._scorer.trial
        if trial is None or trial.stop_ns is None or self._stop_requested_at is None:
            return
        waited = (self.get_clock().now() - self._stop_requested_at).nanoseconds / 1e9
        if waited >= self.settings(ScorerNodeSettings).stop_grace:
            self._publish(ScoreKind.FINAL, self._scorer.finish())

    def _publish(self, kind: ScoreKind, result: ScoreResult) -> None:
        msg = score_to_msg(result, int(kind), self._frame_id)
        if kind != ScoreKind.FINAL:
            self._running_publisher.publish(msg)
            return
        self._stop_requested_at = None
        self.get_logger().info(summary(result))
        self._score_publisher.publish(msg)


def main(args: list[str] | None = None) -> int:
    return spin_node(SymmetryScorerNode, args)


if __name__ == '__main__':
    sys.exit(main())
