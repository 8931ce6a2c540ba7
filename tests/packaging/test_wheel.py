"""The package as a packager builds it: sdist and wheel, installed outside the source tree.

``python -m build`` makes the sdist from this checkout and the wheel *from that sdist*, so a
file missing from the sdist is missing from the wheel too. The wheel goes into a fresh
virtual environment in a temporary folder (its dependencies resolved by pip as for any
user), and the smoke runs there with the working directory outside the tree: boards,
stream, a headless guided session, its report, a recording and the live window's
screenshot. Before configs were package data, every one of these failed from the wheel
("no montages config named 'face6'") or, for ``boards``, listed nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import h5py
import pytest

REPO = Path(__file__).resolve().parents[2]

# building, a ~600 MB venv from the pip cache and five commands: about 2 min, more under load
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

#: Network failures of pip: outside CI (an offline laptop) the test skips on these.
_OFFLINE = ("No matching distribution found", "Could not find a version",
            "NewConnectionError", "Temporary failure in name resolution")


def _run(cmd: list[str | Path], cwd: Path, env: dict[str, str], timeout: float = 300
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _skip_if_offline(proc: subprocess.CompletedProcess[str]) -> None:
    if proc.returncode and not os.environ.get("CI") and any(
            s in proc.stdout + proc.stderr for s in _OFFLINE):
        pytest.skip("no package index reachable (CI always has one)")


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (
        f"{' '.join(proc.args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The sdist and the wheel built from it, as a packager builds them (pip's isolated
    build environment gets setuptools from the package index or pip's cache)."""
    out = tmp_path_factory.mktemp("dist")
    proc = _run([sys.executable, "-m", "build", "--outdir", out, REPO], cwd=REPO,
                env=dict(os.environ), timeout=600)
    _skip_if_offline(proc)
    _ok(proc)
    return out


def test_sdist_carries_firmware_docs_data_and_configs(dist):
    (sdist,) = dist.glob("emgfb-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for needed in ("firmware/emgfb/emgfb.ino", "firmware/Makefile", "firmware/PROTOCOL.md",
                   "docs/file-format.md", "data/README.md", "LICENSE", "scripts/install.sh",
                   "emgfb/configs/boards/uno.toml", "emgfb/configs/protocols/demo.toml",
                   "emgfb/py.typed", "tests/conftest.py"):
        assert needed in names, f"{needed} missing from {sdist.name}"
    assert not [n for n in names if "__pycache__" in n or n.startswith("firmware/build/")]


def test_wheel_carries_configs_and_types_but_no_tests(dist):
    (wheel,) = dist.glob("emgfb-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind, name in [("boards", "uno"), ("boards", "mega"), ("frontends", "bioamp"),
                       ("montages", "face6"), ("protocols", "demo"), ("dsp", "default")]:
        assert f"emgfb/configs/{kind}/{name}.toml" in names
    assert "emgfb/py.typed" in names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/"))]
    meta = zipfile.ZipFile(wheel).read("emgfb-0.1.0.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in meta
    assert "Classifier: Typing :: Typed" in meta


def test_installed_wheel_runs_outside_the_tree(dist, tmp_path):
    (wheel,) = dist.glob("emgfb-*.whl")
    venv, work = tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(REPO)))
    env["QT_QPA_PLATFORM"] = "offscreen"
    try:
        _ok(_run([sys.executable, "-m", "venv", venv], cwd=work, env=env))
        py, emgfb = venv / "bin" / "python", venv / "bin" / "emgfb"
        pip = _run([py, "-m", "pip", "install", "-q", wheel], cwd=work, env=env, timeout=900)
        _skip_if_offline(pip)
        _ok(pip)

        where = _ok(_run([py, "-c", "import emgfb; print(emgfb.__file__)"], cwd=work, env=env))
        assert Path(where.strip()).is_relative_to(venv), where

        listing = _ok(_run([emgfb, "boards"], cwd=work, env=env))
        assert {"uno", "nano", "mega", "bioamp", "myoware2-raw"} <= set(listing.split())

        stats = json.loads(_ok(_run(
            [emgfb, "stream", "--source", "sim://?speed=0&seed=1", "--seconds", "1", "--json"],
            cwd=work, env=env)))
        assert stats["frames"] >= 1000 and stats["lost_ticks"] == 0

        _ok(_run([emgfb, "session", "--protocol", "demo", "--headless", "-o", "s.h5"],
                 cwd=work, env=env))
        with h5py.File(work / "s.h5", "r") as f:
            assert f["raw/counts"].shape[0] > 100_000
        _ok(_run([emgfb, "report", "s.h5", "-o", "report.html", "-q"], cwd=work, env=env))
        assert "<html" in (work / "report.html").read_text(encoding="utf-8")[:500].lower()

        _ok(_run([emgfb, "record", "--source", "sim://?speed=0&seed=2", "--seconds", "2",
                  "-o", "r.h5"], cwd=work, env=env))
        with h5py.File(work / "r.h5", "r") as f:
            assert f["raw/counts"].shape[0] == 2000

        _ok(_run([emgfb, "live", "--screenshot", "live.png", "--after", "1"],
                 cwd=work, env=env))
        assert (work / "live.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        shutil.rmtree(venv, ignore_errors=True)  # ~600 MB; pytest keeps tmp dirs around
