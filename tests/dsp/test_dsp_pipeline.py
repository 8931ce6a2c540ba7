"""EnvelopePipeline: chunked == offline causal pass, gaps, scaling, zero-phase, lifecycle."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import signal

from emgfb.dsp import EnvelopePipeline, load_dsp_config
from emgfb.dsp.settings import EnvelopeConfig, GapConfig
from emgfb.dsp.stages import design_cascade
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
    cfg = load_dsp_config()
    x = make_emg(rng, FS, 3.0, 2)
    env = EnvelopePipeline(cfg, FS, 2).process(x)
    sos = design_cascade(cfg, FS)
    y = signal.sosfilt(sos, x, axis=0, zi=signal.sosfilt_zi(sos)[:, :, None] * x[0])[0]
    w = int(cfg.envelope.window_ms * FS / 1000)
    ref = np.sqrt(np.stack([np.convolve(c * c, np.ones(w) / w)[:len(c)] for c in y.T], 1))
    ok = ~np.isnan(env)
    assert ok.sum() > len(x)  # most of the signal is valid
    assert np.max(np.abs(env[ok] - ref[ok]) / ref[ok]) <= 1e-9


def test_gap_restart_shows_no_transient_as_activity(make_emg, rng) -> None:
    cfg = load_dsp_config()
    x = make_emg(rng, FS, 4.0, 1, hum_uv=300.0, bursts=((3.2, 3.8, 40.0),))
    keep = np.ones(len(x), bool)
    keep[1000:1150] = False  # 75 ms lost at 0.5 s, at rest
    tick = np.flatnonzero(keep)
    pipe = EnvelopePipeline(cfg, FS, 1)
    env = np.vstack([pipe.process(x[tick][i:i + 10], tick[i:i + 10])
                     for i in range(0, len(tick), 10)])
    ref = EnvelopePipeline(cfg, FS, 1).process(x)[tick]
    after = np.flatnonzero(tick >= 1150)[0]
    assert pipe.restarts == 2
    assert np.all(np.isnan(env[after:after + pipe.envelope_settle]))
    shown = env[after + pipe.envelope_settle:]
    rest = shown[: int(1.0 * FS)]
    assert np.all(np.isfinite(shown))
    assert np.max(rest) < 1.5 * np.nanmax(ref[after + pipe.envelope_settle:][: int(1.0 * FS)])
    # the burst after the gap is measured as if nothing had been lost
    burst = tick[after + pipe.envelope_settle:] >= int(3.3 * FS)
    assert np.allclose(shown[burst], ref[after + pipe.envelope_settle:][burst], rtol=1e-3)
    # without the settle mask the restart transient would look like a contraction
    naive = EnvelopePipeline(cfg.replace(gaps=GapConfig(settle_db=0.0)), FS, 1)
    raw = naive.process(x[tick], tick)
    assert np.nanmax(raw[after:after + pipe.envelope_settle]) > 5 * np.max(rest)


def test_nan_rows_are_lost_samples(make_emg, rng) -> None:
    x = make_emg(rng, FS, 3.0, 2)
    x[2500:2600] = np.nan
    pipe = EnvelopePipeline(load_dsp_config(), FS, 2)
    env = pipe.process(x)
    assert np.all(np.isnan(env[2500:2600 + pipe.envelope_settle]))
    assert np.all(np.isfinite(env[2600 + pipe.envelope_settle:]))
    assert np.all(np.isnan(pipe.last_filtered[2500:2600]))


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
    with pytest.raises(ConfigError, match="expected a number of Hz >= 250"):
        EnvelopePipeline(load_dsp_config(), 100.0, 2)


def test_describe_is_json_ready() -> None:
    d = EnvelopePipeline(load_dsp_config(), FS, 2).describe()
    text = json.dumps(d)
    assert d["notch_hz"][:3] == [50.0, 100.0, 150.0]
    assert d["window_samples"] == 200 and "settle_db" in text
