"""Real facial recordings: PeakAffectDS (development-only, ../shared/data) and the bundled
CC0 Nilsonne file; cross-checks against scipy written here and against pyemgpipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from emgfb.dsp import EnvelopePipeline, load_dsp_config, reference_contraction, rest_baseline
from emgfb.dsp.calibration import moving_rms_centred
from emgfb.dsp.settings import BandpassConfig, EnvelopeConfig, NotchConfig
from emgfb.dsp.signalfile import read_signal_csv

PEAK = "facial/emgflow_peakaffectds_sample_data_{}.csv"


def peak(shared_data, which: str):
    table = read_signal_csv(shared_data / PEAK.format(which))
    return table, table.data * 1000.0  # mV -> µV


def line_amplitude(y: np.ndarray, fs: float, f0: float) -> float:
    """Amplitude of the f0 sinusoid in ``y`` (least-squares lock-in with a DC term)."""
    t = np.arange(len(y)) / fs
    basis = np.column_stack([np.sin(2 * np.pi * f0 * t), np.cos(2 * np.pi * f0 * t),
                             np.ones(len(t))])
    coef = np.linalg.lstsq(basis, y, rcond=None)[0]
    return float(np.hypot(coef[0], coef[1]))


@pytest.mark.shared
@pytest.mark.parametrize(("which", "ch", "rest"), [("01", 0, (4500, 16500)),
                                                   ("01", 1, (4500, 16500)),
                                                   ("03", 0, (4500, 10000))])
def test_mains_line_drops_by_30_db(shared_data, which, ch, rest) -> None:
    """The 50 Hz line, measured by lock-in at its own frequency over rest. (File 03's
    corrugator line stands only ~15 dB above the EMG floor, so a 30 dB drop cannot be
    measured there; its zygomaticus contracts at 5.2-6.5 s, and the EMG's own 50 Hz content,
    which the mains removal keeps, would read as hum left over.)"""
    table, x = peak(shared_data, which)
    assert table.fs == 2000.0
    pipe = EnvelopePipeline(load_dsp_config(), table.fs, 2)
    pipe.process(x, table.tick)
    filt = pipe.last_filtered
    seg = slice(*rest)  # clear of every NULL gap and its settling time
    assert not np.isnan(filt[seg]).any()
    grid = np.arange(49.9, 50.1, 0.005)
    f0 = grid[np.argmax([line_amplitude(x[seg, ch], table.fs, f) for f in grid])]
    before = line_amplitude(x[seg, ch], table.fs, f0)
    after = line_amplitude(filt[seg, ch], table.fs, f0)
    assert before > 20.0  # a real, strong line (µV)
    assert 20 * np.log10(before / after) >= 30.0


@pytest.mark.shared
def test_null_rows_are_lost_samples(shared_data) -> None:
    table, x = peak(shared_data, "03")
    lost = np.isnan(x).any(axis=1)
    assert lost.sum() == 300 and lost[998] and lost[1303] and not lost[1304]
    pipe = EnvelopePipeline(load_dsp_config(), table.fs, 2)
    env = pipe.process(x, table.tick)
    assert len(env) == len(x) == 20000
    assert np.isnan(pipe.last_filtered[lost]).all()
    # three 50 ms gaps in 150 ms: blank only while the window holds too few samples,
    # and back within 250 ms
    assert np.isfinite(env[pipe.envelope_settle:998]).all()
    assert np.isfinite(env[1304 + 500:]).all()


def scipy_envelope(x: np.ndarray, fs: float) -> np.ndarray:
    """An independent envelope: transfer-function Butterworth and notches applied with
    lfilter, 100 ms trailing RMS by convolution (no emgfb code)."""
    y = x.copy()
    for f0 in np.arange(50.0, fs / 2, 50.0):
        b, a = signal.iirnotch(f0, 30.0, fs)
        y = signal.lfilter(b, a, y - y[0], axis=0)
    b, a = signal.butter(4, [20.0, 450.0], "bandpass", fs=fs)
    y = signal.lfilter(b, a, y, axis=0)
    w = int(0.1 * fs)
    return np.sqrt(np.stack([np.convolve(c * c, np.ones(w) / w)[:len(c)] for c in y.T], 1))


def contrast(env: np.ndarray) -> float:
    """Burst contrast: 95th over 20th percentile of the envelope."""
    return float(np.percentile(env, 95) / np.percentile(env, 20))


@pytest.mark.shared
def test_corrugator_burst_contrast_matches_independent_scipy(shared_data) -> None:
    table, x = peak(shared_data, "03")
    pipe = EnvelopePipeline(load_dsp_config(), table.fs, 2)
    ours = pipe.process(x, table.tick)[6000:, 1]
    start = 1304  # the independent chain starts after the last NULL gap
    theirs = scipy_envelope(x[start:], table.fs)[6000 - start:, 1]
    c_ours, c_theirs = contrast(ours), contrast(theirs)
    assert c_ours > 3.0  # real bursts stand out of rest
    assert abs(c_ours / c_theirs - 1) <= 0.10


@pytest.mark.shared
def test_zero_phase_envelope_matches_pyemgpipeline(shared_data) -> None:
    pep = pytest.importorskip("pyemgpipeline.processors")
    table, x = peak(shared_data, "03")
    x = x[1304:]  # pyemgpipeline has no notion of gaps
    fs = table.fs
    cfg = load_dsp_config().replace(
        notch=NotchConfig(enabled=False), bandpass=BandpassConfig(20.0, 450.0, 2),
        envelope=EnvelopeConfig(method="lowpass", lowpass_hz=6.0, lowpass_order=2))
    ours = EnvelopePipeline(cfg, fs, 2).process_offline(x, zero_phase=True)
    y = pep.BandpassFilter(fs, bf_order=4, bf_cutoff_fq_lo=20, bf_cutoff_fq_hi=450).apply(x)
    y = pep.FullWaveRectifier().apply(y)
    theirs = pep.LinearEnvelope(fs, le_order=4, le_cutoff_fq=6).apply(y)
    inner = slice(2000, -2000)  # both pad the edges differently
    rel = np.abs(ours[inner] - theirs[inner]) / np.max(theirs[inner], axis=0)
    assert np.max(rel) < 1e-3


def test_bundled_cc0_recording_rectified_columns_agree_with_raw() -> None:
    """Core real-data check without ../shared: the CC0 Nilsonne file (100 Hz) ships raw and
    rectified-smoothed corrugator columns; our centred RMS of the raw column must track the
    upstream rectified column (same activity, Pearson r > 0.5) and its reference contraction
    must sit well above rest."""
    path = Path(__file__).resolve().parents[2] / "data/facial/nilsonne_FMOV_09_preprocessed.txt"
    table = read_signal_csv(path, fs=100.0)
    corr, corr_rect = table.data[:, 2], table.data[:, 4]
    rms = moving_rms_centred(corr, 10)[:, 0]
    ok = np.isfinite(rms) & np.isfinite(corr_rect)
    r = np.corrcoef(rms[ok], corr_rect[ok])[0, 1]
    assert r > 0.5
    base = rest_baseline(rms[ok][:, None])
    ref = reference_contraction(rms[:, None], 100.0)
    assert ref[0] > base.mean[0] + 3 * base.sd[0]
