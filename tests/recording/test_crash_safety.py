"""Crash safety: kill -9, SIGTERM, disk full (RLIMIT_FSIZE), truncated files, wrong format."""

from __future__ import annotations

import os
import queue
import re
import resource
import signal
import subprocess
import sys
import threading
import time

import h5py
import numpy as np
import pytest

from emgfb.acquisition.source import Chunk, open_source
from emgfb.errors import RecordingError
from emgfb.montage import default_montage
from emgfb.protocol import BoardInfo
from emgfb.recording import SessionWriter, open_recording, write_arrays
from emgfb.recording import writer as writer_mod

FS = 2000
SIM = f"sim://?seed=1&ch=8&fs={FS}"
PROGRESS = re.compile(r"samples (\d+), lost ticks (\d+)")


def sim_counts(n: int) -> np.ndarray:
    out, got = [], 0
    with open_source(SIM + "&speed=0") as src:
        while got < n:
            c = src.read()
            out.append(c.counts)
            got += len(c)
    return np.concatenate(out)[:n] if n else np.zeros((0, 8), np.uint16)


def start_record(tmp_path, url, *extra, preexec=None):
    out = tmp_path / "rec.h5"
    proc = subprocess.Popen(
        [sys.executable, "-m", "emgfb", "record", "--source", url, "-o", str(out), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=preexec,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        with proc.stderr:
            for line in proc.stderr:
                lines.put(line)
        lines.put("")  # EOF

    threading.Thread(target=pump, daemon=True).start()
    return proc, out, lines


def wait_for_samples(lines, n_min, deadline_s=60.0):
    """Block on the progress lines (no fixed sleep) until the recorder reports n_min samples."""
    deadline = time.monotonic() + deadline_s
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=deadline - time.monotonic())
        except queue.Empty:
            break
        seen.append(line)
        if line == "":
            break
        m = PROGRESS.search(line)
        if m and int(m.group(1)) >= n_min:
            return int(m.group(1))
    pytest.fail(f"recorder never reported {n_min} samples; stderr: {''.join(seen)}")


@pytest.mark.slow
def test_kill_9_keeps_everything_up_to_one_second_before(tmp_path):
    proc, out, lines = start_record(tmp_path, SIM + "&speed=1", "--seconds", "120")
    try:
        reported = wait_for_samples(lines, int(2.5 * FS))
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    with open_recording(out) as rec:
        assert rec.meta["complete"] is False and rec.recovered
        # the board ran in real time: what was received 1 s before the progress line
        # (and so at least 1 s before the kill) must be on disk
        assert rec.n_samples >= reported - FS
        np.testing.assert_array_equal(rec.counts, sim_counts(rec.n_samples))
        np.testing.assert_array_equal(rec.tick, np.arange(rec.n_samples))
        assert rec.summary()["n_channels"] == 8


@pytest.mark.slow
def test_sigterm_ends_cleanly_and_keeps_the_file(tmp_path):
    proc, out, lines = start_record(tmp_path, SIM + "&speed=1", "--seconds", "120")
    try:
        wait_for_samples(lines, 1)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    finally:
        proc.kill()
    assert proc.returncode == 0
    with open_recording(out) as rec:
        assert rec.meta["complete"] is True and not rec.recovered
        assert rec.n_samples > 0
        np.testing.assert_array_equal(rec.counts, sim_counts(rec.n_samples))


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_400_000, 1_400_000))


@pytest.mark.slow
def test_disk_full_stops_recording_cleanly_and_keeps_the_data(tmp_path):
    proc, out, lines = start_record(tmp_path, SIM + "&speed=0", "--seconds", "3600",
                                    preexec=_limit_file_size)
    proc.wait(60)
    err = []
    while (line := lines.get(timeout=10)) != "":
        err.append(line)
    err = "".join(err)
    assert proc.returncode == 1, err
    assert "recording stopped after" in err and "file size limit" in err
    assert "Traceback" not in err
    assert out.stat().st_size <= 1_400_000
    with open_recording(out) as rec:
        assert rec.meta["complete"] is True  # closed properly before the limit
        assert "file size limit" in rec.meta["stop_reason"]
        assert rec.n_samples > FS
        np.testing.assert_array_equal(rec.counts, sim_counts(rec.n_samples))


INFO = BoardInfo("1.0.0", "uno", 6, 1000.0, 10, 5000.0, "EMGFB fw=1.0.0 board=uno ch=6")


def test_disk_full_in_process_caller_keeps_running(tmp_path, monkeypatch, rng):
    """Free space vanishes mid-recording: write() stays a no-op, close() does not raise."""
    free = {"bytes": 10**12}
    real = os.statvfs

    class FakeStat:
        def __init__(self, path):
            st = real(path)
            self.f_frsize = 1
            self.f_bavail = free["bytes"]
            self.f_bsize = st.f_bsize

    monkeypatch.setattr(writer_mod.os, "statvfs", FakeStat)
    counts = rng.integers(0, 1024, (4000, 6)).astype(np.uint16)
    w = SessionWriter(tmp_path / "s.h5", info=INFO, montage=default_montage(6),
                      uv_per_count=2.0, offset_counts=512, flush_interval=0.05).start()
    w.write(Chunk(np.arange(1000), counts[:1000], np.zeros(1000, bool), 0.0))
    assert w.wait_flushed(1000, timeout=10)
    free["bytes"] = 1000
    w.write(Chunk(np.arange(1000, 2000), counts[1000:2000], np.zeros(1000, bool), 0.0))
    assert not w.wait_flushed(2000, timeout=10) and w.failed
    assert "disk nearly full" in str(w.error) and "recording stopped after 1000" in str(w.error)
    w.write(Chunk(np.arange(2000, 3000), counts[2000:3000], np.zeros(1000, bool), 0.0))
    w.close()
    with open_recording(tmp_path / "s.h5") as rec:
        np.testing.assert_array_equal(rec.counts, counts[:1000])


def test_never_overwrite_even_through_the_writer_race(tmp_path):
    path = tmp_path / "s.h5"
    write_arrays(path, np.ones((10, 6), np.uint16), 1000.0, default_montage(6), 1, 0)
    before = path.read_bytes()
    with pytest.raises(RecordingError, match="already exists"):
        write_arrays(path, np.zeros((10, 6), np.uint16), 1000.0, default_montage(6), 1, 0)
    assert path.read_bytes() == before


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9])
def test_truncated_file_is_one_clear_error(tmp_path, rng, keep):
    path = tmp_path / "s.h5"
    write_arrays(path, rng.integers(0, 1024, (20000, 6)).astype(np.uint16), 1000.0,
                 default_montage(6), 1, 0)
    data = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(RecordingError) as exc:
        with open_recording(cut) as rec:
            rec.counts  # noqa: B018 - reading must not crash either
    msg = str(exc.value)
    assert "cut.h5" in msg and "\n" not in msg
    assert "truncated" in msg or "damaged" in msg


def test_wrong_format_and_version_are_refused(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(RecordingError, match="format = None, expected 'emgfb-session'"):
        open_recording(other)
    future = tmp_path / "future.h5"
    write_arrays(future, np.zeros((5, 6), np.uint16), 1000.0, default_montage(6), 1, 0)
    with h5py.File(future, "r+") as f:
        f.attrs["format_version"] = 2
    with pytest.raises(RecordingError, match="format_version = 2, this emgfb reads version 1"):
        open_recording(future)


def test_unreadable_file(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their permissions")
    path = tmp_path / "s.h5"
    write_arrays(path, np.zeros((5, 6), np.uint16), 1000.0, default_montage(6), 1, 0)
    path.chmod(0)
    with pytest.raises(RecordingError, match="permission denied"):
        open_recording(path)


def test_snapshot_of_a_live_recording_opens_and_its_truncation_fails_fast(tmp_path, rng):
    """A copy taken mid-recording looks like a kill -9 (SWMR flags set): it opens; a cut
    copy of it is refused quickly instead of hanging in HDF5's metadata retries."""
    counts = rng.integers(0, 1024, (3000, 6)).astype(np.uint16)
    path = tmp_path / "live.h5"
    with SessionWriter(path, info=INFO, montage=default_montage(6), uv_per_count=2.0,
                       offset_counts=512, flush_interval=1.0) as w:
        w.write(Chunk(np.arange(3000), counts, np.zeros(3000, bool), 0.0))
        assert w.wait_flushed(3000, timeout=10)
        snapshot = path.read_bytes()
    (tmp_path / "snap.h5").write_bytes(snapshot)
    with open_recording(tmp_path / "snap.h5") as rec:
        assert rec.recovered and rec.meta["complete"] is False
        np.testing.assert_array_equal(rec.counts, counts)
    (tmp_path / "cut.h5").write_bytes(snapshot[: len(snapshot) // 2])
    t0 = time.monotonic()
    with pytest.raises(RecordingError, match="cut.h5"):
        with open_recording(tmp_path / "cut.h5") as rec:
            rec.counts  # noqa: B018
    assert time.monotonic() - t0 < 5.0
