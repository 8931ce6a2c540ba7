"""BrainFlow ``DataFilter.write_file`` CSV: tab-separated numbers, no header.

BrainFlow writes the board's rows as they come (one column per row of the board's data
array) and says nothing about the board in the file. The layout is taken from BrainFlow's
own board descriptions (``BoardShim.get_board_descr``) when the optional ``brainflow``
package is installed (``pip install emgfb[brainflow]``): the boards whose row count equals
the file's column count are candidates, and the one whose nominal rate agrees with the
rate measured from the timestamp column is chosen (on a tie the first in BrainFlow's
order; a note names the alternatives). Without BrainFlow the Cyton layout is the fallback
(24 columns: package number, 8 EXG in µV, accelerometer, other, analog, unix time,
marker). The package number wraps at 256; a step larger than one is a gap of lost samples.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emgfb.delimited import fail, is_number, read_table, split_line
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

log = logging.getLogger(__name__)

#: BrainFlow's Cyton rows: package num, 8 EXG (µV), 3 accel, 7 other, 3 analog, ts, marker.
BRAINFLOW_CYTON_COLUMNS = 24


@dataclass(frozen=True)
class BoardLayout:
    """Where a BrainFlow board puts its rows (column indices of the CSV)."""

    name: str
    n_cols: int
    package: int | None
    exg: tuple[int, ...]
    timestamp: int | None
    marker: int | None
    fs: float
    names: tuple[str, ...] = ()


CYTON = BoardLayout("Cyton", BRAINFLOW_CYTON_COLUMNS, 0, tuple(range(1, 9)), 22, 23, 250.0)


def board_layouts(n_cols: int) -> list[BoardLayout]:
    """Layouts of every BrainFlow board with ``n_cols`` rows (BrainFlow's descriptions if
    installed, else the Cyton fallback)."""
    try:
        from brainflow.board_shim import BoardIds, BoardShim
    except ImportError:
        return [CYTON] if n_cols == CYTON.n_cols else []
    found: list[BoardLayout] = []
    for board in BoardIds:
        try:
            d = BoardShim.get_board_descr(board.value)
        except Exception:  # noqa: BLE001 - boards without a description (playback, ...)
            continue
        if int(d.get("num_rows", -1)) != n_cols:
            continue
        exg = d.get("emg_channels") or d.get("exg_channels") or d.get("eeg_channels") or []
        if not exg:
            continue
        found.append(BoardLayout(
            str(d.get("name", board.name)), n_cols, d.get("package_num_channel"),
            tuple(int(i) for i in exg), d.get("timestamp_channel"), d.get("marker_channel"),
            float(d.get("sampling_rate", 0)) or 0.0))
    return found


def sniff(head: bytes) -> bool:
    """True for tab-separated all-numeric first row with a known board's column count."""
    cells = first_line(head).split("\t")
    return len(cells) > 2 and all(is_number(c) for c in cells) and bool(
        board_layouts(len(cells)))


def read(path: str | Path, fs: float | None = None) -> ImportedRecording:
    """Read a BrainFlow CSV (see the module docstring)."""
    path = check_file(path)
    check_rate_arg(fs)
    table = read_table(path)
    first = split_line(table.lines[0], "\t") if table.lines else []
    layouts = board_layouts(len(first))
    if not layouts:
        raise fail(path, f"first row has {len(first)} tab-separated columns, expected the row "
                   f"count of a BrainFlow board ({BRAINFLOW_CYTON_COLUMNS} for Cyton"
                   + ("" if _have_brainflow() else "; install brainflow for other boards")
                   + ")")
    raw = table.numeric(0, "\t", n_cols=len(first))
    layout, notes = _choose(layouts, raw)
    if layout.package is not None:
        tick, dups = ticks_from_counter(np.nan_to_num(raw[:, layout.package]).astype(np.int64),
                                        256, path, "package number")
        if dups:
            notes.append(f"{dups} rows repeating the previous package number were dropped")
        raw, tick = drop_rows(tick >= 0, raw, tick)
    else:
        tick = np.arange(len(raw), dtype=np.int64)
    ts = raw[:, layout.timestamp] if layout.timestamp is not None else np.full(len(raw), np.nan)
    rate = settle_rate(rate_from_timestamps(tick, ts), layout.fs or None, fs, notes, path)
    markers: list[tuple[int, str]] = []
    if layout.marker is not None:
        m = raw[:, layout.marker]
        markers = [(int(tick[j]), f"{m[j]:g}") for j in np.flatnonzero(np.nan_to_num(m) != 0)]
    data = raw[:, list(layout.exg)]
    rail = np.mean(np.abs(np.nan_to_num(data)) >= 187499.0, axis=0) > 0.9
    if rail.any():
        names = ", ".join(f"EXG{i + 1}" for i in np.flatnonzero(rail))
        notes.append(f"{names} sit at the ±187500 µV rail (not connected)")
    lost = int(tick[-1] + 1 - len(tick))
    if lost:
        notes.append(f"{lost} samples lost (package-number gaps)")
    notes.append("rows other than the EXG channels (accelerometer, digital, analog) not "
                 "imported")
    t0 = ts[0]
    return ImportedRecording(
        data=data, fs=rate, channel_names=[f"EXG{i}" for i in range(1, len(layout.exg) + 1)],
        units=["uV"] * len(layout.exg), tick=tick, markers=markers, source_format="brainflow",
        source_path=path, start_time=iso_utc(t0) if np.isfinite(t0) and t0 > 0 else None,
        notes=notes, nominal_fs=layout.fs or None, header={"board": layout.name},
    )


def _have_brainflow() -> bool:
    try:
        import brainflow  # noqa: F401
    except ImportError:
        return False
    return True


def _choose(layouts: list[BoardLayout], raw: np.ndarray) -> tuple[BoardLayout, list[str]]:
    """The layout whose nominal rate best matches the file's timestamps."""
    notes: list[str] = []
    if not _have_brainflow():
        notes.append("BrainFlow CSV has no header: the Cyton column layout is assumed "
                     "(install brainflow to recognise other boards)")
        return layouts[0], notes

    def misfit(lay: BoardLayout) -> float:
        if lay.timestamp is None or not lay.fs:
            return np.inf
        tick = np.arange(len(raw))
        if lay.package is not None:
            tick, _ = ticks_from_counter(np.nan_to_num(raw[:, lay.package]).astype(np.int64),
                                         256, Path("?"), "package number")
            keep = tick >= 0
            tick, ts = tick[keep], raw[keep, lay.timestamp]
        else:
            ts = raw[:, lay.timestamp]
        rate = rate_from_timestamps(tick, ts)
        return abs(np.log(rate / lay.fs)) if rate else np.inf

    scored = sorted(layouts, key=misfit)
    best = scored[0]
    same = [lay.name for lay in scored[1:] if misfit(lay) == misfit(best)]
    notes.append(f"BrainFlow CSV has no header: the {best.name} layout from BrainFlow's board "
                 "description is assumed" + (f" (same layout as {', '.join(same)})"
                                            if same else ""))
    return best, notes


FORMAT = Format("brainflow", sniff, read)
