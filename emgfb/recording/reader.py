"""Reading HDF5 sessions (format v1): :func:`open_recording` and the :class:`Recording` view.

This module owns opening a session read-only (including files left by a crashed or killed
recorder, which HDF5 only opens in SWMR-read mode), validating the format name and version,
trimming rows that were allocated but never written, and presenting counts, ticks, gaps,
markers and metadata as numpy arrays and plain Python objects. Every failure to open is a
one-line :class:`~emgfb.errors.RecordingError` naming the file. Imports ``errors``,
``montage``, ``protocol``, ``acquisition.source`` (:class:`Marker`), ``recording.schema``,
numpy and h5py.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

import h5py
import numpy as np

from emgfb.errors import ConfigError, RecordingError
from emgfb.montage import Montage
from emgfb.protocol import BoardInfo
from emgfb.recording import schema as S
from emgfb.records import Marker

log = logging.getLogger(__name__)

#: Rows of raw/tick read at a time from the end when looking for a crash's unwritten rows.
_TAIL_SCAN_ROWS = 1 << 16

#: Metadata read attempts when opening a file its writer never closed (HDF5 default: 100).
_SWMR_READ_ATTEMPTS = 2


def _open_h5(path: Path) -> tuple[h5py.File, bool]:
    """Open read-only; fall back to SWMR-read for files whose writer never closed them.

    Returns the file and whether the fallback was needed.
    """
    if path.is_dir():
        raise RecordingError(f"{path}: is a directory, expected an emgfb .h5 session file")
    if not path.exists():
        raise RecordingError(f"{path}: file not found")
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except PermissionError:
        raise RecordingError(f"{path}: permission denied") from None
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if head != b"\x89HDF\r\n\x1a\n":
        raise RecordingError(f"{path}: not an HDF5 file, expected an emgfb .h5 session file")
    try:
        return h5py.File(path, "r"), False
    except OSError as exc:
        first = str(exc)
    if "already open for" in first:
        # a writer killed while in SWMR mode leaves "open for write" flags set; only an
        # SWMR reader may open such a file
        try:
            return _open_swmr_read(path), True
        except OSError as exc:
            first = str(exc)
    reason = first.split("(", 1)[-1].rstrip(")") if "(" in first else first
    raise RecordingError(f"{path}: damaged or truncated HDF5 file ({reason.splitlines()[0]})")


def _hdf5_library() -> ctypes.CDLL | None:
    """The HDF5 C library h5py runs on (Linux: found in /proc/self/maps), or None."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    libs = sorted(set(re.findall(r"\S*/libhdf5(?:-[0-9a-f]+)?\.so[\d.]*", maps)))
    if not libs:
        return None
    lib = ctypes.CDLL(libs[0])
    lib.H5Pset_metadata_read_attempts.argtypes = [ctypes.c_int64, ctypes.c_uint]
    lib.H5Pset_metadata_read_attempts.restype = ctypes.c_int
    return lib


def _open_swmr_read(path: Path) -> h5py.File:
    """Open in SWMR-read mode with few metadata read attempts: HDF5's default (100, with
    back-off sleeps) makes a damaged file hang for minutes instead of failing."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    lib = _hdf5_library()
    if lib is None or lib.H5Pset_metadata_read_attempts(fapl.id, _SWMR_READ_ATTEMPTS) < 0:
        log.warning("%s: cannot limit HDF5 metadata read attempts; opening may be slow", path)
    flags = h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ
    return h5py.File(h5py.h5f.open(os.fsencode(path), flags, fapl=fapl))


class Block(NamedTuple):
    """Consecutive samples of a session (:meth:`Recording.iter_blocks`)."""

    #: Index of the first sample in the session.
    start: int
    #: Absolute ticks, int64.
    tick: np.ndarray
    #: Raw counts ``(n, n_channels)`` as stored (None if not asked for).
    counts: np.ndarray | None


class Recording:
    """A session file opened read-only. Use :func:`open_recording`; close it (or ``with``).

    Attributes
    ----------
    path
        The file.
    fs
        Sample rate in Hz.
    n_channels, n_samples
        Shape of the raw data actually written.
    labels
        Channel labels in hardware order.
    montage
        The montage recorded with the session.
    uv_per_count, offset_counts
        Per-channel scale and offset: ``uv = (counts - offset_counts) * uv_per_count``.
    gaps
        Gap table (:data:`~emgfb.recording.schema.GAP_DTYPE`): ``start_sample`` is the
        first sample after the gap, ``lost_ticks`` how many ticks are missing before it.
    host_time
        Host receive times (:data:`~emgfb.recording.schema.HOST_TIME_DTYPE`).
    meta
        All session metadata as plain Python (JSON attributes decoded), plus
        ``calibration`` and ``complete`` (False if the writer never closed the file).
    info
        The board identification, or ``None`` for imported data.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file, self.recovered = _open_h5(self.path)
        try:
            self._load_header()
        except RecordingError:
            self._file.close()
            raise
        except (KeyError, ValueError, TypeError, OSError) as exc:
            self._file.close()
            raise RecordingError(
                f"{self.path}: not a valid {S.FORMAT_NAME} file ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else 'missing data'})"
            ) from None
        self._counts: np.ndarray | None = None

    def _load_header(self) -> None:
        f = self._file
        attrs = f.attrs
        name = attrs.get("format")
        if name != S.FORMAT_NAME:
            raise RecordingError(
                f"{self.path}: format = {name!r}, expected {S.FORMAT_NAME!r} "
                "(use 'emgfb import' for files from other tools)"
            )
        version = attrs.get("format_version", -1)
        if not isinstance(version, int | np.integer) or version != S.FORMAT_VERSION:
            raise RecordingError(
                f"{self.path}: format_version = {version}, this emgfb reads version "
                f"{S.FORMAT_VERSION}"
            )
        self.format_version = int(version)
        self.fs = self._number(attrs, "fs", "a positive, finite sample rate in Hz",
                               lambda v: np.isfinite(v) and v > 0)
        meta: dict[str, Any] = {}
        for key, value in attrs.items():
            if isinstance(value, bytes):
                value = value.decode("utf-8")
            if key in S.JSON_ATTRS:
                try:
                    value = json.loads(value) if value else None
                except (TypeError, json.JSONDecodeError):
                    self._bad(f"attribute {key}", value, "a JSON document")
            elif isinstance(value, np.generic):
                value = value.item()
            meta[key] = value
        meta["calibration"] = self.document("calibration") or {}
        meta["complete"] = bool(meta.get("complete", False))
        self.meta = meta
        counts_ds, tick_ds = f[S.COUNTS], f[S.TICK]
        if counts_ds.ndim != 2 or counts_ds.dtype not in S.COUNT_DTYPES:
            self._bad(S.COUNTS, f"{counts_ds.dtype} {counts_ds.shape}",
                      "a 2-D uint16 or int32 dataset (samples, channels)")
        if tick_ds.ndim != 1 or tick_ds.dtype.kind not in "iu":
            self._bad(S.TICK, f"{tick_ds.dtype} {tick_ds.shape}", "a 1-D integer dataset")
        self.n_channels = int(counts_ds.shape[1])
        self._number(attrs, "n_channels", f"{self.n_channels} (the columns of {S.COUNTS})",
                     lambda v: v == self.n_channels)
        try:
            self.montage: Montage = S.montage_from_dict(meta["montage"])
        except (KeyError, TypeError, ValueError, ConfigError):
            self._bad("attribute montage", attrs.get("montage"),
                      "a JSON montage with one channel per column of raw/counts")
        if self.montage.n_channels != self.n_channels:
            self._bad("attribute montage", f"{self.montage.n_channels} channels",
                      f"{self.n_channels} (the columns of {S.COUNTS})")
        try:
            self.info: BoardInfo | None = S.board_from_dict(meta.get("board"))
        except (KeyError, TypeError, ValueError):
            self._bad("attribute board", attrs.get("board"), "a JSON board description or null")
        ch = f[S.CHANNELS]
        self.labels = [s.decode("utf-8") if isinstance(s, bytes) else s for s in ch["label"][()]]
        self.uv_per_count = self._per_channel(ch, "uv_per_count")
        self.offset_counts = self._per_channel(ch, "offset_counts")
        n = self._main_rows(counts_ds, tick_ds)
        self._n_main = n
        last_main = int(tick_ds[n - 1]) if n else None
        self._tail_counts, self._tail_tick = self._read_tail(last_main, counts_ds.dtype)
        self.n_samples = n + len(self._tail_tick)
        self._tick: np.ndarray | None = None
        if self.n_samples == 0:
            self.first_tick = 0
        else:
            self.first_tick = int(tick_ds[0]) if n else int(self._tail_tick[0])
        if meta["complete"]:
            gaps = np.asarray(f[S.GAPS][()], dtype=S.GAP_DTYPE)
            self.gaps = gaps[gaps["start_sample"] < self.n_samples]
        else:
            # a crash can leave the table behind the ticks: derive it from them
            self.gaps = self._gaps_from_ticks()
        host = np.asarray(f[S.HOST_TIME][()], dtype=S.HOST_TIME_DTYPE)
        self.host_time = host[host["sample"] < self.n_samples]
        self.overrun = np.asarray(f[S.OVERRUN][()], dtype=np.int64)
        self.overrun = self.overrun[self.overrun < self.n_samples]
        rows = np.asarray(f[S.MARKERS][()], dtype=S.MARKER_DTYPE)
        self.markers = [
            Marker(int(r["tick"]), r["label"].decode("utf-8", "replace"),
                   r["kind"].decode("utf-8", "replace"))
            for r in rows
        ]
        self.marker_samples = np.asarray(rows["sample"], dtype=np.int64)

    def _main_rows(self, counts_ds: h5py.Dataset, tick_ds: h5py.Dataset) -> int:
        """Rows of raw/counts and raw/tick actually written (reads only the end of tick)."""
        n = min(counts_ds.shape[0], tick_ds.shape[0])
        if counts_ds.shape[0] != tick_ds.shape[0]:
            log.warning("%s: raw/counts has %d rows, raw/tick %d; using %d", self.path,
                        counts_ds.shape[0], tick_ds.shape[0], n)
        # rows allocated by a resize whose data never reached the disk keep the fill value
        end = n
        while end > 0:
            a = max(0, end - _TAIL_SCAN_ROWS)
            tick = np.asarray(tick_ds[a:end], dtype=np.int64)
            written = np.flatnonzero(tick != S.TICK_FILL)
            if len(written):
                end = a + int(written[-1]) + 1
                break
            end = a
        if end != n:
            log.warning("%s: recording was cut off; %d rows of raw/counts are readable",
                        self.path, end)
        return end

    def _read_tail(self, last_main: int | None, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the chunk a crashed recorder was filling (``raw/tail_*``): those whose
        tick follows the last row of raw/counts, in order. Empty for closed files."""
        f = self._file
        empty = np.zeros((0, self.n_channels), dtype), np.zeros(0, np.int64)
        if self.meta["complete"] or S.TAIL_TICK not in f or S.TAIL_COUNTS not in f:
            return empty
        tick = np.asarray(f[S.TAIL_TICK][()], dtype=np.int64)
        floor = S.TICK_FILL if last_main is None else last_main
        ok = tick > floor
        ok[1:] &= np.diff(tick) > 0
        k = int(np.argmin(ok)) if not ok.all() else len(ok)
        if k == 0:
            return empty
        counts = np.asarray(f[S.TAIL_COUNTS][:k], dtype=dtype)
        if counts.shape != (k, self.n_channels):
            return empty
        log.info("%s: %d samples recovered from the crash-safety tail", self.path, k)
        return counts, tick[:k]

    def _gaps_from_ticks(self) -> np.ndarray:
        parts, prev = [], None
        for block in self.iter_blocks(counts=False):
            parts.append(S.gap_rows(block.tick, block.start, prev))
            prev = int(block.tick[-1])
        return np.concatenate(parts) if parts else np.zeros(0, S.GAP_DTYPE)

    def _bad(self, what: str, value: Any, expected: str) -> NoReturn:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, np.generic):
            value = value.item()
        text = repr(value)
        if len(text) > 60:
            text = text[:57] + "..."
        raise RecordingError(f"{self.path}: {what} = {text}: expected {expected}")

    def _number(self, attrs: Any, name: str, expected: str, ok: Any) -> float:
        """Root attribute ``name`` as a number, checked with ``ok`` (one-line error)."""
        value = attrs.get(name)
        try:
            number = float(value)
        except (TypeError, ValueError):
            self._bad(f"attribute {name}", value, expected)
        if not ok(number):
            self._bad(f"attribute {name}", value, expected)
        return number

    def _per_channel(self, group: h5py.Group, name: str) -> np.ndarray:
        """``channels/<name>`` as float64, one finite number per channel."""
        try:
            arr = np.asarray(group[name][()], dtype=np.float64)
        except (TypeError, ValueError):
            self._bad(f"{S.CHANNELS}/{name}", group[name].dtype, "numbers")
        if arr.shape != (self.n_channels,) or not np.all(np.isfinite(arr)):
            self._bad(f"{S.CHANNELS}/{name}", arr.tolist() if arr.size < 9 else arr.shape,
                      f"{self.n_channels} finite numbers (one per channel)")
        return arr

    # -- data ----------------------------------------------------------------------------
    @property
    def tick(self) -> np.ndarray:
        """Absolute tick of every sample (int64, strictly increasing; computed on first
        access: prefer :meth:`read_ticks` or :meth:`iter_blocks` for long sessions)."""
        if self._tick is None:
            self._tick = self.read_ticks(0, self.n_samples)
        return self._tick

    @property
    def counts(self) -> np.ndarray:
        """All raw counts ``(n_samples, n_channels)`` as stored (read on first access;
        prefer :meth:`iter_blocks` for long sessions)."""
        if self._counts is None:
            self._counts = self.read_counts(0, self.n_samples)
        return self._counts

    def read_counts(self, start: int, stop: int) -> np.ndarray:
        """Raw counts of samples ``start .. stop-1`` (clipped to the recording)."""
        start, stop = max(0, start), min(stop, self.n_samples)
        if stop <= start:
            return np.zeros((0, self.n_channels), self.count_dtype)
        m = self._n_main
        try:
            main = self._file[S.COUNTS][start:min(stop, m)] if start < m else None
        except OSError as exc:
            raise RecordingError(
                f"{self.path}: damaged raw/counts rows {start}..{stop - 1} "
                f"({str(exc).splitlines()[0]})"
            ) from None
        if main is not None and stop <= m:
            return main
        tail = self._tail_counts[max(0, start - m):stop - m]
        return tail.copy() if main is None else np.concatenate((main, tail))

    def read_ticks(self, start: int, stop: int) -> np.ndarray:
        """Ticks of samples ``start .. stop-1`` (clipped), from the first tick and the gap
        table: no need to read ``raw/tick``."""
        start, stop = max(0, start), max(start, min(stop, self.n_samples))
        tick = np.arange(start + self.first_tick, stop + self.first_tick, dtype=np.int64)
        g = self.gaps
        if len(g) == 0 or stop == start:
            return tick
        # lost ticks before each gap-free segment that overlaps [start, stop)
        lost = np.concatenate(([0], np.cumsum(g["lost_ticks"], dtype=np.int64)))
        bounds = np.asarray(g["start_sample"], np.int64)
        i0, i1 = np.searchsorted(bounds, [start, stop], side="right")
        edges = np.concatenate(([start], bounds[i0:i1], [stop]))
        tick += np.repeat(lost[i0 : i1 + 1], np.diff(edges))
        return tick

    def iter_blocks(
        self, block_rows: int | None = None, start: int = 0, stop: int | None = None,
        counts: bool = True,
    ) -> Iterator[Block]:
        """The session in consecutive blocks of at most ``block_rows`` samples (default:
        whole HDF5 chunks, ~256 kB of counts), so memory does not grow with its length.

        Parameters
        ----------
        block_rows
            Samples per block.
        start, stop
            Sample range (clipped; ``stop=None``: to the end).
        counts
            False to skip reading the counts (``Block.counts`` is then None).

        Yields
        ------
        Block
            ``start`` (index of its first sample), ``tick`` and ``counts``.
        """
        if block_rows is None:
            chunks = self._file[S.COUNTS].chunks
            block_rows = 4 * chunks[0] if chunks else 65536
        if block_rows < 1:
            raise ValueError(f"block_rows = {block_rows}: expected >= 1")
        stop = self.n_samples if stop is None else min(stop, self.n_samples)
        stored = not self.meta["complete"]  # ticks of a crashed file: as stored
        for a in range(max(0, start), stop, block_rows):
            b = min(a + block_rows, stop)
            if stored:
                tick = self._stored_ticks(a, b)
            else:
                tick = self.read_ticks(a, b)
            yield Block(a, tick, self.read_counts(a, b) if counts else None)

    def _stored_ticks(self, a: int, b: int) -> np.ndarray:
        m = self._n_main
        main = np.asarray(self._file[S.TICK][a:min(b, m)], np.int64) if a < m else None
        if main is not None and b <= m:
            return main
        tail = self._tail_tick[max(0, a - m):b - m]
        return tail.copy() if main is None else np.concatenate((main, tail))

    def to_uv(self, counts: np.ndarray) -> np.ndarray:
        """Counts (e.g. of a :class:`Block`) in microvolts, float64."""
        return (np.asarray(counts, np.float64) - self.offset_counts) * self.uv_per_count

    def uv(self) -> np.ndarray:
        """All samples in microvolts, float64: ``(counts - offset_counts) * uv_per_count``."""
        return self.to_uv(self.counts)

    def document(self, name: str) -> Any:
        """The JSON document ``name`` (see :data:`emgfb.recording.schema.DOCUMENTS`:
        ``"calibration"``, ``"protocol"``, ``"scores"``), or None if the session has none."""
        if name not in S.DOCUMENTS:
            raise ValueError(f"unknown document {name!r}; expected one of {list(S.DOCUMENTS)}")
        path = S.DOCUMENTS[name]
        if path not in self._file:  # written before this document existed
            return None
        raw = self._file[path][()]
        if not len(raw):
            return None
        try:
            return json.loads(bytes(raw).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RecordingError(f"{self.path}: {path} is not valid JSON ({exc})") from None

    @property
    def clock(self) -> dict[str, Any] | None:
        """The board's measured sample rate (the ``clock`` document: ``nominal_fs``,
        ``estimated``, then ``fs_hz``, ``ppm``, ``uncertainty_ppm``, ``span_s`` ... or
        ``reason``); None for files written before emgfb measured it, imports and
        recordings that ended before the first estimate was stored."""
        doc = self.document("clock")
        return doc if isinstance(doc, dict) else None

    @property
    def true_fs(self) -> float | None:
        """The board's sample rate in host (true) seconds, if it was measured."""
        doc = self.clock
        if doc and doc.get("estimated") and isinstance(doc.get("fs_hz"), int | float):
            return float(doc["fs_hz"])
        return None

    @property
    def envelopes(self) -> np.ndarray | None:
        """Stored computed envelopes (µV), or ``None`` if the file has none."""
        if S.ENVELOPE_DATA not in self._file:
            return None
        return self._file[S.ENVELOPE_DATA][: self.n_samples]

    @property
    def lost_ticks(self) -> int:
        """Ticks lost in gaps across the whole session."""
        return int(self.gaps["lost_ticks"].sum())

    @property
    def duration_s(self) -> float:
        """Time spanned by the session in seconds, gaps included ((samples + lost) / fs)."""
        return (self.n_samples + self.lost_ticks) / self.fs

    @property
    def count_dtype(self) -> np.dtype:
        """Stored dtype of the raw counts (uint16 from boards, int32 for some imports)."""
        return self._file[S.COUNTS].dtype

    def summary(self) -> dict[str, Any]:
        """The facts ``emgfb info --json`` prints, as a JSON-friendly dict."""
        board = self.info
        return {
            "path": str(self.path),
            "format": S.FORMAT_NAME,
            "format_version": self.format_version,
            "fs": self.fs,
            "n_channels": self.n_channels,
            "channels": list(self.labels),
            "muscles": [c.muscle for c in self.montage.channels],
            "sides": [c.side for c in self.montage.channels],
            "affected_side": self.montage.affected_side,
            "n_samples": self.n_samples,
            "duration_s": round(self.duration_s, 6),
            "lost_ticks": self.lost_ticks,
            "n_gaps": int(len(self.gaps)),
            "n_overrun_flags": int(len(self.overrun)),
            "n_markers": len(self.markers),
            "subject": self.meta.get("subject", ""),
            "notes": self.meta.get("notes", ""),
            "start_time_utc": self.meta.get("start_time_utc", ""),
            "end_time_utc": self.meta.get("end_time_utc", ""),
            "complete": self.meta["complete"],
            "board": board.board if board else None,
            "firmware": board.firmware if board else None,
            "count_dtype": str(self.count_dtype),
            "uv_per_count": self.uv_per_count.tolist(),
            "has_calibration": bool(self.meta["calibration"]),
            "has_envelopes": S.ENVELOPE_DATA in self._file,
            "clock": self.clock,
            "emgfb_version": self.meta.get("emgfb_version", ""),
        }

    # -- lifecycle -----------------------------------------------------------------------
    def close(self) -> None:
        """Close the file (idempotent)."""
        self._file.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_recording(path: str | Path) -> Recording:
    """Open an emgfb session file read-only.

    Parameters
    ----------
    path
        A ``.h5`` file written by :class:`~emgfb.recording.writer.SessionWriter` or
        :func:`~emgfb.recording.writer.write_arrays` (also one whose recorder crashed).

    Returns
    -------
    Recording
        Use as a context manager, or call :meth:`Recording.close`.

    Raises
    ------
    RecordingError
        If the path is a directory, missing, unreadable, not HDF5, truncated, or not
        format ``emgfb-session`` version 1 (one line naming the file).
    """
    return Recording(path)
