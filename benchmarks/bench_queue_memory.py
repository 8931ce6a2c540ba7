"""Benchmark: memory of the serial reader behind a consumer that stops reading.

A virtual board (8 ch @ 2 kHz, in the same process) streams into :class:`SerialSource`
while nobody calls ``read()``. Each reader runs in its own child process; the figure is the
growth of the process's resident memory from one second after ``start`` to the end:

- "after": today's reader (its queue holds ``queue_s`` seconds of frames, the oldest are
  dropped and counted in ``overflow_frames``);
- "before": the reader at git revision ``BEFORE`` (unbounded queue), the same-run baseline.

Two paces: real time for ``--seconds`` (the issue's "60 s behind a stopped consumer") and
unpaced (the board sends as fast as the reader takes bytes: the worst case, many minutes
of data per wall second).

Run ``python3 benchmarks/bench_queue_memory.py [--seconds 60]``; results go to
``benchmarks/results/queue_memory.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "queue_memory.md"
BEFORE = "fb6c3fa"


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def child(which: str, speed: float, seconds: float) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_decoder import before_source

    from emgfb.acquisition.source import open_source
    from emgfb.acquisition.virtual_board import VirtualBoard

    with VirtualBoard(n_channels=8, fs=2000, speed=speed, pattern="ramp") as board:
        if which == "before":
            src = before_source(board.port, 0.016)
        else:
            src = open_source(f"serial://{board.port}?reset_wait=0")
        src.start()
        time.sleep(1.0)  # a benchmark's warm-up, not synchronisation
        rss0 = rss_mb()
        time.sleep(seconds)  # the consumer stopped reading
        rss1 = rss_mb()
        st = src.stats
        frames, overflow = st.frames, getattr(st, "overflow_frames", 0)
        src.stop()
    print(json.dumps({"growth_mb": rss1 - rss0, "frames": frames, "overflow": overflow}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--child", nargs=3, metavar=("WHICH", "SPEED", "SECONDS"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], float(args.child[1]), float(args.child[2]))
        return
    rows = []
    for speed, seconds in ((1.0, args.seconds), (0.0, min(args.seconds, 10.0))):
        for which in ("before", "after"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", which, str(speed), str(seconds)],
                check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            rows.append((speed, seconds, which, r))
            print(f"speed {speed:g}, {seconds:g} s, {which}: +{r['growth_mb']:.1f} MB, "
                  f"{r['frames']} frames, {r['overflow']} dropped and counted")
    lines = [
        "# Reader memory behind a consumer that stops reading "
        "(`python3 benchmarks/bench_queue_memory.py`)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M')}; load average "
        f"{os.getloadavg()[0]:.1f}. 8 ch @ 2 kHz virtual board; nobody calls read(). RSS "
        "growth of the reader's process from 1 s after start to the end. Before: the "
        f"reader at {BEFORE} (unbounded queue; baseline, same run). After: queue_s=30 "
        "(default), oldest frames dropped and counted.",
        "",
        "| board pace | seconds | reader | RSS growth, MB | frames decoded | "
        "frames dropped (counted) |",
        "|---|---|---|---|---|---|",
        *(f"| {'real time' if speed else 'unpaced'} | {seconds:g} | {which} | "
          f"{r['growth_mb']:.1f} | {r['frames']} | {r['overflow']} |"
          for speed, seconds, which, r in rows),
        "",
        "Goal: < 5 MB growth over 60 s; nothing dropped silently.",
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
