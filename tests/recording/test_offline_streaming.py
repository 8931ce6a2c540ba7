"""Offline tools read sessions block by block: iter_blocks, emgfb process, replay."""

from __future__ import annotations

import numpy as np
import pytest

from emgfb.cli import main
from emgfb.montage import default_montage
from emgfb.recording import open_recording, write_arrays

MONTAGE = default_montage(4)
FS = 1000.0


@pytest.fixture
def session(tmp_path, rng):
    """70,000 samples (several blocks) with two gaps, one across a block boundary."""
    n = 70_000
    counts = rng.integers(300, 700, (n, 4)).astype(np.uint16)
    tick = np.arange(n, dtype=np.int64) + 17
    tick[20_000:] += 5
    tick[65_536:] += 300
    path = write_arrays(tmp_path / "s.h5", counts, FS, MONTAGE, 2.0, 512, tick=tick)
    return path, counts, tick


@pytest.mark.parametrize("block_rows", [1, 777, 65_536, None])
def test_iter_blocks_covers_the_session_exactly(session, block_rows):
    path, counts, tick = session
    with open_recording(path) as rec:
        if block_rows == 1:
            blocks = list(rec.iter_blocks(1, start=19_998, stop=20_003))
            assert [b.start for b in blocks] == list(range(19_998, 20_003))
            assert np.concatenate([b.tick for b in blocks]).tolist() == tick[19_998:20_003].tolist()
            return
        blocks = list(rec.iter_blocks(block_rows))
        assert blocks[0].start == 0 and all(
            b.start == a.start + len(a.tick) for a, b in zip(blocks, blocks[1:], strict=False))
        np.testing.assert_array_equal(np.concatenate([b.tick for b in blocks]), tick)
        np.testing.assert_array_equal(np.concatenate([b.counts for b in blocks]), counts)
        np.testing.assert_array_equal(rec.read_ticks(0, len(tick)), tick)
        np.testing.assert_allclose(rec.to_uv(blocks[0].counts[:3]),
                                   (counts[:3] - 512.0) * 2.0)


def test_process_streams_and_equals_the_whole_array_pass(session, tmp_path, capsys):
    from emgfb.dsp import EnvelopePipeline, load_dsp_config

    path, counts, tick = session
    out = tmp_path / "env.csv"
    assert main(["process", str(path), "-o", str(out), "-q"]) == 0
    lines = [x for x in out.read_text().splitlines() if not x.startswith("#")]
    rows = np.genfromtxt(lines[1:], delimiter=",")
    header = lines[0]
    assert header == "time_s," + ",".join(f"{c}_envelope_uV" for c in MONTAGE.labels)
    pipe = EnvelopePipeline(load_dsp_config(), FS, 4, 2.0, 512.0)
    expected = pipe.process_offline(counts.astype(float), tick=tick)
    assert rows.shape == (len(tick), 5)
    np.testing.assert_allclose(rows[:, 0], (tick - tick[0]) / FS, rtol=1e-9)
    np.testing.assert_allclose(rows[:, 1:], expected, rtol=1e-8, equal_nan=True)
    assert capsys.readouterr().err == ""
