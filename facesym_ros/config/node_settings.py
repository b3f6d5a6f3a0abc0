"""Settings that only the ROS nodes have (sources, queues, trials), declared like the core's.

Kept free of ROS imports so that the `facesym` command can check a parameter
file without starting ROS.
"""

from __future__ import annotations

from dataclasses import dataclass

from facesym_ros.core.settings import Settings, setting


@dataclass(frozen=True)
class ImageSourceSettings(Settings):
    source: str = setting('sample', 'What to publish: sample (the bundled clip), a video file, a folder of '
                                    'images (sorted by name), or camera:<index> for a V4L2/USB camera')
    frame_rate: float = setting(0.0, 'Publishing rate; 0 publishes at the source\'s own rate [Hz]',
                                min=0.0, max=1000.0)
    frame_id: str = setting('camera', 'frame_id of the published images and camera info')
    loop: bool = setting(False, 'Start the file or folder again at its end')
    max_frames: int = setting(0, 'Stop after this many frames; 0 publishes the whole source', min=0,
                              max=2**31 - 1)
    wait_for_subscribers: int = setting(0, 'Publish only once this many subscribers are matched on the '
                                           'image topic (so the first frames are not lost)', min=0, max=100)
    wait_timeout: float = setting(10.0, 'Longest wait for those subscribers before publishing anyway [s]',
                                  min=0.0, max=3600.0)
    camera_width: int = setting(0, 'Requested camera width; 0 keeps the driver\'s [px]', min=0, max=16384)
    camera_height: int = setting(0, 'Requested camera height; 0 keeps the driver\'s [px]', min=0, max=16384)


@dataclass(frozen=True)
class NodeQueueSettings(Settings):
    queue_size: int = setting(300, 'Frames a lagging node holds before it drops the oldest: depth of every '
                                   'image and per-frame queue and of the stamp-pairing buffers (300: 10 s at '
                                   '30 fps, 5 s at 60). Memory is taken only while the node lags. face_detector '
                                   'and annotator hold whole frames: 276 MB at 640x480 bgr8. landmark_detector '
                                   'and optical_flow hold face patches, the face box grown by a quarter on each '
                                   'side: 76 MB for a 193 px face',
                              min=1, max=10000, read_only=True)


@dataclass(frozen=True)
class ExecutorSettings(Settings):
    """How a node process waits for its messages, timers and services."""

    executor: str = setting('events', 'rclpy executor that runs the node: events (rclpy.experimental.'
                                      'EventsExecutor, driven by the middleware\'s events: about half the CPU '
                                      'per message) or single_threaded (rclpy\'s SingleThreadedExecutor, '
                                      'which rebuilds a wait set for every message); nodes composed in one '
                                      'process (bringup --composed) share a MultiThreadedExecutor instead',
                            choices=('events', 'single_threaded'), read_only=True)
    opencv_threads: int = setting(1, 'OpenCV worker threads in the node\'s process: the graph\'s nodes already '
                                     'run side by side, and more threads a process contend for the cores of a '
                                     'small rig PC (on 2 cores the chain fell behind a 30 fps camera with '
                                     'OpenCV\'s default, docs/benchmarks.md); 0 is OpenCV\'s default, one a '
                                     'core', min=0, max=256, read_only=True)


@dataclass(frozen=True)
class DiagnosticsSettings(Settings):
    """Every node's health report on /diagnostics (diagnostic_msgs/DiagnosticArray)."""

    diagnostics_period: float = setting(1.0, 'How often the node publishes its status on /diagnostics; the '
                                             'rate and processing times are of the frames since the last one [s]',
                                        min=0.1, max=60.0, read_only=True)
    processing_warn_ms: float = setting(50.0, 'Mean processing time per frame above which the status is WARN '
                                              '[ms]', min=0.0, max=60000.0)
    processing_error_ms: float = setting(200.0, 'Mean processing time per frame above which the status is '
                                                'ERROR [ms]', min=0.0, max=60000.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.processing_error_ms < self.processing_warn_ms:
            raise ValueError(f'processing_error_ms ({self.processing_error_ms:g}) must be >= processing_warn_ms '
                             f'({self.processing_warn_ms:g})')


@dataclass(frozen=True)
class OpticalFlowNodeSettings(Settings):
    publish_heatmap: bool = setting(True, 'Publish the flow-magnitude heat map image (paper Fig. 4)')
    publish_markers: bool = setting(True, 'Publish the landmarks and region outlines as '
                                          'visualization_msgs/ImageMarker on image_markers while subscribed')
    heatmap_max: float = setting(5.0, 'Flow magnitude shown as the hottest colour [px/frame]',
                                 min=0.01, max=1000.0)


@dataclass(frozen=True)
class PreviewSettings(Settings):
    """The face detector's image_preview: the camera frame scaled down for people (the annotator draws on it)."""

    preview_width: int = setting(960, 'Largest width of image_preview, published only while it has a subscriber '
                                      '(the annotator): a wider frame is scaled down by the smallest whole factor '
                                      'that makes it so (1920 to 960, 1280 to 640 px); 0 publishes the whole '
                                      'frame [px]', min=0, max=16384)


@dataclass(frozen=True)
class AnnotatorNodeSettings(Settings):
    jpeg_quality: int = setting(90, 'JPEG quality of annotated/compressed', min=1, max=100)
    max_rate: float = setting(20.0, 'Most annotated images a second, picked by the images\' stamps: they are '
                                    'for people, and each costs the drawing and its JPEG; 0 draws every paired '
                                    'frame [Hz]', min=0.0, max=1000.0)


@dataclass(frozen=True)
class ScorerNodeSettings(Settings):
    window_seconds: float = setting(0.0, 'Unattended mode: also score a rolling window of this length; '
                                         '0 scores trials only [s]', min=0.0, max=3600.0)
    window_period: float = setting(1.0, 'How often a rolling-window score is published [s]',
                                   min=0.01, max=3600.0)
    running_period: float = setting(0.5, 'How often the running score of an open trial is published; 0 '
                                         'after every frame [s]', min=0.0, max=3600.0)
    stop_grace: float = setting(1.0, 'After a stop, the final score comes once every frame the face detector '
                                     'saw up to the stop has its motion, and a later frame was seen or no frame '
                                     'came for this long (the stream ended) [s]', min=0.0, max=60.0)
    final_timeout: float = setting(10.0, 'Longest wait after a stop for the frames before it; a final score '
                                         'given when it runs out is flagged incomplete [s]', min=0.1, max=3600.0)
    max_trial_seconds: float = setting(600.0, 'A trial longer than this is ended and scored (bounds memory) [s]',
                                       min=1.0, max=86400.0)
    max_stamp_jump: float = setting(5.0, 'A frame stamped this much after the trial\'s previous frame is taken only '
                                         'if the next frame follows it (a pause); otherwise it is a clock jump and '
                                         'is left out [s]', min=0.1, max=86400.0)
    motion_queue_size: int = setting(300, 'Depth of the region_motion and faces subscriptions; the scorer is '
                                          'cheap, so a burst of frames waits here rather than being dropped',
                                     min=1, max=100000, read_only=True)
    trial_prefix: str = setting('trial', 'Trial ids are <prefix>-<UTC date-time>-<4 hex digits>, unique across '
                                         'restarts; ids given on trial_control are kept')
    state_dir: str = setting('', 'Folder of the scorer\'s state file (the open trial and its frames so far, so a '
                                 'restarted scorer continues it); empty: $ROS_HOME/facesym, else ~/.ros/facesym',
                             read_only=True)
    state_period: float = setting(1.0, 'How often the state of an open trial is saved; frames after the last save '
                                       'are missing from the trial if the scorer dies [s]', min=0.05, max=60.0,
                                  read_only=True)
    resume_within: float = setting(30.0, 'A trial left open by a scorer that died is continued when the scorer is '
                                         'back within this time of the last save; later, it is closed with a '
                                         'partial score that says so [s]', min=0.0, max=86400.0)


@dataclass(frozen=True)
class RespawnSettings(Settings):
    """How `facesym bringup` and the launch file restart a node that died (not node parameters)."""

    respawn_delay: float = setting(0.25, 'Wait before restarting a node that died; doubled for every further '
                                        'death within respawn_window [s]', min=0.0, max=60.0)
    max_respawn_delay: float = setting(10.0, 'Longest wait before a restart [s]', min=0.0, max=600.0)
    respawn_limit: int = setting(5, 'A node that dies this many times within respawn_window is not restarted '
                                    'again: bringup stops the graph', min=1, max=1000)
    respawn_window: float = setting(60.0, 'Deaths counted against respawn_limit [s]', min=1.0, max=86400.0)
    graph_check_seconds: float = setting(3.0, 'Before starting, how long bringup listens for a graph already '
                                              'running in its namespace [s]', min=0.0, max=60.0)


@dataclass(frozen=True)
class ConsoleSettings(Settings):
    """The clinic console (`facesym console`, launch console:=true): operator and patient pages, sessions."""

    host: str = setting('127.0.0.1', 'Address the pages are served on; any address but localhost needs the '
                                     'token on every request (the pages show faces and subject ids)',
                        read_only=True)
    port: int = setting(8080, 'TCP port of the pages; 0 picks a free one, printed at start', min=0, max=65535,
                        read_only=True)
    output: str = setting('', 'Folder of every session (OUTPUT/SUBJECT/SESSION: the bag and the report); '
                              'empty: ~/facesym-sessions', read_only=True)
    protocols: str = setting('', 'Folder of more protocol files (*.yaml) the operator may choose, beside '
                                 'config/protocol.yaml', read_only=True)
    mirror: bool = setting(True, 'The patient page shows the camera mirrored, as a mirror does')
    lead_in: float = setting(3.0, 'Time between a task\'s prompt and its start, and between tasks [s]',
                             min=1.5, max=60.0)
    record: bool = setting(True, 'Record each session\'s bag (the report\'s heat maps and key frames come from it)')
    storage: str = setting('mcap', 'Session bag format', choices=('mcap', 'sqlite3'))
    image_topic: str = setting('image_raw', 'The camera topic a session records (the patient page shows '
                                            'face_detector\'s image_preview of it)')
