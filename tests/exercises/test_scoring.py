"""Each per-rep metric on constructed signals with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emgfb.exercises import scoring


def test_pct_in_band() -> None:
    target = np.full(10, 30.0)
    tracked = np.array([30, 35, 40, 41, 20, 19, 30, np.nan, 30, 30.0])
    # |err| <= 10 for 30,35,40,20,30,30,30 -> 7 of the 9 valid samples
    assert scoring.pct_in_band(tracked, target, 10.0) == pytest.approx(700 / 9)
    assert scoring.pct_in_band(np.full(3, np.nan), np.zeros(3), 10.0) is None


def test_nrmse_and_overshoot() -> None:
    target = np.array([0.0, 10.0, 20.0, 20.0])
    tracked = target + np.array([3.0, -3.0, 3.0, 7.0])
    rms = math.sqrt((9 + 9 + 9 + 49) / 4)
    assert scoring.nrmse(tracked, target) == pytest.approx(rms / 20.0)
    assert scoring.overshoot_pct(tracked, target) == pytest.approx(35.0)
    assert scoring.overshoot_pct(target * 0.5, target) == 0.0
    assert scoring.nrmse(tracked, np.zeros(4)) is None
    assert scoring.overshoot_pct(tracked, np.zeros(4)) is None


def test_lag_finds_the_delay() -> None:
    fs = 1000.0
    # a repetition: rest, 2 s ramp, 3 s hold, 2 s ramp down, rest (0 at both ends)
    target = np.concatenate([np.zeros(500), np.linspace(0, 30, 2000), np.full(3000, 30.0),
                             np.linspace(30, 0, 2000), np.zeros(500)])
    delay = 180
    tracked = np.concatenate([np.zeros(delay), target[:-delay]])
    assert scoring.lag_ms(tracked, target, fs) == pytest.approx(180.0)
    early = np.concatenate([target[50:], np.zeros(50)])
    assert scoring.lag_ms(early, target, fs) == pytest.approx(-50.0)
    assert scoring.lag_ms(np.ones(100), target[:100], fs) is None


def test_pct_below_ceiling() -> None:
    s = np.array([[1.0, 1.0], [5.0, 1.0], [1.0, 5.0], [1.0, 1.0]])
    assert scoring.pct_below_ceiling(s, [2.0, 2.0]) == 50.0
    assert scoring.pct_below_ceiling(s[:, 0], [2.0]) == 75.0
    assert scoring.pct_below_ceiling(np.zeros((4, 0)), []) is None


def test_symmetry_and_oral_ocular() -> None:
    # rest 3 µV (mean 3, SD 0): activity above rest in power is sqrt(env² − 9)
    a, h = np.hypot(10.0, 3.0), np.hypot(40.0, 3.0)
    ratio, ai, why = scoring.symmetry(np.full(5, a), np.full(5, h), (3.0, 3.0), (0.0, 0.0))
    assert ratio == pytest.approx(0.25) and ai == pytest.approx(0.6) and why is None
    assert scoring.symmetry(np.full(3, 2.0), np.full(3, 2.0), (2.0, 2.0), (0.1, 0.1)) == (
        None, None, "both sides at rest")
    assert scoring.oral_ocular(np.full(4, 12.0), 42.0, 2.0) == pytest.approx(0.25)
    assert scoring.oral_ocular(np.full(4, 12.0), 2.0, 2.0) is None


def test_score_rep_has_every_metric() -> None:
    n = 100
    out = scoring.score_rep(tracked_pct=np.full(n, 30.0), target_pct=np.full(n, 30.0),
                            band_pct=10, fs=1000, affected_uv=np.full(n, 5.0),
                            healthy_uv=np.full(n, 5.0), rest_mean_uv=(1.0, 1.0),
                            rest_sd_uv=(0.1, 0.1))
    assert set(out) == set(scoring.METRICS) | {"pipeline_delay_ms", "undefined"}
    assert out["undefined"] == {}
    assert out["pct_in_band"] == 100 and out["symmetry_ratio"] == 1 and out["asymmetry_index"] == 0
    assert out["pct_below_ceiling"] is None and out["oral_ocular_index"] is None
