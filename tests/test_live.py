"""LiveSession: the Qt-free live wiring (sim:// at speed=0, no GUI)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from emgfb.errors import RecordingError
from emgfb.live import LiveSession, SessionError
from emgfb.recording import open_recording

from testkit.emgfb_process import EmgfbProcess

SIM = "sim://?speed=0&seed=3"


def _live_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("emgfb-live")]


@pytest.fixture
def session():
    s = LiveSession(SIM)
    s.start()
    yield s
    s.stop()


def test_publishes_filtered_envelope_and_activation_by_absolute_index(session):
    assert session.wait_for_index(3999, timeout=20)
    n = session.n_channels
    assert (session.fs, n) == (1000.0, 6)
    for stream in ("filtered", "envelope", "activation"):
        first, data = session.read(stream, 1000, max_samples=None)
        assert first == 1000
        assert data.shape[1] == n and len(data) >= 3000
        assert data.dtype == np.float32
    # after the filters settle the envelope is finite, positive and consistent with
    # the activation scale
    _, env = session.read("envelope", 2000)
    _, act = session.read("activation", 2000)
    k = min(len(env), len(act))
    assert np.isfinite(env[:k]).all() and (env[:k] >= 0).all()
    norm = session.normalisation
    expect = np.maximum(env[:k] - norm.rest_uv, 0) / (norm.reference_uv - norm.rest_uv)
    np.testing.assert_allclose(act[:k], expect, rtol=1e-5, atol=1e-6)
    # the newest window and the index bookkeeping agree
    first, latest = session.read("envelope", None, max_samples=100)
    assert len(latest) == 100 and first + 99 <= session.newest_index
    c = session.counters()
    assert c.frames >= session.newest_index + 1 and c.lost_ticks == 0 and c.crc_errors == 0
    assert isinstance(session.host_time_of(session.newest_index), float)


def test_quality_badge_turns_bad_when_an_electrode_is_off():
    with LiveSession("sim://?speed=0&seed=3&electrode_off=2") as s:
        assert s.wait_for_index(2999, timeout=20)
        q = s.quality()
        assert len(q) == 6
        assert q[2].state == "bad"
        assert "electrode" in q[2].hint


def test_markers_and_recording_reach_the_file(tmp_path):
    path = tmp_path / "session.h5"
    s = LiveSession(SIM, subject="P001")
    s.start()
    try:
        assert s.wait_for_index(499, timeout=20)
        s.start_record(path)
        assert s.recording_path == path
        with pytest.raises(SessionError, match="already recording"):
            s.start_record(tmp_path / "other.h5")
        start = s.newest_index
        assert s.wait_for_index(start + 1000, timeout=20)
        m = s.add_marker("smile 1")
        assert s.wait_for_index(s.newest_index + 500, timeout=20)
        assert s.recording_seconds > 1.0
        end = s.newest_index
    finally:
        s.stop()
    assert s.recording_path is None
    with open_recording(path) as rec:
        # the recording is fed from the source, ahead of processing: it holds every
        # sample from its start to at least what was processed, without a gap
        assert rec.tick[-1] >= end and rec.n_samples == rec.tick[-1] - rec.tick[0] + 1
        assert rec.meta["complete"]
        mine = [mk for mk in rec.markers if mk.kind != "channel"]
        states = {mk.label.split(":")[0] for mk in rec.markers if mk.kind == "channel"}
        assert [mk.label for mk in mine] == ["smile 1"] and mine[0].tick == m.tick
        assert states == set(rec.montage.labels)  # each channel's state at the start
        assert rec.tick[0] > 0  # recording began mid-stream, with absolute ticks


def test_never_overwrites_a_recording(tmp_path, session):
    path = tmp_path / "exists.h5"
    path.write_bytes(b"x")
    with pytest.raises(RecordingError, match="exists"):
        session.start_record(path)
    assert path.read_bytes() == b"x"


def test_stop_joins_the_worker_and_is_idempotent():
    s = LiveSession(SIM)
    s.start()
    assert s.wait_for_index(100, timeout=20)
    assert _live_threads()
    s.stop()
    s.stop()
    assert not s.running and not _live_threads()
    assert s.state == "stopped"


def test_montage_must_match_the_board():
    s = LiveSession(SIM, montage="face8")
    with pytest.raises(SessionError, match="8 channels"):
        s.start()
    assert not _live_threads()


# -- the live commands as real processes: kill -9 with DSP held up, Ctrl-C, SIGTERM --------

FS_PROC = 2000
SIM_PROC = f"sim://?speed=1&seed=5&ch=6&fs={FS_PROC}"


def _start(tmp_path, command, hold_dsp_s=0.0):
    """Start ``emgfb -v live --record`` or ``emgfb -v session`` on a real-time simulated
    board (offscreen Qt); return the process and the file."""
    import os

    out = tmp_path / "live.h5"
    if command == "live":
        argv = ["live", "--source", SIM_PROC, "--record", str(out)]
    else:
        argv = ["session", "--protocol", "demo", "--source", SIM_PROC.replace("ch=6&", ""),
                "-o", str(out)]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "EMGFB_TEST_HOLD_DSP_S": str(hold_dsp_s)}
    return EmgfbProcess(argv, env=env), out


@pytest.mark.slow
@pytest.mark.parametrize("command", ["live", "session"])
def test_kill_9_while_dsp_is_held_up_loses_at_most_one_second(tmp_path, command):
    import os
    import signal
    import time

    run, out = _start(tmp_path, command, hold_dsp_s=60)
    try:
        run.wait_line("live session started")
        # the processing worker holds its first chunk for 60 s (a stalled DSP); the
        # recording must go on regardless: run 4 s, then kill -9
        threading.Event().wait(4.0)
        killed_at = time.time()
        os.kill(run.proc.pid, signal.SIGKILL)
        run.proc.wait(10)
    finally:
        run.finish()
    with open_recording(out) as rec:
        assert rec.recovered and rec.tick[0] == 0
        np.testing.assert_array_equal(rec.tick, np.arange(rec.n_samples))
        # the real-time board began with the recording (its tick 0 is the file's start
        # time, to a few ms): what it sent by the kill, less what the file holds
        import datetime as dt

        start = dt.datetime.fromisoformat(rec.meta["start_time_utc"].replace("Z", "+00:00"))
        sent_s = killed_at - start.timestamp()
        lost_s = sent_s - rec.n_samples / FS_PROC
        assert sent_s > 3.5 and lost_s <= 1.0, f"lost {lost_s:.2f} s of {sent_s:.2f} s"


@pytest.mark.slow
@pytest.mark.parametrize("command, sig, code", [
    ("live", "SIGINT", 130), ("live", "SIGTERM", 143),
    ("session", "SIGINT", 130), ("session", "SIGTERM", 143),
])
def test_signals_end_the_window_within_two_seconds_with_the_file_complete(
        tmp_path, command, sig, code):
    import signal
    import time

    run, out = _start(tmp_path, command)
    try:
        run.wait_line("live session started")
        threading.Event().wait(1.0)  # let it record a little
        t0 = time.monotonic()
        run.proc.send_signal(getattr(signal, sig))
        rc = run.proc.wait(10)
        took = time.monotonic() - t0
    finally:
        err = run.finish()
    assert rc == code and took <= 2.0, (rc, took, err)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    with open_recording(out) as rec:
        assert rec.meta["complete"] is True and not rec.recovered
        assert rec.n_samples > 0
