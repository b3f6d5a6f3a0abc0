"""`facesym record`, `facesym play` and `facesym score-bag`: rosbag2 bags of sessions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facesym_ros.bag.storage import STORAGES, BagError, open_bag
from facesym_ros.cli.common import add_method_arguments, resolve_settings
from facesym_ros.core.report import format_table, write_csv, write_json


def record_command(args: argparse.Namespace) -> int:
    from facesym_ros.bag.record import DEFAULT_TOPICS, record

    topics = None if args.all else (args.topics or list(DEFAULT_TOPICS))
    output = Path(args.output)
    print(f'facesym record: writing {args.storage} bag {output}; Ctrl-C stops', file=sys.stderr, flush=True)
    counts = record(output, topics, args.storage, args.duration)
    total = sum(counts.values())
    print(f'facesym record: {output}: {total} messages on {len(counts)} topics '
          f'({", ".join(f"{name} {count}" for name, count in sorted(counts.items())) or "none"})',
          file=sys.stderr)
    return 0


def add_record_arguments(parser: argparse.ArgumentParser) -> None:
    from facesym_ros.bag.record import DEFAULT_TOPICS

    parser.add_argument('output', help='bag folder to create')
    parser.add_argument('topics', nargs='*',
                        help=f'topics to record, relative names resolved in the default namespace '
                             f'(default: {" ".join(DEFAULT_TOPICS)})')
    parser.add_argument('--all', action='store_true', help='record every topic that has a publisher')
    parser.add_argument('--storage', choices=tuple(STORAGES), default='mcap', help='storage format (default mcap)')
    parser.add_argument('--duration', type=float, help='stop after this many seconds')


def play_command(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from facesym_ros.bag.play import parse_remaps, play

    if args.rate <= 0:
        raise ValueError('--rate must be positive (1 is the recorded rate, 2 twice as fast)')
    with open_bag(Path(args.bag)) as bag:
        for problem in bag.problems:
            print(f'facesym play: warning: {problem}', file=sys.stderr)
        topics = args.topics or list(bag.topics)
        unknown = [name for name in topics if name not in bag.topics and '/' + name not in bag.topics]
        if unknown:
            raise BagError(f'{args.bag}: no topic {", ".join(unknown)}; it has {", ".join(bag.topics)}')
        topics = [name if name in bag.topics else '/' + name for name in topics]
        # the command line is ours, not ROS arguments; Ctrl-C is play's own (counted, acted on between spins)
        rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
        try:
            counts = play(bag, topics, rate=args.rate, step_topic=args.step_topic if args.step else None,
                          step_timeout=args.step_timeout, remaps=parse_remaps(args.remap or ()),
                          wait_for_subscribers=args.wait, clock_hz=args.clock)
        finally:
            rclpy.try_shutdown()
    for problem in bag.problems:
        print(f'facesym play: warning: {problem}', file=sys.stderr)
    print('facesym play: published ' + ', '.join(f'{name} {count}' for name, count in counts.items()),
          file=sys.stderr)
    return 0


def add_play_arguments(parser: argparse.ArgumentParser) -> None:
    from facesym_ros.bag.play import CLOCK_TOPIC, DEFAULT_CLOCK_HZ

    parser.add_argument('bag', help='bag folder (or a lone .mcap/.db3 file)')
    parser.add_argument('--topics', nargs='+', help='topics to publish (default: all of the bag\'s)')
    parser.add_argument('--rate', type=float, default=1.0, help='speed: 1 the recorded rate, 2 twice as fast')
    parser.add_argument('--step', action='store_true',
                        help='lock-step with the graph: after each image, wait for its result on --step-topic')
    parser.add_argument('--step-topic', default='region_motion', help='the graph\'s per-image output (--step)')
    parser.add_argument('--step-timeout', type=float, default=10.0, help='longest wait per image with --step [s]')
    parser.add_argument('--remap', action='append', metavar='FROM:=TO',
                        help='publish topic FROM as TO, e.g. trial_events:=trial_control to replay recorded trials')
    parser.add_argument('--wait', type=float, default=10.0, help='longest wait for subscribers before playing [s]')
    parser.add_argument('--clock', type=float, nargs='?', const=DEFAULT_CLOCK_HZ, metavar='HZ',
                        help=f'publish the bag\'s time on {CLOCK_TOPIC} (rosgraph_msgs/Clock) for nodes with '
                             f'use_sim_time: at every message and HZ times a second between them '
                             f'(default {DEFAULT_CLOCK_HZ:g})')


def score_bag_command(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from facesym_ros.bag.score import TrialRange, pick_image_topic, score_bag

    trials = [TrialRange.parse(text) for text in args.trial or ()]
    settings = resolve_settings(args)
    with open_bag(args.bag) as bag:
        topic = pick_image_topic(bag, args.topic)
        total = topic.message_count or None
        with tqdm(total=total, unit='frame', desc=f'scoring {topic.name}', disable=args.quiet) as bar:
            report = score_bag(bag, settings.pipeline, topic=args.topic, trials=trials, use_markers=not args.no_markers,
                               output_bag=Path(args.output_bag) if args.output_bag else None,
                               output_storage=args.output_storage, output_namespace=args.output_namespace,
                               heatmap_max=settings.heatmap_max, progress=bar.update)
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
    score.add_argument('--quiet', action='store_true', help='no progress bar')
    add_method_arguments(score)
    score.set_defaults(run=score_bag_command)
