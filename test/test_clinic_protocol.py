"""The assessment protocol: the default sequence, and every kind of mistake in a protocol file refused in one line."""

from __future__ import annotations

import pytest

from facesym_ros.clinic.protocol import OPERATOR, load_protocol
from helpers.cli import facesym


def test_the_default_protocol_is_the_standard_sequence():
    protocol = load_protocol()
    assert [t.name for t in protocol.tasks] == ['rest', 'raise_brows', 'close_eyes_gently', 'close_eyes_tightly',
                                                'smile', 'snarl', 'pucker']
    assert protocol.baseline is protocol.tasks[0]
    assert protocol.task('raise_brows').primary == ('forehead',)
    assert protocol.task('smile').primary == ('cheek',) and 'eye' in protocol.task('smile').watch
    assert all(t.duration == OPERATOR or t.duration > 0 for t in protocol.tasks)
    assert protocol.settings.subtract_baseline is False


def test_protocol_show_and_check_print_the_tasks():
    shown = facesym('protocol', 'show', '--keys')
    assert shown.returncode == 0, shown.stderr
    assert 'close_eyes_tightly' in shown.stdout and 'Pucker your lips' in shown.stdout
    assert 'watch' in shown.stdout and 'required' in shown.stdout
    checked = facesym('protocol', 'check', 'config/protocol.yaml')
    assert checked.returncode == 0 and 'ok, 7 tasks' in checked.stdout


def test_an_operator_paced_task_is_accepted(tmp_path):
    file = tmp_path / 'p.yaml'
    file.write_text('tasks:\n  - {name: smile, instruction: Smile., duration: operator, primary: cheek}\n')
    protocol = load_protocol(file)
    assert protocol.tasks[0].operator_paced and protocol.tasks[0].primary == ('cheek',)


GOOD = '{name: smile, instruction: Smile., duration: 4, primary: [cheek]}'
BAD_FILES = [
    ('unknown key', f'tasks:\n  - {GOOD}\n  - {{name: snarl, instruction: Snarl., duration: 4, primary: [cheek], '
                    'wacth: [eye]}\n', ["task 2 'snarl'", "unknown key 'wacth'"]),
    ('negative duration', 'tasks:\n  - {name: rest, instruction: Relax., duration: -2, primary: [eye]}\n',
     ["task 1 'rest'", "key 'duration'", 'positive number of seconds', '-2']),
    ('zero duration', 'tasks:\n  - {name: rest, instruction: Relax., duration: 0, primary: [eye]}\n',
     ["task 1 'rest'", "key 'duration'"]),
    ('duration text', 'tasks:\n  - {name: rest, instruction: Relax., duration: soon, primary: [eye]}\n',
     ["task 1 'rest'", "key 'duration'", "'operator'"]),
    ('unknown region', f'tasks:\n  - {GOOD}\n  - {{name: brows, instruction: Up., duration: 3, primary: [brow]}}\n',
     ["task 2 'brows'", "key 'primary'", "unknown region 'brow'", 'forehead, eye, cheek']),
    ('unknown watched region', 'tasks:\n  - {name: smile, instruction: Smile., duration: 4, primary: cheek, '
                               'watch: [eyes]}\n', ["task 1 'smile'", "key 'watch'", "unknown region 'eyes'"]),
    ('duplicate name', f'tasks:\n  - {GOOD}\n  - {GOOD}\n', ["task 2 'smile'", "key 'name'", 'earlier task']),
    ('empty list', 'tasks: []\n', ["key 'tasks'", 'non-empty list']),
    ('no tasks', 'settings: {subtract_baseline: true}\n', ["key 'tasks'"]),
    ('missing key', 'tasks:\n  - {name: smile, duration: 4, primary: [cheek]}\n',
     ["task 1 'smile'", "missing key 'instruction'"]),
    ('no primary region', 'tasks:\n  - {name: smile, instruction: Smile., duration: 4, primary: []}\n',
     ["task 1 'smile'", "key 'primary'", 'at least one region']),
    ('watched and primary', 'tasks:\n  - {name: smile, instruction: Smile., duration: 4, primary: cheek, '
                            'watch: [eye, cheek]}\n', ["task 1 'smile'", "key 'watch'", "'cheek'"]),
    ('unknown top-level key', f'task:\n  - {GOOD}\n', ["unknown key 'task'"]),
    ('unknown setting', f'settings: {{subtract_baselines: true}}\ntasks:\n  - {GOOD}\n',
     ['settings', "unknown key 'subtract_baselines'"]),
    ('bad setting value', f'settings: {{min_comovement: -1}}\ntasks:\n  - {GOOD}\n',
     ['settings', 'min_comovement must be >= 0.0']),
    ('subtraction without rest', f'settings: {{subtract_baseline: true}}\ntasks:\n  - {GOOD}\n',
     ['subtract_baseline needs a task with baseline: true']),
    ('not yaml', 'tasks: [\n', ['cannot read the protocol file']),
]


@pytest.mark.parametrize(('content', 'expected'), [case[1:] for case in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_a_bad_protocol_is_one_clear_line_and_exit_status_2(tmp_path, content, expected):
    file = tmp_path / 'protocol.yaml'
    file.write_text(content)
    result = facesym('protocol', 'check', str(file))
    assert result.returncode == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f'facesym protocol: error: {file}')
    for fragment in expected:
        assert fragment in lines[0]


def test_a_missing_protocol_file_is_refused(tmp_path):
    result = facesym('protocol', 'show', str(tmp_path / 'none.yaml'))
    assert result.returncode == 2 and 'no such protocol file' in result.stderr
