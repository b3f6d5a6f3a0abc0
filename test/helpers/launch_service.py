"""Run launch/facesym.launch.py through launch.LaunchService, as an including launch file would.

    python -m helpers.launch_service [--push-namespace NS] [name:=value ...]

With --push-namespace, the file is included under launch_ros's PushRosNamespace (a GroupAction), the way a
rig's own launch file puts the graph in a namespace. Exits with LaunchService.run()'s status.
"""

from __future__ import annotations

import sys
from pathlib import Path

from launch import LaunchDescription, LaunchService
from launch.actions import GroupAction, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch_ros.actions import PushRosNamespace

LAUNCH_FILE = Path(__file__).resolve().parents[2] / 'launch' / 'facesym.launch.py'


def main(argv: list[str]) -> int:
    namespace = ''
    if argv[:1] == ['--push-namespace']:
        namespace, argv = argv[1], argv[2:]
    arguments = [tuple(argument.split(':=', 1)) for argument in argv]
    include = IncludeLaunchDescription(PythonLaunchDescriptionSource(str(LAUNCH_FILE)), launch_arguments=arguments)
    actions = [GroupAction([PushRosNamespace(namespace), include])] if namespace else [include]
    service = LaunchService()
    service.include_launch_description(LaunchDescription(actions))
    return service.run()


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
