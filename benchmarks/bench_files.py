"""Benchmark: file formats - text import speed and export memory, before/after, same run.

Measures, in one run on this machine, each case in its own process (time and peak RSS of
that process, ``VmHWM``, which unlike ``ru_maxrss`` is not inherited across exec):

* **import** of a 1-hour 8-channel OpenBCI GUI raw text file (250 Hz, 900,000 rows, 25
  columns) and of a 1-hour 8-channel generic CSV (250 Hz, time column): the current
  ``emgfb.recording.importers.read_any`` against the importer before the package split
  (``importers.py`` at commit ``IMPORT_BEFORE``, loaded from git) and against
  ``numpy.loadtxt`` of the same numbers (the floor);
* **export** of a 2-hour 8 ch @ 2 kHz session (14.4 M samples, three gaps, markers) to
  CSV and to EDF+: the current block-by-block export against the export before it
  (``export.py`` at commit ``EXPORT_BEFORE``, loaded from git, pyedflib writer).

Run: ``python3 benchmarks/bench_files.py [--hours-import 1] [--hours-export 2]`` from a git
checkout (the baselines are read with ``git show``); results go to
``benchmarks/results/files.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "files.md"
#: The monolithic importers.py, before the package and the tokenizer.
IMPORT_BEFORE = "fb6c3fa"
#: export.py holding whole arrays and writing EDF with pyedflib.
EXPORT_BEFORE = "96696d0"
OPENBCI = ROOT / "data" / "formats" / "OpenBCI_GUI-v6-blinks-jawClench-alpha.txt"

_CHILD = textwrap.dedent("""
    import importlib.util, json, sys, time
    kind, arg, path, extra = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    def load(name, file):
        spec = importlib.util.spec_from_file_location(name, file)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        return mod
    if kind == "import-now":
        from emgfb.recording.importers import read_any
        fn = lambda: read_any(path).n_samples
    elif kind == "import-before":
        mod = load("emgfb_importers_before", arg)
        fn = lambda: mod.read_any(path).n_samples
    elif kind == "loadtxt":
        import numpy as np
        skip, cols = int(extra[0]), [int(c) for c in extra[1].split(",")]
        fn = lambda: len(np.loadtxt(path, delimiter=",", skiprows=skip, usecols=cols))
    elif kind == "export-now":
        from emgfb.recording.export import export_recording
        fn = lambda: export_recording(path, extra[0], extra[1], "uv").n_samples
    elif kind == "export-before":
        mod = load("emgfb_export_before", arg)
        fn = lambda: mod.export_recording(path, extra[0], extra[1], "uv").n_samples
    t0 = time.perf_counter()
    n = fn()
    dt = time.perf_counter() - t0
    status = open("/proc/self/status").read()
    rss = int(status.split("VmHWM:")[1].split()[0]) / 1024
    print(json.dumps({"seconds": dt, "rss_mb": rss, "n": n}))
""")


def run_child(kind: str, arg: str, path: Path, *extra: str) -> dict:
    """Run one case in a fresh interpreter; its time and peak RSS."""
    out = subprocess.run([sys.executable, "-c", _CHILD, kind, arg, str(path), *extra],
                         capture_output=True, text=True, cwd=ROOT, check=False)
    if out.returncode:
        raise RuntimeError(f"{kind} failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def git_file(rev: str, path: str, dest: Path) -> Path:
    """``path`` as it was at ``rev``, written to ``dest``."""
    text = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout
    dest.write_text(text)
    return dest


def make_openbci(path: Path, hours: float) -> tuple[int, int]:
    """An OpenBCI GUI v6 raw file of ``hours`` at 250 Hz built from the bundled recording's
    EXG values; returns (rows, header lines)."""
    lines = OPENBCI.read_text().splitlines()
    head = [ln for ln in lines if ln.startswith("%")]
    cols = lines[len(head)]
    real = np.loadtxt(lines[len(head) + 1:], delimiter=",", usecols=range(1, 9))
    n = int(hours * 3600 * 250)
    t0 = 1_557_936_053_329
    with path.open("w") as fh:
        fh.write("\n".join([*head, cols]) + "\n")
        for a in range(0, n, 100_000):
            b = min(n, a + 100_000)
            i = np.arange(a, b)
            exg = real[i % len(real)]
            ts = t0 + i * 4
            body = np.column_stack([i % 256, exg, np.zeros((b - a, 13)), ts, np.zeros(b - a)])
            text = []
            fmt = ["%d"] + ["%.2f"] * 8 + ["%.3f"] * 3 + ["%d"] * 10 + ["%d", "%d"]
            for row_text, t in zip(_rows(body, fmt), ts, strict=True):
                sec = (t // 1000) % 86400
                text.append(f"{row_text}, {sec // 3600:02d}:{sec // 60 % 60:02d}:"
                            f"{sec % 60:02d}.{t % 1000:03d}")
            fh.write("\n".join(text) + "\n")
    return n, len(head) + 1


def make_generic(path: Path, hours: float) -> int:
    """A generic CSV: ``time,ch1 (uV)..ch8 (uV)`` at 250 Hz."""
    n = int(hours * 3600 * 250)
    rng = np.random.default_rng(1)
    with path.open("w") as fh:
        fh.write("time," + ",".join(f"ch{i} (uV)" for i in range(1, 9)) + "\n")
        for a in range(0, n, 200_000):
            b = min(n, a + 200_000)
            body = np.column_stack([np.arange(a, b) / 250.0,
                                    np.round(rng.normal(0, 50, (b - a, 8)), 2)])
            fh.write("\n".join(_rows(body, ["%.3f"] + ["%.2f"] * 8)) + "\n")
    return n


def _rows(body: np.ndarray, fmt: list[str]) -> list[str]:
    import io

    buf = io.StringIO()
    np.savetxt(buf, body, fmt=fmt, delimiter=",")
    return buf.getvalue().splitlines()


def make_session(path: Path, hours: float) -> int:
    """A session of ``hours`` at 8 ch @ 2 kHz with three gaps and 200 markers."""
    from emgfb.montage import default_montage
    from emgfb.recording import write_arrays
    from emgfb.records import Marker

    n = int(hours * 3600 * 2000)
    rng = np.random.default_rng(0)
    base = np.clip(np.round(512 + rng.normal(0, 40, (2_000_000, 8))), 0, 1023).astype(np.uint16)
    counts = np.resize(base, (n, 8))
    tick = np.arange(n, dtype=np.int64)
    for at, lost in ((n // 4, 37), (n // 2, 2000), (3 * n // 4, 5)):
        tick[at:] += lost
    markers = [Marker(int(t), f"rep {k}", "rep") for k, t in
               enumerate(np.linspace(0, tick[-1], 200).astype(int))]
    write_arrays(path, counts, 2000.0, default_montage(8), 2.0186, 512, tick=tick,
                 markers=markers, meta={"subject": "P042",
                                        "start_time_utc": "2026-03-04T10:11:12.367Z"})
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours-import", type=float, default=1.0)
    ap.add_argument("--hours-export", type=float, default=2.0)
    args = ap.parse_args()
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        old_imp = git_file(IMPORT_BEFORE, "emgfb/recording/importers.py", d / "imp_before.py")
        old_exp = git_file(EXPORT_BEFORE, "emgfb/recording/export.py", d / "exp_before.py")
        obci = d / "openbci.txt"
        n_obci, skip = make_openbci(obci, args.hours_import)
        gen = d / "generic.csv"
        n_gen = make_generic(gen, args.hours_import)
        for name, path, n, loadtxt in (
            ("OpenBCI raw text", obci, n_obci, (str(skip), ",".join(map(str, range(24))))),
            ("generic CSV", gen, n_gen, ("1", ",".join(map(str, range(9))))),
        ):
            size = path.stat().st_size / 1e6
            ref = run_child("loadtxt", "", path, *loadtxt)
            before = run_child("import-before", str(old_imp), path)
            now = run_child("import-now", "", path)
            assert before["n"] == now["n"] == n, (before, now, n)
            rows.append(f"| import {name}, {args.hours_import:g} h 8 ch, {n:,} rows, "
                        f"{size:.0f} MB | {now['seconds']:.2f} s, {now['rss_mb']:.0f} MB | "
                        f"{before['seconds']:.2f} s, {before['rss_mb']:.0f} MB | "
                        f"numpy.loadtxt {ref['seconds']:.2f} s |")
            print(rows[-1], flush=True)
        h5 = d / "session.h5"
        n = make_session(h5, args.hours_export)
        for fmt in ("csv", "edf"):
            before = run_child("export-before", str(old_exp), h5, str(d / f"b.{fmt}"), fmt)
            now = run_child("export-now", "", h5, str(d / f"n.{fmt}"), fmt)
            size = (d / f"n.{fmt}").stat().st_size / 1e6
            rows.append(f"| export --format {fmt} --what uv, {args.hours_export:g} h 8 ch @ "
                        f"2 kHz ({n / 1e6:.1f} M samples), {size:.0f} MB out | "
                        f"{now['seconds']:.1f} s, {now['rss_mb']:.0f} MB | "
                        f"{before['seconds']:.1f} s, {before['rss_mb']:.0f} MB | |")
            print(rows[-1], flush=True)
    write_results(rows)


def write_results(rows: list[str]) -> None:
    import platform

    RESULTS.write_text(
        "# File formats: text import and export (benchmarks/bench_files.py)\n\n"
        f"Machine: {platform.machine()}, Python {platform.python_version()}, numpy "
        f"{np.__version__}. Each case runs in its own process; peak RSS is that process's "
        f"VmHWM (interpreter and libraries included). Baselines in the same run: the "
        f"importer at {IMPORT_BEFORE} and the export at {EXPORT_BEFORE}, loaded from git.\n\n"
        "| case | now (time, peak RSS) | before (same run) | reference |\n"
        "|---|---|---|---|\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
