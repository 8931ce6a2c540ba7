"""Benchmark: HDF5 session recording and reading, 8 channels at 2 kHz.

Measures, in one run on this machine:

* sustained write throughput of :class:`SessionWriter` (samples/s and x real time) fed
  like a live board (20-sample chunks, one append + flush per 0.5 s of data, the real
  recording pattern) for gzip-1+shuffle, lzf and no compression, against the baseline of
  PERFORMANCE.md (plain h5py, 1 s buffered appends, no SWMR, no compression) measured in
  the same run;
* the caller-side cost of ``write()`` (it only enqueues);
* file size per hour;
* time to open a 1-hour session, read all raw counts, replay it through ``file://`` and
  replay-process it with the DSP envelope pipeline.

Run: ``python3 benchmarks/bench_recording.py [--minutes 60]``; results go to
``benchmarks/results/recording.md``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from emgfb.acquisition.source import Chunk
from emgfb.montage import default_montage
from emgfb.protocol import BoardInfo
from emgfb.recording import SessionWriter, open_recording
from emgfb.recording.replay import ReplaySource

FS, N_CH, CHUNK, BATCH = 2000, 8, 20, 1000
INFO = BoardInfo("1.0.0", "nano", N_CH, FS, 10, 5000.0,
                 "EMGFB fw=1.0.0 board=nano ch=8 fs=2000 bits=10 vref_mv=5000")
RESULTS = Path(__file__).parent / "results" / "recording.md"


def synthetic_minute(rng: np.random.Generator) -> np.ndarray:
    """60 s of 10-bit facial-EMG-like counts: mid-rail, 50 Hz hum, noise, bursts."""
    n = 60 * FS
    t = np.arange(n) / FS
    x = 512 + 15 * np.sin(2 * np.pi * 50 * t)[:, None] + rng.normal(0, 3, (n, N_CH))
    env = np.zeros(n)
    for start in range(4 * FS, n, 15 * FS):
        env[start : start + 5 * FS] = 1.0
    x += rng.normal(0, 40, (n, N_CH)) * env[:, None]
    return np.clip(np.round(x), 0, 1023).astype(np.uint16)


def baseline(path: Path, data: np.ndarray, n_rows: int) -> float:
    """PERFORMANCE.md baseline: plain h5py, 1 s (2000-row) appends, flush each, no SWMR."""
    t0 = time.perf_counter()
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("c", (0, N_CH), maxshape=(None, N_CH), dtype="u2",
                              chunks=(2048, N_CH))
        for a in range(0, n_rows, 2 * BATCH):
            block = data[a % len(data) : a % len(data) + 2 * BATCH]
            ds.resize(a + len(block), axis=0)
            ds[a:] = block
            f.flush()
    return time.perf_counter() - t0


def record(path: Path, data: np.ndarray, n_rows: int, compression: str) -> tuple[float, float]:
    """Feed the writer like a board; one append+flush per 0.5 s of data. Returns the
    total time and the mean cost of one write() call."""
    w = SessionWriter(path, info=INFO, montage=default_montage(N_CH), uv_per_count=2.0,
                      offset_counts=512, compression=compression, flush_interval=1e-4)
    overrun = np.zeros(BATCH, bool)
    t0 = time.perf_counter()
    w.start()
    for a in range(0, n_rows, BATCH):
        i = a % len(data)
        w.write(Chunk(np.arange(a, a + BATCH, dtype=np.int64), data[i : i + BATCH], overrun, 0.0))
        w.wait_flushed(a + BATCH, timeout=30)  # makes every append exactly 0.5 s of data
    w.close()
    assert not w.failed, w.error
    elapsed = time.perf_counter() - t0
    # caller-side cost of write() with board-sized chunks (the thread appends meanwhile)
    w = SessionWriter(path.with_suffix(".calls.h5"), info=INFO, montage=default_montage(N_CH),
                      uv_per_count=2.0, offset_counts=512, compression=compression)
    n_calls = 20_000
    overrun = np.zeros(CHUNK, bool)
    with w:
        t1 = time.perf_counter()
        for k in range(n_calls):
            i = (k * CHUNK) % (len(data) - CHUNK)
            w.write(Chunk(np.arange(k * CHUNK, (k + 1) * CHUNK, dtype=np.int64),
                          data[i : i + CHUNK], overrun, 0.0))
        per_write = (time.perf_counter() - t1) / n_calls
    path.with_suffix(".calls.h5").unlink()
    return elapsed, per_write


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    args = ap.parse_args()
    n_rows = int(args.minutes * 60 * FS)
    hours = args.minutes / 60
    data = synthetic_minute(np.random.default_rng(1))
    data = np.concatenate([data, data[: 2 * BATCH]])  # lets slices wrap without copies
    tmp = Path(tempfile.mkdtemp(prefix="bench_recording_"))
    rows = []
    t_base = baseline(tmp / "baseline.h5", data, n_rows)
    size_base = (tmp / "baseline.h5").stat().st_size
    rows.append(("baseline: h5py 1 s appends, none", t_base, size_base, float("nan")))
    print(f"baseline   {n_rows / t_base:12,.0f} samples/s  {n_rows / FS / t_base:7,.0f}x real time")
    for comp in ("gzip", "lzf", "none"):
        path = tmp / f"{comp}.h5"
        t, per_write = record(path, data, n_rows, comp)
        size = path.stat().st_size
        rows.append((f"SessionWriter, {comp}", t, size, per_write))
        print(f"{comp:10s} {n_rows / t:12,.0f} samples/s  {n_rows / FS / t:7,.0f}x real time  "
              f"{size / hours / 1e6:7.1f} MB/h  write() {per_write * 1e6:.1f} us")
    # reading the default (gzip) session back
    path = tmp / "gzip.h5"
    t0 = time.perf_counter()
    rec = open_recording(path)
    t_open = time.perf_counter() - t0
    t0 = time.perf_counter()
    counts = rec.counts
    t_read = time.perf_counter() - t0
    assert counts.shape == (n_rows, N_CH)
    rec.close()
    t0 = time.perf_counter()
    n = 0
    with ReplaySource(path, speed=0, chunk_ms=20) as src:
        for c in src.chunks():
            n += len(c)
    t_replay = time.perf_counter() - t0
    assert n == n_rows
    t_proc = float("nan")
    try:
        from emgfb.dsp import EnvelopePipeline, load_dsp_config
    except ImportError:
        pass
    else:
        pipe = EnvelopePipeline(load_dsp_config(), FS, N_CH, 2.0, 512)
        t0 = time.perf_counter()
        with ReplaySource(path, speed=0, chunk_ms=100) as src:
            for c in src.chunks():
                pipe.process(c.counts, tick=c.tick)
        t_proc = time.perf_counter() - t0
    dur = n_rows / FS
    print(f"open {t_open * 1e3:.1f} ms, read all {t_read:.2f} s, replay {t_replay:.2f} s "
          f"({dur / t_replay:,.0f}x), replay+envelopes {t_proc:.1f} s ({dur / t_proc:,.0f}x)")
    write_results(args.minutes, n_rows, rows, t_open, t_read, t_replay, t_proc)
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()


def write_results(minutes, n_rows, rows, t_open, t_read, t_replay, t_proc) -> None:
    dur = n_rows / FS
    hours = minutes / 60
    t_base = rows[0][1]
    lines = [
        "# Recording benchmark (benchmarks/bench_recording.py)",
        "",
        f"{minutes:g} min of synthetic 10-bit EMG-like counts, 8 ch @ 2 kHz ({n_rows:,} "
        f"samples), {time.strftime('%Y-%m-%d')}, h5py {h5py.version.version}, HDF5 "
        f"{h5py.version.hdf5_version}. The writer appends + flushes once per 0.5 s of data "
        "(1000 rows; the write() column: 20-sample chunks), the live pattern, SWMR on. "
        "Baseline (PERFORMANCE.md): "
        "plain h5py, 1 s appends, flush each, no SWMR, no compression, same run.",
        "",
        "| Writer | samples/s | x real time | vs baseline | MB per hour | write() call |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, t, size, per_write in rows:
        pw = "-" if per_write != per_write else f"{per_write * 1e6:.1f} µs"
        lines.append(f"| {name} | {n_rows / t:,.0f} | {dur / t:,.0f} | {t_base / t:.2f} | "
                     f"{size / hours / 1e6:.1f} | {pw} |")
    lines += [
        "",
        f"Reading the gzip session back: open {t_open * 1e3:.1f} ms, all raw counts "
        f"{t_read:.2f} s, replay through `file://?speed=0` (20 ms chunks) {t_replay:.2f} s "
        f"({dur / t_replay:,.0f}x real time), replay + DSP envelopes (100 ms chunks) "
        f"{t_proc:.1f} s ({dur / t_proc:,.0f}x real time).",
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
