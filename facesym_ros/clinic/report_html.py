"""The session report: DIR/report.html, one self-contained printable page, and DIR/report.json.

A clinician opens report.html in any browser, offline, and prints it: every
image is embedded as a base64 PNG, the styles are inline, nothing is
fetched. Its first page answers the clinic's questions at a glance (who,
when, which protocol; the face map; a line per region; the facesym index and
its change since the last visit); the technical pages after it hold every
number, picture and setting. A score whose quality flags say it means
nothing (core/flags.py void_reason) is greyed with its reason, never bold,
never in a mean. report_pdf.py prints the page to report.pdf. report.json
holds the same numbers for software (and for the next session's `--compare`).
Plots are drawn by matplotlib (Agg, no display).
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facesym_ros import __version__
from facesym_ros.clinic.face_map import RegionTint, face_map_svg, image_png, legend_svg, png_data
from facesym_ros.clinic.protocol import SessionSettings
from facesym_ros.clinic.session_record import COMPLETE, DONE
from facesym_ros.clinic.session_score import (
    INDEX_FORMULA,
    NO_SS_COUNTS,
    SYNKINESIS_FORMULA,
    Measure,
    SessionSummary,
    TaskScore,
    score_session,
    summarize,
    summary_json,
    task_json,
)
from facesym_ros.clinic.task_result import FacePicture, TaskResult
from facesym_ros.core.flags import flags_of
from facesym_ros.core.regions import REGION_NAMES, SIDE_NAMES
from facesym_ros.core.report import json_text

REPORT_HTML = 'report.html'
REPORT_JSON = 'report.json'
SIDE_STYLE = {'left': '-', 'right': '--'}
REGION_COLOUR = {'forehead': '#1f77b4', 'eye': '#d98c00', 'cheek': '#c2188f'}


@dataclass(frozen=True)
class SessionInfo:
    """Who and when, and how the session was scored."""

    subject_id: str
    session_id: str
    date: str  # ISO date
    settings: SessionSettings
    protocol_source: str = ''
    status: str = COMPLETE  # COMPLETE, or INTERRUPTED (a partial report)
    status_note: str = ''  # why the session ended early
    not_done: tuple[str, ...] = ()  # tasks of the protocol never begun


@dataclass(frozen=True)
class SessionReport:
    info: SessionInfo
    tasks: tuple[TaskResult, ...]
    task_scores: tuple[TaskScore, ...]
    summary: SessionSummary
    history: tuple[dict, ...]  # earlier sessions' summaries, oldest first, then this one
    payload: dict  # report.json


def _number(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def history_entry(payload: dict) -> dict:
    """The part of a report.json the trend of later sessions needs."""
    summary = payload['summary']
    return {'session_id': payload['session_id'], 'date': payload['date'],
            'regions': {region: summary['regions'][region]['value'] for region in REGION_NAMES},
            'facesym_index': summary['facesym_index']['value']}


def load_previous(path: str | Path) -> dict:
    """A previous session's report.json (given as the file or its report folder)."""
    path = Path(path)
    file = path / REPORT_JSON if path.is_dir() else path
    try:
        payload = json.loads(file.read_text())
    except FileNotFoundError:
        raise ValueError(f'{path}: no {REPORT_JSON} of an earlier session there') from None
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f'{file}: cannot read an earlier session report: {error}') from None
    if not isinstance(payload, dict) or 'summary' not in payload or 'session_id' not in payload:
        raise ValueError(f'{file}: not a facesym session report.json (no summary or session_id)')
    return payload


def _history(previous: Sequence[dict], current: dict) -> tuple[dict, ...]:
    entries: dict[tuple[str, str], dict] = {}
    for payload in previous:
        for entry in [*payload.get('history', [])[:-1], history_entry(payload)]:
            entries[(entry['date'], entry['session_id'])] = entry
    entries.pop((current['date'], current['session_id']), None)
    return (*(entries[key] for key in sorted(entries)), current)


def task_status(result: TaskResult) -> str:
    """DONE, or TASK_INTERRUPTED for a task a session cut short."""
    return result.extra.get('status', DONE)


def _method(tasks: Sequence[TaskResult]) -> dict:
    """The method settings of the session (from the first task's score; all tasks share them)."""
    if not tasks:
        return {}
    score = tasks[0].score
    method = json.loads(score.method) if score.method else {}
    frames = method.get('frames') or [{}]
    flow = frames[0]
    return {'software': method.get('software', f'facesym_ros {__version__}'),
            'symmetry_lambda': score.symmetry_lambda, 'threshold_factor': score.threshold_factor,
            **{key: flow[key] for key in ('landmark_backend', 'landmark_model', 'landmark_licence', 'regions_from',
                                          'mirrored', 'face_scale',
                                          'reference_interocular', 'analysis_interocular', 'remove_rigid_motion')
               if key in flow},
            'max_head_motion': method.get('max_head_motion')}


def build_session_report(tasks: Sequence[TaskResult], info: SessionInfo,
                         previous: Sequence[dict] = ()) -> SessionReport:
    """Score every task against the protocol and summarise the session; `previous`: earlier report.json payloads.

    A task whose TaskResult.extra status is not 'done' (cut short) is listed with its numbers, but left out of the
    summary: the summary covers the tasks done in full, and a partial session says so.
    """
    if not tasks and info.status == COMPLETE:
        raise ValueError('a session report needs at least one task')
    scores = score_session([(t.task, t.score) for t in tasks], info.settings)
    summary = summarize([s for t, s in zip(tasks, scores, strict=True) if task_status(t) == DONE])
    payload = {
        'report': 'facesym session', 'software': f'facesym_ros {__version__}',
        'subject_id': info.subject_id, 'session_id': info.session_id, 'date': info.date,
        'status': info.status, 'status_note': info.status_note, 'not_done': list(info.not_done),
        'protocol': info.protocol_source,
        'settings': {'subtract_baseline': info.settings.subtract_baseline,
                     'min_comovement': info.settings.min_comovement},
        'method': _method(tasks),
        'tasks': [],
        'summary': summary_json(summary),
    }
    for result, task_score in zip(tasks, scores, strict=True):
        entry = task_json(task_score)
        for region, values in entry['regions'].items():  # why the SS means nothing (greyed), or None
            values['void'] = task_score.void(region)
        entry['span_s'] = list(result.span) if result.span else None
        entry['key_frame_time_s'] = result.key_frame_time_s
        entry['status'] = task_status(result)
        payload['tasks'].append(entry)
    payload['settings_hash'] = settings_hash(payload)
    history = _history(previous, history_entry(payload))
    payload['history'] = list(history)
    return SessionReport(info, tuple(tasks), tuple(scores), summary, history, payload)


# ----- pictures -------------------------------------------------------------------------------------------

def _figure_png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format='png', dpi=100, bbox_inches='tight')
    return buffer.getvalue()


def _figure(width: float, height: float, rows: int = 1):
    from matplotlib.figure import Figure  # no pyplot: no global state, the Agg canvas by default

    figure = Figure(figsize=(width, height))
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    return figure, axes


def motion_plot(result: TaskResult) -> bytes:
    """Left and right motion of each region over the task (mean flow per pixel per frame)."""
    figure, axes = _figure(6.4, 3.6, rows=len(REGION_NAMES))
    times = np.asarray(result.trace.times_s)
    for axis, region in zip(axes, REGION_NAMES, strict=True):
        for side in SIDE_NAMES:
            values = np.asarray(result.trace.motion[(region, side)], dtype=float)
            axis.plot(times, values, SIDE_STYLE[side], color=REGION_COLOUR[region], label=side, linewidth=1.3)
        role = ('primary' if region in result.task.primary else
                'watched' if region in result.task.watch else '')
        axis.set_ylabel(f'{region}\n{role}'.strip(), fontsize=8)
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
        if result.key_frame_time_s is not None:
            axis.axvline(result.key_frame_time_s, color='grey', linewidth=0.8, linestyle=':')
    axes[0].legend(fontsize=7, loc='upper right', ncols=2, title='patient side', title_fontsize=7)
    axes[0].set_title(f'{result.task.name}: motion [px/frame per pixel]', fontsize=9)
    axes[-1].set_xlabel('seconds into the task', fontsize=8)
    return _figure_png(figure)


def overall_plot(report: SessionReport) -> bytes:
    """Mean SS per region over its tasks, the facesym index, and the rest baseline."""
    figure, (axis,) = _figure(5.0, 2.8)
    summary = report.summary
    labels = [*REGION_NAMES, 'facesym index']
    measures = [*(summary.region_means[r] for r in REGION_NAMES), summary.index]
    colours = [*(REGION_COLOUR[r] for r in REGION_NAMES), '#444444']
    for x, (measure, colour) in enumerate(zip(measures, colours, strict=True)):
        if measure.missing:
            axis.text(x, 0.05, 'n/a', ha='center', fontsize=8)
            continue
        axis.bar(x, measure.value, color=colour, alpha=0.8, width=0.6)
        axis.text(x, measure.value + 0.02, f'{measure.value:.3f}', ha='center', fontsize=8)
    rest = [(x, summary.baseline[r].value) for x, r in enumerate(REGION_NAMES)
            if r in summary.baseline and not summary.baseline[r].missing]
    if rest:
        axis.plot([x for x, _ in rest], [v for _, v in rest], 'k_', markersize=22, markeredgewidth=2,
                  label=f'SS at rest ({summary.baseline_task})')
        axis.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.0, 1.0))
    axis.set_xticks(range(len(labels)), labels, fontsize=8)
    axis.set_ylim(0, 1.12)
    axis.set_ylabel('SS (1 = symmetric)', fontsize=8)
    axis.tick_params(labelsize=7)
    axis.set_title('session summary', fontsize=9)
    return _figure_png(figure)


def trend_plot(history: Sequence[dict]) -> bytes:
    """Each region's mean SS and the facesym index across sessions, oldest first."""
    figure, (axis,) = _figure(6.0, 2.8)
    x = np.arange(len(history))
    for region in REGION_NAMES:
        values = [np.nan if entry['regions'].get(region) is None else entry['regions'][region] for entry in history]
        axis.plot(x, values, 'o-', color=REGION_COLOUR[region], label=region)
    index = [np.nan if entry['facesym_index'] is None else entry['facesym_index'] for entry in history]
    axis.plot(x, index, 's--', color='#444444', label='facesym index')
    axis.set_xticks(x, [f'{entry["session_id"]}\n{entry["date"]}' for entry in history], fontsize=7)
    axis.set_ylim(0, 1.05)
    axis.set_ylabel('SS', fontsize=8)
    axis.tick_params(labelsize=7)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc='lower right', ncols=2)
    axis.set_title('trend across sessions', fontsize=9)
    return _figure_png(figure)


# ----- the first page: who, when, the face map, a line per region, the index ---------------------------

REGION_WORDS = {'forehead': 'Forehead', 'eye': 'Eye', 'cheek': 'Cheek'}


def _task_words(name: str) -> str:
    return name.replace('_', ' ')


def _side_totals(task_scores: Sequence[TaskScore], region: str) -> dict[str, float]:
    return {'left': sum(ts.region(region).vs_left for ts in task_scores),
            'right': sum(ts.region(region).vs_right for ts in task_scores)}


def _weaker(task_scores: Sequence[TaskScore], region: str) -> str | None:
    """The patient's side of `region` that moved less over the tasks (summed VS), None when alike or unknown."""
    totals = _side_totals(task_scores, region)
    if not task_scores or any(math.isnan(v) for v in totals.values()) or totals['left'] == totals['right']:
        return None
    return min(totals, key=totals.__getitem__)


@dataclass(frozen=True)
class RegionLine:
    """One region of the first page: its session SS, the side that moved less, and the last visit's SS."""

    region: str
    tasks: tuple[str, ...]
    measure: Measure
    weaker: str | None
    left_out: tuple[tuple[str, str], ...]
    previous: float | None = None

    @property
    def tint(self) -> RegionTint:
        return RegionTint(self.region, self.measure.value, self.measure.reason if self.measure.missing else '',
                          self.weaker)

    def words(self, previous_label: str = '') -> str:
        tasks = ', '.join(_task_words(name) for name in self.tasks)
        head = f'{REGION_WORDS.get(self.region, self.region)}' + (f' ({tasks})' if tasks else '')
        left_out = ', '.join(f'{_task_words(name)} ({reason})' for name, reason in self.left_out)
        if self.measure.missing:
            return f'{head}: no score; ' + (f'not counted: {left_out}' if left_out and
                                            self.measure.reason.startswith(NO_SS_COUNTS) else self.measure.reason)
        side = (f'the patient\'s {self.weaker} side moved less' if self.weaker else 'both sides moved alike')
        text = f'{head}: {side}; SS {self.measure.value:.2f}'
        if self.previous is not None:
            text += f', {_change(self.measure.value, self.previous)} {previous_label}'.rstrip()
        elif previous_label:  # an earlier visit, without a number for this region
            text += f', none {previous_label}'
        return text + (f'; not counted: {left_out}' if left_out else '')


def _change(value: float, previous: float) -> str:
    difference = round(value, 2) - round(previous, 2)
    if difference == 0:
        return f'unchanged from {previous:.2f}'
    return f'{"up" if difference > 0 else "down"} {abs(difference):.2f} from {previous:.2f}'


def _previous_visit(report: SessionReport) -> dict | None:
    return report.history[-2] if len(report.history) > 1 else None


def region_lines(report: SessionReport) -> list[RegionLine]:
    """The first page's line per region, from the summary and the tasks it counts."""
    summary, previous = report.summary, _previous_visit(report)
    counted = _counted(report)
    lines = []
    for region in REGION_NAMES:
        voided = {name for name, _ in summary.left_out.get(region, ())}
        scores = [ts for ts in counted if ts.task.name in summary.region_tasks[region] and ts.task.name not in voided]
        measure = summary.region_means[region]
        before = previous['regions'].get(region) if previous else None
        lines.append(RegionLine(region, summary.region_tasks[region], measure,
                                None if measure.missing else _weaker(scores, region),
                                summary.left_out.get(region, ()), before))
    return lines


def _counted(report: SessionReport) -> list[TaskScore]:
    """The task scores the summary covers (tasks done in full)."""
    return [ts for result, ts in zip(report.tasks, report.task_scores, strict=True) if task_status(result) == DONE]


def session_face(report: SessionReport) -> tuple[TaskResult, FacePicture] | None:
    """The session's key frame for the face map: the rest task's (the face at rest), else the first task's."""
    ordered = sorted(report.tasks, key=lambda result: not result.task.baseline)
    return next(((result, result.key_face) for result in ordered if result.key_face is not None), None)


def _index_html(report: SessionReport) -> str:
    index, previous = report.summary.index, _previous_visit(report)
    if index.missing:
        text = f'<span class="void">no facesym index</span> <span class="void-reason">({_esc(index.reason)})</span>'
    else:
        text = f'<b>{index.value:.3f}</b>'
    before = previous.get('facesym_index') if previous else None
    if previous is not None:
        label = f'the last visit ({_esc(previous["session_id"])}, {_esc(previous["date"])})'
        if before is None:
            text += f'; no index at {label}'
        elif not index.missing:
            difference = index.value - before
            text += (f'; <span id="index-change">{difference:+.3f}</span> since {label}, when it was {before:.3f}')
        else:
            text += f'; {before:.3f} at {label}'
    return f'<p class="index">facesym index: <span id="facesym-index">{text}</span></p>'


def _cautions(report: SessionReport) -> str:
    """One line per task whose flags ask for caution or void a score (the flag table's words)."""
    items = []
    for ts in report.task_scores:
        voided = [region for region in REGION_NAMES if ts.void(region)]
        words = [text.words + (f' ({", ".join(voided)})' if text.voids == 'region' and voided else '')
                 for text in flags_of(ts.score)]
        if words:
            items.append(f'<li data-task="{_esc(ts.task.name)}"><b>{_esc(_task_words(ts.task.name))}</b>: '
                         + ' '.join(_esc(line) for line in words) + '</li>')
    return ('<h2>Quality</h2><ul id="cautions">' + ''.join(items) + '</ul>') if items else \
        '<p id="cautions">Quality: no task raised a flag.</p>'


def _first_page(report: SessionReport) -> str:
    info, previous = report.info, _previous_visit(report)
    lines = region_lines(report)
    face = session_face(report)
    if face is None:
        picture = '<p class="void" id="face-map">No face map: no key frame was recorded.</p>'
    else:
        result, key = face
        tints = {line.region: line.tint for line in lines}
        when = (f' at {result.key_frame_time_s:.1f} s' if result.key_frame_time_s is not None else '')
        picture = (face_map_svg(key, tints, title=f'face map: key frame of {result.task.name}') + legend_svg()
                   + f'<figcaption>Key frame of {_esc(_task_words(result.task.name))}{when}. Each region is '
                     'tinted by its SS over the tasks that target it (1 = both sides alike); its number is '
                     'beside it. Outlined: the side that moved less. Grey hatched: no score.</figcaption>')
    label = f'(last visit {previous["session_id"]}, {previous["date"]})' if previous else ''
    items = ''.join(f'<li id="line-{line.region}" data-region="{line.region}" data-weaker="{line.weaker or ""}"'
                    f'{" class=void" if line.measure.missing else ""}>{_esc(line.words(label))}</li>'
                    for line in lines)
    protocol = Path(info.protocol_source).name if info.protocol_source else 'built in'
    tasks = ', '.join(_task_words(r.task.name) for r in report.tasks)
    return f"""<section id="first-page">
<h1>Facial symmetry assessment</h1>
<table class="who">
<tr><th>subject</th><td id="subject">{_esc(info.subject_id)}</td><th>session</th>
<td id="session">{_esc(info.session_id)}</td><th>date</th><td id="date">{_esc(info.date)}</td></tr>
<tr><th>protocol</th><td colspan="5" id="protocol">{_esc(protocol)}: {_esc(tasks)}</td></tr>
</table>
{_partial(report)}
<div class="glance">
<figure class="map">{picture}</figure>
<div class="lines">
<h2>Regions</h2>
<ul id="region-lines">{items}</ul>
{_index_html(report)}
</div>
</div>
{_cautions(report)}
<p class="muted small">SS, the symmetry score of a region: 1 = both sides move alike, 0 = one side moves and the
other does not. The facesym index summarises the session's measurements; it is not a clinical grade. The pages
after this one hold every number, picture and setting.</p>
</section>"""


def _partial(report: SessionReport) -> str:
    info = report.info
    if info.status == COMPLETE:
        return ''
    cut = [r.task.name for r in report.tasks if task_status(r) != DONE]
    return (f'<p class="partial" id="partial">Partial session ({_esc(info.status)}): '
            f'{_esc(info.status_note or "it ended before its last task")}. '
            + (f'Cut short: {_esc(", ".join(cut))}. ' if cut else '')
            + (f'Not done: {_esc(", ".join(info.not_done))}. ' if info.not_done else '')
            + 'The summary covers the tasks done in full only.</p>')


# ----- the technical pages -------------------------------------------------------------------------------

STYLE = """
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 11pt; margin: 16px; color: #111; max-width: 720px; }
h1 { font-size: 17pt; margin: 0 0 4px 0; } h2 { font-size: 13pt; margin: 16px 0 6px 0; }
h3 { font-size: 11.5pt; margin: 10px 0 4px 0; }
table { border-collapse: collapse; margin: 4px 0; }
th, td { border: 1px solid #999; padding: 3px 6px; vertical-align: top; font-size: 9.5pt; }
th { background: #eee; text-align: left; }
td.na, span.na { color: #a00; }
.void, .void * { color: #777 !important; font-weight: normal !important; }
.void-reason { color: #777; font-style: italic; font-size: 9pt; }
.primary { font-weight: bold; } .muted { color: #555; } .small { font-size: 9pt; }
.glance { display: flex; gap: 14px; align-items: flex-start; }
.glance figure { margin: 0; flex: 0 0 360px; } .glance .lines { flex: 1; }
#region-lines { padding-left: 18px; margin: 4px 0; } #region-lines li { margin-bottom: 6px; }
li.void { list-style-type: circle; }
p.index { font-size: 12pt; }
.task { border-top: 1px solid #ccc; margin-top: 10px; }
.pictures { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
.pictures figure { margin: 0; } figcaption { font-size: 8.5pt; color: #333; max-width: 360px; }
img.face { height: 240px; } img.plot { width: 440px; max-width: 100%; }
.notice { font-size: 9pt; color: #333; border: 1px solid #bbb; padding: 4px 8px; background: #fafafa; }
.partial { font-weight: bold; color: #8a1c00; border: 2px solid #c0392b; padding: 4px 8px; }
@page { margin: 16mm 12mm 14mm 12mm; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  #first-page { break-after: page; }
  .task { break-before: page; border-top: none; }
  #method { break-before: page; }
  table, tr, figure, .pictures, .glance, li { break-inside: avoid; }
  thead { display: table-header-group; }
  h2, h3 { break-after: avoid; }
}
"""


def _esc(value: object) -> str:
    return html.escape(str(value))


def _fmt(measure: Measure, digits: int = 3) -> str:
    if measure.missing:
        return f'<span class="na" title="{_esc(measure.reason)}">n/a</span>'
    return f'{measure.value:.{digits}f}'


def _vs(value: float) -> str:
    return '<span class="na">n/a</span>' if math.isnan(value) else f'{value:.4f}'


def _cell(task_score: TaskScore, region: str) -> str:
    result = task_score.region(region)
    void = task_score.void(region)
    lines = []
    if result.role in ('primary', 'baseline'):
        label = 'SS' if result.role == 'primary' else 'SS at rest'
        if void:  # greyed, never bold: its flags say it means nothing
            lines.append(f'<span class="void" title="{_esc(void)}">{label} {_fmt(result.symmetry)}</span>')
            lines.append(f'<span class="void-reason">not counted: {_esc(void)}</span>')
        else:
            lines.append(f'<span class="primary">{label} {_fmt(result.symmetry)}</span>')
            if result.symmetry.missing:
                lines.append(f'<span class="na">{_esc(result.symmetry.reason)}</span>')
    lines.append(f'VS L {_vs(result.vs_left)} · R {_vs(result.vs_right)}')
    if result.synkinesis is not None:
        lines.append(f'synkinesis K {_fmt(result.synkinesis)}')
        if result.synkinesis.missing:
            lines.append(f'<span class="na">{_esc(result.synkinesis.reason)}</span>')
    role = {'primary': 'primary', 'watched': 'watched', 'baseline': 'rest', 'other': ''}[result.role]
    if role:
        lines.append(f'<span class="muted">{role}</span>')
    return '<br>'.join(lines)


def _quality(task_score: TaskScore, status: str = DONE) -> str:
    words = [text.words for text in flags_of(task_score.score)]
    if status != DONE:
        words = [f'{status}: the session ended during this task', *words]
    return 'ok' if not words else '<br>'.join(_esc(line) for line in words)


def _figure_html(png: bytes | None, alt: str, caption: str, css: str) -> str:
    if png is None:
        return f'<figure><figcaption class="na">{_esc(caption)}</figcaption></figure>'
    return (f'<figure><img class="{css}" alt="{_esc(alt)}" src="{png_data(png)}">'
            f'<figcaption>{_esc(caption)}</figcaption></figure>')


def task_tints(task_score: TaskScore) -> dict[str, RegionTint]:
    """A task's face map: each region by the task's SS (void: greyed), the weaker side on its primary regions."""
    tints = {}
    for region in REGION_NAMES:
        symmetry = task_score.region(region).symmetry
        void = task_score.void(region) or (symmetry.reason if symmetry.missing else '')
        weaker = task_score.weaker_side if region in task_score.task.primary else None
        tints[region] = RegionTint(region, symmetry.value, void, weaker)
    return tints


def _task_section(result: TaskResult, task_score: TaskScore) -> str:
    task = result.task
    span = f'{result.span[0]:g}–{result.span[1]:g} s of the recording, ' if result.span else ''
    duration = 'operator-paced' if task.operator_paced else f'{task.duration:g} s planned'
    weaker = (f'weaker side in this task: patient\'s {task_score.weaker_side}' if task_score.weaker_side
              else f'weaker side: none ({task_score.weaker_reason})')
    heat = image_png(result.heatmap) if result.heatmap is not None else None
    when = f' at {result.key_frame_time_s:.2f} s into the task' if result.key_frame_time_s is not None else ''
    if result.key_face is not None:
        svg = face_map_svg(result.key_face, task_tints(task_score), width=300, element_id=f'map-{task.name}',
                           title=f'{task.name}: key frame, regions tinted by the task SS')
        key = (f'<figure>{svg}<figcaption>key frame: peak motion of the primary region{when}; regions tinted by '
               'this task\'s SS (scale on the first page); outlined: the weaker side</figcaption></figure>')
    else:
        key = _figure_html(image_png(result.key_frame) if result.key_frame is not None else None,
                           f'{task.name} key frame', f'key frame{when}' if result.key_frame is not None
                           else 'no key frame: no frame of this task had flow', 'face')
    notes = ''.join(f'<li>{_esc(note)}</li>' for note in task_score.quality_words)
    return f"""
<section class="task" id="section-{_esc(task.name)}">
<h3>{_esc(task.name)} <span class="muted">— “{_esc(task.instruction)}”</span></h3>
<p class="muted">{span}{duration}, {result.score.frame_count} frames; {_esc(weaker)}.</p>
<div class="pictures">
{_figure_html(heat, f'{task.name} summed flow heat map',
              'summed flow over the task (heat map, paper Fig. 4)' if heat else 'no heat map: no flow', 'face')}
{key}
{_figure_html(motion_plot(result), f'{task.name} motion over time',
              'left (solid) and right (dashed) motion of each region; dotted: key frame', 'plot')}
</div>
{f'<ul class="small muted quality-notes">{notes}</ul>' if notes else ''}
</section>"""


def settings_hash(payload: dict) -> str:
    """A short hash of every setting that shaped the numbers (the scores' methods, the session settings)."""
    methods = sorted({json.dumps({k: v for k, v in task['score'].get('method', {}).items() if k != 'software'},
                                 sort_keys=True) for task in payload['tasks']})
    text = json.dumps({'methods': methods, 'session': payload['settings']}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _summary_table(report: SessionReport) -> str:
    summary, info = report.summary, report.info
    header = ''.join(f'<th>{region}</th>' for region in REGION_NAMES)

    def mean(region: str) -> str:
        measure = summary.region_means[region]
        text = _fmt(measure)
        if measure.missing:
            text += f'<br><span class="na">{_esc(measure.reason)}</span>'
        else:
            counted = [t for t in summary.region_tasks[region]
                       if t not in {name for name, _ in summary.left_out.get(region, ())}]
            text += f'<br><span class="muted">{_esc(", ".join(counted))}</span>'
            for name, reason in summary.left_out.get(region, ()):
                text += f'<br><span class="void-reason">not counted: {_esc(name)} ({_esc(reason)})</span>'
        return f'<td>{text}</td>'

    rest = next((ts for ts in report.task_scores if ts.task.baseline), None)

    def baseline(region: str) -> str:
        if region not in summary.baseline:
            return '<td>–</td>'
        void = rest.void(region) if rest is not None else None
        if void:
            return (f'<td><span class="void">{_fmt(summary.baseline[region])}</span><br>'
                    f'<span class="void-reason">{_esc(void)}</span></td>')
        return f'<td>{_fmt(summary.baseline[region])}</td>'

    return f"""<table id="summary">
<tr><th></th>{header}<th>facesym index</th></tr>
<tr><th>mean SS of the tasks that target the region</th>{''.join(mean(r) for r in REGION_NAMES)}
<td id="summary-index"><b>{_fmt(summary.index)}</b>{
        f' <span class="na">({_esc(summary.index.reason)})</span>' if summary.index.missing else ''}</td></tr>
<tr><th>SS at rest (baseline{', subtracted' if info.settings.subtract_baseline else ', not subtracted'})</th>
{''.join(baseline(r) for r in REGION_NAMES)}<td></td></tr>
</table>"""


def render_html(report: SessionReport) -> str:
    """report.html as text: the first page, then the technical pages."""
    info, payload = report.info, report.payload
    method = payload['method']
    method_rows = ''.join(f'<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>' for k, v in [
        *method.items(), ('protocol', info.protocol_source or 'built in'),
        ('subtract_baseline', info.settings.subtract_baseline), ('min_comovement', info.settings.min_comovement),
        ('settings hash', payload['settings_hash'])])
    header = ''.join(f'<th>{region}</th>' for region in REGION_NAMES)
    rows = ''.join(
        f'<tr id="task-{_esc(ts.task.name)}"><th>{_esc(ts.task.name)}</th>'
        + ''.join(f'<td>{_cell(ts, region)}</td>' for region in REGION_NAMES)
        + f'<td>{_esc(ts.weaker_side or "–")}</td><td>{_quality(ts, task_status(result))}</td></tr>'
        for result, ts in zip(report.tasks, report.task_scores, strict=True))
    rows += ''.join(f'<tr id="task-{_esc(name)}" class="not-done"><th>{_esc(name)}</th>'
                    f'<td colspan="{len(REGION_NAMES) + 2}" class="na">not done: the session ended before it</td></tr>'
                    for name in info.not_done)
    trend = ''
    if len(report.history) > 1:
        trend = ('<h2>Trend</h2>' + _figure_html(trend_plot(report.history), 'trend of SS across sessions',
                                                 f'{len(report.history)} sessions, oldest first', 'plot'))
    sections = ''.join(_task_section(r, ts) for r, ts in zip(report.tasks, report.task_scores, strict=True))
    meta = ''.join(f'<meta name="facesym-{key}" content="{_esc(value)}">' for key, value in
                   (('subject', info.subject_id), ('session', info.session_id), ('date', info.date)))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">{meta}
<title>facesym session {_esc(info.session_id)} — {_esc(info.subject_id)}</title>
<style>{STYLE}</style></head>
<body>
{_first_page(report)}

<section id="technical">
<h2>Summary</h2>
<p class="notice">SS: symmetry score of a region, 1 − λ·|VS left − VS right| clamped to [0, 1];
1 = both sides move alike, 0 = strongly asymmetric. VS: mean optical-flow motion per pixel of a region side
(patient's left and right). K: synkinesis indicator of a watched region, the share of its movement on the side
that is weaker in the task's primary movement ({_esc(SYNKINESIS_FORMULA)}); 0.5 = alike on both sides, above 0.5
= more co-movement on the weaker side. n/a: not computable (reason given). Grey: a score whose quality flags say
it means nothing; it is left out of every mean.</p>
{_summary_table(report)}
<p class="muted">{_esc(INDEX_FORMULA)}.</p>
{_figure_html(overall_plot(report), 'session summary', 'mean SS per region and the facesym index; '
              'black bars: SS at rest', 'plot')}
{trend}

<h2>Tasks</h2>
<table id="tasks">
<thead><tr><th>task</th>{header}<th>weaker side</th><th>quality</th></tr></thead>
{rows}
</table>
</section>
{sections}

<section id="method">
<h2>Method</h2>
<table>{method_rows}</table>
<p class="muted">facesym_ros {_esc(__version__)}: Haar face detection, 68 landmarks, Farneback optical flow,
six regions (forehead, eye, cheek; patient's left and right).</p>
</section>
</body></html>
"""


def session_report_files(report: SessionReport) -> dict[str, bytes]:
    """The report's files by name, as write_session_report writes them (report.html, report.json)."""
    return {REPORT_HTML: render_html(report).encode('utf-8'), REPORT_JSON: json_text(report.payload).encode('utf-8')}


def write_session_report(directory: str | Path, report: SessionReport) -> Path:
    """DIR/report.html and DIR/report.json; returns the HTML's path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in session_report_files(report).items():
        (directory / name).write_bytes(data)
    return directory / REPORT_HTML
