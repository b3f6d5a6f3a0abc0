"""The face map: a face picture with its six region sides tinted by their SS, as inline SVG.

One colour scale for every map and its legend: cividis, which reads the same
for the common kinds of colour blindness and in grey print. Every tint has
its number written beside it; a region whose score means nothing (a flag
voids it, core/flags.py) is grey and hatched, with its short reason, never a
colour. The side that moved less is outlined and labelled. Pictures are
shown as the camera saw them, so the patient's right is on the image's left
unless the image is mirrored: the map says which side is which.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from facesym_ros.clinic.task_result import FacePicture

SCALE = 'cividis'
TINT_OPACITY = 0.6
VOID_GREY = '#9a9a9a'


@cache
def _table() -> np.ndarray:
    from matplotlib import colormaps

    return np.round(colormaps[SCALE](np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(int)


def scale_colour(value: float) -> str:
    """The scale's colour of an SS in [0, 1], as #rrggbb."""
    index = round(min(1.0, max(0.0, value)) * 255)
    return '#{:02x}{:02x}{:02x}'.format(*_table()[index])


def scale_value(rgb: Sequence[int]) -> float:
    """The SS whose scale colour is nearest to `rgb` (reads a tint back, to within 1/255)."""
    distance = ((_table() - np.asarray(rgb[:3], dtype=int)) ** 2).sum(axis=1)
    return float(np.argmin(distance)) / 255.0


@dataclass(frozen=True)
class RegionTint:
    """What the map shows of one region: its SS (NaN: none) or the reason it is void, and the weaker side."""

    region: str
    value: float
    void: str = ''  # why the number means nothing; the region is greyed
    weaker: str | None = None  # 'left' | 'right' (the patient's), outlined

    @property
    def shown(self) -> bool:
        return not self.void and not math.isnan(self.value)


def _esc(value: object) -> str:
    return html.escape(str(value))


def image_png(bgr: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode('.png', bgr)
    if not ok:
        raise ValueError('cannot encode an image as PNG')
    return encoded.tobytes()


def png_data(png: bytes) -> str:
    """A PNG as a data: URI, so the page needs no other file."""
    return 'data:image/png;base64,' + base64.b64encode(png).decode('ascii')


def _points(polygon: np.ndarray) -> str:
    return ' '.join(f'{x:.1f},{y:.1f}' for x, y in np.asarray(polygon, dtype=float))


def face_map_svg(picture: FacePicture, tints: Mapping[str, RegionTint], *, width: int = 360,
                 element_id: str = 'face-map', title: str = '') -> str:
    """The picture with each region side tinted by its region's SS, numbers beside, the weaker side marked."""
    height_px, width_px = picture.image.shape[:2]
    font = max(9.0, width_px / 24)
    shapes, labels = [], []
    image_x = {side: [] for side in ('left', 'right')}
    for region, side, points in picture.polygons:
        polygon = np.asarray(points, dtype=float)
        if len(polygon) < 3 or region not in tints:
            continue
        image_x[side].append(float(polygon[:, 0].mean()))
        tint = tints[region]
        weaker = tint.shown and tint.weaker == side
        attributes = (f'class="region{" weaker" if weaker else ""}{"" if tint.shown else " void"}" '
                      f'data-region="{_esc(region)}" data-side="{_esc(side)}" '
                      f'data-ss="{"" if not tint.shown else f"{tint.value:.3f}"}"')
        fill = scale_colour(tint.value) if tint.shown else f'url(#{element_id}-hatch)'
        stroke = (f'stroke="#000" stroke-width="{font / 4:.1f}" stroke-dasharray="{font / 2:.1f} {font / 4:.1f}"'
                  if weaker else f'stroke="#fff" stroke-width="{font / 12:.1f}"')
        what = (f'{region}, patient\'s {side}: SS {tint.value:.2f}' + (' (moved less)' if weaker else '')
                if tint.shown else f'{region}, patient\'s {side}: no score ({tint.void or "not computable"})')
        shapes.append(f'<polygon points="{_points(polygon)}" fill="{fill}" fill-opacity="{TINT_OPACITY}" '
                      f'{stroke} {attributes}><title>{_esc(what)}</title></polygon>')
        cx, cy = polygon[:, 0].mean(), polygon[:, 1].mean()
        text = f'{tint.value:.2f}' if tint.shown else 'n/a'
        lines = [text, 'weaker'] if weaker else [text]
        for number, line in enumerate(lines):
            labels.append(f'<text x="{cx:.1f}" y="{cy + (number - (len(lines) - 1) / 2) * font * 1.05:.1f}" '
                          f'font-size="{font if number == 0 else font * 0.8:.1f}" text-anchor="middle" '
                          f'dominant-baseline="middle" class="region-label" paint-order="stroke" stroke="#fff" '
                          f'stroke-width="{font / 4:.1f}" fill="#000">{_esc(line)}</text>')
    sides = ''
    if image_x['left'] and image_x['right']:
        left_on_image_right = np.mean(image_x['left']) > np.mean(image_x['right'])
        first, second = ("patient's right", "patient's left") if left_on_image_right else \
            ("patient's left", "patient's right")
        sides = (f'<text x="{font * 0.4:.1f}" y="{font * 1.2:.1f}" font-size="{font:.1f}" class="side-label" '
                 f'paint-order="stroke" stroke="#fff" stroke-width="{font / 4:.1f}">{first}</text>'
                 f'<text x="{width_px - font * 0.4:.1f}" y="{font * 1.2:.1f}" font-size="{font:.1f}" '
                 f'text-anchor="end" class="side-label" paint-order="stroke" stroke="#fff" '
                 f'stroke-width="{font / 4:.1f}">{second}</text>')
    height = round(width * height_px / width_px)
    return (f'<svg id="{_esc(element_id)}" class="face-map" role="img" '
            f'viewBox="0 0 {width_px} {height_px}" width="{width}" height="{height}">'
            f'<title>{_esc(title or "face map: regions tinted by their symmetry score")}</title>'
            f'<defs><pattern id="{_esc(element_id)}-hatch" patternUnits="userSpaceOnUse" width="8" height="8" '
            'patternTransform="rotate(45)"><rect width="8" height="8" fill="#ddd"/>'
            f'<line x1="0" y1="0" x2="0" y2="8" stroke="{VOID_GREY}" stroke-width="4"/></pattern></defs>'
            f'<image href="{png_data(image_png(picture.image))}" x="0" y="0" width="{width_px}" height="{height_px}"/>'
            + ''.join(shapes) + ''.join(labels) + sides + '</svg>')


def legend_svg(width: int = 300, steps: Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)) -> str:
    """The colour scale with its numbers, and the grey of a void score."""
    bar_height, top, band = 14, 4, 64
    stops = ''.join(f'<stop offset="{v:.2f}" stop-color="{scale_colour(v)}"/>' for v in np.linspace(0, 1, 11))
    ticks = ''.join(f'<line x1="{v * width:.1f}" y1="{top}" x2="{v * width:.1f}" y2="{top + bar_height + 3}" '
                    f'stroke="#000"/><text x="{v * width:.1f}" y="{top + bar_height + 14}" font-size="10" '
                    f'text-anchor="{"start" if v == 0 else "end" if v == 1 else "middle"}">{v:.1f}</text>'
                    for v in steps)
    total = width + band + 8
    return (f'<svg id="face-map-legend" class="legend" role="img" '
            f'viewBox="0 0 {total} {top + bar_height + 30}" width="{total}" height="{top + bar_height + 30}">'
            '<title>colour scale: SS from 0 (one side moves, the other does not) to 1 (both sides alike); '
            'grey hatched: no score</title>'
            f'<defs><linearGradient id="scale-gradient">{stops}</linearGradient>'
            '<pattern id="legend-hatch" patternUnits="userSpaceOnUse" width="8" height="8" '
            'patternTransform="rotate(45)"><rect width="8" height="8" fill="#ddd"/>'
            f'<line x1="0" y1="0" x2="0" y2="8" stroke="{VOID_GREY}" stroke-width="4"/></pattern></defs>'
            f'<rect x="0" y="{top}" width="{width}" height="{bar_height}" fill="url(#scale-gradient)" '
            f'stroke="#000" stroke-width="0.5"/>{ticks}'
            f'<rect x="{width + 8}" y="{top}" width="{bar_height * 2}" height="{bar_height}" fill="url(#legend-hatch)"'
            f' stroke="#000" stroke-width="0.5"/><text x="{width + 8}" y="{top + bar_height + 14}" font-size="10">'
            'no score</text></svg>')
