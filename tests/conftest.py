"""Shared fixtures: paths to bundled and development-only data, seeded randomness."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator: every test that draws random numbers is reproducible."""
    return np.random.default_rng(20261124)


@pytest.fixture
def shared_data() -> Path:
    """The development-only recordings in ../shared/data, or a clear skip."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"development-only data not found at {SHARED_DATA} (CI always has it)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _collect_garbage_on_main_thread():
    """Once a GUI test has switched automatic collection off (the app collects on its GUI
    thread only, see :class:`emgfb.gui.app.GuiThreadCollector`), collect after every test
    here, on the main thread, so later tests do not accumulate garbage."""
    yield
    if not gc.isenabled():
        gc.collect()
