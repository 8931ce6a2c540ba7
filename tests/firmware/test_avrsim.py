"""avrsim's file format and helpers (no toolchain needed)."""

from __future__ import annotations

import numpy as np
import pytest

from emgfb.acquisition import avrsim
from emgfb.errors import ConfigError, DataFormatError


def test_waveform_file_round_trip(tmp_path, rng) -> None:
    mv = rng.integers(0, 5001, size=(257, 6))
    path = avrsim.write_waveform_file(tmp_path / "w.wave", mv, rate_hz=2000)
    assert path.read_text().splitlines()[:3] == ["emgfb-wave 1", "rate_hz 2000", "channels 6"]
    rate, back = avrsim.read_waveform_file(path)
    assert rate == 2000 and np.array_equal(back, mv)


@pytest.mark.parametrize(
    "text, message",
    [
        ("rate_hz 1\nchannels 1\n5\n", "expected 'emgfb-wave 1'"),
        ("emgfb-wave 1\nchannels 2\n1 2\n", "needs rate_hz"),
        ("emgfb-wave 1\nrate_hz 10\nchannels 2\n1 2 3\n", "rows have 3 values, channels=2"),
    ],
)
def test_bad_waveform_files_are_named(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "bad.wave"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=message) as err:
        avrsim.read_waveform_file(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_waveform_must_be_integer_millivolts(tmp_path) -> None:
    with pytest.raises(ConfigError, match="expected integer millivolts"):
        avrsim.write_waveform_file(tmp_path / "f.wave", np.full((3, 2), 1.5), rate_hz=100)
    with pytest.raises(ConfigError, match="rate_hz=0"):
        avrsim.write_waveform_file(tmp_path / "f.wave", np.zeros((3, 2), int), rate_hz=0)


def test_expected_counts_follow_simavr() -> None:
    mv = np.array([-5, 0, 4, 5, 2500, 4999, 5000, 6000])
    assert avrsim.expected_counts(mv).tolist() == [0, 0, 0, 1, 511, 1022, 1023, 1023]


def test_sine_argument_and_channel_check() -> None:
    assert avrsim.Sine(2, 50.0, 1000.0, 2500.0).as_arg() == "2:50.0:1000.0:2500.0:0.0"
    with pytest.raises(ConfigError, match="channel=16"):
        avrsim.Sine(16, 50.0, 1.0).as_arg()


def test_board_lifecycle_errors_before_any_process(tmp_path) -> None:
    board = avrsim.AvrSimBoard(waveform=tmp_path / "missing.wave")
    with pytest.raises(RuntimeError, match="after start"):
        _ = board.port
    with pytest.raises(ConfigError, match="missing.wave does not exist"):
        board.start()
    assert board.stop() is None and not board.running
    with pytest.raises(ConfigError, match="speed=-1"):
        avrsim.AvrSimBoard(speed=-1)
