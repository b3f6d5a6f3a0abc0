"""The scoring PC of a two-host rig: landmark_detector, optical_flow and symmetry_scorer, plus a client.

    python -m helpers.scoring_host FRAMES

Brings the nodes up, waits until they are connected, starts a trial, waits until the rig's face_detector is
seen, prints READY (the rig PC's source may start then), waits for FRAMES region_motion messages, stops the
trial and prints the final score as JSON.
"""

from __future__ import annotations

import json
import sys

import rclpy

from facesym_ros.config.files import default_params_file
from facesym_ros.config.registry import select
from facesym_ros.ros.bringup import ProcessGraph
from facesym_ros.ros.graph_client import GraphClient

NODES = 'landmark_detector,optical_flow,symmetry_scorer'


def main() -> int:
    frames = int(sys.argv[1])
    rclpy.init()
    specs = select(NODES)
    graph = ProcessGraph(specs, default_params_file())
    client = GraphClient(name='scoring_host_client')
    try:
        graph.start()
        client.wait_for_graph(specs, timeout=60)
        trial = client.start_trial()
        # the rig's face_detector: its patches and detections reach this host's nodes before the camera starts
        if not client.spin_until(lambda: all(client.count_publishers(topic) for topic in ('face_patch', 'faces')),
                                 60):
            raise TimeoutError('the rig\'s face_detector was not seen within 60 s')
        client.spin_until(lambda: False, 1.0)  # its publishers match our subscriptions
        print('READY', flush=True)
        client.wait_for_frames(frames, timeout=90, idle=10)
        client.stop_trial()
        final = client.wait_for_final(trial)
        print(json.dumps({'frames': final.frame_count, 'regions': {
            r.region: [r.vs_left, r.vs_right, r.symmetry] for r in final.regions}}), flush=True)
        return 0
    finally:
        graph.stop()
        client.close()
        rclpy.try_shutdown()


if __name__ == '__main__':
    sys.exit(main())
