"""`facesym bringup` and `facesym demo`: the live graph without ROS launch."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from facesym_ros.cli.common import add_params_argument
from facesym_ros.config.files import SAMPLE_VIDEO, default_params_file
from facesym_ros.config.node_settings import RespawnSettings
from facesym_ros.config.params import load_params_file
from facesym_ros.config.registry import (
    CONSOLE_NODE,
    IMAGE_TOPIC,
    NO_SOURCE,
    NODE_NAMES,
    SOURCE_NODE,
    camera_subscribers,
    node,
    select,
)
from facesym_ros.core.report import format_table
from facesym_ros.core.video import FrameSource

RIG_CAMERA = 'camera:0'
"""bringup's source unless --source says otherwise: the rig's first V4L2 camera (the demo plays the sample)."""


def source_overrides(source: str | None, frame_rate: float | None) -> dict[str, dict[str, str]]:
    """Parameter overrides of the source node from the command line."""
    values: dict[str, str] = {}
    if source and source != NO_SOURCE:
        values['source'] = source
    if frame_rate:
        values['frame_rate'] = repr(float(frame_rate))
    return {SOURCE_NODE: values}


def checked_params_file(path: Path | None) -> Path:
    """The parameter file, checked before any node starts (a bad file fails here, in one line)."""
    params_file = (path or default_params_file()).resolve()
    load_params_file(params_file)
    return params_file


def refuse_second_graph(specs, namespace: str, listen: float) -> None:
    """Two graphs in one namespace would both answer start_trial and score every frame twice: refuse."""
    import os

    from facesym_ros.ros.bringup import running_nodes

    if listen <= 0:
        return
    running = running_nodes([spec.name for spec in specs], namespace, listen)
    if running:
        raise ValueError(f'a facesym graph already runs in namespace {"/" + namespace.strip("/")!r} on ROS domain '
                         f'{os.environ.get("ROS_DOMAIN_ID", "0")} ({", ".join(running)} answered); stop it, or '
                         'use another --namespace')


def bringup_command(args: argparse.Namespace) -> int:
    from facesym_ros.ros.bringup import GraphOptions, ProcessGraph, RespawnLimitError, run_composed

    params_file = checked_params_file(args.params_file)
    specs = select(args.nodes)
    if args.console and CONSOLE_NODE not in {spec.name for spec in specs}:
        specs.append(node(CONSOLE_NODE))
    if args.source == NO_SOURCE:
        specs = [spec for spec in specs if spec.name != SOURCE_NODE]
    overrides = source_overrides(args.source, args.frame_rate)
    respawn = RespawnSettings()
    refuse_second_graph(specs, args.namespace, respawn.graph_check_seconds)
    options = GraphOptions(namespace=args.namespace, image_topic=args.image_topic, use_sim_time=args.use_sim_time)
    if args.composed:
        return run_composed(specs, params_file, options, overrides)

    stopping = False

    def request_stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, request_stop)
    graph = ProcessGraph(specs, params_file, options=options, overrides=overrides, respawn=respawn)
    graph.start()
    pids = ', '.join(f'{name} (pid {process.pid})' for name, process in graph.processes.items())
    print(f'facesym bringup: started {pids} (Ctrl-C stops them)', file=sys.stderr, flush=True)
    status = 0
    while not stopping:
        if args.no_respawn:
            died = graph.exited()
            if died is not None:
                name, status = died
                print(f'facesym bringup: {name} exited with status {status}; stopping the graph', file=sys.stderr)
                status = status or 1
                break
        else:
            try:
                for line in graph.supervise():
                    print(f'facesym bringup: {line}', file=sys.stderr, flush=True)
            except RespawnLimitError as error:
                print(f'facesym bringup: {error}; stopping the graph', file=sys.stderr, flush=True)
                status = 1
                break
        time.sleep(0.1)
    graph.stop()
    return status


def demo_command(args: argparse.Namespace) -> int:
    """Run the whole graph on a source, one trial over all of it, printing scores as they arrive."""
    import rclpy

    from facesym_ros.msg import SymmetryScore
    from facesym_ros.ros.bringup import ProcessGraph
    from facesym_ros.ros.conversions import msg_to_score
    from facesym_ros.ros.graph_client import GraphClient, run_source_trial

    params_file = checked_params_file(args.params_file)
    source = args.source or 'sample'
    expected = FrameSource.open(SAMPLE_VIDEO if source == 'sample' else source).frame_count
    overrides = source_overrides(source, args.frame_rate)
    specs = [spec for spec in select(None) if not (spec.viewer_only and args.no_annotator)]
    overrides[SOURCE_NODE]['wait_for_subscribers'] = str(camera_subscribers(specs))
    refuse_second_graph(specs, '', RespawnSettings().graph_check_seconds)
    log = open(args.log, 'w') if args.log else None  # noqa: SIM115 - closed below
    rclpy.init()
    client = GraphClient()
    client.on_score = lambda msg: print(
        ('FINAL ' if msg.kind == SymmetryScore.KIND_FINAL else 'running ') + f'{msg.trial_id} after '
        f'{msg.frame_count} frames: ' + ', '.join(f'{r.region} SS {r.symmetry:.3f}' for r in msg.regions),
        flush=True)
    graph = ProcessGraph(specs, params_file, overrides=overrides, output=log)
    try:
        print(f'facesym demo: starting the graph; one trial over {source} ({expected} frames)', file=sys.stderr)
        final = run_source_trial(graph, client, expected, timeout=max(120.0, expected))
        print()
        print(format_table(msg_to_score(final), title=f'{final.trial_id}: live graph on {source} '
                                                       f'({len(client.motion_stamps)} of {expected} frames)'))
        return 0
    finally:
        graph.stop()
        client.close()
        rclpy.try_shutdown()
        if log:
            log.close()


def add_parsers(commands: argparse._SubParsersAction) -> None:
    up = commands.add_parser(
        'bringup', help='start the facesym ROS graph without ROS launch (same graph as the launch file)',
        description='Start the facesym nodes with config/facesym.yaml, each in its own process or composed '
                    'in one; Ctrl-C stops them. A node that dies is restarted; the nodes die with this command. '
                    'Refuses to start a second graph in a namespace where one already runs.')
    add_params_argument(up)
    up.add_argument('--namespace', default='', help='namespace of every node and topic')
    up.add_argument('--source', default=RIG_CAMERA,
                    help=f"{SOURCE_NODE}'s source: camera:<index> (default {RIG_CAMERA}, the rig's camera), "
                         f"sample (the bundled clip), a video or a folder; {NO_SOURCE}: no {SOURCE_NODE}, a camera "
                         "driver publishes the images")
    up.add_argument('--image-topic', default='',
                    help=f'the camera topic the nodes take images from, in place of {IMAGE_TOPIC} '
                         f'(e.g. /camera/image_raw; a relative name is in the namespace)')
    up.add_argument('--use-sim-time', action='store_true',
                    help='every node follows /clock (use_sim_time), e.g. of `facesym play --clock`')
    up.add_argument('--frame-rate', type=float, help=f'{SOURCE_NODE} publishing rate [Hz]')
    up.add_argument('--nodes', help=f'comma-separated subset of nodes to start (default: all of '
                                    f'{",".join(NODE_NAMES)})')
    up.add_argument('--console', action='store_true',
                    help='also start the clinic console (operator and patient pages; see `facesym console`)')
    up.add_argument('--composed', action='store_true',
                    help='run all nodes in this process on a multi-threaded executor (no restarts)')
    up.add_argument('--no-respawn', action='store_true',
                    help='stop the whole graph when a node dies instead of restarting it')
    up.set_defaults(run=bringup_command)

    demo = commands.add_parser(
        'demo', help='run the live graph on the bundled sample (or --source) and print scores as they arrive',
        description='Bring the graph up, run one trial over the whole source through the scorer\'s services, '
                    'print the running and final scores, and shut the graph down.')
    add_params_argument(demo)
    demo.add_argument('--source', help=f'what {SOURCE_NODE} publishes (default: the bundled sample clip)')
    demo.add_argument('--frame-rate', type=float, help='publishing rate [Hz] (default: the source\'s)')
    demo.add_argument('--no-annotator', action='store_true', help='do not start the nodes that only draw for people')
    demo.add_argument('--log', help='write the nodes\' output to this file instead of the terminal')
    demo.set_defaults(run=demo_command)
