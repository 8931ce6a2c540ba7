"""The real link's faults through a real pty: SerialSource's counters equal the board's own.

The board is :class:`~emgfb.acquisition.virtual_board.VirtualBoard` (the firmware emulator
behind a pty) sending a counting ramp; the driver is :class:`SerialSource` as opened by
every command. Also: a board that vanishes or comes back changed ends the source in
``failed`` with one line; a consumer that stops reading cannot grow the queue without
bound; ``serial://`` and ``socket://`` mistakes are one line naming the URL.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from emgfb.acquisition.board_faults import FaultPlan
from emgfb.acquisition.source import open_source
from emgfb.acquisition.virtual_board import VirtualBoard
from emgfb.errors import ConfigError

from testkit.pty_board import UNPACED_QUEUE, drain, n_frames, read_until


def assert_counts_equal(st, inj) -> None:
    assert {
        "frames": st.frames, "crc_errors": st.crc_errors, "lost_ticks": st.lost_ticks,
        "bytes_skipped": st.bytes_skipped, "overrun_flags": st.overrun_flags,
        "suspect_frames": st.suspect_frames, "seq_restarts": st.seq_restarts,
        "reconnects": st.reconnects,
    } == {
        "frames": inj.expected_frames, "crc_errors": inj.expected_crc_errors,
        "lost_ticks": inj.expected_lost_ticks, "bytes_skipped": inj.expected_bytes_skipped,
        "overrun_flags": inj.expected_overrun_flags,
        "suspect_frames": inj.expected_suspect_frames,
        "seq_restarts": inj.expected_seq_restarts, "reconnects": 0,
    }, inj


PLANS = {
    "false_frame": (FaultPlan(false_frame=0.005, seed=4), "false_frames"),
    "hiccup": (FaultPlan(hiccup=0.003, hiccup_max=200, seed=5), "hiccups"),
    "restart": (FaultPlan(restart_every=2.5, seed=6), "restarts"),
    "freeze": (FaultPlan(freeze_every=3, freeze_ms=300, seed=7), "freezes"),
    "blackout": (FaultPlan(blackout_every=3, blackout_ms=300, seed=8), "blackouts"),
    "frame_faults": (FaultPlan(flip=0.003, drop_byte=0.003, drop_frame=0.003, garbage=0.003,
                               stall=0.001, stall_ms=4, seed=9), "bit_flips"),
}


@pytest.mark.parametrize("kind", sorted(PLANS))
def test_each_link_fault_through_a_pty_is_counted_exactly(kind):
    plan, counter = PLANS[kind]
    with VirtualBoard(n_channels=6, fs=1000, speed=0, pattern="ramp", faults=plan) as board:
        src = open_source(f"serial://{board.port}?reset_wait=0&poll=0&{UNPACED_QUEUE}")
        src.start()
        chunks = read_until(src, lambda c: n_frames(c) >= 8000)
        src.stop()
        inj = board.injected
    assert getattr(inj, counter) >= 2
    assert_counts_equal(src.stats, inj)
    tick, counts = drain(src, chunks)
    assert len(tick) == src.stats.frames
    assert np.array_equal(counts, (tick[:, None] + np.arange(6)) % 1024)  # all genuine


def test_frames_that_arrive_during_a_rehandshake_are_kept():
    """A blackout longer than the silence timeout: the driver re-handshakes, and every
    frame the board sent outside the blackout is delivered (issue 10: ~1,140 were lost)."""
    plan = FaultPlan(blackout_every=1.0, blackout_ms=600, seed=3)
    with VirtualBoard(n_channels=4, fs=1000, speed=1, pattern="ramp", faults=plan) as board:
        src = open_source(f"serial://{board.port}?reset_wait=0&silence=0.3&handshake_timeout=1")
        src.start()
        chunks = read_until(src, lambda c: src.stats.reconnects >= 1)
        # stop well before the next blackout (1 s into the new run) can swallow the 'stop'
        chunks += read_until(src, lambda c: n_frames(c) >= 200)
        src.stop()
        inj = board.injected
    st = src.stats
    assert inj.blackouts >= 1
    assert st.frames == inj.expected_frames, inj
    assert st.crc_errors == 0 and st.suspect_frames == inj.expected_suspect_frames
    tick, counts = drain(src, chunks)
    assert len(tick) == st.frames and np.all(np.diff(tick) >= 1)


def test_a_board_that_goes_silent_for_good_books_no_lost_ticks_and_fails():
    plan = FaultPlan(vanish_after=0.5)
    with VirtualBoard(n_channels=2, fs=1000, speed=1, pattern="ramp", faults=plan) as board:
        src = open_source(f"serial://{board.port}?reset_wait=0&silence=0.3&give_up=1.5")
        src.start()
        read_until(src, lambda c: src.status.state == "failed")
        src.stop()
        inj = board.injected
    st = src.stats
    assert inj.vanished == 1 and st.frames == inj.expected_frames == 500
    assert st.lost_ticks == 0 and st.reconnects == 0  # no sample follows the silence
    assert src.status.state == "failed"
    assert "no valid frame for" in src.status.detail and "giving up" in src.status.detail
    assert "\n" not in src.status.detail


def test_a_board_that_comes_back_changed_fails_with_one_line(tmp_path):
    plan = FaultPlan(change_after=0.3, change_channels=3, outage_ms=50)
    with VirtualBoard(n_channels=2, fs=1000, speed=1, pattern="ramp", faults=plan,
                      link_path=str(tmp_path / "tty")) as board:
        src = open_source(f"serial://{board.port}?reset_wait=0&backoff_max=0.05")
        src.start()
        read_until(src, lambda c: src.status.state == "failed")
        src.stop()
    assert board.injected.changes == 1
    assert src.status.detail == (
        "board came back with ch=3 fs=1000, expected ch=2 fs=1000; not resuming"
    )
    assert src.stats.lost_ticks == 0


def test_a_consumer_that_stops_reading_cannot_grow_the_queue():
    with VirtualBoard(n_channels=8, fs=2000, speed=0, pattern="ramp") as board:
        src = open_source(f"serial://{board.port}?reset_wait=0&queue_s=0.5")
        src.start()
        deadline = time.monotonic() + 30
        while src.stats.overflow_frames < 20_000:  # the consumer reads nothing meanwhile
            assert time.monotonic() < deadline, src.stats
            time.sleep(0.01)  # waiting for a condition with a deadline, not synchronising
        src.stop()
    chunk = src.read(0)
    st = src.stats
    assert len(chunk) <= 1000  # bounded by construction: queue_s * fs
    assert st.overflow_frames + len(chunk) == st.frames  # every frame delivered or counted
    assert chunk.tick[-1] == st.frames - 1 + st.lost_ticks  # the newest are kept
    assert any(e.startswith("queue full (1000 frames)") for e in src.status.errors)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("socket://127.0.0.1:99999",
         "socket://127.0.0.1:99999: port '99999' is not a TCP port; expected 1..65535"),
        ("socket://127.0.0.1", "socket://127.0.0.1: no port; expected socket://HOST:PORT"),
        ("socket://:5000", "socket://:5000: no host; expected socket://HOST:PORT"),
        ("socket://127.0.0.1:5000?logging=loud",
         "socket://127.0.0.1:5000?logging=loud: logging='loud'; expected one of debug"),
        ("socket://127.0.0.1:5000?speed=2",
         "socket://127.0.0.1:5000?speed=2: unknown option 'speed'; expected one of baud"),
        ("serial://", "serial://: no device given; expected a port such as serial:///dev/"),
        ("serial:///dev/ttyACM0?bauds=9600",
         "serial:///dev/ttyACM0: unknown option 'bauds'; expected one of baud"),
        ("nosuch://x", "nosuch://x: unknown source scheme 'nosuch'; expected serial, sim"),
    ],
)
def test_url_mistakes_are_one_line_naming_the_url(url, message):
    with pytest.raises(ConfigError) as err:
        open_source(url)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_a_refused_connection_says_so_without_pyserial_internals():
    import socket

    from emgfb.errors import DeviceError

    with socket.socket() as s:  # a port that was free a moment ago: nobody listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = open_source(f"socket://127.0.0.1:{port}")
    with pytest.raises(DeviceError) as err:
        src.start()
    assert str(err.value) == (
        f"socket://127.0.0.1:{port}: cannot open port: connection refused (expected a board "
        f"or 'emgfb virtual-board --tcp' listening on that port)"
    )
    assert src.status.state == "failed"
