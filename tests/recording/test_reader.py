"""open_recording: metadata, uv(), slicing, and files cut off by a crash."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from emgfb.errors import RecordingError
from emgfb.montage import default_montage
from emgfb.recording import open_recording, write_arrays

MONTAGE = default_montage(6)


@pytest.fixture
def path(tmp_path, rng):
    counts = rng.integers(0, 1024, (1000, 6)).astype(np.uint16)
    tick = np.arange(1000) + 5
    tick[600:] += 9
    p = write_arrays(tmp_path / "s.h5", counts, 500.0, MONTAGE, [1, 2, 3, 4, 5, 6], 512,
                     tick=tick, meta={"subject": "P3", "notes": "n", "calibration": {"a": 1},
                                      "frontend": {"gain": 2420}})
    return p, counts, tick


def test_summary_and_metadata(path):
    p, counts, tick = path
    with open_recording(p) as rec:
        s = rec.summary()
        assert (s["n_samples"], s["lost_ticks"], s["n_gaps"], s["fs"]) == (1000, 9, 1, 500.0)
        assert s["duration_s"] == pytest.approx(1009 / 500)
        assert s["channels"] == MONTAGE.labels and s["subject"] == "P3"
        assert s["has_calibration"] and s["complete"]
        assert rec.meta["calibration"] == {"a": 1} and rec.meta["frontend"] == {"gain": 2420}
        assert rec.gaps.tolist() == [(600, 9)]
        np.testing.assert_allclose(rec.uv(), (counts - 512.0) * np.arange(1, 7))
        np.testing.assert_array_equal(rec.read_counts(990, 2000), counts[990:])
        assert rec.read_counts(2000, 3000).shape == (0, 6)


def test_rows_allocated_but_never_written_are_dropped(path):
    p, counts, tick = path
    with h5py.File(p, "r+") as f:  # what a crash between resize and data write leaves
        f["raw/tick"].resize(1300, axis=0)
        f["raw/counts"].resize(1300, axis=0)
    with open_recording(p) as rec:
        assert rec.n_samples == 1000
        np.testing.assert_array_equal(rec.counts, counts)
        np.testing.assert_array_equal(rec.tick, tick)


def test_counts_and_ticks_of_different_length_use_the_shorter(path):
    p, counts, _ = path
    with h5py.File(p, "r+") as f:
        f["raw/tick"].resize(800, axis=0)
    with open_recording(p) as rec:
        assert rec.n_samples == 800 and rec.gaps.tolist() == [(600, 9)]
        np.testing.assert_array_equal(rec.counts, counts[:800])


@pytest.mark.parametrize(("where", "name", "value", "expected"), [
    ("attrs", "fs", 0.0, "expected a positive, finite sample rate"),
    ("attrs", "fs", -500.0, "expected a positive, finite sample rate"),
    ("attrs", "fs", float("nan"), "expected a positive, finite sample rate"),
    ("attrs", "fs", "fast", "expected a positive, finite sample rate"),
    ("attrs", "n_channels", 3, "expected 6 (the columns of raw/counts)"),
    ("attrs", "montage", "{not json", "expected a JSON document"),
    ("attrs", "montage", '{"channels": []}', "expected 6 (the columns"),
    ("attrs", "board", '{"firmware": 1}', "expected a JSON board description"),
    ("channels", "uv_per_count", [1.0, 2.0], "expected 6 finite numbers"),
    ("channels", "offset_counts", [np.nan] * 6, "expected 6 finite numbers"),
])
def test_corrupt_attributes_are_one_line_naming_file_field_value(path, where, name, value,
                                                                expected):
    p = path[0]
    with h5py.File(p, "r+") as f:
        if where == "attrs":
            f.attrs[name] = value
        else:
            del f["channels"][name]
            f["channels"][name] = value
    with pytest.raises(RecordingError) as exc:
        open_recording(p)
    msg = str(exc.value)
    assert msg.startswith(f"{p}: ") and name in msg and expected in msg and "\n" not in msg


@pytest.mark.parametrize("command", [["info"], ["info", "--json"], ["export", "--format", "csv"],
                                     ["replay", "--screenshot"]])
def test_cli_on_a_file_with_fs_zero_says_one_line(path, tmp_path, command):
    import subprocess
    import sys

    p = path[0]
    with h5py.File(p, "r+") as f:
        f.attrs["fs"] = 0.0
    args = [sys.executable, "-m", "emgfb", command[0], str(p), *command[1:]]
    if command[0] == "export":
        args += ["-o", str(tmp_path / "out.csv")]
    if command[0] == "replay":
        args += [str(tmp_path / "shot.png")]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60,
                         env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert str(p) in lines[0] and "fs = 0.0" in lines[0] and "sample rate" in lines[0]
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "shot.png").exists()


def test_files_written_before_in_the_latest_hdf5_format_still_read(tmp_path, rng, monkeypatch):
    from emgfb.recording import schema as S

    monkeypatch.setattr(S, "LIBVER", "latest")  # what emgfb wrote before format bounds
    counts = rng.integers(0, 1024, (500, 6)).astype(np.uint16)
    p = write_arrays(tmp_path / "old.h5", counts, 500.0, MONTAGE, 1, 0)
    monkeypatch.undo()
    with open_recording(p) as rec:
        np.testing.assert_array_equal(rec.counts, counts)


@pytest.mark.parametrize("json_out", [False, True])
def test_info_into_a_closed_pipe_ends_quietly(path, json_out):
    """``emgfb info s.h5 | head -c 1``: no BrokenPipeError traceback (exit 0, or 141 =
    128 + SIGPIPE as other tools do)."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "emgfb", "info", str(path[0])] + (["--json"] if json_out else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.read(1)
    proc.stdout.close()  # the reader went away, like `head` does
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(60) in (0, 141) and err == "", err
