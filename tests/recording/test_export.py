"""Export of sessions to CSV and EDF+/BDF+: round trips, annotations, refusal to overwrite."""

from __future__ import annotations

import numpy as np
import pytest

from emgfb.acquisition.source import Marker
from emgfb.errors import RecordingError
from emgfb.montage import default_montage
from emgfb.recording import open_recording, write_arrays
from emgfb.recording.export import (
    export_recording,
    read_csv_export,
    read_edf_export,
)

FS = 1000.0
UV_PER_COUNT = 5000 / 1024 / 2420 * 1000  # Uno + BioAmp: ~2.02 µV per count
OFFSET = 512


@pytest.fixture
def session(tmp_path, rng):
    """6-channel 10-bit session, 3.2 s, one gap of 37 lost ticks, markers incl. one in the
    gap and one whose label needs CSV quoting."""
    n = 3200
    counts = np.clip(rng.normal(512, 60, size=(n, 6)), 0, 1023).astype(np.uint16)
    tick = np.arange(n, dtype=np.int64)
    tick[1500:] += 37
    markers = [Marker(10, "rep 1 start", "rep"), Marker(1510, "lost", "note"),
               Marker(2000, 'say "hi", then relax', "note")]
    path = write_arrays(tmp_path / "s.h5", counts, FS, default_montage(6), UV_PER_COUNT,
                        OFFSET, tick=tick, markers=markers, meta={"subject": "P042"})
    return path, counts, tick, markers


def test_csv_raw_round_trip_is_exact_with_gap_and_markers(session, tmp_path):
    path, counts, tick, markers = session
    res = export_recording(path, tmp_path / "raw.csv", "csv", "raw")
    back = read_csv_export(res.path)
    assert back["meta"]["what"] == "raw" and float(back["meta"]["fs"]) == FS
    assert back["labels"] == default_montage(6).labels
    np.testing.assert_array_equal(back["values"], counts)
    np.testing.assert_array_equal(back["tick"], tick)
    assert np.diff(back["tick"]).max() == 38  # the gap is a step, never filled
    np.testing.assert_allclose(back["time_s"], tick / FS, atol=1e-7)
    # the marker in the gap (tick 1510) lands on the first sample after it (row 1500)
    assert back["markers"] == [(10, "rep:rep 1 start"), (1500, "note:lost"),
                               (2000 - 37, 'note:say "hi", then relax')]


def test_csv_uv_matches_recording(session, tmp_path):
    path, counts, *_ = session
    back = read_csv_export(export_recording(path, tmp_path / "uv.csv", "csv", "uv").path)
    np.testing.assert_allclose(back["values"], (counts.astype(float) - OFFSET) * UV_PER_COUNT,
                               rtol=1e-9)


def test_csv_envelope_equals_dsp_pipeline(session, tmp_path):
    from emgfb.dsp import EnvelopePipeline, load_dsp_config

    path, counts, tick, _ = session
    res = export_recording(path, tmp_path / "env.csv", "csv", "envelope")
    back = read_csv_export(res.path)
    pipe = EnvelopePipeline(load_dsp_config(), FS, 6, UV_PER_COUNT, OFFSET)
    ref = pipe.process(counts.astype(float), tick=tick)
    assert np.array_equal(np.isnan(back["values"]), np.isnan(ref))
    assert np.isnan(ref).any() and np.isfinite(ref).any()
    np.testing.assert_allclose(back["values"], ref, rtol=1e-9, equal_nan=True)
    assert any("envelope" in n for n in res.notes)


@pytest.mark.parametrize("fmt", ["edf", "bdf"])
def test_edf_round_trip_counts_exact_uv_within_header_precision(session, tmp_path, fmt):
    path, counts, tick, markers = session
    raw = read_edf_export(export_recording(path, tmp_path / f"r.{fmt}", fmt, "raw").path)
    rows = tick - tick[0]
    np.testing.assert_array_equal(raw["physical"][rows], counts)
    assert raw["fs"] == FS and raw["dimension"][0] == "count"
    uv = read_edf_export(export_recording(path, tmp_path / f"u.{fmt}", fmt, "uv").path)
    np.testing.assert_allclose(uv["physical"][rows], (counts.astype(float) - OFFSET) * UV_PER_COUNT,
                               atol=1e-3 * UV_PER_COUNT)
    gap = uv["physical"][1500:1537]
    np.testing.assert_allclose(gap, 0.0, atol=1e-3)  # lost samples written as 0 µV ...
    skips = [(a[0], a[1]) for a in uv["annotations"] if a[2] == "BAD_ACQ_SKIP"]
    # ... and annotated BAD_ACQ_SKIP with their duration, as is the end padding
    # (3237 samples -> 4 records of 1000)
    assert skips == [pytest.approx((1.5, 0.037)), pytest.approx((3.237, 0.763))]
    onsets = {a[2]: a[0] for a in uv["annotations"]}
    for m in markers:
        assert onsets[f"{m.kind}:{m.label}"] == pytest.approx((m.tick - tick[0]) / FS, abs=1e-4)
    assert uv["labels"] == [f"EMG {lab}" for lab in default_montage(6).labels]


def test_edf_keeps_a_non_integer_rate_and_rescales_wide_imports(tmp_path, rng):
    fs = 250.331
    counts = rng.integers(-3_000_000, 6_000_000, size=(2000, 2)).astype(np.int32)
    path = write_arrays(tmp_path / "imp.h5", counts, fs, default_montage(2), 0.01, 0)
    with pytest.raises(RecordingError, match="counts span more than the EDF digital range"):
        export_recording(path, tmp_path / "x.edf", "edf", "raw")
    assert not (tmp_path / "x.edf").exists()
    bdf = read_edf_export(export_recording(path, tmp_path / "x.bdf", "bdf", "raw").path)
    np.testing.assert_array_equal(bdf["physical"][:2000], counts)
    assert bdf["fs"] == pytest.approx(fs, rel=1e-5)
    res = export_recording(path, tmp_path / "u.edf", "edf", "uv")
    edf = read_edf_export(res.path)
    step = 90_000 / 65535  # ~1.4 µV: EDF's 16 bits over the 90 mV span
    np.testing.assert_allclose(edf["physical"][:2000], counts * 0.01, atol=step)
    assert any("rescaled" in n and "bdf" in n for n in res.notes)


def test_export_never_overwrites_unless_forced(session, tmp_path):
    path, *_ = session
    out = tmp_path / "out.csv"
    out.write_text("precious\n")
    with pytest.raises(RecordingError, match="already exists; .* --force"):
        export_recording(path, out, "csv", "raw")
    assert out.read_text() == "precious\n"
    export_recording(path, out, "csv", "raw", force=True)
    assert out.read_text().startswith("# emgfb export:")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_export_rejects_bad_arguments_and_inputs(session, tmp_path):
    path, *_ = session
    with pytest.raises(RecordingError, match="--format 'xls': expected one of csv, edf, bdf"):
        export_recording(path, tmp_path / "o", "xls")
    with pytest.raises(RecordingError, match="--what 'rms'"):
        export_recording(path, tmp_path / "o", "csv", "rms")
    with pytest.raises(RecordingError, match="is a directory"):
        export_recording(path, tmp_path, "csv")
    with pytest.raises(RecordingError, match="does not exist"):
        export_recording(path, tmp_path / "no" / "o.csv", "csv")
    with pytest.raises(RecordingError, match="file not found"):
        export_recording(tmp_path / "missing.h5", tmp_path / "o.csv", "csv")
    text = tmp_path / "t.h5"
    text.write_text("not hdf5")
    with pytest.raises(RecordingError, match="not an HDF5 file"):
        export_recording(text, tmp_path / "o.csv", "csv")
    with open_recording(path) as rec:  # the source is untouched
        assert rec.n_samples == 3200
