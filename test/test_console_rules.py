"""The console's rules without a browser: which paths it serves, the readiness check, ids it takes as folders."""

from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facesym_ros.config.registry import NODE_NAMES, SOURCE_NODE
from facesym_ros.console.readiness import Readiness
from facesym_ros.console.server import served_path
from facesym_ros.console.sessions import check_identifier
from facesym_ros.core.scoring import ScoringSettings

SEGMENTS = st.sampled_from(['..', '.', 'P-1', 'S-1', 'report.html', '.console-token', '', '%2e%2e', '...', 'a..b'])


@settings(max_examples=300, deadline=None)
@given(st.lists(SEGMENTS, min_size=1, max_size=6), st.booleans())
def test_a_served_path_never_leaves_the_output_root(tmp_path_factory, segments, absolute):
    root = tmp_path_factory.getbasetemp() / 'root'
    (root / 'P-1' / 'S-1').mkdir(parents=True, exist_ok=True)
    outside = root.parent / 'outside'
    outside.mkdir(exist_ok=True)
    link = root / 'P-1' / 'escape'
    if not link.exists():
        os.symlink(outside, link)
    relative = ('/' if absolute else '') + '/'.join(segments + (['escape'] if len(segments) % 3 == 0 else []))
    target = served_path(root.resolve(), relative)
    if target is not None:
        assert target.is_relative_to(root.resolve()) and target != root.resolve()
        named = [part for part in relative.split('/') if part not in ('', '.')]
        assert '..' not in named and not any(part.startswith('.') for part in named)
        assert not target.is_relative_to(outside.resolve())


def test_served_paths_of_a_session_folder():
    root = __import__('pathlib').Path('/srv/sessions')
    assert served_path(root, 'P-1/S-1/report.html') == root / 'P-1/S-1/report.html'
    for refused in ('../etc/passwd', 'P-1/../../etc/passwd', '/etc/passwd', '.console-token', 'P-1/.hidden/x', ''):
        assert served_path(root, refused) is None, refused


@pytest.mark.parametrize('value', ['', ' ', '../P', 'P/1', '.hidden', 'Jane Doe', 'a' * 65, 'P\x00'])
def test_subject_and_session_ids_that_are_no_safe_folder_name_are_refused(value):
    with pytest.raises(ValueError, match='opaque id'):
        check_identifier(value, 'subject')


def test_the_readiness_check_says_what_is_wrong_in_words():
    scoring = ScoringSettings()
    readiness = Readiness(NODE_NAMES, scoring)
    checks = {check.name: check for check in readiness.checks(now=100.0)}
    assert not any(check.ok for check in checks.values())
    assert 'not heard' in checks['graph'].text and 'no frames' in checks['frames'].text
    for name in NODE_NAMES:
        readiness.on_status(f'/{name}', 0, 'ok', {'rate (Hz)': '30.00'} if name == SOURCE_NODE else {}, now=99.0)
    for index in range(60):  # 2 s at 30 fps: a face, 380 px wide, still, well lit, resampled x1.2
        at = 98.0 + index / 30
        readiness.on_faces(True, 380, now=at)
        readiness.on_motion(True, 1.2, (0.01 * (index % 2), 0.0), now=at)
        readiness.on_light(120.0, now=at)
    checks = {check.name: check for check in readiness.checks(now=100.0)}
    assert all(check.ok for check in checks.values()), checks
    assert '380 px' in checks['face'].text
    readiness = Readiness(NODE_NAMES, scoring)  # a small face, a moving head, a dark room, a slow node
    for name in NODE_NAMES:
        readiness.on_status(f'/{name}', 2 if name == NODE_NAMES[1] else 0, 'processing time 300 ms',
                            {'rate (Hz)': '30.00'} if name == SOURCE_NODE else {}, now=99.5)
    readiness.on_motion(True, 1.0, (0.0, 0.0), now=99.5)
    readiness.on_motion(True, scoring.max_face_upscale + 0.5, (scoring.max_head_motion * 2, 0.0), now=100.0)
    readiness.on_light(20.0, now=100.0)
    checks = {check.name: check for check in readiness.checks(now=100.0)}
    assert not checks['face size'].ok and 'closer' in checks['face size'].text
    assert not checks['head still'].ok and 'keep the head still' in checks['head still'].text
    assert not checks['light'].ok and 'dark' in checks['light'].text
    assert not checks['graph'].ok and 'processing time' in checks['graph'].text
    for index in range(30):  # frames at half the camera's rate
        readiness.on_faces(True, 380, now=100.0 + index / 15)
    frames = {check.name: check for check in readiness.checks(now=102.0)}['frames']
    assert not frames.ok and 'falling behind' in frames.text, frames


def test_the_console_is_a_node_of_the_registry_started_only_when_asked_for():
    from facesym_ros.config.node_settings import ConsoleSettings
    from facesym_ros.config.params import load_params_file, settings_from
    from facesym_ros.config.registry import CONSOLE_NODE, console_scripts, select

    assert CONSOLE_NODE not in {spec.name for spec in select(None)}  # bringup, the demo, `session --source`
    assert [spec.name for spec in select(f'face_detector,{CONSOLE_NODE}')] == ['face_detector', CONSOLE_NODE]
    assert any(line.startswith(f'facesym_{CONSOLE_NODE} = ') for line in console_scripts())
    assert settings_from(load_params_file(), ConsoleSettings) == ConsoleSettings()  # config/facesym.yaml has it


# -- video for people: a rate by the images' stamps ---------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(camera_fps=st.sampled_from([10.0, 15.0, 24.0, 25.0, 29.97, 30.0, 50.0, 60.0]),
       rate=st.sampled_from([10.0, 15.0, 20.0]), jitter_ms=st.floats(0.0, 1.0), start_s=st.floats(0.0, 1e6),
       seconds=st.integers(4, 12))
def test_the_rate_gate_passes_its_rate_of_a_faster_camera_and_every_frame_of_a_slower_one(camera_fps, rate,
                                                                                         jitter_ms, start_s,
                                                                                         seconds):
    """A camera at any rate, its stamps rounded and jittered: the pages get `rate` frames a second (all of a
    slower camera's), never two closer than the gate's period or the camera's, and a replay that starts again is
    taken at once (the annotator's max_rate and the console's patient picture)."""
    from facesym_ros.core.timebase import STAMP_SLACK_NS, RateGate

    count = round(camera_fps * seconds)
    base = round(start_s * 1e9)
    stamps = [base + round(i * 1e9 / camera_fps + ((-1) ** i) * jitter_ms * 1e6) for i in range(count)]
    gate = RateGate(rate)
    taken = [stamp for stamp in stamps if gate.take(stamp)]
    expected = min(rate, camera_fps) * seconds
    assert abs(len(taken) - expected) <= 2, (len(taken), expected)
    closest = min(1e9 / rate, 1e9 / camera_fps) - 2 * jitter_ms * 1e6 - STAMP_SLACK_NS
    assert all(b - a >= closest for a, b in itertools.pairwise(taken))
    again = [stamp for stamp in stamps[:5] if gate.take(stamp)]  # the replay restarted at its first stamp
    assert again and again[0] == stamps[0]


def test_a_rate_of_zero_takes_every_frame():
    from facesym_ros.core.timebase import RateGate

    gate = RateGate(0.0)
    assert all(gate.take(stamp) for stamp in [5, 5, 4, 10**12, 0])


@settings(max_examples=300, deadline=None)
@given(state=st.sampled_from(['get_ready', 'go']), start=st.integers(0, 20_000), now=st.integers(0, 20_000),
       duration=st.sampled_from([0.0, 1.5, 4.0, 5.0, 12.0]))
def test_the_patient_countdown_never_says_more_than_the_task_and_agrees_with_the_banner(state, start, now, duration):
    """The go is sent ahead of its start's stamp (the screenshot once read "5 s left" for a 4 s task): until the
    start the task is next, as on the annotated image, and no countdown is longer than the task."""
    import math
    import re

    from facesym_ros.clinic.session_record import banner_text, countdown_view
    from facesym_ros.core.timebase import seconds_to_ns

    start_ns, now_ns = seconds_to_ns(start / 1000), seconds_to_ns(now / 1000)
    phase, countdown = countdown_view(state, 'smile', start_ns, now_ns, duration)
    banner = banner_text(now_ns, state={'get_ready': 0, 'go': 1}[state], task='smile', instruction='Smile.',
                         task_number=1, task_count=2, start_ns=start_ns, duration=duration)
    left = re.fullmatch(r'(\d+) s left', countdown)
    if left:
        assert phase == 'go' and 1 <= int(left.group(1)) <= math.ceil(duration), (countdown, duration)
        assert banner.endswith(f'({left.group(1)} s left)'), banner
    if phase == 'get_ready':
        assert banner.startswith('Next, '), banner
        if duration > 0 and start_ns > now_ns:
            assert countdown == f'relax; starts in {math.ceil((start_ns - now_ns) / 1e9)} s'
            assert banner.endswith(f'(starts in {math.ceil((start_ns - now_ns) / 1e9)} s)'), banner
    if state == 'go' and duration > 0 and now_ns >= start_ns:
        assert phase in ('go', 'relax') and not banner.startswith('Next, '), (phase, banner)
    # one rule for both, operator-paced tasks (duration 0) included: the task is next exactly where the banner says
    assert (phase == 'get_ready') == banner.startswith('Next, '), (state, start_ns, now_ns, duration, phase, banner)
    if start_ns > now_ns:  # no screen says the operator has still to start a task whose start is sent
        assert countdown == f'relax; starts in {math.ceil((start_ns - now_ns) / 1e9)} s', countdown
