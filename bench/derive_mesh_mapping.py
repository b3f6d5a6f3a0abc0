"""Derive the Face Mesh 468 -> iBUG 68 mapping (MESH_TO_IBUG68) from dlib's points on the bundled clip.

    python -m bench.derive_mesh_mapping

Fitting data: the even frames of the bundled clip at 1x and the same frames
flipped left-right (the mesh of the flipped face, flipped back, against
dlib's points of the original relabelled as their mirror points), so the
mapping does not prefer one side of the face. For each iBUG point it tries
one mesh vertex or a blend (1 - t) a + t b, t in 0.1 .. 0.9:

- jaw (0-16): vertices of the mesh's face-oval contour, a blend only of two
  neighbours on it (dlib's jaw is a contour too; elsewhere on the mesh a jaw
  point would leave the outline), fitted to dlib's image-right jaw only (on
  the clip dlib's image-left jaw lies beside the face, on the wall) and its
  mirror image;
- points on the midline (chin, nose bridge and tip, the lips' middles):
  midline vertices, so the face's axis (27 to 8) has no side;
- every other point: among the 30 vertices closest to dlib's point on
  average, blends of two vertices at most 0.25 inter-ocular distances apart;

and keeps the one with the smallest mean distance to dlib's point (a blend
must beat the best single vertex by 0.02% of the inter-ocular distance).
It prints the table to paste into mediapipe_backend.py and the per-group
agreement on the fitting frames and on held-out ones (the odd frames, the
still, and both at 2x). Prints figures; asserts nothing.
"""

from __future__ import annotations

import numpy as np

from facesym_ros.config.files import SAMPLE_STILL, SAMPLE_VIDEO
from facesym_ros.core.landmarks.agreement import MIRROR68, group_errors, interocular, mirrored, sample_faces, unflip
from facesym_ros.core.landmarks.dlib_backend import DlibLandmarkBackend
from facesym_ros.core.landmarks.mediapipe_backend import MediaPipeLandmarkBackend, ibug68_from_mesh

FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
             176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
"""The mesh's face-oval contour, in order around the face (MediaPipe's FACEMESH_FACE_OVAL)."""
MIDLINE = (10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 164, 0, 11, 12, 13, 14, 15, 16, 17, 18, 200, 199,
           175, 152)
"""The mesh's vertices on the facial midline, forehead to chin (each is its own mirror image: the mesh of the
flipped face puts it where it was)."""
SELF_MIRRORED = (8, 27, 28, 29, 30, 33, 51, 57, 62, 66)
"""iBUG points on the midline (their own mirror images): the chin, the nose bridge and tip, the lips' middles."""
IMAGE_LEFT_JAW, IMAGE_RIGHT_JAW = list(range(0, 8)), list(range(9, 17))
"""dlib's jaw on the clip follows the face's outline on the image right but lies out on the wall beside the
cheek on the image left (docs/landmarks.md); the jaw is fitted to the image-right half and its mirror image."""
CANDIDATES = 30
MAX_BLEND_SPAN = 0.25
"""Largest mean distance between the two blended vertices, in inter-ocular distances."""
WEIGHTS = np.round(np.arange(0.1, 0.95, 0.1), 1)
MIN_GAIN = 2e-4


def collect(samples, dlib: DlibLandmarkBackend, mesh: MediaPipeLandmarkBackend, with_mirror: bool):
    """dlib's points (N, 68, 2) and the upright mesh (N, 468, 2); with_mirror adds the flipped faces."""
    reference, vertices = [], []
    for sample in samples:
        reference.append(dlib.predict(sample.patch, sample.box).points)
        vertices.append(mesh.mesh(sample.patch, sample.box)[0][:, :2])
    if with_mirror:
        for sample, points in zip(samples, list(reference), strict=True):
            flipped = mirrored(sample)
            vertices.append(unflip(mesh.mesh(flipped.patch, flipped.box)[0][:, :2], sample.frame.width))
            reference.append(points[MIRROR68])
    return np.array(reference, dtype=np.float64), np.array(vertices, dtype=np.float64)


def fit(reference: np.ndarray, vertices: np.ndarray, use: np.ndarray) -> list[tuple[int, int, float]]:
    """The mapping; use[n, i] says whether sample n counts for point i."""
    scale = interocular(reference)
    span = (np.linalg.norm(vertices[:, :, None] - vertices[:, None], axis=3) / scale[:, None, None]).mean(0)
    oval_neighbours = {frozenset((FACE_OVAL[k], FACE_OVAL[(k + 1) % len(FACE_OVAL)])) for k in range(len(FACE_OVAL))}
    mapping = []
    for point in range(68):
        rows = use[:, point]
        target, points, size = reference[rows, point], vertices[rows], scale[rows]
        single = (np.linalg.norm(points - target[:, None], axis=2) / size[:, None]).mean(0)
        if point in SELF_MIRRORED:
            pool = list(MIDLINE)
        elif point < 17:
            pool = list(FACE_OVAL)
        else:
            pool = [int(v) for v in np.argsort(single)[:CANDIDATES]]
        first = min(pool, key=lambda v: single[v])
        best = (float(single[first]), first, first, 0.0)
        candidates = [(a, b, WEIGHTS) for a in pool for b in pool if a < b and (
            frozenset((a, b)) in oval_neighbours if point < 17 else span[a, b] <= MAX_BLEND_SPAN)]
        for a, b, weights in candidates:
            for t in weights:
                blend = (1 - t) * points[:, a] + t * points[:, b]
                error = float((np.linalg.norm(blend - target, axis=1) / size).mean())
                if error < best[0] - MIN_GAIN:
                    best = (error, a, b, float(t))
        mapping.append(best[1:])
    return mapping


TABLE_GROUPS = (('jaw, image left to right (0-16)', 0, 17), ('brows (17-26)', 17, 27),
                ('nose: bridge 27-30, base 31-35', 27, 36),
                ('eyes: image-left eye 36-41, image-right eye 42-47', 36, 48),
                ('mouth: outer lip 48-59, inner lip 60-67', 48, 68))


def format_table(mapping: list[tuple[int, int, float]]) -> str:
    """The mapping as mediapipe_backend.py spells MESH_TO_IBUG68."""
    lines = ['MESH_TO_IBUG68: tuple[tuple[int, int, float], ...] = (']
    for title, start, stop in TABLE_GROUPS:
        lines.append(f'    # {title}')
        line = '   '
        for a, b, t in mapping[start:stop]:
            entry = f' ({a}, {b}, {t}),'
            if len(line) + len(entry) > 118:
                lines.append(line)
                line = '   '
            line += entry
        lines.append(line)
    return '\n'.join([*lines, ')'])


def main() -> None:
    dlib, mesh = DlibLandmarkBackend(), MediaPipeLandmarkBackend()
    clip = sample_faces(SAMPLE_VIDEO)
    reference, vertices = collect(clip[0::2], dlib, mesh, with_mirror=True)
    real = np.arange(len(reference)) < len(reference) // 2  # then their mirror images
    use = np.ones((len(reference), 68), dtype=bool)
    use[:, IMAGE_LEFT_JAW] = ~real[:, None]  # dlib's image-right jaw, mirrored
    use[:, IMAGE_RIGHT_JAW] = real[:, None]
    mapping = fit(reference, vertices, use)
    print(format_table(mapping))

    first = np.array([a for a, _, _ in mapping])
    second = np.array([b for _, b, _ in mapping])
    weight = np.array([[t] for _, _, t in mapping])

    def mapped(v: np.ndarray) -> np.ndarray:
        return (1 - weight) * v[:, first] + weight * v[:, second]

    shipped = ibug68_from_mesh(vertices[:1])
    print(f'the shipped table gives the same points as this fit: {np.allclose(shipped, mapped(vertices[:1]))}')
    sets = {'fitting frames (clip 1x even, and mirrored)': (reference, vertices),
            'held out: clip 1x odd frames': collect(clip[1::2], dlib, mesh, False),
            'held out: still 1x': collect(sample_faces(SAMPLE_STILL), dlib, mesh, False),
            'held out: clip 2x odd frames': collect(sample_faces(SAMPLE_VIDEO, 2)[1::2], dlib, mesh, False),
            'held out: still 2x': collect(sample_faces(SAMPLE_STILL, 2), dlib, mesh, False)}
    print('\nmean distance to dlib, % of the inter-ocular distance (upright pass, no roll correction)')
    for name, (ref, vert) in sets.items():
        errors = group_errors(mapped(vert), ref)
        print(f'  {name:46s} ' + '  '.join(f'{group} {value:5.2f}' for group, value in errors.items()))


if __name__ == '__main__':
    main()
