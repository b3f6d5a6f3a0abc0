"""`facesym status`: the running graph's health from /diagnostics, one line per node."""

from __future__ import annotations

import argparse
import time

from facesym_ros.config.registry import DIAGNOSTICS_TOPIC, NODE_NAMES, select

DEFAULT_DURATION = 5.0
"""Longest listening, in seconds; it ends earlier once every expected node has reported (they report every
diagnostics_period, 1 s by default, and a new subscriber takes a moment to be discovered)."""
MIN_DURATION = 1.5
"""Shortest listening, so that statuses of other publishers on /diagnostics are heard too [s]."""
MISSING = 'MISSING'


def node_path(namespace: str, name: str) -> str:
    """A node's fully qualified name, as its DiagnosticStatus is named."""
    namespace = namespace.strip('/')
    return f'/{namespace}/{name}' if namespace else f'/{name}'


def collect(expected: list[str], duration: float) -> dict[str, object]:
    """The latest DiagnosticStatus of every status name heard on /diagnostics: until every expected name has
    reported (but at least MIN_DURATION) or `duration` seconds have passed."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor

    from facesym_ros.ros.node_base import pipeline_qos

    latest: dict[str, object] = {}
    rclpy.init()
    try:
        node = rclpy.create_node('facesym_status')
        node.create_subscription(DiagnosticArray, DIAGNOSTICS_TOPIC,
                                 lambda msg: latest.update({status.name: status for status in msg.status}),
                                 pipeline_qos(100))
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        started = time.monotonic()
        while time.monotonic() < started + duration:
            if time.monotonic() > started + MIN_DURATION and set(expected) <= set(latest):
                break
            executor.spin_once(timeout_sec=0.05)
        executor.remove_node(node)
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
    return latest


def format_status(expected: list[str], latest: dict) -> tuple[list[str], bool]:
    """The screen (a header, then one line per node: expected ones first, then any other status heard) and
    whether everything is OK (every expected node reported, every status OK)."""
    from facesym_ros.ros.node_base import (
        KEY_FACE,
        KEY_MAX_MS,
        KEY_MEAN_MS,
        KEY_MODEL,
        KEY_RATE,
        KEY_UNPAIRED,
        KEY_UNREADABLE,
        LEVEL_NAMES,
    )

    width = max(len(name) for name in [*expected, *latest, 'node'])
    lines = [f'{"node":<{width}}  {"level":<7}{"rate Hz":>8}{"ms mean":>9}{"ms max":>8}{"unpaired":>9}'
             f'{"unread":>7}  {"face":<6}{"model":<6} message']
    healthy = True
    for name in [*expected, *sorted(set(latest) - set(expected))]:
        status = latest.get(name)
        if status is None:
            lines.append(f'{name:<{width}}  {MISSING:<7}  no status on {DIAGNOSTICS_TOPIC}')
            healthy = False
            continue
        values = {kv.key: kv.value for kv in status.values}
        level = LEVEL_NAMES.get(status.level, f'level {status.level[0]}')
        healthy = healthy and level == 'OK'
        lines.append(f'{name:<{width}}  {level:<7}{values.get(KEY_RATE, "-"):>8}{values.get(KEY_MEAN_MS, "-"):>9}'
                     f'{values.get(KEY_MAX_MS, "-"):>8}{values.get(KEY_UNPAIRED, "-"):>9}'
                     f'{values.get(KEY_UNREADABLE, "-"):>7}  {values.get(KEY_FACE, "-"):<6}'
                     f'{values.get(KEY_MODEL, "-"):<6} {status.message}')
    return lines, healthy


def status_command(args: argparse.Namespace) -> int:
    expected = [node_path(args.namespace, spec.name) for spec in select(args.nodes)]
    latest = collect(expected, args.duration)
    lines, healthy = format_status(expected, latest)
    print('\n'.join(lines))
    return 0 if healthy else 1


def add_parsers(commands: argparse._SubParsersAction) -> None:
    status = commands.add_parser(
        'status', help='print the running graph\'s health from /diagnostics, one line per node',
        description=f'Listen to {DIAGNOSTICS_TOPIC} until every node reported (a few seconds) and print each '
                    'node\'s level, frame rate, processing time, dropped frames, face and model. Exit status 0 '
                    'when every node reported OK, 1 when any is WARN, ERROR or missing.')
    status.add_argument('--duration', type=float, default=DEFAULT_DURATION,
                        help=f'longest wait for every node\'s report [s] (default {DEFAULT_DURATION:g})')
    status.add_argument('--namespace', default='', help='namespace the graph runs in')
    status.add_argument('--nodes', help=f'comma-separated nodes expected (default: all of {",".join(NODE_NAMES)})')
    status.set_defaults(run=status_command)
