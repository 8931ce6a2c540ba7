"""Exact fault accounting: SerialSource's counters equal what the virtual board injected.

Issue 2, "Done when": with faults injected by a writer that knows what it injected (bit
flips, dropped bytes and frames, garbage bursts, stalls, disconnects, resets), the
driver's counters equal the injected numbers and no corrupted frame is delivered as data.
The writer is :class:`emgfb.acquisition.virtual_board.VirtualBoard` on a real pty, sending
a counting ramp (sample ``c`` at tick ``t`` of a run is ``(t + c) mod 1024``).
"""

from __future__ import annotations

import numpy as np
import pytest

from emgfb.acquisition.source import open_source
from emgfb.acquisition.virtual_board import FaultPlan, VirtualBoard

from testkit.pty_board import UNPACED_QUEUE, drain, read_until


def ramp_ok(run_tick: np.ndarray, counts: np.ndarray) -> np.ndarray:
    want = (run_tick[:, None] + np.arange(counts.shape[1])) % 1024
    return np.all(counts == want, axis=1)


def test_frame_faults_are_counted_exactly_and_never_delivered():
    plan = FaultPlan(flip=0.004, drop_byte=0.004, drop_frame=0.004, garbage=0.004,
                     stall=0.001, stall_ms=3, seed=11)
    with VirtualBoard(n_channels=6, fs=2000, speed=0, pattern="ramp", faults=plan) as board:
        src = open_source(f"serial://{board.port}?reset_wait=0&poll=0&{UNPACED_QUEUE}")
        src.start()
        chunks = read_until(src, lambda c: sum(map(len, c)) >= 20_000)
        src.stop()
        inj = board.injected
    tick, counts = drain(src, chunks)
    st = src.stats
    for kind in ("bit_flips", "dropped_bytes", "dropped_frames", "garbage_bursts", "stalls"):
        assert getattr(inj, kind) > 5, kind  # every fault kind really happened
    assert (st.frames, st.crc_errors, st.lost_ticks, st.bytes_skipped, st.overrun_flags) == (
        inj.expected_frames, inj.expected_crc_errors, inj.expected_lost_ticks,
        inj.expected_bytes_skipped, inj.expected_overrun_flags,
    ), inj
    assert len(tick) == st.frames and ramp_ok(tick, counts).all()
    assert st.frames + st.lost_ticks == tick[-1] + 1  # every tick is a frame or a counted loss
    assert st.reconnects == 0


@pytest.mark.parametrize("event", ["disconnect", "reset"])
def test_disconnects_and_resets_reconnect_and_account_the_gaps(tmp_path, event):
    fs = 1000
    plan = FaultPlan(flip=0.003, drop_frame=0.003, garbage=0.003, outage_ms=150, seed=5,
                     **{f"{event}_every": 0.4})
    board = VirtualBoard(n_channels=4, fs=fs, speed=1, pattern="ramp", faults=plan,
                         link_path=str(tmp_path / "ttyV"))
    with board:
        src = open_source(f"serial://{board.port}?reset_wait=0&silence=0.2&backoff_max=0.05")
        src.start()

        def two_events_survived(chunks) -> bool:
            inj = board.injected
            n = inj.disconnects + inj.resets
            return n >= 2 and src.stats.reconnects == n and src.status.state == "streaming"

        chunks = read_until(src, two_events_survived)
        chunks += read_until(src, lambda c: sum(map(len, c)) >= 100)  # a clean stretch
        src.stop()
        inj = board.injected
    st = src.stats
    assert st.reconnects == inj.disconnects + inj.resets >= 2
    assert inj.bit_flips + inj.dropped_frames + inj.garbage_bursts > 0
    assert (st.frames, st.crc_errors, st.overrun_flags) == (
        inj.expected_frames, inj.expected_crc_errors, inj.expected_overrun_flags), inj
    # skipped bytes: the injected ones plus each reset's boot line, read as noise mid-stream.
    # After a disconnect the replugged board boots too: its line is read as noise when it
    # arrives before the driver's "?" and as the answer when it arrives after (a race of
    # two processes), so each disconnect adds 0 or 1 boot line, never a part of one.
    boot = len(board.info.line) + 1
    extra = st.bytes_skipped - inj.expected_bytes_skipped - inj.resets * boot
    assert extra % boot == 0 and 0 <= extra // boot <= inj.disconnects, (extra, inj)
    # ticks lost across reconnects are booked at the first frame after each, from the host
    # times of the last frame before and that frame: about the board's outage time (a
    # reader delayed by load reads the last frame late, so allow half), at most that plus
    # the silence timeout and reconnect latency per event
    gap = st.lost_ticks - inj.expected_lost_ticks - inj.unsettled_lost_ticks
    assert inj.outage_s * fs * 0.5 - 20 <= gap <= (inj.outage_s + 0.5 * st.reconnects) * fs, (
        gap, inj)
    tick, counts = drain(src, chunks)
    assert np.all(np.diff(tick) >= 1) and len(tick) == st.frames
    # every delivered frame is genuine: within a run, ticks count from the run's start
    run_start = np.flatnonzero(np.diff(tick) > 0.1 * fs) + 1  # reconnect jumps
    assert len(run_start) == st.reconnects
    for run in np.split(np.arange(len(tick)), run_start):
        t = tick[run]
        first = t[0] - counts[run[0], 0]  # the first frame after start may be lost: use data
        assert ramp_ok(t - first, counts[run]).all()
