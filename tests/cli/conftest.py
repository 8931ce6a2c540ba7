"""Fixtures of the command-line tests: a small session, folder fingerprints, a read-only
folder (a read-only tmpfs when running as root, where permission bits do not bite)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

FS = 1000.0


def fingerprint(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file below ``folder`` (hidden ones included)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(folder))] = "-> " + os.readlink(p)
        elif p.is_file():
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
        elif p.is_dir():
            out[str(p.relative_to(folder)) + "/"] = "dir"
    return out


def make_session(path: Path, seconds: float = 2.0, seed: int = 3) -> Path:
    """A small complete emgfb session (6 channels, 1 kHz, two markers, one gap)."""
    from emgfb.montage import default_montage
    from emgfb.recording.writer import write_arrays
    from emgfb.records import Marker

    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    counts = (512 + 40 * rng.standard_normal((n, 6))).astype(np.uint16)
    tick = np.arange(n, dtype=np.int64)
    tick[n // 2:] += 7  # one gap of 7 lost ticks
    markers = [Marker(tick=100, kind="rep", label="rep 1 start"),
               Marker(tick=900, kind="rep", label="rep 1 end")]
    return write_arrays(path, counts, FS, default_montage(6), 2.0, 512.0, tick=tick,
                        markers=markers, meta={"subject": "P007"})


@pytest.fixture
def session(tmp_path: Path) -> Path:
    """A fresh small session in its own folder ``tmp_path/in``."""
    folder = tmp_path / "in"
    folder.mkdir()
    return make_session(folder / "s.h5")


@pytest.fixture
def readonly_dir(tmp_path: Path) -> Iterator[Path]:
    """An empty folder nobody (root included) may write to."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)],
                          capture_output=True, timeout=10, check=False)
    if done.returncode != 0:
        pytest.skip(f"running as root and cannot mount a read-only tmpfs: {done.stderr!r}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True, timeout=10, check=False)


@pytest.fixture
def full_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder on an 8 KiB tmpfs (root only; otherwise skipped)."""
    folder = tmp_path / "full"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a full file system needs a tmpfs mount (root)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(folder)],
                          capture_output=True, timeout=10, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs: {done.stderr!r}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True, timeout=10, check=False)
