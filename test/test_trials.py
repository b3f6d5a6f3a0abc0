"""Trials, windows and stamp pairing, driven directly: which frames a trial holds and when its scores are due."""

from __future__ import annotations

import math

import pytest
from test_scoring import motion

from facesym_ros.config.files import SAMPLE_VIDEO
from facesym_ros.core.pipeline import FacePipeline
from facesym_ros.core.scoring import ScoringSettings, score_frames
from facesym_ros.core.trials import ScoreKind, TrialController, TrialError, TrialEventKind, TrialMark, TrialScorer
from facesym_ros.core.video import FrameSource
from facesym_ros.ros.node_base import StampPairer

MS = 1_000_000
PERIOD = 33 * MS


def frame(index: int, cheek_left: float = 10.0) -> object:
    """Frame `index` of a 30 fps stream (frame 0 is stamped 0); flow valid, left cheek moving."""
    return motion(index * PERIOD, {('cheek', 'left'): cheek_left, ('cheek', 'right'): 2.0})


def finals(due) -> list:
    return [result for kind, result in due if kind == ScoreKind.FINAL]


def test_a_trial_holds_the_frames_from_its_start_to_its_stop_stamp_inclusive():
    controller = TrialController(TrialScorer(ScoringSettings(), running_period=1e6))
    controller.start(3 * PERIOD)
    controller.stop(7 * PERIOD)
    results = []
    for index in range(10):
        results += finals(controller.add(frame(index)))
    [result] = results
    assert result.trial_id == 'trial-0001'
    assert (result.first_stamp_ns, result.last_stamp_ns, result.frame_count) == (3 * PERIOD, 7 * PERIOD, 5)
    expected = score_frames([frame(index) for index in range(3, 8)], ScoringSettings(), trial_id='trial-0001')
    assert result.regions == expected.regions


def test_marks_take_effect_at_their_stamps_whatever_order_they_are_given_in():
    in_order = TrialController(TrialScorer(ScoringSettings()))
    in_order.command(TrialMark(2 * PERIOD, TrialEventKind.START, 'a'))
    in_order.command(TrialMark(4 * PERIOD, TrialEventKind.STOP, 'a'))
    in_order.command(TrialMark(6 * PERIOD, TrialEventKind.START, 'b'))
    in_order.command(TrialMark(8 * PERIOD, TrialEventKind.STOP, 'b'))
    # the same trials, with every mark given before any frame and the second trial's marks given first
    late = TrialController(TrialScorer(ScoringSettings()))
    for mark in (TrialMark(6 * PERIOD, TrialEventKind.START, 'b'), TrialMark(8 * PERIOD, TrialEventKind.STOP, 'b')):
        late._schedule(mark)  # as a replayed bag may deliver them
    late._schedule(TrialMark(2 * PERIOD, TrialEventKind.START, 'a'))
    late._schedule(TrialMark(4 * PERIOD, TrialEventKind.STOP, 'a'))
    for controller in (in_order, late):
        scores = []
        for index in range(12):
            scores += finals(controller.add(frame(index)))
        assert [(s.trial_id, s.frame_count, s.first_stamp_ns) for s in scores] == [
            ('a', 3, 2 * PERIOD), ('b', 3, 6 * PERIOD)]


def test_a_start_right_after_a_stop_closes_the_first_trial_first():
    controller = TrialController(TrialScorer(ScoringSettings()))
    controller.start(0)
    controller.stop(2 * PERIOD)
    controller.start(3 * PERIOD)  # the next frame both ends trial 1 and begins trial 2
    scores = []
    for index in range(5):
        scores += finals(controller.add(frame(index)))
    assert [(s.trial_id, s.frame_count) for s in scores] == [('trial-0001', 3)]
    assert controller.scorer.trial.trial_id == 'trial-0002'
    [last] = controller.end_of_stream('the stream ended first')
    assert (last.trial_id, last.frame_count) == ('trial-0002', 2)
    assert 'the stream ended first' in last.quality.notes


def test_commands_that_do_not_fit_are_refused_against_the_scheduled_state():
    controller = TrialController(TrialScorer(ScoringSettings()), id_prefix='visit')
    with pytest.raises(TrialError, match='no trial is running'):
        controller.stop(5)
    assert controller.start(10).trial_id == 'visit-0001'
    with pytest.raises(TrialError, match='visit-0001 is still running'):
        controller.start(20)  # not yet applied to any frame, but scheduled
    controller.stop(30)
    assert controller.open_trial is None
    assert controller.start(40).trial_id == 'visit-0002'
    assert [mark.event for mark in controller.pending] == [TrialEventKind.START, TrialEventKind.STOP,
                                                           TrialEventKind.START]


def test_start_anchors_the_regions_at_its_frame_and_reset_drops_the_trial():
    pipeline = FacePipeline()
    controller = TrialController(TrialScorer(ScoringSettings()), pipeline.motion)
    frames = list(FrameSource.open(SAMPLE_VIDEO).frames())[:12]
    controller.start(frames[4].stamp_ns)
    controller.reset(frames[8].stamp_ns)
    valid = []
    for item in frames:
        assert controller.before_frame(item.stamp_ns) == []
        motion_of_frame = pipeline.process(item).motion
        valid.append(motion_of_frame.flow_valid)
        controller.add(motion_of_frame)
    # frame 0 anchors (first face), frame 4 anchors again (the trial starts there), frame 8 too (reset)
    assert valid == [False, True, True, True, False, True, True, True, False, True, True, True]
    assert controller.scorer.trial is None and controller.end_of_stream() == []


def test_flush_closes_a_stopped_trial_without_waiting_for_a_later_frame():
    controller = TrialController(TrialScorer(ScoringSettings()))
    controller.start(0)
    for index in range(4):
        controller.add(frame(index))
    controller.stop(10 * PERIOD)  # the frames up to 10 never come
    [result] = controller.flush()
    assert result.frame_count == 4 and controller.scorer.trial is None
    assert controller.flush() == []


def test_running_scores_come_at_most_every_running_period():
    scorer = TrialScorer(ScoringSettings(), running_period=0.1)  # 100 ms: every 4th frame at 33 ms
    controller = TrialController(scorer)
    controller.start(0)
    kinds = [[kind for kind, _ in controller.add(frame(index))] for index in range(9)]
    running = [index for index, due in enumerate(kinds) if ScoreKind.RUNNING in due]
    assert running == [0, 4, 8]


def test_rolling_window_scores_the_last_window_seconds():
    scorer = TrialScorer(ScoringSettings(), window_seconds=0.1, window_period=0.2)
    windows = []
    for index in range(20):
        windows += [(index, result) for kind, result in scorer.add(frame(index)) if kind == ScoreKind.WINDOW]
    assert [index for index, _ in windows] == [1, 8, 15]  # the first with two frames, then every 200 ms
    for index, result in windows:
        assert result.trial_id == 'window'
        assert result.last_stamp_ns == index * PERIOD
        assert result.first_stamp_ns > index * PERIOD - 100 * MS  # nothing older than the window
    assert windows[-1][1].frame_count == 4  # 33 ms frames within 100 ms: 396..495 ms


def test_a_trial_longer_than_the_maximum_is_ended_and_says_so():
    scorer = TrialScorer(ScoringSettings(), max_trial_seconds=1.0)
    controller = TrialController(scorer)
    controller.start(0)
    scores = []
    for index in range(40):  # 1.3 s of frames
        scores += finals(controller.add(frame(index)))
    [result] = scores
    assert result.last_stamp_ns <= 1_000_000_000 and result.frame_count == 31
    assert 'trial ended after the maximum of 1 s' in result.quality.notes


def test_late_and_repeated_frames_are_left_out_and_counted():
    controller = TrialController(TrialScorer(ScoringSettings()))
    controller.start(0)
    controller.stop(10 * PERIOD)
    for index in (0, 1, 2, 1, 3, 2, 4):
        controller.add(frame(index))
    [result] = controller.flush()
    assert result.frame_count == 5
    assert '2 frames arrived out of stamp order and were left out' in result.quality.notes


def test_settings_changed_during_a_trial_apply_from_the_next_trial():
    scorer = TrialScorer(ScoringSettings(symmetry_lambda=3.8))
    controller = TrialController(scorer)
    controller.start(0)
    controller.add(frame(0))
    scorer.configure(ScoringSettings(symmetry_lambda=1.0))
    controller.add(frame(1))
    controller.stop(PERIOD)
    [first] = controller.flush()
    assert first.symmetry_lambda == 3.8
    controller.start(2 * PERIOD)
    controller.add(frame(2))
    controller.add(frame(3))
    controller.stop(3 * PERIOD)
    [second] = controller.flush()
    assert second.symmetry_lambda == 1.0
    assert not math.isnan(second.region('cheek').symmetry)


def test_stamp_pairer_pairs_exact_stamps_and_counts_what_it_drops():
    pairer = StampPairer(2, capacity=3)
    assert pairer.add(0, 10, 'image 10') is None
    assert pairer.add(1, 10, 'landmarks 10') == ('image 10', 'landmarks 10')
    # image 20 never gets its landmarks: once 30 pairs, 20 can no longer pair and is dropped
    pairer.add(0, 20, 'image 20')
    pairer.add(0, 30, 'image 30')
    assert pairer.add(1, 30, 'landmarks 30') == ('image 30', 'landmarks 30')
    assert pairer.unpaired == 1
    # a full buffer drops its oldest item
    for stamp in (40, 50, 60, 70):
        assert pairer.add(0, stamp, f'image {stamp}') is None
    assert pairer.unpaired == 2
    assert pairer.add(1, 40, 'landmarks 40') is None  # 40 was dropped: it stays unpaired, never guessed
    assert pairer.add(1, 50, 'landmarks 50') == ('image 50', 'landmarks 50')
    assert pairer.unpaired == 3  # landmarks 40, too old to pair now
