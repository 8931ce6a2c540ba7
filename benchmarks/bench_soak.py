"""Soak benchmark: the whole live app, recording, on a faulty virtual board, for a long time.

Not a test: it runs for ``--minutes`` (30 by default) and writes what it measured to
``benchmarks/results/soak.md``. Everything runs as the user would run it, through the
command line, in separate processes:

- ``emgfb virtual-board`` (8 ch @ 2 kHz) with a mix of link faults (bit flips, dropped
  bytes and frames, garbage, stalls, unplugs) from a seeded plan; the board counts what it
  injected and prints it when it is stopped;
- ``emgfb live --record`` on that board, offscreen at 1366x768 (serial driver, decoder, DSP,
  quality, recording and the 60 Hz GUI in one process), ended by SIGTERM after the soak
  as a service manager would (it must exit 143 with the file complete);
- the baseline, in the same run: ``emgfb record`` (headless, no GUI, no DSP) on a second
  virtual board without faults, for the same time.

Sampled every ``--sample-s`` seconds from ``/proc``: resident memory (RSS) and CPU time of
each app process. Reported: the RSS slope over the soak after a warm-up (least squares,
MB per hour; the goal is < 10 MB/h), CPU share of one core, the recording's completeness,
and the recording's counters (samples, lost ticks) beside the board's own counts.

Usage: ``python benchmarks/bench_soak.py [--minutes 30] [--sample-s 10] [--warmup-min 2]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "soak.md"
FAULTS = ("flip=0.0005,drop_byte=0.0002,drop_frame=0.0005,garbage=0.0002,stall=0.00005,"
          "disconnect_every=300,seed=3")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def emgfb(*args: str) -> list[str]:
    """The command line of an emgfb subcommand in this interpreter."""
    return [sys.executable, "-m", "emgfb", *args]


def start_board(tmp: Path, name: str, faults: str) -> tuple[subprocess.Popen, str]:
    """Start a virtual board process; return it and its stable port path."""
    link = tmp / name
    proc = subprocess.Popen(
        emgfb("virtual-board", "--channels", "8", "--fs", "2000", "--seed", "11",
              "--faults", faults, "--link", str(link)),
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()  # the pty path: the board is up
    return proc, str(link)


def stop_board(proc: subprocess.Popen) -> dict[str, float]:
    """Stop a board (SIGINT, as Ctrl-C) and parse the counters it prints."""
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    counts: dict[str, float] = {}
    for line in out.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            try:
                counts[key.strip()] = float(value)
            except ValueError:
                pass
    return counts


def sample(pid: int) -> tuple[float, float] | None:
    """(RSS in MB, CPU seconds) of a live process, or None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rss_kb = next(int(line.split()[1]) for line in status.splitlines()
                  if line.startswith("VmRSS:"))
    fields = stat.rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
    return rss_kb / 1024, cpu


def slope_mb_per_h(t: np.ndarray, rss: np.ndarray) -> float:
    """Least-squares slope of RSS against time, in MB per hour."""
    if len(t) < 3:
        return float("nan")
    return float(np.polyfit(t, rss, 1)[0] * 3600)


def summarise_recording(path: Path) -> dict[str, object]:
    """What the recording holds: completeness, samples, lost ticks, duration."""
    from emgfb.recording import open_recording

    with open_recording(path) as rec:
        return {"complete": bool(rec.meta["complete"]), "samples": int(rec.n_samples),
                "lost_ticks": int(rec.lost_ticks), "seconds": float(rec.duration_s)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--sample-s", type=float, default=10.0)
    ap.add_argument("--warmup-min", type=float, default=2.0)
    ap.add_argument("--no-write", action="store_true", help="print only, keep results file")
    args = ap.parse_args()
    seconds = args.minutes * 60
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}

    with tempfile.TemporaryDirectory(prefix="emgfb-soak-") as d:
        tmp = Path(d)
        board, port = start_board(tmp, "faulty", FAULTS)
        clean, clean_port = start_board(tmp, "clean", "")
        app_file, base_file = tmp / "soak.h5", tmp / "baseline.h5"
        app = subprocess.Popen(
            emgfb("live", "--source", port, "--record", str(app_file), "--size", "1366x768"),
            env=env, stderr=open(tmp / "app.err", "w"), text=True)  # noqa: SIM115
        base = subprocess.Popen(
            emgfb("record", "--source", clean_port, "--seconds", f"{seconds:g}",
                  "-o", str(base_file)),
            # a file, not a pipe: nobody reads a pipe during the soak, and a full one blocks
            env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "base.err", "w"), text=True)  # noqa: SIM115
        t0 = time.monotonic()
        series: dict[str, list[tuple[float, float, float]]] = {"app": [], "baseline": []}
        procs = {"app": app, "baseline": base}
        stopping = False
        while any(p.poll() is None for p in procs.values()):
            now = time.monotonic() - t0
            for name, p in procs.items():
                s = sample(p.pid) if p.poll() is None else None
                if s is not None:
                    series[name].append((now, *s))
            if now > seconds and app.poll() is None and not stopping:
                app.send_signal(signal.SIGTERM)  # the end of the soak for the app
                stopping = True
            if now > seconds + 120:
                for p in procs.values():
                    if p.poll() is None:
                        p.kill()
            time.sleep(args.sample_s)  # the benchmark's own sampling clock, not a test
        wall = time.monotonic() - t0
        injected = stop_board(board)
        stop_board(clean)
        app_err = (tmp / "app.err").read_text()
        rows = []
        for name, p, f in (("app", app, app_file), ("baseline", base, base_file)):
            arr = np.array(series[name]) if series[name] else np.zeros((0, 3))
            keep = arr[:, 0] >= args.warmup_min * 60 if len(arr) else np.zeros(0, bool)
            slope = slope_mb_per_h(arr[keep, 0], arr[keep, 1]) if keep.any() else float("nan")
            cpu = (arr[-1, 2] - arr[0, 2]) / (arr[-1, 0] - arr[0, 0]) * 100 if len(arr) > 1 \
                else float("nan")
            rec = summarise_recording(f) if f.exists() else {}
            rows.append((name, p.returncode, arr, slope, cpu, rec))

    lines = [f"# Soak: the whole live app recording on a faulty virtual board "
             f"({dt.date.today().isoformat()})", "",
             f"{args.minutes:g} min requested, {wall / 60:.1f} min run; 8 ch @ 2 kHz; "
             f"faults `{FAULTS}`; RSS sampled every {args.sample_s:g} s, slope fitted after "
             f"{args.warmup_min:g} min of warm-up. Machine: {os.cpu_count()} cores, "
             f"load average at the end {os.getloadavg()[0]:.2f}.", "",
             "| process | exit | RSS after warm-up → end (MB) | RSS slope (MB/h) "
             "| CPU (% of one core) | recording complete | samples | lost ticks | seconds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, code, arr, slope, cpu, rec in rows:
        warm = arr[arr[:, 0] >= args.warmup_min * 60] if len(arr) else arr
        rss = f"{warm[0, 1]:.0f} → {warm[-1, 1]:.0f}" if len(warm) else "-"
        label = "live app + GUI (faulty board)" if name == "app" else \
            "baseline: headless record (clean board)"
        lines.append(f"| {label} | {code} | {rss} | {slope:+.2f} | {cpu:.1f} | "
                     f"{rec.get('complete', '-')} | {rec.get('samples', '-')} | "
                     f"{rec.get('lost_ticks', '-')} | {rec.get('seconds', float('nan')):.1f} |")
    # the shape of the curve: a cache filling up flattens, a leak does not
    marks = np.arange(args.warmup_min * 60, wall + 1, 300.0)
    lines += ["", "RSS (MB) every 5 min after the warm-up, and the slope over the second half:",
              "", "| process | " + " | ".join(f"{m / 60:.0f} min" for m in marks)
              + " | slope, 2nd half (MB/h) |", "|---|" + "---|" * (len(marks) + 1)]
    for name, _code, arr, _slope, _cpu, _rec in rows:
        if not len(arr):
            continue
        at = [arr[min(np.searchsorted(arr[:, 0], m), len(arr) - 1), 1] for m in marks]
        half = arr[:, 0] >= (args.warmup_min * 60 + arr[-1, 0]) / 2
        lines.append(f"| {name} | " + " | ".join(f"{v:.1f}" for v in at)
                     + f" | {slope_mb_per_h(arr[half, 0], arr[half, 1]):+.2f} |")
    app_rec = rows[0][5]
    lines += ["", "Board's own counts (faulty board) beside the recording:", "",
              "| counter | board | recording |", "|---|---|---|"]
    for key, rec_key in (("frames_sent", "samples"), ("expected_frames", "samples"),
                         ("expected_lost_ticks", "lost_ticks"), ("dropped_frames", None),
                         ("bit_flips", None), ("garbage_bursts", None), ("stalls", None),
                         ("disconnects", None), ("unsettled_lost_ticks", None)):
        if key in injected:
            lines.append(f"| {key} | {injected[key]:g} | "
                         f"{app_rec.get(rec_key, '') if rec_key else ''} |")
    # ticks lost while the port was gone are not the board's to count (it rebooted): the
    # driver books them from the host clock and says so, one line per reconnect
    outage = sum(int(m.group(1)) for m in re.finditer(r"(\d+) ticks lost across the "
                                                        r"reconnect", app_err))
    if "expected_lost_ticks" in injected and "lost_ticks" in app_rec:
        board_lost = int(injected["expected_lost_ticks"])
        lines += ["", f"Lost ticks: board {board_lost} + {outage} booked across "
                  f"{app_err.count('ticks lost across the reconnect')} reconnects (host clock) "
                  f"= {board_lost + outage}; recording {app_rec['lost_ticks']} "
                  f"({'exact' if board_lost + outage == app_rec['lost_ticks'] else 'MISMATCH'})."]
    if app_err.strip():
        lines += ["", "App stderr (last lines):", "", "```",
                  *app_err.strip().splitlines()[-10:], "```"]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
