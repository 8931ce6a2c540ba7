"""Replay of a recorded session as a live source: ``file://session.h5?speed=1``.

This module owns :class:`ReplaySource`, a :class:`~emgfb.acquisition.source.Source` that
reads an emgfb HDF5 session (via :mod:`emgfb.recording.reader`) and hands out its raw
counts in chunks, paced on a monotonic clock by the recorded ticks (so gaps take the time
they took), faster, or as fast as it is read. Gaps come out as tick jumps and markers in
:attr:`Chunk.markers`, exactly as recorded. It registers the ``file`` scheme on import.
No threads. Imports ``acquisition.source``, ``protocol``, ``errors`` and
``recording.reader``.

URL parameters (all optional):

========= ======= ===========================================================
``speed``  1       1 = real time, N = N x real time, 0 = as fast as it is read
``loop``   false   start again at the beginning after the end
``start``  0       start at this many seconds into the session
``chunk``  20      milliseconds of data per read (1..1000)
========= ======= ===========================================================

``file:///abs/path.h5`` and ``file://relative/path.h5`` both work.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from urllib.parse import unquote

import numpy as np

from emgfb.acquisition.source import Chunk, Marker, Source, query_param, register_scheme
from emgfb.errors import ConfigError
from emgfb.protocol import BoardInfo
from emgfb.recording import schema as S
from emgfb.recording.reader import Recording, open_recording

log = logging.getLogger(__name__)

_KNOWN = ("speed", "loop", "start", "chunk")
_HINT = "file:// URL"
#: Rows read from the file at a time (the reads are then sliced in memory).
_BLOCK_ROWS = 1 << 16
#: A paced reader that fell far behind gets at most this much per read (seconds of data).
_MAX_CATCH_UP_S = 1.0


class ReplaySource(Source):
    """A recorded session delivered like a live board.

    Lifecycle as for every :class:`Source`: construct (no I/O) -> :meth:`start` (opens the
    file; :attr:`info`, :attr:`montage`, :attr:`uv_per_count` valid afterwards) ->
    :meth:`read` ... (:meth:`seek` at any time) -> :meth:`stop` -> :meth:`close`.

    Ticks are the recorded ones. After a backward :meth:`seek` or a loop, ticks keep
    increasing: the stream continues one tick after a one-tick gap, so consumers (filters)
    see the seam as a discontinuity instead of silently joined data.

    Parameters
    ----------
    path
        The session file.
    speed
        1 = real time, N = N x real time, 0 = unpaced.
    loop
        Start over at the end instead of finishing.
    start
        Seconds into the session (gaps included) to begin at.
    chunk_ms
        Milliseconds of data per read.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        speed: float = 1.0,
        loop: bool = False,
        start: float = 0.0,
        chunk_ms: float = 20.0,
    ) -> None:
        super().__init__()
        if not speed >= 0:
            raise ConfigError(f"{_HINT}: speed={speed!r}: expected >= 0 (0 = unpaced)")
        if not start >= 0:
            raise ConfigError(f"{_HINT}: start={start!r}: expected seconds >= 0")
        if not 1 <= chunk_ms <= 1000:
            raise ConfigError(f"{_HINT}: chunk={chunk_ms!r}: expected 1..1000 ms")
        self.path = Path(path)
        self.speed = float(speed)
        self.loop = bool(loop)
        self.start_s = float(start)
        self.chunk_ms = float(chunk_ms)
        self.recording: Recording | None = None
        self._wake = threading.Event()
        self._running = False
        self._finished = False
        self._pos = 0
        self._offset = 0  # virtual tick = file tick + offset
        self._last_virtual: int | None = None
        self._seam = True
        self._block_start = 0
        self._block = np.zeros((0, 0), np.uint16)

    # -- what the session says -----------------------------------------------------------
    @property
    def uv_per_count(self) -> np.ndarray:
        """Recorded per-channel scale (valid after :meth:`start`)."""
        return self._rec().uv_per_count

    @property
    def offset_counts(self) -> np.ndarray:
        """Recorded per-channel offset (valid after :meth:`start`)."""
        return self._rec().offset_counts

    @property
    def on_demand(self) -> bool:
        """Unpaced (``speed=0``): frames are made as they are read."""
        return self.speed == 0

    def scale(self) -> tuple[np.ndarray, np.ndarray]:
        """The recorded counts-to-µV scale and offset (valid after :meth:`start`)."""
        return self.uv_per_count, self.offset_counts

    @property
    def playback(self) -> ReplaySource:
        """A replay can seek, change speed and report its position."""
        return self

    @property
    def position_s(self) -> float:
        """Seconds into the session of the next sample to be delivered."""
        rec = self._rec()
        if rec.n_samples == 0:
            return 0.0
        pos = min(self._pos, rec.n_samples - 1)
        return float(self._tick_at(pos) - rec.first_tick) / rec.fs

    @property
    def finished(self) -> bool:
        """True once every sample has been delivered (never with ``loop``)."""
        return self._finished

    def _rec(self) -> Recording:
        if self.recording is None:
            raise RuntimeError("ReplaySource: call start() first")
        return self.recording

    # ticks come from the first tick and the gap table, never from a whole tick array, so
    # memory does not grow with the length of the session
    def _tick_at(self, index: int) -> int:
        return int(self._rec().read_ticks(index, index + 1)[0])

    def _first_sample_after(self, tick: float) -> int:
        """Index of the first sample whose tick is > ``tick`` (``n_samples`` if none)."""
        rec = self._rec()
        if rec.n_samples == 0:
            return 0
        t = int(np.floor(tick)) + 1
        return min(int(S.tick_to_sample(t, rec.first_tick, rec.gaps)), rec.n_samples)

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Open the session and begin at ``start`` seconds.

        Raises
        ------
        RecordingError
            If the file cannot be read as an emgfb session.
        """
        if self._running:
            return
        if self.recording is None:
            self.recording = open_recording(self.path)
        rec = self.recording
        self.montage = rec.montage  # known from here on (Source.montage: None before)
        self._info = rec.info or BoardInfo(
            firmware="", board="file", n_channels=rec.n_channels, fs=rec.fs, bits=16,
            vref_mv=0.0, line="",
        )
        self._chunk_len = max(1, round(self.chunk_ms * rec.fs / 1000.0))
        self._overrun_at = np.sort(rec.overrun)
        self._marker_ticks = np.array([m.tick for m in rec.markers], dtype=np.int64)
        order = np.argsort(self._marker_ticks, kind="stable")
        self._marker_ticks = self._marker_ticks[order]
        self._markers = [rec.markers[i] for i in order]
        self._running = True
        self._finished = rec.n_samples == 0 and not self.loop
        self._wake.clear()
        self.seek(self.start_s)
        self.status.state, self.status.detail = "streaming", f"replaying {self.path}"
        log.info("replaying %s from %.3f s at speed %g", self.path, self.start_s, self.speed)

    def seek(self, seconds: float) -> None:
        """Continue delivery from ``seconds`` into the session (gaps included).

        Seeking past the end finishes the replay (or wraps to the start with ``loop``).
        """
        rec = self._rec()
        if not seconds >= 0:
            raise ConfigError(f"seek: {seconds!r} s: expected seconds >= 0")
        if rec.n_samples == 0:
            return
        target = rec.first_tick + round(seconds * rec.fs)
        self._pos = self._first_sample_after(target - 1)
        if self._pos >= rec.n_samples:
            if self.loop:
                self._pos = 0
            else:
                self._finished = True
                return
        self._finished = False
        self._rebase()

    def _rebase(self) -> None:
        """Make the next virtual tick continue strictly after the last one delivered, and
        restart the pacing clock at the current position."""
        first = self._tick_at(self._pos)
        if self._last_virtual is not None and first + self._offset <= self._last_virtual + 1:
            self._offset = self._last_virtual + 2 - first
        self._clock_tick = first + self._offset
        self._clock_t0 = time.monotonic()
        self._seam = True

    def stop(self) -> None:
        """Stop delivering (idempotent); a later :meth:`start` resumes where it stopped."""
        self._running = False
        self._wake.set()
        if self.status.state == "streaming":
            self.status.state = "stopped"

    def close(self) -> None:
        """Stop and close the file (idempotent)."""
        self.stop()
        if self.recording is not None:
            self.recording.close()
            self.recording = None

    # -- delivery ------------------------------------------------------------------------
    def read(self, timeout: float | None = 0.1) -> Chunk | None:
        """The next chunk (``speed=0``) or the samples due by now, waiting up to
        ``timeout`` s for a chunk to fall due. ``None`` if stopped, finished or not due."""
        if not self._running or self._finished:
            return None
        rec = self._rec()
        n = rec.n_samples
        if self._pos >= n:
            if not self.loop:
                self._finish()
                return None
            self._pos = 0
            self._rebase()
        stop = min(self._pos + self._chunk_len, n)
        if self.speed > 0:
            due = self._wait_due(stop, timeout)
            if due is None:
                return None
            stop = due
        return self._deliver(self._pos, stop)

    def _due_time(self, index: int) -> float:
        rec = self._rec()
        virtual = self._tick_at(index) + self._offset
        return self._clock_t0 + (virtual - self._clock_tick) / (rec.fs * self.speed)

    def _wait_due(self, stop: int, timeout: float | None) -> int | None:
        """Wait until sample ``stop - 1`` is due (at most ``timeout``); then return the end
        of everything due by now."""
        rec = self._rec()
        wait = self._due_time(stop - 1) - time.monotonic()
        if wait > 0:
            # pacing a real-time source: an Event so stop() interrupts the wait
            if timeout is not None and wait > timeout:
                self._wake.wait(max(timeout, 0.0))
                return None
            self._wake.wait(wait)
            if not self._running:
                return None
        now_tick = self._clock_tick + (time.monotonic() - self._clock_t0) * rec.fs * self.speed
        due = self._first_sample_after(now_tick - self._offset)
        cap = self._pos + max(self._chunk_len, int(_MAX_CATCH_UP_S * rec.fs * self.speed))
        return int(min(max(due, stop), cap, rec.n_samples))

    def _counts(self, a: int, b: int) -> np.ndarray:
        rec = self._rec()
        bs = self._block_start
        if not (bs <= a and b <= bs + len(self._block)):
            self._block_start = a
            self._block = rec.read_counts(a, max(b, a + _BLOCK_ROWS))
            bs = a
        return self._block[a - bs : b - bs].copy()

    def _deliver(self, a: int, b: int) -> Chunk:
        rec = self._rec()
        file_tick = rec.read_ticks(max(0, a - 1), b)
        prev_tick = int(file_tick[0]) if a > 0 else None
        if a > 0:
            file_tick = file_tick[1:]
        tick = file_tick + self._offset
        lo = prev_tick if prev_tick is not None else np.iinfo(np.int64).min
        hi = int(file_tick[-1]) if b < rec.n_samples else np.iinfo(np.int64).max
        i0 = int(np.searchsorted(self._marker_ticks, lo, side="right"))
        i1 = int(np.searchsorted(self._marker_ticks, hi, side="right"))
        markers = tuple(
            Marker(m.tick + self._offset, m.label, m.kind) for m in self._markers[i0:i1]
        )
        overrun = np.zeros(b - a, bool)
        flagged = self._overrun_at[np.searchsorted(self._overrun_at, a):
                                   np.searchsorted(self._overrun_at, b)]
        overrun[flagged - a] = True
        chunk = Chunk(tick, self._counts(a, b), overrun, time.time(), markers)
        if prev_tick is not None and not self._seam:
            # a gap of the recording between two reads (a seek/loop seam is not one)
            self.stats.lost_ticks += int(file_tick[0] - prev_tick - 1)
        self._seam = False
        self.stats.lost_ticks += chunk.lost_ticks
        self.stats.frames += len(chunk)
        self.stats.overrun_flags += int(chunk.overrun.sum())
        self._last_virtual = int(tick[-1])
        self._pos = b
        if b >= rec.n_samples and not self.loop:
            self._finish()
        return chunk

    def _finish(self) -> None:
        self._finished = True
        self.status.state, self.status.detail = "finished", f"end of {self.path}"


def _factory(path: str, query: dict[str, str]) -> ReplaySource:
    """Build a :class:`ReplaySource` from ``file://`` URL parameters (see module docstring)."""
    unknown = sorted(set(query) - set(_KNOWN))
    if unknown:
        raise ConfigError(
            f"{_HINT}: unknown parameter {unknown[0]!r}; expected one of {', '.join(_KNOWN)}"
        )
    path = unquote(path)
    if not path:
        raise ConfigError(f"{_HINT}: no file given; use file:///abs/path.h5 or file://rel.h5")
    return ReplaySource(
        path,
        speed=query_param(query, "speed", float, 1.0, _HINT),
        loop=query_param(query, "loop", bool, False, _HINT),
        start=query_param(query, "start", float, 0.0, _HINT),
        chunk_ms=query_param(query, "chunk", float, 20.0, _HINT),
    )


register_scheme("file", _factory)
