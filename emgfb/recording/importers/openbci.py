"""OpenBCI GUI raw text ("OpenBCI-RAW", v5/v6 layout with a column-name row).

Only the EXG channels (µV) are imported; the rate comes from the unix-ms ``Timestamp``
column over the whole file, lost packets from ``Sample Index`` (wraps at 256), markers
from a non-zero ``Marker Channel``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from emgfb.delimited import fail, read_table, split_line
from emgfb.recording.importers.base import (
    Format,
    ImportedRecording,
    check_file,
    check_rate_arg,
    drop_rows,
    first_line,
    iso_utc,
    rate_from_timestamps,
    settle_rate,
    ticks_from_counter,
)


def sniff(head: bytes) -> bool:
    """True for a file starting with ``%OpenBCI``."""
    return first_line(head).lower().startswith("%openbci")


def read(path: str | Path, fs: float | None = None) -> ImportedRecording:
    """Read an OpenBCI GUI raw text file (see the module docstring)."""
    path = check_file(path)
    check_rate_arg(fs)
    table = read_table(path)
    lines = table.lines
    n_head = 0
    while n_head < len(lines) and lines[n_head].startswith("%"):
        n_head += 1
    head = lines[:n_head]
    if not head or "openbci" not in head[0].lower():
        shown = lines[0][:40] if lines else ""
        raise fail(path, f"first line {shown!r}: expected '%OpenBCI Raw ...' (OpenBCI GUI raw "
                   "text)")
    hdr: dict[str, str] = {}
    for line in head[1:]:
        k, _, v = line[1:].partition("=")
        if v:
            hdr[k.strip()] = v.strip()
    nominal = _header_number(hdr, "Sample Rate", path)
    n_declared = int(_header_number(hdr, "Number of channels", path) or 0)
    if n_head >= len(lines) or not lines[n_head].lower().startswith("sample index"):
        raise fail(path, "no column-name row ('Sample Index, EXG Channel 0, ...') after the "
                   "%-header; only the OpenBCI GUI v5/v6 layout is supported")
    cols = split_line(lines[n_head], ",")
    exg = [i for i, c in enumerate(cols) if c.lower().startswith("exg channel")]
    if n_declared and len(exg) != n_declared:
        raise fail(path, f"header says {n_declared} channels but the column row names "
                   f"{len(exg)} EXG columns")
    ts_col = _find_col(cols, "timestamp")
    mk_col = _find_col(cols, "marker channel")
    fmt_col = _find_col(cols, "timestamp (formatted)")
    numeric = [i for i in range(len(cols)) if i != fmt_col]
    raw = table.numeric(n_head + 1, ",", n_cols=len(cols), usecols=numeric)
    col = {c: j for j, c in enumerate(numeric)}
    notes: list[str] = []
    tick, dups = ticks_from_counter(raw[:, col[0]], 256, path, "Sample Index")
    if dups:
        notes.append(f"{dups} rows repeating the previous Sample Index were dropped")
    raw, tick = drop_rows(tick >= 0, raw, tick)
    t = raw[:, col[ts_col]] / 1000.0 if ts_col is not None else np.full(len(raw), np.nan)
    rate = settle_rate(rate_from_timestamps(tick, t), nominal, fs, notes, path)
    data = raw[:, [col[i] for i in exg]]
    markers: list[tuple[int, str]] = []
    if mk_col is not None:
        m = raw[:, col[mk_col]]
        for j in np.flatnonzero(np.nan_to_num(m) != 0):
            markers.append((int(tick[j]), f"{m[j]:g}"))
    dropped = [c for i, c in enumerate(cols) if i not in exg and i not in (0, ts_col, mk_col,
                                                                            fmt_col)]
    if dropped:
        notes.append(f"{len(dropped)} non-EXG columns not imported (accelerometer, digital, "
                     "analog, unused)")
    if tick[-1] + 1 - len(tick):
        notes.append(f"{int(tick[-1] + 1 - len(tick))} samples lost (Sample Index gaps)")
    start = iso_utc(t[0]) if np.isfinite(t[0]) else None
    return ImportedRecording(
        data=data, fs=rate, channel_names=[cols[i] for i in exg], units=["uV"] * len(exg),
        tick=tick, markers=markers, source_format="openbci", source_path=path,
        start_time=start, notes=notes, nominal_fs=nominal, header=hdr,
    )


def _header_number(hdr: dict[str, str], key: str, path: Path) -> float | None:
    if key not in hdr:
        return None
    m = re.match(r"\s*([0-9.]+)", hdr[key])
    if not m:
        raise fail(path, f"header {key} = {hdr[key]!r}: expected a number")
    return float(m.group(1))


def _find_col(cols: list[str], name: str) -> int | None:
    for i, c in enumerate(cols):
        if c.strip().lower() == name:
            return i
    return None


FORMAT = Format("openbci", sniff, read)
