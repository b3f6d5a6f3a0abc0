"""`facesym score-bag` throughput on a 640x480, 30 fps bag, against the target of 10x real time.

    python -m bench.bench_bag [--seconds S] [--storage mcap|sqlite3] [--compressed] [--output-bag]

Writes a bag of the bundled clip letterboxed to 640x480 (played forwards and
backwards to last S seconds), scores it as the command does (reading,
decoding, the whole core, trials) and prints frames per second and the
multiple of real time, with the images read and observed in a thread ahead of
the flow (the command's way) and, as the baseline in the same run, in one
thread (read_ahead 0).
Benchmarks print figures; they assert nothing.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.frames import letterboxed_frames
from facesym_ros.bag.score import score_bag
from facesym_ros.bag.storage import open_bag, write_image_bag
from facesym_ros.config.params import load_params_file, pipeline_config
from facesym_ros.core.pipeline import READ_AHEAD, PipelineSettings

FRAME_RATE = 30.0
TARGET_REAL_TIME = 10.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seconds', type=float, default=20.0, help='length of the recorded session [s]')
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap')
    parser.add_argument('--compressed', action='store_true', help='JPEG CompressedImage instead of raw bgr8')
    parser.add_argument('--output-bag', action='store_true', help='also write the reviewed bag (--output-bag)')
    args = parser.parse_args()

    clip_length = len(letterboxed_frames(1))
    images = letterboxed_frames(max(1, math.ceil(args.seconds * FRAME_RATE / clip_length)))
    images = images[:round(args.seconds * FRAME_RATE)]
    config = pipeline_config(load_params_file())
    with tempfile.TemporaryDirectory() as folder:
        bag = Path(folder) / 'session'
        write_image_bag(bag, images, FRAME_RATE, storage=args.storage, compressed=args.compressed)
        output = Path(folder) / 'reviewed' if args.output_bag else None
        timed = {read_ahead: _timed_score_bag(bag, config, output, read_ahead) for read_ahead in (0, READ_AHEAD)}
    kind = 'CompressedImage (JPEG)' if args.compressed else 'Image (bgr8)'
    frames, _ = timed[READ_AHEAD]
    print(f'score-bag: {frames} frames of 640x480 {kind} at {FRAME_RATE:g} fps ({frames / FRAME_RATE:.1f} s), '
          f'{args.storage}{", with --output-bag" if args.output_bag else ""}')
    for read_ahead, label in ((READ_AHEAD, f'reading {READ_AHEAD} images ahead in a thread'),
                              (0, 'one thread (baseline)')):
        frames, elapsed = timed[read_ahead]
        print(f'  {label}: {elapsed:.2f} s: {frames / elapsed:.1f} frames/s = '
              f'{frames / elapsed / FRAME_RATE:.2f}x real time')
    frames, elapsed = timed[READ_AHEAD]
    real_time = frames / elapsed / FRAME_RATE
    print(f'target (issue 9): score-bag at >= {TARGET_REAL_TIME:g}x real time at 640x480 {FRAME_RATE:g} fps: '
          f'{"met" if real_time >= TARGET_REAL_TIME else "NOT met"} ({real_time:.2f}x)')
    return 0


def _timed_score_bag(bag: Path, config: PipelineSettings, output: Path | None, read_ahead: int) -> tuple[int, float]:
    """Frames read and seconds taken by score_bag, from opening the bag to its report (models loaded included)."""
    if output is not None:
        shutil.rmtree(output, ignore_errors=True)
    began = time.perf_counter()
    with open_bag(bag) as contents:
        report = score_bag(contents, config, output_bag=output, read_ahead=read_ahead)
    return report.frames_read, time.perf_counter() - began


if __name__ == '__main__':
    sys.exit(main())
