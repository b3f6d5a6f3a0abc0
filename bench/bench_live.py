"""The live graph under load: frames scored, live against offline scores, stop-to-final delay, latency, CPU.

    python -m bench.bench_live [--seconds S] [--cases sample-30-chain large-30-all large-60-chain]

Each case brings the graph up as separate processes (facesym bringup's way),
starts a trial, publishes 640x480 frames from a folder at the case's rate,
and stops the trial as soon as S seconds of frames are out (the source goes
on for two more seconds, as a camera would). Cases:

- sample: the bundled clip letterboxed to 640x480 (a 193 px face);
- large: the clip upscaled 2x and cropped back to 640x480 around the face
  (a 385 px face: a patient close to the camera);
- all: every node, with a subscriber on `annotated` so the annotator draws
  (as on the rig with RViz); chain: the scoring chain alone; previous: the
  scoring chain as it was before issue 9's last changes, the baseline of the
  same run (rclpy's SingleThreadedExecutor, and the flow at the reference
  scale: `executor: single_threaded`, `analysis_interocular` 80).

Per case it prints frames scored (in the final score) out of frames sent in
the trial, the score's own dropped-frame count, the largest difference
live - offline of VS and SS (offline: the core's score_sequence on the same
frames with the same stamps, as `facesym score` does), the delay from the
stop_trial call to the final score, median and p99 latency from a frame's
stamp to the running score that includes it (running_period 0), and CPU ms
per frame of every node (CPU time used during the case / frames published;
image_source includes its start-up), and the part of it in Fast DDS's own
threads, which receive and reassemble the messages. Then where each target of issue 9 stands:

- large face, 30 fps, all nodes: no frame dropped, final exact and within 1 s
  of the stop, p99 latency < 100 ms;
- large face, 60 fps, scoring chain: final exact;
- sample (193 px face), scoring chain: face_detector + landmark_detector +
  optical_flow + symmetry_scorer at most 23 ms CPU a frame.

Benchmarks print figures; they assert nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import struct
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rclpy
from sensor_msgs.msg import CameraInfo, Image

from bench.frames import large_face_frames, letterboxed_frames, write_folder
from facesym_ros.config.files import default_params_file
from facesym_ros.config.params import load_params_file, pipeline_config
from facesym_ros.config.registry import IMAGE_TOPIC, NODES, SOURCE_NODE, NodeSpec, camera_subscribers
from facesym_ros.core.frame import Frame
from facesym_ros.core.pipeline import score_sequence
from facesym_ros.core.scoring import ScoreResult
from facesym_ros.core.timebase import ns_to_seconds
from facesym_ros.msg import SymmetryScore, TrialEvent
from facesym_ros.ros.bringup import ProcessGraph
from facesym_ros.ros.conversions import stamp_to_ns
from facesym_ros.ros.graph_client import GraphClient
from facesym_ros.ros.node_base import image_qos

EXTRA_SECONDS = 2.0
"""Frames the source publishes after the stop, as a camera that keeps running."""
CHAIN = ('face_detector', 'landmark_detector', 'optical_flow', 'symmetry_scorer')
TARGET_P99_MS, TARGET_STOP_S, TARGET_CHAIN_CPU_MS = 100.0, 1.0, 23.0
CASES = ('sample-30-chain', 'large-30-all', 'large-60-chain', 'sample-30-previous')
PREVIOUS_ANALYSIS_INTEROCULAR = 80.0
"""The flow's scale before issue 9's analysis scale: the reference itself."""
PREVIOUS = {name: {'executor': 'single_threaded'} for name in CHAIN}
PREVIOUS['optical_flow'] = {**PREVIOUS['optical_flow'], 'analysis_interocular': repr(PREVIOUS_ANALYSIS_INTEROCULAR)}
"""Overrides that give the scoring chain of before: the baseline case `previous`."""


@dataclass
class Figures:
    sent: int
    scored: int
    score_dropped: int
    max_difference: float
    stop_to_final: float
    median_ms: float
    p99_ms: float
    cpu_ms: dict[str, float]
    transport_cpu_ms: dict[str, float]
    """Of cpu_ms, the part in Fast DDS's own threads (receiving and reassembling messages)."""
    incomplete: str

    @property
    def chain_cpu_ms(self) -> float:
        return sum(self.cpu_ms.get(name, 0.0) for name in CHAIN)

    @property
    def exact(self) -> bool:
        return self.max_difference == 0.0 and not self.incomplete


def image_stamp(data: bytes) -> int:
    """Header stamp of a serialized sensor_msgs/Image (CDR: 4-byte encapsulation, then sec, nanosec)."""
    sec, nanosec = struct.unpack_from('<iI', data, 4)
    return sec * 1_000_000_000 + nanosec


class BenchClient(GraphClient):
    """GraphClient that also notes the stamp of every image the source publishes (undecoded).

    From image_raw itself, or (stamps_topic camera_info) from the camera info the source publishes with each
    image, which costs no whole frame: the header comes first in both messages.
    """

    def __init__(self, watch_annotated: bool, stamps_topic: str = 'image_raw') -> None:
        super().__init__(name='bench_client')
        self.image_stamps: list[int] = []
        msg_type = CameraInfo if stamps_topic == 'camera_info' else Image
        self.create_subscription(msg_type, stamps_topic, lambda data: self.image_stamps.append(image_stamp(data)),
                                 image_qos(100), raw=True)
        if watch_annotated:  # the annotator draws only while watched, as it is on the rig with RViz
            self.create_subscription(Image, 'annotated', lambda data: None, image_qos(1), raw=True)


TRANSPORT_THREAD_PREFIX = 'dds.'
"""Fast DDS names its receive and event threads dds.udp.<port>, dds.ev.<n>, ...: the cost of moving messages."""


def cpu_seconds(graph: ProcessGraph) -> dict[str, tuple[float, float]]:
    """CPU time (user + system) each node process has used so far, from /proc: (all threads, DDS threads)."""
    ticks = os.sysconf('SC_CLK_TCK')
    used = {}
    for name, process in graph.processes.items():
        total = transport = 0.0
        for task in Path(f'/proc/{process.pid}/task').iterdir():
            try:
                fields = (task / 'stat').read_text().rsplit(')', 1)[1].split()
                thread = (task / 'comm').read_text().strip()
            except OSError:  # the thread ended meanwhile; its time is in no total, as /proc/PID/stat's isn't
                continue
            seconds = (int(fields[11]) + int(fields[12])) / ticks
            total += seconds
            transport += seconds if thread.startswith(TRANSPORT_THREAD_PREFIX) else 0.0
        used[name] = (total, transport)
    return used


def event_stamp(client: GraphClient, trial_id: str, event: int) -> int:
    return next(stamp_to_ns(e.header.stamp) for e in client.trial_events
                if e.trial_id == trial_id and e.event == event)


def max_difference(live: SymmetryScore, offline: ScoreResult) -> float:
    """Largest |live - offline| of VS left, VS right and SS over the regions (NaN on both sides counts 0)."""
    worst = 0.0
    offline_regions = {region.region: region for region in offline.regions}
    for region in live.regions:
        other = offline_regions.get(region.region)
        if other is None:
            return math.inf
        for a, b in ((region.vs_left, other.vs_left), (region.vs_right, other.vs_right),
                     (region.symmetry, other.symmetry)):
            if math.isnan(a) and math.isnan(b):
                continue
            worst = max(worst, abs(a - b)) if not (math.isnan(a) or math.isnan(b)) else math.inf
    return worst if len(offline_regions) == len(live.regions) else math.inf


def main_graph_annotator(spec: NodeSpec) -> NodeSpec:
    """The annotator as it was on main before issue 18: on the camera's whole frames (image_raw)."""
    return dataclasses.replace(spec, remappings=(('image', IMAGE_TOPIC),)) if spec.name == 'annotator' else spec


def run(folder: Path, images: list[np.ndarray], count: int, rate: float, *, all_nodes: bool, log: Path,
        previous: bool = False, main_graph: bool = False, stamps_topic: str = 'image_raw') -> Figures:
    """One case: a trial over the first `count` frames of the folder (which holds more), scored live.

    main_graph: the annotator takes whole frames, as on main before issue 18 (the same-run baseline).
    """
    specs = [spec for spec in NODES if all_nodes or not spec.viewer_only]
    if main_graph:
        specs = [main_graph_annotator(spec) for spec in specs]
    own = 1 if stamps_topic == 'image_raw' else 0  # the bench's own subscription of the camera's frames
    overrides = {**(PREVIOUS if previous else {}),
                 SOURCE_NODE: {'source': str(folder), 'frame_rate': repr(rate),
                               'wait_for_subscribers': str(camera_subscribers(specs) + own)}}
    overrides['symmetry_scorer'] = {**overrides.get('symmetry_scorer', {}), 'running_period': '0.0',
                                    'nominal_frame_rate': repr(rate)}
    total = len(images)
    with log.open('w') as output:
        graph = ProcessGraph(specs, default_params_file(), overrides=overrides, output=output)
        client = BenchClient(watch_annotated=all_nodes, stamps_topic=stamps_topic)
        try:
            chain = [spec for spec in specs if spec.name != SOURCE_NODE]
            graph.start([spec.name for spec in chain])
            client.wait_for_graph(chain)
            before = cpu_seconds(graph)
            trial = client.start_trial()
            graph.start([SOURCE_NODE])
            timeout = 60.0 + 3 * total / rate
            client.spin_until(lambda: len(client.image_stamps) >= count, timeout)
            stopped_at = time.monotonic()
            client.stop_trial()
            final = client.wait_for_final(trial, timeout=30.0)
            stop_to_final = time.monotonic() - stopped_at
            client.spin_until(lambda: len(client.image_stamps) >= total, timeout)
            client.spin_until(lambda: False, 0.5)  # the chain finishes the last frames
            after = cpu_seconds(graph)
            start_ns = event_stamp(client, trial, TrialEvent.START)
            stop_ns = event_stamp(client, trial, TrialEvent.STOP)
            motion_stamps = list(client.motion_stamps)
        finally:
            graph.stop()
            client.close()

    published = max(1, len(client.image_stamps))
    cpu = {name: 1000 * (after[name][0] - before.get(name, (0.0, 0.0))[0]) / published for name in after}
    transport = {name: 1000 * (after[name][1] - before.get(name, (0.0, 0.0))[1]) / published for name in after}
    first_ns = min(client.image_stamps + motion_stamps)  # the first frame, seen by the bench or the chain
    period_ns = round(1e9 / rate)
    in_trial = [k for k in range(total) if start_ns <= first_ns + k * period_ns <= stop_ns]
    config = pipeline_config(load_params_file())
    config = dataclasses.replace(config, scoring=dataclasses.replace(config.scoring, nominal_frame_rate=rate))
    if previous:
        config = dataclasses.replace(config, flow=dataclasses.replace(
            config.flow, analysis_interocular=PREVIOUS_ANALYSIS_INTEROCULAR))
    offline = score_sequence((Frame.from_bgr(images[k], first_ns + k * period_ns) for k in in_trial), config)
    latencies = [1000 * (at - ns_to_seconds(stamp_to_ns(score.header.stamp)))
                 for score, at in zip(client.running_scores, client.running_received_at, strict=True)
                 if score.kind == score.KIND_RUNNING and score.trial_id == trial]
    incomplete = next((note for note in final.quality_notes if note.startswith('incomplete')), '')
    return Figures(
        sent=len(in_trial), scored=final.frame_count, score_dropped=final.frames_dropped,
        max_difference=max_difference(final, offline), stop_to_final=stop_to_final,
        median_ms=float(np.median(latencies)) if latencies else math.nan,
        p99_ms=float(np.percentile(latencies, 99)) if latencies else math.nan, cpu_ms=cpu, transport_cpu_ms=transport,
        incomplete=incomplete)


def verdict(met: bool) -> str:
    return 'met' if met else 'NOT met'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seconds', type=float, default=10.0, help='length of each trial [s]')
    parser.add_argument('--cases', nargs='+', default=list(CASES), choices=CASES)
    args = parser.parse_args()
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    results: dict[str, Figures] = {}
    rclpy.init()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            print(f'live graph, 640x480 bgr8 frames, {os.cpu_count()} CPUs (load average '
                  f'{os.getloadavg()[0]:.1f}); node output in {scratch}/*.log')
            print(f'{"case":<17}{"scored/sent":>12}{"(score: dropped)":>17}{"max |live-offline|":>20}'
                  f'{"stop->final s":>14}{"median ms":>10}{"p99 ms":>8}')
            for case in args.cases:
                faces, rate_text, graph = case.split('-')
                rate = float(rate_text)
                count = int(rate * args.seconds)
                total = count + int(rate * EXTRA_SECONDS)
                make = large_face_frames if faces == 'large' else letterboxed_frames
                images = make(repeats=math.ceil(total / 72))[:total]
                folder = write_folder(Path(scratch) / case, images)
                figures = run(folder, images, count, rate, all_nodes=graph == 'all', log=Path(scratch) / f'{case}.log',
                              previous=graph == 'previous')
                results[case] = figures
                print(f'{case:<17}{f"{figures.scored}/{figures.sent}":>12}{figures.score_dropped:>17}'
                      f'{figures.max_difference:>20.3g}{figures.stop_to_final:>14.2f}{figures.median_ms:>10.1f}'
                      f'{figures.p99_ms:>8.1f}')
                print('    CPU ms/frame: ' + ', '.join(f'{n} {ms:.1f}' for n, ms in figures.cpu_ms.items())
                      + f'; scoring chain {figures.chain_cpu_ms:.1f}')
                print('      of which in DDS threads: '
                      + ', '.join(f'{n} {ms:.1f}' for n, ms in figures.transport_cpu_ms.items()))
                if figures.incomplete:
                    print(f'    {figures.incomplete}')
    finally:
        rclpy.try_shutdown()

    print('targets (issue 9):')
    if 'large-30-all' in results:
        f = results['large-30-all']
        met = (f.scored == f.sent and f.score_dropped == 0 and f.exact and f.stop_to_final <= TARGET_STOP_S
               and f.p99_ms < TARGET_P99_MS)
        print(f'  large face, 30 fps, all nodes: no frame dropped ({f.sent - f.scored} dropped), final exact '
              f'({f.max_difference:.3g}) and within {TARGET_STOP_S:g} s of the stop ({f.stop_to_final:.2f} s), '
              f'p99 < {TARGET_P99_MS:g} ms ({f.p99_ms:.1f}): {verdict(met)}')
    if 'large-60-chain' in results:
        f = results['large-60-chain']
        print(f'  large face, 60 fps, scoring chain: final exact ({f.max_difference:.3g}; '
              f'{f.scored}/{f.sent} frames): {verdict(f.exact)}')
    if 'sample-30-chain' in results:
        f = results['sample-30-chain']
        before = results.get('sample-30-previous')
        print(f'  sample (193 px face), scoring chain CPU <= {TARGET_CHAIN_CPU_MS:g} ms/frame '
              f'({f.chain_cpu_ms:.1f}' + (f'; previous chain in this run {before.chain_cpu_ms:.1f}' if before else '')
              + f'): {verdict(f.chain_cpu_ms <= TARGET_CHAIN_CPU_MS)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
