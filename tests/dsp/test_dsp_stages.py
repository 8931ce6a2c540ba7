"""Per-stage parity: chunked streaming equals one offline causal pass (chunks 1, 7, 64, all)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from emgfb.dsp.settings import BandpassConfig, DspConfig, HighpassConfig, NotchConfig
from emgfb.dsp.stages import (
    LowpassEnvelopeStage,
    MovingRmsStage,
    RectifyStage,
    ScaleStage,
    SosFilterStage,
    design_bandpass,
    design_cascade,
    design_highpass,
    design_notch,
    notch_frequencies,
    settle_samples,
)

FS = 2000.0
CHUNKS = (1, 7, 64, None)


def chunked(stage, x: np.ndarray, size: int | None) -> np.ndarray:
    stage.reset()
    if size is None:
        return stage.process(x)
    return np.vstack([stage.process(x[i:i + size]) for i in range(0, len(x), size)])


def max_rel_dev(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def reference_sosfilt(sos: np.ndarray, x: np.ndarray, steady: bool) -> np.ndarray:
    """One offline causal pass written with scipy directly."""
    zi = signal.sosfilt_zi(sos)[:, :, None] * (x[0] if steady else np.zeros(x.shape[1]))
    return signal.sosfilt(sos, x, axis=0, zi=zi)[0]


def reference_moving_rms(x: np.ndarray, w: int) -> np.ndarray:
    """Causal moving RMS by convolution (zeros before the start)."""
    k = np.ones(w) / w
    return np.sqrt(np.stack([np.convolve(c * c, k)[:len(c)] for c in x.T], axis=1))


@pytest.fixture
def x(rng: np.random.Generator) -> np.ndarray:
    n = 1500
    t = np.arange(n) / FS
    return (rng.standard_normal((n, 3)) * 20 + 100 * np.sin(2 * np.pi * 50 * t)[:, None]
            + np.array([300.0, -50.0, 0.0]))


@pytest.mark.parametrize("size", CHUNKS)
@pytest.mark.parametrize("which", ["highpass", "notch", "bandpass", "cascade"])
def test_sos_filter_stage_parity(x: np.ndarray, which: str, size: int | None) -> None:
    cfg = DspConfig(highpass=HighpassConfig(5.0, 2))
    sos = {"highpass": design_highpass(cfg.highpass, FS),
           "notch": design_notch(cfg.notch, FS),
           "bandpass": design_bandpass(cfg.bandpass, FS),
           "cascade": design_cascade(cfg, FS)}[which]
    out = chunked(SosFilterStage(sos, 3), x, size)
    assert max_rel_dev(out, reference_sosfilt(sos, x, steady=True)) <= 1e-9


@pytest.mark.parametrize("size", CHUNKS)
def test_scale_and_rectify_parity(x: np.ndarray, size: int | None) -> None:
    scale = ScaleStage(np.array([2.0, 0.5, 1.0]), 512.0, 3)
    assert max_rel_dev(chunked(scale, x, size), (x - 512.0) * [2.0, 0.5, 1.0]) <= 1e-9
    assert max_rel_dev(chunked(RectifyStage(), x, size), np.abs(x)) <= 1e-9


@pytest.mark.parametrize("size", CHUNKS)
def test_moving_rms_parity(x: np.ndarray, size: int | None) -> None:
    stage = MovingRmsStage(200, 3, anchor=512)  # small anchor: re-summation crosses chunks
    out = chunked(stage, x, size)
    assert max_rel_dev(out, reference_moving_rms(x, 200)) <= 1e-9
    stage.reset()
    assert np.array_equal(out, stage.process(x))  # bit-identical whatever the chunking


@pytest.mark.parametrize("size", CHUNKS)
def test_lowpass_envelope_parity(x: np.ndarray, size: int | None) -> None:
    out = chunked(LowpassEnvelopeStage(10.0, 2, FS, 3), x, size)
    sos = signal.butter(2, 10.0, "lowpass", fs=FS, output="sos")
    assert max_rel_dev(out, reference_sosfilt(sos, np.abs(x), steady=False)) <= 1e-9


def test_moving_rms_does_not_drift_after_a_huge_burst(rng: np.random.Generator) -> None:
    n = 300_000
    x = rng.standard_normal((n, 1))
    x[1000:3000] *= 1e5  # a rail-to-rail artefact, then quiet for 2.5 min
    out = MovingRmsStage(200, 1, anchor=1 << 16).process(x)
    ref = reference_moving_rms(x[-5000:], 200)[-1000:]
    assert np.max(np.abs(out[-1000:] - ref) / ref) < 1e-9


def test_cascade_equals_separate_filters_in_series(x: np.ndarray) -> None:
    cfg = DspConfig(highpass=HighpassConfig(5.0, 2), notch=NotchConfig(method="iir"))
    y = x
    for sos in (design_highpass(cfg.highpass, FS), design_notch(cfg.notch, FS),
                design_bandpass(cfg.bandpass, FS)):
        y = signal.sosfilt(sos, y, axis=0)
    merged = signal.sosfilt(design_cascade(cfg, FS), x, axis=0)
    assert max_rel_dev(merged, y) <= 1e-9


def test_notch_harmonics_and_band_clipping() -> None:
    assert notch_frequencies(NotchConfig(), 2000.0) == [50.0 * k for k in range(1, 20)]
    assert notch_frequencies(NotchConfig(mains_hz=60, harmonics=3), 2000.0) == [60, 120, 180]
    assert notch_frequencies(NotchConfig(enabled=False), 2000.0) == []
    assert notch_frequencies(NotchConfig(), 250.0) == [50.0, 100.0]  # 125 Hz is Nyquist
    sos = design_bandpass(BandpassConfig(20.0, 450.0, 4), 500.0)  # 450 > 0.45 * 500
    w, h = signal.sosfreqz(sos, worN=[225.0], fs=500.0)
    assert abs(abs(h[0]) - 1 / np.sqrt(2)) < 1e-6  # corner moved to 225 Hz


def test_notch_attenuates_mains_by_more_than_40_db() -> None:
    sos = design_notch(NotchConfig(), FS)
    _, h = signal.sosfreqz(sos, worN=[50.0, 150.0, 80.0], fs=FS)
    assert 20 * np.log10(abs(h[0])) < -40 and 20 * np.log10(abs(h[1])) < -40
    assert abs(20 * np.log10(abs(h[2]))) < 0.5  # between harmonics: untouched


def test_settle_samples_follows_the_slowest_pole() -> None:
    notch = design_notch(NotchConfig(harmonics=1), FS)
    n = settle_samples(notch, 40.0)
    imp = np.zeros(4 * n)
    imp[0] = 1.0
    h = signal.sosfilt(notch, imp)
    tail = np.max(np.abs(h[n:]))
    assert tail < 0.011 * np.max(np.abs(h[1:n]))  # decayed by 40 dB (r**n = 0.01)
    assert settle_samples(notch, 0.0) == 0
