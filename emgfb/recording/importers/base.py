"""Shared parts of the importers: the in-memory :class:`ImportedRecording`, the format
registry entry :class:`Format`, and helpers every reader uses (input checks, counter
unwrapping, rate detection, units). Imports numpy, ``errors`` and ``delimited``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from emgfb.delimited import fail
from emgfb.errors import DataFormatError
from emgfb.limits import SAMPLE_RATE_HZ

#: A detected rate this close (relative) to the nominal one means "the nominal rate".
NOMINAL_TOLERANCE = 5e-4

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
UV_PER_UNIT = {"uv": 1.0, "µv": 1.0, "microvolt": 1.0, "mv": 1e3, "v": 1e6}


@dataclass(frozen=True)
class Format:
    """One importer in the registry.

    Attributes
    ----------
    name
        The ``--format`` name.
    sniff
        ``sniff(head) -> bool``: True when the first 4 KiB of a file are this format.
    read
        ``read(path, fs=None) -> ImportedRecording``.
    """

    name: str
    sniff: Callable[[bytes], bool]
    read: Callable[..., ImportedRecording]


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
            self.uv_per_unit = [UV_PER_UNIT.get(u.lower()) for u in self.units]
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




def check_file(path: str | Path) -> Path:
    """``path`` as a Path after checking it is a readable, non-empty file.

    Raises
    ------
    DataFormatError
        One line naming the file and what is wrong with it.
    """
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


def head_text(head: bytes) -> str:
    """The first bytes of a file as text (empty for binary content)."""
    if b"\x00" in head:
        return ""
    return head.decode("utf-8-sig", errors="replace")


def first_line(head: bytes) -> str:
    """The first non-blank line of ``head`` (stripped), or ``""``."""
    for line in head_text(head).splitlines():
        if line.strip():
            return line.strip()
    return ""




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
        raise fail(path, f"{field_name} goes backwards at row {i} ({c[i - 1]} -> {c[i]}), "
                    "expected an increasing sample counter")
    dup = step == 0
    tick = np.concatenate([[0], np.cumsum(step)])
    tick[1:][dup] = -1
    return tick, int(dup.sum())


def drop_rows(keep: np.ndarray, *arrays: np.ndarray) -> list[np.ndarray]:
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


def settle_rate(
    detected: float | None, nominal: float | None, fs_arg: float | None, notes: list[str],
    path: Path,
) -> float:
    """Pick the rate (:func:`pick_rate`) and check it against
    :data:`emgfb.limits.SAMPLE_RATE_HZ` (timestamps in the wrong unit give absurd rates)."""
    return SAMPLE_RATE_HZ.check(pick_rate(detected, nominal, fs_arg, notes, path),
                                "sample rate", str(path))


def pick_rate(
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
            raise fail(path, "no timestamps and no sample rate in the file; pass --fs HZ")
        notes.append(f"no usable timestamps: the nominal rate {nominal:g} Hz is assumed")
        return float(nominal)
    if nominal is not None:
        if abs(detected / nominal - 1) <= NOMINAL_TOLERANCE:
            return float(nominal)
        notes.append(f"true sample rate from the timestamps is {detected:.3f} Hz, not the "
                     f"nominal {nominal:g} Hz; {detected:.3f} Hz is used")
    return round(detected, 3)


def check_rate_arg(fs: float | None) -> None:
    if fs is not None:
        SAMPLE_RATE_HZ.check(fs, "--fs")


def iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def norm_unit(u: str) -> str:
    """A unit word as emgfb spells it (``uV``, ``mV``, ``V``), else unchanged."""
    low = u.strip().lower().replace("micro", "u").replace("µ", "u")
    return {"uv": "uV", "uvolts": "uV", "microvolts": "uV", "mv": "mV", "v": "V",
            "volts": "V"}.get(low, u.strip())


def split_unit(col: str) -> tuple[str, str | None]:
    """``"zyg (mV)"`` -> ``("zyg", "mV")``; a name without a unit -> ``(name, None)``."""
    m = re.match(r"^(.*?)\s*[\(\[]\s*([^\)\]]+)\s*[\)\]]\s*$", col)
    if m:
        return m.group(1).strip(), norm_unit(m.group(2))
    return col.strip(), None


def jsonable(v: Any) -> Any:
    """numpy scalars/arrays and bytes as plain JSON-friendly Python."""
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v
