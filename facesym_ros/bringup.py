"""`facesym bringup`: start the facesym graph without ROS launch.

Starts the nodes of facesym_ros.graph with the same parameter file and
remappings as launch/facesym.launch.py: each node in its own process (the
default), or all in one process on a multi-threaded executor (--composed).
Ctrl-C or SIGTERM stops every node cleanly; if one node dies, the others are
stopped too and its exit status is returned.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from facesym_ros.graph import GRAPH, NodeSpec, dds_environment
from facesym_ros.params import default_params_file, load_params_file

STOP_TIMEOUT = 10.0


def ros_arguments(spec: NodeSpec, params_file: Path, namespace: str = '',
                  overrides: Mapping[str, str] | None = None) -> list[str]:
    """--ros-args for one node: parameter file, namespace, remappings and parameter overrides."""
    args = ['--ros-args', '--params-file', str(params_file)]
    if namespace:
        args += ['-r', f'__ns:={namespace}']
    for source, target in spec.remappings:
        args += ['-r', f'{source}:={target}']
    for name, value in (overrides or {}).items():
        args += ['-p', f'{name}:={value}']
    return args


class ProcessGraph:
    """Graph nodes, one process each."""

    def __init__(self, specs: Sequence[NodeSpec], params_file: Path, *, namespace: str = '',
                 overrides: Mapping[str, Mapping[str, str]] | None = None,
                 env: Mapping[str, str] | None = None, output=None) -> None:
        self.specs = list(specs)
        self.params_file = params_file
        self.namespace = namespace
        self.overrides = overrides or {}
        self.env = dds_environment(dict(env) if env is not None else None)
        self.output = output
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, names: Sequence[str] | None = None) -> None:
        for spec in self.specs:
            if (names is not None and spec.name not in names) or spec.name in self.processes:
                continue
            command = [sys.executable, '-m', spec.module,
                       *ros_arguments(spec, self.params_file, self.namespace, self.overrides.get(spec.name))]
            # A session of its own: Ctrl-C reaches this process only, which then stops the nodes with
            # SIGTERM, on which rclpy shuts down cleanly instead of raising inside a callback.
            self.processes[spec.name] = subprocess.Popen(
                command, env=self.env, stdout=self.output, stderr=subprocess.STDOUT if self.output else None,
                start_new_session=True)

    def exited(self) -> tuple[str, int] | None:
        """(name, exit status) of a node that has stopped, if any."""
        for name, process in self.processes.items():
            code = process.poll()
            if code is not None:
                return name, code
        return None

    def stop(self, timeout: float = STOP_TIMEOUT) -> dict[str, int]:
        """SIGTERM every node, then SIGKILL what is still running after `timeout`; exit statuses by name."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return {name: process.returncode for name, process in self.processes.items()}

    def __enter__(self) -> ProcessGraph:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def run_composed(specs: Sequence[NodeSpec], params_file: Path, namespace: str = '',
                 overrides: Mapping[str, Mapping[str, str]] | None = None) -> int:
    """All nodes in this process, on a multi-threaded executor, until Ctrl-C or SIGTERM."""
    import os

    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    os.environ.update(dds_environment())
    rclpy.init()
    nodes = []
    try:
        for spec in specs:
            args = ros_arguments(spec, params_file, namespace, (overrides or {}).get(spec.name))
            nodes.append(spec.node_class()(cli_args=args))
        executor = MultiThreadedExecutor(num_threads=max(2, len(nodes)))
        for node in nodes:
            executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def source_overrides(args: argparse.Namespace) -> dict[str, dict[str, str]]:
    image_source: dict[str, str] = {}
    if args.source:
        image_source['source'] = args.source
    if args.frame_rate:
        image_source['frame_rate'] = repr(float(args.frame_rate))
    return {'image_source': image_source}


def selected_specs(names: str | None) -> list[NodeSpec]:
    if not names:
        return list(GRAPH)
    wanted = [name.strip() for name in names.split(',') if name.strip()]
    unknown = set(wanted) - {spec.name for spec in GRAPH}
    if unknown:
        raise ValueError(f'unknown nodes: {", ".join(sorted(unknown))} (known: {", ".join(s.name for s in GRAPH)})')
    return [spec for spec in GRAPH if spec.name in wanted]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--params-file', type=Path, help='ROS 2 parameter file (default: config/facesym.yaml)')
    parser.add_argument('--namespace', default='', help='namespace of every node and topic')
    parser.add_argument('--source', help="image_source's source: sample, a video, a folder or camera:<index>")
    parser.add_argument('--frame-rate', type=float, help='image_source publishing rate [Hz]')
    parser.add_argument('--nodes', help='comma-separated subset of nodes to start (default: all)')
    parser.add_argument('--composed', action='store_true',
                        help='run all nodes in this process on a multi-threaded executor')


def bringup_command(args: argparse.Namespace) -> int:
    params_file = (args.params_file or default_params_file()).resolve()
    load_params_file(params_file)  # a bad file fails here, before any node starts
    specs = selected_specs(args.nodes)
    overrides = source_overrides(args)
    if args.composed:
        return run_composed(specs, params_file, args.namespace, overrides)

    stopping = False

    def request_stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    graph = ProcessGraph(specs, params_file, namespace=args.namespace, overrides=overrides)
    graph.start()
    print(f'facesym bringup: started {", ".join(graph.processes)} (Ctrl-C stops them)', file=sys.stderr)
    status = 0
    while not stopping:
        died = graph.exited()
        if died is not None:
            name, status = died
            print(f'facesym bringup: {name} exited with status {status}; stopping the graph', file=sys.stderr)
            status = status or 1
            break
        time.sleep(0.2)
    graph.stop()
    return status
