"""EnvelopePipeline: chunked == offline causal pass, gaps, scaling, zero-phase, lifecycle."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import signal

from emgfb.dsp import EnvelopePipeline, load_dsp_config
from emgfb.dsp.settings import EnvelopeConfig, GapConfig, NotchConfig
from emgfb.errors import ConfigError

FS = 2000.0


def stream(pipe: EnvelopePipeline, x: np.ndarray, size: int, tick: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    pipe.reset()
    envs, filts = [], []
    for i in range(0, len(x), size):
        envs.append(pipe.process(x[i:i + size], None if tick is None else tick[i:i + size]))
        filts.append(pipe.last_filtered)
    return np.vstack(filts), np.vstack(envs)


def assert_same(a: np.ndarray, b: np.ndarray, tol: float = 1e-9) -> None:
    assert np.array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(b)
    assert ok.any()
    assert np.max(np.abs(a[ok] - b[ok])) <= tol * np.max(np.abs(b[ok]))


@pytest.mark.parametrize("method", ["rms", "lowpass"])
@pytest.mark.parametrize("size", [1, 7, 64, None])
def test_chunked_equals_offline_causal_pass_with_gaps(make_emg, rng, method, size) -> None:
    cfg = load_dsp_config()
    cfg = cfg.replace(envelope=EnvelopeConfig(method=method), gaps=GapConfig(20.0))
    n_s = 2.0 if size == 1 else 3.0  # chunks of one sample are slow in Python
    x = make_emg(rng, FS, n_s, 2, bursts=((0.3, 0.8, 40.0),))
    tick = np.arange(len(x)) + 1000
    tick[len(x) // 2:] += 37  # a gap of 37 lost ticks
    x[200:230] = np.nan  # and 30 NULL rows
    pipe = EnvelopePipeline(cfg, FS, 2)
    f_off, e_off = pipe.process_offline_full(x, tick=tick)
    f, e = stream(pipe, x, size or len(x), tick)
    assert_same(e, e_off)
    assert_same(f, f_off)


def test_causal_pass_matches_scipy_written_independently(make_emg, rng) -> None:
    """On hum-free input the canceller subtracts nothing: the envelope is the textbook
    band-pass + trailing RMS chain."""
    cfg = load_dsp_config().replace(notch=NotchConfig(method="track"))
    x = make_emg(rng, FS, 3.0, 2, hum_uv=0.0)
    pipe = EnvelopePipeline(cfg, FS, 2)
    env = pipe.process(x)
    sos = signal.butter(4, [20.0, 450.0], "bandpass", fs=FS, output="sos")
    y = signal.sosfilt(sos, x, axis=0, zi=signal.sosfilt_zi(sos)[:, :, None] * x[0])[0]
    w = int(cfg.envelope.window_ms * FS / 1000)
    ref = np.sqrt(np.stack([np.convolve(c * c, np.ones(w) / w)[:len(c)] for c in y.T], 1))
    full = slice(pipe.filter_settle + w, None)  # windows of valid samples only
    assert np.isfinite(env[full]).all()
    assert np.max(np.abs(env[full] - ref[full]) / ref[full]) <= 1e-10


def test_a_lost_frame_blanks_nothing_and_a_100ms_gap_recovers_in_250ms(make_emg, rng) -> None:
    cfg = load_dsp_config().replace(notch=NotchConfig(method="track"))
    x = make_emg(rng, FS, 4.0, 1, hum_uv=300.0, bursts=((3.2, 3.8, 40.0),))
    ref = EnvelopePipeline(cfg, FS, 1).process(x)
    for lost, recover_ms in ((slice(2000, 2001), 0), (slice(2000, 2040), 0),
                             (slice(2000, 2200), 250)):
        keep = np.ones(len(x), bool)
        keep[lost] = False
        tick = np.flatnonzero(keep)
        pipe = EnvelopePipeline(cfg, FS, 1)
        env = np.vstack([pipe.process(x[tick][i:i + 10], tick[i:i + 10])
                         for i in range(0, len(tick), 10)])
        shown = tick >= pipe.envelope_settle
        after = tick >= lost.stop + recover_ms * FS / 1000
        blank = np.isnan(env[:, 0]) & shown
        assert not blank[after].any() and (recover_ms or not blank.any())
        # and what is shown is right: within 20 % of the gap-free envelope at rest
        ok = after & (tick < 3.2 * FS)
        assert np.max(np.abs(env[ok, 0] / ref[tick[ok], 0] - 1)) < 0.2
        assert pipe.restarts == 1


def test_nan_cells_blank_only_their_own_channel(make_emg, rng) -> None:
    x = make_emg(rng, FS, 3.0, 2)
    x[2500:2700, 1] = np.nan  # 100 ms of NULL cells on channel 1 only
    pipe = EnvelopePipeline(load_dsp_config().replace(notch=NotchConfig(method="track")), FS, 2)
    env = pipe.process(x)
    assert np.isfinite(env[pipe.envelope_settle:, 0]).all()
    assert np.isnan(env[2650:2700, 1]).all()  # really wrong there: < half a window left
    assert np.isfinite(env[2700 + 500:, 1]).all()
    assert np.isnan(pipe.last_filtered[2500:2700, 1]).all()
    assert np.isfinite(pipe.last_filtered[2500:2700, 0]).all()


def test_counts_scale_gives_the_same_envelope_as_microvolts(make_emg, rng) -> None:
    uv = make_emg(rng, FS, 2.0, 2)
    scale, offset = np.array([2.0, 0.5]), 512.0
    counts = uv / scale + offset
    cfg = load_dsp_config()
    a = EnvelopePipeline(cfg, FS, 2, uv_per_count=scale, offset_counts=offset).process(counts)
    b = EnvelopePipeline(cfg, FS, 2).process(uv)
    assert_same(a, b, 1e-9)


def test_zero_phase_is_not_delayed(rng) -> None:
    n = int(2 * FS)
    x = rng.standard_normal((n, 1)) * np.where(np.arange(n) >= n // 2, 50.0, 1.0)[:, None]
    pipe = EnvelopePipeline(load_dsp_config(), FS, 1)
    causal = pipe.process_offline(x)[:, 0]
    zero = pipe.process_offline(x, zero_phase=True)[:, 0]
    half = 0.5 * np.median(zero[-n // 4:])
    t_causal = np.flatnonzero(causal > half)[0] - n // 2
    t_zero = np.flatnonzero(zero > half)[0] - n // 2
    assert t_causal > 0.02 * FS  # the causal moving RMS lags by ~a quarter window
    assert abs(t_zero) < 0.02 * FS
    assert pipe.restarts == 0  # offline processing leaves the live state alone


def test_reset_and_errors(make_emg, rng) -> None:
    x = make_emg(rng, FS, 1.5, 2)
    pipe = EnvelopePipeline(load_dsp_config(), FS, 2)
    first = pipe.process(x)
    pipe.reset()
    assert_same(pipe.process(x), first, 0.0)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        pipe.process(x[:, :1])
    pipe.process(x[:10], np.arange(10))
    with pytest.raises(ValueError, match="strictly increasing"):
        pipe.process(x[:10], np.arange(10))
    with pytest.raises(ConfigError, match="expected a number of Hz in 250..20000"):
        EnvelopePipeline(load_dsp_config(), 100.0, 2)


def test_describe_is_json_ready() -> None:
    d = EnvelopePipeline(load_dsp_config(), FS, 2).describe()
    text = json.dumps(d)
    assert d["mains"]["method"] == "track" and d["mains"]["line_hz"] == 50.0
    cfg = load_dsp_config().replace(notch=NotchConfig(method="iir"))
    iir = EnvelopePipeline(cfg, FS, 2).describe()
    assert iir["mains"] == {"method": "iir"} and iir["notch_hz"][:3] == [50.0, 100.0, 150.0]
    d = EnvelopePipeline(load_dsp_config(), FS, 2, line_hz=50.2).describe()
    assert d["mains"]["method"] == "track" and d["mains"]["line_hz"] == 50.2
    assert d["notch_hz"] == []  # no fixed notches
    assert d["window_samples"] == 200 and "settle_db" in text
