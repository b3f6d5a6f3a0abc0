"""The console's rules without a browser: which paths it serves, the readiness check, ids it takes as folders."""

from __future__ import annotations

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
