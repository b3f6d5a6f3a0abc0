"""Soak: the live graph for a long run at 30 fps with a trial every 20 s: memory, dropped frames, lost trials.

    python -m bench.bench_soak [--seconds 600] [--rate 30] [--trial-every 20]

Brings the graph up as separate processes, supervised as `facesym bringup`
does (a node that dies is restarted, and counted), and feeds it 640x480
frames (the sample clip letterboxed, played forwards and backwards, looped).
Trials start every --trial-every seconds and stop one second before the
next starts. Prints, per node: its resident memory (RSS) after the warm-up
and at the end, the frames it did not pass on (frames seen on its input topic
with no output of the same stamp; for the source, the gap in its stamps), its
restarts; and trials scored versus started, with the scores' own dropped-frame
count. Not run in CI; asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import os
import struct
import sys
import tempfile
import time
from pathlib import Path

import rclpy
from sensor_msgs.msg import Image

from bench.frames import letterboxed_frames, write_folder
from facesym_ros.config.files import default_params_file
from facesym_ros.config.registry import NODES, SOURCE_NODE
from facesym_ros.msg import FaceDetections, FaceLandmarks, RegionMotion
from facesym_ros.ros.bringup import ProcessGraph
from facesym_ros.ros.conversions import stamp_to_ns
from facesym_ros.ros.graph_client import GraphClient
from facesym_ros.ros.node_base import image_qos, pipeline_qos

WARM_UP = 5.0
"""Seconds of frames before the first RSS reading."""


def rss_mib(pid: int) -> float:
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
    return float('nan')


def image_stamp(data: bytes) -> int:
    """Header stamp of a serialized sensor_msgs/Image (CDR: 4-byte encapsulation, then sec, nanosec)."""
    sec, nanosec = struct.unpack_from('<iI', data, 4)
    return sec * 1_000_000_000 + nanosec


class SoakClient(GraphClient):
    """GraphClient that also records the stamps on every topic between the nodes (images undecoded)."""

    def __init__(self) -> None:
        super().__init__(name='soak_client')
        self.stamps: dict[str, set[int]] = {topic: set() for topic in ('image_raw', 'faces', 'landmarks', 'annotated')}
        for topic in ('image_raw', 'annotated'):
            self.create_subscription(Image, topic, lambda data, t=topic: self.stamps[t].add(image_stamp(data)),
                                     image_qos(100), raw=True)
        for msg_type, topic in ((FaceDetections, 'faces'), (FaceLandmarks, 'landmarks')):
            self.create_subscription(msg_type, topic,
                                     lambda msg, t=topic: self.stamps[t].add(stamp_to_ns(msg.header.stamp)),
                                     pipeline_qos(200))
        self.all_motion: set[int] = set()  # GraphClient's motion_stamps restart at every trial
        self.create_subscription(RegionMotion, 'region_motion',
                                 lambda msg: self.all_motion.add(stamp_to_ns(msg.header.stamp)), pipeline_qos(200))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seconds', type=float, default=600.0, help='length of the run [s]')
    parser.add_argument('--rate', type=float, default=30.0, help='publishing rate [Hz]')
    parser.add_argument('--trial-every', type=float, default=20.0, help='a trial starts this often [s]')
    args = parser.parse_args()
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    with tempfile.TemporaryDirectory() as scratch:
        os.environ['ROS_HOME'] = scratch  # the scorer's state file, apart from the user's
        folder = write_folder(Path(scratch) / 'frames', letterboxed_frames(repeats=4))
        overrides = {SOURCE_NODE: {'source': str(folder), 'frame_rate': repr(args.rate), 'loop': 'true'},
                     'symmetry_scorer': {'nominal_frame_rate': repr(args.rate)}}
        log = Path(scratch) / 'graph.log'
        rclpy.init()
        client = SoakClient()
        with log.open('w') as output:
            graph = ProcessGraph(NODES, default_params_file(), overrides=overrides, output=output)
            try:
                figures = soak(graph, client, args)
            finally:
                graph.stop()
                client.close()
                rclpy.try_shutdown()
        report(figures, args, log)
    return 0


def soak(graph: ProcessGraph, client: SoakClient, args: argparse.Namespace) -> dict:
    graph.start([spec.name for spec in graph.specs if spec.name != SOURCE_NODE])
    client.wait_for_graph([spec for spec in graph.specs if spec.name != SOURCE_NODE])
    graph.start([SOURCE_NODE])
    restarts: dict[str, int] = {}

    def run_for(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for line in graph.supervise():
                print(f'  {line}', flush=True)
                if line.startswith('restarted '):
                    name = line.split()[1]
                    restarts[name] = restarts.get(name, 0) + 1
            client.spin_until(lambda: False, 0.1)

    run_for(WARM_UP)
    rss_start = {name: rss_mib(process.pid) for name, process in graph.processes.items()}
    started, failed = [], []
    begin = time.monotonic()
    while time.monotonic() - begin < args.seconds:
        trial_begin = time.monotonic()
        try:
            started.append(client.start_trial())
            running = True
        except (RuntimeError, TimeoutError) as error:
            failed.append(f'start: {error}')
            running = False
        run_for(max(0.0, min(args.trial_every - 1.0, args.seconds - (time.monotonic() - begin))))
        if running:
            try:
                client.stop_trial()
            except (RuntimeError, TimeoutError) as error:
                failed.append(f'stop: {error}')
        run_for(max(0.0, args.trial_every - (time.monotonic() - trial_begin)))
    client.spin_until(lambda: set(started) <= {score.trial_id for score in client.final_scores}, 10.0)
    rss_end = {name: rss_mib(process.pid) for name, process in graph.processes.items()}
    finals = {score.trial_id: score for score in client.final_scores}
    return {'rss_start': rss_start, 'rss_end': rss_end, 'restarts': restarts, 'started': started,
            'failed': failed, 'finals': finals, 'stamps': client.stamps, 'motion': client.all_motion,
            'period_ns': round(1e9 / args.rate)}


def report(figures: dict, args: argparse.Namespace, log: Path) -> None:
    stamps = figures['stamps']
    images = sorted(stamps['image_raw'])
    gaps = sum(max(0, round((b - a) / figures['period_ns']) - 1) for a, b in itertools.pairwise(images))
    passed_on = {  # node: (its input's stamps, its output's stamps)
        'face_detector': (stamps['image_raw'], stamps['faces']),
        'landmark_detector': (stamps['faces'], stamps['landmarks']),
        'optical_flow': (stamps['landmarks'], figures['motion']),
        'annotator': (figures['motion'], stamps['annotated']),
    }
    print(f'soak: {args.seconds:g} s at {args.rate:g} fps, 640x480, a trial every {args.trial_every:g} s, '
          f'{os.cpu_count()} CPUs (load average now {os.getloadavg()[0]:.1f})')
    print(f'{"node":<19}{"RSS start MiB":>14}{"RSS end MiB":>13}{"dropped":>9}{"restarts":>10}')
    for name in figures['rss_start']:
        if name == SOURCE_NODE:
            dropped = f'{gaps}'  # frames missing from the stamps the client saw (its own losses included)
        elif name in passed_on:
            source, output = passed_on[name]
            dropped = f'{len(source - output)}'
        else:
            dropped = '-'
        print(f'{name:<19}{figures["rss_start"][name]:>14.1f}{figures["rss_end"][name]:>13.1f}{dropped:>9}'
              f'{figures["restarts"].get(name, 0):>10}')
    finals = figures['finals']
    scored = [trial for trial in figures['started'] if trial in finals]
    in_trials = sum(finals[trial].frame_count for trial in scored)
    score_dropped = sum(finals[trial].frames_dropped for trial in scored)
    print(f'symmetry_scorer: {len(scored)} of {len(figures["started"])} trials scored '
          f'({in_trials} frames in them; the scores count {score_dropped} dropped)')
    for problem in figures['failed']:
        print(f'  {problem}')
    print(f'{len(images)} images seen on image_raw; node output in {log} (removed at exit)')


if __name__ == '__main__':
    sys.exit(main())
