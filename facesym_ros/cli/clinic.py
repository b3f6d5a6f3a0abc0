"""`facesym protocol`, `facesym session`, `facesym report` and `facesym calibrate`: the clinical session.

Argument parsing only; the work is in facesym_ros/clinic. Library errors are
ValueErrors with one line, which the `facesym` main prints as
"facesym COMMAND: error: ..." with exit status 2.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

from facesym_ros.cli.common import add_method_arguments, add_params_argument, resolve_input, resolve_settings

LEAD_IN_MINIMUM = 1.5  # s: a trial command is sent COMMAND_MARGIN (1 s) of image time before it takes effect


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

    session = commands.add_parser(
        'session', help='run an assessment session against the live graph, one trial per protocol task; '
                        'or score a recorded session again (--from-bag)',
        description='Prompt each task of the protocol (banner on the annotated image, the prompt topic, this '
                    'terminal), run one trial per task, record the session bag in DIR/session_bag and write '
                    'DIR/report.html and DIR/report.json. Ctrl-C ends the session early with a partial report. '
                    'With --from-bag, score a recorded session again with the current method.')
    session.add_argument('--output', '-o', required=True, metavar='DIR',
                         help='folder for the session bag and report.html/json (must not hold a session bag)')
    session.add_argument('--from-bag', metavar='BAG', help='score this recorded session bag again instead')
    session.add_argument('--subject', help='subject (patient) identifier, opaque (required for a live session)')
    session.add_argument('--session', help='session identifier (default: session-<UTC date-time>)')
    session.add_argument('--protocol', help='protocol YAML (default: config/protocol.yaml; with --from-bag: '
                                            'the one the bag recorded)')
    session.add_argument('--date', help='session date, YYYY-MM-DD (default: today; with --from-bag: recorded)')
    session.add_argument('--compare', action='append', default=[], metavar='PREVIOUS',
                         help='an earlier session\'s report folder or report.json, for the trend (repeatable)')
    session.add_argument('--lead-in', type=float, default=3.0, metavar='SECONDS',
                         help=f'time between a task\'s prompt and its start (default 3, at least '
                              f'{LEAD_IN_MINIMUM:g}) [s]')
    session.add_argument('--no-record', action='store_true', help='do not record the session bag (the report then '
                                                                 'has no heat maps or key frames)')
    session.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap', help='session bag format')
    session.add_argument('--namespace', default='', help='namespace of the graph')
    session.add_argument('--image-topic', default='image_raw', help='the camera topic to record (default image_raw)')
    session.add_argument('--source', help='bring the graph up on this source (sample, a video, a folder, '
                                          'camera:<index>) for the session, instead of using a running one')
    session.add_argument('--frame-rate', type=float, help='with --source: publishing rate [Hz]')
    add_params_argument(session)
    add_pdf_arguments(session)
    session.set_defaults(run=session_command)

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
    add_pdf_arguments(report)
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


def add_pdf_arguments(parser: argparse.ArgumentParser) -> None:
    from facesym_ros.clinic.report_pdf import PAPERS

    parser.add_argument('--pdf', action='store_true',
                        help='also write DIR/report.pdf (headless Chromium; without one, one line says so)')
    parser.add_argument('--paper', choices=PAPERS, default='A4', help='paper of report.pdf (default A4)')


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
    from facesym_ros.clinic.report_html import SessionInfo, build_session_report, load_previous
    from facesym_ros.clinic.video_session import parse_spans, score_video_tasks

    protocol = load_protocol(args.protocol)
    spans = parse_spans(args.tasks)
    date = _iso_date(args.date)
    previous = [load_previous(path) for path in args.compare]  # before the long part: fail early
    path = resolve_input(args)
    config = resolve_settings(args).pipeline
    tasks = score_video_tasks(path, protocol, spans, config, args.frame_rate)
    info = SessionInfo(args.subject, args.session, date, protocol.settings, protocol.source)
    _write_report(args.output, build_session_report(tasks, info, previous), args)
    return 0


def _console_ss(task_score, region: str) -> str:
    """A primary SS as the console prints it: the number, n/a, or a void score's reason instead of it."""
    measure, void = task_score.region(region).symmetry, task_score.void(region)
    if void:
        return f'{region} -- (not counted: {void})'
    return f'{region} {"n/a" if measure.missing else f"{measure.value:.3f}"}'


def _write_report(directory: str | Path, report, args: argparse.Namespace) -> Path:
    """Write report.html/json (and report.pdf with --pdf); print each task's primary SS and the facesym index."""
    from facesym_ros.clinic.report_html import write_session_report
    from facesym_ros.clinic.report_pdf import NoChromiumError, write_report_pdf
    from facesym_ros.clinic.session_record import COMPLETE

    page = write_session_report(directory, report)
    summary = report.summary
    for task_score in report.task_scores:
        ss = ', '.join(_console_ss(task_score, region) for region in task_score.task.primary)
        print(f'{task_score.task.name:<20} SS {ss}')
    index = 'n/a (' + summary.index.reason + ')' if summary.index.missing else f'{summary.index.value:.3f}'
    print(f'facesym index {index}' + ('' if report.info.status == COMPLETE else ' (partial session)'))
    print(f'{page}', file=sys.stderr)
    if args.pdf:
        try:
            print(f'{write_report_pdf(page, paper=args.paper)}', file=sys.stderr)
        except NoChromiumError as error:
            print(f'facesym {args.command}: report.pdf not written: {error}; report.html is', file=sys.stderr)
    return page


def session_command(args: argparse.Namespace) -> int:
    from facesym_ros.clinic.report_html import load_previous

    previous = [load_previous(path) for path in args.compare]
    output = Path(args.output)
    config = resolve_settings(args).pipeline
    if args.from_bag:
        from facesym_ros.clinic.protocol import load_protocol
        from facesym_ros.clinic.session_bag import session_bag_report

        if args.subject or args.session or args.source:
            raise ValueError('--from-bag takes the subject, session and frames from the bag; '
                             'leave out --subject, --session and --source')
        protocol = load_protocol(args.protocol) if args.protocol else None
        scored, report = session_bag_report(args.from_bag, config, protocol=protocol,
                                            date=_iso_date(args.date) if args.date else None, previous=previous)
        for problem in scored.problems:
            print(f'facesym session: {problem}', file=sys.stderr)
        _write_report(output, report, args)
        return 0
    return _live_session(args, output, config, previous)


def _live_session(args: argparse.Namespace, output: Path, config, previous: list[dict]) -> int:
    from facesym_ros.clinic.protocol import protocol_from_text, read_protocol_text
    from facesym_ros.clinic.report_html import build_session_report
    from facesym_ros.clinic.session_record import INTERRUPTED, SessionRecord
    from facesym_ros.clinic.session_tasks import live_task_results
    from facesym_ros.ros.session_runner import SessionOptions, run_live_session
    from facesym_ros.ros.signals import StopSignals

    if not args.subject:
        raise ValueError('a live session needs --subject (an opaque identifier, not a name)')
    if not args.lead_in >= LEAD_IN_MINIMUM:
        raise ValueError(f'--lead-in must be at least {LEAD_IN_MINIMUM:g} s, got {args.lead_in:g}')
    text, source = read_protocol_text(args.protocol)
    protocol = protocol_from_text(text, source)
    bag = None if args.no_record else output / 'session_bag'
    if bag is not None and bag.exists():
        raise ValueError(f'{bag} exists: {output} holds a session already; choose another --output')
    output.mkdir(parents=True, exist_ok=True)
    session_id = args.session or 'session-' + datetime.datetime.now(datetime.UTC).strftime('%Y%m%dT%H%M%SZ')
    record = SessionRecord(args.subject, session_id, _iso_date(args.date), source, text)
    graph = _session_graph(args) if args.source else None
    with StopSignals():  # a Ctrl-C after the session's own waits for its report: what was recorded is written
        live = run_live_session(record, protocol, SessionOptions(lead_in=args.lead_in), bag=bag,
                                storage=args.storage, namespace=args.namespace, image_topic=args.image_topic,
                                graph=graph, say=lambda line: print(line, flush=True))
        outcome = live.outcome
        if live.bag_failure:
            print(f'facesym session: the recording stopped early: {live.bag_failure}', file=sys.stderr)
        tasks, info, notes = live_task_results(live, protocol, config)
        for note in notes:
            print(f'facesym session: {note}', file=sys.stderr)
        _write_report(output, build_session_report(tasks, info, previous), args)
    if bag is not None:
        print(f'{bag}', file=sys.stderr)
    if outcome.record.status == INTERRUPTED:
        if outcome.record.reason.startswith('stopped by the operator'):
            print(f'facesym session: {outcome.record.reason}; partial report written', file=sys.stderr)
            return 130
        raise ValueError(f'{outcome.record.reason}; partial report in {output}')
    return 0


def _session_graph(args: argparse.Namespace):
    """The graph `--source` brings up for the session (all nodes, the annotator included)."""
    from facesym_ros.cli.graph import checked_params_file, refuse_second_graph, source_overrides
    from facesym_ros.config.node_settings import RespawnSettings
    from facesym_ros.config.registry import select
    from facesym_ros.ros.bringup import GraphOptions, ProcessGraph

    params_file = checked_params_file(args.params_file)
    specs = select(None)
    refuse_second_graph(specs, args.namespace, RespawnSettings().graph_check_seconds)
    log = open(Path(args.output) / 'graph.log', 'w')  # noqa: SIM115 - open while the graph runs
    print(f'facesym session: the nodes\' output goes to {log.name}', file=sys.stderr)
    return ProcessGraph(specs, params_file, options=GraphOptions(namespace=args.namespace),
                        overrides=source_overrides(args.source, args.frame_rate), respawn=RespawnSettings(), output=log)


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
