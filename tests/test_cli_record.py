"""``emgfb record`` and ``emgfb info`` through the public CLI, and the sim round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emgfb.acquisition.source import open_source
from emgfb.cli import main
from emgfb.recording import open_recording

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
