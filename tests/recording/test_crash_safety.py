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
    assert proc.returncode == 143  # 128 + SIGTERM, after the file is complete
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


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 12 MB tmpfs of our own, so filling it harms nothing (root only)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({out.stderr.strip() or 'not root'})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill_disk(mnt) -> None:
    """Another program fills the disk: dd until ENOSPC."""
    subprocess.run(["dd", "if=/dev/zero", f"of={mnt}/filler", "bs=64k"],
                   capture_output=True, check=False, timeout=60)
    st = os.statvfs(mnt)
    assert st.f_bavail * st.f_frsize < 64 << 10


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(5))
def test_disk_filled_by_another_program_stops_cleanly_with_everything(small_tmpfs, trial):
    """The done-when of issue 11: a disk filled from outside mid-recording; the file opens
    with emgfb info, is complete and holds every sample received until the fill; the
    command exits non-zero with one error line."""
    proc, out, lines = start_record(small_tmpfs, SIM + "&speed=1", "--seconds", "120")
    try:
        reported = wait_for_samples(lines, int((0.6 + 0.4 * trial) * FS))
        fill_disk(small_tmpfs)
        proc.wait(30)
    finally:
        proc.kill()
        proc.wait(10)
    err = []
    while (line := lines.get(timeout=10)) != "":
        err.append(line)
    errors = [x for x in err if "error" in x.lower()]
    assert proc.returncode == 1
    assert len(errors) == 1, err
    assert "rec.h5: recording stopped after" in errors[0] and "disk full" in errors[0]
    assert "Traceback" not in "".join(err)
    info = subprocess.run([sys.executable, "-m", "emgfb", "info", "--json", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert info.returncode == 0, info.stderr
    with open_recording(out) as rec:
        assert rec.meta["complete"] is True and "disk full" in rec.meta["stop_reason"]
        assert rec.n_samples >= reported  # nothing lost that was received before the fill
        np.testing.assert_array_equal(rec.counts, sim_counts(rec.n_samples))
        np.testing.assert_array_equal(rec.tick, np.arange(rec.n_samples))


def _chunks(n_chunks, size=1000, seed=3):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 1024, (n_chunks * size, 8)).astype(np.uint16)
    return counts, [Chunk(np.arange(i * size, (i + 1) * size), counts[i * size:(i + 1) * size],
                          np.zeros(size, bool), float(i)) for i in range(n_chunks)]


INFO8 = BoardInfo("1.0.0", "nano", 8, 2000.0, 10, 5000.0, "EMGFB fw=1.0.0 board=nano ch=8")


def test_unforeseen_write_error_leaves_the_file_as_after_the_last_flush(small_tmpfs,
                                                                       monkeypatch):
    """No reservation and a writer that believes there is room: HDF5 itself meets the
    full disk (ENOSPC) mid-append. The descriptor is frozen, so the file keeps everything
    flushed before, as after kill -9, instead of 'Can't close file' and a broken file."""
    from emgfb.recording.diskspace import SpaceReservation

    monkeypatch.setattr(SpaceReservation, "room", lambda self: (1 << 40, "unused"))
    counts, chunks = _chunks(60)
    path = small_tmpfs / "s.h5"
    w = SessionWriter(path, info=INFO8, montage=default_montage(8), uv_per_count=2.0,
                      offset_counts=512, flush_interval=0.05, reserve_bytes=0).start()
    for c in chunks[:20]:
        w.write(c)
    assert w.wait_flushed(20_000, timeout=20)
    fill_disk(small_tmpfs)
    for c in chunks[20:]:
        w.write(c)
    w.wait_flushed(60_000, timeout=20)
    w.close()
    assert w.failed and w.stop_reason == "write error", w.error
    assert "recording stopped after" in str(w.error) and "\n" not in str(w.error)
    info = subprocess.run([sys.executable, "-m", "emgfb", "info", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert info.returncode == 0, info.stderr
    with open_recording(path) as rec:
        assert rec.meta["complete"] is False
        # everything flushed before the error, and whatever of the failed flush landed
        assert rec.n_samples >= w.samples_written >= 20_000
        np.testing.assert_array_equal(rec.counts, counts[: rec.n_samples])
        np.testing.assert_array_equal(rec.tick, np.arange(rec.n_samples))


def test_disk_full_at_start_leaves_no_file(small_tmpfs):
    fill_disk(small_tmpfs)
    w = SessionWriter(small_tmpfs / "s.h5", info=INFO8, montage=default_montage(8),
                      uv_per_count=2.0, offset_counts=512)
    with pytest.raises(RecordingError, match=r"s.h5: cannot start recording: .*disk full"):
        w.start()
    assert not (small_tmpfs / "s.h5").exists()


@pytest.mark.slow
def test_write_permission_removed_mid_recording_keeps_what_was_flushed(tmp_path):
    """Write permission taken away mid-recording. For root (who ignores permission bits)
    the file is made immutable (``chattr +i``): every later write fails with EPERM, the
    unforeseen error, and the file keeps everything flushed before. For other users chmod
    of the file and folder cannot hurt an open file: the writer never reopens it (it marks
    it complete in SWMR mode), so the recording ends complete and whole."""
    folder = tmp_path / "rec"
    folder.mkdir()
    root = os.geteuid() == 0
    proc, out, lines = start_record(folder, SIM + "&speed=1", "--seconds", "20" if root else "3")
    try:
        reported = wait_for_samples(lines, FS)
        if root:
            chattr = subprocess.run(["chattr", "+i", str(out)], capture_output=True, text=True)
            if chattr.returncode != 0:
                pytest.skip(f"cannot make the file immutable here: {chattr.stderr.strip()}")
        else:
            out.chmod(0o444)
            folder.chmod(0o555)
        proc.wait(30)
    finally:
        proc.kill()
        proc.wait(10)
        if root:
            subprocess.run(["chattr", "-i", str(out)], check=False)
    err = []
    while (line := lines.get(timeout=10)) != "":
        err.append(line)
    errors = [x for x in err if "error" in x.lower()]
    with open_recording(out) as rec:
        if root:
            assert proc.returncode == 1 and len(errors) == 1, err
            assert "Operation not permitted" in errors[0] and "Traceback" not in "".join(err)
            assert rec.meta["complete"] is False and rec.n_samples >= reported - FS
        else:
            assert proc.returncode == 0, err
            assert rec.meta["complete"] is True and rec.n_samples == 3 * FS
        np.testing.assert_array_equal(rec.counts, sim_counts(rec.n_samples))
        np.testing.assert_array_equal(rec.tick, np.arange(rec.n_samples))


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


def test_a_backlog_bigger_than_the_reservation_is_not_a_full_disk(tmp_path):
    """Minutes of data arriving at once (a writer that fell behind) need more than the
    usual reservation: the writer reserves more instead of reporting a full disk."""
    counts, chunks = _chunks(4, size=12_000)  # 24 s: within the input queue
    w = SessionWriter(tmp_path / "s.h5", info=INFO8, montage=default_montage(8),
                      uv_per_count=2.0, offset_counts=512, flush_interval=1.0,
                      reserve_bytes=300_000)
    with w:
        for c in chunks:
            w.write(c)
    assert not w.failed, w.error
    with open_recording(tmp_path / "s.h5") as rec:
        np.testing.assert_array_equal(rec.counts, counts)
