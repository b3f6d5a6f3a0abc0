"""`facesym view`: the running graph in the Foxglove app, over a local WebSocket (foxglove-sdk)."""

from __future__ import annotations

import argparse
import sys

DEFAULT_HOST = '127.0.0.1'
"""This machine only: the view carries patients' faces."""
DEFAULT_PORT = 8765
"""Foxglove's usual WebSocket port."""


def view_command(args: argparse.Namespace) -> int:
    import foxglove
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from facesym_ros.ros.foxglove_view import FoxgloveRelay
    from facesym_ros.ros.signals import StopSignals

    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)  # Ctrl-C is counted: see ros/signals.py
    server = foxglove.start_server(name='facesym', host=args.host, port=args.port)
    relay = FoxgloveRelay(namespace=args.namespace)
    executor = SingleThreadedExecutor()
    executor.add_node(relay)
    print(f'facesym view: Foxglove WebSocket on ws://{args.host}:{server.port}; in the Foxglove app, '
          f'Open connection > Foxglove WebSocket > ws://{args.host}:{server.port}, then import '
          'config/foxglove_layout.json (Ctrl-C stops)', file=sys.stderr, flush=True)
    signals = StopSignals().install()
    try:
        while not signals.count:
            executor.spin_once(timeout_sec=0.1)
    except ExternalShutdownException:
        pass
    finally:
        signals.restore()
        server.stop()
        executor.remove_node(relay)
        relay.destroy_node()
        rclpy.try_shutdown()
    return 0


def add_parsers(commands: argparse._SubParsersAction) -> None:
    view = commands.add_parser(
        'view', help='serve the running graph to the Foxglove app over a local WebSocket',
        description='Relay the raw image, the heat map, landmark and region annotations and the running and '
                    'final scores to a Foxglove WebSocket server (foxglove-sdk). It binds to 127.0.0.1 unless '
                    '--host says otherwise; open ws://127.0.0.1:8765 in the Foxglove app and import '
                    'config/foxglove_layout.json.')
    view.add_argument('--host', default=DEFAULT_HOST,
                      help=f'address to bind (default {DEFAULT_HOST}: this machine only; 0.0.0.0 exposes the '
                           'images to the network)')
    view.add_argument('--port', type=int, default=DEFAULT_PORT, help=f'TCP port (default {DEFAULT_PORT}; 0 picks '
                                                                     'a free one, printed at start)')
    view.add_argument('--namespace', default='', help='namespace the graph runs in')
    view.set_defaults(run=view_command)
