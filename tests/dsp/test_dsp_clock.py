"""The board's true sample rate from host receive times: robust to late chunks."""

from __future__ import annotations

import numpy as np
import pytest

from emgfb.dsp.clock import SampleRateEstimator


def arrivals(rng, fs_true: float, seconds: float, chunk: int = 20, late_ms: float = 16.0):
    """(tick, host_time) of chunks from a board at ``fs_true``: USB-like delays (a few ms
    floor, exponential tail up to tens of ms, now and then a 200 ms stall)."""
    n_chunks = int(seconds * fs_true / chunk)
    tick = (np.arange(1, n_chunks + 1) * chunk) - 1
    t = 1000.0 + tick / fs_true
    delay = 0.002 + rng.exponential(late_ms / 1000.0, n_chunks)
    delay[rng.random(n_chunks) < 0.01] += 0.2
    return tick, t + delay


@pytest.mark.parametrize("ppm", [-5000.0, -800.0, 0.0, 3000.0])
def test_rate_is_measured_to_tens_of_ppm_despite_late_chunks(rng, ppm) -> None:
    fs = 1000.0
    est = SampleRateEstimator(fs)
    tick, t = arrivals(rng, fs * (1 + ppm * 1e-6), 120.0)
    for k, h in zip(tick, t, strict=True):
        est.observe(int(k), float(h))
    e = est.estimate
    assert e is not None and abs(e.ppm - ppm) < 30.0
    assert e.uncertainty_ppm < 30.0 and e.span_s > 100.0
    assert e.line_hz(50.0) == pytest.approx(50.0 / (1 + ppm * 1e-6), abs=0.002)


def test_nothing_before_enough_data_and_a_restart_forgets(rng) -> None:
    est = SampleRateEstimator(1000.0, min_span_s=10.0)
    tick, t = arrivals(rng, 1003.0, 5.0)
    for k, h in zip(tick, t, strict=True):
        est.observe(int(k), float(h))
    assert est.estimate is None
    tick, t = arrivals(rng, 1003.0, 12.0)
    for k, h in zip(tick, t, strict=True):
        est.observe(int(k), float(h))
    first = est.estimate
    assert first is not None and first.span_s > 10.0
    tick, t = arrivals(rng, 1003.0, 8.0)
    for k, h in zip(tick, t, strict=True):
        est.observe(int(k), float(h) + 20.0)
    assert est.estimate is None  # ticks went back: a new stream, not yet 10 s of it
