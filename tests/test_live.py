"""LiveSession: the Qt-free live wiring (sim:// at speed=0, no GUI)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from emgfb.errors import RecordingError
from emgfb.live import LiveSession, SessionError
from emgfb.recording import open_recording

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
        assert [mk.label for mk in rec.markers] == ["smile 1"]
        assert rec.markers[0].tick == m.tick
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
