"""Plain-text signal tables in and envelope tables out, for offline processing.

This module owns the delimited-text (CSV/TSV) format of ``emgfb process``: reading a table
with an optional header, an optional time column and one column per channel into a
:class:`SignalTable` (``NULL``/empty/``NaN`` cells mark lost samples; rows missing from a
uniform time column become gaps in :attr:`SignalTable.tick`), and writing the time column
plus one envelope column per channel back, after ``#`` provenance lines. Text is tokenized
by :mod:`emgfb.delimited` (the rules every emgfb reader shares: ``#`` lines skipped, quoted
cells); a ``tick`` column (``emgfb export`` CSV) gives the sample index, a ``marker``
column is ignored. Every failure is a one-line :class:`~emgfb.errors.DataFormatError`
naming the file and what was expected. Other inputs (emgfb recordings) are adapted to a
:class:`SignalTable` by the caller. Imports numpy, ``emgfb.delimited`` and
``emgfb.errors`` only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emgfb.delimited import (
    cell_value,
    comment_lines,
    is_cell,
    is_number,
    read_table,
    split_lines,
)
from emgfb.errors import DataFormatError

log = logging.getLogger(__name__)

_TIME_NAME = re.compile(r"^\s*(time|t|timestamp|seconds|sec|time_s)\s*([\(\[]\s*s\s*[\)\]])?\s*$",
                        re.IGNORECASE)
_TICK_NAME = re.compile(r"^\s*(tick|sample|sample_index)\s*$", re.IGNORECASE)
_MARKER_NAME = re.compile(r"^\s*(marker|markers|event|events)\s*$", re.IGNORECASE)
#: Largest deviation of a time stamp from its sample grid, as a fraction of the period.
GRID_TOLERANCE = 0.25


@dataclass
class SignalTable:
    """A multichannel signal with its timeline.

    Attributes
    ----------
    data
        ``(n_rows, n_channels)`` float64 in the file's unit; NaN rows are lost samples.
    names
        Channel column names.
    fs
        Sampling rate in Hz.
    tick
        Absolute sample index of each row (int64, strictly increasing; steps > 1 are gaps).
    time
        Time of each row in seconds.
    time_name
        Name of the time column to write back.
    """

    data: np.ndarray
    names: list[str]
    fs: float
    tick: np.ndarray
    time: np.ndarray
    time_name: str = "time_s"


def _fail(path: Path, what: str) -> DataFormatError:
    return DataFormatError(f"{path}: {what}")


def _column(cells: tuple[str, ...]) -> np.ndarray:
    """One column of cells as float64 (C conversion; per cell only for missing words)."""
    try:
        return np.array(cells, dtype=np.float64)
    except ValueError:
        return np.array([cell_value(c) for c in cells])


def read_signal_csv(path: str | Path, fs: float | None = None) -> SignalTable:
    """Read a delimited text table of channels (comma, tab or semicolon separated).

    Parameters
    ----------
    path
        The file. A UTF-8 byte-order mark is ignored. The first row is a header when any
        of its cells is not a number; otherwise channels are named ``ch1``, ``ch2``...
    fs
        Sampling rate in Hz. Needed when there is no time column (a header cell named
        ``time``, ``t``, ``timestamp``, ``seconds`` or ``time_s``, in seconds); when both
        are present, ``fs`` wins and a warning is logged if they disagree.

    Returns
    -------
    SignalTable

    Raises
    ------
    DataFormatError
        Missing or empty file, no numeric channel column, a text or infinite cell in a
        column of numbers, ragged rows, a time column that is not increasing on a uniform
        grid, or no way to know the rate. (A column with no number at all, labels say, is
        ignored with a warning.)
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "file not found" if not path.exists() else "is not a file")
    table = read_table(path)
    if not table.lines:
        raise _fail(path, "is empty; expected a header row and rows of numbers")
    delim = table.delimiter()
    first = table.cells(0, delim)
    has_header = not all(is_number(c) for c in first if c)
    names = first if has_header else [f"ch{i + 1}" for i in range(len(first))]
    rows = split_lines(table.lines[1:] if has_header else table.lines, delim)
    if not rows:
        raise _fail(path, "has a header but no data rows")
    for i, cells in enumerate(rows):
        if len(cells) != len(names):
            lineno = table.line_no[i + has_header]
            raise _fail(path, f"line {lineno} has {len(cells)} cells, expected {len(names)} "
                        f"like the {'header' if has_header else 'first row'}")
    columns = list(zip(*rows, strict=True))
    numeric: dict[int, np.ndarray] = {}
    for j, col in enumerate(columns):
        if has_header and _MARKER_NAME.match(names[j]):
            continue  # marker text (emgfb export): not a signal
        try:
            numeric[j] = _column(col)
        except ValueError:
            good = [is_cell(c) for c in col]
            if any(good):  # a column of numbers with a bad cell: refuse, never drop it
                i = good.index(False)
                raise _fail(path, f"line {table.line_no[i + has_header]}, column "
                            f"{names[j]!r}: {col[i].strip()!r} is not a number; expected a "
                            "number (an empty or NaN cell for a lost sample)") from None
            log.warning("%s: column %r is not numeric; ignored", path, names[j])
            continue
        bad = np.flatnonzero(np.isinf(numeric[j]))
        if bad.size:
            i = int(bad[0])
            raise _fail(path, f"line {table.line_no[i + has_header]}, column {names[j]!r}: "
                        f"{col[i].strip()!r} is not finite; expected a number (an empty "
                        "or NaN cell for a lost sample)")
    t_col = next((j for j in numeric if has_header and _TIME_NAME.match(names[j])), None)
    k_col = next((j for j in numeric if has_header and _TICK_NAME.match(names[j])), None)
    # a trailing delimiter leaves an unnamed, empty column: not a channel
    ch_cols = [j for j in numeric if j not in (t_col, k_col)
               and not (np.all(np.isnan(numeric[j])) and not first[j])]
    if not ch_cols or all(np.all(np.isnan(numeric[j])) for j in ch_cols):
        raise _fail(path, f"no numeric channel columns among {names}; expected a time "
                    "column and one column of numbers per channel")
    data = np.column_stack([numeric[j] for j in ch_cols])
    n = len(data)
    if t_col is None:
        if fs is None:
            where = f"among {names}" if has_header else "(no header row)"
            raise _fail(path, f"no time column {where}; give the sampling rate (--fs)")
        tick = np.arange(n, dtype=np.int64)
        return SignalTable(data, [names[j] for j in ch_cols], float(fs), tick,
                           tick / float(fs))
    t = numeric[t_col]
    tick, grid_fs = _grid(path, names[t_col], t)
    if k_col is not None:  # an explicit sample index (emgfb export) says where gaps are
        k = numeric[k_col]
        if not np.all(np.isfinite(k)) or np.any(np.diff(k) <= 0):
            raise _fail(path, f"column {names[k_col]!r} is not a strictly increasing sample "
                        "index; expected integers")
        tick = (k - k[0]).astype(np.int64)
    if fs is None:
        fs = grid_fs
    elif abs(fs - grid_fs) > 0.01 * grid_fs:
        log.warning("%s: --fs %g Hz disagrees with the time column (%.6g Hz); using %g Hz",
                    path, fs, grid_fs, fs)
    return SignalTable(data, [names[j] for j in ch_cols], float(fs), tick, t, names[t_col])


def _grid(path: Path, name: str, t: np.ndarray) -> tuple[np.ndarray, float]:
    """Sample indices and rate of a time column on a uniform grid (rows may be missing)."""
    if np.isnan(t).any():
        row = int(np.flatnonzero(np.isnan(t))[0]) + 2
        raise _fail(path, f"time column {name!r} is empty at line {row}; expected seconds")
    if len(t) < 2:
        raise _fail(path, f"time column {name!r} has {len(t)} row; expected at least 2")
    dt = np.diff(t)
    if np.any(dt <= 0):
        row = int(np.flatnonzero(dt <= 0)[0]) + 3
        raise _fail(path, f"time column {name!r} = {t[row - 2]!r} at line {row} does not "
                    "increase; expected strictly increasing seconds")
    period = float(np.median(dt))
    tick = np.rint((t - t[0]) / period).astype(np.int64)
    if tick[-1] > 0:  # refine the period over the whole file (clock drift)
        period = float(t[-1] - t[0]) / float(tick[-1])
        tick = np.rint((t - t[0]) / period).astype(np.int64)
    off = np.abs((t - t[0]) / period - tick)
    if off.max() > GRID_TOLERANCE or np.any(np.diff(tick) < 1):
        row = int(np.argmax(off)) + 2
        raise _fail(path, f"time column {name!r} is not uniform: {t[row - 2]!r} at line {row} "
                    f"is {off.max():.2f} periods off the {1 / period:.6g} Hz grid; expected "
                    "a constant sampling rate")
    return tick, 1.0 / period


def write_envelope_csv(path: str | Path, table: SignalTable, envelope: np.ndarray,
                       suffix: str = "_envelope_uV",
                       provenance: Sequence[tuple[str, str]] = ()) -> None:
    """Write the time column and one envelope column per channel (NaN as empty cells).

    ``provenance`` pairs are written first as ``# key: value`` comment lines (every emgfb
    reader skips them).

    Raises
    ------
    DataFormatError
        If the file cannot be written.
    """
    path = Path(path)
    header = ",".join([table.time_name] + [f"{n}{suffix}" for n in table.names])
    values = np.column_stack([table.time, envelope])
    text = np.char.mod("%.10g", values)
    text[np.isnan(values)] = ""
    body = "\n".join(",".join(row) for row in text.tolist())
    try:
        path.write_text(comment_lines(provenance) + header + "\n" + body + "\n",
                        encoding="utf-8")
    except OSError as exc:
        raise _fail(path, f"cannot write ({exc.strerror or exc})") from None
