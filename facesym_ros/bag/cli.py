"""Argument parsers of the bag commands (record, play, score-bag)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facesym_ros.bag.storage import STORAGES


def score_bag_command(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from facesym_ros.bag.score import TrialRange, pick_image_topic, score_bag
    from facesym_ros.bag.storage import open_bag
    from facesym_ros.offline import resolve_config
    from facesym_ros.report import format_table, write_csv, write_json

    trials = [TrialRange.parse(text) for text in args.trial or ()]
    config = resolve_config(args)
    with open_bag(args.bag) as bag:
        topic = pick_image_topic(bag, args.topic)
        total = topic.message_count or None
        with tqdm(total=total, unit='frame', desc=f'scoring {topic.name}', disable=args.quiet) as bar:
            report = score_bag(bag, config, topic=args.topic, trials=trials, use_markers=not args.no_markers,
                               output_bag=Path(args.output_bag) if args.output_bag else None,
                               output_storage=args.output_storage, output_namespace=args.output_namespace,
                               heatmap_max=args.heatmap_max, progress=bar.update)
    print(f'{report.bag}: {report.frames_read} images on {report.image_topic}, '
          f'{len(report.scores)} trials (from {report.trials_from})')
    for score in report.scores:
        print()
        print(format_table(score, title=score.trial_id))
    for problem in report.problems:
        print(f'facesym score-bag: warning: {problem}', file=sys.stderr)
    if args.json:
        write_json(args.json, report.to_json_dict())
    if args.csv:
        write_csv(args.csv, report.scores)
    if args.output_bag:
        print(f'{args.output_bag}: the bag with faces, landmarks, region motion, annotated images and scores '
              f'under /{args.output_namespace.strip("/")}')
    return 0


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Register the bag subcommands on the `facesym` parser."""
    from facesym_ros.bag.play import add_play_arguments, play_command
    from facesym_ros.bag.record import add_record_arguments, record_command
    from facesym_ros.offline import add_common_arguments

    record = commands.add_parser(
        'record', help='record live topics to a rosbag2 bag (MCAP or sqlite3)',
        description='Record live topics to a rosbag2 bag with their message definitions; Ctrl-C or SIGTERM '
                    'closes the bag cleanly.')
    add_record_arguments(record)
    record.set_defaults(run=record_command)

    play = commands.add_parser(
        'play', help='publish a bag\'s messages onto their topics again',
        description='Publish a bag\'s messages at the recorded rate, faster, or lock-step with the graph.')
    add_play_arguments(play)
    play.set_defaults(run=play_command)

    score = commands.add_parser(
        'score-bag', help='score a bag offline with the same core as the live graph (no DDS)',
        description='Score the trials of a recorded bag: from --trial ranges, from the recorded trial markers, '
                    'or the whole bag as one trial.')
    score.add_argument('bag', help='bag folder (or a lone .mcap/.db3 file)')
    score.add_argument('--topic', help='image topic (sensor_msgs/Image or CompressedImage); default: the camera\'s')
    score.add_argument('--trial', action='append', metavar='START:STOP',
                       help='a trial, in seconds after the first image (repeatable); overrides recorded markers')
    score.add_argument('--no-markers', action='store_true',
                       help='ignore recorded trial markers: the whole bag is one trial unless --trial is given')
    score.add_argument('--json', metavar='OUT', help='write every trial\'s score and the bag\'s problems as JSON')
    score.add_argument('--csv', metavar='OUT', help='write one row per trial and region as CSV')
    score.add_argument('--output-bag', metavar='BAG',
                       help='write a new bag: the original topics plus faces, landmarks, region motion, '
                            'annotated images and scores')
    score.add_argument('--output-storage', choices=tuple(STORAGES), default='mcap',
                       help='storage of --output-bag (default mcap)')
    score.add_argument('--output-namespace', default='rescored',
                       help='namespace of the topics --output-bag adds (default rescored)')
    score.add_argument('--heatmap-max', type=float, default=5.0,
                       help='flow magnitude shown as the hottest colour in annotated images [px/frame]')
    score.add_argument('--quiet', action='store_true', help='no progress bar')
    add_common_arguments(score)
    score.set_defaults(run=score_bag_command)
