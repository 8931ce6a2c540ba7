"""Helpers shared by the DSP tests: synthetic facial EMG with mains hum."""

from __future__ import annotations

import numpy as np
import pytest


def synthetic_emg(rng: np.random.Generator, fs: float, seconds: float, n_channels: int = 2,
                  hum_uv: float = 30.0, rest_uv: float = 2.0, bursts=((1.0, 2.0, 40.0),)
                  ) -> np.ndarray:
    """White-noise EMG (rest level plus bursts ``(start_s, stop_s, rms_uv)``), 50 Hz hum,
    150 Hz harmonic and a DC offset, in µV, shape (n, n_channels)."""
    n = int(round(fs * seconds))
    t = np.arange(n) / fs
    level = np.full(n, rest_uv)
    for start, stop, rms in bursts:
        level[(t >= start) & (t < stop)] = rms
    x = rng.standard_normal((n, n_channels)) * level[:, None]
    hum = hum_uv * np.sin(2 * np.pi * 50.0 * t + 0.3) + 0.2 * hum_uv * np.sin(2 * np.pi * 150 * t)
    return x + hum[:, None] + 250.0


@pytest.fixture
def emg(rng: np.random.Generator) -> np.ndarray:
    """3 s of 2-channel synthetic EMG at 2 kHz (burst 1-2 s)."""
    return synthetic_emg(rng, 2000.0, 3.0)


@pytest.fixture
def make_emg():
    """The :func:`synthetic_emg` generator, for tests that need other shapes."""
    return synthetic_emg
