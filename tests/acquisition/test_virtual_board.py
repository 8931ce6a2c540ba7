"""VirtualBoard: firmware command set over a real pty, lossless ramp, exact fault accounting,
disconnects and resets, and the ``emgfb virtual-board`` command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import serial

from emgfb.acquisition.virtual_board import FaultPlan, VirtualBoard
from emgfb.errors import ConfigError
from emgfb.protocol import FrameDecoder, frame_length, parse_board_line

pytestmark = pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs POSIX ptys")


def _open(board: VirtualBoard) -> serial.Serial:
    """Open the board's port and get in step with it (a boot line may still be in flight)."""
    port = serial.Serial(board.port, timeout=2.0)
    port.write(b"sync\n")
    while True:
        line = port.readline()
        assert line, "no answer from the virtual board"
        if line == b"ERR unknown command 'sync'\n":
            return port


def _ask(port: serial.Serial, command: str) -> str:
    port.write(command.encode() + b"\n")
    line = port.readline()
    assert line.endswith(b"\n"), f"no reply to {command!r}"
    return line.decode().strip()


def _read_until_line(port: serial.Serial, dec: FrameDecoder, marker: bytes = b"EMGFB"):
    """Decode frames until a text line starting with ``marker`` arrives; return (frames, line)."""
    got, raw = [], b""
    while True:
        data = port.read(max(1, port.in_waiting))
        assert data, "stream went silent"
        raw += data
        at = raw.find(marker)
        if at < 0:  # keep a tail that may be the start of the marker
            at = max(len(raw) - len(marker) + 1, 0)
        elif raw.endswith(b"\n"):
            got.append(dec.feed(raw[:at]))
            return got, raw[at:].decode().strip()
        # a line may span reads: everything from the marker on waits for its end
        got.append(dec.feed(raw[:at]))
        raw = raw[at:]


def _read_frames(port: serial.Serial, dec: FrameDecoder, n: int):
    got = []
    while dec.next_tick < n:
        data = port.read(max(1, port.in_waiting))
        assert data, "stream went silent"
        got.append(dec.feed(data))
    tick = np.concatenate([g.tick for g in got])
    counts = np.concatenate([g.counts for g in got])
    return tick, counts


def test_board_answers_the_command_set():
    with VirtualBoard(speed=0, n_channels=6, fs=1000) as board:
        port = _open(board)
        info = parse_board_line(_ask(port, "?"))
        assert (info.board, info.n_channels, info.fs, info.bits, info.vref_mv) == (
            "virtual", 6, 1000.0, 10, 5000.0)
        assert _ask(port, "dance").startswith("ERR ")
        assert _ask(port, "fs 0").startswith("ERR fs")
        assert _ask(port, "ch 17").startswith("ERR ch")
        assert _ask(port, "ch two").startswith("ERR ch")
        port.write(b"fs 2000\nch 8\n")
        info = parse_board_line(_ask(port, "?"))
        assert (info.n_channels, info.fs) == (8, 2000.0)

        port.write(b"start\n?\nbogus\n")  # text is never sent while streaming
        dec = FrameDecoder(8)
        tick, counts = _read_frames(port, dec, 3000)
        assert tick[0] == 0 and counts.shape[1] == 8
        port.write(b"stop\n?\n")
        _, line = _read_until_line(port, dec)
        assert line == info.line
        assert dec.stats.lost_ticks == dec.stats.crc_errors == 0
        assert dec.stats.bytes_skipped == 0  # no ERR or EMGFB text inside the stream

        port.write(b"start\n")  # seq restarts at 0
        dec2 = FrameDecoder(8)
        tick2, _ = _read_frames(port, dec2, 10)
        assert tick2[0] == 0 and dec2.stats.lost_ticks == 0
        port.close()


def test_ramp_stream_is_lossless_across_the_seq_wrap():
    with VirtualBoard(speed=0, pattern="ramp", n_channels=4) as board:
        port = _open(board)
        port.write(b"start\n")
        dec = FrameDecoder(4)
        tick, counts = _read_frames(port, dec, 70_000)
        port.close()
    assert np.array_equal(tick, np.arange(len(tick)))
    expected = (tick[:, None] + np.arange(4)[None, :]) % 1024
    assert np.array_equal(counts, expected)
    assert dec.stats.crc_errors == dec.stats.lost_ticks == dec.stats.bytes_skipped == 0


@pytest.mark.parametrize(("n_channels", "seed"), [(6, 1), (8, 2)])
def test_injected_faults_equal_what_the_decoder_counts(n_channels, seed):
    plan = FaultPlan.from_spec(
        f"flip=0.002,drop_byte=0.002,drop_frame=0.002,garbage=0.002,stall=0.0005,seed={seed}"
    )
    with VirtualBoard(speed=0, pattern="ramp", n_channels=n_channels, faults=plan) as board:
        port = _open(board)
        port.write(b"start\n")
        dec = FrameDecoder(n_channels)
        tick, counts = _read_frames(port, dec, 100_000)
        port.write(b"stop\n?\n")
        got, _ = _read_until_line(port, dec)
        port.close()
        inj = board.injected
    tick = np.concatenate([tick] + [g.tick for g in got])
    counts = np.concatenate([counts] + [g.counts for g in got])
    # no corrupted frame was delivered: every sample still follows the ramp
    assert np.array_equal(counts, (tick[:, None] + np.arange(n_channels)) % 1024)
    assert min(inj.bit_flips, inj.dropped_bytes, inj.dropped_frames, inj.garbage_bursts,
               inj.stalls) > 10
    assert dec.stats.frames == inj.expected_frames == len(tick)
    assert dec.stats.crc_errors == inj.expected_crc_errors == inj.bit_flips + inj.dropped_bytes
    assert dec.stats.lost_ticks == inj.expected_lost_ticks
    assert dec.stats.bytes_skipped == inj.expected_bytes_skipped
    assert dec.stats.overrun_flags == inj.expected_overrun_flags
    assert inj.expected_overrun_flags + inj.unsettled_overrun_flags == inj.stalls
    assert dec.stats.bad_info == dec.stats.duplicates == 0
    L = frame_length(n_channels)
    assert inj.expected_bytes_skipped == (
        inj.garbage_bytes + L * inj.bit_flips + (L - 1) * inj.dropped_bytes)
    assert inj.expected_lost_ticks + inj.unsettled_lost_ticks == (
        inj.bit_flips + inj.dropped_bytes + inj.dropped_frames + inj.stalled_ticks)


def test_disconnect_repoints_the_link_to_a_rebooted_board(tmp_path):
    link = tmp_path / "vboard"
    plan = FaultPlan(disconnect_every=0.3, outage_ms=20)
    with VirtualBoard(speed=0, pattern="ramp", faults=plan, link_path=str(link)) as board:
        assert os.readlink(link) == os.ttyname(board._slave) and board.port == str(link)
        port = _open(board)
        port.write(b"start\n")
        dec = FrameDecoder(6)
        with pytest.raises(OSError):  # pyserial's SerialException is an OSError
            while True:
                data = port.read(max(1, port.in_waiting))
                assert data, "stream went silent instead of disconnecting"
                dec.feed(data)
        port.close()
        assert dec.stats.frames == 300 and dec.stats.lost_ticks == 0  # all sent was read
        assert board.wait_connections(2, timeout=5.0)
        port = _open(board)
        assert _ask(port, "?").startswith("EMGFB ")
        port.write(b"start\n")
        tick, _ = _read_frames(port, FrameDecoder(6), 10)
        assert tick[0] == 0
        port.close()
        assert board.injected.disconnects >= 1
    assert not link.exists()


def test_reset_reboots_in_place_and_waits_for_start():
    plan = FaultPlan(reset_every=0.25)
    with VirtualBoard(speed=0, pattern="ramp", faults=plan) as board:
        port = _open(board)
        port.write(b"start\n")
        dec = FrameDecoder(6)
        _, line = _read_until_line(port, dec)
        assert line == board.info.line
        assert dec.stats.frames == 250 and board.injected.resets == 1
        assert not board.streaming
        port.write(b"start\n")
        tick, _ = _read_frames(port, FrameDecoder(6), 5)
        assert tick[0] == 0
        port.close()


def test_paced_board_keeps_to_its_clock():
    with VirtualBoard(speed=4.0, fs=1000, pattern="ramp") as board:
        port = _open(board)
        port.write(b"start\n")
        t0 = time.monotonic()
        tick, _ = _read_frames(port, FrameDecoder(6), 1000)  # 0.25 s at 4 x real time
        elapsed = time.monotonic() - t0
        port.close()
    assert np.array_equal(tick[:1000], np.arange(1000))
    assert 0.2 < elapsed < 5.0


def test_emg_pattern_is_the_seeded_model():
    with VirtualBoard(speed=0, seed=9) as a, VirtualBoard(speed=0, seed=9) as b:
        streams = []
        for board in (a, b):
            port = _open(board)
            port.write(b"start\n")
            streams.append(_read_frames(port, FrameDecoder(6), 2000)[1][:2000])
            port.close()
    assert np.array_equal(streams[0], streams[1])
    assert streams[0].std() > 0


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [("flip=2", "flip=2.0"), ("jitter=0.1", "'jitter=0.1'"), ("flip", "'flip'"),
     ("stall=x", "stall='x'"), ("garbage_max=0", "garbage_max=0")],
)
def test_bad_fault_specs_are_config_errors(spec, fragment):
    with pytest.raises(ConfigError, match=None) as err:
        FaultPlan.from_spec(spec)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_fault_spec_parses_every_documented_key():
    plan = FaultPlan.from_spec(
        "flip=0.001, drop_frame=0.001,garbage=0.0005,drop_byte=0.0005,disconnect_every=5,"
        "stall=0.0001,reset_every=7,stall_ms=50,outage_ms=100,garbage_max=8,seed=3"
    )
    assert (plan.flip, plan.disconnect_every, plan.garbage_max, plan.seed) == (0.001, 5, 8, 3)
    assert FaultPlan.from_spec("") == FaultPlan()


def test_cli_serves_a_pty_until_terminated():
    proc = subprocess.Popen(
        [sys.executable, "-m", "emgfb", "virtual-board", "--speed", "0", "--seed", "4",
         "--faults", "drop_frame=0.01"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/pts/") or os.path.islink(path)
        with serial.Serial(path, timeout=5.0) as port:
            port.write(b"?\n")
            line = port.readline()
            assert line.startswith(b"EMGFB ")
            port.write(b"start\n")
            _read_frames(port, FrameDecoder(6), 2000)
            port.write(b"stop\n")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "dropped_frames" in out and "frames_sent" in out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [(["--channels", "20"], "--channels = '20': expected an integer in 1..16"),
     (["--faults", "flip=0.5"], "flip=0.5"),
     (["--speed", "-2"], "--speed = '-2': expected a number in 0..1000")],
)
def test_cli_rejects_bad_options_with_one_line(argv, fragment, capsys):
    from emgfb.cli import main

    assert main(["virtual-board", *argv]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1
