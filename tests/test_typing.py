"""mypy on the library: no module that is checked may gain a type error.

The configuration (``[tool.mypy]`` in ``pyproject.toml``) lists the modules still skipped,
with their error count when checking was switched on.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_mypy_finds_no_error_in_the_library(tmp_path):
    pytest.importorskip("mypy", reason="mypy is in the test extra (scripts/install.sh)")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path), "--no-error-summary"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
