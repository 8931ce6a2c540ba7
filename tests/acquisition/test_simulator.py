"""FacialEmgModel: amplitudes, sides, synkinesis, hum, spectra, faults, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from emgfb.acquisition.simulator import FacialEmgModel
from emgfb.errors import ConfigError
from emgfb.montage import default_montage, load_montage

FS = 1000


def _model(seed: int = 1, **kw) -> FacialEmgModel:
    return FacialEmgModel(default_montage(6), FS, seed, **kw)


def _uv(model: FacialEmgModel, seconds: float) -> np.ndarray:
    return model.uv_from_counts(model.generate(int(seconds * model.fs)))


def _clean(x: np.ndarray, fs: float, mains: float = 50.0) -> np.ndarray:
    """Band-pass 20-450 Hz and notch mains + harmonics, as the DSP will (DOMAIN.md §4)."""
    sos = signal.butter(4, [20, min(450, 0.45 * fs)], btype="band", fs=fs, output="sos")
    for f in np.arange(mains, fs / 2, mains):
        b, a = signal.iirnotch(f, 30, fs)
        sos = np.vstack([sos, signal.tf2sos(b, a)])
    return signal.sosfilt(sos, x, axis=0)[int(fs) :]  # drop the filters' start-up


def _rms(x: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean((x - x.mean(0)) ** 2, axis=0))


def test_scale_matches_the_bioamp_on_an_uno():
    m = _model()
    assert m.uv_per_count == pytest.approx(5000e3 / 1024 / 2420)
    assert m.offset_counts == 512


def test_rest_tone_is_1_to_3_microvolts_after_scaling_back_and_notching():
    m = _model(script="rest")
    raw = _uv(m, 10)
    rest = _rms(_clean(raw, FS))
    assert np.all((rest > 1.0) & (rest < 3.0)), rest
    assert np.all(_rms(raw) > 2 * rest)  # the raw signal is hum dominated


def test_hum_sits_at_the_mains_frequency():
    for mains in (50, 60):
        x = _uv(_model(script="rest", mains_hz=mains), 4)[:, 0]
        f, p = signal.welch(x - x.mean(), FS, nperseg=1000)
        assert f[np.argmax(p)] == mains
        assert p[f == 3 * mains][0] > 20 * np.median(p)  # 3rd harmonic present
    x = _uv(_model(script="rest", mains_hz=0), 4)[:, 0]
    f, p = signal.welch(x - x.mean(), FS, nperseg=1000)
    assert p[f == 50][0] < 5 * np.median(p[(f > 40) & (f < 200)])


def test_activation_is_far_above_rest_and_the_affected_side_is_weaker():
    m = _model(mains_hz=0, script="rest")
    rest = _rms(_clean(_uv(m, 3), FS))
    m.set_drive({"zygomaticus_major": 1.0, "frontalis": 1.0})
    active = _rms(_clean(_uv(m, 5), FS))
    labels = m.montage.labels  # face6 affected side: left
    zl, zr = labels.index("ZYG-L"), labels.index("ZYG-R")
    fl, fr = labels.index("FRO-L"), labels.index("FRO-R")
    assert active[zr] > 30 * rest[zr] and active[fr] > 30 * rest[fr]
    assert active[zr] > 100  # a few hundred µV at full effort
    assert 0.2 < active[zl] / active[zr] < 0.5
    assert 0.2 < active[fl] / active[fr] < 0.5


def test_synkinesis_shows_on_the_affected_eye_during_a_smile():
    m = _model(mains_hz=0, script="rest")
    labels = m.montage.labels
    ol, orr = labels.index("OOC-L"), labels.index("OOC-R")
    rest = _rms(_clean(_uv(m, 3), FS))
    m.set_drive({"zygomaticus_major": 0.8})
    smile = _rms(_clean(_uv(m, 4), FS))
    assert smile[ol] > 5 * rest[ol]  # affected orbicularis oculi fires with the smile
    assert smile[orr] < 1.5 * rest[orr]  # the healthy eye stays quiet
    m0 = _model(mains_hz=0, script="rest", synkinesis=0.0)
    m0.set_drive({"zygomaticus_major": 0.8})
    assert _rms(_clean(_uv(m0, 4), FS))[ol] < 1.5 * rest[ol]


def test_demo_script_runs_brow_lift_eye_closure_smile_and_pucker():
    m = FacialEmgModel(load_montage("face8"), FS, 2, mains_hz=0)
    x = _clean(m.uv_from_counts(m.generate(47 * FS + FS)), FS)  # one cycle (after 1 s cut)
    labels = m.montage.labels

    def seg(label: str, t0: float, t1: float) -> float:
        c = labels.index(label)
        return float(_rms(x[int(t0 * FS) : int(t1 * FS), c : c + 1])[0])

    # it starts with 8 s at rest: the first screen a clinician sees is a relaxed face
    for label in labels:
        assert seg(label, 0.5, 6.5) < 1.5 * seg(label, 0.5, 2.5)
    assert seg("FRO-R", 10, 14) > 10 * seg("FRO-R", 0.5, 2.5)
    assert seg("OOC-R", 20, 23) > 5 * seg("OOC-R", 0.5, 2.5)
    assert seg("ZYG-R", 29, 33) > 10 * seg("ZYG-R", 0.5, 2.5)
    assert seg("OOR-R", 39, 43) > 10 * seg("OOR-R", 0.5, 2.5)
    assert seg("OOC-L", 29, 33) > 3 * seg("OOC-L", 0.5, 2.5)  # synkinesis in the smile


def test_spectrum_of_active_muscle_is_facial():
    m = _model(mains_hz=0, script="rest")
    m.set_drive({"zygomaticus_major": 1.0})
    x = _uv(m, 10)[FS:, m.montage.labels.index("ZYG-R")]
    f, p = signal.welch(x - x.mean(), FS, nperseg=1024)
    cum = np.cumsum(p)
    median_f = f[np.searchsorted(cum, cum[-1] / 2)]
    # real facial sEMG: median 60-100 Hz, spectral peak 30-100 Hz (DOMAIN.md §9)
    assert 60 < median_f < 100
    assert 30 < f[np.argmax(signal.savgol_filter(p, 9, 2))] < 100


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_output_does_not_depend_on_chunking(chunk):
    whole = _model(seed=5).generate(3000)
    m = _model(seed=5)
    parts = [m.generate(min(chunk, 3000 - i)) for i in range(0, 3000, chunk)]
    assert np.array_equal(np.concatenate(parts), whole)
    assert m.samples_generated == 3000


def test_same_seed_same_counts_other_seed_other_counts():
    a, b, c = _model(seed=3).generate(2000), _model(seed=3).generate(2000), _model(4).generate(2000)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.uint16 and a.shape == (2000, 6)
    assert a.min() >= 0 and a.max() <= 1023


def test_electrode_off_rail_is_flat_and_floating_is_hum():
    m = _model()
    m.set_electrode_off(1, True)
    m.set_electrode_off(2, True, mode="float")
    counts = m.generate(4000)
    assert np.all(counts[:, 1] == 1023)
    x = m.uv_from_counts(counts)
    assert _rms(x)[2] > 10 * _rms(x)[3]
    f, p = signal.welch(x[:, 2] - x[:, 2].mean(), FS, nperseg=1000)
    assert f[np.argmax(p)] == 50
    m.set_electrode_off(1, False)
    assert m.generate(100)[:, 1].std() > 0


def test_saturation_clips_at_the_adc_rails():
    m = _model(script="rest")
    m.set_drive({"zygomaticus_major": 1.0})
    m.set_saturation(5, True)
    counts = m.generate(5000)[1000:]
    railed = np.mean((counts[:, 5] == 0) | (counts[:, 5] == 1023))
    assert railed > 0.05
    assert np.mean((counts[:, 4] == 0) | (counts[:, 4] == 1023)) == 0


def test_drive_can_be_cleared_back_to_the_script():
    m = _model(mains_hz=0, script="rest")
    m.set_drive({"orbicularis_oris": 0.5, "frontalis": 1.0})
    m.generate(500)
    m.set_drive(None)
    later = _rms(_clean(_uv(m, 3), FS))
    assert np.all(later < 3.5)


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda m: m.set_drive({"biceps": 1.0}), "biceps"),
        (lambda m: m.set_drive({"frontalis": 1.5}), "frontalis = 1.5"),
        (lambda m: m.set_electrode_off(6, True), "channel 6"),
        (lambda m: m.set_electrode_off(0, True, mode="loose"), "loose"),
    ],
)
def test_bad_steering_gives_config_errors(call, fragment):
    with pytest.raises(ConfigError, match=fragment):
        call(_model())


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [({"mains_hz": 55}, "mains_hz"), ({"script": "dance"}, "dance"),
     ({"affected_gain": 2.0}, "affected_gain"), ({"bits": 0}, "bits")],
)
def test_bad_model_settings_give_config_errors(kw, fragment):
    with pytest.raises(ConfigError, match=fragment):
        _model(**kw)


def _line_hz(x: np.ndarray, fs: float, lo: float, hi: float) -> float:
    """Frequency of the strongest line in [lo, hi] Hz, to 0.01 Hz (zero-padded FFT)."""
    n = 1 << 20
    spec = np.abs(np.fft.rfft((x - x.mean()) * np.hanning(len(x)), n))
    f = np.fft.rfftfreq(n, 1.0 / fs)
    band = (f >= lo) & (f <= hi)
    return float(f[band][np.argmax(spec[band])])


def test_hum_is_off_nominal_by_the_board_clock_and_drifts_with_the_grid():
    m = _model(script="rest", clock_ppm=4000.0, grid_drift_hz=0.0)
    assert m.line_hz == pytest.approx(50.0 / 1.004)
    x = _uv(m, 20)[:, 0]
    assert _line_hz(x, FS, 49.0, 51.0) == pytest.approx(49.80, abs=0.01)
    drifting = _model(script="rest", clock_ppm=0.0, grid_drift_hz=0.3, grid_period_s=40.0)
    x = _uv(drifting, 40)[:, 0]
    first, later = _line_hz(x[:5 * FS], FS, 49, 51), _line_hz(x[8 * FS:13 * FS], FS, 49, 51)
    assert later - first > 0.15  # the grid runs fast a quarter period in
    assert abs(_model().clock_ppm) <= 2500 and _model().clock_ppm != _model(seed=2).clock_ppm


@pytest.mark.parametrize("mode", ["mid", "dither"])
def test_electrode_off_mid_scale_or_dithering(mode):
    m = _model(script="rest")
    m.set_electrode_off(1, True, mode)
    counts = m.generate(2 * FS).astype(int)
    assert counts[:, 1].max() - counts[:, 1].min() == (0 if mode == "mid" else 1)
    assert abs(np.median(counts[:, 1]) - m.offset_counts) <= 1


def test_front_end_saturation_clips_below_the_adc_rails():
    m = _model(script="rest")
    m.set_drive({"zygomaticus_major": 1.0})
    zyg = m.montage.labels.index("ZYG-R")
    m.set_saturation(zyg, True, factor=8.0, stage="frontend")
    counts = m.generate(3 * FS).astype(int)[:, zyg]
    assert 0 < counts.min() and counts.max() < m.max_count  # never at the rails ...
    top = counts.max()
    assert np.mean(counts == top) > 0.01  # ... yet flat-topped


def test_artefacts_are_seeded_and_show_where_switched_on():
    def run(kind: str) -> np.ndarray:
        m = _model(script="rest", mains_hz=0)
        m.set_artefact(kind, 2, True, rate=2.0)
        return _uv(m, 10)

    for kind in ("contact", "motion", "drift"):
        x = run(kind)
        assert np.array_equal(x, run(kind))
        low = signal.sosfilt(signal.butter(2, 15, fs=FS, output="sos"), x, axis=0)
        assert np.std(low[:, 2]) > 10 * np.std(low[:, 3]), kind  # only channel 2
