"""open_recording: metadata, uv(), slicing, and files cut off by a crash."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

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
