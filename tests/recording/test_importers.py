"""Importers of peer tools' files: channel count, rate, sample count, markers, bad input.

Expected numbers, each checked independently of the importer (numpy/h5py/pyxdf reads of
the raw files, see the shared data MANIFEST):

| file | ch | fs (Hz) | samples | markers |
|---|---|---|---|---|
| OpenBCI GUI v6 raw text | 8 | 250.33 (unix-ms span; nominal 250) | 22490 | 0 |
| Chords-Python CSV (old layout) | 6 | 500.0 (time-of-day span) | 12248 | 0 |
| OpenSignals txt | 3 | 1000 | 5550 (nSeq 0..5549) | 0 |
| OpenSignals h5 | 1 | 1000 | 28519 (nsamples attr) | 0 |
| LabRecorder XDF | 8 | 250.135 (effective) | 23390 | 48 (0s/0e .. 3s/3e) |
| BrainFlow Cyton CSV (dev only) | 8 | 250.25 | 14507 | 0 |
| BYB WAV (dev only) | 1 | 44100 | 94208 (data chunk 188416 B) | 0 |
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from emgfb.errors import DataFormatError
from emgfb.recording import importers as imp
from emgfb.recording.importers import (
    choose_quantum,
    detect_format,
    read_any,
    session_arrays,
    ticks_from_counter,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "formats"
OPENBCI = DATA / "OpenBCI_GUI-v6-blinks-jawClench-alpha.txt"
CHORDS = DATA / "chords-python_emg_sample.csv"
OS_TXT = DATA / "opensignals_biosignalsplux_classification_game_2_1_stone.txt"
OS_H5 = DATA / "opensignals_emg_bursts_biceps.h5"
XDF = DATA / "labrecorder_openbci_forearm_test1.xdf"

CASES = [
    # file, format, channels, fs, samples, markers
    (OPENBCI, "openbci", 8, 250.33, 22490, 0),
    (CHORDS, "chords", 6, 500.0, 12248, 0),
    (OS_TXT, "opensignals", 3, 1000.0, 5550, 0),
    (OS_H5, "opensignals", 1, 1000.0, 28519, 0),
    (XDF, "xdf", 8, 250.135, 23390, 48),
]


@pytest.mark.parametrize(("path", "fmt", "n_ch", "fs", "n", "n_markers"), CASES,
                         ids=[c[1] + "-" + c[0].suffix for c in CASES])
def test_peer_file_imports_with_right_shape_rate_and_markers(path, fmt, n_ch, fs, n, n_markers):
    assert detect_format(path) == fmt
    rec = read_any(path)
    assert rec.source_format == fmt
    assert rec.n_channels == n_ch == len(rec.channel_names) == len(rec.units)
    assert rec.fs == pytest.approx(fs, rel=0.005)
    assert rec.n_samples == n
    assert rec.lost_samples == 0
    assert len(rec.markers) == n_markers
    assert np.all(np.isfinite(rec.data))
    assert rec.notes, "every peer format loses something; the importer must say what"


def test_openbci_rate_comes_from_the_whole_file_not_packet_batches():
    rec = read_any(OPENBCI, "openbci")
    # consecutive unix-ms stamps are 0 ms apart within a batch: a naive median would fail
    assert rec.fs == pytest.approx(250.331, abs=0.002)
    assert rec.nominal_fs == 250.0
    assert any("250.331" in n for n in rec.notes)
    assert rec.start_time == "2019-05-15T16:00:53.329Z"
    # first sample, straight from the text: 61379.36 µV on EXG Channel 0
    assert rec.data[0, 0] == pytest.approx(61379.36)


def test_xdf_markers_land_on_the_samples_at_their_time_stamps():
    import pyxdf

    rec = read_any(XDF)
    streams, _ = pyxdf.load_xdf(str(XDF))
    sig = next(s for s in streams if s["info"]["channel_format"][0] != "string")
    mk = next(s for s in streams if s["info"]["channel_format"][0] == "string")
    labels = [v[0] for v in mk["time_series"]]
    assert [m[1] for m in rec.markers] == labels
    assert labels[:4] == ["0s", "0e", "1s", "1e"]
    ticks = np.array([m[0] for m in rec.markers])
    assert np.all(np.diff(ticks) > 0)
    t_sig = sig["time_stamps"][ticks]
    assert np.all(np.abs(t_sig - mk["time_stamps"]) < 1.5 / rec.fs)


def test_opensignals_emg_scale_and_non_emg_channel_kept_in_counts():
    rec = read_any(OS_TXT)
    assert rec.channel_names == ["CH1", "CH2", "CH3"]
    assert rec.data[0].tolist() == [32964, 32844, 36622]
    assert rec.uv_per_unit[0] == pytest.approx(3.0 / 1000 / 65536 * 1e6)
    assert rec.uv_per_unit[2] is None  # accelerometer: no µV
    assert any("CH3 (XYZ)" in n for n in rec.notes)


def test_session_arrays_keep_source_resolution():
    rec = read_any(OPENBCI)
    arr = session_arrays(rec)
    assert arr.counts.dtype == np.int32
    np.testing.assert_allclose(arr.uv_per_count, 0.01)  # text printed with 2 decimals
    uv = (arr.counts - arr.offset_counts) * arr.uv_per_count
    np.testing.assert_allclose(uv, rec.data, atol=1e-6)
    assert arr.montage.labels == rec.channel_names
    assert [c.side for c in arr.montage.channels[:2]] == ["left", "right"]
    assert {c.muscle for c in arr.montage.channels} == {"other"}
    assert arr.meta["import"]["channel_names"] == rec.channel_names


def test_session_arrays_counts_exact_and_markers_kind_import():
    rec = read_any(XDF)
    arr = session_arrays(rec)
    assert all(m.kind == "import" for m in arr.markers) and len(arr.markers) == 48
    uv = (arr.counts - arr.offset_counts) * arr.uv_per_count
    # float32 source: error at most half a step, and the step is tiny against the signal
    assert np.max(np.abs(uv - rec.data)) <= np.max(arr.uv_per_count) / 2 + 1e-12
    chords = session_arrays(read_any(CHORDS))
    raw = np.loadtxt(CHORDS, delimiter=",", skiprows=1, usecols=range(2, 8))
    np.testing.assert_array_equal(chords.counts, raw.astype(np.int32))


def test_choose_quantum_fits_int32_and_reports_how():
    step, how = choose_quantum(np.array([187500.123456, -1.0]))
    assert step == pytest.approx(1e-4) and "coarsened" in how
    step, how = choose_quantum(np.array([1.25, -3.5]))
    assert step == pytest.approx(0.01) and "2 decimals" in how
    step, how = choose_quantum(np.array([1 / 3, 0.1], dtype=np.float32).astype(float))
    assert step == 2.0**-31 and "power-of-two" in how
    assert choose_quantum(np.array([5.0, 7.0]), known=1.0) == (1.0, "source resolution")


def test_counter_gaps_become_lost_samples(tmp_path):
    tick, dups = ticks_from_counter(np.array([250, 251, 253, 254, 254, 0, 1]), 256,
                                    tmp_path, "Counter")
    assert tick.tolist() == [0, 1, 3, 4, -1, 6, 7] and dups == 1
    with pytest.raises(DataFormatError, match="goes backwards at row 2"):
        ticks_from_counter(np.array([0, 1, 0]), None, tmp_path / "f.txt", "nSeq")


def test_chords_new_layout_with_counter_gap_needs_fs(tmp_path, rng):
    counts = rng.integers(0, 16384, size=(20, 3))
    counter = (np.arange(20) + 250) % 256
    counter[10:] = (counter[10:] + 2) % 256  # two lost samples after row 9
    lines = ["Counter,Channel1,Channel2,Channel3"]
    lines += [",".join(str(v) for v in [c, *row]) for c, row in zip(counter, counts,
                                                                   strict=True)]
    path = tmp_path / "chords_new.csv"
    path.write_text("\n".join(lines) + "\n")
    assert detect_format(path) == "chords"
    with pytest.raises(DataFormatError, match="pass --fs"):
        read_any(path)
    rec = read_any(path, fs=500)
    assert rec.fs == 500 and rec.n_samples == 20 and rec.lost_samples == 2
    assert rec.tick[9:11].tolist() == [9, 12]
    np.testing.assert_array_equal(rec.data, counts)
    assert any("2 samples lost" in n for n in rec.notes)


def test_generic_csv_time_column_units_markers_and_null_gaps(tmp_path, rng):
    n, fs = 400, 1000.0
    x = np.round(rng.normal(0, 0.1, size=(n, 2)), 4)
    rows = ["\ufefftime,zyg (mV),cor (mV),event"]
    for i in range(n):
        vals = "NULL,NULL" if 100 <= i < 110 else f"{x[i, 0]},{x[i, 1]}"
        ev = "smile" if i == 200 else ""
        rows.append(f"{i / fs:.4f},{vals},{ev}")
    path = tmp_path / "generic.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert detect_format(path) == "csv"
    rec = read_any(path)
    assert rec.fs == pytest.approx(fs)
    assert rec.channel_names == ["zyg", "cor"] and rec.units == ["mV", "mV"]
    assert rec.n_samples == n - 10 and rec.lost_samples == 10
    assert rec.markers == [(200, "smile")]
    np.testing.assert_allclose(rec.to_uv()[:100], x[:100] * 1000)


def test_generic_csv_without_time_uses_fs(tmp_path):
    path = tmp_path / "plain.tsv"
    path.write_text("a\tb\n1\t2\n3\t4\n5\t6\n")
    with pytest.raises(DataFormatError, match="no time column"):
        read_any(path, "csv")
    rec = read_any(path, "csv", fs=200)
    assert rec.fs == 200 and rec.data.tolist() == [[1, 2], [3, 4], [5, 6]]
    assert any("µV assumed" in n for n in rec.notes)


@pytest.mark.parametrize("fmt", ["openbci", "chords", "opensignals", "xdf", "brainflow"])
def test_wrong_claimed_format_is_one_clear_line(fmt, tmp_path):
    src = CHORDS if fmt != "chords" else OPENBCI
    with pytest.raises(DataFormatError) as err:
        read_any(src, fmt)
    msg = str(err.value)
    assert "\n" not in msg and str(src) in msg and "expected" in msg


def test_missing_directory_empty_and_binary_inputs(tmp_path):
    with pytest.raises(DataFormatError, match="file not found"):
        read_any(tmp_path / "nope.csv")
    with pytest.raises(DataFormatError, match="is a directory"):
        read_any(tmp_path)
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(DataFormatError, match="file is empty"):
        read_any(tmp_path / "empty.csv")
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DataFormatError, match="binary file of unknown format"):
        read_any(tmp_path / "blob.bin")
    with pytest.raises(DataFormatError, match="--format 'gdf'"):
        read_any(CHORDS, "gdf")


def test_truncated_files_are_rejected(tmp_path):
    cut = tmp_path / "cut_openbci.txt"
    text = OPENBCI.read_text()
    cut.write_text(text[: len(text) // 2 - 7])  # stops mid-row
    with pytest.raises(DataFormatError, match=r"line \d+ has \d+ columns, expected 25"):
        read_any(cut)
    cut_xdf = tmp_path / "cut.xdf"
    cut_xdf.write_bytes(XDF.read_bytes()[:2000])
    with pytest.raises(DataFormatError, match="cut.xdf"):
        read_any(cut_xdf)
    cut_h5 = tmp_path / "cut.h5"
    cut_h5.write_bytes(OS_H5.read_bytes()[:50000])
    with pytest.raises(DataFormatError, match="cut.h5"):
        read_any(cut_h5)


def test_opensignals_txt_with_broken_header(tmp_path):
    bad = tmp_path / "os.txt"
    lines = OS_TXT.read_text().splitlines()
    bad.write_text("\n".join([lines[0], "# {not json", *lines[2:]]) + "\n")
    with pytest.raises(DataFormatError, match="line 2: header is not valid JSON"):
        read_any(bad)


@pytest.mark.shared
def test_brainflow_cyton_csv(shared_data):
    path = shared_data / "formats" / "brainflow_cyton_emg_example_5.csv"
    assert detect_format(path) == "brainflow"
    rec = read_any(path)
    assert rec.n_channels == 8 and rec.n_samples == 14507 and rec.lost_samples == 0
    assert rec.fs == pytest.approx(250.25, rel=0.005)
    assert rec.start_time.startswith("2023-09-19T")
    assert any("EXG2, EXG3" in n and "rail" in n for n in rec.notes)
    arr = session_arrays(rec)
    np.testing.assert_allclose((arr.counts - arr.offset_counts) * arr.uv_per_count, rec.data,
                               atol=1e-5)


@pytest.mark.shared
def test_byb_wav_with_header_claiming_too_much(shared_data):
    path = shared_data / "formats" / "byb_app_biceps_pulse_1.wav"
    assert detect_format(path) == "wav"
    rec = read_any(path)
    assert rec.n_channels == 1 and rec.fs == 44100 and rec.n_samples == 94208
    assert any("RIFF header claims 188464 bytes, the file has 188460" in n for n in rec.notes)


def test_readers_table_covers_every_format():
    assert set(imp.READERS) == set(imp.FORMATS)


def test_brainflow_reader_takes_the_layout_from_brainflows_board_description(tmp_path):
    """A file BrainFlow itself wrote from its synthetic board (not the Cyton layout)."""
    bf = pytest.importorskip("brainflow.board_shim")
    from brainflow.data_filter import DataFilter

    board_id = bf.BoardIds.SYNTHETIC_BOARD.value
    descr = bf.BoardShim.get_board_descr(board_id)
    board = bf.BoardShim(board_id, bf.BrainFlowInputParams())
    bf.BoardShim.disable_board_logger()
    board.prepare_session()
    try:
        board.start_stream()
        deadline = time.monotonic() + 10
        while board.get_board_data_count() < 600 and time.monotonic() < deadline:
            time.sleep(0.05)  # BrainFlow offers no event to wait on; bounded by the deadline
        board.stop_stream()
        data = board.get_board_data()
    finally:
        board.release_session()
    assert data.shape[1] >= 600, "synthetic board produced too little data"
    path = tmp_path / "synthetic.csv"
    DataFilter.write_file(data, str(path), "w")
    assert detect_format(path) == "brainflow"
    rec = read_any(path)
    assert rec.header["board"] == descr["name"] != "Cyton"
    assert rec.n_channels == len(descr["emg_channels"])
    assert rec.n_samples == data.shape[1]
    np.testing.assert_allclose(rec.data, data[descr["emg_channels"]].T, rtol=1e-5, atol=1e-5)
    assert rec.fs == pytest.approx(descr["sampling_rate"], rel=0.05)
