"""The console's web server (aiohttp): the operator page `/`, the patient page `/patient`, their WebSockets.

Security (the pages show faces and subject ids):

- bound to localhost (127.0.0.1, ::1, localhost) no login is needed; bound to any other address every HTTP
  request and WebSocket needs the token (query `token=`, which also sets a cookie, the cookie, or the
  X-Facesym-Token header). It is made at first start, kept in OUTPUT/.console-token with mode 0600 and
  printed once. A request without it gets 401 and no data;
- a state change is a POST whose Origin is this server's, with the token in X-Facesym-Token when one is
  needed (a cookie alone, which a browser sends to any site's form, is not enough); WebSockets check Origin too;
- files are served only from the output root: a path that resolves outside it is refused;
- the pages load nothing from elsewhere: every script and style is in facesym_ros/console/static, and the
  Content-Security-Policy allows only this server.

State lives here, not in the browser: a page that reloads or closes changes nothing; a page opened mid-session
gets the whole state in its first message. Of the operator pages, one holds control (the first to come, or
the one that takes it); the others see who does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import json
import os
import secrets
import signal
import sys
import time
from pathlib import Path

from aiohttp import WSMsgType, web

from facesym_ros.clinic.protocol import load_protocol
from facesym_ros.clinic.session_record import DONE, NOT_DONE, TASK_INTERRUPTED
from facesym_ros.config.node_settings import ConsoleSettings

STATIC = Path(__file__).with_name('static')
LOCAL_HOSTS = {'127.0.0.1', '::1', 'localhost'}
TOKEN_FILE = '.console-token'
COOKIE = 'facesym_token'
HEADER = 'X-Facesym-Token'
STATE_PERIOD = 0.2  # s between state messages to a page (sent only when the state changed)
SESSIONS_PERIOD = 2.0  # s between readings of the sessions on disk
CONTROL_GRACE = 5.0  # s a holder's page may be gone (a reload) before control is free
PAGES = {'/': 'operator.html', '/patient': 'patient.html'}
STATIC_FILES = {'console.css', 'operator.js', 'patient.js', 'video.js'}
CSP = ("default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; frame-src 'self'; "
       "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'")
NAMES = ('amber', 'blue', 'green', 'violet', 'orange', 'teal', 'red', 'grey')


def load_or_make_token(root: Path, out=sys.stderr) -> str:
    """The console's token: made at first start (mode 0600) and printed that once; read from its file after."""
    path = root / TOKEN_FILE
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        descriptor = None
    if descriptor is None:
        if path.stat().st_mode & 0o077:
            raise ValueError(f'{path} can be read by others (mode {path.stat().st_mode & 0o777:o}): '
                             f'chmod 600 it, or delete it for a new token')
        token = path.read_text().strip()
        if len(token) < 16:
            raise ValueError(f'{path}: not a console token; delete it for a new one')
        print(f'facesym console: the token is in {path}', file=out, flush=True)
        return token
    token = secrets.token_urlsafe(24)
    with os.fdopen(descriptor, 'w') as file:
        file.write(token + '\n')
    print(f'facesym console: token (printed this once; kept in {path}, mode 0600): {token}', file=out, flush=True)
    return token


class FrameHub:
    """The newest frame of one video stream, for every page that shows it (a slow page skips frames)."""

    def __init__(self, tap) -> None:
        self.tap = tap  # the node's VideoTap: its watchers switch the subscription on and off
        self.frame = b''
        self.clients: set[asyncio.Event] = set()

    def publish(self, payload: bytes) -> None:
        self.frame = payload
        for event in self.clients:
            event.set()


class Console:
    """The server's state: the node (the graph's view), the session manager, who holds control."""

    def __init__(self, node, manager, settings, token: str | None) -> None:
        self.node = node
        self.manager = manager
        self.settings = settings
        self.token = token
        self.holder: str | None = None
        self.holder_gone_at: float | None = None
        self.clients: dict[str, str] = {}  # client id -> its name, for "held by"
        self.connected: dict[str, int] = {}  # client id -> open operator sockets
        self._names = itertools.cycle(NAMES)
        self.hubs: dict[str, FrameHub] = {'annotated': FrameHub(node.annotated), 'camera': FrameHub(node.camera)}
        self.protocol_rows = self.protocols()  # the protocol files it knows, read once
        self._sessions: list[dict] = []
        self._sessions_key: tuple | None = None
        self._sessions_at = 0.0

    # -- who may do what ----------------------------------------------------------------------------------------

    def authorised(self, request: web.Request) -> bool:
        if self.token is None:
            return True
        given = (request.query.get('token') or request.headers.get(HEADER) or request.cookies.get(COOKIE) or '')
        return hmac.compare_digest(given.encode(), self.token.encode())

    def same_origin(self, request: web.Request) -> bool:
        origin = request.headers.get('Origin')
        return origin is not None and origin == f'{request.scheme}://{request.host}'

    def name_of(self, client: str) -> str:
        if client not in self.clients:
            self.clients[client] = f'operator page {next(self._names)}'
        return self.clients[client]

    def holder_now(self) -> str | None:
        if self.holder is not None and self.holder_gone_at is not None \
                and time.monotonic() - self.holder_gone_at > CONTROL_GRACE:
            self.holder = self.holder_gone_at = None
        return self.holder

    # -- what the pages see -------------------------------------------------------------------------------------

    def protocols(self) -> list[dict]:
        rows = []
        for name, path in self.manager.protocols().items():
            try:
                protocol = load_protocol(path)
            except ValueError as error:
                rows.append({'name': name, 'error': str(error), 'tasks': []})
                continue
            rows.append({'name': name, 'tasks': [
                {'name': task.name, 'instruction': task.instruction,
                 'duration': 0 if task.operator_paced else task.duration} for task in protocol.tasks]})
        return rows

    def tasks(self, job) -> list[dict]:
        finals, running = self.node.scores()
        rows = []
        for run in job.control.runs:
            state = {NOT_DONE: 'waiting', TASK_INTERRUPTED: 'running', DONE: 'done'}[run.status]
            if run.status == TASK_INTERRUPTED and run.stopped:
                state = 'interrupted'
            later = job.control.runs[job.control.runs.index(run) + 1:]
            if run.status == NOT_DONE and (job.status != 'running' or any(other.started for other in later)):
                state = 'not done'
            rows.append({'name': run.task.name, 'instruction': run.task.instruction,
                         'duration': 0 if run.task.operator_paced else run.task.duration, 'state': state,
                         'trial_id': run.trial_id if run.started else '',
                         'final': finals.get(run.trial_id) if run.started else None,
                         'running': running.get(run.trial_id) if run.started else None})
        return rows

    def sessions(self) -> list[dict]:
        """The sessions on disk, read again at most every SESSIONS_PERIOD (or when a session begins or ends)."""
        key = (self.manager.job.status if self.manager.job else None, self.manager.running)
        if key != self._sessions_key or time.monotonic() - self._sessions_at > SESSIONS_PERIOD:
            self._sessions, self._sessions_key, self._sessions_at = self.manager.sessions(), key, time.monotonic()
        return self._sessions

    def operator_state(self, client: str) -> dict:
        job = self.manager.job
        holder = self.holder_now()
        session = None
        if job is not None:
            session = {'subject': job.subject, 'session': job.session, 'protocol': job.protocol_name,
                       'folder': str(job.folder), 'path': job.folder.relative_to(self.manager.root).as_posix(),
                       'status': job.status, 'reason': job.reason, 'report': job.report, 'log': list(job.log),
                       'waiting_for': job.control.waiting_for, 'paused': job.control.paused,
                       'tasks': self.tasks(job)}
        subject = job.subject if job is not None else None
        sessions = self.sessions()
        return {
            'running': self.manager.running, 'session': session, 'prompt': self.node.prompt_view(),
            'readiness': [check.to_json() for check in self.node.readiness.checks()],
            'control': {'holder': self.clients.get(holder) if holder else None, 'you': holder == client,
                        'name': self.name_of(client)},
            'sessions': sessions,
            'history': [row for row in sessions if subject and row['subject'] == subject],
            'output': str(self.manager.root), 'lead_in': self.settings.lead_in, 'protocols': self.protocol_rows,
        }

    def patient_state(self) -> dict:
        """What the patient may read: the instruction, the countdown, the phase; no score, no id."""
        prompt = self.node.prompt_view()
        running = self.manager.running
        if prompt is None or (not running and prompt['state'] != 'done'):
            view = {'phase': 'idle', 'instruction': '', 'countdown': '', 'number': 0, 'count': 0}
        else:
            view = {key: prompt[key] for key in ('phase', 'instruction', 'countdown', 'number', 'count')}
            if prompt['phase'] == 'relax' and not view['instruction']:
                view['instruction'] = 'Relax.'
        return {**view, 'mirror': self.node.settings(ConsoleSettings).mirror}


# -- handlers -------------------------------------------------------------------------------------------------

def _console(request: web.Request) -> Console:
    return request.app['console']


@web.middleware
async def guard(request: web.Request, handler):
    console = _console(request)
    if not console.authorised(request):
        return web.Response(status=401, text='401: this console needs its token (see docs/console.md)\n',
                            headers={'WWW-Authenticate': 'Bearer'})
    if request.method not in ('GET', 'HEAD') and not (console.same_origin(request) and (
            console.token is None or hmac.compare_digest(request.headers.get(HEADER, '').encode(),
                                                         console.token.encode()))):
        return web.json_response({'error': 'refused: a change needs this page\'s origin and token'}, status=403)
    response = await handler(request)
    response.headers.setdefault('Content-Security-Policy', CSP)
    response.headers['X-Content-Type-Options'] = 'nosniff'
    response.headers['Referrer-Policy'] = 'no-referrer'
    response.headers['Cache-Control'] = 'no-store'
    if console.token is not None and request.query.get('token'):
        response.set_cookie(COOKIE, console.token, httponly=True, samesite='Strict')
    return response


async def page(request: web.Request) -> web.Response:
    console = _console(request)
    text = (STATIC / PAGES[request.path]).read_text().replace('{{TOKEN}}', console.token or '')
    return web.Response(text=text, content_type='text/html')


async def static_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info['name']
    if name not in STATIC_FILES:
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC / name)


def served_path(root: Path, relative: str) -> Path | None:
    """The file under the (resolved) root that a /files/ path names, or None for a path that leaves the root,
    climbs with '..', or names a hidden file (the token) or anything in a hidden folder."""
    parts = Path(relative).parts
    if not parts or Path(relative).is_absolute() or any(part == '..' or part.startswith('.') for part in parts):
        return None
    target = (root / relative).resolve()
    return target if target.is_relative_to(root) and target != root else None


async def output_file(request: web.Request) -> web.StreamResponse:
    target = served_path(_console(request).manager.root, request.match_info['path'])
    if target is None:
        return web.Response(status=403, text='403: only files of the session folder are served\n')
    if not target.is_file():
        raise web.HTTPNotFound()
    response = web.FileResponse(target)
    # a report is self-contained (inline style, data: images); it may run nothing
    response.headers['Content-Security-Policy'] = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    return response


async def api_state(request: web.Request) -> web.Response:
    return web.json_response(_console(request).operator_state(request.query.get('client', '')))


async def _body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text='a JSON body is needed') from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='a JSON object is needed')
    return body


async def api_action(request: web.Request) -> web.Response:
    console = _console(request)
    body = await _body(request)
    action = request.match_info['action']
    client = str(body.get('client', ''))
    if not client:
        return web.json_response({'error': 'no client id'}, status=400)
    console.name_of(client)
    holder = console.holder_now()
    if action == 'control':
        if body.get('release') and holder == client:
            console.holder = None
        elif not body.get('release'):
            console.holder, console.holder_gone_at = client, None
        return web.json_response({'ok': True})
    if holder != client:
        held = console.clients.get(holder, 'nobody') if holder else 'nobody'
        return web.json_response({'error': f'control is held by {held}: take control first'}, status=409)
    manager = console.manager
    job = manager.job
    try:
        if action == 'start':
            manager.start(str(body.get('subject', '')), str(body.get('session', '')),
                          str(body.get('protocol', 'default')))
        elif job is None or not manager.running:
            return web.json_response({'error': 'no session is running'}, status=409)
        elif action == 'go':
            job.control.go()
        elif action == 'pause':
            job.control.pause(bool(body.get('paused', True)))
        elif action == 'skip':
            job.control.skip()
        elif action == 'stop':
            job.control.stop()
        else:
            raise web.HTTPNotFound()
    except ValueError as error:
        return web.json_response({'error': str(error)}, status=400)
    return web.json_response({'ok': True})


async def _state_socket(request: web.Request, state) -> web.WebSocketResponse:
    console = _console(request)
    if not console.same_origin(request):
        raise web.HTTPForbidden(text='a WebSocket from another site')
    socket = web.WebSocketResponse(heartbeat=10.0)
    await socket.prepare(request)
    last = None
    reader = asyncio.ensure_future(socket.receive())
    try:
        while not socket.closed:
            text = json.dumps(state(), sort_keys=True, allow_nan=False, default=str)
            if text != last:
                await socket.send_str(text)
                last = text
            done, _ = await asyncio.wait({reader}, timeout=STATE_PERIOD)
            if done:
                message = reader.result()
                if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
                reader = asyncio.ensure_future(socket.receive())
    except (ConnectionResetError, RuntimeError):
        pass
    finally:
        reader.cancel()
    return socket


async def operator_socket(request: web.Request) -> web.WebSocketResponse:
    console = _console(request)
    client = request.query.get('client', '') or secrets.token_hex(8)
    console.name_of(client)
    console.connected[client] = console.connected.get(client, 0) + 1
    if console.holder_now() is None or console.holder == client:
        console.holder, console.holder_gone_at = client, None
    try:
        return await _state_socket(request, lambda: console.operator_state(client))
    finally:
        console.connected[client] -= 1
        if console.holder == client and not console.connected[client]:
            console.holder_gone_at = time.monotonic()


async def patient_socket(request: web.Request) -> web.WebSocketResponse:
    return await _state_socket(request, _console(request).patient_state)


async def video_socket(request: web.Request) -> web.WebSocketResponse:
    console = _console(request)
    hub = console.hubs.get(request.match_info['stream'])
    if hub is None:
        raise web.HTTPNotFound()
    if not console.same_origin(request):
        raise web.HTTPForbidden(text='a WebSocket from another site')
    socket = web.WebSocketResponse(heartbeat=10.0, compress=False)  # JPEG: deflating it only costs CPU
    await socket.prepare(request)
    event = asyncio.Event()
    hub.clients.add(event)
    hub.tap.watchers += 1
    closed = asyncio.ensure_future(socket.receive())
    try:
        while not socket.closed:
            waiter = asyncio.ensure_future(event.wait())
            done, _ = await asyncio.wait({waiter, closed}, return_when=asyncio.FIRST_COMPLETED)
            if closed in done:
                waiter.cancel()
                break
            event.clear()
            await socket.send_bytes(hub.frame)
    except (ConnectionResetError, RuntimeError):
        pass
    finally:
        closed.cancel()
        hub.clients.discard(event)
        hub.tap.watchers -= 1
    return socket


def make_app(console: Console) -> web.Application:
    app = web.Application(middlewares=[guard], client_max_size=64 * 1024)
    app['console'] = console
    app.router.add_get('/', page)
    app.router.add_get('/patient', page)
    app.router.add_get('/static/{name}', static_file)
    app.router.add_get('/files/{path:.+}', output_file)
    app.router.add_get('/api/state', api_state)
    app.router.add_post('/api/{action}', api_action)
    app.router.add_get('/ws/operator', operator_socket)
    app.router.add_get('/ws/patient', patient_socket)
    app.router.add_get('/ws/video/{stream}', video_socket)
    return app


def run_server(node, manager, settings, out=sys.stderr) -> int:
    """Serve until Ctrl-C or SIGTERM; a session still running is stopped as Ctrl-C stops it, with its report."""
    token = None if settings.host in LOCAL_HOSTS else load_or_make_token(manager.root, out)
    console = Console(node, manager, settings, token)
    for path in manager.recovered:
        print(f'facesym console: {path} was left running by a console that stopped: listed as interrupted '
              '(its bag is kept)', file=out, flush=True)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for name, hub in console.hubs.items():
            hub.tap.sink = lambda payload, hub=hub: loop.call_soon_threadsafe(hub.publish, payload)
            del name
        runner = web.AppRunner(make_app(console), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        port = runner.addresses[0][1]
        host = f'[{settings.host}]' if ':' in settings.host else settings.host
        print(f'facesym console: operator page http://{host}:{port}/ , patient page http://{host}:{port}/patient '
              f'; sessions in {manager.root} (Ctrl-C stops)', file=out, flush=True)
        stopping = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        await stopping.wait()
        if manager.running:
            print('facesym console: stopping the running session (partial report)...', file=out, flush=True)
            manager.stop('stopped by the operator (the console was stopped)')
            await loop.run_in_executor(None, manager.join)
        for hub in console.hubs.values():
            hub.tap.sink = None
        with contextlib.suppress(Exception):
            await runner.cleanup()

    asyncio.run(main())
    return 0
