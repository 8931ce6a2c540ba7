"""Benchmark: writing and reading HDF5 sessions, 8 channels at 2 kHz, before and after.

Measures, in one run on this machine, for the current emgfb and for an earlier commit
(``--before``, default ``fb6c3fa``: the code PERFORMANCE.md measured; extracted with
``git archive`` and run in a subprocess, same data, same disk):

* the session writer fed like a live board: one append + flush per 0.5 s of data (1000
  rows), waiting for each, gzip-1 + shuffle. Figures: wall-clock x real time (it includes
  the hand-over to the writer thread and back, every 0.5 s of data) and CPU x real time
  (process CPU time: what recording costs the machine), bytes per sample (file size /
  samples x channels);
* reading the session back: open, all raw counts, all ticks;

against the baseline of PERFORMANCE.md: plain h5py, 1 s (2000-row) appends, flush each,
no SWMR, no compression, same run.

Run: ``python3 benchmarks/bench_recording.py [--minutes 60] [--before REF]``; results go to
``benchmarks/results/recording.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

FS, N_CH, BATCH = 2000, 8, 1000
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "recording.md"


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


def baseline(path: Path, data: np.ndarray, n_rows: int) -> dict:
    """PERFORMANCE.md baseline: plain h5py, 1 s (2000-row) appends, flush each, no SWMR."""
    t0, c0 = time.perf_counter(), time.process_time()
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("c", (0, N_CH), maxshape=(None, N_CH), dtype="u2",
                              chunks=(2048, N_CH))
        for a in range(0, n_rows, 2 * BATCH):
            i = a % (len(data) - 2 * BATCH)
            ds.resize(a + 2 * BATCH, axis=0)
            ds[a:] = data[i : i + 2 * BATCH]
            f.flush()
    return {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0,
            "size": path.stat().st_size}


def measure(folder: Path, minutes: float) -> dict:
    """Write and read a session with whatever emgfb is importable (run in a subprocess)."""
    from emgfb.acquisition.source import Chunk
    from emgfb.montage import default_montage
    from emgfb.protocol import BoardInfo
    from emgfb.recording import SessionWriter, open_recording

    info = BoardInfo("1.0.0", "nano", N_CH, FS, 10, 5000.0,
                     "EMGFB fw=1.0.0 board=nano ch=8 fs=2000 bits=10 vref_mv=5000")
    n_rows = int(minutes * 60 * FS)
    data = synthetic_minute(np.random.default_rng(1))
    path = folder / "session.h5"
    w = SessionWriter(path, info=info, montage=default_montage(N_CH), uv_per_count=2.0,
                      offset_counts=512, flush_interval=1e-4)
    overrun = np.zeros(BATCH, bool)
    t0, c0 = time.perf_counter(), time.process_time()
    w.start()
    for a in range(0, n_rows, BATCH):
        i = a % (len(data) - BATCH)
        w.write(Chunk(np.arange(a, a + BATCH, dtype=np.int64), data[i : i + BATCH], overrun,
                      0.0))
        w.wait_flushed(a + BATCH, timeout=30)  # every append is exactly 0.5 s of data
    w.close()
    out = {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0,
           "size": path.stat().st_size, "n_rows": n_rows}
    assert not w.failed, w.error
    os.system(f"cat {path} > /dev/null")  # both read from the page cache
    t0 = time.perf_counter()
    rec = open_recording(path)
    out["open"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    counts = rec.counts
    out["counts"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    tick = rec.tick
    out["tick"] = time.perf_counter() - t0
    assert counts.shape == (n_rows, N_CH) and len(tick) == n_rows
    rec.close()
    return out


def run_before(ref: str, folder: Path, minutes: float) -> dict | None:
    """:func:`measure` with emgfb as of commit ``ref`` (git archive, subprocess)."""
    src = folder / "before"
    src.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "emgfb", "configs"],
                             capture_output=True)
    if archive.returncode != 0:
        print(f"cannot extract {ref}: {archive.stderr.decode().strip()}")
        return None
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
    return _subprocess(src, folder, minutes)


def _subprocess(pythonpath: Path, folder: Path, minutes: float) -> dict:
    work = Path(tempfile.mkdtemp(dir=folder))
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    out = subprocess.run([sys.executable, __file__, "--measure", str(work), "--minutes",
                          str(minutes)], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--before", default="fb6c3fa", help="commit to compare with")
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.minutes)))
        return
    n_rows = int(args.minutes * 60 * FS)
    folder = Path(tempfile.mkdtemp(prefix="bench_recording_"))
    data = synthetic_minute(np.random.default_rng(1))
    base = baseline(folder / "baseline.h5", data, n_rows)
    before = run_before(args.before, folder, args.minutes)
    after = _subprocess(ROOT, folder, args.minutes)
    subprocess.run(["rm", "-rf", str(folder)], check=False)
    write_results(args, n_rows, base, before, after)


def write_results(args, n_rows: int, base: dict, before: dict | None, after: dict) -> None:
    dur = n_rows / FS
    n_values = n_rows * N_CH

    def row(name: str, r: dict) -> str:
        return (f"| {name} | {dur / r['wall']:,.0f} | {dur / r['cpu']:,.0f} | "
                f"{r['size'] / n_values:.3f} | {r['size'] / (args.minutes / 60) / 1e6:.1f} |")

    def read(r: dict) -> float:
        return r["open"] + r["counts"] + r["tick"]

    lines = [
        "# Recording benchmark (benchmarks/bench_recording.py)",
        "",
        f"{args.minutes:g} min of synthetic 10-bit EMG-like counts, 8 ch @ 2 kHz "
        f"({n_rows:,} samples), {time.strftime('%Y-%m-%d')}, h5py {h5py.version.version}, "
        f"HDF5 {h5py.version.hdf5_version}, one run: before = emgfb at `{args.before}`, "
        "after = this tree. Writers fed like a live board: one append per 0.5 s of data "
        "(1000 rows), waiting for each (wall time includes that hand-over), gzip-1 + "
        "shuffle. Baseline (PERFORMANCE.md): plain h5py, 1 s appends, flush each, no SWMR, "
        "no compression.",
        "",
        "| Writer | x real time (wall) | x real time (CPU) | bytes/sample | MB per hour |",
        "|---|---:|---:|---:|---:|",
        row("baseline: plain h5py 1 s appends, uncompressed", base),
    ]
    if before:
        lines.append(row(f"SessionWriter before ({args.before})", before))
    lines += [row("SessionWriter after", after), ""]
    lines += ["| Reading the session back | open | all raw counts | all ticks | total | "
              "speed-up |", "|---|---:|---:|---:|---:|---:|"]
    for name, r in ((f"before ({args.before})", before), ("after", after)):
        if r:
            lines.append(f"| {name} | {r['open']:.3f} s | {r['counts']:.3f} s | "
                         f"{r['tick']:.3f} s | {read(r):.3f} s | "
                         f"{read(before) / read(r) if before else float('nan'):.1f}x |")
    lines.append("")
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
