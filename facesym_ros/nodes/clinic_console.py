"""clinic_console: the clinic's operator and patient pages (`facesym console`, launch console:=true).

Subscribes: faces, region_motion and face_patch (the readiness check: face found, its size, the small_face and
            head-motion rules, the light on the face), /diagnostics (every node of the graph up), prompt (the
            task the patient is asked for, by whoever runs the session), score and score_running (each
            task's running and final score), and, only while a page shows video, annotated/compressed
            (the operator's video) and image (the patient's mirror picture, JPEG-encoded here; the graph
            remaps it to face_detector's image_preview, so the console takes no whole 1080p frame).
Publishes:  trial_control, prompt and session_info, through the session runner of `facesym session`
            (facesym_ros/ros/session_runner.py) while a session it started runs.
Serves:     the pages (facesym_ros/console/server.py) on host:port; sessions under output.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CompressedImage, Image

from facesym_ros.clinic.session_record import PROMPT_TOPIC, countdown_view
from facesym_ros.config.node_settings import ConsoleSettings
from facesym_ros.config.registry import DIAGNOSTICS_TOPIC, NODE_NAMES
from facesym_ros.console.readiness import Readiness
from facesym_ros.core.flags import flags_of, void_reason
from facesym_ros.core.scoring import ScoringSettings
from facesym_ros.core.timebase import RateGate, ns_to_seconds
from facesym_ros.msg import FaceDetections, RegionMotion, SymmetryScore, TaskPrompt
from facesym_ros.ros.conversions import ImageConversionError, image_to_bgr, msg_to_score, stamp_to_ns
from facesym_ros.ros.node_base import (
    CONTROL_QUEUE_DEPTH,
    SettingsNode,
    events_executor,
    image_qos,
    latched_qos,
    pipeline_qos,
)

STREAM_CHECK = 0.1  # s between checks whether a page watches a video stream
LIGHT_PERIOD = 0.5  # s between light measurements of the face patch
PATIENT_WIDTH = 960  # px: the patient's picture is sent at most this wide
PATIENT_QUALITY = 80
VIDEO_RATE = 20.0  # Hz: frames a second of the patient's picture (the browser's CPU; the target is 15 or more)
MAX_SCORES = 200


def score_json(msg: SymmetryScore) -> dict:
    """A task's score for the page: SS per region (null and the reason where it means nothing), flags in words."""
    result = msg_to_score(msg)
    regions = []
    for region in result.regions:
        ss = None if math.isnan(region.symmetry) else round(float(region.symmetry), 6)
        regions.append({'region': region.region, 'ss': ss, 'void': void_reason(result, region.region)})
    return {'trial_id': msg.trial_id, 'task': msg.task, 'frames': int(msg.frame_count), 'regions': regions,
            'flags': [{'name': text.name, 'words': text.words, 'action': text.action} for text in flags_of(result)]}


class VideoTap:
    """A subscription made only while a page watches: `watchers` is set by the server, `sink` gets the bytes.

    `gate` passes on `rate` frames a second (0: all), by the images' stamps: a page needs no more, and each
    frame the browser decodes is CPU that the graph's nodes share on the rig PC.
    """

    def __init__(self, rate: float) -> None:
        self.watchers = 0
        self.sink: Callable[[bytes], None] | None = None
        self.subscription = None
        self.frames = 0
        self.gate = RateGate(rate)

    def live(self) -> Callable[[bytes], None] | None:
        """The sink while a page watches, else None."""
        return self.sink if self.watchers > 0 else None


class ClinicConsoleNode(SettingsNode):
    def __init__(self, scoring: ScoringSettings | None = None, **kwargs) -> None:
        super().__init__('clinic_console', **kwargs)
        self.readiness = Readiness(NODE_NAMES, scoring)
        self.lock = threading.Lock()
        self.prompt: TaskPrompt | None = None
        self.prompt_at = 0.0
        self.newest_ns = 0
        self.finals: dict[str, dict] = {}
        self.running: dict[str, dict] = {}
        self._light_at = 0.0
        self.annotated = VideoTap(0.0)  # every frame: the annotator draws at most its max_rate a second
        self.camera = VideoTap(VIDEO_RATE)
        self.create_subscription(FaceDetections, 'faces', self._on_faces, pipeline_qos(60))
        self.create_subscription(RegionMotion, 'region_motion', self._on_motion, pipeline_qos(60))
        self.create_subscription(Image, 'face_patch', self._on_patch, image_qos(2))
        self.create_subscription(DiagnosticArray, DIAGNOSTICS_TOPIC, self._on_diagnostics,
                                 pipeline_qos(CONTROL_QUEUE_DEPTH))
        self.create_subscription(TaskPrompt, PROMPT_TOPIC, self._on_prompt, latched_qos(1))
        self.create_subscription(SymmetryScore, 'score', self._on_final, latched_qos())
        self.create_subscription(SymmetryScore, 'score_running', self._on_running, pipeline_qos(CONTROL_QUEUE_DEPTH))
        self.create_timer(STREAM_CHECK, self._update_taps)

    # -- the graph ----------------------------------------------------------------------------------------------

    def _on_faces(self, msg: FaceDetections) -> None:
        self.newest_ns = max(self.newest_ns, stamp_to_ns(msg.header.stamp))
        found = msg.selected >= 0
        self.readiness.on_faces(found, int(msg.tracked_box.width) if found else 0)

    def _on_motion(self, msg: RegionMotion) -> None:
        self.readiness.on_motion(bool(msg.face_found), float(msg.magnitude_scale),
                                 (float(msg.head_offset_x), float(msg.head_offset_y)))

    def _on_patch(self, msg: Image) -> None:
        now = time.monotonic()
        if now - self._light_at < LIGHT_PERIOD or msg.width == 0:
            return
        self._light_at = now
        try:
            grey = cv2.cvtColor(image_to_bgr(msg), cv2.COLOR_BGR2GRAY)
        except (ImageConversionError, cv2.error):
            return
        height, width = grey.shape
        core = grey[height // 4: 3 * height // 4, width // 4: 3 * width // 4]  # the face, not the margin around it
        self.readiness.on_light(float(np.mean(core)) if core.size else float(np.mean(grey)))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            values = {item.key: item.value for item in status.values}
            self.readiness.on_status(status.name, int.from_bytes(status.level, 'little')
                                     if isinstance(status.level, bytes) else int(status.level), status.message, values)

    def _on_prompt(self, msg: TaskPrompt) -> None:
        with self.lock:
            self.prompt, self.prompt_at = msg, time.monotonic()

    def _on_final(self, msg: SymmetryScore) -> None:
        if msg.kind != SymmetryScore.KIND_FINAL:
            return
        score = score_json(msg)
        with self.lock:
            self.finals[msg.trial_id] = score
            self.running.pop(msg.trial_id, None)
            while len(self.finals) > MAX_SCORES:
                self.finals.pop(next(iter(self.finals)))

    def _on_running(self, msg: SymmetryScore) -> None:
        if msg.trial_id in self.finals:
            return
        score = score_json(msg)
        with self.lock:
            self.running[msg.trial_id] = score
            while len(self.running) > MAX_SCORES:
                self.running.pop(next(iter(self.running)))

    # -- what the pages see -------------------------------------------------------------------------------------

    def prompt_view(self) -> dict | None:
        """The prompt with its countdown by the newest frame's stamp (as the annotator's banner counts)."""
        with self.lock:
            prompt = self.prompt
        if prompt is None:
            return None
        start_ns = stamp_to_ns(prompt.header.stamp)
        now_ns = self.newest_ns or start_ns
        state = {TaskPrompt.STATE_GET_READY: 'get_ready', TaskPrompt.STATE_GO: 'go',
                 TaskPrompt.STATE_DONE: 'done'}.get(prompt.state, 'done')
        phase, countdown = countdown_view(state, prompt.task, start_ns, now_ns, prompt.duration)
        return {'state': state, 'phase': phase, 'task': prompt.task, 'instruction': prompt.instruction,
                'number': int(prompt.task_number), 'count': int(prompt.task_count), 'countdown': countdown,
                'session_id': prompt.session_id, 'subject_id': prompt.subject_id}

    def scores(self) -> tuple[dict[str, dict], dict[str, dict]]:
        with self.lock:
            return dict(self.finals), dict(self.running)

    # -- video, only while a page watches -----------------------------------------------------------------------

    def _update_taps(self) -> None:
        for tap, kind, topic, callback in ((self.annotated, CompressedImage, 'annotated/compressed', self._on_jpeg),
                                          (self.camera, Image, 'image', self._on_camera)):
            if tap.watchers > 0 and tap.subscription is None:
                tap.subscription = self.create_subscription(kind, topic, callback, image_qos(2))
            elif tap.watchers <= 0 and tap.subscription is not None:
                self.destroy_subscription(tap.subscription)
                tap.subscription = None

    @staticmethod
    def _framed(msg, jpeg: bytes) -> bytes:
        """Stamp of the image [s] as a little-endian float64, then the JPEG: the page measures its latency."""
        return np.float64(ns_to_seconds(stamp_to_ns(msg.header.stamp))).tobytes() + jpeg

    def _on_jpeg(self, msg: CompressedImage) -> None:
        sink = self.annotated.live()
        if sink is not None and self.annotated.gate.take(stamp_to_ns(msg.header.stamp)):
            self.annotated.frames += 1
            sink(self._framed(msg, bytes(msg.data)))

    def _on_camera(self, msg: Image) -> None:
        sink = self.camera.live()
        if sink is None or not self.camera.gate.take(stamp_to_ns(msg.header.stamp)):
            return
        try:
            bgr = image_to_bgr(msg)
        except ImageConversionError:
            return
        if bgr.shape[1] > PATIENT_WIDTH:
            bgr = cv2.resize(bgr, (PATIENT_WIDTH, round(bgr.shape[0] * PATIENT_WIDTH / bgr.shape[1])),
                             interpolation=cv2.INTER_AREA)
        ok, encoded = cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, PATIENT_QUALITY])
        if ok:
            self.camera.frames += 1
            sink(self._framed(msg, encoded.tobytes()))


def params_file(args: list[str]) -> str | None:
    """The --params-file of a node's ROS arguments (the scorer's rules and the method the console scores with)."""
    if '--params-file' in args and args.index('--params-file') + 1 < len(args):
        return args[args.index('--params-file') + 1]
    return None


def serve(cli_args: list[str] | None = None, graph_factory: Callable[[Path], object] | None = None,
          out=sys.stderr) -> int:
    """Run the node (its own thread) and the pages (this thread's event loop) until Ctrl-C or SIGTERM.

    Ctrl-C during a session stops it as in `facesym session` (the running task scored as far as it came, a
    partial report), then the console exits.
    """
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    from facesym_ros.config.files import dds_environment
    from facesym_ros.config.params import load_params_file, pipeline_config, settings_from
    from facesym_ros.console.server import run_server
    from facesym_ros.console.sessions import ConsoleSessionSettings, SessionManager

    os.environ.update(dds_environment())
    context = rclpy.Context()
    rclpy.init(args=cli_args, context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        params = load_params_file(params_file(cli_args or []))
        node = ClinicConsoleNode(settings_from(params, ScoringSettings), context=context)
        settings = node.settings(ConsoleSettings)
        root = Path(settings.output).expanduser() if settings.output else Path.home() / 'facesym-sessions'
        pipeline = pipeline_config(params)
        manager = SessionManager(ConsoleSessionSettings(
            root=root.resolve(), protocols_dir=Path(settings.protocols).expanduser() if settings.protocols else None,
            lead_in=settings.lead_in, record=settings.record, storage=settings.storage,
            namespace=node.get_namespace().strip('/'), image_topic=settings.image_topic, pipeline=pipeline),
            graph_factory)
        executor = events_executor(context)
        executor.add_node(node)
        spinner = threading.Thread(target=_spin, args=(executor, context), name='facesym-console-ros', daemon=True)
        spinner.start()
        return run_server(node, manager, settings, out=out)
    except ValueError as error:
        print(f'clinic console: {error}', file=out)
        return 2
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown(context=context)


def _spin(executor, context) -> None:
    try:
        while context.ok():
            executor.spin_once(timeout_sec=0.1)
    except Exception:  # the context was shut down under the executor: the console is ending
        if context.ok():
            raise


def main(args: list[str] | None = None) -> int:
    from facesym_ros.ros.bringup import die_with_parent

    die_with_parent()
    return serve(args if args is not None else sys.argv)


if __name__ == '__main__':
    sys.exit(main())
