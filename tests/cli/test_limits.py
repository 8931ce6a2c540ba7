"""emgfb.limits: every number a user gives is checked against one declared range, with the
one-line message format of config.Table."""

from __future__ import annotations

import math

import pytest

from emgfb.config import Table
from emgfb.errors import ConfigError
from emgfb.limits import CHANNELS, RECORD_SECONDS, SAMPLE_RATE_HZ, SPEED, STEP_SECONDS, Limit


@pytest.mark.parametrize("value", [0, -1, 20_001, 1e9, math.nan, math.inf, -math.inf, "fast",
                                   True, None, "1e400"])
def test_sample_rate_outside_its_range_is_refused(value):
    with pytest.raises(ConfigError, match=r"^f\.toml: fs = .*: expected a number in "
                                          r"1\.\.20000 Hz$"):
        SAMPLE_RATE_HZ.check(value, "fs", "f.toml")


@pytest.mark.parametrize(("limit", "value", "expected"), [
    (SAMPLE_RATE_HZ, "250", 250.0), (CHANNELS, 16, 16), (CHANNELS, 2.0, 2),
    (SPEED, 0, 0.0), (RECORD_SECONDS, "0.001", 0.001), (STEP_SECONDS, 0, 0.0),
])
def test_values_inside_the_range_come_back_typed(limit, value, expected):
    got = limit.check(value, "x")
    assert got == expected and type(got) is type(expected)


def test_open_bounds_and_integers():
    assert not RECORD_SECONDS.ok(0) and RECORD_SECONDS.ok(1e-9)
    assert not CHANNELS.ok(2.5) and not CHANNELS.ok(True)
    assert Limit(float, 0, None, low_open=True).expected == "a number > 0"
    with pytest.raises(ConfigError, match=r"^--seconds = '-1': expected a number in 0 < x "):
        RECORD_SECONDS.check("-1", "--seconds")


def test_table_get_uses_the_same_limit_and_format():
    t = Table({"duration_s": 1e12, "n": "2"}, "p.toml", "step[0]")
    with pytest.raises(ConfigError) as err:
        t.get("duration_s", float, limit=STEP_SECONDS)
    assert str(err.value) == ("p.toml: step[0].duration_s = 1000000000000.0: expected a "
                              "number in 0..3600 s")
    assert Table({"d": 12}, "p.toml").get("d", float, limit=STEP_SECONDS) == 12.0


def test_sim_and_virtual_board_share_the_sample_rate_limit():
    from emgfb.acquisition.source import open_source
    from emgfb.acquisition.virtual_board import VirtualBoard

    for fs in (0.5, 20_001):
        with pytest.raises(ConfigError, match=r"fs = .*expected a number in 1\.\.20000 Hz"):
            open_source(f"sim://?fs={fs:g}")
        with pytest.raises(ConfigError, match=r"fs = .*expected a number in 1\.\.20000 Hz"):
            VirtualBoard(fs=fs)
