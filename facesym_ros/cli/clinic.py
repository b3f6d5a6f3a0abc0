"""`facesym protocol`, `facesym report` and `facesym calibrate`: the clinical session, offline.

Argument parsing only; the work is in facesym_ros/clinic. Library errors are
ValueErrors with one line, which the `facesym` main prints as
"facesym COMMAND: error: ..." with exit status 2.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

from facesym_ros.cli.common import add_method_arguments, resolve_input, resolve_settings


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add the clinic's sub-commands to the `facesym` command."""
    protocol = commands.add_parser(
        'protocol', help='show or check an assessment protocol (the tasks of a session)',
        description='Show the tasks of an assessment protocol, or check a protocol file.')
    actions = protocol.add_subparsers(dest='action', required=True, metavar='ACTION')
    show = actions.add_parser('show', help='print the tasks in order', description='Print the tasks in order.')
    show.add_argument('file', nargs='?', help='protocol YAML (default: config/protocol.yaml)')
    show.add_argument('--keys', action='store_true', help='also list the keys a task may have')
    show.set_defaults(run=protocol_show_command)
    check = actions.add_parser('check', help='check a protocol file; exit status 2 and one line if it is wrong',
                               description='Check a protocol file.')
    check.add_argument('file', help='protocol YAML')
    check.set_defaults(run=protocol_check_command)

    report = commands.add_parser(
        'report', help='score a recorded session (one video, a span per task) and write report.html/json',
        description='Score each task of a recorded session and write DIR/report.html (self-contained, '
                    'printable) and DIR/report.json.')
    report.add_argument('input', nargs='?', help='video file or folder of frames of the whole session')
    report.add_argument('--sample', action='store_true', help='use the bundled sample clip as INPUT')
    report.add_argument('--tasks', required=True, metavar='SPANS',
                        help='START:STOP seconds of each protocol task, in order, comma-separated '
                             '(e.g. 0:5,5:9,...)')
    report.add_argument('--protocol', help='protocol YAML (default: config/protocol.yaml)')
    report.add_argument('--output', '-o', required=True, metavar='DIR', help='folder for report.html and report.json')
    report.add_argument('--subject', required=True, help='subject (patient) identifier')
    report.add_argument('--session', required=True, help='session identifier')
    report.add_argument('--date', help='session date, YYYY-MM-DD (default: today)')
    report.add_argument('--compare', action='append', default=[], metavar='PREVIOUS',
                        help='an earlier session\'s report folder or report.json, for the trend (repeatable)')
    report.add_argument('--frame-rate', type=float, help='frame rate of a folder of frames (default 30) [Hz]')
    add_method_arguments(report, heatmap=False)
    report.set_defaults(run=report_command)

    calibrate = commands.add_parser(
        'calibrate', help='fit λ of SS = 1 - λ|VS_l - VS_r| to expert grades',
        description='Fit λ to expert SS grades by least squares on the unclamped part (rows with an expert SS '
                    'strictly between 0 and 1), with a bootstrap 95%% interval.')
    calibrate.add_argument('grades', help='CSV rows: score JSON or report.json, region or task[:region], expert SS')
    calibrate.add_argument('--per-region', action='store_true', help='one λ per region instead of one for all')
    calibrate.add_argument('--output', metavar='PARAMS_YAML',
                           help='write the parameter file with the fitted symmetry_lambda')
    calibrate.add_argument('--params-file', help='parameter file to copy for --output (default: config/facesym.yaml)')
    calibrate.set_defaults(run=calibrate_command)


def _duration(task) -> str:
    return 'operator' if task.operator_paced else f'{task.duration:g} s'


def protocol_show_command(args: argparse.Namespace) -> int:
    from facesym_ros.clinic.protocol import describe_keys, load_protocol

    protocol = load_protocol(args.file)
    print(f'{protocol.source}: {len(protocol.tasks)} tasks')
    for number, task in enumerate(protocol.tasks, start=1):
        role = 'baseline' if task.baseline else 'primary ' + ', '.join(task.primary)
        watch = f'; watch {", ".join(task.watch)}' if task.watch else ''
        print(f'{number:2d}. {task.name:<20} {_duration(task):>9}  {role}{watch}')
        print(f'    "{task.instruction}"')
    settings = protocol.settings
    print(f'settings: subtract_baseline {str(settings.subtract_baseline).lower()}, '
          f'min_comovement {settings.min_comovement:g}')
    if args.keys:
        print('task keys:')
        for name, description, required in describe_keys():
            print(f'  {name:<12} {"required" if required else "optional"}  {description}')
    return 0


def protocol_check_command(args: argparse.Namespace) -> int:
    from facesym_ros.clinic.protocol import load_protocol

    protocol = load_protocol(args.file)
    print(f'{protocol.source}: ok, {len(protocol.tasks)} tasks ({", ".join(t.name for t in protocol.tasks)})')
    return 0


def _iso_date(text: str | None) -> str:
    if text is None:
        return datetime.date.today().isoformat()
    try:
        return datetime.date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValueError(f'--date must be YYYY-MM-DD, got {text!r}') from None


def report_command(args: argparse.Namespace) -> int:
    from facesym_ros.clinic.protocol import load_protocol
    from facesym_ros.clinic.report_html import SessionInfo, build_session_report, load_previous, write_session_report
    from facesym_ros.clinic.video_session import parse_spans, score_video_tasks

    protocol = load_protocol(args.protocol)
    spans = parse_spans(args.tasks)
    date = _iso_date(args.date)
    previous = [load_previous(path) for path in args.compare]  # before the long part: fail early
    path = resolve_input(args)
    config = resolve_settings(args).pipeline
    tasks = score_video_tasks(path, protocol, spans, config, args.frame_rate)
    info = SessionInfo(args.subject, args.session, date, protocol.settings, protocol.source)
    report = build_session_report(tasks, info, previous)
    page = write_session_report(args.output, report)
    summary = report.summary
    for task_score in report.task_scores:
        measures = [(region, task_score.region(region).symmetry) for region in task_score.task.primary]
        ss = ', '.join(f'{region} {"n/a" if m.missing else f"{m.value:.3f}"}' for region, m in measures)
        print(f'{task_score.task.name:<20} SS {ss}')
    index = 'n/a (' + summary.index.reason + ')' if summary.index.missing else f'{summary.index.value:.3f}'
    print(f'facesym index {index}')
    print(f'{page}', file=sys.stderr)
    return 0


def calibrate_command(args: argparse.Namespace) -> int:
    from facesym_ros.clinic.calibrate import calibrate, params_with_lambda, read_grades, usable
    from facesym_ros.config.files import default_params_file
    from facesym_ros.config.params import load_params_file, settings_from
    from facesym_ros.core.scoring import ScoringSettings

    if args.output and args.per_region:
        raise ValueError('--output writes one symmetry_lambda, as the scorer has one; '
                         'fit without --per-region to write a parameter file')
    rows = read_grades(args.grades)
    fits = calibrate(rows, args.per_region)
    used = len(usable(rows))
    print(f'{args.grades}: {len(rows)} rows, {used} with an expert SS strictly between 0 and 1 fitted '
          f'(grades of 0 or 1 are clamped and left out)')
    print(f'{"region":<10}{"lambda":>9}{"95% interval":>20}{"rows":>7}{"rmse":>8}')
    for fit in fits:
        interval = f'{fit.low:.3f} .. {fit.high:.3f}'
        print(f'{fit.label:<10}{fit.symmetry_lambda:>9.3f}{interval:>20}{fit.rows_used:>7}{fit.rmse:>8.3f}')
    if args.output:
        fit = fits[0]
        template = Path(args.params_file) if args.params_file else default_params_file()
        try:
            text = template.read_text()
        except OSError as error:
            raise ValueError(f'{template}: cannot read the parameter file: {error.strerror or error}') from None
        comment = (f'fitted by facesym calibrate to {Path(args.grades).name}: {fit.rows_used} grades, '
                   f'95% bootstrap interval {fit.low:.3f} .. {fit.high:.3f}')
        output = Path(args.output)
        output.write_text(params_with_lambda(text, round(fit.symmetry_lambda, 4), comment))
        written = settings_from(load_params_file(output), ScoringSettings).symmetry_lambda  # the file still loads
        print(f'{output}: symmetry_lambda {written}', file=sys.stderr)
    return 0
