"""``emgfb record`` and ``emgfb info`` through the public CLI, and the sim round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emgfb.acquisition.source import open_source
from emgfb.cli import main
from emgfb.recording import open_recording

from testkit.emgfb_process import EmgfbProcess
from testkit.pty_board import PtyTestBoard

SIM = "sim://?speed=0&seed=1&ch=8&fs=2000"


def sim_counts(n: int, url: str = SIM) -> np.ndarray:
    """The first ``n`` samples the seeded simulated board produces."""
    out, got = [], 0
    with open_source(url) as src:
        while got < n:
            c = src.read()
            out.append(c.counts)
            got += len(c)
    return np.concatenate(out)[:n]


def test_sim_record_info_replay_round_trip_is_bit_exact(tmp_path, capsys):
    out = tmp_path / "s.h5"
    rc = main(["record", "--source", SIM, "--seconds", "2.5", "-o", str(out),
               "--subject", "P007", "--notes", "round trip", "--electrodes", "Ag/AgCl 4 mm"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "5000 samples, 0 lost ticks" in err
    assert main(["info", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)  # exactly one JSON object
    for key in ("format_version", "fs", "n_channels", "channels", "n_samples", "duration_s",
                "lost_ticks", "n_gaps", "n_markers", "subject", "emgfb_version"):
        assert key in summary
    assert summary["format_version"] == 1 and summary["fs"] == 2000.0
    assert summary["n_channels"] == 8 and len(summary["channels"]) == 8
    assert summary["n_samples"] == 5000 and summary["duration_s"] == 2.5
    assert summary["subject"] == "P007" and summary["complete"] is True
    expected = sim_counts(5000)
    with open_recording(out) as rec:
        np.testing.assert_array_equal(rec.counts, expected)
        np.testing.assert_array_equal(rec.tick, np.arange(5000))
        assert rec.meta["frontend"]["electrodes"] == "Ag/AgCl 4 mm"
        assert rec.meta["dsp_config"]["envelope"]  # the resolved DSP settings are stored
        assert rec.meta["extra"]["source_url"] == SIM
        assert rec.meta["notes"] == "round trip"
    # replay through the file:// source reproduces the raw counts bit-exactly
    with open_source(f"file://{out}?speed=0&chunk=7") as src:
        chunks = list(src.chunks())
    np.testing.assert_array_equal(np.concatenate([c.counts for c in chunks]), expected)
    # and re-recording the replay gives the same session again
    again = tmp_path / "again.h5"
    assert main(["record", "--source", f"file://{out}?speed=0", "-o", str(again)]) == 0
    with open_recording(again) as rec:
        np.testing.assert_array_equal(rec.counts, expected)
        assert rec.montage.labels == summary["channels"]


def test_info_human_readable(tmp_path, capsys):
    out = tmp_path / "s.h5"
    assert main(["record", "--source", "sim://?speed=0&ch=6", "--seconds", "0.2",
                 "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "6 channels @ 1000 Hz" in text and "200 samples" in text and "FRO-L" in text


def test_record_refuses_existing_file_and_names(tmp_path, capsys):
    out = tmp_path / "s.h5"
    out.write_bytes(b"keep me")
    assert main(["record", "--source", SIM, "--seconds", "0.1", "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"
    assert main(["record", "--source", SIM, "--seconds", "0.1", "-o", str(tmp_path / "n.h5"),
                 "--subject", "Jane Doe"]) == 2
    err = capsys.readouterr().err
    assert "never a name" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "n.h5").exists()


@pytest.mark.parametrize("make, msg", [
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: p.write_text("not hdf5"), "not an HDF5 file"),
    (lambda p: None, "file not found"),
])
def test_info_rejects_bad_input_with_one_line(tmp_path, capsys, make, msg):
    bad = tmp_path / "bad.h5"
    make(bad)
    assert main(["info", str(bad)]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and msg in lines[0] and "bad.h5" in lines[0]


# -- ``--seconds N`` is a promise, whatever the board does --------------------------------

def _emulator(tmp_path):
    return PtyTestBoard(tmp_path / "ttyEMU", n_channels=4, fs=1000).plug()


def _record_until(tmp_path, url, seconds, fault):
    """Run ``emgfb record --seconds`` as a process; ``fault()`` once it recorded 1 s.

    Returns the exit code, the seconds from the start of the recording to the exit, the
    stderr and the file."""
    import re
    import time

    out = tmp_path / "rec.h5"
    run = EmgfbProcess(["record", "--source", url, "--seconds", str(seconds), "-o", str(out)],
                       verbose=False)
    started = None  # when the recording began, by the first progress line's own clock
    try:
        while True:  # wait on the progress lines, no fixed sleep
            line = run.line(timeout=30)
            m = re.search(r"elapsed ([\d.]+) s, samples (\d+)", line)
            if m and started is None:
                started = time.monotonic() - float(m.group(1))
            if m and int(m.group(2)) >= 1000:
                fault()
                break
            assert line, run.text
        run.proc.wait(seconds + 10)
    finally:
        err = run.finish()
    # the promise counts from the start of the recording: the interpreter's start-up and
    # the board's handshake come before it (about 1 s unloaded, several under load)
    elapsed = time.monotonic() - started
    return run.proc.returncode, elapsed, err, out


@pytest.mark.slow
def test_record_seconds_is_kept_when_the_board_goes_silent_for_good(tmp_path):
    board = _emulator(tmp_path)
    try:
        rc, elapsed, err, out = _record_until(
            tmp_path, f"serial://{board.link}?reset_wait=0&silence=1", 12, board.paused.set)
    finally:
        board.unplug()
    assert rc == 1 and elapsed < 17, (rc, elapsed, err)
    last = err.strip().splitlines()[-1]
    assert last.startswith("emgfb record: error: ") and "of 12 s arrived" in last, err
    assert "Traceback" not in err
    with open_recording(out) as rec:
        assert rec.meta["complete"] is True and not rec.recovered
        assert rec.n_samples >= 1000 and rec.lost_ticks == 0


@pytest.mark.slow
def test_record_seconds_is_kept_when_the_board_comes_back_changed(tmp_path):
    board = _emulator(tmp_path)

    def come_back_with_six_channels() -> None:
        board.unplug()
        board.n_channels = 6
        board.plug()

    try:
        rc, elapsed, err, out = _record_until(
            tmp_path, f"serial://{board.link}?reset_wait=0&silence=1", 12,
            come_back_with_six_channels)
    finally:
        board.unplug()
    assert rc == 1 and elapsed < 17, (rc, elapsed, err)
    last = err.strip().splitlines()[-1]
    assert last.startswith("emgfb record: error: ") and "came back with ch=6" in last, err
    with open_recording(out) as rec:
        assert rec.meta["complete"] is True and rec.n_channels == 4 and rec.n_samples >= 1000


@pytest.mark.slow
@pytest.mark.parametrize("command, sig, code", [
    ("record", "SIGINT", 130), ("record", "SIGTERM", 143),
    ("session", "SIGINT", 130), ("session", "SIGTERM", 143),
    ("stream", "SIGTERM", 143),
])
def test_headless_commands_end_on_a_signal_within_two_seconds(tmp_path, command, sig, code):
    import signal
    import time

    out = tmp_path / "s.h5"
    url = "sim://?speed=1&seed=2"
    argv = {"record": ["record", "--source", url, "-o", str(out)],
            "session": ["session", "--headless", "--protocol", "demo", "--source", url,
                        "-o", str(out)],
            "stream": ["stream", "--source", url, "--seconds", "60"]}[command]
    run = EmgfbProcess(argv)
    try:
        run.wait_line("simulated board started")
        if command != "stream":  # a recording is kept once it holds a sample: wait for
            run.wait_line("elapsed")  # the first progress line
        t0 = time.monotonic()
        run.proc.send_signal(getattr(signal, sig))
        rc = run.proc.wait(10)
        took = time.monotonic() - t0
    finally:
        err = run.finish()
    assert rc == code and took <= 2.0, (rc, took, err)
    assert "Traceback" not in err, err
    if command != "stream":
        with open_recording(out) as rec:
            assert rec.meta["complete"] is True and not rec.recovered


def test_the_recording_keeps_the_links_counters(tmp_path):
    """record, live and headless sessions store the source's integrity counters (frames,
    lost ticks, CRC errors, suspect frames, ...) as the 'link' document."""
    from emgfb.cli import main
    from emgfb.live import LiveSession
    from emgfb.recording import open_recording

    out = tmp_path / "r.h5"
    assert main(["record", "--source", "sim://?speed=0&seed=2", "--seconds", "1",
                 "-o", str(out)]) == 0
    with open_recording(out) as rec:
        link = rec.document("link")
        assert link["frames"] == rec.n_samples and link["suspect_frames"] == 0
        assert link["lost_ticks"] == rec.lost_ticks
    live_out = tmp_path / "l.h5"
    with LiveSession("sim://?speed=0&seed=2", record_path=live_out) as s:
        assert s.wait_for_index(500, timeout=30)
    with open_recording(live_out) as rec:
        assert rec.document("link")["frames"] >= rec.n_samples > 0
