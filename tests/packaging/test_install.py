"""``scripts/install.sh`` installs only what is missing, and needs no network when nothing is.

An offline clinic laptop must be able to run ``install.sh`` (and so ``run.sh``) again: the
first test runs it with the package index switched off and every proxy pointing at a closed
port, and with ``apt-get`` / ``sudo`` replaced by scripts that record being called.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECK = REPO / "scripts" / "check_install.py"


def _offline_env(fake_bin: Path) -> dict[str, str]:
    calls = fake_bin / "calls"
    for tool in ("apt-get", "sudo", "curl", "wget"):
        script = fake_bin / tool
        script.write_text(f"#!/bin/sh\necho {tool} \"$@\" >> {calls}\nexit 1\n")
        script.chmod(0o755)
    env = dict(os.environ)
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS="", PIP_RETRIES="0", PIP_TIMEOUT="2",
               http_proxy=closed, https_proxy=closed, HTTP_PROXY=closed, HTTPS_PROXY=closed,
               PATH=f"{fake_bin}{os.pathsep}{env.get('PATH', '')}")
    return env


@pytest.mark.slow
def test_second_run_is_offline_and_installs_nothing(tmp_path):
    if not (REPO / ".venv" / "bin" / "python").is_file():
        pytest.skip("no .venv in this checkout (run scripts/install.sh once)")
    proc = subprocess.run(["bash", str(REPO / "scripts" / "install.sh")], cwd=tmp_path,
                          env=_offline_env(tmp_path), capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "install.sh: Python packages complete, nothing to install" in proc.stdout
    assert not (tmp_path / "calls").exists(), (tmp_path / "calls").read_text()


def _copy_checker(tmp_path: Path, pyproject: str) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(CHECK, tmp_path / "scripts" / "check_install.py")
    (tmp_path / "pyproject.toml").write_text(pyproject)
    return tmp_path / "scripts" / "check_install.py"


def test_check_names_every_missing_or_stale_requirement(tmp_path):
    pyproject = (REPO / "pyproject.toml").read_text()
    pyproject = pyproject.replace(
        'dependencies = [\n',
        'dependencies = [\n    "no-such-package-emgfb>=1",\n    "numpy>=999",\n'
        '    "pywin32>=1; sys_platform == \'win32\'",\n', 1)
    check = _copy_checker(tmp_path, pyproject)
    proc = subprocess.run([sys.executable, str(check)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    numpy = next(line for line in lines if line.startswith("numpy>=999"))
    assert lines[:2] == ["no-such-package-emgfb>=1: not installed", numpy]
    assert numpy.endswith(" installed")  # names the version there is
    assert not [line for line in lines if "pywin32" in line]  # marker false here: not needed
    assert f"emgfb: not installed editable from {tmp_path}" in lines
    assert "emgfb: pyproject.toml changed since the last install" in lines
