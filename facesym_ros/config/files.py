"""Files the package ships: config/ and msg/ (from the checkout or the installed share directory), sample data.

The sample clip and still come with their origin and licences (facesym_ros/data/README.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
DATA_DIR = PACKAGE_DIR / 'data'
SAMPLE_VIDEO = DATA_DIR / 'single_face.mp4'
"""640x360, 72 frames at 30 fps: a frontal face going neutral -> smile -> neutral."""
SAMPLE_STILL = DATA_DIR / 'astronaut.png'
"""512x512 still of a smiling frontal face."""
FASTDDS_PROFILE_VARIABLE = 'FASTDDS_DEFAULT_PROFILES_FILE'


def package_share_path(folder: str, name: str = '') -> Path:
    """A file (or, without name, the folder) of the package's config/ or msg/: in this checkout, else installed."""
    source_tree = PACKAGE_DIR.parent / folder / name
    if source_tree.exists():
        return source_tree
    try:
        from ament_index_python.packages import get_package_share_directory

        installed = Path(get_package_share_directory('facesym_ros')) / folder / name
    except (ImportError, LookupError, OSError) as error:
        raise FileNotFoundError(f'facesym_ros: cannot find {folder}/{name}') from error
    if not installed.exists():
        raise FileNotFoundError(f'facesym_ros: {installed} is missing')
    return installed


def package_config_file(name: str) -> Path:
    """A file of config/ (see package_share_path)."""
    return package_share_path('config', name)


def default_params_file() -> Path:
    return package_config_file('facesym.yaml')


def message_names() -> tuple[str, ...]:
    """The package's message types (msg/*.msg), in name order."""
    return tuple(sorted(path.stem for path in package_share_path('msg').glob('*.msg')))


def dds_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment with the large-frame Fast DDS profile (config/fastdds.xml), unless one is already chosen."""
    env = dict(os.environ if environ is None else environ)
    env.setdefault(FASTDDS_PROFILE_VARIABLE, str(package_config_file('fastdds.xml')))
    return env


RMEM_MAX = Path('/proc/sys/net/core/rmem_max')
"""The kernel's cap on a socket's receive buffer (Linux)."""
PROFILE_RECEIVE_BUFFER = 16 * 2**20
"""The UDP receive buffer config/fastdds.xml asks for (receiveBufferSize)."""


def udp_receive_limit(path: Path = RMEM_MAX) -> int | None:
    """net.core.rmem_max in bytes; None where the system does not say (another OS, a sandbox)."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def receive_buffer_warning(frame_bytes: int, limit: int | None) -> str:
    """What to tell a rig whose UDP receive buffer cannot hold two of its camera's frames ('' when it can).

    With room for one, a frame that comes while the reader still drains the one before is lost (a few in 200
    at 1080p with 8 MiB; none with 16 MiB: docs/benchmarks.md).
    """
    if limit is None or 2 * frame_bytes <= limit:
        return ''
    wanted = max(PROFILE_RECEIVE_BUFFER, 1 << (2 * frame_bytes - 1).bit_length())
    also = ' and receiveBufferSize in config/fastdds.xml' if wanted > PROFILE_RECEIVE_BUFFER else ''
    return (f'two camera frames of {frame_bytes / 2**20:.1f} MiB do not fit net.core.rmem_max '
            f'({limit / 2**20:.1f} MiB): frames are lost whenever this node falls behind; set '
            f'net.core.rmem_max{also} to at least {wanted} (docs/deploy-ros2.md)')


def state_directory(configured: str = '') -> Path:
    """Where nodes keep state across restarts: `configured`, else $ROS_HOME/facesym, else ~/.ros/facesym."""
    if configured:
        return Path(configured).expanduser()
    ros_home = os.environ.get('ROS_HOME')
    return (Path(ros_home).expanduser() if ros_home else Path.home() / '.ros') / 'facesym'
