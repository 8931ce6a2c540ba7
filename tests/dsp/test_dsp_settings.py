"""DSP settings: defaults load, every mistake is one line naming file, key, value, allowed."""

from __future__ import annotations

import json

import pytest

from emgfb.dsp import DspConfig, load_dsp_config
from emgfb.errors import ConfigError


def test_default_config_matches_domain_defaults() -> None:
    cfg = load_dsp_config()
    assert (cfg.bandpass.low_hz, cfg.bandpass.high_hz, cfg.bandpass.order) == (20, 450, 4)
    assert cfg.notch.enabled and cfg.notch.mains_hz == 50 and cfg.notch.q == 30
    assert cfg.envelope.method == "rms" and cfg.envelope.window_ms == 100.0
    assert cfg.source.endswith("default.toml")
    d = cfg.as_dict()
    assert json.loads(json.dumps(d))["onset"]["k_on"] == 3.0
    assert DspConfig().as_dict()["bandpass"] == d["bandpass"]


@pytest.mark.parametrize(("text", "needle"), [
    ("[notch]\nmains_hz = 55\n", "notch.mains_hz = 55: expected one of 50, 60"),
    ("[notch]\nq = 'high'\n", "notch.q = 'high': expected a number"),
    ("[bandpass]\nlow_hz = 500.0\nhigh_hz = 450.0\n", "bandpass.high_hz = 450.0: expected a "
                                                       "value above low_hz = 500.0"),
    ("[envelope]\nwindow_ms = 'slow'\n", "envelope.window_ms = 'slow': expected milliseconds "
                                          "or one of 'fast', 'standard', 'smooth'"),
    ("[envelope]\nmethod = 'hilbert'\n", "envelope.method = 'hilbert': expected one of"),
    ("[envelope]\nwindow = 100\n", "unknown key envelope.window; expected one of"),
    ("[filters]\n", "unknown key filters"),
    ("[quality]\nmains_db_bad = -10\n", "quality.mains_db_bad = -10.0: expected a value "
                                          ">= mains_db_warn = -3.6"),
    ("[onset]\nk_off = 5.0\n", "onset.k_off = 5.0: expected a value <= k_on = 3.0"),
    ("[notch\n", "not valid TOML"),
])
def test_config_errors_name_file_key_value_and_allowed(tmp_path, text, needle) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_dsp_config(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and needle in msg


def test_partial_config_fills_defaults_and_presets(tmp_path) -> None:
    path = tmp_path / "smooth.toml"
    path.write_text("[envelope]\nwindow_ms = 'smooth'\n[notch]\nmains_hz = 60\n")
    cfg = load_dsp_config(path)
    assert cfg.envelope.window_ms == 250.0 and cfg.notch.mains_hz == 60
    assert cfg.bandpass.low_hz == 20.0


def test_missing_config_file() -> None:
    with pytest.raises(ConfigError, match="nope.toml: file not found"):
        load_dsp_config("nope.toml")


def test_stored_settings_round_trip_and_are_validated() -> None:
    from emgfb.dsp import dsp_config_from_dict
    from emgfb.errors import ConfigError

    cfg = load_dsp_config()
    assert dsp_config_from_dict(cfg.as_dict()) == cfg
    bad = cfg.as_dict()
    bad["notch"]["mains_hz"] = 55
    with pytest.raises(ConfigError, match=r"s\.h5: dsp_config: notch\.mains_hz = 55"):
        dsp_config_from_dict(bad, "s.h5: dsp_config")
