"""A rig's camera: every node at 1920x1080 and 1280x720, 30 fps, the annotator watched, against the graph of main.

    python -m bench.bench_rig [--seconds S] [--runs N] [--sizes 1080 720]

The bundled clip upscaled 3x (1920x1080, a 590 px face) and 2x (1280x720),
played forwards and backwards from a folder at 30 fps by image_source, with
every node and a subscriber on `annotated` (the annotator draws, as on the rig
with RViz). Each size runs two graphs, alternately, N times:

- now: whole frames go to face_detector alone; the annotator draws on its
  image_preview (the frame scaled to preview_width, 960 px);
- main: the graph as it was on main before issue 18, the same-run baseline:
  the annotator takes the whole frames too (a second 6 MB copy a frame at 1080p).

The bench learns the frames' stamps from camera_info, so it adds no whole-frame
subscriber of its own. Per run: frames held in the final score out of frames
sent in the trial, the largest |live - offline| of VS and SS (offline: the
core on the same frames and stamps), CPU ms per frame of every node and the
part in Fast DDS's threads (receiving and reassembling messages). Then the
median over the runs. Benchmarks print figures; they assert nothing.
"""

from __future__ import annotations

import argparse
import fcntl
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import rclpy

from bench.bench_live import EXTRA_SECONDS, Figures, run
from bench.frames import upscaled_frames, write_folder
from facesym_ros.config.registry import NODE_NAMES

RATE = 30.0
SCALES = {'1080': 3, '720': 2}
GRAPHS = ('now', 'main')


DOMAIN_IDS = range(1, 102)


def claim_domain_id() -> int:
    """A ROS domain no other facesym run on this machine uses (the tests' lock files): other graphs on a shared
    machine must not join this one's topics."""
    for domain in DOMAIN_IDS:
        lock = open(Path(tempfile.gettempdir()) / f'facesym-ros-domain-{domain}.lock', 'w')  # noqa: SIM115
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        _held.append(lock)  # held until this process ends
        return domain
    raise RuntimeError('no free ROS domain id')


_held: list = []


def receive_buffer_limit() -> str:
    """The kernel's cap on a socket's receive buffer: below one frame, a frame arrives whole only while the
    reader drains its socket as the fragments come."""
    try:
        return Path('/proc/sys/net/core/rmem_max').read_text().strip()
    except OSError:
        return 'unknown'


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seconds', type=float, default=6.0, help='length of each trial [s]')
    parser.add_argument('--runs', type=int, default=3, help='runs of each graph at each size')
    parser.add_argument('--sizes', nargs='+', default=list(SCALES), choices=list(SCALES))
    args = parser.parse_args()
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    if 'ROS_DOMAIN_ID' not in os.environ:
        os.environ['ROS_DOMAIN_ID'] = str(claim_domain_id())
    results: dict[tuple[str, str], list[Figures]] = {}
    rclpy.init()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            print(f'rig camera sizes, 30 fps, every node, annotated watched; {os.cpu_count()} CPUs, load average '
                  f'{os.getloadavg()[0]:.1f} at the start ({time.strftime("%Y-%m-%d %H:%M")}); net.core.rmem_max '
                  f'{receive_buffer_limit()} bytes (a 1920x1080 bgr8 frame is 6220800); ROS domain '
                  f'{os.environ["ROS_DOMAIN_ID"]}; node output in '
                  f'{scratch}/*.log')
            for size in args.sizes:
                count = int(RATE * args.seconds)
                total = count + int(RATE * EXTRA_SECONDS)
                images = upscaled_frames(SCALES[size], repeats=math.ceil(total / 72))[:total]
                height, width = images[0].shape[:2]
                folder = write_folder(Path(scratch) / size, images)
                for index in range(args.runs):
                    for graph in GRAPHS:
                        figures = run(folder, images, count, RATE, all_nodes=True, main_graph=graph == 'main',
                                      stamps_topic='camera_info', log=Path(scratch) / f'{size}-{graph}-{index}.log')
                        results.setdefault((size, graph), []).append(figures)
                        print(f'{width}x{height} {graph:<5} run {index + 1}: held {figures.scored}/{figures.sent} '
                              f'(score: {figures.score_dropped} dropped), max |live-offline| '
                              f'{figures.max_difference:.3g}, load {os.getloadavg()[0]:.1f}', flush=True)
                        print('    CPU ms/frame: ' + ', '.join(f'{n} {ms:.1f}' for n, ms in figures.cpu_ms.items()),
                              flush=True)
                        print('      of which DDS threads: '
                              + ', '.join(f'{n} {ms:.1f}' for n, ms in figures.transport_cpu_ms.items()), flush=True)
    finally:
        rclpy.try_shutdown()

    print(f'\nmedian of {args.runs} runs (frames held: each run; CPU: ms a frame, DDS threads in brackets)')
    for (size, graph), runs in results.items():
        held = ', '.join(f'{f.scored}/{f.sent}' for f in runs)
        worst = max(f.max_difference for f in runs)
        cpu = ', '.join(
            f'{name} {median([f.cpu_ms.get(name, math.nan) for f in runs]):.1f} '
            f'({median([f.transport_cpu_ms.get(name, math.nan) for f in runs]):.1f})' for name in NODE_NAMES)
        total = median([sum(f.cpu_ms.values()) for f in runs])
        print(f'{size}p {graph:<5} held {held}; largest |live-offline| {worst:.3g}; all nodes {total:.1f}: {cpu}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
