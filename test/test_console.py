"""`facesym console` in a real browser: a whole session of the default protocol, browser faults, security.

The console runs as its own process, bringing the graph up for each session on a generated recording laid out
as the session paces itself (helpers/session_video.py, as test_clinic_session.py uses); Debian's Chromium under
Playwright plays the operator and the patient.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import time
from pathlib import Path

import aiohttp
import pytest
from test_clinic_session import SHORT_PROTOCOL

from facesym_ros.clinic.protocol import default_protocol_file, load_protocol
from helpers.console import chromium_browser, running_console
from helpers.session_video import write_session_video

LEAD_IN = 2.0
RATE = 30
DOCS = Path(__file__).resolve().parent.parent / 'docs'
PACED = 'pucker'  # the task the operator paces in the end-to-end session


def _paced_protocol(folder: Path) -> Path:
    """The default protocol with its last task paced by the operator (the default has no operator-paced task)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = default_protocol_file().read_text()
    head, tail = text.split(f'  - name: {PACED}\n')
    lines = tail.splitlines(keepends=True)
    lines = ['    duration: operator\n' if line.startswith('    duration:') else line for line in lines]
    path = folder / 'default_operator_pucker.yaml'
    path.write_text(head + f'  - name: {PACED}\n' + ''.join(lines))
    assert load_protocol(path).task(PACED).operator_paced
    return path


def _state(page) -> dict:
    status, text = page.evaluate('() => fetch("/api/state").then(async (r) => [r.status, await r.text()])')
    assert status == 200, text
    return json.loads(text)


def _wait(condition, timeout: float, what: str, page=None, period: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(period)
    raise AssertionError(f'timed out waiting for {what}' + (f': {_state(page)}' if page is not None else ''))


@pytest.fixture(scope='module')
def session_video(tmp_path_factory):
    path = tmp_path_factory.mktemp('console-video') / 'session.avi'
    write_session_video(path, load_protocol(), LEAD_IN)
    return path


def test_a_whole_session_in_the_browser_with_the_patient_page(session_video, tmp_path):
    protocols = _paced_protocol(tmp_path / 'protocols').parent
    output = tmp_path / 'sessions'
    protocol = load_protocol(protocols / 'default_operator_pucker.yaml')
    instructions = [task.instruction for task in protocol.tasks]
    with running_console(output, '--source', session_video, '--frame-rate', RATE, '--lead-in', LEAD_IN,
                         '--protocols', protocols) as console, chromium_browser() as browser:
        operator = browser.new_page(viewport={'width': 1280, 'height': 1000})
        patient = browser.new_page(viewport={'width': 1280, 'height': 720})
        requested: list[str] = []
        for page in (operator, patient):
            page.on('request', lambda request: requested.append(request.url))
        operator.goto(console.url + '/')
        patient.goto(console.url + '/patient')
        operator.wait_for_selector('#control-text:has-text("hold control")')
        operator.fill('#subject', 'P-0042')
        operator.fill('#session', 'S-1')
        operator.select_option('#protocol', 'default_operator_pucker')
        operator.click('#start')
        operator.wait_for_selector('#now:not([hidden])', timeout=120_000)
        seen: list[str] = []
        shots = False
        pressed = {'start': 0.0, 'running': 0.0, 'stop': 0.0}
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            text = patient.inner_text('#instruction')
            if text in instructions and (not seen or seen[-1] != text):
                seen.append(text)
            state = _state(operator)
            session = state['session']
            if not state['running'] and session['status'] != 'running':
                break
            waiting = session['waiting_for']
            if waiting == 'start' and not pressed['start']:
                operator.click('#go')
                pressed['start'] = time.monotonic()
            elif waiting == 'stop' and not pressed['stop'] and not pressed['running']:
                pressed['running'] = time.monotonic()  # the scorer took the start: the trial runs from here
            elif waiting == 'stop' and not pressed['stop'] and time.monotonic() - pressed['running'] > 2.0:
                assert operator.inner_text('#go') == 'Stop task'
                operator.click('#go')
                pressed['stop'] = time.monotonic()
            running = [task for task in session['tasks'] if task['state'] == 'running']
            if not shots and running and running[0]['name'] not in ('rest', 'raise_brows'):  # scores to show
                operator.wait_for_function('window.facesymVideo.annotated.frames > 10')
                patient.wait_for_function('window.facesymVideo.camera.frames > 10')
                assert operator.locator('li[data-check="face"].ok').count() == 1, state['readiness']
                operator.screenshot(path=tmp_path / 'console-operator.png', full_page=True)
                patient.screenshot(path=tmp_path / 'console-patient.png')
                patient_text = patient.inner_text('body')
                assert 'P-0042' not in patient_text and 'S-1' not in patient_text and 'SS' not in patient_text
                shots = True
            time.sleep(0.25)
        assert pressed['start'] and pressed['stop'] and shots, (pressed, shots, console.log[-3000:])
        assert seen == instructions, seen  # the patient's instruction followed the tasks, in order
        _wait(lambda: _state(operator)['session']['status'] != 'running', 600, 'the report', operator)
        session = _state(operator)['session']
        operator.wait_for_selector('#after:not([hidden])')
        assert session['status'] == 'complete', (session['reason'], session['log'])
        report = json.loads((output / 'P-0042' / 'S-1' / 'report.json').read_text())
        assert report['status'] == 'complete' and [t['name'] for t in report['tasks']] == [t.name for t in
                                                                                             protocol.tasks]
        for task in report['tasks']:  # (the frames each trial holds: the fault test, and bench/bench_console.py)
            row = operator.locator(f'tr[data-task="{task["name"]}"]')
            assert row.locator('td.state').inner_text() == 'done'
            for region, values in task['score']['regions'].items():
                shown = row.locator(f'td.final span.ss[data-region="{region}"] b.value').inner_text()
                expected = 'n/a' if values['symmetry'] is None else f'{values["symmetry"]:.3f}'
                assert shown == expected, (task['name'], region, shown, expected)
        paced = report['tasks'][-1]['score']['frames']
        assert paced >= 30, paced  # 2 s from the trial's start, taken after the last task's stop, to the stop press
        # the report in the page, and opened on its own
        frame = operator.frame_locator('#report')
        assert 'P-0042' in frame.locator('body').inner_text(timeout=30_000)
        with operator.expect_popup() as popup:
            operator.click('#open-report')
        page = popup.value
        page.wait_for_load_state()
        assert 'P-0042' in page.inner_text('body') and page.url.endswith('/files/P-0042/S-1/report.html')
        assert operator.locator('#history tr[data-session="S-1"]').count() == 1
    # the pages loaded nothing from elsewhere: every script and style is the console's own
    assert requested and all(url.startswith((console.url, 'blob:', 'data:')) for url in requested), requested
    for name in ('console-operator.png', 'console-patient.png'):
        assert (tmp_path / name).stat().st_size > 10_000
        if os.environ.get('FACESYM_UPDATE_DOCS') == '1':  # the README's pictures, on demand only
            shutil.copyfile(tmp_path / name, DOCS / name)


SHORT = SHORT_PROTOCOL + """  - name: pucker
    instruction: Pucker your lips.
    duration: 2
    primary: [cheek]
"""


def test_reloading_and_closing_the_page_never_stop_a_session_and_skip_and_pause_do_what_they_say(tmp_path):
    protocols = tmp_path / 'protocols'
    protocols.mkdir()
    (protocols / 'short.yaml').write_text(SHORT)
    protocol = load_protocol(protocols / 'short.yaml')
    video = tmp_path / 'short.avi'
    write_session_video(video, protocol, LEAD_IN, tail=30.0)  # room for the pause
    output = tmp_path / 'sessions'
    with running_console(output, '--source', video, '--frame-rate', RATE, '--lead-in', LEAD_IN,
                         '--protocols', protocols, '--no-record') as console, chromium_browser() as browser:
        first = browser.new_context().new_page()
        first.goto(console.url + '/?video=off')  # the video has its own test; this one is about the session
        first.wait_for_selector('#control-text:has-text("hold control")')
        first.fill('#subject', 'P-7')
        first.fill('#session', 'S-faults')
        first.select_option('#protocol', 'short')
        first.click('#start')

        def states(page) -> dict[str, str]:
            return {task['name']: task['state'] for task in _state(page)['session']['tasks']}

        _wait(lambda: states(first).get('rest') == 'running', 120, 'rest to run', first)
        first.reload()  # mid-task: the page shows the session at once, and it goes on
        first.wait_for_selector('tr[data-task="rest"].state-running, tr[data-task="rest"].state-done')
        assert 'P-7' in first.inner_text('#session-title')
        second = browser.new_context().new_page()  # a second operator page watches; the first holds control
        second.goto(console.url + '/?video=off')
        second.wait_for_selector('#control-text:has-text("held by")')
        refused = second.evaluate('''() => fetch("/api/skip", {method: "POST", headers: {"Content-Type":
            "application/json"}, body: JSON.stringify({client: sessionStorage.getItem("facesym-client")})})
            .then((r) => r.status)''')
        assert refused == 409
        _wait(lambda: states(second).get('smile') in ('running', 'done'), 60, 'smile to run', second)
        assert states(second)['pucker'] == 'waiting'
        first.click('#pause')  # a running task ends at its planned stop; the session waits before pucker
        first.context.close()  # the page that held control is gone mid-task
        _wait(lambda: _state(second)['prompt']['phase'] == 'relax', 30, 'the pause before pucker')
        time.sleep(1.0)
        assert _state(second)['session']['tasks'][2]['state'] == 'waiting'
        second.click('#take-control')
        second.wait_for_selector('#control-text:has-text("hold control")')
        second.click('#pause')  # resume: pucker gets a whole lead-in, then skip it before it starts
        _wait(lambda: _state(second)['prompt']['task'] == 'pucker', 30, 'pucker to be prompted')
        second.click('#skip')
        _wait(lambda: not _state(second)['running'], 120, 'the session to end')
        session = _state(second)['session']
        assert session['status'] == 'complete', session
    report = json.loads((output / 'P-7' / 'S-faults' / 'report.json').read_text())
    statuses = {task['name']: task['status'] for task in report['tasks']}
    assert statuses == {'rest': 'done', 'smile': 'done'} and report['not_done'] == ['pucker'], report['not_done']
    for task in report['tasks']:  # the reload, the closed page and the pause cost no frame
        assert task['score']['frames'] == pytest.approx(2 * RATE, abs=1), (task['score'], '\n'.join(session['log']))
        assert 'dropped_frames' not in task['score']['quality']['flags']


async def _probe(url: str, token: str) -> dict:
    """What a client without the token, from another site, or with a path out of the root gets."""
    origin = url
    results = {}
    async with aiohttp.ClientSession() as client:
        for path in ('/', '/patient', '/api/state', '/static/operator.js', '/files/P-1/S-1/report.html'):
            async with client.get(url + path) as response:
                results[path] = (response.status, await response.text())
        for path in ('/ws/operator', '/ws/patient', '/ws/video/annotated'):
            try:
                async with client.ws_connect(url + path, origin=origin):
                    results[path] = 'open'
            except aiohttp.WSServerHandshakeError as error:
                results[path] = error.status
        async with client.ws_connect(f'{url}/ws/operator?token={token}', origin=origin) as socket:
            results['ws with token'] = sorted(json.loads((await socket.receive()).data))
        try:
            async with client.ws_connect(f'{url}/ws/operator?token={token}', origin='http://evil.example'):
                results['ws cross-origin'] = 'open'
        except aiohttp.WSServerHandshakeError as error:
            results['ws cross-origin'] = error.status
        headers = {'X-Facesym-Token': token, 'Content-Type': 'application/json'}
        body = json.dumps({'client': 'c1'})
        async with client.post(url + '/api/control', data=body, headers={**headers, 'Origin': 'http://evil.example'}
                               ) as response:
            results['post cross-origin'] = response.status
        async with client.post(url + '/api/control', data=body, headers={
                'Content-Type': 'application/json', 'Origin': origin, 'Cookie': f'facesym_token={token}'}) as response:
            results['post cookie only'] = response.status
        async with client.post(url + '/api/control', data=body, headers={**headers, 'Origin': origin}) as response:
            results['post same origin'] = response.status
        for path in ('/files/%2e%2e/%2e%2e/etc/passwd', '/files/P-1/%2e%2e/%2e%2e/%2e%2e/etc/hostname',
                     '/files/P-1/S-1/..%2f..%2f..%2fetc%2fpasswd', '/files/.console-token'):
            async with client.get(f'{url}{path}?token={token}') as response:
                results[path] = (response.status, await response.text())
        async with client.get(f'{url}/files/P-1/S-1/report.html?token={token}') as response:
            results['report with token'] = response.status
        async with client.get(f'{url}/?token={token}') as response:
            results['page with token'] = (response.status, response.headers.get('Content-Security-Policy', ''))
    return results


def test_off_localhost_every_request_needs_the_token_and_changes_need_the_origin(tmp_path):
    output = tmp_path / 'sessions'
    left = output / 'P-1' / 'S-1'  # a session a console stopped during: listed as interrupted at the next start
    left.mkdir(parents=True)
    (left / 'console.json').write_text(json.dumps({'subject': 'P-1', 'session': 'S-1', 'status': 'running',
                                                   'date': '2026-11-30'}))
    (left / 'report.html').write_text('<html><body>report of P-1</body></html>')
    with running_console(output, '--host', '127.0.0.2') as console:
        token_file = output / '.console-token'
        token = token_file.read_text().strip()
        assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
        assert console.log.count(token) == 1  # printed once
        results = asyncio.run(_probe(console.url, token))
    for path in ('/', '/patient', '/api/state', '/static/operator.js', '/files/P-1/S-1/report.html'):
        status, text = results[path]
        assert status == 401 and 'P-1' not in text and '<' not in text, (path, results[path])
    assert results['/ws/operator'] == results['/ws/patient'] == results['/ws/video/annotated'] == 401
    assert 'sessions' in results['ws with token'] and results['ws cross-origin'] == 403
    assert results['post cross-origin'] == 403 and results['post cookie only'] == 403
    assert results['post same origin'] == 200
    for path in ('/files/%2e%2e/%2e%2e/etc/passwd', '/files/P-1/%2e%2e/%2e%2e/%2e%2e/etc/hostname',
                 '/files/P-1/S-1/..%2f..%2f..%2fetc%2fpasswd', '/files/.console-token'):
        status, text = results[path]
        assert status in (403, 404) and 'root:' not in text and token not in text, (path, results[path])
    assert results['report with token'] == 200
    status, policy = results['page with token']
    assert status == 200 and "default-src 'self'" in policy
    note = json.loads((left / 'console.json').read_text())
    assert note['status'] == 'interrupted' and 'console stopped' in note['reason']
    with running_console(output, '--host', '127.0.0.2') as again:  # a restart: the token is not printed again
        assert token not in again.log and str(token_file) in again.log
