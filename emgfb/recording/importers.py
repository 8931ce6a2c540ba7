"""Importers: read recordings written by peer tools into one in-memory form, then a session.

This module owns the parsers of files written by OpenBCI GUI (raw text), BrainFlow
(``DataFilter.write_file`` CSV, Cyton layout), Upside Down Labs Chords-Python (old
``Timestamp,Counter,Channel1..N`` and new ``Counter,Channel1..N`` layouts), PLUX
OpenSignals (HDF5 and text), LabRecorder XDF (via ``pyxdf``), Backyard Brains WAV and
generic delimited text with a header; format sniffing (:func:`detect_format`); and the
conversion of an :class:`ImportedRecording` to an emgfb HDF5 session
(:func:`to_session`). It imports ``errors``, ``montage``, ``acquisition.source`` (for
:class:`Marker` only) and ``recording`` (the session writer), numpy, h5py and pyxdf.

Rules every parser follows:

* The sample rate is *detected* where the file has timestamps, over the whole file
  (``(last tick - first tick) / (last time - first time)``): OpenBCI and BrainFlow stamp
  samples in packet batches, so consecutive differences say nothing. A rate given in the
  file's header (or the tool's known rate) is kept when the detected one agrees within
  0.05 %; otherwise the detected one wins and a note says so.
* Sample counters (OpenBCI ``Sample Index``, BrainFlow package number, Chords ``Counter``,
  OpenSignals ``nSeq``) are unwrapped; a step larger than one is a gap of lost samples,
  kept as a gap in :attr:`ImportedRecording.tick`, never joined. Rows without values
  (``NULL``, empty, ``NaN``) are gaps too.
* Everything that could not be carried over (extra columns, unknown units, time zones)
  is listed, in plain words, in :attr:`ImportedRecording.notes`.

Resolution when quantising to the session's int32 counts (:func:`choose_quantum`): ADC
counts stay exact counts; decimal text keeps its printed resolution (``61379.36`` µV →
0.01 µV per count), coarsened by powers of ten only if int32 would overflow; binary
floats (XDF float32) get a power-of-two step with ``max|x| / step <= 2**30`` (finer than
float32 for every value above 1/64 of the maximum).
"""

from __future__ import annotations

import json
import logging
import math
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from emgfb.errors import DataFormatError
from emgfb.montage import SIDES, Channel, Montage
from emgfb.records import Marker

log = logging.getLogger(__name__)

#: Format names accepted by :func:`read_any` / ``emgfb import --format``.
FORMATS = ("csv", "openbci", "brainflow", "chords", "opensignals", "xdf", "wav")

#: A detected rate this close (relative) to the nominal one means "the nominal rate".
NOMINAL_TOLERANCE = 5e-4

_INT32_LIMIT = 2**31 - 1
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_UV_PER_UNIT = {"uv": 1.0, "µv": 1.0, "microvolt": 1.0, "mv": 1e3, "v": 1e6}


@dataclass
class ImportedRecording:
    """A recording read from a peer tool's file, before conversion to a session.

    Attributes
    ----------
    data
        Samples, float64 ``(n_samples, n_channels)``, in ``units`` per channel.
    fs
        Sample rate in Hz (detected from timestamps where the file has them).
    channel_names
        Channel names as the source tool wrote them.
    units
        Unit of each channel: ``"uV"``, ``"mV"``, ``"counts"``, or the source's own word.
    tick
        Sample index of each row, int64, strictly increasing; steps larger than one are
        gaps of lost samples.
    markers
        ``(tick, label)`` pairs in the same sample timeline.
    source_format, source_path
        Which parser read which file.
    start_time
        ISO 8601 start time (UTC with ``Z`` when the file says the time zone), or None.
    notes
        Human-readable lines on what could not be carried over or was assumed.
    uv_per_unit
        Per channel, µV per unit of ``data`` (1 for µV, 1000 for mV, the sensor transfer
        function for ADC counts), or None when it is not known.
    offset
        Per channel, the value (in ``units``) that means 0 µV (mid-scale for ADC counts).
    quantum
        Per channel, the resolution of the source in ``units`` when known (1 for counts,
        0.01 for text printed with two decimals), else None.
    nominal_fs
        Rate the file or tool claims, if any.
    header
        JSON-friendly metadata copied from the source's header.
    """

    data: np.ndarray
    fs: float
    channel_names: list[str]
    units: list[str]
    tick: np.ndarray
    markers: list[tuple[int, str]] = field(default_factory=list)
    source_format: str = ""
    source_path: Path | None = None
    start_time: str | None = None
    notes: list[str] = field(default_factory=list)
    uv_per_unit: list[float | None] = field(default_factory=list)
    offset: list[float] = field(default_factory=list)
    quantum: list[float | None] = field(default_factory=list)
    nominal_fs: float | None = None
    header: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n_ch = self.data.shape[1]
        if not self.uv_per_unit:
            self.uv_per_unit = [_UV_PER_UNIT.get(u.lower()) for u in self.units]
        if not self.offset:
            self.offset = [0.0] * n_ch
        if not self.quantum:
            self.quantum = [None] * n_ch

    @property
    def n_samples(self) -> int:
        """Number of rows (samples actually present)."""
        return int(self.data.shape[0])

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return int(self.data.shape[1])

    @property
    def lost_samples(self) -> int:
        """Samples missing between the first and the last row."""
        if len(self.tick) < 2:
            return 0
        return int(self.tick[-1] - self.tick[0] + 1 - len(self.tick))

    @property
    def duration_s(self) -> float:
        """Span from the first to one past the last sample, in seconds."""
        if len(self.tick) == 0:
            return 0.0
        return float(self.tick[-1] - self.tick[0] + 1) / self.fs

    def to_uv(self) -> np.ndarray:
        """Samples in µV where the scale is known; channels without one stay in ``units``."""
        out = self.data.copy()
        for ch, (k, off) in enumerate(zip(self.uv_per_unit, self.offset, strict=True)):
            out[:, ch] = (out[:, ch] - off) * (1.0 if k is None else k)
        return out

    def summary(self) -> str:
        """A few readable lines describing the import."""
        chans = ", ".join(f"{n} [{u}]" for n, u in zip(self.channel_names, self.units,
                                                        strict=True))
        lines = [
            f"{self.source_path} ({self.source_format})",
            f"  {self.n_channels} channels: {chans}",
            f"  {self.n_samples} samples at {self.fs:.3f} Hz"
            + (f" (nominal {self.nominal_fs:g} Hz)" if self.nominal_fs else "")
            + f", {self.duration_s:.2f} s, {self.lost_samples} lost samples",
            f"  {len(self.markers)} markers; start time {self.start_time or 'unknown'}",
        ]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# shared helpers


def _fail(path: Path, what: str) -> DataFormatError:
    return DataFormatError(f"{path}: {what}")


def _check_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"{path}: file not found")
    if path.is_dir():
        raise DataFormatError(f"{path}: is a directory, expected a recording file")
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except PermissionError:
        raise DataFormatError(f"{path}: permission denied") from None
    if path.stat().st_size == 0:
        raise DataFormatError(f"{path}: file is empty")
    return path


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise _fail(path, "binary content, expected a text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def ticks_from_counter(
    counter: np.ndarray, modulus: int | None, path: Path, field_name: str
) -> tuple[np.ndarray, int]:
    """Unwrap a sample counter into tick indices starting at 0.

    Parameters
    ----------
    counter
        The counter column (integers).
    modulus
        Where the counter wraps (256 for a u8), or None for a counter that never wraps.
    path, field_name
        For error messages.

    Returns
    -------
    tick, duplicates
        Tick of every row (rows repeating the previous counter are marked -1) and how many
        such duplicate rows there were.
    """
    c = np.asarray(counter, dtype=np.int64)
    if len(c) == 0:
        return c, 0
    step = np.diff(c)
    if modulus is not None:
        step %= modulus
    elif (step < 0).any():
        i = int(np.flatnonzero(step < 0)[0]) + 1
        raise _fail(path, f"{field_name} goes backwards at row {i} ({c[i - 1]} -> {c[i]}), "
                    "expected an increasing sample counter")
    dup = step == 0
    tick = np.concatenate([[0], np.cumsum(step)])
    tick[1:][dup] = -1
    return tick, int(dup.sum())


def _drop_rows(keep: np.ndarray, *arrays: np.ndarray) -> list[np.ndarray]:
    return [a[keep] for a in arrays]


def rate_from_timestamps(tick: np.ndarray, t: np.ndarray) -> float | None:
    """Sample rate from tick indices and timestamps (s) over the whole file, or None.

    Uses the first and last rows only: batch timestamps (several samples stamped with one
    arrival time) bias both ends alike, so the span is accurate to about one batch.
    """
    ok = np.isfinite(t)
    if ok.sum() < 2:
        return None
    tk, tt = tick[ok], t[ok]
    span = float(tt[-1] - tt[0])
    if span <= 0:
        return None
    return float(tk[-1] - tk[0]) / span


def _settle_rate(
    detected: float | None, nominal: float | None, fs_arg: float | None, notes: list[str],
    path: Path,
) -> float:
    """Pick the rate: --fs beats everything, then the detected rate (or nominal if close)."""
    if fs_arg is not None:
        if detected and abs(detected / fs_arg - 1) > 0.005:
            notes.append(f"--fs {fs_arg:g} Hz used although the timestamps say "
                         f"{detected:.3f} Hz")
        return float(fs_arg)
    if detected is None:
        if nominal is None:
            raise _fail(path, "no timestamps and no sample rate in the file; pass --fs HZ")
        notes.append(f"no usable timestamps: the nominal rate {nominal:g} Hz is assumed")
        return float(nominal)
    if nominal is not None:
        if abs(detected / nominal - 1) <= NOMINAL_TOLERANCE:
            return float(nominal)
        notes.append(f"true sample rate from the timestamps is {detected:.3f} Hz, not the "
                     f"nominal {nominal:g} Hz; {detected:.3f} Hz is used")
    return round(detected, 3)


def _check_rate_arg(fs: float | None) -> None:
    if fs is not None and not (math.isfinite(fs) and fs > 0):
        raise DataFormatError(f"--fs = {fs!r}: expected a positive sample rate in Hz")


def _iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _parse_numeric_rows(
    lines: Sequence[str], delimiter: str | None, path: Path, first_line_no: int,
    n_cols: int | None = None,
) -> np.ndarray:
    """Parse delimited numeric rows; NULL/NaN/empty cells become NaN.

    Raises a one-line error naming the first bad line (wrong column count or a word).
    """
    rows: list[list[float]] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        cells = line.split(delimiter) if delimiter else line.split()
        if delimiter == "\t" and cells and cells[-1].strip() == "":
            cells = cells[:-1]  # OpenSignals ends every row with a tab
        if n_cols is None:
            n_cols = len(cells)
        if len(cells) != n_cols:
            raise _fail(path, f"line {first_line_no + i} has {len(cells)} columns, expected "
                        f"{n_cols} (truncated or not this format?)")
        try:
            rows.append([_cell(c) for c in cells])
        except ValueError:
            raise _fail(path, f"line {first_line_no + i}: {line.strip()[:60]!r} is not "
                        "numeric, expected numbers") from None
    if not rows:
        raise _fail(path, "no data rows found")
    return np.asarray(rows, dtype=np.float64)


def _cell(text: str) -> float:
    s = text.strip()
    if s == "" or s.upper() in ("NULL", "NAN", "NA", "N/A"):
        return math.nan
    return float(s)


def choose_quantum(values: np.ndarray, known: float | None = None) -> tuple[float, str]:
    """Step (in the data's unit) for quantising ``values`` to int32 without losing resolution.

    Parameters
    ----------
    values
        One channel, finite values.
    known
        The source's own resolution if the parser knows it (1 for ADC counts).

    Returns
    -------
    step, how
        The step and a short phrase saying how it was chosen.
    """
    v = values[np.isfinite(values)]
    peak = float(np.max(np.abs(v))) if len(v) else 0.0
    if known is not None:
        step, how = float(known), "source resolution"
    else:
        step, how = _decimal_step(v)
        if step is None:
            # binary floats: power-of-two step, max|x| maps to at most 2**30
            exp = math.ceil(math.log2(peak / 2**30)) if peak > 0 else 0
            step, how = 2.0**exp, "power-of-two step for binary floats"
    while peak / step > _INT32_LIMIT:
        step *= 10
        how = "coarsened to fit int32"
    return step, how


def _decimal_step(v: np.ndarray) -> tuple[float | None, str]:
    """10**-d for the fewest decimals d (0..9) that reproduce every value, else None."""
    sample = v[:: max(1, len(v) // 20000)]
    for d in range(10):
        scaled = sample * 10.0**d
        # text parsed to float64 is exact to ~1e-16 relative: anything larger is a digit
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-13 * np.abs(scaled) + 1e-6):
            return 10.0**-d, f"{d} decimals in the source text"
    return None, ""


def _header_lines(text: str, prefix: str) -> tuple[list[str], list[str]]:
    lines = text.splitlines()
    n = 0
    while n < len(lines) and lines[n].startswith(prefix):
        n += 1
    return lines[:n], lines[n:]


# ---------------------------------------------------------------------------------------
# OpenBCI GUI raw text


def read_openbci(path: str | Path, fs: float | None = None) -> ImportedRecording:
    """Read an OpenBCI GUI "OpenBCI-RAW" text file (v5/v6 layout with a column-name row).

    Only the EXG channels (µV) are imported; the rate comes from the unix-ms
    ``Timestamp`` column over the whole file, lost packets from ``Sample Index``
    (wraps at 256), markers from a non-zero ``Marker Channel``.
    """
    path = _check_file(path)
    _check_rate_arg(fs)
    text = _read_text(path)
    head, body = _header_lines(text, "%")
    if not head or "openbci" not in head[0].lower():
        raise _fail(path, f"first line {text[:40].splitlines()[0]!r}: expected '%OpenBCI Raw "
                    "...' (OpenBCI GUI raw text)")
    hdr: dict[str, str] = {}
    for line in head[1:]:
        k, _, v = line[1:].partition("=")
        if v:
            hdr[k.strip()] = v.strip()
    nominal = _header_number(hdr, "Sample Rate", path)
    n_declared = int(_header_number(hdr, "Number of channels", path) or 0)
    if not body or not body[0].lower().startswith("sample index"):
        raise _fail(path, "no column-name row ('Sample Index, EXG Channel 0, ...') after the "
                    "%-header; only the OpenBCI GUI v5/v6 layout is supported")
    cols = [c.strip() for c in body[0].split(",")]
    exg = [i for i, c in enumerate(cols) if c.lower().startswith("exg channel")]
    if n_declared and len(exg) != n_declared:
        raise _fail(path, f"header says {n_declared} channels but the column row names "
                    f"{len(exg)} EXG columns")
    ts_col = _find_col(cols, "timestamp")
    mk_col = _find_col(cols, "marker channel")
    fmt_col = _find_col(cols, "timestamp (formatted)")
    numeric = [i for i in range(len(cols)) if i != fmt_col]
    lines = body[1:]
    raw = _parse_numeric_rows([_drop_cell(line, fmt_col) for line in lines], ",", path,
                              len(head) + 2, n_cols=len(numeric))
    col = {c: j for j, c in enumerate(numeric)}
    notes: list[str] = []
    tick, dups = ticks_from_counter(raw[:, col[0]], 256, path, "Sample Index")
    keep = tick >= 0
    if dups:
        notes.append(f"{dups} rows repeating the previous Sample Index were dropped")
    raw, tick = _drop_rows(keep, raw, tick)
    t = raw[:, col[ts_col]] / 1000.0 if ts_col is not None else np.full(len(raw), np.nan)
    rate = _settle_rate(rate_from_timestamps(tick, t), nominal, fs, notes, path)
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
    start = _iso_utc(t[0]) if np.isfinite(t[0]) else None
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
        raise _fail(path, f"header {key} = {hdr[key]!r}: expected a number")
    return float(m.group(1))


def _find_col(cols: list[str], name: str) -> int | None:
    for i, c in enumerate(cols):
        if c.strip().lower() == name:
            return i
    return None


def _drop_cell(line: str, idx: int | None) -> str:
    if idx is None:
        return line
    cells = line.split(",")
    return ",".join(cells[:idx] + cells[idx + 1:])


# ---------------------------------------------------------------------------------------
# BrainFlow CSV (Cyton)

#: BrainFlow's Cyton rows: package num, 8 EXG (µV), 3 accel, 7 other, 3 analog, ts, marker.
BRAINFLOW_CYTON_COLUMNS = 24


def read_brainflow(path: str | Path, fs: float | None = None) -> ImportedRecording:
    """Read a BrainFlow ``DataFilter.write_file`` CSV in the Cyton layout (24 columns).

    Tab-separated, no header. Channels 1-8 are EXG in µV, column 22 the unix time in
    seconds (rate detected over the whole file), column 23 the marker channel, column 0
    the package number (wraps at 256; gaps are lost samples).
    """
    path = _check_file(path)
    _check_rate_arg(fs)
    lines = _read_text(path).splitlines()
    first = lines[0].split("\t") if lines else []
    if len(first) != BRAINFLOW_CYTON_COLUMNS:
        raise _fail(path, f"first row has {len(first)} tab-separated columns, expected "
                    f"{BRAINFLOW_CYTON_COLUMNS} (BrainFlow Cyton layout)")
    raw = _parse_numeric_rows(lines, "\t", path, 1, n_cols=BRAINFLOW_CYTON_COLUMNS)
    notes: list[str] = ["BrainFlow CSV has no header: the Cyton column layout is assumed"]
    tick, dups = ticks_from_counter(np.nan_to_num(raw[:, 0]).astype(np.int64), 256, path,
                                    "package number")
    if dups:
        notes.append(f"{dups} rows repeating the previous package number were dropped")
    raw, tick = _drop_rows(tick >= 0, raw, tick)
    rate = _settle_rate(rate_from_timestamps(tick, raw[:, 22]), 250.0, fs, notes, path)
    markers = [(int(tick[j]), f"{raw[j, 23]:g}")
               for j in np.flatnonzero(np.nan_to_num(raw[:, 23]) != 0)]
    data = raw[:, 1:9]
    rail = np.mean(np.abs(np.nan_to_num(data)) >= 187499.0, axis=0) > 0.9
    if rail.any():
        names = ", ".join(f"EXG{i + 1}" for i in np.flatnonzero(rail))
        notes.append(f"{names} sit at the ±187500 µV rail (not connected)")
    lost = int(tick[-1] + 1 - len(tick))
    if lost:
        notes.append(f"{lost} samples lost (package-number gaps)")
    notes.append("accelerometer, digital and analog columns not imported")
    t0 = raw[0, 22]
    return ImportedRecording(
        data=data, fs=rate, channel_names=[f"EXG{i}" for i in range(1, 9)],
        units=["uV"] * 8, tick=tick, markers=markers, source_format="brainflow",
        source_path=path, start_time=_iso_utc(t0) if np.isfinite(t0) and t0 > 0 else None,
        notes=notes, nominal_fs=250.0,
    )


# ---------------------------------------------------------------------------------------
# Chords-Python CSV

#: Rates Chords-Python boards stream at; a detected rate this close is taken as nominal.
CHORDS_RATES = (250.0, 500.0, 1000.0)


def read_chords(path: str | Path, fs: float | None = None) -> ImportedRecording:
    """Read a Chords-Python CSV (old layout with ``Timestamp``, or ``Counter,Channel1..N``).

    Values are raw ADC counts. The ``Counter`` is a u8 (wraps at 256); a step larger than
    one is a gap of lost samples. The old layout's ``HH:MM:SS:µs`` timestamps give the
    rate; the new layout has none, so ``fs`` must be given.
    """
    path = _check_file(path)
    _check_rate_arg(fs)
    lines = _read_text(path).splitlines()
    cols = [c.strip() for c in lines[0].split(",")] if lines else []
    has_ts = bool(cols) and cols[0].lower().startswith("timestamp")
    body_cols = cols[1:] if has_ts else cols
    if not body_cols or body_cols[0].lower() != "counter" or len(body_cols) < 2 or not all(
            re.fullmatch(r"channel\d+", c.lower()) for c in body_cols[1:]):
        raise _fail(path, f"header {lines[0][:60] if lines else ''!r}: expected "
                    "'Timestamp,Counter,Channel1..N' or 'Counter,Channel1..N' (Chords-Python)")
    notes: list[str] = []
    times: list[float] = []
    body = lines[1:]
    if has_ts:
        split = [ln.split(",", 1) for ln in body if ln.strip()]
        for i, parts in enumerate(split):
            times.append(_chords_time(parts[0], path, i + 2))
        body = [p[1] if len(p) > 1 else "" for p in split]
    raw = _parse_numeric_rows(body, ",", path, 2, n_cols=len(body_cols))
    tick, dups = ticks_from_counter(np.nan_to_num(raw[:, 0]).astype(np.int64), 256, path,
                                    "Counter")
    keep = tick >= 0
    if dups:
        notes.append(f"{dups} rows repeating the previous Counter were dropped")
    raw, tick = _drop_rows(keep, raw, tick)
    detected = None
    if has_ts:
        t = np.asarray(times)[keep]
        t = t + 86400.0 * np.concatenate([[0], np.cumsum(np.diff(t) < -43200)])  # midnight
        detected = rate_from_timestamps(tick, t)
        notes.append("timestamps are time of day only (no date): start time not carried over")
    elif fs is None:
        raise _fail(path, "Chords CSV without a Timestamp column has no sample rate; pass "
                    "--fs HZ (250 or 500 for most Chords boards)")
    nominal = None
    if detected is not None:
        nominal = min(CHORDS_RATES, key=lambda r: abs(r - detected))
        if abs(detected / nominal - 1) > NOMINAL_TOLERANCE:
            nominal = None
    rate = _settle_rate(detected, nominal, fs, notes, path)
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
        raise _fail(path, f"line {line_no}: Timestamp {text!r}: expected HH:MM:SS:microseconds"
                    ) from None
    return h * 3600 + m * 60 + s + us * 1e-6


# ---------------------------------------------------------------------------------------
# OpenSignals (PLUX) text and HDF5

#: µV per ADC count for PLUX EMG sensors: (ADC/2**n - 1/2) * VCC / gain, in volts.
_PLUX_EMG = {"bitalino": (3.3, 1009.0), "biosignalsplux": (3.0, 1000.0)}


def _plux_emg_scale(device: str, bits: int) -> tuple[float, float, str]:
    vcc, gain = _PLUX_EMG["bitalino" if "bitalino" in device.lower() else "biosignalsplux"]
    return vcc / gain / 2**bits * 1e6, float(2 ** (bits - 1)), f"VCC {vcc} V, gain {gain:g}"


def read_opensignals_txt(path: str | Path, fs: float | None = None) -> ImportedRecording:
    """Read an OpenSignals text file (JSON header between ``#`` lines, tab-separated data).

    Analog ``A*``/``CH*`` columns are imported; EMG sensors are converted with PLUX's EMG
    transfer function, other sensors stay in ADC counts. ``nSeq`` gaps are lost samples.
    """
    path = _check_file(path)
    _check_rate_arg(fs)
    text = _read_text(path)
    head, body = _header_lines(text, "#")
    if not head or "opensignals" not in head[0].lower():
        raise _fail(path, f"first line {text[:40].splitlines()[0]!r}: expected '# OpenSignals "
                    "Text File Format'")
    try:
        meta = json.loads(head[1].lstrip("# ").strip()) if len(head) > 1 else None
    except json.JSONDecodeError as exc:
        raise _fail(path, f"line 2: header is not valid JSON ({exc.msg})") from None
    if not isinstance(meta, dict) or not meta:
        raise _fail(path, "line 2: expected a JSON object describing the device(s)")
    if not any(h.lower().startswith("# endofheader") for h in head):
        raise _fail(path, "no '# EndOfHeader' line, expected one after the JSON header")
    devices = list(meta.items())
    cols: list[str] = []
    for _, dev in devices:
        cols += list(dev.get("column", []))
    raw = _parse_numeric_rows(body, "\t", path, len(head) + 1, n_cols=len(cols))
    notes: list[str] = []
    if len(devices) > 1:
        notes.append(f"{len(devices)} devices in the file: only the first one is imported")
    name, dev = devices[0]
    dcols = list(dev.get("column", []))
    return _opensignals_result(
        path, "opensignals", name, dev, {c: raw[:, i] for i, c in enumerate(dcols)}, fs, notes)


def read_opensignals_h5(path: str | Path, fs: float | None = None) -> ImportedRecording:
    """Read an OpenSignals HDF5 file (one group per device with ``raw/nSeq``, ``raw/channel_N``)."""
    import h5py

    path = _check_file(path)
    _check_rate_arg(fs)
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise _fail(path, f"cannot open as HDF5 ({exc})") from None
    with fh:
        groups = [k for k, g in fh.items() if isinstance(g, h5py.Group) and "raw" in g]
        if not groups:
            raise _fail(path, "no device group with a 'raw' subgroup, expected an OpenSignals HDF5 "
                        "file")
        notes: list[str] = []
        if len(groups) > 1:
            notes.append(f"{len(groups)} devices in the file: only {groups[0]} is imported")
        g = fh[groups[0]]
        dev = {k: _jsonable(v) for k, v in g.attrs.items()}
        raw = g["raw"]
        columns: dict[str, np.ndarray] = {}
        labels, sensors, res = [], [], []
        for key in sorted(raw, key=_natural):
            if key == "nSeq" or key.startswith("channel_"):
                columns[key] = np.asarray(raw[key][:]).reshape(-1).astype(np.float64)
            if key.startswith("channel_"):
                labels.append(str(raw[key].attrs.get("label", key)))
                sensors.append(str(raw[key].attrs.get("sensor", "")))
        res = list(np.atleast_1d(dev.get("resolution", [16] * len(labels))))
        if "nsamples" in dev and columns.get("nSeq") is not None and \
                len(columns["nSeq"]) != int(dev["nsamples"]):
            notes.append(f"attribute nsamples = {dev['nsamples']} but {len(columns['nSeq'])} "
                         "rows are stored")
        if "digital" in g:
            notes.append("digital channels not imported")
        ev = g.get("events")
        if ev is not None and any(len(ev[k]) for k in ev):
            notes.append("OpenSignals events present but not imported")
    dev = {**dev, "sensor": sensors, "label": labels, "resolution": res}
    chan_keys = [k for k in columns if k != "nSeq"]
    dev["column"] = ["nSeq", *chan_keys]
    return _opensignals_result(path, "opensignals", groups[0], dev, columns, fs, notes,
                               names=labels)


def _natural(key: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key)]


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v


def _opensignals_result(
    path: Path, fmt: str, dev_name: str, dev: dict[str, Any], columns: dict[str, np.ndarray],
    fs: float | None, notes: list[str], names: list[str] | None = None,
) -> ImportedRecording:
    if "nSeq" not in columns:
        raise _fail(path, f"device {dev_name}: no nSeq column, expected one (OpenSignals)")
    analog = [c for c in dev["column"] if c not in ("nSeq",) and not c.startswith("D")]
    if not analog:
        raise _fail(path, f"device {dev_name}: no analog channels in columns {dev['column']}")
    sensors = list(dev.get("sensor", [""] * len(analog)))
    res = [int(r) for r in dev.get("resolution", [16] * len(analog))]
    if len(sensors) != len(analog) or len(res) != len(analog):
        raise _fail(path, f"device {dev_name}: {len(analog)} analog columns but "
                    f"{len(sensors)} sensors and {len(res)} resolutions in the header")
    nseq = columns["nSeq"]
    modulus = 16 if "bitalino" in str(dev.get("device", "")).lower() else None
    tick, dups = ticks_from_counter(np.nan_to_num(nseq).astype(np.int64), modulus, path, "nSeq")
    keep = tick >= 0
    if dups:
        notes.append(f"{dups} rows repeating the previous nSeq were dropped")
    data = np.column_stack([columns[c] for c in analog])[keep]
    tick = tick[keep]
    try:
        nominal = float(dev["sampling rate"])
    except (KeyError, TypeError, ValueError):
        raise _fail(path, f"device {dev_name}: header lacks a numeric 'sampling rate'") from None
    rate = nominal if fs is None else float(fs)  # the device clock: no timestamps to check
    units, k, off, how = [], [], [], set()
    for s, bits in zip(sensors, res, strict=True):
        if s.upper() == "EMG":
            a, b, h = _plux_emg_scale(str(dev.get("device", "")), bits)
            units.append("counts")
            k.append(a)
            off.append(b)
            how.add(h)
        else:
            units.append("counts")
            k.append(None)
            off.append(0.0)
    if how:
        notes.append(f"EMG channels converted with PLUX's EMG transfer function "
                     f"({', '.join(sorted(how))})")
    other = [f"{n} ({s})" for n, s in zip(names or analog, sensors, strict=True)
             if s.upper() != "EMG"]
    if other:
        notes.append(f"non-EMG channels kept in ADC counts, not µV: {', '.join(other)}")
    lost = int(tick[-1] + 1 - len(tick)) if len(tick) else 0
    if lost:
        notes.append(f"{lost} samples lost (nSeq gaps)")
    start = None
    if dev.get("date") and dev.get("time"):
        start = _opensignals_start(str(dev["date"]), str(dev["time"]))
        if start:
            notes.append("start time is the recording computer's local time (no time zone)")
    if any(c.startswith("D") for c in dev["column"]):
        notes.append("OpenSignals digital inputs not imported")
    comments = dev.get("comments")
    header = {"device": dev_name, **{kk: dev[kk] for kk in ("device", "firmware version",
                                                             "comments", "sensor", "label")
                                     if kk in dev}}
    if comments:
        notes.append(f"OpenSignals comment kept in metadata: {comments!r}")
    return ImportedRecording(
        data=data, fs=rate, channel_names=list(names or analog), units=units, tick=tick,
        source_format=fmt, source_path=path, start_time=start, notes=notes, uv_per_unit=k,
        offset=off, quantum=[1.0] * len(analog), nominal_fs=nominal, header=header,
    )


def _opensignals_start(date: str, time: str) -> str | None:
    try:
        y, mo, d = (int(p) for p in date.split("-"))
        hms = time.split(":")
        h, mi = int(hms[0]), int(hms[1])
        sec = float(hms[2]) if len(hms) > 2 else 0.0
    except (ValueError, IndexError):
        return None
    return datetime(y, mo, d, h, mi, int(sec), int(round((sec % 1) * 1e6)) % 1000000
                    ).isoformat(timespec="milliseconds")


# ---------------------------------------------------------------------------------------
# LabRecorder XDF


def read_xdf(path: str | Path, fs: float | None = None) -> ImportedRecording:
    """Read a LabRecorder XDF file with pyxdf.

    The numeric stream with the highest nominal rate (most samples on a tie) is imported;
    string streams become markers at the first sample at or after their time stamp.
    """
    import pyxdf

    path = _check_file(path)
    _check_rate_arg(fs)
    with path.open("rb") as fh:
        if fh.read(4) != b"XDF:":
            raise _fail(path, "does not start with 'XDF:', expected an XDF file")
    try:
        streams, file_header = pyxdf.load_xdf(str(path))
    except Exception as exc:  # pyxdf raises bare Exceptions on corrupt chunks
        raise _fail(path, f"pyxdf cannot read it ({type(exc).__name__}: {exc})") from exc
    unfinished = [str(_xdf_info(s, "name")) for s in streams if not s.get("footer")]
    if unfinished:
        raise _fail(path, f"stream {unfinished[0]!r} has no StreamFooter: the file is "
                    "truncated, expected a file LabRecorder closed")
    numeric = [s for s in streams if _xdf_info(s, "channel_format") != "string"
               and len(s["time_stamps"])]
    strings = [s for s in streams if _xdf_info(s, "channel_format") == "string"]
    if not numeric:
        raise _fail(path, "no numeric stream with samples, expected at least one signal stream")
    numeric.sort(key=lambda s: (float(_xdf_info(s, "nominal_srate") or 0),
                                len(s["time_stamps"])), reverse=True)
    main = numeric[0]
    notes: list[str] = []
    for s in numeric[1:]:
        notes.append(f"stream {_xdf_info(s, 'name')!r} ({_xdf_info(s, 'type')}) not imported: "
                     "one signal stream per session")
    ts = np.asarray(main["time_stamps"], dtype=np.float64)
    data = np.asarray(main["time_series"], dtype=np.float64)
    n_ch = int(_xdf_info(main, "channel_count") or data.shape[1])
    if data.ndim != 2 or data.shape[1] != n_ch:
        raise _fail(path, f"stream {_xdf_info(main, 'name')!r}: data shape {data.shape}, "
                    f"expected (n, {n_ch})")
    names, units = _xdf_channels(main, n_ch, notes)
    nominal = float(_xdf_info(main, "nominal_srate") or 0) or None
    effective = float(main["info"].get("effective_srate") or 0) or None
    detected = effective or rate_from_timestamps(np.arange(len(ts)), ts)
    rate = _settle_rate(detected, nominal, fs, notes, path)
    tick = np.arange(len(ts), dtype=np.int64)
    markers: list[tuple[int, str]] = []
    outside = 0
    for s in strings:
        for t, value in zip(s["time_stamps"], s["time_series"], strict=True):
            label = str(value[0] if len(value) else "")
            j = int(np.searchsorted(ts, t, side="left"))
            if t < ts[0] - 1 / rate or j >= len(ts):
                outside += 1
                continue
            markers.append((int(tick[j]), label))
    if outside:
        notes.append(f"{outside} markers outside the signal stream's time span were dropped")
    if strings:
        notes.append(f"markers from {len(strings)} string stream(s) placed at the first sample "
                     "at or after their LSL time stamp")
    dt = str((file_header.get("info", {}).get("datetime") or [""])[0])
    start = _xdf_start(dt)
    if np.ptp(ts) > 0:
        notes.append("XDF stores LSL clock time stamps; they were dejittered by pyxdf and "
                     "replaced by the sample index")
    quantum = [None] * n_ch
    if _xdf_info(main, "channel_format") in ("float32", "double64"):
        notes.append("samples were binary floats: quantised with a power-of-two step "
                     "(see the session's uv_per_count)")
    else:
        quantum = [1.0] * n_ch
    return ImportedRecording(
        data=data, fs=rate, channel_names=names, units=units, tick=tick, markers=markers,
        source_format="xdf", source_path=path, start_time=start, notes=notes,
        quantum=quantum, nominal_fs=nominal,
        header={"stream": _xdf_info(main, "name"), "type": _xdf_info(main, "type"),
                "source_id": _xdf_info(main, "source_id"),
                "channel_format": _xdf_info(main, "channel_format")},
    )


def _xdf_info(stream: dict[str, Any], key: str) -> Any:
    v = stream["info"].get(key)
    if isinstance(v, list):
        return v[0] if v else None
    return v


def _xdf_channels(stream: dict[str, Any], n_ch: int, notes: list[str]) -> tuple[list[str],
                                                                                 list[str]]:
    names = [f"CH{i + 1}" for i in range(n_ch)]
    units = ["uV"] * n_ch
    desc = (stream["info"].get("desc") or [None])[0]
    chans = None
    if isinstance(desc, dict):
        try:
            chans = desc["channels"][0]["channel"]
        except (KeyError, IndexError, TypeError):
            chans = None
    if chans and len(chans) == n_ch:
        for i, c in enumerate(chans):
            label = (c.get("label") or [None])[0]
            unit = (c.get("unit") or [None])[0]
            if label:
                names[i] = str(label)
            if unit:
                units[i] = _norm_unit(str(unit))
        if not all((c.get("unit") or [None])[0] for c in chans):
            notes.append("some channels declare no unit: µV assumed")
    else:
        notes.append("the stream declares no channel labels or units: CH1..CHn and µV assumed")
    return names, units


def _xdf_start(dt: str) -> str | None:
    if not dt:
        return None
    try:
        when = datetime.strptime(dt, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _norm_unit(u: str) -> str:
    low = u.strip().lower().replace("micro", "u").replace("µ", "u")
    return {"uv": "uV", "uvolts": "uV", "microvolts": "uV", "mv": "mV", "v": "V",
            "volts": "V"}.get(low, u.strip())


# ---------------------------------------------------------------------------------------
# Backyard Brains WAV


def read_wav(path: str | Path, fs: float | None = None) -> ImportedRecording:
    """Read a PCM WAV (Backyard Brains apps): int16 samples, rate from the ``fmt`` chunk.

    Tolerates a RIFF size that claims more bytes than the file holds (the BYB app writes
    one) and a data chunk cut short; both are noted.
    """
    path = _check_file(path)
    _check_rate_arg(fs)
    b = path.read_bytes()
    if len(b) < 12 or b[:4] != b"RIFF" or b[8:12] != b"WAVE":
        raise _fail(path, "does not start with 'RIFF....WAVE', expected a WAV file")
    notes: list[str] = []
    riff = struct.unpack("<I", b[4:8])[0]
    if riff + 8 != len(b):
        notes.append(f"RIFF header claims {riff + 8} bytes, the file has {len(b)}")
    pos, fmt, data = 12, None, None
    while pos + 8 <= len(b):
        cid, size = b[pos:pos + 4], struct.unpack("<I", b[pos + 4:pos + 8])[0]
        body = b[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif cid == b"data":
            if len(body) < size:
                notes.append(f"data chunk claims {size} bytes, only {len(body)} present")
            data = body
        pos += 8 + size + (size & 1)
    if fmt is None or data is None:
        raise _fail(path, "missing 'fmt ' or 'data' chunk")
    tag, n_ch, rate, _, _, bits = fmt
    if tag != 1 or bits != 16:
        raise _fail(path, f"format tag {tag}, {bits} bits: expected PCM 16-bit")
    n = len(data) // (2 * n_ch)
    arr = np.frombuffer(data[: n * 2 * n_ch], dtype="<i2").reshape(n, n_ch).astype(np.float64)
    notes.append("WAV samples are ADC counts without a µV scale")
    rate_used = float(rate) if fs is None else float(fs)
    return ImportedRecording(
        data=arr, fs=rate_used, channel_names=[f"CH{i + 1}" for i in range(n_ch)],
        units=["counts"] * n_ch, tick=np.arange(n, dtype=np.int64), source_format="wav",
        source_path=path, notes=notes, uv_per_unit=[None] * n_ch, quantum=[1.0] * n_ch,
        nominal_fs=float(rate),
    )


# ---------------------------------------------------------------------------------------
# generic CSV

_TIME_NAMES = re.compile(r"^(time|timestamp|t|seconds|sec|time_s|elapsed)\b", re.I)
_MARKER_NAMES = re.compile(r"^(marker|markers|event|events|label|trigger)s?\b", re.I)


def read_csv(path: str | Path, fs: float | None = None) -> ImportedRecording:
    """Read a generic delimited text file with a header row.

    The delimiter is comma, tab or semicolon. A column named ``time``/``timestamp``
    (seconds; ``ms`` in the name means milliseconds) gives the rate, otherwise ``fs``
    must be given. A column named ``marker``/``event``/``label`` gives markers (non-empty,
    non-zero cells). Units are read from the column names (``EMG (mV)``, ``ch1 [uV]``);
    without one µV is assumed. Empty, ``NULL`` or ``NaN`` rows are gaps.
    """
    path = _check_file(path)
    _check_rate_arg(fs)
    lines = [ln for ln in _read_text(path).splitlines() if ln.strip()]
    if len(lines) < 2:
        raise _fail(path, "needs a header row and at least one data row")
    delim = max((",", "\t", ";"), key=lambda d: lines[0].count(d))
    cols = [c.strip().strip('"') for c in lines[0].split(delim)]
    if all(_is_number(c) for c in cols if c):
        raise _fail(path, f"first row {lines[0][:60]!r} is numeric, expected a header row with "
                    "column names (generic CSV)")
    t_col = next((i for i, c in enumerate(cols) if _TIME_NAMES.match(c)), None)
    m_col = next((i for i, c in enumerate(cols) if _MARKER_NAMES.match(c)), None)
    notes: list[str] = []
    labels: dict[int, str] = {}
    body = lines[1:]
    if m_col is not None:
        split = [ln.split(delim) for ln in body]
        for i, cells in enumerate(split):
            if len(cells) != len(cols):
                raise _fail(path, f"line {i + 2} has {len(cells)} columns, expected "
                            f"{len(cols)}")
            lab = cells[m_col].strip().strip('"')
            if lab and lab not in ("0", "0.0", "NULL"):
                labels[i] = lab
            cells[m_col] = "0"
        body = [delim.join(c) for c in split]
    raw = _parse_numeric_rows(body, delim, path, 2, n_cols=len(cols))
    ch_idx = [i for i in range(len(cols)) if i not in (t_col, m_col)]
    if not ch_idx:
        raise _fail(path, f"columns {cols}: expected at least one signal column")
    data = raw[:, ch_idx]
    valid = np.all(np.isfinite(data), axis=1)
    tick_all = np.arange(len(raw), dtype=np.int64)
    detected = None
    if t_col is not None:
        scale = 1e-3 if "ms" in cols[t_col].lower() else 1.0
        t = raw[:, t_col] * scale
        if np.any(np.diff(t[np.isfinite(t)]) <= 0):
            raise _fail(path, f"column {cols[t_col]!r} is not strictly increasing, expected "
                        "time in seconds")
        detected = rate_from_timestamps(tick_all, t)
    elif fs is None:
        raise _fail(path, f"no time column among {cols}; pass --fs HZ")
    rate = _settle_rate(detected, None, fs, notes, path)
    gaps = int((~valid).sum())
    if gaps:
        notes.append(f"{gaps} rows without values (NULL/empty) kept as gaps of lost samples")
    names, units = [], []
    for i in ch_idx:
        name, unit = _split_unit(cols[i])
        names.append(name or f"CH{len(names) + 1}")
        units.append(unit or "uV")
    if any(_split_unit(cols[i])[1] is None for i in ch_idx):
        notes.append("no unit in some column names: µV assumed (write 'name (mV)' to say)")
    markers = [(int(j), lab) for j, lab in labels.items()]
    return ImportedRecording(
        data=data[valid], fs=rate, channel_names=names, units=units,
        tick=tick_all[valid], markers=markers, source_format="csv", source_path=path,
        notes=notes,
    )


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _split_unit(col: str) -> tuple[str, str | None]:
    m = re.match(r"^(.*?)\s*[\(\[]\s*([^\)\]]+)\s*[\)\]]\s*$", col)
    if m:
        return m.group(1).strip(), _norm_unit(m.group(2))
    return col.strip(), None


# ---------------------------------------------------------------------------------------
# sniffing and dispatch

READERS: dict[str, Callable[..., ImportedRecording]] = {
    "csv": read_csv,
    "openbci": read_openbci,
    "brainflow": read_brainflow,
    "chords": read_chords,
    "opensignals": lambda p, fs=None: (read_opensignals_h5 if _is_hdf5(Path(p))
                                       else read_opensignals_txt)(p, fs),
    "xdf": read_xdf,
    "wav": read_wav,
}


def _is_hdf5(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(8) == _HDF5_MAGIC


def detect_format(path: str | Path) -> str:
    """Name the format of ``path`` from its content (not its extension).

    Raises
    ------
    DataFormatError
        When no importer recognises the content.
    """
    path = _check_file(path)
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head.startswith(_HDF5_MAGIC):
        import h5py

        try:
            with h5py.File(path, "r") as f:
                if any(isinstance(g, h5py.Group) and "raw" in g for g in f.values()):
                    return "opensignals"
                if "emgfb" in str(dict(f.attrs)).lower():
                    raise _fail(path, "is already an emgfb session; nothing to import")
        except OSError as exc:
            raise _fail(path, f"HDF5 signature but unreadable ({exc})") from None
        raise _fail(path, "HDF5 file without OpenSignals device groups; cannot import it")
    if head.startswith(b"XDF:"):
        return "xdf"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if b"\x00" in head:
        raise _fail(path, "binary file of unknown format; expected text, HDF5, XDF or WAV")
    text = head.decode("utf-8-sig", errors="replace")
    first = text.splitlines()[0].strip() if text.strip() else ""
    low = first.lower()
    if low.startswith("%openbci"):
        return "openbci"
    if low.startswith("# opensignals"):
        return "opensignals"
    if re.match(r"^(timestamp[^,]*,)?counter,channel1\b", low.replace(" ", "")):
        return "chords"
    cells = first.split("\t")
    if len(cells) == BRAINFLOW_CYTON_COLUMNS and all(_is_number(c) for c in cells):
        return "brainflow"
    if any(first.count(d) for d in (",", "\t", ";")) and not all(
            _is_number(c) for c in re.split(r"[,\t;]", first) if c.strip()):
        return "csv"
    raise _fail(path, f"first line {first[:60]!r}: no importer recognises it; expected one of "
                f"{', '.join(FORMATS)} (use --format)")


def read_any(path: str | Path, fmt: str = "auto", fs: float | None = None) -> ImportedRecording:
    """Read ``path`` with the importer for ``fmt`` (``"auto"`` sniffs the content).

    Parameters
    ----------
    path
        Input file.
    fmt
        ``"auto"`` or one of :data:`FORMATS`.
    fs
        Sample rate in Hz, overriding what the file says (required for files without
        timestamps or rate, e.g. the new Chords layout).
    """
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt not in READERS:
        raise DataFormatError(f"--format {fmt!r}: expected auto or one of {', '.join(FORMATS)}")
    rec = READERS[fmt](path, fs)
    log.info("imported %s as %s: %d x %d at %.3f Hz", path, fmt, rec.n_samples,
             rec.n_channels, rec.fs)
    return rec


# ---------------------------------------------------------------------------------------
# conversion to an emgfb session


@dataclass
class SessionArrays:
    """What :func:`to_session` hands to the session writer.

    Attributes
    ----------
    counts
        int32 ``(n_samples, n_channels)``; µV = (counts - offset_counts) * uv_per_count.
    fs, tick, montage, markers, meta
        Sample rate, tick of every row, montage (original names as labels, muscle
        ``"other"``), markers (kind ``"import"``) and the ``import`` metadata block.
    uv_per_count, offset_counts
        Per channel scale and offset.
    max_error
        Per channel, the largest difference between the source value and its quantised
        copy, in the source's units.
    """

    counts: np.ndarray
    fs: float
    tick: np.ndarray
    montage: Montage
    uv_per_count: np.ndarray
    offset_counts: np.ndarray
    markers: list[Marker]
    meta: dict[str, Any]
    max_error: np.ndarray


def import_montage(names: Sequence[str]) -> Montage:
    """Montage for imported channels: labels = original names (made unique), muscle
    ``"other"``, sides alternating left/right, no affected side."""
    labels: list[str] = []
    for i, name in enumerate(names):
        label = str(name).strip() or f"CH{i + 1}"
        while label in labels:
            label = f"{label}_{i + 1}"
        labels.append(label)
    chans = tuple(Channel(lab, "other", SIDES[i % 2]) for i, lab in enumerate(labels))
    return Montage("imported", chans, "none")


def session_arrays(rec: ImportedRecording) -> SessionArrays:
    """Quantise an import to int32 counts and build the session's metadata.

    Each channel gets the step from :func:`choose_quantum` (ADC counts stay exact, decimal
    text keeps its printed resolution, binary floats a power-of-two step); the step times
    the channel's µV-per-unit is the session's ``uv_per_count``. Channels without a known
    µV scale keep their unit numerically (noted in the metadata).
    """
    n_ch = rec.n_channels
    counts = np.empty((rec.n_samples, n_ch), dtype=np.int32)
    uv_per_count = np.empty(n_ch)
    offset = np.empty(n_ch)
    max_err = np.zeros(n_ch)
    how: list[str] = []
    for ch in range(n_ch):
        x = rec.data[:, ch]
        step, why = choose_quantum(x, rec.quantum[ch])
        q = np.round(x / step)
        counts[:, ch] = q.astype(np.int32)
        if len(x):
            max_err[ch] = float(np.max(np.abs(q * step - x)))
        k = rec.uv_per_unit[ch]
        uv_per_count[ch] = step * (1.0 if k is None else k)
        offset[ch] = rec.offset[ch] / step
        how.append(f"{rec.channel_names[ch]}: {step:.6g} {rec.units[ch]} per count ({why})")
    montage = import_montage(rec.channel_names)
    markers = [Marker(int(t), str(label), "import") for t, label in rec.markers]
    meta: dict[str, Any] = {
        "notes": f"Imported from {rec.source_path.name if rec.source_path else '?'} "
                 f"({rec.source_format}). " + " ".join(n.rstrip(".") + "." for n in rec.notes),
        "import": {
            "source_format": rec.source_format,
            "source_file": rec.source_path.name if rec.source_path else "",
            "channel_names": list(rec.channel_names),
            "units": list(rec.units),
            "uv_scale_known": [k is not None for k in rec.uv_per_unit],
            "quantisation": how,
            "max_quantisation_error": max_err.tolist(),
            "nominal_fs": rec.nominal_fs,
            "detected_fs": rec.fs,
            "start_time": rec.start_time,
            "notes": list(rec.notes),
            "source_header": _json_safe(rec.header),
        }
    }
    if rec.start_time and rec.start_time.endswith("Z"):
        meta["start_time_utc"] = rec.start_time
    else:
        meta["notes"] += (" The source gives no UTC start time"
                          + (f" (local time {rec.start_time})" if rec.start_time else "")
                          + ": start_time_utc is the time of the import.")
    return SessionArrays(counts, rec.fs, rec.tick.astype(np.int64), montage, uv_per_count,
                         offset, markers, meta, max_err)


def _json_safe(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=lambda o: _jsonable(o) if not isinstance(
        o, (set, tuple)) else list(o)))


def to_session(rec: ImportedRecording, path: str | Path) -> Path:
    """Write ``rec`` as an emgfb HDF5 session at ``path`` (never overwrites).

    Returns
    -------
    Path
        The file written.
    """
    from emgfb.recording import write_arrays

    arr = session_arrays(rec)
    return write_arrays(
        path, arr.counts, arr.fs, arr.montage, arr.uv_per_count, arr.offset_counts,
        tick=arr.tick, markers=arr.markers, meta=arr.meta,
    )
