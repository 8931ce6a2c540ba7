"""Benchmark: peak memory and time of the offline tools on a 2-hour session.

Makes a 2-hour 8 ch @ 2 kHz session (14.4 M samples, markers every 30 s, a gap every
10 min) with :class:`~emgfb.recording.SessionWriter`, then runs each command as its own
process and reads its peak resident memory from the kernel (``wait4`` rusage, max RSS):
``info``, ``process``, ``export --format csv``, ``export --format edf``, ``report``.
Each must stay <= 400 MB (issue 11) whatever the length of the session. Baseline in the
same run: a Python process that only imports what the commands import (numpy, scipy,
h5py, emgfb's CLI): the floor every command starts from.

Run: ``python3 benchmarks/bench_offline_memory.py [--hours 2] [--keep DIR] [--results MD]``;
results go to ``benchmarks/results/offline_memory.md`` (a shorter session, e.g.
``--hours 0.5 --results benchmarks/results/offline_memory_30min.md``, shows that the
peaks do not grow with the length).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FS, N_CH = 2000, 8
LIMIT_MB = 400
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "offline_memory.md"
BASELINE = "import numpy, scipy.signal, h5py, emgfb.cli, emgfb.recording, emgfb.dsp"


def make_session(path: Path, hours: float) -> float:
    """Write the session; returns seconds taken."""
    from emgfb.montage import default_montage
    from emgfb.protocol import BoardInfo
    from emgfb.recording import SessionWriter
    from emgfb.records import Chunk, Marker

    rng = np.random.default_rng(7)
    minute = np.clip(512 + rng.normal(0, 25, (60 * FS, N_CH)), 0, 1023).astype(np.uint16)
    info = BoardInfo("1.0.0", "nano", N_CH, FS, 10, 5000.0, "EMGFB fw=1.0.0 board=nano ch=8")
    t0 = time.perf_counter()
    block = 10 * FS
    with SessionWriter(path, info=info, montage=default_montage(N_CH), uv_per_count=2.0,
                       offset_counts=512, subject="P001") as w:
        tick0 = 0
        for k in range(int(hours * 3600 * FS) // block):
            if k and k % 60 == 0:
                tick0 += 50  # a gap every 10 minutes
            tick = np.arange(k * block, (k + 1) * block, dtype=np.int64) + tick0
            i = (k * block) % (len(minute) - block)
            markers = (Marker(int(tick[0]), f"mark {k}", "note"),) if k % 3 == 0 else ()
            # the writer's input queue holds 30 s (3 blocks): keep at most 2 waiting, so a
            # loaded machine slows this loop down instead of dropping blocks (as gaps)
            w.wait_flushed((k - 2) * block, timeout=300)
            w.write(Chunk(tick, minute[i : i + block], np.zeros(block, bool), 0.0, markers))
    assert not w.failed, w.error
    assert w.dropped_samples == 0, f"the writer dropped {w.dropped_samples} samples"
    return time.perf_counter() - t0


def run(args: list[str]) -> tuple[float, float, int, str]:
    """Run a command; returns (seconds, peak RSS MB, exit code, last stderr line)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    err = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    lines = [x for x in err.strip().splitlines() if x]
    return (time.perf_counter() - t0, usage.ru_maxrss / 1024, proc.returncode,
            lines[-1] if lines else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--keep", type=Path, help="reuse/keep the session in this folder")
    ap.add_argument("--results", type=Path, default=RESULTS,
                    help="results file (default: benchmarks/results/offline_memory.md)")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_offline_memory_"))
    folder.mkdir(parents=True, exist_ok=True)
    session = folder / f"session_{args.hours:g}h.h5"
    if not session.exists():
        t = make_session(session, args.hours)
        print(f"wrote {session} ({session.stat().st_size / 1e6:.0f} MB) in {t:.1f} s")
    emgfb = [sys.executable, "-m", "emgfb"]
    commands = [
        ("baseline: python importing numpy, scipy, h5py, emgfb", [sys.executable, "-c",
                                                                    BASELINE]),
        ("info", [*emgfb, "info", str(session)]),
        ("process (causal envelopes -> CSV)", [*emgfb, "process", str(session), "-o",
                                               str(folder / "env.csv"), "--force", "-q"]),
        ("export --format csv", [*emgfb, "export", str(session), "--format", "csv", "-o",
                                 str(folder / "raw.csv"), "--force"]),
        ("export --format edf", [*emgfb, "export", str(session), "--format", "edf", "-o",
                                 str(folder / "raw.edf"), "--force"]),
        ("report", [*emgfb, "report", str(session), "-o", str(folder / "report.html"),
                    "--force"]),
    ]
    rows = []
    for name, cmd in commands:
        seconds, rss, code, last = run(cmd)
        rows.append((name, seconds, rss, code, last))
        print(f"{name:55s} {seconds:7.1f} s  {rss:7.0f} MB  exit {code}"
              + (f"  ({last})" if code else ""))
    write_results(args.hours, session, rows, args.results)
    if args.keep is None:
        shutil.rmtree(folder)


def write_results(hours: float, session: Path, rows: list, out: Path = RESULTS) -> None:
    import h5py

    lines = [
        "# Offline tools on a long session (benchmarks/bench_offline_memory.py)",
        "",
        f"A {hours:g}-hour session, 8 ch @ 2 kHz ({int(hours * 3600 * FS):,} samples, "
        f"{session.stat().st_size / 1e6:.0f} MB, markers every 30 s, a gap every 10 min), "
        f"{time.strftime('%Y-%m-%d %H:%M')}, emgfb at `{_commit()}`, h5py "
        f"{h5py.version.version}. Each command runs as its own process; peak RSS from the "
        f"kernel (wait4). Limit: {LIMIT_MB} MB whatever the length. Machine shared with other "
        "jobs: times are indicative.",
        "",
        "| Command | time | peak RSS | within limit | exit |",
        "|---|---:|---:|---|---:|",
    ]
    for name, seconds, rss, code, last in rows:
        ok = "yes" if rss <= LIMIT_MB else "**no**"
        note = f" ({last[:80]})" if code else ""
        lines.append(f"| {name} | {seconds:.1f} s | {rss:.0f} MB | {ok} | {code}{note} |")
    lines.append("")
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


def _commit() -> str:
    out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)
    return out.stdout.strip() or "?"


if __name__ == "__main__":
    main()
