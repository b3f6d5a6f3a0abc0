"""The live graph at 30 and 60 fps with 640x480 frames: throughput, dropped frames, end-to-end latency.

    python -m bench.bench_live [--seconds S] [--rates 30 60]

Each run brings the graph up as separate processes (facesym bringup's way),
publishes a folder of 640x480 frames at the given rate inside one trial, and
measures from the scorer's outputs:
- throughput: frames that reached the scorer per second;
- dropped: frames published but never scored, and the score's own count;
- latency: from a frame's source stamp to the running score that includes it
  (running_period 0, so the scorer publishes one per frame), median and p99.
Runs with the whole graph (annotator and heat map included, as on the rig
with RViz) and with the scoring chain alone. Target: 60 fps with no frame
dropped inside a trial and p99 latency under 33 ms. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import rclpy
from sensor_msgs.msg import Image

from bench.frames import letterboxed_frames, write_folder
from facesym_ros.config.files import default_params_file
from facesym_ros.config.registry import NODES, SOURCE_NODE
from facesym_ros.core.timebase import ns_to_seconds
from facesym_ros.ros.bringup import ProcessGraph
from facesym_ros.ros.conversions import stamp_to_ns
from facesym_ros.ros.graph_client import GraphClient, run_source_trial
from facesym_ros.ros.node_base import image_qos

TARGET_FPS, TARGET_P99_MS = 60.0, 33.0


def run(folder: Path, frames: int, rate: float, with_annotator: bool, log: Path) -> dict:
    specs = [spec for spec in NODES if with_annotator or not spec.viewer_only]
    overrides = {'image_source': {'source': str(folder), 'frame_rate': repr(rate), 'wait_for_subscribers': '3'},
                 'symmetry_scorer': {'running_period': '0.0', 'nominal_frame_rate': repr(rate)}}
    with log.open('w') as output:
        graph = ProcessGraph(specs, default_params_file(), overrides=overrides, output=output)
        client = GraphClient(name='bench_client')
        if with_annotator:  # the annotator draws only while watched, as it is on the rig with RViz
            client.create_subscription(Image, 'annotated', lambda msg: None, image_qos(1))
        try:
            chain = [spec for spec in specs if spec.name != SOURCE_NODE]
            graph.start([spec.name for spec in chain])
            client.wait_for_graph(chain)
            before = cpu_seconds(graph)
            final = run_source_trial(graph, client, frames, timeout=60.0 + 3 * frames / rate)
            after = cpu_seconds(graph)
        finally:
            graph.stop()
            client.close()
    cpu = {name: 1000 * (after[name] - before.get(name, 0.0)) / frames for name in after}
    received = np.array(client.motion_received_at)
    latencies = [1000 * (at - ns_to_seconds(stamp_to_ns(score.header.stamp)))
                 for score, at in zip(client.running_scores, client.running_received_at, strict=True)
                 if score.kind == score.KIND_RUNNING]
    span = received[-1] - received[0] if len(received) > 1 else float('nan')
    return {
        'scored': len(client.motion_stamps),
        'throughput': (len(received) - 1) / span if span else float('nan'),
        'dropped': frames - final.frame_count,
        'score_dropped': final.frames_dropped,
        'median': float(np.median(latencies)) if latencies else float('nan'),
        'p99': float(np.percentile(latencies, 99)) if latencies else float('nan'),
        'cpu': cpu,
    }


def cpu_seconds(graph: ProcessGraph) -> dict[str, float]:
    """CPU time (user + system) each node process has used so far, from /proc."""
    ticks = os.sysconf('SC_CLK_TCK')
    used = {}
    for name, process in graph.processes.items():
        fields = Path(f'/proc/{process.pid}/stat').read_text().rsplit(')', 1)[1].split()
        used[name] = (int(fields[11]) + int(fields[12])) / ticks
    return used


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seconds', type=float, default=8.0, help='length of each run [s]')
    parser.add_argument('--rates', type=float, nargs='+', default=[30.0, 60.0], help='publishing rates [Hz]')
    args = parser.parse_args()
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    rclpy.init()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            print(f'live graph, 640x480 bgr8 frames, {os.cpu_count()} CPUs; node output in {scratch}/*.log')
            print(f'{"graph":<16}{"rate":>6}{"sent":>6}{"scored":>8}{"fps":>8}{"dropped":>9}{"median ms":>11}'
                  f'{"p99 ms":>9}')
            for rate in args.rates:
                count = int(rate * args.seconds)
                images = letterboxed_frames(repeats=int(np.ceil(count / 72)))[:count]
                folder = write_folder(Path(scratch) / f'frames_{rate:g}', images)
                for with_annotator in (True, False):
                    name = 'with annotator' if with_annotator else 'scoring chain'
                    log = Path(scratch) / f'{rate:g}_{"full" if with_annotator else "chain"}.log'
                    figures = run(folder, count, rate, with_annotator, log)
                    met = (figures['dropped'] == 0 and figures['p99'] < TARGET_P99_MS
                           and figures['throughput'] >= 0.95 * rate)
                    print(f'{name:<16}{rate:>6g}{count:>6}{figures["scored"]:>8}{figures["throughput"]:>8.1f}'
                          f'{figures["dropped"]:>5} ({figures["score_dropped"]})'
                          f'{figures["median"]:>10.1f}{figures["p99"]:>9.1f}'
                          f'  {"target met" if met else ""}')
                    print('    CPU ms/frame: ' + ', '.join(f'{n} {ms:.1f}' for n, ms in figures['cpu'].items())
                          + ' (image_source includes its start-up)')
            print(f'target: {TARGET_FPS:g} fps, no frame dropped in a trial, p99 latency < {TARGET_P99_MS:g} ms. '
                  'dropped = sent - frames in the final score (the score\'s own gap count in brackets)')
    finally:
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
