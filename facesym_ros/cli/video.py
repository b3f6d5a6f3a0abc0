"""`facesym score` and `facesym synth`: the method on video files and folders of frames."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

from facesym_ros.cli.common import add_method_arguments, resolve_input, resolve_settings
from facesym_ros.core.annotate import AnnotationWriter
from facesym_ros.core.landmarks.factory import make_landmark_backend
from facesym_ros.core.pipeline import score_video
from facesym_ros.core.regions import SIDE_NAMES
from facesym_ros.core.report import format_table, write_json
from facesym_ros.core.synth import keep_motion_half
from facesym_ros.core.video import IMAGE_SUFFIXES, FrameSource

VIDEO_SUFFIXES = {'.mp4', '.avi', '.mov', '.mkv'}


def score_command(args: argparse.Namespace) -> int:
    path = resolve_input(args)
    settings = resolve_settings(args)
    writers: list[AnnotationWriter] = []  # made at the first frame, so a bad input leaves no --annotate folder

    def annotate(result) -> None:
        if not writers:
            writers.append(AnnotationWriter(args.annotate, settings.heatmap_max))
        writers[0](result)

    scored = score_video(path, settings.pipeline, args.frame_rate, on_frame=annotate if args.annotate else None)
    score = scored.score
    print(format_table(score, title=f'{path} ({scored.frame_rate:g} fps, landmarks: {scored.landmark_backend})'))
    if args.json:
        write_json(args.json, {**score.to_json_dict(), 'input': str(path)})
    for writer in writers:
        writer.finish(score)
    return 0


def clear_output(output: Path, as_video: bool, overwrite: bool) -> None:
    """Refuse to write over an existing video or into a folder that holds files, unless overwrite: then remove the
    video, or the folder's frames (every image a frame folder is read from), so no old frame mixes with the new."""
    if as_video:
        if output.exists() and not output.is_file():
            raise ValueError(f'{output} exists and is not a file')
        if output.exists() and not overwrite:
            raise ValueError(f'{output} exists; give --overwrite to replace it')
        output.unlink(missing_ok=True)
        return
    if output.exists() and not output.is_dir():
        raise ValueError(f'{output} exists and is not a folder')
    if not output.is_dir() or not any(output.iterdir()):
        return
    if not overwrite:
        raise ValueError(f'{output} is not empty: frames already there would be scored with the new ones; '
                         'give --overwrite to remove its frames first, or another folder')
    for path in output.iterdir():
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            path.unlink()


def synth_command(args: argparse.Namespace) -> int:
    path = resolve_input(args)
    config = resolve_settings(args).pipeline
    source = FrameSource.open(path, args.frame_rate)
    backend = make_landmark_backend(config.landmarks)
    alpha = args.keep_motion
    frames = keep_motion_half(source.frames(), args.freeze, alpha, backend, mirrored=config.flow.mirrored,
                              detector_config=config.detector)
    output = Path(args.output)
    # Lossy codecs change the frozen pixels a little; a folder of PNG frames keeps them exact.
    as_video = output.suffix.lower() in VIDEO_SUFFIXES
    if output.resolve() == path.resolve():
        raise ValueError(f'{output} is the input; write the synthetic frames elsewhere')
    clear_output(output, as_video, args.overwrite)
    (output.parent if as_video else output).mkdir(parents=True, exist_ok=True)
    writer = None
    count = 0
    try:
        for count, frame in enumerate(frames, start=1):
            if not as_video:
                cv2.imwrite(str(output / f'frame_{count - 1:05d}.png'), frame.bgr)
                continue
            if writer is None:
                writer = cv2.VideoWriter(str(output), cv2.VideoWriter_fourcc(*'mp4v'), source.frame_rate,
                                         (frame.width, frame.height))
                if not writer.isOpened():
                    raise ValueError(f'{output}: OpenCV cannot write this video format')
            writer.write(frame.bgr)
    finally:
        if writer is not None:
            writer.release()
    what = 'frozen at frame 0' if alpha == 0.0 else f'keeping {alpha:g} of its motion'
    print(f'{output}: {count} frames with the patient\'s {args.freeze} half {what}', file=sys.stderr)
    return 0


def add_parsers(commands: argparse._SubParsersAction) -> None:
    score = commands.add_parser(
        'score', help='score a video file or a folder of frames (sorted by name) as one trial',
        description='Score a video file or a folder of frames as one trial, with the paper\'s method.')
    score.add_argument('input', nargs='?', help='video file or folder of frames')
    score.add_argument('--sample', action='store_true', help='score the bundled sample clip')
    score.add_argument('--json', metavar='OUT', help='write the score as JSON')
    score.add_argument('--annotate', metavar='DIR',
                       help='write annotated frames and heatmap_total.png (paper Fig. 4) to DIR')
    score.add_argument('--frame-rate', type=float, help='frame rate of a folder of frames (default 30) [Hz]')
    add_method_arguments(score)
    score.set_defaults(run=score_command)

    synth = commands.add_parser(
        'synth', help='freeze one half of the face at its first-frame look (synthetic asymmetry)',
        description='Make an asymmetric sequence from a symmetric one (paper section 4.1).')
    synth.add_argument('input', nargs='?', help='video file or folder of frames')
    synth.add_argument('output', help='output video (.mp4, .avi) or folder of PNG frames (exact pixels)')
    synth.add_argument('--freeze', required=True, choices=SIDE_NAMES, help="the patient's side to freeze")
    synth.add_argument('--keep-motion', type=float, default=0.0, metavar='ALPHA',
                       help='keep this fraction of the --freeze side\'s motion (graded severity): '
                            '0 freezes it (default), 1 leaves it unchanged')
    synth.add_argument('--sample', action='store_true', help='use the bundled sample clip as INPUT')
    synth.add_argument('--overwrite', action='store_true',
                       help='replace an existing output video, or remove the frames already in the output folder')
    synth.add_argument('--frame-rate', type=float, help='frame rate of a folder of frames (default 30) [Hz]')
    add_method_arguments(synth, heatmap=False)
    synth.set_defaults(run=synth_command)
