"""EDF+/BDF+ exports read by tools emgfb did not write (MNE, edfio, pyedflib) and imported
back by ``emgfb import``: channel types, BAD_ACQ_SKIP over gaps, sub-second start, samples
within EDF quantisation, markers."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pytest

from emgfb.cli import main
from emgfb.montage import default_montage
from emgfb.recording import open_recording, write_arrays
from emgfb.records import Marker

FS = 2000.0
START = "2026-03-04T10:11:12.367250Z"


@pytest.fixture
def session(tmp_path, rng):
    """4 channels at 2 kHz, 6.2 s, two gaps (13 and 400 ticks), three markers, a sub-second
    start and a front-end band."""
    n = 12_400
    counts = np.clip(rng.normal(512, 70, size=(n, 4)), 0, 1023).astype(np.uint16)
    tick = np.arange(n, dtype=np.int64) + 5
    tick[3000:] += 13
    tick[9000:] += 400
    markers = [Marker(105, "rep 1 start", "rep"), Marker(3010, "in gap", "note"),
               Marker(9500, 'say "hi", then relax', "note")]
    path = write_arrays(tmp_path / "s.h5", counts, FS, default_montage(4), 2.0186, 512,
                        tick=tick, markers=markers,
                        meta={"subject": "P042", "start_time_utc": START,
                              "frontend": {"name": "bioamp", "gain": 2420,
                                           "band_hz": [72.0, 720.0], "offset_mv": 2500}})
    return path


@pytest.mark.parametrize("fmt", ["edf", "bdf"])
def test_mne_reads_emg_channels_and_bad_acq_skip_over_gaps(session, tmp_path, fmt):
    mne = pytest.importorskip("mne")
    out = tmp_path / f"s.{fmt}"
    assert main(["export", str(session), "--format", fmt, "-o", str(out)]) == 0
    reader = mne.io.read_raw_edf if fmt == "edf" else mne.io.read_raw_bdf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        raw = reader(out, preload=True, infer_types=True, verbose="error")
    assert set(raw.get_channel_types()) == {"emg"}
    assert raw.ch_names == default_montage(4).labels
    assert raw.info["highpass"] == pytest.approx(72.0) and raw.info["lowpass"] == 720.0
    skips = [(round(a["onset"], 4), round(a["duration"], 4)) for a in raw.annotations
             if a["description"] == "BAD_ACQ_SKIP"]
    assert skips[:2] == [(1.5, 0.0065), (4.5065, 0.2)]
    with open_recording(session) as rec:
        kept = raw.get_data(reject_by_annotation="omit", units="uV")
        assert kept.shape[1] == rec.n_samples  # gaps and padding excluded, nothing else
        np.testing.assert_allclose(kept.T, rec.uv(), atol=1e-3)


@pytest.mark.parametrize("fmt", ["edf", "bdf"])
def test_subsecond_start_reads_back_exactly_with_edfio(session, tmp_path, fmt):
    import edfio

    out = tmp_path / f"s.{fmt}"
    assert main(["export", str(session), "--format", fmt, "-o", str(out)]) == 0
    f = edfio.read_edf(out) if fmt == "edf" else edfio.read_bdf(out)
    assert f.startdatetime == dt.datetime(2026, 3, 4, 10, 11, 12, 367250)
    assert f.patient.code == "P042" and f.recording.equipment_code == "emgfb"
    onsets = {a.text: a.onset for a in f.annotations}
    assert onsets["rep:rep 1 start"] == pytest.approx(100 / FS)
    assert {s.prefiltering for s in f.signals} == {"HP:72Hz LP:720Hz"}


def test_pyedflib_reads_labels_and_annotations(session, tmp_path):
    pyedflib = pytest.importorskip("pyedflib")
    out = tmp_path / "s.edf"
    assert main(["export", str(session), "--format", "edf", "-o", str(out)]) == 0
    with pyedflib.EdfReader(str(out)) as r:
        assert r.getSignalLabels() == [f"EMG {lab}" for lab in default_montage(4).labels]
        texts = list(r.readAnnotations()[2])
    assert texts.count("BAD_ACQ_SKIP") == 3  # two gaps and the end padding
    assert 'note:say "hi", then relax' in texts


def test_anonymised_export_reduces_the_date_and_drops_the_code(session, tmp_path):
    import edfio

    out = tmp_path / "a.edf"
    assert main(["export", str(session), "--format", "edf", "--anonymise", "-o", str(out)]) == 0
    f = edfio.read_edf(out)
    assert f.startdatetime == dt.datetime(2026, 1, 1, 10, 11, 12, 367250)
    assert f.patient.code == "X"
    kept = tmp_path / "k.edf"
    assert main(["export", str(session), "--format", "edf", "--anonymise", "--no-reduce-dates",
                 "-o", str(kept)]) == 0
    assert edfio.read_edf(kept).startdate == dt.date(2026, 3, 4)


@pytest.mark.parametrize(("fmt", "what"), [("edf", "uv"), ("bdf", "uv"), ("bdf", "raw")])
def test_import_of_an_export_gives_the_samples_gaps_and_markers_back(session, tmp_path, fmt,
                                                                     what):
    out, back = tmp_path / f"s.{fmt}", tmp_path / "back.h5"
    assert main(["export", str(session), "--format", fmt, "--what", what,
                 "-o", str(out)]) == 0
    assert main(["import", str(out), "-o", str(back)]) == 0
    with open_recording(session) as src, open_recording(back) as rec:
        assert rec.fs == FS and rec.n_samples == src.n_samples
        np.testing.assert_array_equal(rec.tick, src.tick - src.tick[0])
        assert rec.lost_ticks == src.lost_ticks == 413
        if what == "raw":
            np.testing.assert_array_equal(rec.counts, src.counts)
        else:
            np.testing.assert_allclose(rec.uv(), src.uv(), atol=1e-6 * 2.0186)
        assert [(m.tick, m.label) for m in rec.markers] == [
            (m.tick - src.tick[0], f"{m.kind}:{m.label}") for m in src.markers]
        assert rec.meta["start_time_utc"] == "2026-03-04T10:11:12.367250Z"


def test_import_reads_a_foreign_edf_written_by_edfio(tmp_path):
    import edfio

    fs, n = 512, 5 * 512
    t = np.arange(n) / fs
    emg = 80 * np.sin(2 * np.pi * 90 * t)
    sigs = [edfio.EdfSignal(emg, fs, label="EMG chin", physical_dimension="uV",
                            physical_range=(-200, 200)),
            edfio.EdfSignal(emg / 1000, fs, label="EMG leg", physical_dimension="mV",
                            physical_range=(-0.2, 0.2)),
            edfio.EdfSignal(np.zeros(5), 1, label="Temp", physical_dimension="degC")]
    f = edfio.Edf(sigs, starttime=dt.time(8, 0, 0, 250000),
                  annotations=[edfio.EdfAnnotation(1.0, None, "lights off"),
                               edfio.EdfAnnotation(2.0, 0.5, "BAD_ACQ_SKIP")])
    path = tmp_path / "other.edf"
    f.write(path)
    out = tmp_path / "o.h5"
    assert main(["import", str(path), "-o", str(out)]) == 0
    with open_recording(out) as rec:
        assert rec.labels == ["chin", "leg"] and rec.fs == fs
        assert rec.n_samples == n - fs // 2 and rec.lost_ticks == fs // 2
        assert [(m.tick, m.label) for m in rec.markers] == [(fs, "lights off")]
        keep = np.ones(n, bool)
        keep[2 * fs:2 * fs + fs // 2] = False
        np.testing.assert_allclose(rec.uv()[:, 0], emg[keep], atol=400 / 65535)
        np.testing.assert_allclose(rec.uv()[:, 1], emg[keep], atol=400 / 65535)


@pytest.mark.parametrize(("cut", "needle"), [
    (0.5, "data records, the file holds"), (300, "header fields are not numbers")])
def test_import_of_a_damaged_edf_is_one_line_and_writes_nothing(session, tmp_path, capsys,
                                                                 cut, needle):
    out = tmp_path / "s.edf"
    assert main(["export", str(session), "--format", "edf", "-o", str(out)]) == 0
    data = out.read_bytes()
    bad = tmp_path / "bad.edf"
    bad.write_bytes(data[: int(len(data) * cut) + 7] if cut < 1 else data[:cut])
    capsys.readouterr()
    assert main(["import", str(bad), "-o", str(tmp_path / "b.h5")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and needle in err and str(bad) in err
    assert not (tmp_path / "b.h5").exists()
