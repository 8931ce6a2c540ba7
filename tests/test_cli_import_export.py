"""``emgfb import`` and ``emgfb export`` through the public CLI (in-process and one subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emgfb.cli import main
from emgfb.recording import open_recording
from emgfb.recording.export import read_csv_export, read_edf_export
from emgfb.recording.importers import read_any

DATA = Path(__file__).resolve().parent.parent / "data" / "formats"

# file, channels, fs, samples, markers (see tests/recording/test_importers.py)
PEERS = [
    ("OpenBCI_GUI-v6-blinks-jawClench-alpha.txt", 8, 250.33, 22490, 0),
    ("chords-python_emg_sample.csv", 6, 500.0, 12248, 0),
    ("opensignals_biosignalsplux_classification_game_2_1_stone.txt", 3, 1000.0, 5550, 0),
    ("opensignals_emg_bursts_biceps.h5", 1, 1000.0, 28519, 0),
    ("labrecorder_openbci_forearm_test1.xdf", 8, 250.135, 23390, 48),
]


@pytest.mark.parametrize(("name", "n_ch", "fs", "n", "n_markers"), PEERS,
                         ids=[p[0].split("_")[0] + Path(p[0]).suffix for p in PEERS])
def test_import_each_peer_file_to_a_session(name, n_ch, fs, n, n_markers, tmp_path, capsys):
    out = tmp_path / "s.h5"
    assert main(["import", str(DATA / name), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "not carried over" in text
    src = read_any(DATA / name)
    with open_recording(out) as rec:
        assert rec.n_channels == n_ch and rec.n_samples == n
        assert rec.fs == pytest.approx(fs, rel=0.005)
        assert len(rec.markers) == n_markers
        assert all(m.kind == "import" for m in rec.markers)
        assert rec.labels == src.channel_names
        assert rec.meta["extra"]["import"]["channel_names"] == src.channel_names
        np.testing.assert_allclose(rec.uv(), src.to_uv(), rtol=0,
                                   atol=np.max(rec.uv_per_count) / 2 + 1e-9)


def test_import_then_export_csv_and_edf(tmp_path, capsys):
    h5 = tmp_path / "xdf.h5"
    assert main(["import", str(DATA / PEERS[4][0]), "-o", str(h5), "--format", "xdf"]) == 0
    assert main(["export", str(h5), "--format", "csv", "--what", "raw",
                 "-o", str(tmp_path / "x.csv")]) == 0
    back = read_csv_export(tmp_path / "x.csv")
    with open_recording(h5) as rec:
        np.testing.assert_array_equal(back["values"], rec.counts)
        assert [m[1] for m in back["markers"]][:2] == ["import:0s", "import:0e"]
        uv = rec.uv()
    assert main(["export", str(h5), "--format", "bdf", "-o", str(tmp_path / "x.bdf")]) == 0
    bdf = read_edf_export(tmp_path / "x.bdf")
    assert sum(a[2].startswith("import:") for a in bdf["annotations"]) == 48
    span = uv.max(axis=0) - uv.min(axis=0)
    assert np.all(np.abs(bdf["physical"][: len(uv)] - uv).max(axis=0) <= span / 2**23)
    assert "wrote" in capsys.readouterr().out


def test_chords_new_layout_needs_fs_on_the_command_line(tmp_path, capsys):
    lines = DATA.joinpath(PEERS[1][0]).read_text().splitlines()[:400]
    new = tmp_path / "chords_new.csv"
    new.write_text("\n".join(ln.split(",", 1)[1] for ln in lines) + "\n")
    assert main(["import", str(new), "-o", str(tmp_path / "a.h5")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "pass --fs" in err and str(new) in err
    assert main(["import", str(new), "-o", str(tmp_path / "a.h5"), "--fs", "500"]) == 0
    with open_recording(tmp_path / "a.h5") as rec:
        assert rec.fs == 500 and rec.n_samples == 399


@pytest.mark.parametrize("case", ["missing", "directory", "wrong-format", "truncated",
                                  "exists"])
def test_import_bad_input_is_one_line_exit_2(case, tmp_path, capsys):
    src = DATA / PEERS[0][0]
    out = tmp_path / "o.h5"
    args = ["import", str(src), "-o", str(out)]
    expect = ""
    if case == "missing":
        args[1], expect = str(tmp_path / "none.txt"), "file not found"
    elif case == "directory":
        args[1], expect = str(tmp_path), "is a directory"
    elif case == "wrong-format":
        args += ["--format", "xdf"]
        expect = "expected an XDF file"
    elif case == "truncated":
        cut = tmp_path / "cut.txt"
        cut.write_bytes(src.read_bytes()[:200_003])
        args[1], expect = str(cut), "columns, expected 25"
    else:
        out.write_bytes(b"keep")
        expect = "exists"
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("emgfb import: error:") and "\n" not in err and expect in err
    if case == "exists":
        assert out.read_bytes() == b"keep"
    else:
        assert not out.exists()


def test_export_bad_input_and_overwrite_via_cli(tmp_path, capsys):
    h5 = tmp_path / "c.h5"
    assert main(["import", str(DATA / PEERS[1][0]), "-o", str(h5)]) == 0
    out = tmp_path / "c.edf"
    assert main(["export", str(h5), "--format", "edf", "-o", str(out)]) == 0
    size = out.stat().st_size
    capsys.readouterr()
    assert main(["export", str(h5), "--format", "edf", "--what", "raw", "-o", str(out)]) == 2
    assert "--force" in capsys.readouterr().err and out.stat().st_size == size
    assert main(["export", str(h5), "--format", "edf", "--what", "raw", "-o", str(out),
                 "--force"]) == 0
    assert read_edf_export(out)["dimension"][0] == "count"
    bad = tmp_path / "bad.h5"
    bad.write_text("hello")
    assert main(["export", str(bad), "--format", "csv", "-o", str(tmp_path / "b.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "bad.h5" in err and "not an HDF5 file" in err
    assert main(["export", str(tmp_path), "--format", "csv", "-o", str(tmp_path / "b.csv")]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_console_script_round_trip_subprocess(tmp_path):
    h5, csv = tmp_path / "os.h5", tmp_path / "os.csv"
    run = [sys.executable, "-m", "emgfb"]
    r = subprocess.run([*run, "import", str(DATA / PEERS[3][0]), "-o", str(h5)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "28519 samples at 1000.000 Hz" in r.stdout
    assert main(["export", str(h5), "--format", "csv", "--what", "uv", "-o", str(csv)]) == 0
    back = read_csv_export(csv)
    src = read_any(DATA / PEERS[3][0])
    np.testing.assert_allclose(back["values"], src.to_uv(), rtol=1e-9, atol=1e-9)


@pytest.mark.shared
def test_import_brainflow_via_cli(shared_data, tmp_path):
    out = tmp_path / "bf.h5"
    src = shared_data / "formats" / "brainflow_cyton_emg_example_5.csv"
    assert main(["import", str(src), "-o", str(out)]) == 0
    with open_recording(out) as rec:
        assert rec.n_channels == 8 and rec.n_samples == 14507
        assert rec.fs == pytest.approx(250.25, rel=0.005)


@pytest.fixture
def gapped_session(tmp_path, rng):
    """4-channel session with a gap of 25 ticks and a marker label holding a comma."""
    from emgfb.acquisition.source import Marker
    from emgfb.montage import default_montage
    from emgfb.recording import write_arrays

    n = 12000
    counts = np.clip(rng.normal(512, 80, size=(n, 4)), 0, 1023).astype(np.uint16)
    tick = np.arange(n, dtype=np.int64)
    tick[4000:] += 25
    markers = [Marker(100, "rep 1 start", "rep"), Marker(5000, 'say "hi", then relax', "note")]
    path = write_arrays(tmp_path / "g.h5", counts, 2000.0, default_montage(4), 2.0186, 512,
                        tick=tick, markers=markers, meta={"subject": "P042"})
    return path, counts, tick


@pytest.mark.parametrize("what", ["raw", "uv"])
def test_export_csv_then_import_gives_the_same_samples(gapped_session, tmp_path, what):
    path, counts, tick = gapped_session
    csv_path, back = tmp_path / "e.csv", tmp_path / "back.h5"
    assert main(["export", str(path), "--format", "csv", "--what", what,
                 "-o", str(csv_path)]) == 0
    assert main(["import", str(csv_path), "-o", str(back)]) == 0
    with open_recording(path) as src, open_recording(back) as rec:
        assert rec.fs == src.fs and rec.n_samples == src.n_samples
        np.testing.assert_array_equal(rec.tick, src.tick - src.tick[0])
        assert rec.lost_ticks == 25
        assert rec.montage.channels == src.montage.channels  # muscles and sides kept
        if what == "raw":
            np.testing.assert_array_equal(rec.counts, counts)
        np.testing.assert_allclose(rec.uv(), src.uv(), rtol=1e-9, atol=1e-9)
        assert [(m.tick, m.label) for m in rec.markers] == [
            (100, "rep:rep 1 start"), (5000, 'note:say "hi", then relax')]


def test_export_csv_then_process_reads_quoted_markers_and_gaps(gapped_session, tmp_path):
    path, counts, tick = gapped_session
    csv_path, env = tmp_path / "e.csv", tmp_path / "env.csv"
    assert main(["export", str(path), "--format", "csv", "-o", str(csv_path)]) == 0
    assert main(["process", str(csv_path), "-o", str(env)]) == 0
    from emgfb.dsp.signalfile import read_signal_csv

    table = read_signal_csv(csv_path)
    np.testing.assert_array_equal(table.tick, tick)  # the gap comes from the tick column
    assert table.fs == pytest.approx(2000.0) and len(table.names) == 4
    out = read_signal_csv(env)
    assert out.data.shape == (len(tick), 4) and np.isfinite(out.data[-100:]).all()
    assert env.read_text().startswith("# emgfb process: emgfb_version=")
