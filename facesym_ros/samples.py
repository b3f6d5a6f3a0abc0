"""Sample face material shipped inside the package (see facesym_ros/data/README.md for origin and licences)."""

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / 'data'
SAMPLE_VIDEO = DATA_DIR / 'single_face.mp4'
"""640x360, 72 frames at 30 fps: a frontal face going neutral -> smile -> neutral."""
SAMPLE_STILL = DATA_DIR / 'astronaut.png'
"""512x512 still of a smiling frontal face."""
