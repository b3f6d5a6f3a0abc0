"""The launch file's arguments, checked and turned into the nodes to start (launch/facesym.launch.py).

Plain Python, free of `launch`, so the rules are the same wherever the file
runs and can be tested without ROS launch: the parameter file is read and
checked as `facesym bringup` checks it, `rviz:=true` needs rviz2 on the ament
index, and a wrong value is a LaunchArgumentError, raised before any node
starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from facesym_ros.config.files import package_config_file
from facesym_ros.config.params import load_params_file
from facesym_ros.config.registry import NO_SOURCE, NODES, OPTIONAL_NODES, SOURCE_NODE
from facesym_ros.ros.bringup import remappings

CAMERA_SOURCE = 'camera'
"""The launch file's default source: the rig's V4L2 camera, numbered by camera_device."""
TRUE_WORDS = frozenset({'true', '1', 'yes', 'on'})
FALSE_WORDS = frozenset({'false', '0', 'no', 'off'})
RVIZ_PACKAGE = 'rviz2'


class LaunchArgumentError(ValueError):
    """A launch argument that cannot be used; its text says which and why."""


@dataclass(frozen=True)
class NodePlan:
    name: str
    remappings: list[tuple[str, str]]
    parameters: dict[str, str] = field(default_factory=dict)
    """Besides the parameter file: the source of image_source."""


@dataclass(frozen=True)
class GraphPlan:
    nodes: list[NodePlan]
    params_file: Path
    namespace: str
    use_sim_time: bool
    rviz_config: Path | None
    """config/facesym.rviz when RViz is to start, else None."""


def flag(name: str, value: str) -> bool:
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise LaunchArgumentError(f'{name}:={value!r} is not true or false')


def package_installed(package: str) -> bool:
    """Whether an ament package (rviz2) is on the ament index of this environment."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    except ImportError:
        return False
    try:
        get_package_prefix(package)
    except (PackageNotFoundError, LookupError, OSError):  # OSError: no AMENT_PREFIX_PATH at all
        return False
    return True


def image_source_of(source: str, camera_device: str) -> str | None:
    """The source parameter of the source node for the launch argument; None for `none` (no source node)."""
    source = source.strip()
    if source == NO_SOURCE:
        return None
    if source == CAMERA_SOURCE:
        if not camera_device.strip().isdigit():
            raise LaunchArgumentError(f'camera_device:={camera_device!r} is not a camera index (0 for /dev/video0)')
        return f'{CAMERA_SOURCE}:{int(camera_device)}'
    if source.startswith(f'{CAMERA_SOURCE}:'):
        if not source.partition(':')[2].isdigit():
            raise LaunchArgumentError(f'source:={source!r}: expected camera:<index>, e.g. camera:0')
        return source
    if source != 'sample' and not Path(source).expanduser().exists():
        raise LaunchArgumentError(f'source:={source!r}: no such video file or folder of frames')
    return source


def graph_plan(*, source: str, camera_device: str, image_topic: str, params_file: str, namespace: str,
               use_sim_time: str, rviz: str, console: str = 'false',
               installed: Callable[[str], bool] = package_installed) -> GraphPlan:
    """The nodes to start for these launch arguments; raises LaunchArgumentError (nothing is to start)."""
    if not params_file.strip():
        raise LaunchArgumentError('params_file:= is empty')
    path = Path(params_file).expanduser()
    try:
        load_params_file(path)  # a missing, unreadable or invalid file: ValueError naming it
    except ValueError as error:
        raise LaunchArgumentError(f'params_file: {error}') from None
    sim_time = flag('use_sim_time', use_sim_time)
    rviz_config = None
    if flag('rviz', rviz):
        if not installed(RVIZ_PACKAGE):
            raise LaunchArgumentError(f'rviz:=true, but {RVIZ_PACKAGE} is not installed (e.g. sudo apt install '
                                      f'ros-$ROS_DISTRO-rviz2), or launch without rviz:=true')
        rviz_config = package_config_file('facesym.rviz')
    image_source = image_source_of(source, camera_device)
    nodes = []
    optional = OPTIONAL_NODES if flag('console', console) else ()  # the clinic console
    for spec in (*NODES, *optional):
        if spec.name == SOURCE_NODE and image_source is None:
            continue
        parameters = {'source': image_source} if spec.name == SOURCE_NODE else {}
        nodes.append(NodePlan(spec.name, remappings(spec, image_topic), parameters))
    return GraphPlan(nodes, path.resolve(), namespace.strip(), sim_time, rviz_config)
