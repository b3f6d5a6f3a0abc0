"""Overlays for standard viewers: the landmarks and region outlines as visualization_msgs/ImageMarker.

Foxglove's Image panel (and RViz plugins that draw image markers) show them over
the raw image or the heat map they were computed on: every marker carries that
image's header, stamp and frame_id unchanged. One frame gives MARKERS_PER_FRAME
markers, always all of them (with no points when there is no face), so each
replaces the one of the previous frame with the same namespace and id.
"""

from __future__ import annotations

from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import ImageMarker

from facesym_ros.core.annotate import LANDMARK_COLOUR, REGION_COLOURS
from facesym_ros.core.regions import REGION_NAMES, SIDE_NAMES
from facesym_ros.msg import FaceLandmarks, RegionMotion

REGION_ORDER = tuple((region, side) for region in REGION_NAMES for side in SIDE_NAMES)
"""The six region sides, in the order of RegionMotion.regions; a marker's id in the `regions` namespace."""
MARKERS_PER_FRAME = 1 + len(REGION_ORDER)
LANDMARK_SIZE = 3.0
"""Diameter of a landmark point [px]."""
OUTLINE_WIDTH = {'left': 2.0, 'right': 1.0}
"""Region outlines: the patient's left solid and wider, as in the annotated image [px]."""


def colour(bgr: tuple[int, int, int]) -> ColorRGBA:
    blue, green, red = bgr
    return ColorRGBA(r=red / 255.0, g=green / 255.0, b=blue / 255.0, a=1.0)


def image_markers(header: Header, landmarks: FaceLandmarks, motion: RegionMotion) -> list[ImageMarker]:
    """The 68 landmarks (POINTS, namespace `landmarks`) and the six region outlines (POLYGON, namespace
    `regions`, ids in REGION_ORDER) of one frame, in source-image pixels, stamped with its header."""
    points = ImageMarker(header=header, ns='landmarks', id=0, type=ImageMarker.POINTS, action=ImageMarker.ADD,
                         scale=LANDMARK_SIZE, outline_color=colour(LANDMARK_COLOUR))
    if landmarks.face_found:
        points.points = [Point(x=float(p.x), y=float(p.y)) for p in landmarks.points]
    outlines = {(side.region, side.side): side.polygon for side in motion.regions}
    markers = [points]
    for index, (region, side) in enumerate(REGION_ORDER):
        markers.append(ImageMarker(
            header=header, ns='regions', id=index, type=ImageMarker.POLYGON, action=ImageMarker.ADD,
            scale=OUTLINE_WIDTH[side], outline_color=colour(REGION_COLOURS[region]),
            points=[Point(x=float(p.x), y=float(p.y)) for p in outlines.get((region, side), ())]))
    return markers
