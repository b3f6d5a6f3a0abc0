"""The `facesym` command: score videos and bags, make synthetic asymmetry, run the ROS graph."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from facesym_ros import cli_clinic


def _offline_parsers(commands: argparse._SubParsersAction) -> None:
    from facesym_ros import offline

    score = commands.add_parser(
        'score', help='score a video file or a folder of frames (sorted by name) as one trial',
        description='Score a video file or a folder of frames as one trial, with the paper\'s method.')
    score.add_argument('input', nargs='?', help='video file or folder of frames')
    score.add_argument('--sample', action='store_true', help='score the bundled sample clip')
    score.add_argument('--json', metavar='OUT', help='write the score as JSON')
    score.add_argument('--annotate', metavar='DIR',
                       help='write annotated frames and heatmap_total.png (paper Fig. 4) to DIR')
    score.add_argument('--heatmap-max', type=float, default=5.0,
                       help='flow magnitude shown as the hottest colour in per-frame heat maps [px/frame]')
    score.add_argument('--frame-rate', type=float, help='frame rate of a folder of frames (default 30) [Hz]')
    offline.add_common_arguments(score)
    score.set_defaults(run=offline.score_command)

    synth = commands.add_parser(
        'synth', help='freeze one half of the face at its first-frame look (synthetic asymmetry)',
        description='Make an asymmetric sequence from a symmetric one (paper section 4.1).')
    synth.add_argument('input', nargs='?', help='video file or folder of frames')
    synth.add_argument('output', help='output video (.mp4, .avi) or folder of PNG frames (exact pixels)')
    synth.add_argument('--freeze', required=True, choices=('left', 'right'),
                       help="the patient's side to freeze")
    synth.add_argument('--keep-motion', type=float, default=0.0, metavar='ALPHA',
                       help='keep this fraction of the --freeze side\'s motion (graded severity): '
                            '0 freezes it (default), 1 leaves it unchanged')
    synth.add_argument('--sample', action='store_true', help='use the bundled sample clip as INPUT')
    synth.add_argument('--frame-rate', type=float, help='frame rate of a folder of frames (default 30) [Hz]')
    offline.add_common_arguments(synth)
    synth.set_defaults(run=offline.synth_command)


def _graph_parsers(commands: argparse._SubParsersAction) -> None:
    from facesym_ros import bringup, live

    up = commands.add_parser(
        'bringup', help='start the facesym ROS graph without ROS launch (same graph as the launch file)',
        description='Start the facesym nodes with config/facesym.yaml, each in its own process or composed '
                    'in one; Ctrl-C stops them.')
    bringup.add_arguments(up)
    up.set_defaults(run=bringup.bringup_command)

    demo = commands.add_parser(
        'demo', help='run the live graph on the bundled sample (or --source) and print scores as they arrive',
        description='Bring the graph up, run one trial over the whole source through the scorer\'s services, '
                    'print the running and final scores, and shut the graph down.')
    live.add_demo_arguments(demo)
    demo.set_defaults(run=live.demo_command)


def _bag_parsers(commands: argparse._SubParsersAction) -> None:
    from facesym_ros.bag import cli as bag_cli

    bag_cli.add_parsers(commands)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='facesym', description='Objective facial-asymmetry scores for one-sided facial paralysis.')
    commands = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    _offline_parsers(commands)
    _graph_parsers(commands)
    _bag_parsers(commands)
    cli_clinic.add_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (ValueError, FileNotFoundError, OSError, TimeoutError) as error:
        print(f'facesym {args.command}: error: {error}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
