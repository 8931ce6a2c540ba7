#!/usr/bin/env bash
# Install everything emgfb needs on Debian (12+) as root: Debian packages for the AVR
# firmware build and simulation, Qt's runtime libraries and Xvfb, then a virtual
# environment in .venv with emgfb and its test tools. Safe to run again: it installs only
# what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(
  # firmware: compiler, C library, Arduino core, simulator (../shared/FIRMWARE.md)
  make gcc g++ libc6-dev gcc-avr avr-libc arduino-core-avr simavr libsimavr-dev libsimavrparts1
  # Qt (PyQt5 wheels) runtime libraries, offscreen and under Xvfb
  libgl1 libegl1 libglib2.0-0 libfontconfig1 libdbus-1-3 libxkbcommon0 libxkbcommon-x11-0
  libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0
  libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 xvfb xauth
  # an independent HDF5 1.10 reader (h5dump) that tests open every session dataset with
  hdf5-tools
)

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "install.sh: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    # Debian's python3 ships venv separately
    rm -rf .venv
    ${SUDO:-} apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    "$PY" -m venv .venv
  fi
fi
# Python packages: only what is missing. check_install.py answers from installed metadata,
# offline; pip (and so the package index) is asked only when something is missing or
# pyproject.toml changed. The build requirements (setuptools>=77) go into pip's isolated
# build environment, not into .venv: setuptools 81+ has no pkg_resources, which brainflow
# still imports.
if missing=$(.venv/bin/python scripts/check_install.py); then
  echo "install.sh: Python packages complete, nothing to install"
else
  echo "install.sh: installing Python packages; missing or stale:"
  sed 's/^/  /' <<<"$missing"
  .venv/bin/python -m pip install -q -e ".[test]"
  .venv/bin/python scripts/check_install.py --stamp
  if ! missing=$(.venv/bin/python scripts/check_install.py); then
    echo "install.sh: still missing after pip install:" >&2
    sed 's/^/  /' <<<"$missing" >&2
    exit 1
  fi
fi
# A second reader for the file-format tests: h5py 3.12, whose wheels bundle HDF5 1.14 (a
# major version other than ours), so CI proves that another HDF5 reads every dataset
# (tests/recording/test_writer.py). Made once; nothing is asked of the network after that.
if ! .venv-h5py114/bin/python -c "import h5py; assert h5py.version.hdf5_version.startswith('1.14.')" 2>/dev/null; then
  echo "install.sh: a second h5py (on HDF5 1.14) in .venv-h5py114 for the file-format tests"
  rm -rf .venv-h5py114
  "$PY" -m venv .venv-h5py114
  .venv-h5py114/bin/python -m pip install -q "h5py==3.12.*"
fi
# The mains canceller's kernel is compiled by numba when emgfb.dsp is first imported, ~3 s,
# and cached next to the module: do it here, not in the first command a user runs.
.venv/bin/python -c "import emgfb.dsp.mains"
echo "install.sh: ready ($(.venv/bin/python --version), emgfb in .venv)"
