"""Starting the facesym graph without ROS launch (`facesym bringup`, the demo, the tests).

Starts nodes of the registry (facesym_ros.config.registry) with the same
parameter file and remappings as launch/facesym.launch.py: each node in its
own process, or all in one process on a multi-threaded executor.

Node processes die with the process that started them (Linux: each node asks
the kernel for SIGTERM when its parent dies, however it dies; see
die_with_parent), so a killed bringup leaves no nodes behind: an orphaned node
whose shutdown hangs is ended ORPHAN_EXIT_SECONDS later, its threads' stacks
in the log.
ProcessGraph.supervise() restarts a node that died, after a delay that
doubles with every further death within a window, and gives up on a node that
keeps dying (config.node_settings.RespawnSettings, which the launch file reads
too). running_nodes() finds a graph already running in a namespace. A
GraphOptions holds what the launch file takes as arguments: the namespace,
the camera topic (image_topic, for a camera driver in place of image_source)
and use_sim_time (every node follows /clock, e.g. of `facesym play --clock`).
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from facesym_ros.config.files import dds_environment
from facesym_ros.config.node_settings import RespawnSettings
from facesym_ros.config.registry import IMAGE_TOPIC, NodeSpec

STOP_TIMEOUT = 10.0
ANSWER_TIMEOUT = 5.0
"""How long running_nodes() waits for the nodes it discovered to answer."""
PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal a process gets when the thread that started it ends."""
PARENT_VARIABLE = 'FACESYM_DIE_WITH_PARENT'
"""Set by ProcessGraph in a node's environment to its own pid: the node dies with that process."""
ORPHAN_EXIT_SECONDS = 5.0
"""How long a node whose starter died may take to shut down; then it exits (status 1), its stacks printed."""
PARENT_POLL_SECONDS = 0.5


def die_with_parent() -> None:
    """In a node started by ProcessGraph: get SIGTERM when the starting process dies (Linux), or exit now if it
    already has.

    Done by the node itself as it starts, not in a preexec_fn, which is unsafe in a process with threads
    (the demo and the tests run rclpy beside their graph). SIGTERM rather than SIGKILL: rclpy then shuts
    the node down cleanly, and the node leaves the ROS graph at once instead of lingering in discovery.
    """
    parent = os.environ.pop(PARENT_VARIABLE, '')
    if not parent:
        return
    if sys.platform.startswith('linux'):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    if os.getppid() != int(parent):  # it died before prctl took effect (or while this node was importing)
        sys.exit(f'{sys.argv[0]}: the process that started this node has ended; exiting')
    threading.Thread(target=_exit_when_orphaned, args=(int(parent),), name='facesym.parent', daemon=True).start()


def _exit_when_orphaned(parent: int) -> None:
    """Once the starting process has gone: a shutdown that hangs ends ORPHAN_EXIT_SECONDS later.

    Nobody is left to escalate to SIGKILL, as launch, systemd and ProcessGraph.stop do. faulthandler's timer
    runs on a thread of its own without the GIL: it prints every thread's stack and exits, whatever holds
    the node. Without prctl (not Linux) the node is asked to stop here.
    """
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    faulthandler.dump_traceback_later(ORPHAN_EXIT_SECONDS, exit=True)
    if not sys.platform.startswith('linux'):
        os.kill(os.getpid(), signal.SIGTERM)


def exit_description(code: int) -> str:
    """'status 1' or 'signal SIGKILL' for a Popen return code."""
    if code < 0:
        try:
            return f'signal {signal.Signals(-code).name}'
        except ValueError:
            return f'signal {-code}'
    return f'status {code}'


class RespawnLimitError(RuntimeError):
    """A node kept dying: the respawn limit was reached."""


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
                 env: Mapping[str, str] | None = None, output=None,
                 respawn: RespawnSettings | None = None) -> None:
        self.specs = list(specs)
        self.params_file = params_file
        self.options = options
        self.overrides = overrides or {}
        self.env = dds_environment(dict(env) if env is not None else None)
        self.output = output
        self.respawn = respawn or RespawnSettings()
        self.processes: dict[str, subprocess.Popen] = {}
        self.deaths: dict[str, list[float]] = {}
        """Monotonic times at which each node was seen dead."""
        self._restart_at: dict[str, float] = {}

    def start(self, names: Sequence[str] | None = None) -> None:
        for spec in self.specs:
            if (names is not None and spec.name not in names) or spec.name in self.processes:
                continue
            self._spawn(spec)

    def _spawn(self, spec: NodeSpec) -> subprocess.Popen:
        command = [sys.executable, '-m', spec.module,
                   *ros_arguments(spec, self.params_file, self.options, self.overrides.get(spec.name))]
        # A session of its own: Ctrl-C reaches this process only, which then stops the nodes with
        # SIGTERM, on which rclpy shuts down cleanly instead of raising inside a callback.
        process = subprocess.Popen(
            command, env={**self.env, PARENT_VARIABLE: str(os.getpid())}, stdout=self.output,
            stderr=subprocess.STDOUT if self.output else None, start_new_session=True)
        self.processes[spec.name] = process
        return process

    def supervise(self) -> list[str]:
        """Restart the nodes that died, each after its delay; what happened, one line per event.

        Raises RespawnLimitError when a node died respawn_limit times within respawn_window.
        """
        policy = self.respawn
        now = time.monotonic()
        lines = []
        for spec in self.specs:
            process = self.processes.get(spec.name)
            if process is None:
                continue
            if spec.name in self._restart_at:
                if now >= self._restart_at[spec.name]:
                    del self._restart_at[spec.name]
                    lines.append(f'restarted {spec.name} (pid {self._spawn(spec).pid})')
                continue
            code = process.poll()
            if code is None:
                continue
            deaths = [t for t in self.deaths.get(spec.name, []) if now - t <= policy.respawn_window] + [now]
            self.deaths[spec.name] = deaths
            if len(deaths) >= policy.respawn_limit:
                raise RespawnLimitError(f'{spec.name} died with {exit_description(code)}, {len(deaths)} times within '
                                  f'{policy.respawn_window:g} s; not restarting it again')
            delay = min(policy.max_respawn_delay, policy.respawn_delay * 2 ** (len(deaths) - 1))
            self._restart_at[spec.name] = now + delay
            lines.append(f'{spec.name} (pid {process.pid}) died with {exit_description(code)}; restarting it in '
                         f'{delay:g} s ({len(deaths)} of {policy.respawn_limit} deaths allowed within '
                         f'{policy.respawn_window:g} s)')
        return lines

    def exited(self) -> tuple[str, int] | None:
        """(name, exit status) of a node that has stopped, if any."""
        for name, process in self.processes.items():
            code = process.poll()
            if code is not None:
                return name, code
        return None

    def stop(self, timeout: float = STOP_TIMEOUT) -> dict[str, int]:
        """SIGTERM every node, then SIGKILL what is still running after `timeout`; exit statuses by name."""
        self._restart_at.clear()
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


def running_nodes(names: Sequence[str], namespace: str = '', listen: float = 2.0) -> list[str]:
    """Which of these node names already run, and answer, in this namespace on this ROS domain.

    Listens to discovery for `listen` seconds, then asks each node found for its parameter list: a node
    killed outright stays visible in discovery for a while, but only a live one answers.
    """
    import rclpy
    from rcl_interfaces.srv import ListParameters
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    wanted = '/' + namespace.strip('/') if namespace.strip('/') else '/'
    context = Context()
    rclpy.init(context=context)
    try:
        node = Node('facesym_bringup_check', context=context, start_parameter_services=False)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + listen
        found: set[str] = set()
        while time.monotonic() < deadline:
            found |= {name for name, ns in node.get_node_names_and_namespaces() if ns == wanted and name in names}
            time.sleep(0.1)
        clients = {name: node.create_client(ListParameters, f'{wanted.rstrip("/")}/{name}/list_parameters')
                   for name in sorted(found)}
        futures: dict[str, object] = {}
        deadline = time.monotonic() + ANSWER_TIMEOUT

        def answered() -> bool:
            return len(futures) == len(clients) and all(future.done() for future in futures.values())

        while not answered() and time.monotonic() < deadline:
            for name, client in clients.items():
                if name not in futures and client.service_is_ready():
                    futures[name] = client.call_async(ListParameters.Request())
            executor.spin_once(timeout_sec=0.05)
        alive = [name for name, future in futures.items() if future.done()]
        executor.remove_node(node)
        node.destroy_node()
        return alive
    finally:
        rclpy.try_shutdown(context=context)


def run_composed(specs: Sequence[NodeSpec], params_file: Path, options: GraphOptions = GraphOptions(),
                 overrides: Mapping[str, Mapping[str, str]] | None = None) -> int:
    """All nodes in this process, on a multi-threaded executor, until Ctrl-C or SIGTERM."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    from facesym_ros.config.node_settings import ExecutorSettings
    from facesym_ros.ros.node_base import use_opencv_threads

    os.environ.update(dds_environment())
    rclpy.init()
    nodes = []
    try:
        for spec in specs:
            args = ros_arguments(spec, params_file, options, (overrides or {}).get(spec.name))
            nodes.append(spec.node_class()(cli_args=args))
        if nodes:  # one process: the largest of the nodes' opencv_threads
            use_opencv_threads(max(node.settings(ExecutorSettings).opencv_threads for node in nodes))
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
