"""SessionWriter and write_arrays: layout, gaps, markers, metadata, failure state."""

from __future__ import annotations

import time

import h5py
import numpy as np
import pytest

from emgfb.acquisition.source import Chunk, Marker
from emgfb.errors import ConfigError, RecordingError
from emgfb.montage import default_montage
from emgfb.protocol import BoardInfo
from emgfb.recording import SessionWriter, check_subject, open_recording, write_arrays
from emgfb.recording import schema as S

INFO = BoardInfo(
    "1.2.3", "uno", 6, 1000.0, 10, 5000.0,
    "EMGFB fw=1.2.3 board=uno ch=6 fs=1000 bits=10 vref_mv=5000",
)
MONTAGE = default_montage(6)


def make_chunks(rng, n_chunks=20, size=37, gap_at=(5, 12), gap=(3, 40)):
    """Chunks with a counting ramp in channel 0 and tick jumps inside and between chunks."""
    chunks, tick0, k = [], 100, 0
    for i in range(n_chunks):
        tick = tick0 + np.arange(size)
        if i in gap_at:  # a jump between chunks
            tick += gap[gap_at.index(i)]
        if i == 8:  # a jump inside a chunk
            tick[20:] += 5
        tick0 = int(tick[-1]) + 1
        counts = rng.integers(0, 1024, (size, 6)).astype(np.uint16)
        counts[:, 0] = (np.arange(k, k + size) % 65536).astype(np.uint16)
        k += size
        overrun = np.zeros(size, bool)
        if i == 3:
            overrun[4] = True
        chunks.append(Chunk(tick, counts, overrun, 1.7e9 + i * 0.037))
    return chunks


def writer(path, **kw):
    kw.setdefault("flush_interval", 0.05)
    return SessionWriter(path, info=INFO, montage=MONTAGE, uv_per_count=2.0,
                         offset_counts=512, **kw)


def test_round_trip_raw_ticks_gaps_markers(tmp_path, rng):
    chunks = make_chunks(rng)
    path = tmp_path / "s.h5"
    with writer(path, subject="P007", notes="first session", dsp_config={"notch": 50},
                frontend={"name": "bioamp", "electrode": "Ag/AgCl 4 mm"}) as w:
        for c in chunks:
            w.write(c)
        w.add_marker(Marker(int(chunks[2].tick[3]), "rep 1 start", "rep"))
        w.set_calibration({"rest_uv": [1.5] * 6})
    assert not w.failed
    tick = np.concatenate([c.tick for c in chunks])
    counts = np.concatenate([c.counts for c in chunks])
    with open_recording(path) as rec:
        assert rec.n_samples == len(tick) == w.samples_written
        np.testing.assert_array_equal(rec.counts, counts)
        assert rec.counts.dtype == np.uint16
        np.testing.assert_array_equal(rec.tick, tick)
        # expected gaps: 3 ticks before chunk 5, 5 inside chunk 8, 40 before chunk 12
        assert rec.gaps.tolist() == [(5 * 37, 3), (8 * 37 + 20, 5), (12 * 37, 40)]
        assert rec.lost_ticks == 48 == w.lost_ticks
        assert rec.duration_s == pytest.approx((len(tick) + 48) / 1000.0)
        assert rec.markers == [Marker(int(chunks[2].tick[3]), "rep 1 start", "rep")]
        assert rec.marker_samples.tolist() == [2 * 37 + 3]
        assert rec.overrun.tolist() == [3 * 37 + 4]
        assert rec.host_time["sample"].tolist() == [37 * (i + 1) - 1 for i in range(20)]
        assert rec.meta["calibration"] == {"rest_uv": [1.5] * 6}
        assert rec.meta["dsp_config"] == {"notch": 50}
        assert rec.meta["frontend"]["electrode"] == "Ag/AgCl 4 mm"
        assert rec.meta["subject"] == "P007" and rec.meta["notes"] == "first session"
        assert rec.meta["complete"] is True
        assert rec.info == INFO
        assert rec.montage == MONTAGE
        np.testing.assert_allclose(rec.uv(), (counts - 512.0) * 2.0)


def test_file_attributes_follow_the_documented_schema(tmp_path, rng):
    path = tmp_path / "s.h5"
    with writer(path) as w:
        w.write(make_chunks(rng, 2)[0])
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "emgfb-session" and f.attrs["format_version"] == 1
        assert f.attrs["fs"] == 1000.0 and f.attrs["n_channels"] == 6
        assert f.attrs["start_time_utc"].endswith("Z")
        assert f.attrs["board_line"] == INFO.line and f.attrs["firmware"] == "1.2.3"
        ds = f[S.COUNTS]
        assert ds.maxshape == (None, 6) and ds.chunks is not None
        assert [s.decode() for s in f["channels/label"][()]] == MONTAGE.labels


def test_write_never_blocks_and_chunk_buffers_may_be_reused(tmp_path):
    path = tmp_path / "s.h5"
    buf = np.zeros((10, 6), np.uint16)
    with writer(path, flush_interval=1.0) as w:
        t0 = time.perf_counter()
        for i in range(200):
            buf[:] = i
            w.write(Chunk(np.arange(10) + 10 * i, buf, np.zeros(10, bool), 0.0))
        assert time.perf_counter() - t0 < 0.5
    with open_recording(path) as rec:
        assert rec.counts[::10, 0].tolist() == list(range(200))


def test_never_overwrites(tmp_path):
    path = tmp_path / "s.h5"
    path.write_bytes(b"precious")
    with pytest.raises(RecordingError, match="already exists"):
        writer(path)
    with pytest.raises(RecordingError, match="already exists"):
        write_arrays(path, np.zeros((3, 6), np.uint16), 1000, MONTAGE, 1, 0)
    assert path.read_bytes() == b"precious"


def test_exists_check_repeated_at_start(tmp_path):
    path = tmp_path / "s.h5"
    w = writer(path)
    path.write_bytes(b"appeared meanwhile")
    with pytest.raises(RecordingError, match="already exists"):
        w.start()
    assert path.read_bytes() == b"appeared meanwhile"


@pytest.mark.parametrize("name", ["Jane Doe", "jane", "Doe, Jane", "P 007", "x" * 40 + "1"])
def test_subject_names_are_refused(name, tmp_path):
    with pytest.raises(ConfigError, match="pseudonymous"):
        check_subject(name)
    with pytest.raises(ConfigError, match="never a name"):
        writer(tmp_path / "s.h5", subject=name)


@pytest.mark.parametrize("code", ["", "P007", "S-12", "pt_03"])
def test_subject_codes_are_accepted(code):
    assert check_subject(code) == code


def test_montage_must_match_board(tmp_path):
    with pytest.raises(RecordingError, match="8 channels, the board sends 6"):
        SessionWriter(tmp_path / "s.h5", info=INFO, montage=default_montage(8),
                      uv_per_count=1, offset_counts=0)


def test_uv_per_count_per_channel_length_checked(tmp_path):
    with pytest.raises(ConfigError, match="uv_per_count"):
        SessionWriter(tmp_path / "s.h5", info=INFO, montage=MONTAGE, uv_per_count=[1, 2],
                      offset_counts=0)


def test_failure_state_makes_write_a_no_op(tmp_path, rng):
    path = tmp_path / "s.h5"
    chunks = make_chunks(rng, 4, gap_at=(), gap=())
    w = writer(path).start()
    w.write(chunks[0])
    # out-of-order ticks are a caller bug the thread reports as a failure, not a crash
    w.write(chunks[0])
    w.close()
    assert w.failed and "not strictly increasing" in str(w.error)
    assert "\n" not in str(w.error)
    w.write(chunks[1])  # no-op, no exception
    with open_recording(path) as rec:
        assert rec.n_samples == 0 or rec.n_samples == len(chunks[0])


def test_markers_after_the_last_sample_are_kept(tmp_path, rng):
    path = tmp_path / "s.h5"
    chunks = make_chunks(rng, 2, gap_at=(), gap=())
    with writer(path) as w:
        for c in chunks:
            w.write(c)
        w.add_marker(Marker(10**6, "end", "phase"))
    with open_recording(path) as rec:
        assert rec.markers == [Marker(10**6, "end", "phase")]
        assert rec.marker_samples.tolist() == [rec.n_samples]


def test_chunk_markers_are_recorded(tmp_path, rng):
    path = tmp_path / "s.h5"
    c = make_chunks(rng, 1, gap_at=(), gap=())[0]
    c = Chunk(c.tick, c.counts, c.overrun, c.host_time, (Marker(int(c.tick[5]), "k", "key"),))
    with writer(path) as w:
        w.write(c)
    with open_recording(path) as rec:
        assert rec.markers == list(c.markers) and rec.marker_samples.tolist() == [5]


def test_write_arrays_int32_and_envelopes(tmp_path, rng):
    counts = rng.integers(-100_000, 100_000, (500, 6)).astype(np.int64)
    env = rng.random((500, 6))
    path = write_arrays(tmp_path / "imp.h5", counts, 250.0, MONTAGE, 0.1, 0,
                        markers=[Marker(7, "stim", "import")],
                        meta={"subject": "P9", "source_format": "csv"}, envelopes=env)
    with open_recording(path) as rec:
        assert rec.count_dtype == np.int32
        np.testing.assert_array_equal(rec.counts, counts)
        np.testing.assert_allclose(rec.envelopes, env.astype(np.float32))
        assert rec.info is None and rec.meta["extra"] == {"source_format": "csv"}
        assert rec.summary()["n_markers"] == 1 and rec.marker_samples.tolist() == [7]


def test_write_arrays_rejects_bad_input(tmp_path):
    with pytest.raises(RecordingError, match="shape"):
        write_arrays(tmp_path / "a.h5", np.zeros((5, 3), np.uint16), 1000, MONTAGE, 1, 0)
    with pytest.raises(RecordingError, match="strictly increasing"):
        write_arrays(tmp_path / "a.h5", np.zeros((3, 6), np.uint16), 1000, MONTAGE, 1, 0,
                     tick=np.array([0, 2, 2]))
    with pytest.raises(RecordingError, match="integers"):
        write_arrays(tmp_path / "a.h5", np.zeros((3, 6)), 1000, MONTAGE, 1, 0)
    assert not (tmp_path / "a.h5").exists()


@pytest.mark.parametrize("compression", ["gzip", "lzf", "none"])
def test_compression_options_round_trip(tmp_path, rng, compression):
    counts = rng.integers(0, 1024, (3000, 6)).astype(np.uint16)
    with writer(tmp_path / "s.h5", compression=compression) as w:
        w.write(Chunk(np.arange(3000), counts, np.zeros(3000, bool), 0.0))
    with open_recording(tmp_path / "s.h5") as rec:
        np.testing.assert_array_equal(rec.counts, counts)


def test_gap_rows_and_tick_to_sample_agree():
    tick = np.array([10, 11, 12, 20, 21, 30])
    gaps = S.gap_rows(tick, 0, None)
    assert gaps.tolist() == [(3, 7), (5, 8)]
    assert S.gap_rows(tick[3:], 3, 12).tolist() == [(3, 7), (5, 8)]
    samples = S.tick_to_sample(np.array([0, 10, 12, 15, 20, 21, 25, 30, 35]), 10, gaps)
    assert samples.tolist() == [0, 0, 2, 3, 3, 4, 5, 5, 10]


def test_json_documents_round_trip_and_are_optional(tmp_path, rng):
    path = tmp_path / "docs.h5"
    with writer(path) as w:
        for chunk in make_chunks(rng, n_chunks=3):
            w.write(chunk)
        w.set_document("protocol", {"name": "smile", "steps": [{"kind": "rest"}]})
        w.set_document("scores", [{"rep": 1, "pct_in_band": 62.5}])
        w.set_document("scores", [{"rep": 1, "pct_in_band": 70.0}])  # replaces
        with pytest.raises(ValueError, match="unknown document"):
            w.set_document("diary", {})
    with open_recording(path) as rec:
        assert rec.document("protocol")["name"] == "smile"
        assert rec.document("scores") == [{"rep": 1, "pct_in_band": 70.0}]
        assert rec.document("calibration") is None and rec.meta["calibration"] == {}
    with h5py.File(path, "r+") as f:  # a file from before /exercises existed
        del f[S.EXERCISES]
    with open_recording(path) as rec:
        assert rec.document("scores") is None


def _fresh_session(tmp_path, rng):
    """A closed SessionWriter session using every dataset (gaps, markers, documents,
    overrun) and a write_arrays session with envelopes."""
    path = tmp_path / "live.h5"
    with writer(path, subject="P1") as w:
        for c in make_chunks(rng):
            w.write(c)
        w.add_marker(Marker(150, "rep 1 start", "rep"))
        w.set_calibration({"rest_uv": [1.0] * 6})
        w.set_document("scores", [{"rep": 1}])
    arrays = write_arrays(tmp_path / "arrays.h5", rng.integers(0, 1024, (3000, 6)),
                          1000.0, MONTAGE, 1, 0, envelopes=rng.random((3000, 6)),
                          markers=[Marker(5, "m", "note")])
    return [path, arrays]


def _datasets(path):
    names = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset)
                     else None)
    return names


def test_every_dataset_opens_in_hdf5_1_10_h5dump(tmp_path, rng):
    """Debian's h5dump (HDF5 1.10, an independent reader) reads every dataset and
    attribute of a fresh session: the files use the 1.10 on-disk format, not 'latest'."""
    import shutil
    import subprocess

    h5dump = shutil.which("h5dump")
    if h5dump is None:
        pytest.skip("h5dump not installed (Debian package hdf5-tools, see scripts/install.sh)")
    version = subprocess.run([h5dump, "--version"], capture_output=True, text=True).stdout
    for path in _fresh_session(tmp_path, rng):
        names = _datasets(path)
        assert {"raw/counts", "raw/tick", "markers", "calibration/json"} <= set(names)
        for name in names:
            out = subprocess.run([h5dump, "-d", "/" + name, str(path)], capture_output=True,
                                 text=True, timeout=60)
            assert out.returncode == 0 and "ERROR" not in out.stdout + out.stderr, (
                f"{version.strip()} cannot read /{name} of {path.name}: "
                f"{(out.stdout + out.stderr)[-400:]}")
        attrs = subprocess.run([h5dump, "-A", str(path)], capture_output=True, text=True,
                               timeout=60)
        assert attrs.returncode == 0 and '"emgfb-session"' in attrs.stdout
    with h5py.File(path, "r") as f:  # superblock v3 = the 1.10 format, SWMR-capable
        assert f.id.get_create_plist().get_version()[0] <= 3


_READ_ALL = """
import sys, h5py
for path in sys.argv[1:]:
    with h5py.File(path, "r") as f:
        n = []
        f.visititems(lambda k, o: n.append(o[()].size) if isinstance(o, h5py.Dataset) else None)
        dict(f.attrs)
        print(h5py.version.hdf5_version, path, len(n), sum(n))
"""


def test_every_dataset_opens_with_h5py_on_hdf5_1_14(tmp_path, rng):
    """h5py built on HDF5 1.14 (another major version than ours) reads every dataset.

    Needs a second interpreter: ``$EMGFB_H5PY_1_14_PYTHON`` or ``.venv-h5py114/bin/python``
    (``python3 -m venv .venv-h5py114 && .venv-h5py114/bin/pip install 'h5py==3.12.*'``:
    its wheels bundle HDF5 1.14)."""
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    python = os.environ.get("EMGFB_H5PY_1_14_PYTHON") or str(root / ".venv-h5py114/bin/python")
    if not Path(python).exists():
        pytest.skip("no h5py on HDF5 1.14 at .venv-h5py114 (see this test's docstring)")
    paths = _fresh_session(tmp_path, rng)
    out = subprocess.run([python, "-c", _READ_ALL, *map(str, paths)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-600:]
    lines = out.stdout.split("\n")
    assert all(line.startswith("1.14.") for line in lines[:2]), out.stdout
    for path, line in zip(paths, lines, strict=False):
        with h5py.File(path, "r") as f:
            sizes = [f[name].size for name in _datasets(path)]
        assert line.split()[2:] == [str(len(sizes)), str(sum(sizes))]
