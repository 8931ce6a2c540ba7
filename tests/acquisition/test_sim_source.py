"""SimSource: the sim:// URL, protocol-v1 round trip, determinism and parameter checks."""

from __future__ import annotations

import numpy as np
import pytest

from emgfb.acquisition import open_source
from emgfb.acquisition.sim_source import SimSource
from emgfb.errors import ConfigError


def _read_n(src, n_chunks: int) -> tuple[np.ndarray, np.ndarray]:
    chunks = [src.read() for _ in range(n_chunks)]
    return np.concatenate([c.tick for c in chunks]), np.concatenate([c.counts for c in chunks])


def test_unpaced_source_delivers_contiguous_ticks_without_errors():
    src = open_source("sim://?speed=0&seed=3")
    assert isinstance(src, SimSource)
    with src:
        tick, counts = _read_n(src, 300)
        assert src.info.board == "sim"
        assert src.info.n_channels == 6 and src.info.fs == 1000
        assert src.info.line.startswith("EMGFB fw=")
    assert np.array_equal(tick, np.arange(3000))
    assert counts.shape == (3000, 6) and counts.dtype == np.uint16
    stats = src.stats.as_dict()
    assert stats["frames"] == 3000
    assert stats["lost_ticks"] == stats["crc_errors"] == stats["bytes_skipped"] == 0
    assert src.status.state == "stopped"


def test_data_pass_through_the_protocol_decoder():
    src = open_source("sim://?speed=0&seed=3&chunk=5")
    with src:
        src.read()
        assert src.decoder.stats.bytes_in == 5 * 18  # 6 channels -> 18-byte frames
        assert src.decoder.stats.frames == 5


def test_same_seed_same_data_regardless_of_chunking_and_speed():
    a = open_source("sim://?speed=0&seed=7&chunk=10")
    b = open_source("sim://?speed=0&seed=7&chunk=25")
    with a, b:
        _, ca = _read_n(a, 50)
        _, cb = _read_n(b, 20)
    assert np.array_equal(ca, cb)
    c = open_source("sim://?speed=0&seed=8")
    with c:
        _, cc = _read_n(c, 50)
    assert not np.array_equal(ca, cc)


def test_paced_source_matches_unpaced_data():
    fast = open_source("sim://?speed=0&seed=2&fs=1000")
    paced = open_source("sim://?speed=50&seed=2&fs=1000")  # 50 x real time: 0.1 s for 5 s
    with fast, paced:
        got = []
        while sum(len(c) for c in got) < 5000:
            chunk = paced.read(timeout=1.0)
            if chunk is not None:
                got.append(chunk)
        tick = np.concatenate([c.tick for c in got])[:5000]
        counts = np.concatenate([c.counts for c in got])[:5000]
        _, ref = _read_n(fast, 500)
    assert np.array_equal(tick, np.arange(5000))
    assert np.array_equal(counts, ref)


def test_restart_begins_again_at_tick_zero_with_the_same_data():
    src = open_source("sim://?speed=0&seed=4")
    with src:
        first = src.read()
    with src:
        again = src.read()
    assert again.tick[0] == 0
    assert np.array_equal(first.counts, again.counts)


def test_channel_count_rate_and_montage_parameters():
    src = open_source("sim://?speed=0&ch=8&fs=2000&chunk=20")
    with src:
        chunk = src.read()
    assert chunk.counts.shape == (40, 8)
    assert src.info.fs == 2000 and src.montage.name == "face8"
    src = open_source("sim://?speed=0&montage=face8")
    assert src.montage.n_channels == 8
    assert open_source("sim://?speed=0&ch=3").montage.labels == ["CH1", "CH2", "CH3"]


def test_electrode_off_channel_is_flat_at_the_rail():
    src = open_source("sim://?speed=0&electrode_off=2")
    with src:
        _, counts = _read_n(src, 20)
    assert np.all(counts[:, 2] == 1023)
    assert counts[:, 3].std() > 0


def test_model_can_be_driven_through_the_source():
    src = open_source("sim://?speed=0&seed=5&script=rest&mains=0")
    with src:
        _, rest = _read_n(src, 50)
        src.model.set_drive({"zygomaticus_major": 1.0})
        _, active = _read_n(src, 50)
    zyg_r = src.montage.labels.index("ZYG-R")
    assert active[:, zyg_r].astype(float).std() > 20 * rest[:, zyg_r].astype(float).std()


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("seed=abc", "seed='abc'"),
        ("speed=-1", "speed = '-1': expected a number in 0..1000"),
        ("ch=17", "ch = '17': expected an integer in 1..16"),
        ("ch=0", "ch = '0'"),
        ("fs=0.5", "fs = '0.5': expected a number in 1..20000 Hz"),
        ("mains=55", "mains=55.0"),
        ("script=dance", "script='dance'"),
        ("electrode_off=6", "electrode_off=6"),
        ("chunk=0", "chunk=0.0"),
        ("colour=red", "unknown parameter 'colour'"),
        ("montage=nosuch", "nosuch"),
        ("montage=face8&ch=6", "ch=6"),
    ],
)
def test_bad_url_parameters_give_one_line_config_errors(query, fragment):
    with pytest.raises(ConfigError) as err:
        open_source(f"sim://?{query}")
    message = str(err.value)
    assert fragment in message
    assert "\n" not in message


def test_fault_and_hum_options_reach_the_model():
    src = open_source("sim://?speed=0&electrode_off=1&off_mode=dither&contact=2&motion=3"
                      "&drift=4&saturate=5&clock_ppm=-1500&grid_drift=0")
    m = src.model
    assert m.clock_ppm == -1500.0 and m.grid_drift_hz == 0.0
    assert m.line_hz == pytest.approx(50.0 / (1 - 1500e-6))
    assert m._electrode_off == {1: "dither"}
    assert {k: set(v) for k, v in m._artefacts.items()} == {
        "contact": {2}, "motion": {3}, "drift": {4}}
    assert m._saturation == {5: (8.0, "frontend")}


@pytest.mark.parametrize(("query", "fragment"), [
    ("off_mode=loose", "off_mode='loose'"),
    ("contact=9", "contact=9"),
    ("clock_ppm=90000", "clock_ppm = '90000': expected a number in -20000..20000 ppm"),
    ("grid_drift=-1", "grid_drift=-1.0"),
])
def test_bad_fault_options_give_one_line_config_errors(query, fragment):
    with pytest.raises(ConfigError) as err:
        open_source(f"sim://?{query}")
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_read_before_start_returns_none():
    assert open_source("sim://?speed=0").read() is None
