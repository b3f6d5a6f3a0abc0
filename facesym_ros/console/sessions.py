"""The console's sessions: one at a time, on the session runner of `facesym session`, kept under one root.

A session lives in ROOT/SUBJECT/SESSION: its bag (session_bag), report.html and report.json, as `facesym
session --output` writes them, and console.json, the console's note of it (who, which protocol, when, how
it ended). The session itself runs in a thread on run_live_session with a SessionControl: the pacing, the
bag, the partial report of a stopped session and the report are the runner's and the clinic's, not the
console's. A console that stopped during a session finds its console.json still 'running' at the next
start and marks it interrupted: the bag stays where it is, for `facesym session --from-bag`.
"""

from __future__ import annotations

import datetime
import json
import re
import threading
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from facesym_ros.clinic.protocol import default_protocol_file, protocol_from_text, read_protocol_text
from facesym_ros.clinic.report_html import REPORT_JSON, history_entry, load_previous
from facesym_ros.clinic.session_record import COMPLETE, INTERRUPTED, RUNNING, SessionRecord
from facesym_ros.core.pipeline import PipelineSettings
from facesym_ros.ros.session_runner import SessionControl, SessionOptions

MARKER = 'console.json'
BAG = 'session_bag'
RESTART_REASON = 'the console stopped during the session; its bag is kept (score it with facesym session --from-bag)'
IDENTIFIER = re.compile(r'[A-Za-z0-9][A-Za-z0-9._-]{0,63}')
"""Subject and session ids: opaque, and safe as folder names (no separators, no leading dot)."""


def check_identifier(value: str, what: str) -> str:
    value = (value or '').strip()
    if not IDENTIFIER.fullmatch(value):
        raise ValueError(f'the {what} id must be 1 to 64 letters, digits, ".", "_" or "-", starting with a letter '
                         f'or digit (an opaque id, not a name); got {value!r}')
    return value


@dataclass
class SessionJob:
    subject: str
    session: str
    protocol_name: str
    folder: Path
    control: SessionControl = field(default_factory=SessionControl)
    log: deque = field(default_factory=lambda: deque(maxlen=40))
    status: str = RUNNING  # RUNNING, COMPLETE, INTERRUPTED or 'failed'
    reason: str = ''
    record: SessionRecord | None = None
    report: bool = False  # report.html written

    def say(self, line: str) -> None:
        self.log.append(line)


@dataclass(frozen=True)
class ConsoleSessionSettings:
    root: Path
    protocols_dir: Path | None
    lead_in: float
    record: bool
    storage: str
    namespace: str
    image_topic: str
    pipeline: PipelineSettings


class SessionManager:
    """Starts sessions, one at a time, and lists what lies under the root."""

    def __init__(self, settings: ConsoleSessionSettings, graph_factory: Callable[[Path], object] | None = None
                 ) -> None:
        self.settings = settings
        self.root = settings.root
        self.graph_factory = graph_factory  # folder -> ProcessGraph brought up for one session (--source)
        self.job: SessionJob | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.root.mkdir(parents=True, exist_ok=True)
        self.recovered = self._mark_interrupted()

    # -- what is on disk ----------------------------------------------------------------------------------------

    def _mark_interrupted(self) -> list[Path]:
        """Sessions a stopped console left 'running': marked interrupted (their bag and files are kept)."""
        found = []
        for marker in sorted(self.root.glob(f'*/*/{MARKER}')):
            note = self._read(marker)
            if note.get('status') == RUNNING:
                note.update(status=INTERRUPTED, reason=RESTART_REASON)
                marker.write_text(json.dumps(note, indent=1))
                found.append(marker.parent)
        return found

    @staticmethod
    def _read(path: Path) -> dict:
        try:
            payload = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return payload if isinstance(payload, dict) else {}

    def sessions(self, subject: str | None = None) -> list[dict]:
        """Every session folder under the root (of one subject), oldest first, with how it ended."""
        rows = []
        pattern = f'{subject}/*' if subject else '*/*'
        for folder in self.root.glob(pattern):
            if not folder.is_dir() or folder.name.startswith('.'):
                continue
            note = self._read(folder / MARKER)
            report = self._read(folder / REPORT_JSON)
            if not note and not report:
                continue
            status = note.get('status') or report.get('status', '')
            row = {'subject': folder.parent.name, 'session': folder.name,
                   'date': report.get('date') or note.get('date', ''), 'started': note.get('started', ''),
                   'status': status, 'reason': note.get('reason') or report.get('status_note', ''),
                   'path': folder.relative_to(self.root).as_posix(),
                   'report': (folder / 'report.html').is_file(), 'bag': (folder / BAG).exists(),
                   'index': None}
            if report.get('summary'):
                row['index'] = report['summary']['facesym_index']['value']
                row['regions'] = history_entry(report)['regions']
            rows.append(row)
        return sorted(rows, key=lambda row: (row['date'], row['started'], row['session']))

    def previous_reports(self, subject: str, session: str) -> list[dict]:
        """This subject's earlier session reports, for the report's trend (as --compare gives them)."""
        found = []
        for row in self.sessions(subject):
            if row['session'] != session and row['report']:
                try:
                    found.append(load_previous(self.root / row['path']))
                except ValueError:
                    continue
        return found

    def protocols(self) -> dict[str, Path]:
        """Protocol files the operator may choose: the default, then the protocols folder's, by name."""
        files = {'default': default_protocol_file()}
        if self.settings.protocols_dir is not None:
            for path in sorted(self.settings.protocols_dir.glob('*.yaml')):
                files.setdefault(path.stem, path)
        return files

    # -- running one --------------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, subject: str, session: str, protocol_name: str) -> SessionJob:
        subject = check_identifier(subject, 'subject')
        session = check_identifier(session or 'session-' + datetime.datetime.now(datetime.UTC).strftime(
            '%Y%m%dT%H%M%SZ'), 'session')
        protocols = self.protocols()
        if protocol_name not in protocols:
            raise ValueError(f'no protocol {protocol_name!r} (known: {", ".join(protocols)})')
        text, source = read_protocol_text(protocols[protocol_name])
        protocol = protocol_from_text(text, source)  # a bad file fails here, before anything starts
        with self._lock:
            if self.running:
                raise ValueError('a session is running; stop it or let it end first')
            folder = self.root / subject / session
            if folder.exists() and any(folder.iterdir()):
                raise ValueError(f'{subject}/{session} exists already: choose another session id')
            folder.mkdir(parents=True, exist_ok=True)
            job = SessionJob(subject, session, protocol_name, folder)
            job.record = SessionRecord(subject, session, datetime.date.today().isoformat(), source, text)
            self._note(job, started=datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds'))
            self.job = job
            self._thread = threading.Thread(target=self._run, args=(job, protocol), name='facesym-session',
                                            daemon=True)
            self._thread.start()
        return job

    def _note(self, job: SessionJob, **extra) -> None:
        path = job.folder / MARKER
        note = {**self._read(path), 'subject': job.subject, 'session': job.session, 'protocol': job.protocol_name,
                'date': job.record.date if job.record else '', 'status': job.status, 'reason': job.reason, **extra}
        path.write_text(json.dumps(note, indent=1))

    def _run(self, job: SessionJob, protocol) -> None:
        from facesym_ros.clinic.report_html import build_session_report, write_session_report
        from facesym_ros.clinic.session_tasks import live_task_results
        from facesym_ros.ros.session_runner import run_live_session

        settings = self.settings
        try:
            previous = self.previous_reports(job.subject, job.session)
            graph = self.graph_factory(job.folder) if self.graph_factory is not None else None
            live = run_live_session(job.record, protocol, SessionOptions(lead_in=settings.lead_in),
                                    bag=job.folder / BAG if settings.record else None, storage=settings.storage,
                                    namespace=settings.namespace, image_topic=settings.image_topic, graph=graph,
                                    say=job.say, control=job.control)
            if live.bag_failure:
                job.say(f'the recording stopped early: {live.bag_failure}')
            tasks, info, notes = live_task_results(live, protocol, settings.pipeline)
            for note in notes:
                job.say(note)
            write_session_report(job.folder, build_session_report(tasks, info, previous))
            job.report = True
            job.status, job.reason = live.outcome.record.status, live.outcome.record.reason
        except Exception as error:  # the console goes on; the operator reads why on the page
            job.status, job.reason = 'failed', f'{type(error).__name__}: {error}'
            job.say(f'the session failed: {job.reason}')
            job.say(traceback.format_exc(limit=3))
        finally:
            self._note(job)
        job.say(f'session {job.status}' + (f': {job.reason}' if job.reason else ''))

    def stop(self, reason: str = 'stopped by the operator (console)') -> None:
        if self.running and self.job is not None:
            self.job.control.stop(reason)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


__all__ = ['COMPLETE', 'ConsoleSessionSettings', 'SessionJob', 'SessionManager', 'check_identifier']
