"""Board descriptors, EMG front-ends and the compatibility rules (emgfb.hardware), and where
the app applies them: ``emgfb record --frontend``, ``LiveSession(frontend=)``, ``emgfb boards``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from emgfb.acquisition import avrsim
from emgfb.cli import main
from emgfb.config import FrontendSpec
from emgfb.config import load_frontend as config_load_frontend
from emgfb.errors import ConfigError
from emgfb.hardware import (
    board_names,
    check_frontend,
    frontend_names,
    load_board,
    load_frontend,
)


def _firmware_fs_max(n: int, baud: int = 1_000_000) -> int:
    """The firmware's fs_max() (firmware/emgfb/emgfb.ino), in the same integer arithmetic."""
    adc = (16_000_000 * 9 // 10) // (n * (13 * 64 + 64))
    link = (baud * 9 // 10) // (10 * (6 + 2 * n))
    return min(adc, link, 10_000)


def test_bundled_boards() -> None:
    assert board_names() == ["mega", "nano", "uno"]
    expected = {"uno": (6, 6), "nano": (8, 8), "mega": (16, 8)}
    for name in board_names():
        b = load_board(name)
        assert b.name == name and b.mcu == avrsim.BOARD_MCUS[name]
        assert (b.analog_inputs, b.default_channels) == expected[name]
        assert (b.adc_bits, b.vref_mv, b.baud, b.default_fs) == (10, 5000, 1_000_000, 1000)
        assert b.fs_max_hz == tuple(_firmware_fs_max(n) for n in range(1, b.analog_inputs + 1))
        assert b.pins[-1] == f"A{b.analog_inputs - 1}" and b.simulated
    mega = load_board("mega")
    assert mega.fs_max(16) == 1004 and mega.fs_max(6) == 2678
    mega.check_rate(1000, 16)
    with pytest.raises(ConfigError, match=r"mega.toml: fs = 2000 Hz with 16 channels: .*1\.\.1004"):
        mega.check_rate(2000, 16)
    with pytest.raises(ConfigError, match="17 channels"):
        mega.fs_max(17)


@pytest.mark.parametrize(
    "text, match",
    [
        ("fs_max_hz = [100, 50]", r"fs_max_hz = \[100, 50\]: expected 6 positive integers"),
        ("fs_max_hz = [1, 2, 3, 4, 5, 6]", "expected non-increasing rates"),
        ("fs_max_hz = [6, 5, 4, 3, 2, 1]\nturbo = true", "unknown key turbo"),
        ("fs_max_hz = [6, 5, 4, 3, 2, 1]\nadc_bits = '10'", "adc_bits = '10': expected an integer"),
    ],
)
def test_board_descriptor_errors_name_file_key_value(tmp_path: Path, text: str, match: str):
    base = load_board("uno")
    lines = [f"{k} = {v!r}".replace("'", '"') for k, v in {
        "name": "x", "mcu": base.mcu, "vref_mv": 5000, "analog_inputs": 6,
        "default_channels": 6, "default_fs": 1, "baud": 1_000_000}.items()]
    if "adc_bits" not in text:
        lines.append("adc_bits = 10")
    path = tmp_path / "board.toml"
    path.write_text("\n".join(lines) + "\n" + text + "\n")
    with pytest.raises(ConfigError, match=match) as err:
        load_board(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_bundled_frontends_and_scale() -> None:
    assert frontend_names() == ["bioamp", "generic", "myoware2-raw", "olimex-ekg-emg"]
    uno = load_board("uno")
    scale = {name: uno.uv_per_count(load_frontend(name)) for name in frontend_names()}
    assert scale["bioamp"] == pytest.approx(5000e3 / 1024 / 2420)  # ~2.02 uV per count
    assert scale["myoware2-raw"] == pytest.approx(24.41, abs=0.01)
    assert scale["generic"] == pytest.approx(2.44, abs=0.01)
    # the old entry point still works and now knows its file
    fe = config_load_frontend("bioamp")
    assert isinstance(fe, FrontendSpec) and fe.source.endswith("frontends/bioamp.toml")
    assert "EXG Pill" in fe.description


def test_frontend_below_50_hz_is_refused_with_a_one_line_reason() -> None:
    fe = load_frontend("olimex-ekg-emg")
    with pytest.raises(ConfigError) as err:
        check_frontend(fe, bits=10, vref_mv=5000, fs=1000)
    msg = str(err.value)
    assert msg.startswith(fe.source) and "\n" not in msg
    assert "band_hz = [0.16, 40]" in msg and "below 50 Hz" in msg


def test_sample_rate_too_low_for_the_band_is_refused() -> None:
    fe = load_frontend("bioamp")  # 72-720 Hz
    with pytest.raises(ConfigError, match=r"fs = 140 Hz is too low .* must exceed 72 Hz"):
        check_frontend(fe, bits=10, vref_mv=5000, fs=140)
    check_frontend(fe, bits=10, vref_mv=5000, fs=200, log_warnings=False)  # poor but possible


def test_warnings_coarse_scale_and_aliasing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="emgfb.hardware"):
        coarse = check_frontend(load_frontend("myoware2-raw"), bits=10, vref_mv=5000,
                                fs=1000, board="uno")
    assert len(coarse.warnings) == 1 and "invisible" in coarse.warnings[0]
    assert "24.4 uV per count on the uno" in coarse.warnings[0]
    assert "need gain >= 1628" in coarse.warnings[0]
    assert [r.getMessage() for r in caplog.records] == list(coarse.warnings)

    bioamp = load_frontend("bioamp")
    aliasing = check_frontend(bioamp, bits=10, vref_mv=5000, fs=1000, log_warnings=False)
    assert len(aliasing.warnings) == 1 and "above Nyquist 500 Hz" in aliasing.warnings[0]
    clean = check_frontend(bioamp, bits=10, vref_mv=5000, fs=2000, log_warnings=False)
    assert clean.warnings == () and clean.uv_per_count == pytest.approx(2.018, abs=1e-3)
    # a 12-bit 3.3 V board behind the MyoWare is fine: 3300/4096/200 = 4.0 uV -> still coarse
    assert check_frontend(load_frontend("myoware2-raw"), bits=12, vref_mv=3300, fs=2000,
                          log_warnings=False).warnings
    # the template as shipped is usable at 1 kHz
    assert check_frontend(load_frontend("generic"), bits=10, vref_mv=5000, fs=1000,
                          log_warnings=False).warnings == ()


def test_frontend_without_a_file_is_named_in_messages() -> None:
    fe = FrontendSpec("lab-amp", gain=500.0, band_hz=(10.0, 30.0), offset_mv=2500.0)
    with pytest.raises(ConfigError, match="front-end 'lab-amp': band_hz = \\[10, 30\\]"):
        check_frontend(fe, bits=10, vref_mv=5000, fs=1000)


def test_cli_boards_lists_and_checks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boards"]) == 0
    out = capsys.readouterr().out
    for name in ("uno", "nano", "mega", "bioamp", "myoware2-raw", "olimex-ekg-emg", "generic"):
        assert name in out
    assert "refused for facial sEMG" in out and "max 1004 Hz @ 16 ch" in out
    assert main(["boards", "--board", "nano", "--frontend", "bioamp", "--fs", "2000"]) == 0
    captured = capsys.readouterr()
    assert "pins A0, A1, A2, A3, A4, A5, A6, A7" in captured.out and captured.err == ""
    assert main(["boards", "--board", "uno", "--frontend", "olimex-ekg-emg"]) == 2
    assert "below 50 Hz" in capsys.readouterr().err


@pytest.fixture
def vboard():  # noqa: ANN201 - a running VirtualBoard on a pty
    from emgfb.acquisition.virtual_board import VirtualBoard

    with VirtualBoard(n_channels=2, fs=1000, speed=1, pattern="ramp") as board:
        yield board


def test_record_refuses_an_unsuited_frontend(vboard, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s.h5"
    code = main(["record", "--source", f"serial://{vboard.port}", "--seconds", "0.2",
                 "-o", str(out), "--frontend", "olimex-ekg-emg"])
    err = capsys.readouterr().err
    assert code == 2 and "olimex-ekg-emg.toml: band_hz = [0.16, 40]" in err
    assert not out.exists()


def test_live_session_refuses_an_unsuited_frontend_and_warns_on_a_coarse_one(
    vboard, caplog: pytest.LogCaptureFixture
) -> None:
    from emgfb.live import LiveSession

    session = LiveSession(f"serial://{vboard.port}", frontend="olimex-ekg-emg")
    with pytest.raises(ConfigError, match="below 50 Hz"):
        session.start()
    assert session.source is not None and session.source.status.state == "stopped"

    with caplog.at_level(logging.WARNING, logger="emgfb.hardware"):
        with LiveSession(f"serial://{vboard.port}", frontend="myoware2-raw") as live:
            assert live.uv_per_count == pytest.approx(24.41, abs=0.01)
    assert any("invisible" in r.getMessage() for r in caplog.records)
