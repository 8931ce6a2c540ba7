"""``emgfb process`` through emgfb.cli.main: round trip and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from emgfb.cli import main
from emgfb.dsp import EnvelopePipeline, load_dsp_config
from emgfb.dsp.signalfile import read_signal_csv

FS = 2000.0


def write_csv(path, x: np.ndarray, time: np.ndarray | None, bom: bool = False) -> None:
    cols = ([] if time is None else ["Time"]) + [f"EMG_{i}" for i in range(x.shape[1])]
    rows = []
    for i, row in enumerate(x):
        cells = [] if time is None else [f"{time[i]:.4f}"]
        cells += ["NULL" if np.isnan(v) else f"{v:.9f}" for v in row]
        rows.append(",".join(cells))
    path.write_text(("\ufeff" if bom else "") + ",".join(cols) + "\n" + "\n".join(rows) + "\n",
                    encoding="utf-8")


@pytest.mark.parametrize("zero_phase", [False, True])
def test_process_round_trip(tmp_path, make_emg, rng, zero_phase) -> None:
    x_uv = make_emg(rng, FS, 3.0, 2)
    x_mv = x_uv / 1000.0
    x_mv[1000:1100] = np.nan  # NULL rows
    t = np.arange(len(x_mv)) / FS + 0.0005
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    write_csv(src, x_mv, t, bom=True)
    args = ["process", str(src), "-o", str(out), "--unit", "mV"]
    assert main(args + (["--zero-phase"] if zero_phase else [])) == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("# emgfb process: emgfb_version=")
    assert lines[1] == "# filtering: " + ("zero-phase (forward-backward, offline analysis only)"
                                          if zero_phase else "causal (as shown live)")
    assert lines[2].startswith("# dsp: {") and '"envelope"' in lines[2]
    assert lines[3] == "Time,EMG_0_envelope_uV,EMG_1_envelope_uV"
    table = read_signal_csv(out)
    assert len(table.data) == len(x_mv) and np.allclose(table.time, t)
    x_read = np.round(x_mv, 9) * 1000.0
    expect = EnvelopePipeline(load_dsp_config(), FS, 2).process_offline(x_read, zero_phase)
    assert np.array_equal(np.isnan(table.data), np.isnan(expect))
    ok = ~np.isnan(expect)
    assert np.allclose(table.data[ok], expect[ok], rtol=1e-8)
    assert np.isfinite(table.data[1600:]).all()  # recovered 250 ms after the NULL rows


def test_process_without_time_column_needs_fs(tmp_path, make_emg, rng, capsys) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    write_csv(src, make_emg(rng, FS, 1.0, 1), None)
    assert main(["process", str(src), "-o", str(out)]) == 2
    assert "no time column among ['EMG_0']; give the sampling rate (--fs)" in \
        capsys.readouterr().err
    assert main(["process", str(src), "-o", str(out), "--fs", "2000"]) == 0
    header = [ln for ln in out.read_text().splitlines() if not ln.startswith("#")][0]
    assert header == "time_s,EMG_0_envelope_uV"


@pytest.mark.parametrize(("content", "extra", "needle"), [
    (None, [], "file not found"),
    ("Time,label\n0.0,a\n0.1,b\n", [], "no numeric channel columns among ['Time', 'label']"),
    ("Time,EMG\n0.0,1\n0.0005,2\n0.0012,3\n0.0015,4\n", [], "time column 'Time' is not "
                                                            "uniform"),
    ("Time,EMG\n0.0,1\n0.001,2\n0.0005,3\n", [], "does not increase"),
    ("Time,EMG\n0.0,1\n0.0005,2,3\n", [], "line 3 has 3 cells, expected 2"),
    ("Time,EMG\n0.0,1\n0.0005,2\n", ["--unit", "V"], "--unit = 'V': expected uV or mV"),
    ("Time,EMG\n0.0,1\n0.01,2\n", [], "sampling rate = 100.0: expected a number of Hz in "
                                      "250..20000"),
    # a bad cell in a column of numbers refuses the file (it never drops the channel)
    ("Time,EMG,cue\n0.0,1,rest\n0.0005,abc,go\n", [], "line 3, column 'EMG': 'abc' is not "
                                                        "a number"),
    ("Time,EMG\n0.0,1\n0.0005,-inf\n", [], "line 3, column 'EMG': '-inf' is not finite"),
])
def test_process_errors_are_one_line(tmp_path, capsys, content, extra, needle) -> None:
    src = tmp_path / "in.csv"
    if content is not None:
        src.write_text(content)
    assert main(["process", str(src), "-o", str(tmp_path / "o.csv"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and err.startswith("emgfb process: error:")


def test_time_rows_missing_are_gaps(tmp_path, make_emg, rng) -> None:
    x = make_emg(rng, FS, 3.0, 1)
    keep = np.ones(len(x), bool)
    keep[3000:3050] = False  # rows absent from the file: the time column jumps
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    write_csv(src, x[keep], (np.arange(len(x)) / FS)[keep])
    assert main(["process", str(src), "-o", str(out)]) == 0
    table = read_signal_csv(out)
    assert len(table.data) == keep.sum()
    pipe = EnvelopePipeline(load_dsp_config(), FS, 1)
    # a 25 ms gap is bridged: the envelope never blanks after the start-up
    assert np.isfinite(table.data[pipe.envelope_settle:]).all()


def test_process_recording_uses_its_stored_settings(tmp_path) -> None:
    """A session recorded with the fast 50 ms preset is re-processed with it, not the default."""
    from emgfb.recording.reader import open_recording

    dsp = tmp_path / "fast.toml"
    dsp.write_text('[envelope]\nwindow_ms = "fast"\n')
    rec_path, out = tmp_path / "s.h5", tmp_path / "env.csv"
    assert main(["record", "--source", "sim://?speed=0&seed=4", "--seconds", "3",
                 "-o", str(rec_path), "--dsp", str(dsp)]) == 0
    assert main(["process", str(rec_path), "-o", str(out)]) == 0
    got = read_signal_csv(out).data
    with open_recording(rec_path) as rec:
        counts, fs, tick = rec.counts.astype(float), rec.fs, rec.tick
        scale, offset = rec.uv_per_count, rec.offset_counts
    fast = load_dsp_config(dsp)
    assert fast.envelope.window_ms == 50.0
    expect = EnvelopePipeline(fast, fs, counts.shape[1], scale, offset).process_offline(
        counts, tick=tick)
    default = EnvelopePipeline(load_dsp_config(), fs, counts.shape[1], scale,
                               offset).process_offline(counts, tick=tick)
    ok = ~np.isnan(expect)
    assert np.allclose(got[ok], expect[ok], rtol=1e-8)
    assert not np.allclose(got[ok & ~np.isnan(default)], default[ok & ~np.isnan(default)])
