"""Pictures of what the method sees: face box, landmarks, regions, scores and flow heat maps.

The heat map follows the paper's Fig. 4: the thresholded flow magnitude of
the face crop in a jet colour map, blended over the face. Drawing never
changes a number; it only reads the results of the other stages.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from facesym_ros.core.flow import RegionMotion
from facesym_ros.core.frame import Frame
from facesym_ros.core.geometry import Box, Landmarks
from facesym_ros.core.pipeline import FrameResult
from facesym_ros.core.scoring import RegionScore, ScoreResult

# BGR colours per region; the patient's left side is drawn solid, the right dashed-looking (thinner).
REGION_COLOURS = {'forehead': (255, 170, 0), 'eye': (0, 215, 255), 'cheek': (255, 0, 200)}
FACE_BOX_COLOUR = (0, 220, 0)
LANDMARK_COLOUR = (0, 0, 255)
TEXT_COLOUR = (255, 255, 255)


def heatmap_overlay(bgr: np.ndarray, crop: Box, magnitude: np.ndarray, vmax: float, alpha: float = 0.6,
                    ) -> np.ndarray:
    """The image with `magnitude` (the crop's flow magnitudes, at any scale) blended over the crop in a jet
    colour map."""
    out = bgr.copy()
    if vmax <= 0:
        return out
    if magnitude.shape != (crop.height, crop.width):
        magnitude = cv2.resize(magnitude.astype(np.float32), (crop.width, crop.height),
                               interpolation=cv2.INTER_LINEAR)
    scaled = np.clip(magnitude.astype(np.float32) / float(vmax), 0.0, 1.0)
    colours = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_JET)
    patch = out[crop.y:crop.y2, crop.x:crop.x2]
    weight = (alpha * (scaled > 0)).astype(np.float32)[..., None]
    patch[:] = (patch * (1.0 - weight) + colours * weight).astype(np.uint8)
    return out


def draw_regions(image: np.ndarray, polygons: Sequence[tuple[str, str, np.ndarray]]) -> None:
    """Outline (region, side, polygon) triples in place."""
    for region, side, polygon in polygons:
        if len(polygon) < 3:
            continue
        points = np.round(np.asarray(polygon) * 16).astype(np.int32)
        thickness = 2 if side == 'left' else 1
        cv2.polylines(image, [points], True, REGION_COLOURS.get(region, (255, 255, 255)), thickness,
                      cv2.LINE_AA, shift=4)


def draw_face(image: np.ndarray, box: Box | None, landmarks: Landmarks | None) -> None:
    """Face box and landmark points, in place."""
    if box is not None:
        cv2.rectangle(image, (box.x, box.y), (box.x2 - 1, box.y2 - 1), FACE_BOX_COLOUR, 1)
    if landmarks is not None:
        for x, y in landmarks.points:
            cv2.circle(image, (round(float(x) * 16), round(float(y) * 16)), 2 * 16, LANDMARK_COLOUR, -1,
                       cv2.LINE_AA, shift=4)


def draw_scores(image: np.ndarray, scores: Sequence[RegionScore], title: str = '', notes: Sequence[str] = ()
                ) -> None:
    """A text panel with SS per region (and VS left/right) in the top-left corner, in place."""
    lines = [title] if title else []
    for score in scores:
        ss = 'n/a' if math.isnan(score.symmetry) else f'{score.symmetry:.2f}'
        lines.append(f'{score.region:8s} SS {ss}  VS L {score.vs_left:.3f} R {score.vs_right:.3f}')
    lines.extend(f'! {note}' for note in notes)
    y = 18
    for line in lines:
        cv2.putText(image, line, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(image, line, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, TEXT_COLOUR, 1, cv2.LINE_AA)
        y += 18


def draw_banner(image: np.ndarray, text: str) -> None:
    """A strip along the bottom edge with `text` in large letters (a session's prompt to the patient), in place.

    The letters are sized to the image's width; a text too long for one line is wrapped onto a second.
    """
    if not text:
        return
    height, width = image.shape[:2]
    scale = max(0.5, width / 900)
    thickness = max(1, round(scale * 1.6))
    words, lines = text.split(), ['']
    for word in words:
        trial = f'{lines[-1]} {word}'.strip()
        fits = cv2.getTextSize(trial, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0] <= width - 20
        if fits or not lines[-1] or len(lines) == 2:
            lines[-1] = trial
        else:
            lines.append(word)
    line_height = round(34 * scale)
    top = height - line_height * len(lines) - round(10 * scale)
    strip = image[top:]
    strip[:] = (strip * 0.25).astype(image.dtype)
    for index, line in enumerate(lines):
        y = top + line_height * (index + 1)
        cv2.putText(image, line, (10, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 255, 255), thickness, cv2.LINE_AA)


def preview_image(bgr: np.ndarray, max_width: int) -> np.ndarray:
    """The image scaled down by the smallest whole factor that makes it at most max_width pixels wide (area
    interpolation, whose whole-factor path costs about a copy of the image); unchanged when it is no wider, or
    max_width is 0. A factor that does not divide the size drops the last rows or columns it leaves over."""
    height, width = bgr.shape[:2]
    if not max_width or width <= max_width:
        return bgr
    factor = math.ceil(width / max_width)
    rows, columns = height // factor, width // factor
    whole = bgr[:rows * factor, :columns * factor]
    return cv2.resize(whole, (columns, rows), interpolation=cv2.INTER_AREA)


def scaled_box(box: Box, scale: float, width: int, height: int) -> Box | None:
    """A box of the whole image at its place in the image scaled by `scale` (width x height); None if nothing of
    it is left."""
    if scale == 1.0:
        return box.clipped(width, height)
    x, y = round(box.x * scale), round(box.y * scale)
    x2, y2 = max(x + 1, round(box.x2 * scale)), max(y + 1, round(box.y2 * scale))
    return Box(x, y, x2 - x, y2 - y).clipped(width, height)


def paste_scaled_patch(bgr: np.ndarray, patch: np.ndarray, place: Box, scale: float) -> np.ndarray:
    """paste_patch on an image scaled by `scale` from the one the patch is of: the patch is resized to fit."""
    if scale == 1.0:
        return paste_patch(bgr, patch, place)
    if patch.shape[:2] != (place.height, place.width):
        raise ValueError(f'a {patch.shape[1]}x{patch.shape[0]} patch does not fill its place {place}')
    height, width = bgr.shape[:2]
    target = scaled_box(place, scale, width, height)
    if target is None:
        return bgr.copy()
    full = Box(round(place.x * scale), round(place.y * scale), 1, 1)
    resized = cv2.resize(patch, (max(1, round(place.x2 * scale)) - full.x, max(1, round(place.y2 * scale)) - full.y),
                         interpolation=cv2.INTER_AREA)
    dx, dy = target.x - full.x, target.y - full.y  # what clipping cut off on the left and top
    out = bgr.copy()
    target.crop(out)[:] = resized[dy:dy + target.height, dx:dx + target.width]
    return out


def annotate(bgr: np.ndarray, box: Box | None, landmarks: Landmarks | None,
             polygons: Sequence[tuple[str, str, np.ndarray]], *, scores: Sequence[RegionScore] = (),
             title: str = '', notes: Sequence[str] = (), banner: str = '', scale: float = 1.0) -> np.ndarray:
    """A copy of the image with face box, landmarks, region outlines, a score panel and a prompt banner.

    The box, landmarks and polygons are in pixels of the whole camera image; `scale` is this image's size over
    that one (a preview), and they are drawn scaled by it.
    """
    out = bgr.copy()
    if scale != 1.0:
        height, width = out.shape[:2]
        box = scaled_box(box, scale, width, height) if box is not None else None
        if landmarks is not None:
            landmarks = dataclasses.replace(landmarks, points=landmarks.points * np.float32(scale))
        polygons = [(region, side, np.asarray(polygon, dtype=np.float64) * scale) for region, side, polygon in polygons]
    draw_regions(out, polygons)
    draw_face(out, box, landmarks)
    draw_scores(out, scores, title, notes)
    draw_banner(out, banner)
    return out


def flow_heatmap(frame: Frame, motion: RegionMotion, vmax: float) -> np.ndarray:
    """The frame (or its face patch) with its thresholded flow magnitudes over the face crop (paper Fig. 4);
    unchanged without flow."""
    if motion.flow_valid and motion.magnitude is not None and motion.crop_box is not None:
        return heatmap_overlay(frame.bgr, frame.local(motion.crop_box), motion.magnitude, vmax)
    return frame.bgr


def paste_patch(bgr: np.ndarray, patch: np.ndarray, place: Box) -> np.ndarray:
    """A copy of the whole image with a patch of it (a face patch's heat map) put back at its place."""
    if patch.shape[:2] != (place.height, place.width):
        raise ValueError(f'a {patch.shape[1]}x{patch.shape[0]} patch does not fill its place {place}')
    out = bgr.copy()
    place.crop(out)[:] = patch
    return out


def region_polygons(motion: RegionMotion) -> list[tuple[str, str, np.ndarray]]:
    """(region, side, polygon) of every region side of a frame's motion, for draw_regions."""
    return [(side.region, side.side, side.polygon) for side in motion.regions]


def annotated_frame(result: FrameResult, heatmap_max: float, *, scores: Sequence[RegionScore] = (),
                    title: str = '', notes: Sequence[str] = ()) -> np.ndarray:
    """The frame with its flow heat map, face box, landmarks, regions and a score panel."""
    image = flow_heatmap(result.frame, result.motion, heatmap_max)
    return annotate(image, result.track.box, result.landmarks, region_polygons(result.motion), scores=scores,
                    title=title, notes=notes)


class FlowSum:
    """The summed thresholded flow magnitude of a sequence over the face crop (paper Fig. 4).

    Frames are added one at a time, so a long session need not be kept in
    memory. The sum restarts when the face crop changes (the face left its
    box), like the regions do.
    """

    def __init__(self) -> None:
        self.total: np.ndarray | None = None
        self.crop: Box | None = None

    def add(self, motion: RegionMotion) -> None:
        if motion.flow_valid and motion.magnitude is not None and motion.crop_box is not None:
            if self.total is None or self.crop != motion.crop_box or self.total.shape != motion.magnitude.shape:
                self.total, self.crop = np.zeros_like(motion.magnitude, dtype=np.float64), motion.crop_box
            self.total += motion.magnitude

    def image(self, reference: FrameResult, *, scores: Sequence[RegionScore] = (), title: str = 'total flow',
              notes: Sequence[str] = ()) -> np.ndarray:
        """The reference frame with the summed heat map, its face, regions and a score panel."""
        base = reference.frame.bgr
        if self.total is not None and self.crop is not None and self.total.max() > 0:
            base = heatmap_overlay(base, self.crop, self.total, float(self.total.max()))
        return annotate(base, reference.track.box, reference.landmarks, region_polygons(reference.motion),
                        scores=scores, title=title, notes=notes)


class AnnotationWriter:
    """Writes each frame's annotated image as it is scored, and at the end heatmap_total.png, the summed flow
    of the sequence with the scores (paper Fig. 4). Keeps one frame and one sum, whatever the length."""

    def __init__(self, directory: str | Path, heatmap_max: float) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.heatmap_max = heatmap_max
        self.count = 0
        self._total = FlowSum()
        self._reference: FrameResult | None = None

    def __call__(self, result: FrameResult) -> None:
        self._total.add(result.motion)
        if self._reference is None or (result.motion.regions and not self._reference.motion.regions):
            self._reference = result  # the first frame with regions, else the first frame
        cv2.imwrite(str(self.directory / f'frame_{self.count:05d}.png'),
                    annotated_frame(result, self.heatmap_max, title=f'frame {self.count}'))
        self.count += 1

    def finish(self, score: ScoreResult) -> None:
        if self._reference is not None:
            summary = self._total.image(self._reference, scores=score.regions, notes=score.quality.notes)
            cv2.imwrite(str(self.directory / 'heatmap_total.png'), summary)
