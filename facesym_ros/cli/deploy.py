"""`facesym systemd-unit`: a systemd unit that starts the graph at boot and restarts it."""

from __future__ import annotations

import argparse
import getpass
import os
import shlex
import sys
from pathlib import Path

from facesym_ros.config.systemd import BRINGUP, LAUNCH, ROUTES, UnitSpec, bringup_command, launch_command, render_unit

PASSED_ENVIRONMENT = ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE', 'ROS_STATIC_PEERS', 'RMW_IMPLEMENTATION',
                      'FASTDDS_DEFAULT_PROFILES_FILE', 'ROS_DISCOVERY_SERVER')
"""Taken into the unit from the environment the command runs in, where set."""


def workspace_setup() -> list[str]:
    """The setup.bash files of the ROS install and of this package's colcon workspace, where they are known."""
    files = []
    distro = os.environ.get('ROS_DISTRO')
    if distro and Path(f'/opt/ros/{distro}/setup.bash').is_file():
        files.append(f'/opt/ros/{distro}/setup.bash')
    try:
        from ament_index_python.packages import get_package_prefix

        prefix = Path(get_package_prefix('facesym_ros'))
    except (ImportError, LookupError, OSError):
        return files
    for candidate in (prefix / 'setup.bash', prefix.parent / 'setup.bash'):  # merged or isolated install
        if candidate.is_file() and str(candidate) not in files:
            files.append(str(candidate))
            break
    return files


def unit_command(args: argparse.Namespace) -> int:
    arguments = list(args.arguments)
    if arguments[:1] == ['--']:
        arguments = arguments[1:]
    if args.route == LAUNCH:
        bad = [argument for argument in arguments if ':=' not in argument]
        if bad:
            raise ValueError(f'launch arguments are name:=value, not {" ".join(bad)}')
        command = launch_command(arguments, args.ros2)
        setup = args.setup if args.setup is not None else workspace_setup()
    else:
        command = bringup_command(sys.executable, arguments)
        setup = args.setup or []
    environment = {name: os.environ[name] for name in PASSED_ENVIRONMENT if os.environ.get(name)}
    for assignment in args.env:
        name, equals, value = assignment.partition('=')
        if not equals or not name:
            raise ValueError(f'--env {assignment!r}: expected NAME=VALUE')
        environment[name] = value
    environment.setdefault('PYTHONUNBUFFERED', '1')  # node output reaches the journal line by line
    spec = UnitSpec(route=args.route, command=command, setup_files=[str(s) for s in setup], user=args.user,
                    environment=environment, working_directory=args.working_directory)
    text = render_unit(spec, generated_by=shlex.join(['facesym', *sys.argv[1:]]))
    if args.output:
        Path(args.output).write_text(text)
        print(f'facesym systemd-unit: wrote {args.output}', file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def add_parsers(commands: argparse._SubParsersAction) -> None:
    unit = commands.add_parser(
        'systemd-unit', help='print a systemd unit that starts the graph at boot and restarts it',
        description='Write a systemd service unit for this rig: the launch route runs `ros2 launch facesym_ros '
                    'facesym.launch.py ARGS` after sourcing the ROS install and the workspace; the bringup route '
                    'runs this venv\'s `facesym bringup ARGS` (no ROS install). systemctl stop stops every node. '
                    'Install with: facesym systemd-unit ... -o facesym.service && sudo cp facesym.service '
                    '/etc/systemd/system/ && sudo systemctl daemon-reload && sudo systemctl enable --now facesym')
    unit.add_argument('arguments', nargs='*', metavar='ARG',
                      help='launch arguments (name:=value, e.g. camera_device:=0 namespace:=rig1), or with '
                           '--route bringup the bringup options after --')
    unit.add_argument('--route', choices=ROUTES, default=LAUNCH,
                      help=f'{LAUNCH}: ros2 launch on a ROS 2 install (default); {BRINGUP}: facesym bringup of '
                           'this venv')
    unit.add_argument('--setup', action='append', metavar='FILE',
                      help='a file to source before the command (repeatable, in order; default for the launch '
                           'route: /opt/ros/$ROS_DISTRO/setup.bash and this workspace\'s install/setup.bash)')
    unit.add_argument('--user', default=os.environ.get('SUDO_USER') or getpass.getuser(),
                      help='user the graph runs as (default: you); it needs the camera (group video)')
    unit.add_argument('--env', action='append', default=[], metavar='NAME=VALUE',
                      help='an environment variable of the service (repeatable); ROS_DOMAIN_ID and the other '
                           'ROS and DDS variables set now are taken over')
    unit.add_argument('--ros2', default='ros2', help='the ros2 command (default: ros2, found after the setup files)')
    unit.add_argument('--working-directory', default='', help='working directory of the service')
    unit.add_argument('-o', '--output', help='write the unit to this file instead of printing it')
    unit.set_defaults(run=unit_command)
