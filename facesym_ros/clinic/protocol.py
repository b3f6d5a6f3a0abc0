"""The protocol of an assessment session: which tasks, in which order, watching which regions.

A protocol file (config/protocol.yaml) is YAML with `tasks`, a list, and
optional `settings`. As in core/settings.py, one declaration drives the
checks: the fields of ProtocolTask (and of SessionSettings for `settings`)
carry their description and the kind of value they take, and the loader
checks every entry against them. A clinician's typo must not quietly change
what is measured, so every problem is a ValueError with one line that names
the file, the task and the key.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from facesym_ros.core.regions import REGION_NAMES
from facesym_ros.core.settings import Settings, from_mapping, setting

OPERATOR = 'operator'
_NAME = re.compile(r'^[A-Za-z0-9_-]+$')


def _name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(f'must be a short name of letters, digits, _ and -, got {value!r}')
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f'must be a non-empty text, got {value!r}')
    return value.strip()


def _duration(value: Any) -> float | str:
    if value == OPERATOR:
        return OPERATOR
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f'must be a positive number of seconds or {OPERATOR!r}, got {value!r}')
    return float(value)


def _regions(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError(f'must be a region or a list of regions ({", ".join(REGION_NAMES)}), got {value!r}')
    for item in items:
        if item not in REGION_NAMES:
            raise ValueError(f'unknown region {item!r} (regions: {", ".join(REGION_NAMES)})')
    if len(set(items)) != len(items):
        raise ValueError(f'lists a region twice: {value!r}')
    return tuple(items)


def _nonempty_regions(value: Any) -> tuple[str, ...]:
    regions = _regions(value)
    if not regions:
        raise ValueError('must name at least one region')
    return regions


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f'must be true or false, got {value!r}')
    return value


_REQUIRED = object()


def key(description: str, check: Callable[[Any], Any], default: Any = _REQUIRED) -> Any:
    """A ProtocolTask field: what it means, how a file's value is checked, its default (none: required)."""
    extra = {} if default is _REQUIRED else {'default': default}
    return dataclasses.field(metadata={'description': description, 'check': check,
                                       'required': default is _REQUIRED}, **extra)


@dataclass(frozen=True)
class ProtocolTask:
    """One task of the session, as the protocol file declares it."""

    name: str = key('short identifier, unique in the protocol', _name)
    instruction: str = key('what the patient is told to do', _text)
    duration: float | str = key(f'seconds, or {OPERATOR!r}: the operator starts and stops the task', _duration)
    primary: tuple[str, ...] = key('region(s) the movement is made with: ' + ' | '.join(REGION_NAMES),
                                   _nonempty_regions)
    watch: tuple[str, ...] = key('other regions watched for synkinesis (involuntary co-movement)', _regions, ())
    baseline: bool = key('the resting task: its symmetry is the baseline, not part of the facesym index',
                         _flag, False)

    @property
    def operator_paced(self) -> bool:
        return self.duration == OPERATOR


@dataclass(frozen=True)
class SessionSettings(Settings):
    """How the tasks of a session are scored and summarised (the protocol file's `settings`)."""

    subtract_baseline: bool = setting(False, 'Subtract the rest task\'s VS of each region side from every '
                                             'task\'s VS (never below 0) before SS is computed')
    min_comovement: float = setting(0.001, 'Synkinesis indicator: a watched region whose VS left + right is '
                                           'below this has too little co-movement to compare (n/a)',
                                    min=0.0, max=10.0)


@dataclass(frozen=True)
class Protocol:
    tasks: tuple[ProtocolTask, ...]
    settings: SessionSettings
    source: str

    def task(self, name: str) -> ProtocolTask:
        for task in self.tasks:
            if task.name == name:
                return task
        raise ValueError(f'{self.source}: no task {name!r} (tasks: {", ".join(t.name for t in self.tasks)})')

    @property
    def baseline(self) -> ProtocolTask | None:
        return next((task for task in self.tasks if task.baseline), None)


TOP_KEYS = ('tasks', 'settings')


def default_protocol_file() -> Path:
    from facesym_ros.config.files import package_config_file

    return package_config_file('protocol.yaml')


def parse_task(entry: Any, where: str) -> ProtocolTask:
    """One task from its mapping; `where` names the file and the task in messages."""
    if not isinstance(entry, Mapping):
        raise ValueError(f'{where}: expected a mapping of keys ({", ".join(task_keys())}), got {entry!r}')
    fields = {field.name: field for field in dataclasses.fields(ProtocolTask)}
    unknown = [str(k) for k in entry if k not in fields]
    if unknown:
        raise ValueError(f'{where}: unknown key {unknown[0]!r} (keys: {", ".join(fields)})')
    values = {}
    for name, field in fields.items():
        if name not in entry:
            if field.metadata['required']:
                raise ValueError(f'{where}: missing key {name!r} ({field.metadata["description"]})')
            continue
        try:
            values[name] = field.metadata['check'](entry[name])
        except ValueError as error:
            raise ValueError(f'{where}: key {name!r} {error}') from None
    task = ProtocolTask(**values)
    overlap = sorted(set(task.primary) & set(task.watch))
    if overlap:
        raise ValueError(f'{where}: key \'watch\' lists {overlap[0]!r}, which is a primary region of this task')
    return task


def parse_protocol(document: Any, source: str) -> Protocol:
    """A protocol from a loaded YAML document; every problem is one ValueError line naming `source`."""
    if not isinstance(document, Mapping):
        raise ValueError(f'{source}: expected a mapping with a `tasks` list, got {type(document).__name__}')
    unknown = [str(k) for k in document if k not in TOP_KEYS]
    if unknown:
        raise ValueError(f'{source}: unknown key {unknown[0]!r} (keys: {", ".join(TOP_KEYS)})')
    entries = document.get('tasks')
    if not isinstance(entries, list) or not entries:
        raise ValueError(f'{source}: key \'tasks\' must be a non-empty list of tasks')
    tasks: list[ProtocolTask] = []
    for index, entry in enumerate(entries, start=1):
        label = entry.get('name') if isinstance(entry, Mapping) else None
        where = f'{source}: task {index}' + (f' {label!r}' if isinstance(label, str) else '')
        task = parse_task(entry, where)
        if any(task.name == seen.name for seen in tasks):
            raise ValueError(f'{where}: key \'name\' repeats the name of an earlier task')
        tasks.append(task)
    if sum(task.baseline for task in tasks) > 1:
        raise ValueError(f'{source}: key \'baseline\' is true for more than one task; one rest task is the baseline')
    raw_settings = document.get('settings') or {}
    if not isinstance(raw_settings, Mapping):
        raise ValueError(f'{source}: key \'settings\' must be a mapping')
    names = {field.name for field in dataclasses.fields(SessionSettings)}
    unknown = [str(k) for k in raw_settings if k not in names]
    if unknown:
        raise ValueError(f'{source}: settings: unknown key {unknown[0]!r} (keys: {", ".join(sorted(names))})')
    try:
        settings = from_mapping(SessionSettings, raw_settings, source=f'{source}: settings')
    except ValueError as error:
        message = str(error).removeprefix(f'{source}: settings: ')
        raise ValueError(f'{source}: settings: {message}') from None
    if settings.subtract_baseline and not any(task.baseline for task in tasks):
        raise ValueError(f'{source}: settings: subtract_baseline needs a task with baseline: true')
    return Protocol(tuple(tasks), settings, source)


def read_protocol_text(path: str | Path | None = None) -> tuple[str, str]:
    """(text, source) of a protocol file (config/protocol.yaml by default), unchecked: a session keeps the text."""
    path = Path(path) if path else default_protocol_file()
    try:
        return path.read_text(), str(path)
    except FileNotFoundError:
        raise ValueError(f'{path}: no such protocol file') from None
    except OSError as error:
        raise ValueError(f'{path}: cannot read the protocol file: {error.strerror or error}') from None


def protocol_from_text(text: str, source: str) -> Protocol:
    """The protocol in YAML text (a file's, or one a session bag recorded), checked."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, 'problem_mark', None)
        problem = getattr(error, 'problem', None) or type(error).__name__
        where = f' at line {mark.line + 1}, column {mark.column + 1}' if mark is not None else ''
        raise ValueError(f'{source}: cannot read the protocol file: {problem}{where}') from None
    return parse_protocol(document, source)


def load_protocol(path: str | Path | None = None) -> Protocol:
    """The protocol in a YAML file (config/protocol.yaml by default), checked."""
    return protocol_from_text(*read_protocol_text(path))


def task_keys() -> list[str]:
    return [field.name for field in dataclasses.fields(ProtocolTask)]


def describe_keys() -> list[tuple[str, str, bool]]:
    """(key, meaning, required) of a task, for `facesym protocol show --keys`."""
    return [(f.name, f.metadata['description'], f.metadata['required']) for f in dataclasses.fields(ProtocolTask)]
