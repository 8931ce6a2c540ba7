"""Firmware in the loop: the real Uno firmware in simavr, read through its pty.

Injected sines come back at their frequency and amplitude, a recorded waveform comes back
bit-exact, and sequence numbers stay contiguous across the 16-bit wrap with no CRC errors,
at 6 ch @ 1 kHz and 6 ch @ 2 kHz.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from emgfb.acquisition import avrsim
from emgfb.protocol import FrameDecoder

pytestmark = pytest.mark.firmware

N_CH = 6
# Whole numbers of cycles in a 32 s window: each sine sits exactly on an FFT bin.
FREQS_HZ = (7.0, 23.0, 50.0, 111.0, 237.0, 401.0)
AMPS_MV = (2000.0, 1500.0, 1000.0, 600.0, 300.0, 150.0)
WINDOW_S = 32
WRAP_FRAMES = 65536 + 4000


def _stream(raw, fs: int, n_frames: int):
    raw.sync()  # the boot line may still be on its way
    raw.send(f"fs {fs}")
    raw.send(f"ch {N_CH}")
    info = raw.info()
    assert (info.fs, info.n_channels) == (fs, N_CH)
    raw.send("start")
    dec = FrameDecoder(N_CH)
    frames = raw.read_frames(dec, n_frames)
    raw.send("stop")
    dec.feed(raw.sync())
    return frames, dec


@pytest.mark.parametrize("fs", [1000, 2000])
def test_sines_come_back_and_seq_wraps(start_board, open_raw, fs: int) -> None:
    sines = [
        avrsim.Sine(ch, f, a, offset_mv=2500.0, phase_deg=17.0 * ch)
        for ch, (f, a) in enumerate(zip(FREQS_HZ, AMPS_MV, strict=True))
    ]
    board = start_board(sines=sines)
    n_frames = max(WRAP_FRAMES, WINDOW_S * fs)
    frames, dec = _stream(open_raw(board.port), fs, n_frames)

    # lossless: contiguous ticks from 0 across the 16-bit wrap, nothing corrupted or dropped
    assert len(frames) >= n_frames > 65536
    assert frames.tick[0] == 0
    assert np.array_equal(frames.tick, np.arange(len(frames)))
    assert dec.stats.crc_errors == dec.stats.bytes_skipped == dec.stats.lost_ticks == 0
    assert dec.stats.overrun_flags == 0 and not frames.overrun.any()

    n = WINDOW_S * fs
    spectrum = np.fft.rfft(frames.counts[:n].astype(float), axis=0)
    freqs = np.fft.rfftfreq(n, 1.0 / fs)
    for ch, (f, a) in enumerate(zip(FREQS_HZ, AMPS_MV, strict=True)):
        mag = np.abs(spectrum[1:, ch])
        peak = freqs[1 + int(np.argmax(mag))]
        amplitude_lsb = 2.0 * mag.max() / n
        expected_lsb = a * 1023 / 5000
        assert peak == f, (ch, peak)
        assert abs(amplitude_lsb - expected_lsb) <= 1.0, (ch, amplitude_lsb, expected_lsb)
        # midscale offset survives too (floor() costs half an LSB on average)
        mean = frames.counts[:n, ch].mean()
        assert abs(mean - (2500 * 1023 / 5000 - 0.5)) <= 1.0, (ch, mean)
    stats = board.stop()
    assert stats is not None and stats.adc_conversions >= N_CH * n_frames


def _recorded_millivolts() -> np.ndarray:
    """A real 6-channel recording (Chords-Python, 14-bit counts) scaled to 0..5000 mV."""
    path = avrsim.FIRMWARE_DIR.parent / "data" / "formats" / "chords-python_emg_sample.csv"
    with open(path, newline="") as f:
        rows = list(csv.reader(f))[1:]
    counts = np.array([[float(v) for v in row[2:8]] for row in rows])
    return np.rint(counts * 5000 / 16383).astype(np.int64)


@pytest.mark.parametrize("fs", [1000, 2000])
def test_recorded_waveform_comes_back_bit_exact(start_board, open_raw, tmp_path, fs) -> None:
    mv = _recorded_millivolts()
    assert mv.shape[1] == N_CH and mv.min() == 0 and mv.max() == 5000  # rails included
    wave = avrsim.write_waveform_file(tmp_path / "chords.wave", mv, rate_hz=fs)
    rate, back = avrsim.read_waveform_file(wave)
    assert rate == fs and np.array_equal(back, mv)

    board = start_board(waveform=wave)
    n_frames = len(mv) + 1000  # plays the file once, then wraps to its start
    frames, dec = _stream(open_raw(board.port), fs, n_frames)

    assert np.array_equal(frames.tick, np.arange(len(frames)))
    assert dec.stats.crc_errors == dec.stats.lost_ticks == 0
    expected = avrsim.expected_counts(mv[frames.tick % len(mv)])
    mismatch = np.argwhere(frames.counts != expected)
    assert len(mismatch) == 0, f"{len(mismatch)} samples differ, first at (tick, ch) {mismatch[0]}"
