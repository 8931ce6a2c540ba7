"""Plain-text signal tables in and envelope tables out, for offline processing.

This module owns the delimited-text (CSV/TSV) format of ``emgfb process``: reading a table
with an optional header, an optional time column and one column per channel into a
:class:`SignalTable` (``NULL``/empty/``NaN`` cells mark lost samples; rows missing from a
uniform time column become gaps in :attr:`SignalTable.tick`), and writing the time column
plus one envelope column per channel back. Every failure is a one-line
:class:`~emgfb.errors.DataFormatError` naming the file and what was expected. Other inputs
(emgfb recordings) are adapted to a :class:`SignalTable` by the caller. Imports numpy and
``emgfb.errors`` only.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emgfb.errors import DataFormatError

log = logging.getLogger(__name__)

_MISSING = {"", "null", "nan", "na", "none"}
_TIME_NAME = re.compile(r"^\s*(time|t|timestamp|seconds|sec|time_s)\s*([\(\[]\s*s\s*[\)\]])?\s*$",
                        re.IGNORECASE)
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


def _cell(text: str) -> float:
    text = text.strip().strip('"')
    if text.lower() in _MISSING:
        return math.nan
    return float(text)


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
        Missing or empty file, no numeric channel column, ragged rows, a time column that
        is not increasing on a uniform grid, or no way to know the rate.
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "file not found" if not path.exists() else "is not a file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _fail(path, f"not UTF-8 text ({exc.reason} at byte {exc.start}); "
                    "expected a CSV table") from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise _fail(path, "is empty; expected a header row and rows of numbers")
    delim = max((",", "\t", ";"), key=lambda d: lines[0].count(d))
    first = [c.strip().strip('"') for c in lines[0].split(delim)]
    has_header = not all(_is_number(c) for c in first if c)
    names = first if has_header else [f"ch{i + 1}" for i in range(len(first))]
    rows = lines[1:] if has_header else lines
    if not rows:
        raise _fail(path, "has a header but no data rows")
    columns: list[list[str]] = [[] for _ in names]
    for i, line in enumerate(rows):
        cells = line.split(delim)
        if len(cells) != len(names):
            lineno = i + 1 + has_header
            raise _fail(path, f"line {lineno} has {len(cells)} cells, expected {len(names)} "
                        f"like the {'header' if has_header else 'first row'}")
        for col, cell in zip(columns, cells, strict=True):
            col.append(cell)
    numeric: dict[int, np.ndarray] = {}
    for j, col in enumerate(columns):
        try:
            numeric[j] = np.array([_cell(c) for c in col])
        except ValueError:
            log.warning("%s: column %r is not numeric; ignored", path, names[j])
    t_col = next((j for j in numeric if has_header and _TIME_NAME.match(names[j])), None)
    # a trailing delimiter leaves an unnamed, empty column: not a channel
    ch_cols = [j for j in numeric if j != t_col
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


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def write_envelope_csv(path: str | Path, table: SignalTable, envelope: np.ndarray,
                       suffix: str = "_envelope_uV") -> None:
    """Write the time column and one envelope column per channel (NaN as empty cells).

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
        path.write_text(header + "\n" + body + "\n", encoding="utf-8")
    except OSError as exc:
        raise _fail(path, f"cannot write ({exc.strerror or exc})") from None
