"""`facesym session` against the live graph: the default protocol, its bag scored again, and a session cut short.

The source is a generated recording laid out as the session paces itself
(helpers/session_video.py): every task's span carries the sample clip's real
smile, and in two tasks the patient's left half of the face is frozen.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from facesym_ros.bag.storage import open_bag, typestore
from facesym_ros.clinic.protocol import load_protocol, read_protocol_text
from facesym_ros.clinic.session_record import SessionRecord, banner_text
from facesym_ros.config.files import default_params_file
from facesym_ros.config.registry import NODE_NAMES
from facesym_ros.core.annotate import draw_banner
from facesym_ros.core.timebase import seconds_to_ns
from helpers.browser import chromium
from helpers.cli import facesym
from helpers.session_video import write_session_video

LEAD_IN = 2.0
FROZEN = ('close_eyes_tightly', 'snarl')  # an eye task and a cheek task


@pytest.fixture(scope='module')
def session_video(tmp_path_factory):
    path = tmp_path_factory.mktemp('session') / 'session.avi'
    write_session_video(path, load_protocol(), LEAD_IN, FROZEN)
    return path


@pytest.fixture(scope='module')
def live_session(session_video, tmp_path_factory):
    """The default protocol run live over the generated recording: (output folder, command result)."""
    output = tmp_path_factory.mktemp('live') / 'visit1'
    result = facesym('session', '--source', session_video, '--frame-rate', 30, '--subject', 'P-0042',
                     '--session', 'S-1', '--output', output, '--lead-in', LEAD_IN, timeout=600)
    return output, result


def _regions(task: dict) -> dict:
    return task['score']['regions']


def test_every_task_of_the_default_protocol_is_scored_live_with_its_task_name(live_session):
    output, result = live_session
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((output / 'report.json').read_text())
    protocol = load_protocol()
    assert report['status'] == 'complete' and report['not_done'] == []
    assert [task['name'] for task in report['tasks']] == [task.name for task in protocol.tasks]
    for task, planned in zip(report['tasks'], protocol.tasks, strict=True):
        score = task['score']
        assert (score['task'], score['session_id'], score['subject_id']) == (task['name'], 'S-1', 'P-0042')
        assert score['trial_id'].startswith(task['name'] + '-')
        assert task['status'] == 'done'
        # the trial holds the task's planned span of frames, whatever the nodes' lag was
        assert abs(score['frames'] - planned.duration * 30) <= 1, (task['name'], score['frames'])
        assert 'dropped_frames' not in score['quality']['flags']
    by_name = {task['name']: task for task in report['tasks']}

    def primary_ss(name: str, region: str) -> float:
        return _regions(by_name[name])[region]['symmetry']

    # the frozen tasks score lower in their primary region than the tasks of the same region that were not
    assert primary_ss('close_eyes_tightly', 'eye') < primary_ss('close_eyes_gently', 'eye') - 0.05
    assert primary_ss('snarl', 'cheek') < primary_ss('smile', 'cheek') - 0.05
    assert primary_ss('snarl', 'cheek') < primary_ss('pucker', 'cheek') - 0.05
    assert 'live scores and the bag scored again differ' not in result.stderr


def test_the_live_report_renders_in_chromium_with_every_task_score(live_session, tmp_path):
    output, _ = live_session
    page = output / 'report.html'
    shot = tmp_path / 'session-report.png'
    chromium(f'--screenshot={shot}', '--window-size=1100,2400', page.as_uri(), tmp=tmp_path)
    image = cv2.imread(str(shot))
    assert image is not None and float(image.astype(float).std()) > 20  # not blank
    dom = chromium('--dump-dom', page.as_uri(), tmp=tmp_path).stdout
    assert 'P-0042' in dom and 'Partial session' not in dom
    assert dom.count('data:image/png;base64,') == 3 * 7 + 2  # heat map, key frame, plot per task; summary; map
    for task in json.loads((output / 'report.json').read_text())['tasks']:
        row = dom.split(f'<tr id="task-{task["name"]}">')[1].split('</tr>')[0]
        for region in task['primary']:
            value = task['regions'][region]['symmetry']['value']
            assert (f'{value:.3f}' if value is not None else 'n/a') in row, (task['name'], region)


def test_the_session_bag_holds_what_is_needed_to_redo_it(live_session):
    output, _ = live_session
    store = typestore()
    with open_bag(output / 'session_bag') as bag:
        names = {topic.name.rsplit('/', 1)[-1]: topic for topic in bag.topics.values()}
        assert {'image_raw', 'trial_events', 'prompt', 'session_info', 'score'} <= set(names)

        def messages(topic: str) -> list:
            msgtype = names[topic].msgtype
            return [store.deserialize_cdr(bytes(m.data), msgtype) for m in bag.messages([names[topic].name])]

        records = [SessionRecord.from_json(msg.data, 'bag') for msg in messages('session_info')]
        prompts = messages('prompt')
        starts = [event for event in messages('trial_events') if event.event == 0]
    assert records[-1].status == 'complete' and records[-1].subject_id == 'P-0042'
    assert records[-1].protocol_text == read_protocol_text()[0]
    assert [event.task for event in starts] == [task.name for task in load_protocol().tasks]
    states = [prompt.state for prompt in prompts]
    assert states.count(0) == states.count(1) == 7 and states[-1] == 2  # get ready, go; done at the end


def test_the_bag_scored_again_equals_the_live_report(live_session, tmp_path):
    output, _ = live_session
    again = tmp_path / 'again'
    facesym('session', '--from-bag', output / 'session_bag', '--output', again, '--pdf', check=True, timeout=600)
    assert (again / 'report.pdf').read_bytes().startswith(b'%PDF-')  # `facesym session --pdf`
    live = json.loads((output / 'report.json').read_text())
    rescored = json.loads((again / 'report.json').read_text())
    assert (rescored['subject_id'], rescored['session_id'], rescored['status']) == ('P-0042', 'S-1', 'complete')
    assert len(rescored['tasks']) == len(live['tasks']) == 7
    for mine, theirs in zip(live['tasks'], rescored['tasks'], strict=True):
        assert (mine['name'], mine['score']['frames']) == (theirs['name'], theirs['score']['frames'])
        for region, values in _regions(mine).items():
            for key in ('vs_left', 'vs_right', 'symmetry'):
                assert values[key] == pytest.approx(_regions(theirs)[region][key], abs=1e-6), (mine['name'], region)
    index = live['summary']['facesym_index']['value']
    assert index == pytest.approx(rescored['summary']['facesym_index']['value'], abs=1e-6)


def test_a_session_interrupted_mid_task_leaves_a_bag_and_a_partial_report(session_video, tmp_path):
    """An operator who keeps pressing Ctrl-C: the first ends the session; the later ones come in its last waits,
    while its scores are gathered and while the report is written. Status 130, no stack, and everything kept."""
    output = tmp_path / 'cut'
    process = subprocess.Popen(
        [sys.executable, '-m', 'facesym_ros.cli', 'session', '--source', str(session_video), '--frame-rate', '30',
         '--subject', 'P-0042', '--session', 'S-2', '--output', str(output), '--lead-in', str(LEAD_IN)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if line.strip().startswith('close_eyes_gently: trial'):  # its START is sent: 1 s to its first frame
                break
        time.sleep(2.5)  # into the 4 s task
        signals, deadline = 0, time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            process.send_signal(signal.SIGINT)
            signals += 1
            time.sleep(0.05)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    # 130, or killed by a last SIGINT once Python, exiting, has given its default back: a shell says 130 for both
    assert process.returncode in (130, -signal.SIGINT), ''.join(lines) + out + err[-3000:]
    assert 'Traceback' not in err and 'stopped by the operator' in err, err[-3000:]
    assert signals > 5, signals  # the later ones did come
    report = json.loads((output / 'report.json').read_text())
    assert report['status'] == 'interrupted'
    statuses = {task['name']: task['status'] for task in report['tasks']}
    assert statuses == {'rest': 'done', 'raise_brows': 'done', 'close_eyes_gently': 'interrupted'}
    assert report['not_done'] == ['close_eyes_tightly', 'smile', 'snarl', 'pucker']
    cut = report['tasks'][2]['score']
    assert 0 < cut['frames'] < 4 * 30
    # the summary covers the tasks done in full only: no eye task was, so the eye has no mean
    assert report['summary']['regions']['eye']['value'] is None
    page = (output / 'report.html').read_text()
    assert 'Partial session' in page and 'not done: the session ended before it' in page
    with open_bag(output / 'session_bag') as bag:
        assert not bag.problems
        images = [t.name for t in bag.topics.values() if t.name.endswith('image_raw')]
        assert sum(1 for _ in bag.messages(images)) > (LEAD_IN + 5 + LEAD_IN + 4) * 30
        info = [t.name for t in bag.topics.values() if t.name.endswith('session_info')]
        last = list(bag.messages(info))[-1]
        events = [t.name for t in bag.topics.values() if t.name.endswith('trial_events')]
        assert sum(1 for _ in bag.messages(events)) == 6  # each of the 3 trials' START and STOP
    record = SessionRecord.from_json(typestore().deserialize_cdr(bytes(last.data), 'std_msgs/msg/String').data, 'bag')
    assert (record.status, record.interrupted_task) == ('interrupted', 'close_eyes_gently')
    again = facesym('session', '--from-bag', output / 'session_bag', '--output', tmp_path / 'again', timeout=600)
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / 'again' / 'report.json').read_text())['status'] == 'interrupted'


def test_session_input_errors_are_one_line_with_status_2(tmp_path, session_video):
    cases = [
        (['--subject', 'P-1', '--lead-in', '0.5'], '--lead-in must be at least'),
        (['--lead-in', '3'], 'needs --subject'),
        (['--from-bag', tmp_path / 'nothing'], 'nothing'),
        (['--from-bag', tmp_path, '--subject', 'P-1'], 'leave out --subject'),
    ]
    for arguments, message in cases:
        result = facesym('session', '--output', tmp_path / 'out', *arguments)
        assert result.returncode == 2, (arguments, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (arguments, result.stderr)


def test_the_banner_tells_the_patient_what_to_do_by_the_frame_stamp():
    start = seconds_to_ns(100.0)
    prompt = {'task': 'smile', 'instruction': 'Give a big smile.', 'task_number': 5, 'task_count': 7,
              'start_ns': start, 'duration': 4.0}
    assert banner_text(start - seconds_to_ns(1.5), state=0, **prompt) == \
        'Next, 5/7 smile: Give a big smile. (starts in 2 s)'
    assert banner_text(start + seconds_to_ns(1.2), state=1, **prompt) == '5/7 smile: Give a big smile. (3 s left)'
    assert banner_text(start + seconds_to_ns(4.5), state=1, **prompt) == '5/7 smile: done, relax'
    done = {**prompt, 'instruction': 'Session finished.'}
    assert banner_text(start + seconds_to_ns(1), state=2, **done) == 'Session finished.'
    assert banner_text(start + seconds_to_ns(60), state=2, **done) == ''
    image = np.full((480, 640, 3), 200, np.uint8)
    draw_banner(image, 'Give a big smile with your mouth open, showing your teeth, as wide as you can.')
    assert (image[:380] == 200).all() and image[-40:].mean() < 120  # drawn along the bottom only


SHORT_PROTOCOL = """
tasks:
  - name: rest
    instruction: Keep still.
    duration: 2
    primary: [forehead, eye, cheek]
    baseline: true
  - name: smile
    instruction: Smile.
    duration: 2
    primary: [cheek]
"""


def test_a_camera_that_stops_ends_the_session_with_a_partial_report_and_status_2(tmp_path):
    """Unrecorded (--no-record), with a protocol of its own, and a recording that ends during the second task."""
    protocol_file = tmp_path / 'short.yaml'
    protocol_file.write_text(SHORT_PROTOCOL)
    video = tmp_path / 'first_task_only.avi'
    first_only = tmp_path / 'first.yaml'
    first_only.write_text(SHORT_PROTOCOL.split('  - name: smile', maxsplit=1)[0])
    write_session_video(video, load_protocol(first_only), LEAD_IN, tail=LEAD_IN + 0.5)
    output = tmp_path / 'out'
    result = facesym('session', '--source', video, '--frame-rate', 30, '--subject', 'P-7', '--output', output,
                     '--protocol', protocol_file, '--lead-in', LEAD_IN, '--no-record', timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert 'no frame for 10 s' in last and 'partial report' in last
    assert not (output / 'session_bag').exists()
    report = json.loads((output / 'report.json').read_text())
    assert (report['status'], report['protocol']) == ('interrupted', str(protocol_file))
    statuses = {task['name']: task['status'] for task in report['tasks']}
    assert statuses['rest'] == 'done' and statuses.get('smile', 'not done') != 'done'
    rest = report['tasks'][0]
    assert rest['score']['frames'] == pytest.approx(60, abs=1) and rest['score']['task'] == 'rest'
    page = (output / 'report.html').read_text()
    assert 'no heat map' in page and 'Partial session' in page


# -- 8. sessions one after another on one running graph ------------------------------------------------------------

OWN_RATE = 5.0
OWN_PROTOCOL = '''tasks:
  - name: rest
    instruction: Relax your face and look at the camera.
    duration: 1.5
    primary: [forehead, eye, cheek]
    baseline: true
  - name: smile
    instruction: Smile as widely as you can.
    duration: 1.5
    primary: [cheek]
'''


def _session(protocol, output, session_id: str, interrupt_after: tuple[str, float] | None = None):
    """`facesym session` against the running graph; interrupt_after (task, s): Ctrl-C that long after the task's
    START was sent (it takes effect 1 s after). Returns (exit status, stdout lines, stderr)."""
    process = subprocess.Popen(
        [sys.executable, '-m', 'facesym_ros.cli', 'session', '--subject', 'P-7', '--session', session_id,
         '--output', str(output), '--lead-in', '1.5', '--protocol', str(protocol)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        if interrupt_after is not None:
            task, delay = interrupt_after
            for line in process.stdout:
                lines.append(line)
                if line.strip().startswith(f'{task}: trial'):
                    time.sleep(delay)
                    process.send_signal(signal.SIGINT)
                    break
        out, err = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, lines + out.splitlines(keepends=True), err


def _bag_events(bag_path) -> tuple[list, list]:
    """(trial events, final scores) the session bag holds."""
    store = typestore()
    with open_bag(bag_path) as bag:
        def messages(name: str) -> list:
            topics = [t for t in bag.topics.values() if t.name.rsplit('/', 1)[-1] == name]
            return [store.deserialize_cdr(bytes(m.data), topics[0].msgtype)
                    for m in bag.messages([t.name for t in topics])] if topics else []

        return messages('trial_events'), messages('score')


INTERRUPTS = {'A': ('rest', 0.1), 'B': ('smile', 0.6), 'C': ('rest', 0.9), 'D': ('smile', 1.3), 'E': None}
"""Session id -> Ctrl-C that long after the task's START was sent (it takes effect 1 s after), or a whole one."""


def test_sessions_after_an_interrupted_one_on_the_same_graph_own_their_trials(live_graph, tmp_path):
    """Ctrl-C in the second between a task's START being sent and its taking effect (or just after it), four
    times, then a whole session, all on one graph: no session prints, records or rescores another's trial."""
    params = tmp_path / 'looping.yaml'
    params.write_text(default_params_file().read_text().replace('    loop: false', '    loop: true'))
    # 5 frames a second and no annotator: the chain keeps up on a loaded 2-core machine
    graph, client = live_graph(names=[name for name in NODE_NAMES if name != 'annotator'], params_file=params,
                               overrides={'image_source': {'frame_rate': str(OWN_RATE)}})
    graph.start()
    client.wait_for_graph(graph.specs)
    protocol = tmp_path / 'short.yaml'
    protocol.write_text(OWN_PROTOCOL)
    runs = {}
    for session_id, moment in INTERRUPTS.items():
        status, lines, err = _session(protocol, tmp_path / session_id, session_id, moment)
        assert status == (0 if moment is None else 130), ''.join(lines) + err[-3000:]
        assert not [line for line in err.splitlines() if 'Traceback' in line or 'FATAL' in line], err
        runs[session_id] = lines
        report = json.loads((tmp_path / session_id / 'report.json').read_text())
        events, scores = _bag_events(tmp_path / session_id / 'session_bag')
        # its bag holds its own trials only, each START with the STOP that closes it
        starts = [e for e in events if e.event == 0]
        assert starts and {e.session_id for e in starts} == {session_id}
        own = {e.trial_id for e in starts}
        assert {e.trial_id for e in events} == own and {e.trial_id for e in events if e.event == 1} == own
        assert {s.trial_id for s in scores} <= own
        # it prints only its own scores: none before its first trial began
        first = next(i for i, line in enumerate(lines) if ': trial ' in line and line.strip().endswith('begins'))
        assert not [line for line in lines[:first] if ' scored: ' in line], ''.join(lines)
        assert {task['score']['session_id'] for task in report['tasks']} <= {session_id}
        # rescored from its bag: the same trials, none built from frames after Ctrl-C or of another session
        again = facesym('session', '--from-bag', tmp_path / session_id / 'session_bag', '--output',
                        tmp_path / f'{session_id}-again', timeout=600)
        assert again.returncode == 0, again.stderr
        assert 'has no score' not in again.stderr and 'belongs to session' not in again.stderr, again.stderr
        rescored = {task['name']: task['score'] for task in
                    json.loads((tmp_path / f'{session_id}-again' / 'report.json').read_text())['tasks']}
        assert {name: score['trial_id'] for name, score in rescored.items()} == \
            {task['name']: task['score']['trial_id'] for task in report['tasks']}
        for task in report['tasks']:  # the same frames, where neither the chain nor the recorder fell behind
            flags = {*task['score']['quality']['flags'], *rescored[task['name']]['quality']['flags']}
            if not flags & {'incomplete', 'dropped_frames'}:
                assert rescored[task['name']]['frames'] == task['score']['frames'], task['name']
        if moment is None:  # 1.5 s tasks: every frame, unless the score says some were lost
            counts = {name: (score['frames'], score['quality']['flags']) for name, score in rescored.items()}
            assert all(abs(frames - 1.5 * OWN_RATE) <= 1 or (frames < 1.5 * OWN_RATE and {'incomplete',
                       'dropped_frames'} & set(flags)) for frames, flags in counts.values()), counts
        else:  # the interrupted task holds at most the frames up to Ctrl-C
            task, delay = moment
            assert rescored[task]['frames'] <= max(0.0, delay - 1.0) * OWN_RATE + 2, rescored[task]
        out = tmp_path / f'{session_id}.json'
        assert facesym('score-bag', tmp_path / session_id / 'session_bag', '--json', out, '--quiet').returncode == 0
        assert {trial['trial_id'] for trial in json.loads(out.read_text())['trials']} == own
    assert len([line for line in runs['E'] if ' scored: ' in line]) == 2  # E's two tasks, nothing else
