"""Upside Down Labs Chords-Python CSV: old ``Timestamp,Counter,Channel1..N`` and new
``Counter,Channel1..N`` layouts.

Values are raw ADC counts. The ``Counter`` is a u8 (wraps at 256); a step larger than one
is a gap of lost samples. The old layout's ``HH:MM:SS:µs`` timestamps give the rate; the
new layout has none, so ``fs`` must be given.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from emgfb.delimited import fail, read_table, split_line
from emgfb.recording.importers.base import (
    NOMINAL_TOLERANCE,
    Format,
    ImportedRecording,
    check_file,
    check_rate_arg,
    drop_rows,
    first_line,
    rate_from_timestamps,
    settle_rate,
    ticks_from_counter,
)

#: Rates Chords-Python boards stream at; a detected rate this close is taken as nominal.
CHORDS_RATES = (250.0, 500.0, 1000.0)


def sniff(head: bytes) -> bool:
    """True for a ``[Timestamp,]Counter,Channel1,...`` header row."""
    low = first_line(head).lower().replace(" ", "")
    return re.match(r"^(timestamp[^,]*,)?counter,channel1\b", low) is not None


def read(path: str | Path, fs: float | None = None) -> ImportedRecording:
    """Read a Chords-Python CSV (see the module docstring)."""
    path = check_file(path)
    check_rate_arg(fs)
    table = read_table(path)
    cols = split_line(table.lines[0], ",") if table.lines else []
    has_ts = bool(cols) and cols[0].lower().startswith("timestamp")
    body_cols = cols[1:] if has_ts else cols
    if not body_cols or body_cols[0].lower() != "counter" or len(body_cols) < 2 or not all(
            re.fullmatch(r"channel\d+", c.lower()) for c in body_cols[1:]):
        shown = table.lines[0][:60] if table.lines else ""
        raise fail(path, f"header {shown!r}: expected 'Timestamp,Counter,Channel1..N' or "
                   "'Counter,Channel1..N' (Chords-Python)")
    notes: list[str] = []
    numeric_cols = list(range(1 if has_ts else 0, len(cols)))
    raw = table.numeric(1, ",", n_cols=len(cols), usecols=numeric_cols)
    tick, dups = ticks_from_counter(np.nan_to_num(raw[:, 0]).astype(np.int64), 256, path,
                                    "Counter")
    keep = tick >= 0
    if dups:
        notes.append(f"{dups} rows repeating the previous Counter were dropped")
    raw, tick = drop_rows(keep, raw, tick)
    detected = None
    if has_ts:
        times = np.array([_chords_time(ln.split(",", 1)[0], path, no) for ln, no in
                          zip(table.lines[1:], table.line_no[1:], strict=True)])[keep]
        times = times + 86400.0 * np.concatenate([[0], np.cumsum(np.diff(times) < -43200)])
        detected = rate_from_timestamps(tick, times)
        notes.append("timestamps are time of day only (no date): start time not carried over")
    elif fs is None:
        raise fail(path, "Chords CSV without a Timestamp column has no sample rate; pass "
                   "--fs HZ (250 or 500 for most Chords boards)")
    nominal = None
    if detected is not None:
        nominal = min(CHORDS_RATES, key=lambda r: abs(r - detected))
        if abs(detected / nominal - 1) > NOMINAL_TOLERANCE:
            nominal = None
    rate = settle_rate(detected, nominal, fs, notes, path)
    data = raw[:, 1:]
    peak = np.nanmax(data) if np.isfinite(data).any() else 0
    bits = max(10, int(math.ceil(math.log2(peak + 1)))) if peak > 0 else 10
    lost = int(tick[-1] + 1 - len(tick))
    if lost:
        notes.append(f"{lost} samples lost (Counter gaps)")
    notes.append(f"values are raw {bits}-bit ADC counts; the front-end gain is not in the "
                 f"file, so the session keeps counts (1 count = 1 'µV', offset {2**(bits - 1)})")
    return ImportedRecording(
        data=data, fs=rate, channel_names=body_cols[1:], units=["counts"] * data.shape[1],
        tick=tick, source_format="chords", source_path=path, notes=notes,
        uv_per_unit=[None] * data.shape[1], offset=[float(2 ** (bits - 1))] * data.shape[1],
        quantum=[1.0] * data.shape[1], nominal_fs=nominal, header={"adc_bits": bits},
    )


def _chords_time(text: str, path: Path, line_no: int) -> float:
    parts = text.strip().split(":")
    try:
        h, m, s, us = (int(p) for p in parts)
    except ValueError:
        raise fail(path, f"line {line_no}: Timestamp {text!r}: expected HH:MM:SS:microseconds"
                   ) from None
    return h * 3600 + m * 60 + s + us * 1e-6


FORMAT = Format("chords", sniff, read)
