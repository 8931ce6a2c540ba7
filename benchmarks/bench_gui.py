"""Benchmark of the live GUI: display fps, CPU share of the whole live app, latency.

Runs under its own Xvfb (started here). For each configuration (6 / 8 channels at 1 / 2
kHz, set-up view with a 10 s window) a virtual board streams protocol-v1 frames on a pty
from a separate process, and the live app (serial driver + decoder + DSP + quality +
HDF5 recording + GUI) runs in a child process that reports:

- display fps (real paints of the first trace plot per second),
- CPU share of one core of the whole app process (all its threads),
- end-to-end latency of the envelope: from the board putting a sample on the serial port
  (board clock: tick / fs after its start, same CLOCK_MONOTONIC) and from the host
  receiving it (the chunk's host time) to the paint that first shows it.

Baselines measured in the same run: ``headless`` (the same app without GUI: what the
display adds) and, at 8 ch @ 2 kHz, ``naive`` (every frame re-plots the whole 10 s window
at full resolution, as peer GUIs do). Results go to ``benchmarks/results/gui.md``.

Usage: ``python benchmarks/bench_gui.py [--seconds 10] [--warmup 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "gui.md"
CONFIGS = [(6, 1000), (6, 2000), (8, 1000), (8, 2000)]
T50_MS = 31.0  # step response (50 %) of the 100 ms moving RMS (PERFORMANCE.md)


# -- child: the virtual board --------------------------------------------------------------

def board_main(ch: int, fs: int) -> None:
    """Run a virtual board; print its port, then its start time once streaming."""
    from emgfb.acquisition.virtual_board import VirtualBoard

    board = VirtualBoard(n_channels=ch, fs=fs, seed=7)
    board.start()
    print(json.dumps({"port": board.port}), flush=True)
    while not board.streaming:
        time.sleep(0.01)  # a benchmark helper polling another process, not a test
    print(json.dumps({"t0": board._t0}), flush=True)  # noqa: SLF001 - board clock origin
    sys.stdin.read()  # until the parent closes our stdin
    board.stop()


# -- child: the live app -------------------------------------------------------------------

def app_main(port: str, ch: int, fs: int, mode: str, seconds: float, warmup: float,
             view: str) -> None:
    """Run the live app on ``port`` and print one JSON line of measurements."""
    from emgfb.live import LiveSession

    tmp = Path(tempfile.mkdtemp(prefix="emgfb-bench-"))
    session = LiveSession(f"serial://{port}")
    session.start()
    session.start_record(tmp / "bench.h5")
    wall_minus_mono = time.time() - time.monotonic()
    out: dict = {"mode": mode, "ch": ch, "fs": fs, "view": view}
    try:
        if mode == "headless":
            session.wait_for_index(int(warmup * fs), timeout=warmup + 10)
            c0, w0, i0 = time.process_time(), time.monotonic(), session.newest_index
            session.wait_for_index(i0 + int(seconds * fs), timeout=seconds + 10)
            out["cpu"] = (time.process_time() - c0) / (time.monotonic() - w0)
        else:
            out.update(_run_gui(session, mode, seconds, warmup, view, wall_minus_mono))
        c = session.counters()
        out.update(frames=c.frames, lost=c.lost_ticks, crc=c.crc_errors)
    finally:
        session.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out), flush=True)


def _run_gui(session, mode: str, seconds: float, warmup: float, view: str,
             wall_minus_mono: float) -> dict:
    from PyQt5 import QtCore

    from emgfb.gui.app import ensure_app
    from emgfb.gui.main_window import MainWindow

    app = ensure_app()
    win = MainWindow(session, view, mains_power=False)
    win.setup_view.window_box.setCurrentIndex(win.setup_view.window_box.findData(10))
    win.resize(1400, 900)
    win.show()
    if mode == "naive":
        _make_naive(win)
    marks: dict = {}

    def begin() -> None:
        marks.update(cpu=time.process_time(), wall=time.monotonic(),
                     paints=win.frame_stats.n_paints, lat=len(win.frame_stats.latencies),
                     drawn=len(win.frame_stats.drawn))

    def end() -> None:
        marks.update(cpu1=time.process_time(), wall1=time.monotonic(),
                     paints1=win.frame_stats.n_paints)
        win.close()

    QtCore.QTimer.singleShot(int(warmup * 1000), begin)
    QtCore.QTimer.singleShot(int((warmup + seconds) * 1000), end)
    app.exec_()
    fs = win.frame_stats
    wall = marks["wall1"] - marks["wall"]
    lat = list(fs.latencies)[marks["lat"]:]
    drawn = list(fs.drawn)[marks["drawn"]:]
    return {
        "fps": (marks["paints1"] - marks["paints"]) / wall,
        "cpu": (marks["cpu1"] - marks["cpu"]) / wall,
        "lat_rx_ms": [1000 * v for v in lat],
        # paint time (monotonic) and newest index drawn, for the board-clock latency
        "drawn": [(t - wall_minus_mono, i) for t, i in drawn],
    }


def _make_naive(win) -> None:
    """Replace the set-up view's drawing by the peer approach: full window, full rate."""
    import numpy as np

    from emgfb.gui import theme

    view, s = win.setup_view, win.session
    raw_curves, env_curves = [], []
    for i, plot in enumerate(view.plots):
        view.raw_curves[i].hide()
        view.env_curves[i].hide()
        raw_curves.append(plot.plot(pen=theme.pen(theme.RAW_TRACE)))
        env_curves.append(plot.plot(pen=theme.pen(theme.ENVELOPE)))

    def refresh() -> None:
        n = int(view.model.filtered.window_s * s.fs)
        first, raw = s.read("filtered", None, n)
        _, env = s.read("envelope", None, n)
        x = (np.arange(len(raw)) - (len(raw) - 1)) / s.fs
        for i in range(len(view.plots)):
            raw_curves[i].setData(x, raw[:, i], connect="finite")
            env_curves[i].setData(x[-len(env):], env[:, i], connect="finite")

    view.refresh = refresh


# -- parent --------------------------------------------------------------------------------

def start_xvfb() -> tuple[subprocess.Popen, str]:
    """Start Xvfb on a free display number."""
    for num in range(91, 140):
        if Path(f"/tmp/.X11-unix/X{num}").exists() or Path(f"/tmp/.X{num}-lock").exists():
            continue
        proc = subprocess.Popen(["Xvfb", f":{num}", "-screen", "0", "1600x1000x24",
                                 "-nolisten", "tcp"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        for _ in range(100):
            if Path(f"/tmp/.X11-unix/X{num}").exists():
                return proc, f":{num}"
            if proc.poll() is not None:
                break
            time.sleep(0.05)  # waiting for an external server to come up
        proc.kill()
    raise SystemExit("bench_gui: could not start Xvfb")


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_one(env: dict, ch: int, fs: int, mode: str, args, xvfb_pid: int,
            view: str = "setup") -> dict:
    board = subprocess.Popen([sys.executable, __file__, "--board", str(ch), str(fs)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        port = json.loads(board.stdout.readline())["port"]
        x0, t0 = proc_cpu_seconds(xvfb_pid), time.monotonic()
        app = subprocess.run(
            [sys.executable, __file__, "--app", port, str(ch), str(fs), mode,
             str(args.seconds), str(args.warmup), view],
            capture_output=True, text=True, env=env, timeout=args.seconds + args.warmup + 60)
        xvfb_share = (proc_cpu_seconds(xvfb_pid) - x0) / (time.monotonic() - t0)
        board_t0 = json.loads(board.stdout.readline())["t0"]
    finally:
        board.stdin.close()
        board.wait(10)
    lines = [ln for ln in app.stdout.splitlines() if ln.startswith("{")]
    if app.returncode != 0 or not lines:
        raise SystemExit(f"bench_gui: app failed ({mode} {ch}x{fs}):\n{app.stderr[-2000:]}")
    res = json.loads(lines[-1])
    if mode != "headless":
        res["xvfb_cpu"] = xvfb_share
        res["lat_board_ms"] = [1000 * (t - (board_t0 + (i + 1) / fs))
                               for t, i in res.pop("drawn")]
    return res


def pct(values: list[float], q: float) -> float:
    """q-th percentile (nearest rank)."""
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--board", nargs=2, type=int, help=argparse.SUPPRESS)
    p.add_argument("--app", nargs=7, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.board:
        return board_main(*args.board)
    if args.app:
        port, ch, fs, mode, sec, warm, view = args.app
        return app_main(port, int(ch), int(fs), mode, float(sec), float(warm), view)

    xvfb, display = start_xvfb()
    env = {**os.environ, "DISPLAY": display}
    env.pop("QT_QPA_PLATFORM", None)
    rows = []
    try:
        plan = [(ch, fs, "headless", "setup") for ch, fs in CONFIGS]
        plan += [(ch, fs, "app", "setup") for ch, fs in CONFIGS]
        plan += [(8, 2000, "app", "feedback"), (8, 2000, "naive", "setup")]
        for ch, fs, mode, view in plan:
            r = run_one(env, ch, fs, mode, args, xvfb.pid, view)
            rows.append(r)
            print(_line(r), flush=True)
    finally:
        xvfb.send_signal(signal.SIGTERM)
        xvfb.wait(10)
    write_results(rows, args)


def _line(r: dict) -> str:
    base = f"{r['mode']:8s} {r['view']:8s} {r['ch']} ch @ {r['fs']} Hz: cpu {100 * r['cpu']:5.1f} %"
    if r["mode"] == "headless":
        return base + f"  lost {r['lost']}"
    return (base + f"  fps {r['fps']:5.1f}  Xvfb {100 * r['xvfb_cpu']:4.1f} %"
            f"  latency rx->drawn median {statistics.median(r['lat_rx_ms']):5.1f} ms"
            f" p95 {pct(r['lat_rx_ms'], 95):5.1f}; board->drawn median"
            f" {statistics.median(r['lat_board_ms']):5.1f} p95 {pct(r['lat_board_ms'], 95):5.1f}"
            f"  lost {r['lost']}")


def write_results(rows: list[dict], args) -> None:
    head = {(r["ch"], r["fs"]): r for r in rows if r["mode"] == "headless"}
    out = [
        "# GUI benchmark (`benchmarks/bench_gui.py`)",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} cores, Xvfb "
        f"1600x1000x24, window 1400x900, {args.seconds:g} s after {args.warmup:g} s warm-up. "
        "Source: a virtual board on a pty (separate process) -> serial driver -> decoder "
        "-> DSP + quality -> HDF5 recording -> GUI, all in the measured app process. "
        "Set-up view with a 10 s window. CPU = share of one core of the app process "
        "(all threads); Xvfb's own CPU is listed apart. The machine is shared and noisy: "
        "compare rows of one run, not runs.",
        "",
        "| mode | view | ch @ fs | display fps | app CPU | of which headless | Xvfb CPU "
        "| rx→drawn median / p95 (ms) | board→drawn median / p95 (ms) | lost ticks |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        h = head.get((r["ch"], r["fs"]))
        key = f"{r['ch']} @ {r['fs'] // 1000} kHz"
        if r["mode"] == "headless":
            out.append(f"| headless (baseline) | — | {key} | — | {100 * r['cpu']:.1f} % | — | — "
                       f"| — | — | {r['lost']} |")
            continue
        out.append(
            f"| {r['mode']} | {r['view']} | {key} | {r['fps']:.1f} | {100 * r['cpu']:.1f} % | "
            f"{100 * h['cpu']:.1f} % | {100 * r['xvfb_cpu']:.1f} % | "
            f"{statistics.median(r['lat_rx_ms']):.1f} / {pct(r['lat_rx_ms'], 95):.1f} | "
            f"{statistics.median(r['lat_board_ms']):.1f} / {pct(r['lat_board_ms'], 95):.1f} | "
            f"{r['lost']} |")
    app8 = next(r for r in rows if r["mode"] == "app" and r["view"] == "setup"
                and (r["ch"], r["fs"]) == (8, 2000))
    naive = next(r for r in rows if r["mode"] == "naive")
    lat = statistics.median(app8["lat_board_ms"])
    out += [
        "",
        "Goals (issue 5) at 8 ch @ 2 kHz, set-up view:",
        f"- display fps >= 50: **{app8['fps']:.1f}** "
        f"({'met' if app8['fps'] >= 50 else 'NOT met'}); naive full-window re-plot in the "
        f"same run: {naive['fps']:.1f} fps at {100 * naive['cpu']:.1f} % CPU.",
        f"- whole live app < 35 % of one core: **{100 * app8['cpu']:.1f} %** "
        f"({'met' if app8['cpu'] < 0.35 else 'NOT met'}); without GUI "
        f"{100 * head[(8, 2000)]['cpu']:.1f} %.",
        f"- latency sample on the port -> envelope drawn <= t50 + 25 ms "
        f"({T50_MS:.0f} + 25 = {T50_MS + 25:.0f} ms): the pipeline part (board clock -> "
        f"paint) has median **{lat:.1f} ms**, p95 {pct(app8['lat_board_ms'], 95):.1f} ms; "
        f"with the envelope's own t50 that is {T50_MS + lat:.0f} ms "
        f"({'met' if lat <= 25 else 'NOT met'} at the median). The board clock includes the "
        "virtual board's 5 ms send batches; rx->drawn starts when the host has the bytes.",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(out) + "\n")
    print(f"results written to {RESULTS}")


if __name__ == "__main__":
    main()
