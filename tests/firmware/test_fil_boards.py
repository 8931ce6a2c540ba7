"""The one sketch on every board: Uno, Nano (A6/A7) and Mega 2560 (A8..A15 via MUX5).

All three build; the board descriptors (emgfb/configs/boards) agree with what each firmware
reports and accepts; the Nano and the Mega run in simavr and pass a shorter version of the
Uno's firmware-in-the-loop checks (test_fil.py): every channel's sine back at its frequency
and amplitude through the real serial driver, contiguous ticks, no CRC errors, a waveform
file back bit-exact on every input, and the command set's per-board limits.
"""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

from emgfb.acquisition import avrsim, open_source
from emgfb.hardware import load_board
from emgfb.protocol import FrameDecoder, parse_board_line

pytestmark = pytest.mark.firmware

SIM_BOARDS = ("nano", "mega")
WINDOW_S = 4  # whole cycles of every test frequency in 4 s: each sine sits on an FFT bin
IO_TIMEOUT = 20.0


@pytest.fixture(scope="session")
def board_builds(fw_build: avrsim.FirmwareBuild) -> dict[str, avrsim.FirmwareBuild]:
    """Default builds of every board (the Uno's is the session's ``fw_build``)."""
    return {"uno": fw_build} | {b: avrsim.build_firmware(board=b) for b in SIM_BOARDS}


@pytest.mark.parametrize("board", ["uno", *SIM_BOARDS])
def test_every_board_builds_within_its_chip(board_builds, board: str) -> None:
    build = board_builds[board]
    spec = load_board(board)
    assert build.elf.name == f"emgfb_{board}.elf" and build.elf.with_suffix(".hex").exists()
    assert avrsim.BOARD_MCUS[board] == spec.mcu == build.mcu
    size = subprocess.run(["avr-size", "-A", str(build.elf)], capture_output=True, text=True,
                          check=True).stdout
    sections = {m[0]: int(m[1]) for m in re.findall(r"^\.(\w+)\s+(\d+)", size, re.M)}
    flash, ram = sections["text"] + sections["data"], sections["data"] + sections["bss"]
    flash_kb, ram_kb = {"atmega328p": (32, 2), "atmega2560": (256, 8)}[spec.mcu]
    assert flash < 0.2 * flash_kb * 1024 and ram < 0.35 * ram_kb * 1024, (flash, ram)


@pytest.mark.parametrize("board", ["uno", *SIM_BOARDS])
def test_descriptor_matches_the_firmware(start_board, open_raw, boot_line, board_builds,
                                         board: str) -> None:
    spec = load_board(board)
    sim = start_board(build=board_builds[board])
    info = parse_board_line(boot_line(sim.port))
    assert info.board == board
    assert (info.n_channels, info.fs) == (spec.default_channels, spec.default_fs)
    assert (info.bits, info.vref_mv) == (spec.adc_bits, spec.vref_mv)
    raw = open_raw(sim.port)
    raw.sync()
    assert raw.ask(f"ch {spec.analog_inputs + 1}") == \
        f"ERR ch expects an integer 1..{spec.analog_inputs}"
    raw.send("fs 1")  # every channel count is allowed at 1 Hz
    for n in sorted({1, 2, spec.default_channels, spec.analog_inputs}):
        raw.send(f"ch {n}")
        reply = raw.ask("fs 99999")
        assert reply == f"ERR fs expects an integer 1..{spec.fs_max(n)} Hz for ch={n}", reply
        raw.send(f"fs {spec.fs_max(n)}")
        assert raw.sync() == b""  # the limit itself is accepted
        raw.send("fs 1")


def _sines(n: int) -> list[avrsim.Sine]:
    return [avrsim.Sine(ch, 7.0 + 13.0 * ch, 1000.0 + 50.0 * ch, 2500.0, 11.0 * ch)
            for ch in range(n)]


def _read_source(url: str, n_frames: int):  # noqa: ANN202 - (tick, counts, stats, info)
    source = open_source(f"{url}&poll=0.002&silence=10")
    ticks, counts = [], []
    with source:
        info = source.info
        got = 0
        for _ in range(100000):
            chunk = source.read(timeout=IO_TIMEOUT)
            assert chunk is not None, f"no frames for {IO_TIMEOUT} s after {got}"
            ticks.append(chunk.tick)
            counts.append(chunk.counts)
            got += len(chunk)
            if got >= n_frames:
                break
    return np.concatenate(ticks), np.concatenate(counts), source.stats, info


@pytest.mark.parametrize("board", SIM_BOARDS)
def test_all_inputs_sines_come_back(start_board, open_raw, board_builds, board: str) -> None:
    spec = load_board(board)
    n, fs = spec.analog_inputs, 1000  # Mega: 16 ch, within its 1004 Hz limit
    sim = start_board(build=board_builds[board], sines=_sines(n))
    raw = open_raw(sim.port)
    raw.sync()
    raw.send(f"ch {n}")
    raw.send(f"fs {fs}")
    assert raw.sync() == b""
    raw.close()
    tick, counts, st, info = _read_source(sim.url, WINDOW_S * fs)
    assert (info.board, info.n_channels, info.fs) == (board, n, fs)
    assert np.array_equal(tick, np.arange(len(tick)))
    assert st.lost_ticks == st.crc_errors == st.bytes_skipped == st.overrun_flags == 0
    m = WINDOW_S * fs
    spectrum = np.abs(np.fft.rfft(counts[:m].astype(float), axis=0))
    freqs = np.fft.rfftfreq(m, 1.0 / fs)
    for sine in _sines(n):
        mag = spectrum[1:, sine.channel]
        assert freqs[1 + int(np.argmax(mag))] == sine.freq_hz, sine
        amplitude_lsb = 2.0 * mag.max() / m
        assert abs(amplitude_lsb - sine.amplitude_mv * 1023 / 5000) <= 1.0, (sine, amplitude_lsb)
    stats = sim.stop()
    assert stats is not None and stats.adc_conversions >= n * m


@pytest.mark.parametrize("board", SIM_BOARDS)
def test_waveform_bit_exact_on_every_input(start_board, open_raw, board_builds, tmp_path,
                                           board: str) -> None:
    spec = load_board(board)
    n, fs = spec.analog_inputs, 1000
    rng = np.random.default_rng(7)
    mv = rng.integers(0, 5001, size=(1500, n))
    mv[0], mv[1] = 0, 5000  # the rails
    wave = avrsim.write_waveform_file(tmp_path / f"{board}.wave", mv, rate_hz=fs)
    sim = start_board(build=board_builds[board], waveform=wave)
    raw = open_raw(sim.port)
    raw.sync()
    raw.send(f"ch {n}")
    raw.send("start")
    dec = FrameDecoder(n)
    frames = raw.read_frames(dec, len(mv) + 200)  # the file once, then its start again
    raw.send("stop")
    raw.sync()
    assert np.array_equal(frames.tick, np.arange(len(frames.tick)))
    assert dec.stats.crc_errors == dec.stats.bytes_skipped == dec.stats.lost_ticks == 0
    expected = avrsim.expected_counts(mv[frames.tick % len(mv)])
    bad = np.argwhere(frames.counts != expected)
    assert len(bad) == 0, f"{len(bad)} samples differ, first at (tick, ch) {bad[0]}"
