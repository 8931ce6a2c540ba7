"""Generic delimited text with a header row (and emgfb's own CSV export).

The delimiter is comma, tab or semicolon; ``#`` lines are comments; quoted cells may hold
the delimiter (:mod:`emgfb.delimited`). A column named ``time``/``timestamp``/``time_s``
(seconds; ``ms`` in the name means milliseconds) gives the rate, otherwise ``fs`` must be
given. A column named ``tick`` gives each row's sample index (a step larger than one is a
gap of lost samples). A column named ``marker``/``event``/``label`` gives markers
(non-empty, non-zero cells; several in one cell separated by `` | ``). Units are read from
the column names (``EMG (mV)``, ``ch1 [uV]``); without one µV is assumed. Rows without
values (empty, ``NULL``, ``NaN``) are gaps.

A CSV written by ``emgfb export`` (first line ``# emgfb export: ...``) is read with its
own ``# channel:`` scale lines: raw counts come back as the same counts, µV with the
session's resolution as the quantisation step.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from emgfb.delimited import fail, is_number, read_table, split_lines
from emgfb.recording.importers.base import (
    Format,
    ImportedRecording,
    check_file,
    check_rate_arg,
    first_line,
    head_text,
    rate_from_timestamps,
    settle_rate,
    split_unit,
)

_TIME_NAMES = re.compile(r"^(time|timestamp|t|seconds|sec|time_s|elapsed)\b", re.I)
_MARKER_NAMES = re.compile(r"^(marker|markers|event|events|label|trigger)s?\b", re.I)
_TICK_NAMES = re.compile(r"^(tick|sample|sample_index|sample index)$", re.I)
_EXPORT_MAGIC = "emgfb export:"
_MARKER_JOIN = " | "


def sniff(head: bytes) -> bool:
    """True for delimited text whose first content line is a header of names."""
    lines = [ln for ln in head_text(head).splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        return False
    first = lines[0]
    return any(first.count(d) for d in (",", "\t", ";")) and not all(
        is_number(c) for c in re.split(r"[,\t;]", first) if c.strip())


def sniff_export(head: bytes) -> bool:
    """True for a CSV written by ``emgfb export``."""
    return first_line(head).lstrip("#").strip().startswith(_EXPORT_MAGIC)


def read(path: str | Path, fs: float | None = None) -> ImportedRecording:
    """Read a generic delimited text file with a header row (see the module docstring)."""
    path = check_file(path)
    check_rate_arg(fs)
    table = read_table(path)
    if len(table.lines) < 2:
        raise fail(path, "needs a header row and at least one data row")
    delim = table.delimiter()
    cols = table.cells(0, delim)
    if all(is_number(c) for c in cols if c):
        raise fail(path, f"first row {table.lines[0][:60]!r} is numeric, expected a header row "
                   "with column names (generic CSV)")
    t_col = next((i for i, c in enumerate(cols) if _TIME_NAMES.match(c)), None)
    m_col = next((i for i, c in enumerate(cols) if _MARKER_NAMES.match(c)), None)
    k_col = next((i for i, c in enumerate(cols) if _TICK_NAMES.match(c)), None)
    numeric = [i for i in range(len(cols)) if i != m_col]
    raw = table.numeric(1, delim, n_cols=len(cols), usecols=numeric)
    col = {c: j for j, c in enumerate(numeric)}
    notes: list[str] = []
    ch_idx = [i for i in numeric if i not in (t_col, k_col)]
    if not ch_idx:
        raise fail(path, f"columns {cols}: expected at least one signal column")
    data = raw[:, [col[i] for i in ch_idx]]
    valid = np.all(np.isfinite(data), axis=1)
    if k_col is not None:
        tick_all = raw[:, col[k_col]]
        if not np.all(np.isfinite(tick_all)) or np.any(np.diff(tick_all) <= 0):
            raise fail(path, f"column {cols[k_col]!r} is not a strictly increasing sample "
                       "index, expected integers")
        tick_all = (tick_all - tick_all[0]).astype(np.int64)
    else:
        tick_all = np.arange(len(raw), dtype=np.int64)
    detected = None
    if t_col is not None:
        scale = 1e-3 if "ms" in cols[t_col].lower() else 1.0
        t = raw[:, col[t_col]] * scale
        if np.any(np.diff(t[np.isfinite(t)]) <= 0):
            raise fail(path, f"column {cols[t_col]!r} is not strictly increasing, expected "
                       "time in seconds")
        detected = rate_from_timestamps(tick_all, t)
    elif fs is None:
        raise fail(path, f"no time column among {cols}; pass --fs HZ")
    rate = settle_rate(detected, None, fs, notes, path)
    gaps = int((~valid).sum())
    if gaps:
        notes.append(f"{gaps} rows without values (NULL/empty) kept as gaps of lost samples")
    names: list[str] = []
    units: list[str] = []
    for i in ch_idx:
        name, unit = split_unit(cols[i])
        names.append(name or f"CH{len(names) + 1}")
        units.append(unit or "uV")
    if any(split_unit(cols[i])[1] is None for i in ch_idx):
        notes.append("no unit in some column names: µV assumed (write 'name (mV)' to say)")
    markers: list[tuple[int, str]] = []
    if m_col is not None:
        for row, cells in enumerate(split_lines(table.lines[1:], delim)):
            cell = cells[m_col] if m_col < len(cells) else ""
            if cell and cell not in ("0", "0.0", "NULL"):
                markers += [(int(tick_all[row]), lab.strip())
                            for lab in cell.split(_MARKER_JOIN) if lab.strip()]
    return ImportedRecording(
        data=data[valid], fs=rate, channel_names=names, units=units,
        tick=tick_all[valid], markers=markers, source_format="csv", source_path=path,
        notes=notes,
    )


def read_export(path: str | Path, fs: float | None = None) -> ImportedRecording:
    """Read a CSV written by ``emgfb export`` with its channel scales and markers."""
    rec = read(path, fs)
    table = read_table(Path(path))
    meta: dict[str, str] = {}
    chans: list[list[str]] = []
    for line in table.comments:
        key, _, value = line.partition(":")
        if key.strip() == _EXPORT_MAGIC.rstrip(":"):
            meta = dict(kv.split("=", 1) for kv in value.split() if "=" in kv)
        elif key.strip() == "channel":
            chans.append([c.strip() for c in value.split(",")])
    what = meta.get("what", "uv")
    if what == "envelope":
        raise fail(path, "is an emgfb envelope export; expected raw or uv values to import")
    if len(chans) != rec.n_channels:
        raise fail(path, f"{len(chans)} '# channel:' lines for {rec.n_channels} channels, "
                   "expected one per channel")
    try:
        scale: list[float | None] = [float(c[3]) for c in chans]
        offset = [float(c[4]) for c in chans]
    except (IndexError, ValueError):
        raise fail(path, "a '# channel:' line is not 'label,muscle,side,uv_per_count,"
                   "offset_counts'") from None
    if "fs" in meta and fs is None:
        rec.fs = float(meta["fs"])
    rec.source_format = "emgfb-csv"
    rec.notes = [n for n in rec.notes if "µV assumed" not in n]
    rec.header = {"export": meta, "muscles": [c[1] for c in chans],
                  "sides": [c[2] for c in chans]}
    if what == "raw":
        rec.units = ["counts"] * rec.n_channels
        rec.uv_per_unit = scale
        rec.offset = offset
        rec.quantum = [1.0] * rec.n_channels
    else:
        rec.units = ["uV"] * rec.n_channels
        rec.uv_per_unit = [1.0] * rec.n_channels
        rec.offset = [0.0] * rec.n_channels
        rec.quantum = scale
    return rec


FORMAT = Format("csv", sniff, read)
EXPORT_FORMAT = Format("emgfb-csv", sniff_export, read_export)
