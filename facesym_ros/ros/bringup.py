"""Starting the facesym graph without ROS launch (`facesym bringup`, the demo, the tests).

Starts nodes of the registry (facesym_ros.config.registry) with the same
parameter file and remappings as launch/facesym.launch.py: each node in its
own process, or all in one process on a multi-threaded executor. A
GraphOptions holds what the launch file takes as arguments: the namespace,
the camera topic (image_topic, for a camera driver in place of image_source)
and use_sim_time (every node follows /clock, e.g. of `facesym play --clock`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from facesym_ros.config.files import dds_environment
from facesym_ros.config.registry import IMAGE_TOPIC, NodeSpec

STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class GraphOptions:
    """What the launch file takes as arguments, for every node alike."""

    namespace: str = ''
    image_topic: str = ''
    """The camera's image topic, in place of image_raw (relative names resolve in the namespace)."""
    use_sim_time: bool = False


def remappings(spec: NodeSpec, image_topic: str = '') -> list[tuple[str, str]]:
    """The node's remappings, with image_raw replaced by image_topic when one is given."""
    if not image_topic or image_topic == IMAGE_TOPIC:
        return list(spec.remappings)
    mapped = [(source, image_topic if target == IMAGE_TOPIC else target) for source, target in spec.remappings]
    if IMAGE_TOPIC in spec.publishes:
        mapped.append((IMAGE_TOPIC, image_topic))
    return mapped


def ros_arguments(spec: NodeSpec, params_file: Path, options: GraphOptions = GraphOptions(),
                  overrides: Mapping[str, str] | None = None) -> list[str]:
    """--ros-args for one node: parameter file, namespace, remappings, use_sim_time and parameter overrides."""
    args = ['--ros-args', '--params-file', str(params_file)]
    if options.namespace.strip('/'):
        args += ['-r', f'__ns:=/{options.namespace.strip("/")}']  # rcl takes fully qualified namespaces only
    for source, target in remappings(spec, options.image_topic):
        args += ['-r', f'{source}:={target}']
    if options.use_sim_time:
        args += ['-p', 'use_sim_time:=true']
    for name, value in (overrides or {}).items():
        args += ['-p', f'{name}:={value}']
    return args


class ProcessGraph:
    """Graph nodes, one process each."""

    def __init__(self, specs: Sequence[NodeSpec], params_file: Path, *, options: GraphOptions = GraphOptions(),
                 overrides: Mapping[str, Mapping[str, str]] | None = None,
                 env: Mapping[str, str] | None = None, output=None) -> None:
        self.specs = list(specs)
        self.params_file = params_file
        self.options = options
        self.overrides = overrides or {}
        self.env = dds_environment(dict(env) if env is not None else None)
        self.output = output
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, names: Sequence[str] | None = None) -> None:
        for spec in self.specs:
            if (names is not None and spec.name not in names) or spec.name in self.processes:
                continue
            command = [sys.executable, '-m', spec.module,
                       *ros_arguments(spec, self.params_file, self.options, self.overrides.get(spec.name))]
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


def run_composed(specs: Sequence[NodeSpec], params_file: Path, options: GraphOptions = GraphOptions(),
                 overrides: Mapping[str, Mapping[str, str]] | None = None) -> int:
    """All nodes in this process, on a multi-threaded executor, until Ctrl-C or SIGTERM."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    os.environ.update(dds_environment())
    rclpy.init()
    nodes = []
    try:
        for spec in specs:
            args = ros_arguments(spec, params_file, options, (overrides or {}).get(spec.name))
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
