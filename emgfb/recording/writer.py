"""Writing HDF5 sessions: the threaded, crash-safe :class:`SessionWriter` and :func:`write_arrays`.

This module owns file creation (never overwriting), the layout of format v1 as laid down in
:mod:`emgfb.recording.schema`, the writer thread that buffers and appends data, and its
failure handling. Three mechanisms keep what was written readable:

* **SWMR write order.** Once the file is switched to HDF5's single-writer /
  multiple-reader mode, HDF5 orders its metadata writes so that the file on disk is
  consistent at every instant: after ``kill -9`` it holds everything up to the last flush.
* **Whole chunks plus a tail.** ``raw/counts`` and ``raw/tick`` grow only by whole,
  compressed chunks (written once, never rewritten: fast, compact, fast to read). Rows of
  the chunk being filled are written every ``flush_interval`` (<= 1 s) into the fixed,
  uncompressed ``raw/tail_counts`` / ``raw/tail_tick``, overwritten in place; on close the
  last partial chunk is appended. A crashed file's newest rows are read back from the tail.
* **Space reserved, writes frozen on error.** Disk space for the next appends and for
  closing is kept allocated beyond the end of the file
  (:class:`~emgfb.recording.diskspace.SpaceReservation`), so a disk filled by another
  program stops the recording cleanly, complete and closed. Any other I/O error freezes the
  file descriptor (:func:`~emgfb.recording.diskspace.freeze`) so HDF5 cannot write a
  half-finished state on close: the file stays as after the last flush, like ``kill -9``.

The failure is state (:attr:`SessionWriter.error`, :attr:`SessionWriter.stop_reason`),
logged once at INFO level for the owner to show. Imports ``errors``, ``montage``,
``records``, ``worker``, ``recording.schema``, ``recording.diskspace``, numpy and h5py;
never DSP or the GUI.
"""

from __future__ import annotations

import datetime as _dt
import errno
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from emgfb import __version__
from emgfb.errors import RecordingError
from emgfb.montage import Montage
from emgfb.outputs import check_output
from emgfb.protocol import BoardInfo
from emgfb.recording import schema as S
from emgfb.recording.diskspace import SpaceReservation, freeze
from emgfb.records import Chunk, Marker
from emgfb.worker import Worker

log = logging.getLogger(__name__)

#: Default compression of ``raw/counts`` and ``raw/tick`` (see benchmarks/results/recording.md).
DEFAULT_COMPRESSION: str | None = "gzip"
#: Uncompressed bytes of counts per HDF5 chunk (rows = this / row size, a power of two in
#: 512..65536): 16384 rows for 8 ch uint16, ~8 s at 2 kHz. Chunks are only ever written
#: whole, so their size costs neither crash safety nor space.
CHUNK_BYTES = 256 << 10
#: Free bytes kept in reserve where space cannot be reserved (fallback) and under the
#: file-size limit: the writer stops cleanly before.
HEADROOM_BYTES = 256 << 10
#: Bytes for HDF5 metadata, small tables and closing, on top of the rows to append.
_MARGIN_BYTES = 96 << 10
#: Seconds of data the input queue may hold; beyond that chunks are dropped and counted.
QUEUE_SECONDS = 30.0

_SENTINEL = object()


def chunk_rows(n_channels: int, itemsize: int) -> int:
    """Rows per chunk of ``raw/counts`` for this many channels of this item size."""
    rows = CHUNK_BYTES // max(1, n_channels * itemsize)
    return int(min(65536, max(512, 1 << (max(1, rows).bit_length() - 1))))


class _OutOfSpace(RecordingError):
    """The disk (or the file-size limit) leaves no room for more: stop cleanly while the
    reserved space still lets HDF5 close the file."""


def utc_now_iso() -> str:
    """Current UTC time as ISO 8601 with a ``Z`` suffix (millisecond precision)."""
    now = _dt.datetime.now(_dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def check_new_path(path: Path) -> None:
    """The output rule (:func:`emgfb.outputs.check_output`) for a new recording: refuse an
    existing path, a missing or unwritable folder (RecordingError), before any work."""
    check_output(path, force=None, what="recording")


def _compression_kwargs(compression: str | None) -> dict[str, Any]:
    if compression is None or compression == "none":
        return {}
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": 1, "shuffle": True}
    if compression == "lzf":
        return {"compression": "lzf", "shuffle": True}
    raise RecordingError(f"compression = {compression!r}: expected gzip, lzf or none")


def _create_layout(
    f: h5py.File,
    *,
    fs: float,
    montage: Montage,
    uv_per_count: np.ndarray,
    offset_counts: np.ndarray,
    count_dtype: np.dtype,
    info: BoardInfo | None,
    attrs: dict[str, Any],
    compression: str | None,
    n_rows: int = 0,
    tail: bool = False,
) -> None:
    """Create every group, dataset and attribute of format v1 (empty unless ``n_rows``);
    ``tail`` adds the crash-safety tail of a live recording."""
    n_ch = montage.n_channels
    comp = _compression_kwargs(compression)
    f.attrs["format"] = S.FORMAT_NAME
    f.attrs["format_version"] = S.FORMAT_VERSION
    f.attrs["fs"] = float(fs)
    f.attrs["n_channels"] = n_ch
    f.attrs["emgfb_version"] = __version__
    f.attrs["affected_side"] = montage.affected_side
    f.attrs["montage"] = S.to_json(montage.as_dict(), "montage")
    f.attrs["board"] = S.to_json(info.as_dict() if info else None, "board")
    f.attrs["board_line"] = info.line if info else ""
    f.attrs["firmware"] = info.firmware if info else ""
    for key, value in attrs.items():
        f.attrs[key] = value
    # written at the end, while in SWMR mode, where attributes can be changed but not added
    f.attrs["complete"] = False
    for key in ("end_time_utc", "stop_reason"):
        f.attrs.create(key, attrs.get(key, ""), dtype=h5py.string_dtype("utf-8"))

    chans = f.create_group(S.CHANNELS)
    str_dt = h5py.string_dtype("utf-8")
    chans.create_dataset("label", data=np.array(montage.labels, dtype=object), dtype=str_dt)
    chans.create_dataset(
        "muscle", data=np.array([c.muscle for c in montage.channels], dtype=object), dtype=str_dt
    )
    chans.create_dataset(
        "side", data=np.array([c.side for c in montage.channels], dtype=object), dtype=str_dt
    )
    chans.create_dataset("uv_per_count", data=uv_per_count)
    chans.create_dataset("offset_counts", data=offset_counts)

    raw = f.create_group(S.RAW)
    rows = chunk_rows(n_ch, count_dtype.itemsize)
    counts = raw.create_dataset(
        "counts", shape=(n_rows, n_ch), maxshape=(None, n_ch), dtype=count_dtype,
        chunks=(rows, n_ch), **comp,
    )
    counts.attrs["units"] = "counts"
    counts.attrs["uv_formula"] = "uv = (counts - offset_counts) * uv_per_count"
    raw.create_dataset(
        "tick", shape=(n_rows,), maxshape=(None,), dtype=np.int64, chunks=(rows,),
        fillvalue=S.TICK_FILL, **comp,
    )
    for name, dt in (("host_time", S.HOST_TIME_DTYPE), ("gaps", S.GAP_DTYPE)):
        raw.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dt, chunks=(1024,))
    raw.create_dataset("overrun", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(1024,))
    if tail:
        # contiguous, allocated now (written once here): later writes overwrite in place
        # and never touch HDF5 metadata
        raw.create_dataset("tail_counts", data=np.zeros((rows, n_ch), count_dtype))
        raw.create_dataset("tail_tick", data=np.full(rows, S.TICK_FILL, np.int64))
    f.create_dataset(S.MARKERS, shape=(0,), maxshape=(None,), dtype=S.MARKER_DTYPE, chunks=(64,))
    for path in S.DOCUMENTS.values():
        f.create_dataset(path, shape=(0,), maxshape=(None,), dtype=np.uint8, chunks=(4096,))


def _session_attrs(
    subject: str,
    notes: str,
    dsp_config: dict | None,
    frontend: dict | None,
    extra_meta: dict | None,
    start_time_utc: str,
    writer: str,
) -> dict[str, Any]:
    return {
        "subject": S.check_subject(subject),
        "notes": notes,
        "start_time_utc": start_time_utc,
        "dsp_config": S.to_json(dsp_config or {}, "dsp_config"),
        "frontend": S.to_json(frontend or {}, "frontend"),
        "extra": S.to_json(extra_meta or {}, "extra_meta"),
        "writer": writer,
    }


def _append(ds: h5py.Dataset, rows: np.ndarray) -> None:
    if len(rows) == 0:
        return
    n = ds.shape[0]
    ds.resize(n + len(rows), axis=0)
    ds[n:] = rows


def _write_rows(ds: h5py.Dataset, start: int, rows: np.ndarray) -> None:
    """``ds[start:start + len(rows)] = rows`` through h5py's low-level API (a third of
    the per-call cost of slicing, which matters at one call per flush)."""
    rows = np.ascontiguousarray(rows, dtype=ds.dtype)
    fspace = ds.id.get_space()
    fspace.select_hyperslab((start,) + (0,) * (rows.ndim - 1), rows.shape)
    ds.id.write(h5py.h5s.create_simple(rows.shape), fspace, rows)


def _marker_rows(markers: Sequence[Marker], samples: np.ndarray) -> np.ndarray:
    rows = np.zeros(len(markers), S.MARKER_DTYPE)
    for i, m in enumerate(markers):
        rows[i] = (
            m.tick,
            samples[i],
            S.encode_text(m.kind, S.MARKER_KIND_BYTES),
            S.encode_text(m.label, S.MARKER_LABEL_BYTES),
        )
    return rows


class SessionWriter:
    """Record chunks to a new HDF5 session file on a background thread.

    Lifecycle: construct (validates everything, no I/O) -> :meth:`start` (creates the file,
    writes metadata, reserves disk space, switches to SWMR, starts the thread) ->
    :meth:`write` / :meth:`add_marker` / :meth:`set_document` from any thread (they only
    enqueue and never block) -> :meth:`close` (sentinel, join, final append, marks the
    file complete, closes). ``with SessionWriter(...) as w:`` starts and closes.

    The thread writes what arrived every ``flush_interval`` seconds and flushes the file,
    so ``kill -9`` loses at most that much. The input queue holds at most
    :data:`QUEUE_SECONDS` of data: beyond, chunks are dropped and counted
    (:attr:`dropped_samples`; they become a gap in the file), never blocking the caller.

    When writing fails the writer stops, keeps what it wrote, and says why as state:
    :attr:`failed`, :attr:`error` (one line for the user) and :attr:`stop_reason`
    (``"disk full"``, ``"file size limit"``, ``"write error"``) for a status banner. A disk
    filled by another program, or the file-size limit, stops it cleanly with the file
    closed and complete; any other I/O error leaves the file as after the last flush.

    Parameters
    ----------
    path
        The new ``.h5`` file; it must not exist (:class:`RecordingError` otherwise).
    info
        The board's identification line (:attr:`Source.info`).
    montage
        Channels (label, muscle, side) and the affected side.
    uv_per_count, offset_counts
        Counts-to-µV scale and zero offset, one number or one per channel:
        ``uv = (counts - offset_counts) * uv_per_count``.
    subject
        Pseudonymous subject code such as ``P007`` (names are refused, see
        :func:`~emgfb.recording.schema.check_subject`).
    notes
        Free-text session notes.
    dsp_config
        The full resolved DSP configuration (stored as JSON).
    frontend
        Front-end and electrode details (ISEK items: gain, band, electrode type, size,
        spacing...), stored as JSON.
    extra_meta
        Anything else worth keeping (stored as JSON in the ``extra`` attribute).
    compression
        ``"gzip"`` (level 1 + shuffle, default), ``"lzf"`` or ``"none"``.
    flush_interval
        Seconds between writes/flushes (at most 1).
    reserve_bytes
        Disk space kept allocated beyond the end of the file (default: three chunks plus
        1 MiB); 0 disables the reservation (tests of the unforeseen-error path).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        info: BoardInfo,
        montage: Montage,
        uv_per_count: float | Sequence[float],
        offset_counts: float | Sequence[float],
        subject: str = "",
        notes: str = "",
        dsp_config: dict | None = None,
        frontend: dict | None = None,
        extra_meta: dict | None = None,
        compression: str | None = DEFAULT_COMPRESSION,
        flush_interval: float = 0.5,
        reserve_bytes: int | None = None,
    ) -> None:
        self.path = Path(path)
        if montage.n_channels != info.n_channels:
            raise RecordingError(
                f"{self.path}: montage {montage.name!r} has {montage.n_channels} channels, "
                f"the board sends {info.n_channels}"
            )
        if not 0 < flush_interval <= 1.0:
            raise RecordingError(f"flush_interval = {flush_interval}: expected 0 < s <= 1")
        _compression_kwargs(compression)
        self.info = info
        self.montage = montage
        self.n_channels = info.n_channels
        self.fs = float(info.fs)
        self.uv_per_count = S.per_channel(uv_per_count, self.n_channels, "uv_per_count")
        self.offset_counts = S.per_channel(offset_counts, self.n_channels, "offset_counts")
        self.compression = compression
        self.flush_interval = float(flush_interval)
        self._rows = chunk_rows(self.n_channels, 2)
        self._row_bytes = self.n_channels * 2 + 8
        self.reserve_bytes = (3 * self._rows * self._row_bytes + (1 << 20)
                              if reserve_bytes is None else int(reserve_bytes))
        self._attrs = _session_attrs(
            subject, notes, dsp_config, frontend, extra_meta, "", "SessionWriter"
        )
        check_new_path(self.path)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._queue_limit = max(1, round(QUEUE_SECONDS * self.fs))
        self._queued = 0
        self._queue_lock = threading.Lock()
        self._thread: Worker | None = None
        self._file: h5py.File | None = None
        self._space: SpaceReservation | None = None
        self._ds: dict[str, h5py.Dataset] = {}
        self._tail_fd = -1
        self._tail_offsets = (0, 0)
        self._error: RecordingError | None = None
        self.stop_reason: str | None = None
        self._closed = False
        self._accepting = False
        self._flushed = threading.Condition()
        # counters: received (enqueued), dropped (queue full) and written (flushed)
        self.samples_received = 0
        self.lost_ticks_received = 0
        self.dropped_samples = 0
        self.dropped_chunks = 0
        self._last_tick_received: int | None = None
        self.samples_written = 0
        self.lost_ticks = 0
        self._last_tick: int | None = None
        self._first_tick: int | None = None
        self._gaps = np.zeros(0, S.GAP_DTYPE)
        self._pending_markers: list[Marker] = []
        # the chunk being filled: rows [0, _tail_n) of it are in raw/tail_*, not yet in
        # raw/counts; tables wait for the chunk to be appended
        self._tail_counts = np.zeros((self._rows, self.n_channels), np.uint16)
        self._tail_tick = np.zeros(self._rows, np.int64)
        self._tail_n = 0
        self._main_rows = 0
        self._table_rows: dict[str, list[np.ndarray]] = {
            S.HOST_TIME: [], S.GAPS: [], S.OVERRUN: []}

    # -- state ---------------------------------------------------------------------------
    @property
    def failed(self) -> bool:
        """True once the writer stopped because of an error (see :attr:`error`)."""
        return self._error is not None

    @property
    def error(self) -> RecordingError | None:
        """The error that stopped the writer (one line for the user), or ``None``."""
        return self._error

    @property
    def queued_samples(self) -> int:
        """Samples waiting in the input queue."""
        return self._queued

    def wait_flushed(self, n_samples: int, timeout: float) -> bool:
        """Wait until at least ``n_samples`` are on disk, or the writer failed or closed.

        Returns
        -------
        bool
            True if ``n_samples`` are on disk.
        """
        with self._flushed:
            self._flushed.wait_for(
                lambda: self.samples_written >= n_samples or self.failed or self._closed,
                timeout,
            )
            return self.samples_written >= n_samples

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> SessionWriter:
        """Create the file, write the metadata and start the writer thread.

        Raises
        ------
        RecordingError
            If the file exists already or cannot be created, or the disk is full (no file
            is left behind then).
        """
        if self._thread is not None:
            raise RuntimeError("SessionWriter.start() called twice")
        check_new_path(self.path)
        self._attrs["start_time_utc"] = utc_now_iso()
        try:
            f = h5py.File(self.path, "x", libver=S.LIBVER)
        except FileExistsError:
            raise RecordingError(
                f"{self.path}: already exists; emgfb never overwrites a recording"
            ) from None
        except OSError as exc:
            self.path.unlink(missing_ok=True)  # only HDF5's half-created file can be here
            why = ("disk full" if exc.errno in (errno.ENOSPC, errno.EDQUOT)
                   else os.strerror(exc.errno) if exc.errno else str(exc).splitlines()[0])
            raise RecordingError(f"{self.path}: cannot start recording: {why}") from None
        try:
            _create_layout(
                f, fs=self.fs, montage=self.montage, uv_per_count=self.uv_per_count,
                offset_counts=self.offset_counts, count_dtype=np.dtype("uint16"),
                info=self.info, attrs=self._attrs, compression=self.compression, tail=True,
            )
            f.flush()
            self._space = SpaceReservation(self.path, self.reserve_bytes, HEADROOM_BYTES)
            need = self._need_bytes(self._rows)
            room, reason = self._space.room() if self._space.renew(need) else (-1, "")
            if room < need:
                raise _OutOfSpace(reason or self._space.exhausted or "disk full")
            f.swmr_mode = True
        except (OSError, RuntimeError, ValueError, RecordingError) as exc:
            f.close()
            if self._space is not None:
                self._space.close()
            self.path.unlink(missing_ok=True)  # a failed start leaves no file behind
            raise RecordingError(f"{self.path}: cannot start recording: "
                                 f"{str(exc).splitlines()[0]}") from None
        self._file = f
        # handles kept open for the whole recording: a handle released while a write
        # fails would make HDF5 retry the write from a destructor
        self._ds = {name: f[name] for name in (
            S.COUNTS, S.TICK, S.TAIL_COUNTS, S.TAIL_TICK, S.HOST_TIME, S.GAPS, S.OVERRUN,
            S.MARKERS, *S.DOCUMENTS.values())}
        self._tail_offsets = (self._ds[S.TAIL_COUNTS].id.get_offset(),
                              self._ds[S.TAIL_TICK].id.get_offset())
        self._tail_fd = os.open(self.path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
        self._accepting = True
        self._thread = Worker(f"SessionWriter({self.path.name})", self._run,
                              wake=lambda: self._queue.put(_SENTINEL))
        self._thread.start()
        log.info("recording to %s", self.path)
        return self

    def write(self, chunk: Chunk) -> None:
        """Queue a chunk for writing (never blocks; a no-op once failed or closed).

        The arrays are copied, so the caller may reuse its buffers. If the queue already
        holds :data:`QUEUE_SECONDS` of data the chunk is dropped and counted
        (:attr:`dropped_samples`, :attr:`dropped_chunks`): it becomes a gap in the file.
        """
        if not self._accepting or len(chunk) == 0:
            return
        counts = np.asarray(chunk.counts)
        if counts.ndim != 2 or counts.shape[1] != self.n_channels:
            raise RecordingError(
                f"{self.path}: chunk counts have shape {counts.shape}, "
                f"expected (n, {self.n_channels})"
            )
        n = len(chunk)
        with self._queue_lock:
            full = self._queued + n > self._queue_limit
            if not full:
                self._queued += n
        if full:
            if self.dropped_chunks == 0:
                log.warning("%s: the writer fell %.0f s behind; dropping chunks (counted, "
                            "kept as gaps)", self.path, QUEUE_SECONDS)
            self.dropped_chunks += 1
            self.dropped_samples += n
        else:
            self._queue.put(
                ("chunk", np.array(chunk.tick, dtype=np.int64),
                 counts.astype(np.uint16, copy=True), np.array(chunk.overrun, dtype=bool),
                 float(chunk.host_time))
            )
        for m in chunk.markers:
            self._queue.put(("marker", m))
        tick = chunk.tick
        prev = self._last_tick_received
        self.lost_ticks_received += int(tick[-1] - tick[0] + 1 - len(tick)) + (
            0 if prev is None else max(0, int(tick[0]) - prev - 1)
        )
        self._last_tick_received = int(tick[-1])
        self.samples_received += n

    def add_marker(self, marker: Marker) -> None:
        """Queue a marker (a no-op once failed or closed)."""
        if self._accepting:
            self._queue.put(("marker", marker))

    def set_calibration(self, calibration: dict) -> None:
        """Store calibration results (replaces earlier ones); JSON-serialisable dict.

        Raises
        ------
        ConfigError
            If the dict cannot be stored as JSON.
        """
        self.set_document("calibration", calibration)

    def set_document(self, name: str, document: Any) -> None:
        """Store a JSON document (replaces an earlier one of the same name).

        Parameters
        ----------
        name
            One of :data:`emgfb.recording.schema.DOCUMENTS`: ``"calibration"``,
            ``"protocol"`` (the resolved exercise protocol), ``"scores"`` (per-rep scores)
            or ``"link"`` (the source's integrity counters).
        document
            Anything JSON-serialisable.

        Raises
        ------
        ValueError
            For an unknown document name (a programming error).
        ConfigError
            If the document cannot be stored as JSON.
        """
        if name not in S.DOCUMENTS:
            raise ValueError(f"unknown document {name!r}; expected one of {list(S.DOCUMENTS)}")
        doc = S.to_json(document, name).encode("utf-8")
        if self._accepting:
            self._queue.put(("document", name, doc))

    def close(self) -> None:
        """Stop accepting data, write what is queued, mark the file complete (idempotent)."""
        if self._closed:
            return
        self._accepting = False
        if self._thread is not None:
            self._thread.stop(timeout=None)  # the sentinel: write what is queued, then end
            if self._thread.error is not None and self._error is None:
                self._fail(self._thread.error, "write error")
        self._closed = True
        with self._flushed:
            self._flushed.notify_all()
        log.info(
            "recording %s closed: %d samples, %d lost ticks%s", self.path, self.samples_written,
            self.lost_ticks, f" (FAILED: {self._error})" if self._error else "",
        )

    def __enter__(self) -> SessionWriter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writer thread -------------------------------------------------------------------
    def _run(self, _stop: threading.Event) -> None:
        pending: list[tuple] = []
        markers: list[Marker] = []
        documents: dict[str, bytes] = {}
        next_flush = time.monotonic() + self.flush_interval
        done = False
        while not done:
            try:
                item = self._queue.get(timeout=max(0.0, next_flush - time.monotonic()))
            except queue.Empty:
                item = None
            if item is _SENTINEL:
                done = True
            elif item is not None:
                kind = item[0]
                if kind == "chunk":
                    with self._queue_lock:
                        self._queued -= len(item[1])
                    if not self.failed:
                        pending.append(item[1:])
                elif kind == "marker":
                    markers.append(item[1])
                else:
                    documents[item[1]] = item[2]
            if (done or time.monotonic() >= next_flush) and self._file is not None:
                try:
                    self._flush(pending, markers, documents)
                except _OutOfSpace as exc:
                    self._fail(exc, "file size limit" if "size limit" in str(exc)
                               else "disk full")
                    done = True  # close cleanly, in the space kept for that
                except Exception as exc:  # noqa: BLE001 - surfaced as .error, logged
                    self._fail(exc, "write error")
                    self._abandon()
                pending, markers, documents = [], [], {}
                next_flush = time.monotonic() + self.flush_interval
        if self._file is not None:
            try:
                self._finalise()
            except Exception as exc:  # noqa: BLE001 - surfaced as .error, logged
                self._fail(exc, "write error")
                self._abandon()

    def _fail(self, exc: BaseException, reason: str) -> None:
        self._accepting = False
        if self._error is not None:
            return
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        code = getattr(exc, "errno", None)
        found = re.search(r"errno = (\d+)|\[Errno (\d+)\]", str(exc))
        if not code and found:
            code = int(found.group(1) or found.group(2))
        if code:
            # HDF5's own text spans lines and names its internals; the system's is clear
            text = f"file write failed: {os.strerror(code)}"
        self.stop_reason = reason
        self._error = RecordingError(
            f"{self.path}: recording stopped after {self.samples_written} samples "
            f"({self.samples_written / self.fs:.1f} s): {text}; the data written so far "
            "is kept"
        )
        log.info("%s", self._error)
        with self._flushed:
            self._flushed.notify_all()

    def _abandon(self) -> None:
        """After an unforeseen I/O error: stop HDF5 from writing anything more (the file
        stays as after the last successful flush), then release it."""
        f, self._file = self._file, None
        if f is None:
            return
        try:
            freeze(f.id.get_vfd_handle(), self.path)
        except (OSError, ValueError, RuntimeError) as exc:
            log.warning("%s: cannot freeze the file after the error: %s", self.path, exc)
        try:
            f.close()
        except (OSError, RuntimeError, ValueError) as exc:
            log.info("%s: closing the frozen file: %s (expected)", self.path, exc)
        self._ds.clear()
        self._close_fds()

    def _need_bytes(self, rows: int) -> int:
        """Upper bound of the growth of the file when ``rows`` more rows are appended."""
        return rows * self._row_bytes + _MARGIN_BYTES

    def _flush(
        self, pending: list[tuple], markers: list[Marker], documents: dict[str, bytes],
    ) -> None:
        f, space = self._file, self._space
        assert f is not None and space is not None
        n_new = sum(len(p[0]) for p in pending)
        # rows in the tail must still fit into raw/counts at the end; within the space
        # reserved (compression only shrinks the bound), else take what fits and stop
        out_of_space = None
        extra = 64 * (len(markers) + len(self._pending_markers)) + sum(map(len, documents.values()))
        need = self._need_bytes(self._tail_n + n_new) + extra
        room, reason = space.room()
        if room < need and space.renew(at_least=need):  # a backlog bigger than usual
            room, reason = space.room()
        if room < need:
            out_of_space = _OutOfSpace(reason)
            fit = max(0, (room - _MARGIN_BYTES - extra) // self._row_bytes - self._tail_n)
            pending = self._take(pending, fit)
            n_new = sum(len(p[0]) for p in pending)
        if n_new:
            self._add_rows(f, pending, n_new)
        dirty = self._write_markers(f, markers, final=False)
        for name, doc in documents.items():
            ds = self._ds[S.DOCUMENTS[name]]
            ds.resize(len(doc), axis=0)
            ds[:] = np.frombuffer(doc, dtype=np.uint8)
            dirty = True
        if dirty:
            f.flush()
        with self._flushed:
            self.samples_written += n_new
            self._flushed.notify_all()
        if out_of_space is None and not space.renew():
            out_of_space = _OutOfSpace(space.exhausted or reason)
        if out_of_space is not None:
            raise out_of_space

    @staticmethod
    def _take(pending: list[tuple], n: int) -> list[tuple]:
        """The first ``n`` samples of the pending chunks (a chunk may be cut)."""
        out = []
        for tick, counts, overrun, host_time in pending:
            if n <= 0:
                break
            out.append((tick[:n], counts[:n], overrun[:n], host_time))
            n -= len(tick)
        return out

    def _add_rows(self, f: h5py.File, pending: list[tuple], n_new: int) -> None:
        """Fill the chunk being built; append each completed chunk to raw/counts; write
        the rows of the unfinished chunk to the tail."""
        tick = np.concatenate([p[0] for p in pending])
        counts = np.concatenate([p[1] for p in pending])
        overrun = np.concatenate([p[2] for p in pending])
        start = self.samples_written
        if np.any(np.diff(tick) <= 0) or (
            self._last_tick is not None and tick[0] <= self._last_tick
        ):
            raise RecordingError("ticks are not strictly increasing")
        gaps = S.gap_rows(tick, start, self._last_tick)
        host = np.zeros(len(pending), S.HOST_TIME_DTYPE)
        host["sample"] = np.cumsum([len(p[0]) for p in pending]) - 1 + start
        host["time"] = [p[3] for p in pending]
        self._table_rows[S.GAPS].append(gaps)
        self._table_rows[S.HOST_TIME].append(host)
        self._table_rows[S.OVERRUN].append(start + np.flatnonzero(overrun))
        if self._first_tick is None:
            self._first_tick = int(tick[0])
        self._last_tick = int(tick[-1])
        self._gaps = np.concatenate((self._gaps, gaps))
        self.lost_ticks += int(gaps["lost_ticks"].sum())
        dirty, i = self._tail_n, 0
        while i < n_new:
            k = self._tail_n
            m = min(n_new - i, self._rows - k)
            self._tail_counts[k : k + m] = counts[i : i + m]
            self._tail_tick[k : k + m] = tick[i : i + m]
            self._tail_n += m
            i += m
            if self._tail_n == self._rows:
                self._append_chunk(f)
                # the chunk must be in the file before the tail it came from is reused
                f.flush()
                dirty = 0
        if self._tail_n > dirty:
            # straight to the file (the datasets are contiguous and allocated; HDF5 keeps
            # no copy): in the kernel at once, so no HDF5 flush is needed for them. Counts
            # before ticks: a tail row counts only once its tick is written.
            for arr, offset in ((self._tail_counts, self._tail_offsets[0]),
                                (self._tail_tick, self._tail_offsets[1])):
                rows = arr[dirty : self._tail_n]
                os.pwrite(self._tail_fd, rows.tobytes(), offset + dirty * rows[0].nbytes)

    def _append_chunk(self, f: h5py.File) -> None:
        """Append the rows of the chunk being built to raw/counts and raw/tick (one whole
        chunk, or the last partial one at the end) and the tables waiting for them."""
        n, a = self._tail_n, self._main_rows
        if n:
            for name, rows in ((S.COUNTS, self._tail_counts[:n]), (S.TICK, self._tail_tick[:n])):
                ds = self._ds[name]
                ds.id.set_extent((a + n,) + ds.shape[1:])
                _write_rows(ds, a, rows)
        for name, parts in self._table_rows.items():
            table = np.concatenate(parts) if parts else np.zeros(0)
            if len(table):
                _append(self._ds[name], table)
            parts.clear()
        self._main_rows += n
        self._tail_n = 0

    def _write_markers(self, f: h5py.File, markers: list[Marker], final: bool) -> bool:
        """Append the markers whose tick is recorded; True if any was."""
        self._pending_markers.extend(markers)
        if not self._pending_markers:
            return False
        # a marker is written once its tick has been recorded (or at the end)
        ready = [
            m for m in self._pending_markers
            if final or (self._last_tick is not None and m.tick <= self._last_tick)
        ]
        if not ready:
            return False
        if self._first_tick is None:
            samples = np.zeros(len(ready), np.int64)
        else:
            samples = S.tick_to_sample(np.array([m.tick for m in ready], np.int64),
                                       self._first_tick, self._gaps)
            samples = np.minimum(samples, self._main_rows + self._tail_n)
        _append(self._ds[S.MARKERS], _marker_rows(ready, samples))
        self._pending_markers = [m for m in self._pending_markers if m not in ready]
        return True

    def _finalise(self) -> None:
        """Append the last partial chunk and the markers left, mark the file complete
        (in SWMR mode: no new attributes, no reopening) and close it."""
        f = self._file
        assert f is not None
        self._append_chunk(f)
        self._write_markers(f, [], final=True)
        f.attrs.modify("end_time_utc", utc_now_iso())
        if self._error is not None:
            f.attrs.modify("stop_reason", str(self._error))
        f.attrs.modify("complete", True)
        f.flush()
        self._file = None
        self._ds.clear()
        f.close()
        self._close_fds()

    def _close_fds(self) -> None:
        if self._tail_fd >= 0:
            os.close(self._tail_fd)
            self._tail_fd = -1
        if self._space is not None:
            self._space.close()


def write_arrays(
    path: str | Path,
    counts: np.ndarray,
    fs: float,
    montage: Montage,
    uv_per_count: float | Sequence[float] | np.ndarray,
    offset_counts: float | Sequence[float] | np.ndarray,
    *,
    tick: np.ndarray | None = None,
    markers: Iterable[Marker] = (),
    info: BoardInfo | None = None,
    meta: dict | None = None,
    envelopes: np.ndarray | None = None,
    compression: str | None = DEFAULT_COMPRESSION,
) -> Path:
    """Write a whole session in one go (importers, tests) in the same layout as the writer.

    Parameters
    ----------
    path
        The new ``.h5`` file (never overwritten).
    counts
        Raw integer samples ``(n_samples, n_channels)``: uint16 (boards) or anything that
        fits int32 (imported data; stored as int32).
    fs
        Sample rate in Hz.
    montage
        One channel per column.
    uv_per_count, offset_counts
        Per channel or scalar: ``uv = (counts - offset_counts) * uv_per_count``.
    tick
        Absolute tick per sample (non-negative, strictly increasing); default
        ``0 .. n-1``. Jumps become gap-table rows.
    markers
        Markers by tick.
    info
        Board identification, if known.
    meta
        Optional session metadata: ``subject``, ``notes``, ``start_time_utc``,
        ``dsp_config``, ``frontend``, ``calibration``, ``host_time`` (array of
        :data:`~emgfb.recording.schema.HOST_TIME_DTYPE` rows); other keys go to ``extra``.
    envelopes
        Optional computed envelopes, float, same shape as ``counts`` (``envelopes/data``).
    compression
        ``"gzip"`` (default), ``"lzf"`` or ``"none"``.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    RecordingError
        If the file exists or the arrays are inconsistent.
    """
    path = Path(path)
    check_new_path(path)
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] != montage.n_channels:
        raise RecordingError(
            f"{path}: counts have shape {counts.shape}, expected (n, {montage.n_channels})"
        )
    count_dtype: np.dtype
    if counts.dtype == np.uint16:
        count_dtype = np.dtype("uint16")
    elif np.issubdtype(counts.dtype, np.integer) and (
        counts.size == 0 or (counts.min() >= -(2**31) and counts.max() < 2**31)
    ):
        count_dtype = np.dtype("int32")
    else:
        raise RecordingError(
            f"{path}: counts dtype {counts.dtype}: expected integers (uint16 or int32 range)"
        )
    n = len(counts)
    tick = np.arange(n, dtype=np.int64) if tick is None else np.asarray(tick, dtype=np.int64)
    if tick.shape != (n,) or (n and (tick[0] < 0 or np.any(np.diff(tick) <= 0))):
        raise RecordingError(
            f"{path}: tick must be {n} non-negative, strictly increasing integers"
        )
    if not fs > 0:
        raise RecordingError(f"{path}: fs = {fs}: expected a positive sample rate")
    meta = dict(meta or {})
    documents = {name: meta.pop(name) for name in S.DOCUMENTS if meta.get(name) is not None}
    host_time = meta.pop("host_time", None)
    start_time = meta.pop("start_time_utc", None) or utc_now_iso()
    subject, notes = meta.pop("subject", ""), meta.pop("notes", "")
    dsp_config, frontend = meta.pop("dsp_config", None), meta.pop("frontend", None)
    extra = {**meta.pop("extra", {}), **meta}
    attrs = _session_attrs(
        subject, notes, dsp_config, frontend, extra, start_time, "write_arrays"
    )
    uv = S.per_channel(uv_per_count, montage.n_channels, "uv_per_count")
    off = S.per_channel(offset_counts, montage.n_channels, "offset_counts")
    gaps = S.gap_rows(tick, 0, None)
    markers = list(markers)
    try:
        with h5py.File(path, "x", libver=S.LIBVER) as f:
            _create_layout(
                f, fs=fs, montage=montage, uv_per_count=uv, offset_counts=off,
                count_dtype=count_dtype, info=info, attrs=attrs, compression=compression,
                n_rows=n,
            )
            if n:
                f[S.COUNTS][:] = counts
                f[S.TICK][:] = tick
            _append(f[S.GAPS], gaps)
            if host_time is not None:
                _append(f[S.HOST_TIME], np.asarray(host_time, S.HOST_TIME_DTYPE))
            if markers:
                samples = S.tick_to_sample(np.array([m.tick for m in markers], np.int64),
                                           int(tick[0]) if n else 0, gaps)
                _append(f[S.MARKERS], _marker_rows(markers, np.minimum(samples, n)))
            for name, document in documents.items():
                doc = S.to_json(document, name).encode("utf-8")
                _append(f[S.DOCUMENTS[name]], np.frombuffer(doc, np.uint8))
            if envelopes is not None:
                env = np.asarray(envelopes, dtype=np.float32)
                if env.shape != counts.shape:
                    raise RecordingError(
                        f"{path}: envelopes have shape {env.shape}, expected {counts.shape}"
                    )
                f.create_dataset(S.ENVELOPE_DATA, data=env, chunks=True, **_compression_kwargs(
                    compression))
                f[S.ENVELOPES].attrs["units"] = "uV"
            f.attrs["complete"] = True
            f.attrs["end_time_utc"] = attrs["start_time_utc"]
    except RecordingError:
        path.unlink(missing_ok=True)
        raise
    except (OSError, RuntimeError) as exc:
        raise RecordingError(f"{path}: cannot write ({exc})") from None
    return path

