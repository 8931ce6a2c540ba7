"""ReplaySource: file:// URLs, pacing, gaps as tick jumps, markers, seek, loop."""

from __future__ import annotations

import time

import numpy as np
import pytest

from emgfb.acquisition.source import Chunk, Marker, open_source
from emgfb.errors import ConfigError, RecordingError
from emgfb.montage import default_montage
from emgfb.recording import SessionWriter, open_recording, write_arrays
from emgfb.recording.replay import ReplaySource

MONTAGE = default_montage(6)
FS = 1000.0


@pytest.fixture
def session(tmp_path, rng):
    """1.2 s at 1 kHz with gaps (one straddling a 20-sample chunk edge) and markers."""
    n = 1200
    tick = np.arange(n, dtype=np.int64) + 50
    tick[400:] += 7  # gap at sample 400 = a 20-sample chunk boundary
    tick[913:] += 30  # gap inside a chunk
    counts = rng.integers(0, 1024, (n, 6)).astype(np.uint16)
    counts[:, 0] = np.arange(n)
    markers = [Marker(int(tick[0]) - 5, "before", "phase"), Marker(int(tick[10]), "rep 1", "rep"),
               Marker(int(tick[399]) + 3, "in gap", "note"), Marker(int(tick[-1]), "last", "rep")]
    path = write_arrays(tmp_path / "s.h5", counts, FS, MONTAGE, 2.0, 512, tick=tick,
                        markers=markers)
    return path, tick, counts, markers


def drain(src, limit=100_000):
    chunks = []
    while not src.finished and len(chunks) < limit:
        c = src.read(0.5)
        if c is not None:
            chunks.append(c)
    return chunks


def test_unpaced_replay_reproduces_counts_ticks_gaps_and_markers(session):
    path, tick, counts, markers = session
    src = open_source(f"file://{path}?speed=0&chunk=20")
    assert isinstance(src, ReplaySource)
    with src:
        assert src.info.fs == FS and src.info.n_channels == 6
        assert src.montage == MONTAGE
        chunks = drain(src)
        assert src.finished and src.read(0.01) is None
        assert src.status.state == "finished"
    assert all(len(c) <= 20 for c in chunks)
    np.testing.assert_array_equal(np.concatenate([c.tick for c in chunks]), tick)
    np.testing.assert_array_equal(np.concatenate([c.counts for c in chunks]), counts)
    assert chunks[0].counts.dtype == np.uint16
    assert [m for c in chunks for m in c.markers] == markers
    # each marker comes with the chunk that covers its tick (or the first after a gap)
    for c in chunks:
        for m in c.markers:
            assert m.tick <= c.tick[-1] or c is chunks[-1] or m.tick < tick[0]
    assert src.stats.lost_ticks == 37 and src.stats.frames == len(tick)


def test_relative_file_url_and_parameters(session, monkeypatch):
    path, tick, *_ = session
    monkeypatch.chdir(path.parent)
    with open_source(f"file://{path.name}?speed=0&start=0.5&chunk=1") as src:
        first = src.read(0.1)
    assert len(first) == 1 and first.tick[0] == tick[0] + 500


@pytest.mark.parametrize("url, msg", [
    ("file://x.h5?speed=-1", "speed"), ("file://x.h5?chunk=0", "chunk"),
    ("file://x.h5?bogus=1", "unknown parameter 'bogus'"), ("file://?speed=0", "no file"),
    ("file://x.h5?loop=maybe", "loop"),
])
def test_bad_urls_are_config_errors(url, msg):
    with pytest.raises(ConfigError, match=msg):
        open_source(url)


def test_missing_or_bad_file_fails_at_start(tmp_path):
    src = open_source(f"file://{tmp_path}/nope.h5")  # constructing does no I/O
    with pytest.raises(RecordingError, match="nope.h5: file not found"):
        src.start()
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(RecordingError, match="not an HDF5 file"):
        open_source(f"file://{tmp_path}/text.h5").start()


def test_seek_backwards_keeps_ticks_increasing_with_a_seam(session):
    path, tick, counts, _ = session
    with ReplaySource(path, speed=0, chunk_ms=50) as src:
        a = src.read()
        b = src.read()
        src.seek(0.01)
        assert src.position_s == pytest.approx(0.01)
        c = src.read()
    assert c.tick[0] == b.tick[-1] + 2  # one-tick seam, never joined silently
    np.testing.assert_array_equal(c.counts, counts[10:60])
    np.testing.assert_array_equal(np.diff(np.concatenate([a.tick, b.tick, c.tick])) > 0, True)


def test_seek_past_the_end_finishes(session):
    path, *_ = session
    with ReplaySource(path, speed=0) as src:
        src.seek(100.0)
        assert src.finished and src.read(0.01) is None


def test_loop_restarts_with_increasing_ticks(session):
    path, tick, counts, markers = session
    with ReplaySource(path, speed=0, loop=True, chunk_ms=100) as src:
        chunks = [src.read() for _ in range(30)]
        assert not src.finished
    ticks = np.concatenate([c.tick for c in chunks])
    assert np.all(np.diff(ticks) > 0)
    got = np.concatenate([c.counts for c in chunks])
    np.testing.assert_array_equal(got[: 2 * len(counts)], np.concatenate([counts, counts]))
    labels = [m.label for c in chunks for m in c.markers]
    assert labels[:8] == [m.label for m in markers] * 2


def test_paced_replay_takes_the_recorded_time(tmp_path, rng):
    # 0.3 s of samples plus a 0.5 s gap: at speed 4 that is 0.2 s of wall time
    tick = np.arange(300)
    tick[150:] += 500
    path = write_arrays(tmp_path / "p.h5", rng.integers(0, 1024, (300, 6)).astype(np.uint16),
                        FS, MONTAGE, 1, 0, tick=tick)
    t0 = time.monotonic()
    with open_source(f"file://{path}?speed=4&chunk=10") as src:
        chunks = drain(src)
    elapsed = time.monotonic() - t0
    assert 0.18 <= elapsed < 2.0
    np.testing.assert_array_equal(np.concatenate([c.tick for c in chunks]), tick)


def test_paced_read_returns_none_when_nothing_is_due(session):
    path, *_ = session
    with ReplaySource(path, speed=0.001) as src:
        assert src.read(0.0) is None
        src.stop()
        assert src.read(1.0) is None


def test_empty_recording_finishes_at_once(tmp_path):
    path = write_arrays(tmp_path / "e.h5", np.zeros((0, 6), np.uint16), FS, MONTAGE, 1, 0)
    with ReplaySource(path, speed=0) as src:
        assert src.finished and src.read() is None


def test_replay_envelopes_equal_live_envelopes(tmp_path):
    dsp = pytest.importorskip("emgfb.dsp")
    cfg = dsp.load_dsp_config()
    live = open_source("sim://?speed=0&seed=3&ch=6&fs=1000&chunk=10")
    path = tmp_path / "live.h5"
    with live:
        pipe = dsp.EnvelopePipeline(cfg, FS, 6, 2.0, 512)
        env_live = []
        with SessionWriter(path, info=live.info, montage=live.montage, uv_per_count=2.0,
                           offset_counts=512) as w:
            for _ in range(200):
                c = live.read()
                # drop a few ticks once, as a flaky link would
                if _ == 50:
                    c = Chunk(c.tick[3:], c.counts[3:], c.overrun[3:], c.host_time)
                w.write(c)
                env_live.append(pipe.process(c.counts, tick=c.tick))
    env_live = np.concatenate(env_live)
    with open_recording(path) as rec:
        assert rec.lost_ticks == 3
    for chunk_ms in (10, 37):
        pipe = dsp.EnvelopePipeline(cfg, FS, 6, 2.0, 512)
        with open_source(f"file://{path}?speed=0&chunk={chunk_ms}") as src:
            env_replay = np.concatenate(
                [pipe.process(c.counts, tick=c.tick) for c in drain(src)]
            )
        np.testing.assert_array_equal(env_replay, env_live)
    assert np.isfinite(env_live[-1]).all()


def test_montage_is_none_until_start_as_for_every_source(session):
    # Source.montage is None when the source does not know it yet (the file is opened
    # at start); it was a read-only property that raised before start
    path, *_ = session
    src = ReplaySource(path, speed=0)
    assert src.montage is None
    with src:
        assert src.montage == MONTAGE
