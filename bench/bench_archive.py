"""`facesym score-archive` on 1 worker against 2 workers, in the same run: 8 bags of 10 s each.

    python -m bench.bench_archive [--bags 8] [--seconds 10] [--repeats 3] [--raw]

Writes the bags (the bundled clip letterboxed to 640x480, JPEG CompressedImage at 30 fps unless --raw), starts
a LocalCluster of 1 and of 2 worker processes (one thread each) in turn, and times run_archive, the command's
work, on each (the cluster's start is not timed). Prints the wall times (median of the repeats), the workers'
CPU seconds (equal for 1 and 2 workers when the run adds no overhead), the speed-up, and the memory of the
driver (peak and now) and of each worker (peak RSS). The target (issue 21) is a speed-up of
at least 1.7x on an idle 2-core machine. Benchmarks print figures; they assert nothing.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.frames import letterboxed_frames
from facesym_ros.archive.engine import EngineOptions, run_archive
from facesym_ros.bag.storage import write_image_bag
from facesym_ros.config.params import load_params_file, pipeline_config

FRAME_RATE = 30.0
TARGET_SPEED_UP = 1.7
MIB = 1024 * 1024


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _write_bags(folder: Path, count: int, frames: int, *, compressed: bool) -> Path:
    """The bags, each `frames` long; the images are not kept, so the driver's memory is the run's alone."""
    clip_length = len(letterboxed_frames(1))
    images = letterboxed_frames(max(1, math.ceil(frames / clip_length)))[:frames]
    for index in range(count):
        write_image_bag(folder / f'visit-{index:02d}', images, FRAME_RATE, compressed=compressed)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--bags', type=int, default=8)
    parser.add_argument('--seconds', type=float, default=10.0, help='length of each bag [s]')
    parser.add_argument('--repeats', type=int, default=3, help='runs of each cluster size (the median is quoted)')
    parser.add_argument('--raw', action='store_true', help='bgr8 Image instead of JPEG CompressedImage')
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    frames = round(args.seconds * FRAME_RATE)
    config = pipeline_config(load_params_file())
    times: dict[int, list[float]] = {1: [], 2: []}
    workers_memory: dict[int, list[int]] = {}
    cpu_seconds: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as folder:
        bags = _write_bags(Path(folder) / 'bags', args.bags, frames, compressed=not args.raw)
        for repeat in range(args.repeats):  # 1 and 2 workers in turn, so a change of the machine's load hits both
            for workers in (1, 2):
                with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, Client(cluster) as client:
                    client.wait_for_workers(workers)
                    output = Path(folder) / f'out-{workers}-{repeat}'
                    cpu = sum(client.run(time.process_time).values())
                    began = time.perf_counter()
                    summary = run_archive([bags], output, config, EngineOptions(scheduler=cluster.scheduler_address),
                                          say=lambda _line: None, progress=False)
                    times[workers].append(time.perf_counter() - began)
                    cpu_seconds[workers].append(sum(client.run(time.process_time).values()) - cpu)
                    assert summary.scored == args.bags and summary.failed == 0, summary
                    peaks = client.run(_peak_rss)
                    workers_memory[workers] = [max(peaks[address], old) for address, old in
                                               zip(sorted(peaks), workers_memory.get(workers) or [0] * workers,
                                                   strict=True)]
    kind = 'Image (bgr8)' if args.raw else 'CompressedImage (JPEG)'
    print(f'score-archive: {args.bags} bags of {args.seconds:g} s ({frames} frames of 640x480 {kind} at '
          f'{FRAME_RATE:g} fps); {os.cpu_count()} cores; median of {args.repeats} runs')
    medians = {workers: statistics.median(values) for workers, values in times.items()}
    for workers in (1, 2):
        runs = ', '.join(f'{value:.1f}' for value in times[workers])
        real_time = args.bags * args.seconds / medians[workers]
        memory = ', '.join(f'{peak / MIB:.0f}' for peak in workers_memory[workers])
        cpu = statistics.median(cpu_seconds[workers])
        print(f'  {workers} worker(s): {medians[workers]:.1f} s ({runs}) = {real_time:.2f}x real time; '
              f'workers\' CPU {cpu:.1f} s; worker peak RSS {memory} MiB')
    speed_up = medians[1] / medians[2]
    print(f'  speed-up of 2 workers over 1: {speed_up:.2f}x')
    print(f'  driver (this process, with the scheduler): peak RSS {_peak_rss() / MIB:.0f} MiB, '
          f'now {_rss() / MIB:.0f} MiB')
    print(f'target (issue 21): >= {TARGET_SPEED_UP:g}x with 2 workers on an idle 2-core machine: '
          f'{"met" if speed_up >= TARGET_SPEED_UP else "NOT met"} ({speed_up:.2f}x)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
