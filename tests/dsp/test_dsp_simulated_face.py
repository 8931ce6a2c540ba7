"""The DSP on the simulated face: off-frequency, drifting hum and the faults a clinic meets
(seeded), through the real source, decoder, pipeline and channel state."""

from __future__ import annotations

import numpy as np
import pytest

from emgfb.acquisition.source import open_source
from emgfb.dsp import ChannelStateTracker, EnvelopePipeline, load_dsp_config
from emgfb.dsp.quality import BAD, GOOD


def run(url: str, seconds: float) -> tuple[np.ndarray, list]:
    src = open_source(url)
    src.start()
    cfg = load_dsp_config()
    fs, n_ch = src.info.fs, src.info.n_channels
    upc, off = src.scale()
    pipe = EnvelopePipeline(cfg, fs, n_ch, upc, off)
    tracker = ChannelStateTracker(cfg, fs, n_ch, (1 << src.info.bits) - 1, upc)
    envs, got = [], 0
    states = tracker.latest
    while got < seconds * fs:
        chunk = src.read(1.0)
        assert chunk is not None
        env = pipe.process(chunk.counts, chunk.tick)
        raw = (chunk.counts.astype(float) - off) * upc
        states = tracker.update(raw, chunk.counts, pipe.last_filtered)
        envs.append(env)
        got += len(chunk)
    src.stop()
    return np.vstack(envs), states


def test_rest_envelope_with_off_frequency_drifting_hum_is_within_1_2x_of_hum_free() -> None:
    base = "sim://?speed=0&script=rest&seed=4&fs=2000&clock_ppm=-4000&grid_drift=0.3"
    hum, states = run(base, 12.0)
    clean, _ = run(base + "&mains=0", 12.0)
    rest = slice(4000, None)
    ratio = np.nanmedian(hum[rest], axis=0) / np.nanmedian(clean[rest], axis=0)
    assert np.all(ratio < 1.2), ratio
    assert all(s.state == GOOD for s in states), [s.reason for s in states]


@pytest.mark.parametrize(("fault", "indicator"), [
    ("electrode_off=2", "flat"),
    ("electrode_off=2&off_mode=dither", "flat"),
    ("electrode_off=2&off_mode=mid", "flat"),
    ("saturate=2", "saturation"),
])
def test_a_fault_on_one_channel_makes_only_that_channel_bad(fault, indicator) -> None:
    url = "sim://?speed=0&script=rest&seed=5&" + fault
    if "saturate" in fault:  # saturation needs a signal big enough to reach the swing
        url += "&drift=2"
    _, states = run(url, 6.0)
    assert states[2].state == BAD and states[2].indicators[indicator] == BAD
    assert all(s.state == GOOD for i, s in enumerate(states) if i != 2), \
        [(s.channel, s.reason) for s in states]


def test_intermittent_contact_is_named() -> None:
    _, states = run("sim://?speed=0&script=rest&seed=6&contact=1", 8.0)
    assert states[1].state != GOOD and "contact" in states[1].reason
