"""The firmware's command set over the simulated UART, at the protocol level (pyserial)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from emgfb.acquisition import avrsim
from emgfb.protocol import FrameDecoder, parse_board_line

pytestmark = pytest.mark.firmware

LINE = re.compile(
    r"EMGFB fw=\d+\.\d+\.\d+ board=uno ch=(\d+) fs=(\d+) bits=10 vref_mv=5000"
)


def test_boot_line_once_then_waits_for_start(start_board, boot_line, open_raw) -> None:
    board = start_board()
    boot = boot_line(board.port)
    assert LINE.fullmatch(boot.decode().strip()), boot
    # nothing else (no second line, no frames) before the barrier's answer
    assert open_raw(board.port).sync() == b""


def test_compile_time_defaults(start_board, boot_line) -> None:
    build = avrsim.build_firmware(
        avrsim.BUILD_DIR / "fs2000_ch4", fs_hz=2000, channels=4
    )
    board = start_board(build=build)
    info = parse_board_line(boot_line(board.port))
    assert (info.n_channels, info.fs, info.bits, info.vref_mv) == (4, 2000, 10, 5000)
    assert info.board == "uno"


def test_query_reports_settings(raw_board) -> None:
    info = raw_board.info()
    assert LINE.fullmatch(info.line)
    assert (info.n_channels, info.fs) == (6, 1000)
    assert raw_board.sync() == b""  # exactly one line


def test_fs_and_ch_change_settings_silently(raw_board) -> None:
    raw_board.send("fs 2000")
    raw_board.send("ch 3")
    assert raw_board.sync() == b""  # no reply on success
    info = raw_board.info()
    assert (info.n_channels, info.fs) == (3, 2000)
    raw_board.send("start")
    dec = FrameDecoder(3)
    frames = raw_board.read_frames(dec, 500)
    assert frames.counts.shape[1] == 3
    assert frames.tick[0] == 0 and dec.stats.bad_info == dec.stats.bytes_skipped == 0


@pytest.mark.parametrize(
    "command, reason",
    [
        ("hello", "unknown command 'hello'"),
        ("fs 0", "fs expects an integer 1.."),
        ("fs abc", "fs expects an integer 1.."),
        ("fs 99999", "fs expects an integer 1.."),
        ("fs -5", "fs expects an integer 1.."),
        ("fs", "unknown command 'fs'"),
        ("ch 0", "ch expects an integer 1..6"),
        ("ch 7", "ch expects an integer 1..6"),
        ("ch two", "ch expects an integer 1..6"),
        ("x" * 40, "line too long"),
    ],
)
def test_invalid_commands_answer_err_and_change_nothing(
    raw_board, command: str, reason: str
) -> None:
    reply = raw_board.ask(command)
    assert reply.startswith("ERR ") and reason in reply, reply
    info = raw_board.info()
    assert (info.n_channels, info.fs) == (6, 1000)


def test_fs_limit_depends_on_channel_count(raw_board) -> None:
    assert raw_board.ask("fs 4000").startswith("ERR fs expects an integer 1..")  # 6 ch
    raw_board.send("ch 1")
    raw_board.send("fs 4000")
    assert raw_board.sync() == b""
    reply = raw_board.ask("ch 6")
    assert reply.startswith("ERR ch 6 allows fs up to"), reply
    info = raw_board.info()
    assert (info.n_channels, info.fs) == (1, 4000)


@pytest.mark.parametrize("fs", [1000, 2000])
def test_start_stop_restart(raw_board, fs: int) -> None:
    raw_board.send(f"fs {fs}")
    raw_board.send("start")
    dec = FrameDecoder(6)
    first = raw_board.read_frames(dec, 300)
    # while streaming, commands other than stop get no text reply and change nothing
    raw_board.send("?")
    raw_board.send("fs 10")
    raw_board.send("bogus")
    more = raw_board.read_frames(dec, 300)
    raw_board.send("stop")
    tail = raw_board.sync()  # frames sampled before the stop, then silence
    rest = dec.feed(tail)
    ticks = np.concatenate([first.tick, more.tick, rest.tick])
    assert ticks[0] == 0 and np.array_equal(np.diff(ticks), np.ones(len(ticks) - 1))
    assert dec.flush() == 0  # the stream ended on a frame boundary
    assert dec.stats.crc_errors == dec.stats.bytes_skipped == dec.stats.overrun_flags == 0
    assert raw_board.info().fs == fs  # "fs 10" sent while streaming was ignored

    raw_board.send("start")  # seq restarts at 0
    dec2 = FrameDecoder(6)
    again = raw_board.read_frames(dec2, 100)
    assert again.tick[0] == 0 and dec2.stats.lost_ticks == 0


def test_slow_link_drops_are_counted_and_flagged(start_board, open_raw) -> None:
    """A board built for 250 kbaud cannot send 6 ch @ 2 kHz (36 kB/s): ticks it drops still
    advance seq, and the next frame after each gap carries the overrun flag."""
    build = avrsim.build_firmware(
        avrsim.BUILD_DIR / "fs2000_250k", fs_hz=2000, channels=6, baud=250_000
    )
    raw = open_raw(start_board(build=build).port)
    raw.sync()
    raw.send("start")
    dec = FrameDecoder(6)
    frames = raw.read_frames(dec, 3000)
    gaps = np.diff(frames.tick, prepend=-1) > 1
    assert dec.stats.crc_errors == dec.stats.bytes_skipped == 0
    assert np.array_equal(frames.overrun, gaps)  # flagged exactly after each gap
    lost = dec.stats.lost_ticks
    assert lost == int(frames.tick[-1]) + 1 - len(frames)
    # simavr sends 11 bits per byte: 250000 / 11 / 18 = 1263 of 2000 frames/s get through
    assert 0.3 < lost / (frames.tick[-1] + 1) < 0.45
