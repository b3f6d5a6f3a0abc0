"""`facesym console`: the clinic's operator page and patient page, served by the rig; runs sessions.

The console is the clinic_console node of the registry (launch console:=true, `facesym bringup --console`
start it with the graph); this command runs that node here, with its parameters from the command line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from facesym_ros.cli.common import add_params_argument
from facesym_ros.config.node_settings import ConsoleSettings

DEFAULTS = ConsoleSettings()


def _quoted(value: str) -> str:
    """A string parameter for `-p name:=value` (parsed as YAML: quoted, so '2024' or 'true' stay strings)."""
    if "'" in value:
        raise ValueError(f'{value!r}: a console option may not hold a single quote')
    return f"'{value}'"


def console_command(args: argparse.Namespace) -> int:
    from facesym_ros.cli.clinic import LEAD_IN_MINIMUM, _session_graph
    from facesym_ros.cli.graph import checked_params_file
    from facesym_ros.config.registry import CONSOLE_NODE, node
    from facesym_ros.nodes.clinic_console import serve
    from facesym_ros.ros.bringup import GraphOptions, ros_arguments

    if not args.lead_in >= LEAD_IN_MINIMUM:
        raise ValueError(f'--lead-in must be at least {LEAD_IN_MINIMUM:g} s, got {args.lead_in:g}')
    if not 0 <= args.port <= 65535:
        raise ValueError(f'--port must be 0 to 65535, got {args.port}')
    params_file = checked_params_file(args.params_file)
    output = Path(args.output).expanduser().resolve()
    overrides = {'host': _quoted(args.host), 'port': str(args.port), 'output': _quoted(str(output)),
                 'mirror': str(not args.no_mirror).lower(), 'lead_in': repr(float(args.lead_in)),
                 'record': str(not args.no_record).lower(), 'storage': args.storage,
                 'image_topic': _quoted(args.image_topic)}
    if args.protocols:
        overrides['protocols'] = _quoted(str(Path(args.protocols).expanduser().resolve()))
    ros_args = ros_arguments(node(CONSOLE_NODE), params_file, GraphOptions(namespace=args.namespace,
                                                                           image_topic=args.image_topic), overrides)
    graph_factory = None
    if args.source:
        def graph_factory(folder: Path):
            return _session_graph(argparse.Namespace(**{**vars(args), 'output': folder, 'params_file': params_file}))
    return serve(['facesym-console', *ros_args], graph_factory)


def add_parsers(commands: argparse._SubParsersAction) -> None:
    console = commands.add_parser(
        'console', help='serve the clinic console: an operator page that runs sessions, and a patient page',
        description='Serve the operator page (http://HOST:PORT/: readiness, live video, tasks, scores, pause, '
                    'skip, stop, the report, the subject\'s earlier sessions) and the patient page (/patient: '
                    'the mirrored camera, the instruction and the countdown). Sessions run on the session '
                    'runner of `facesym session` and are kept in OUTPUT/SUBJECT/SESSION. Bound to any address '
                    'but localhost, every request needs the token printed at first start. Ctrl-C stops a '
                    'running session (partial report) and the console.')
    console.add_argument('--host', default=DEFAULTS.host,
                         help=f'address to serve on (default {DEFAULTS.host}: this machine only; any other address '
                              'needs the token)')
    console.add_argument('--port', type=int, default=DEFAULTS.port, help=f'TCP port (default {DEFAULTS.port}; 0 picks '
                                                                       'a free one, printed at start)')
    console.add_argument('--output', '-o', default=str(Path.home() / 'facesym-sessions'), metavar='DIR',
                         help='folder of every session, DIR/SUBJECT/SESSION (default ~/facesym-sessions)')
    console.add_argument('--protocols', metavar='DIR', help='folder of more protocol files (*.yaml) to offer beside '
                                                            'config/protocol.yaml')
    console.add_argument('--no-mirror', action='store_true', help='do not mirror the patient page\'s picture')
    console.add_argument('--lead-in', type=float, default=DEFAULTS.lead_in, metavar='SECONDS',
                         help=f'time between a task\'s prompt and its start (default {DEFAULTS.lead_in:g}) [s]')
    console.add_argument('--no-record', action='store_true', help='do not record session bags (reports then have '
                                                                 'no heat maps or key frames)')
    console.add_argument('--storage', choices=('mcap', 'sqlite3'), default=DEFAULTS.storage, help='session bag format')
    console.add_argument('--namespace', default='', help='namespace of the graph')
    console.add_argument('--image-topic', default=DEFAULTS.image_topic,
                         help='the camera topic: recorded in the bag, shown on the patient page (default image_raw)')
    console.add_argument('--source', help='bring the graph up on this source (sample, a video, a folder, '
                                          'camera:<index>) for each session, as `facesym session --source` does, '
                                          'instead of using a running graph')
    console.add_argument('--frame-rate', type=float, help='with --source: publishing rate [Hz]')
    add_params_argument(console)
    console.set_defaults(run=console_command)
