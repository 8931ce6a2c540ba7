"""Firmware in the loop: the real Uno firmware in simavr, read by the real serial driver.

Injected sines come back at their frequency and amplitude, a recorded waveform comes back
bit-exact, and sequence numbers stay contiguous across the 16-bit wrap with no CRC errors,
at 6 ch @ 1 kHz and 6 ch @ 2 kHz.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

import numpy as np
import pytest

from emgfb.acquisition import avrsim, open_source
from emgfb.acquisition.source import SourceStats
from emgfb.protocol import FrameDecoder

pytestmark = pytest.mark.firmware

N_CH = 6
# Whole numbers of cycles in a 32 s window: each sine sits exactly on an FFT bin.
FREQS_HZ = (7.0, 23.0, 50.0, 111.0, 237.0, 401.0)
AMPS_MV = (2000.0, 1500.0, 1000.0, 600.0, 300.0, 150.0)
WINDOW_S = 32
WRAP_FRAMES = 65536 + 4000
IO_TIMEOUT = 20.0


@dataclass
class Acquired:
    tick: np.ndarray
    counts: np.ndarray
    overrun: np.ndarray
    stats: SourceStats
    host_time: np.ndarray


def _acquire(board: avrsim.AvrSimBoard, open_raw, fs: int, n_frames: int) -> Acquired:
    """Set the rate at the protocol level, then read through the real serial driver."""
    raw = open_raw(board.port)
    raw.sync()
    raw.send(f"fs {fs}")
    raw.send(f"ch {N_CH}")
    assert raw.sync() == b""
    raw.close()  # one reader per pty

    # poll: the driver batches reads every 20 ms by default (real time); the simulator runs
    # several times faster, so read more often. silence: a busy CI machine may starve the
    # simulator for a moment; that must not count as an unplug.
    source = open_source(f"{board.url}&poll=0.002&silence=10")
    chunks = []
    with source:
        assert (source.info.fs, source.info.n_channels, source.info.board) == (fs, N_CH, "uno")
        got = 0
        while got < n_frames:
            chunk = source.read(timeout=IO_TIMEOUT)
            assert chunk is not None, f"no frames for {IO_TIMEOUT} s after {got}"
            chunks.append(chunk)
            got += len(chunk)
    assert source.status.state == "stopped", source.status
    rest = source.read(timeout=0)  # frames drained by stop()
    chunks += [rest] if rest is not None else []
    return Acquired(
        np.concatenate([c.tick for c in chunks]),
        np.concatenate([c.counts for c in chunks]),
        np.concatenate([c.overrun for c in chunks]),
        source.stats,
        np.array([c.host_time for c in chunks]),
    )


@pytest.mark.parametrize("fs", [1000, 2000])
def test_sines_come_back_and_seq_wraps(start_board, open_raw, fs: int) -> None:
    sines = [
        avrsim.Sine(ch, f, a, offset_mv=2500.0, phase_deg=17.0 * ch)
        for ch, (f, a) in enumerate(zip(FREQS_HZ, AMPS_MV, strict=True))
    ]
    board = start_board(sines=sines)
    n_frames = max(WRAP_FRAMES, WINDOW_S * fs)
    frames = _acquire(board, open_raw, fs, n_frames)

    # lossless: contiguous ticks from 0 across the 16-bit wrap, nothing corrupted or dropped
    assert len(frames.tick) >= n_frames > 65536
    assert np.array_equal(frames.tick, np.arange(len(frames.tick)))
    st = frames.stats
    assert st.frames == len(frames.tick)
    assert st.lost_ticks == st.crc_errors == st.bytes_skipped == 0
    assert st.overrun_flags == st.reconnects == 0 and not frames.overrun.any()
    assert np.all(np.diff(frames.host_time) >= 0)

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
    # firmware efficiency guard (simulated cycles, deterministic): ~21 % at 1 kHz, ~41 % at 2
    assert stats.cpu_load_sampling < 0.25 * fs / 1000, stats


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
    frames = _acquire(board, open_raw, fs, n_frames)

    assert np.array_equal(frames.tick, np.arange(len(frames.tick)))
    assert frames.stats.crc_errors == frames.stats.lost_ticks == frames.stats.bytes_skipped == 0
    expected = avrsim.expected_counts(mv[frames.tick % len(mv)])
    mismatch = np.argwhere(frames.counts != expected)
    assert len(mismatch) == 0, f"{len(mismatch)} samples differ, first at (tick, ch) {mismatch[0]}"

    # a second run (protocol level) plays the file from its first row again
    raw = open_raw(board.port)
    raw.sync()
    raw.send("start")
    again = raw.read_frames(FrameDecoder(N_CH), 2000)
    assert np.array_equal(again.counts, avrsim.expected_counts(mv[again.tick % len(mv)]))
    raw.send("stop")
    raw.sync()
    stats = board.stop()
    assert stats is not None and stats.sampling_runs == 3  # boot warm-up + two starts
