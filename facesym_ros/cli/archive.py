"""`facesym score-archive`: every bag, session bag and video of an archive scored on Dask into one table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facesym_ros.cli.common import add_method_arguments, resolve_settings


def score_archive_command(args: argparse.Namespace) -> int:
    from facesym_ros.archive.engine import EngineOptions, run_archive
    from facesym_ros.archive.store import FAILURES_CSV, TRIALS_CSV, TRIALS_PARQUET

    if args.workers is not None and args.workers < 1:
        raise ValueError(f'--workers must be at least 1, got {args.workers}')
    if args.workers is not None and args.scheduler:
        raise ValueError('--workers sizes the embedded cluster; a --scheduler\'s cluster has its own workers')
    config = resolve_settings(args).pipeline
    dashboard = None if args.dashboard_address.lower() == 'none' else args.dashboard_address
    options = EngineOptions(workers=args.workers, scheduler=args.scheduler, dashboard_address=dashboard,
                            force=args.force)

    def say(line: str) -> None:
        print(f'facesym score-archive: {line}', file=sys.stderr, flush=True)

    output = Path(args.output)
    summary = run_archive(args.inputs, output, config, options, say=say, progress=not args.quiet)
    say(f'{summary.scored} scored, {summary.skipped} skipped, {summary.failed} failed; {summary.rows} rows in '
        f'{output / TRIALS_PARQUET} and {output / TRIALS_CSV}')
    if summary.failed:
        say(f'{summary.failed} inputs could not be scored: see {output / FAILURES_CSV}')
    return 0


def add_parsers(commands: argparse._SubParsersAction) -> None:
    archive = commands.add_parser(
        'score-archive', help='score an archive of bags, session bags and videos on Dask into one table',
        description='Score every bag, session bag and video of an archive, each as score-bag, session --from-bag '
                    'or score alone would, on a Dask cluster; write DIR/trials.parquet, DIR/trials.csv, '
                    'DIR/failures.csv and each session\'s report. A rerun scores only what is new.')
    archive.add_argument('inputs', nargs='+', metavar='INPUT',
                         help='a bag (folder or .mcap/.db3), a video, a folder searched for both, or a text '
                              'file listing paths (one a line)')
    archive.add_argument('--output', '-o', required=True, metavar='DIR', help='output folder')
    archive.add_argument('--workers', type=int,
                         help='worker processes of the embedded LocalCluster (default: one per core)')
    archive.add_argument('--scheduler', metavar='ADDRESS',
                         help='a running Dask cluster\'s scheduler, e.g. tcp://HOST:8786, instead of a LocalCluster')
    archive.add_argument('--force', action='store_true',
                         help='score every input again, even those already scored with this method')
    archive.add_argument('--dashboard-address', default=':8787', metavar='[HOST]:PORT',
                         help='the LocalCluster\'s dashboard (default :8787, another port if taken; none: no '
                              'dashboard)')
    archive.add_argument('--quiet', action='store_true', help='no progress bar')
    add_method_arguments(archive, heatmap=False)
    archive.set_defaults(run=score_archive_command)
