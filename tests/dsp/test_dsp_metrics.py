"""Calibration, normalisation and clinical metrics on envelopes."""

from __future__ import annotations

import numpy as np
import pytest

from emgfb.dsp import (
    Baseline,
    asymmetry_index,
    baseline_subtracted,
    cocon,
    detect_onsets,
    is_symmetric,
    oral_ocular_index,
    percent_of_healthy,
    percent_of_reference,
    reference_contraction,
    rest_baseline,
    symmetry_ratio,
    tkeo,
    tkeo_activation,
)
from emgfb.dsp.settings import OnsetConfig
from emgfb.errors import CalibrationError
from emgfb.montage import default_montage

FS = 1000.0


def test_rest_baseline_ignores_lost_samples_and_checks_duration(rng) -> None:
    env = np.abs(rng.normal(2.0, 0.5, (12_000, 2)))
    env[100:200] = np.nan
    base = rest_baseline(env, FS, min_duration_s=10.0)
    assert np.allclose(base.mean, np.nanmean(env, 0)) and base.n_samples.tolist() == [11900] * 2
    assert np.allclose(base.threshold(3), base.mean + 3 * base.sd)
    with pytest.raises(CalibrationError, match="channel 0 has 4.90 s of valid signal; expected "
                                               "at least 10.00 s"):
        rest_baseline(env[:5000], FS, min_duration_s=10.0)


def test_reference_contraction_is_peak_500ms_rms() -> None:
    env = np.ones((4000, 2))
    env[1000:1600, 0] = 10.0  # 600 ms at 10 µV: a full 500 ms window fits
    env[1000:1250, 1] = 10.0  # 250 ms: half of the window
    ref = reference_contraction(env, FS)
    assert ref[0] == pytest.approx(10.0)
    assert ref[1] == pytest.approx(np.sqrt((250 * 100 + 250) / 500))
    with pytest.raises(CalibrationError, match="no complete 0.5 s window"):
        reference_contraction(env[:300], FS)


def test_normalisations() -> None:
    # rest level (power) = hypot(mean, sd) = 3, 3, 1: activity is sqrt(env² − level²)
    base = Baseline(np.array([3.0, 3.0, 1.0]), np.array([0.0, 0.0, 0.0]), np.array([1, 1, 1]))
    ref = np.hypot([10.0, 20.0, 10.0], base.level)
    env = np.hypot([[5.0, 10.0, 5.0]], base.level)
    env = np.vstack([env, [1.0, 2.0, 1.0]])
    assert np.allclose(baseline_subtracted(env, base), [[5, 10, 5], [0, 0, 0]])
    assert np.allclose(percent_of_reference(env, ref, base)[0], [50, 50, 50])
    pairs = [("frontalis", 0, 1)]  # channel 0 affected, channel 1 its healthy partner
    pct = percent_of_healthy(env, ref, pairs, base)
    assert np.allclose(pct[0], [25.0, 50.0, 50.0])
    with pytest.raises(CalibrationError, match="reference of channel 2 = 1 uV"):
        percent_of_reference(env, np.array([12.0, 22.0, 1.0]), base)


def test_percent_of_healthy_with_a_real_montage() -> None:
    m = default_montage(6)
    ref = np.arange(1.0, 7.0) * 10
    pct = percent_of_healthy(np.tile(ref, (2, 1)), ref, m.pairs())
    for _, affected, healthy in m.pairs():
        assert np.allclose(pct[:, affected], 100 * ref[affected] / ref[healthy])
        assert np.allclose(pct[:, healthy], 100.0)


def test_symmetry_and_cocontraction() -> None:
    assert symmetry_ratio(5.0, 10.0) == 0.5
    assert asymmetry_index(5.0, 15.0) == pytest.approx(0.5)
    assert np.isnan(symmetry_ratio(1.0, 0.0)) and np.isnan(asymmetry_index(0.0, 0.0))
    assert is_symmetric(asymmetry_index(9.5, 10.0)) and not is_symmetric(0.2)
    a = np.array([1.0, 2.0, 3.0, np.nan])
    assert cocon(a, a) == pytest.approx(100.0)
    assert cocon(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == 0.0
    assert cocon(np.array([2.0, 2.0]), np.array([1.0, 1.0])) == pytest.approx(200 * 2 / 6)


def test_oral_ocular_index() -> None:
    assert oral_ocular_index(np.full(10, 6.0), np.full(10, 12.0), 2.0) == pytest.approx(0.4)
    assert np.isnan(oral_ocular_index(5.0, 2.0, 2.0))  # closure not above rest


def test_onsets_need_the_hold_time_and_use_hysteresis(rng) -> None:
    x = np.full(3000, 1.0)
    x[500:530] = 10.0  # 30 ms spike: shorter than the 50 ms hold, ignored
    x[1000:1800] = 10.0
    x[1800:1850] = 2.5  # between k_off and k_on thresholds: still active
    x[1400:1420] = 1.0  # 20 ms dip below k_off: shorter than the 100 ms hold
    events = detect_onsets(x, FS, mean=1.0, sd=0.5)
    assert events == [(1000, 1850)]
    x[2900:] = 10.0
    assert detect_onsets(x, FS, 1.0, 0.5)[-1] == (2900, 3000)  # active to the end
    x[1000:1100] = np.nan  # lost samples never count as activity
    assert detect_onsets(x, FS, 1.0, 0.5, OnsetConfig(hold_on_ms=150))[0][0] == 1100


def test_tkeo() -> None:
    x = np.sin(2 * np.pi * 10 * np.arange(1000) / FS)
    psi = tkeo(x)
    # for A sin(wn), psi = A^2 sin^2(w): constant
    assert np.allclose(psi, np.sin(2 * np.pi * 10 / FS) ** 2)
    act = tkeo_activation(np.column_stack([x, 10 * x]), FS)
    assert act[-1, 1] == pytest.approx(100 * act[-1, 0])
