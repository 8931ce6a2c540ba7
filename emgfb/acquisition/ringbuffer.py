"""A fixed-capacity ring buffer with absolute sample indices, between acquisition and readers.

This module owns :class:`RingBuffer`: one writer (the acquisition or DSP thread) appends
rows stamped with absolute tick indices; any number of readers (GUI timers, DSP, metrics)
ask :meth:`RingBuffer.latest` or :meth:`RingBuffer.since` and get *copies*. Gaps in the
tick sequence are never silently joined: the skipped rows are stored as NaN (float
buffers) or ``fill`` (integer buffers) and flagged invalid in :attr:`RingSlice.valid`.
Imports only numpy.
"""

from __future__ import annotations

import logging
import threading
from typing import NamedTuple

import numpy as np

log = logging.getLogger(__name__)


class RingSlice(NamedTuple):
    """Rows copied out of a :class:`RingBuffer`.

    Attributes
    ----------
    tick
        Absolute tick index of each row (int64, consecutive: gaps are rows too).
    data
        Shape ``(len(tick), n_channels)``; NaN (or ``fill``) where no sample arrived.
    valid
        True where a real sample was written, False in gaps.
    """

    tick: np.ndarray
    data: np.ndarray
    valid: np.ndarray


class RingBuffer:
    """Fixed-capacity, thread-safe ring of multichannel samples indexed by absolute tick.

    Parameters
    ----------
    capacity
        Rows kept (older rows are overwritten).
    n_channels
        Columns per row.
    dtype
        Storage type, float (gaps are NaN) or integer (gaps are ``fill``).
    fill
        Gap value of integer buffers (float buffers always use NaN).

    Notes
    -----
    Indices: the buffer holds ticks ``start .. end-1`` where :attr:`end` is one past the
    newest written tick and ``start = max(first, end - capacity)``. One writer only; the
    lock makes each write and each read atomic, so a reader never sees half a write.
    """

    def __init__(
        self, capacity: int, n_channels: int, dtype: np.dtype | type = np.float64, fill: int = 0
    ):
        if capacity < 1 or n_channels < 1:
            raise ValueError(f"capacity and n_channels must be >= 1, got {capacity}, {n_channels}")
        self.capacity, self.n_channels = int(capacity), int(n_channels)
        self.dtype = np.dtype(dtype)
        self._is_float = np.issubdtype(self.dtype, np.floating)
        self.fill = np.nan if self._is_float else fill
        self._data = np.full((self.capacity, self.n_channels), self.fill, dtype=self.dtype)
        self._valid = np.zeros(self.capacity, dtype=bool)
        self._first: int | None = None
        self._end = 0
        self._lock = threading.Lock()

    @property
    def end(self) -> int:
        """One past the newest tick written (0 before the first write)."""
        return self._end

    @property
    def start(self) -> int:
        """Oldest tick still held."""
        with self._lock:
            return self._start()

    def _start(self) -> int:
        if self._first is None:
            return self._end
        return max(self._first, self._end - self.capacity)

    def __len__(self) -> int:
        with self._lock:
            return self._end - self._start()

    def write(self, tick: int | np.ndarray, data: np.ndarray) -> None:
        """Append rows.

        Parameters
        ----------
        tick
            Tick of the first row (rows are consecutive), or one strictly increasing tick
            per row; ticks skipped (from :attr:`end` or between rows) become gap rows.
        data
            Shape ``(n_rows, n_channels)``.

        Raises
        ------
        ValueError
            Wrong shape, or ticks not after :attr:`end` / not strictly increasing.
        """
        data = np.asarray(data)
        if data.ndim != 2 or data.shape[1] != self.n_channels:
            raise ValueError(f"data must be (n, {self.n_channels}), got shape {data.shape}")
        n = len(data)
        if np.ndim(tick) == 0:
            ticks = int(tick) + np.arange(n, dtype=np.int64)
        else:
            ticks = np.asarray(tick, dtype=np.int64)
            if ticks.shape != (n,):
                raise ValueError(f"tick must have {n} entries, got shape {ticks.shape}")
        if n == 0:
            return
        if n > 1 and np.any(np.diff(ticks) < 1):
            raise ValueError("ticks must be strictly increasing")
        with self._lock:
            if self._first is None:
                self._first = self._end = int(ticks[0])
            if ticks[0] < self._end:
                raise ValueError(f"tick {int(ticks[0])} is before the buffer end {self._end}")
            new_end = int(ticks[-1]) + 1
            # clear every slot the new span covers (gap rows stay fill/invalid)
            lo = max(self._end, new_end - self.capacity)
            self._clear(lo, new_end)
            keep = ticks >= new_end - self.capacity
            slots = ticks[keep] % self.capacity
            self._data[slots] = data[keep]
            self._valid[slots] = True
            self._end = new_end

    def _clear(self, lo: int, hi: int) -> None:
        if hi <= lo:
            return
        a, b = lo % self.capacity, hi % self.capacity
        if hi - lo >= self.capacity:
            self._data[:] = self.fill
            self._valid[:] = False
        elif a < b:
            self._data[a:b] = self.fill
            self._valid[a:b] = False
        else:
            self._data[a:] = self.fill
            self._valid[a:] = False
            self._data[:b] = self.fill
            self._valid[:b] = False

    def latest(self, n: int) -> RingSlice:
        """Copy of the newest ``n`` rows (fewer if the buffer holds fewer)."""
        with self._lock:
            lo = max(self._start(), self._end - max(int(n), 0))
            return self._copy(lo, self._end)

    def since(self, index: int) -> RingSlice:
        """Copy of the rows from tick ``index`` to the newest.

        If ``index`` was already overwritten the slice starts at :attr:`start`; a reader
        detects that it fell behind by ``result.tick[0] > index``.
        """
        with self._lock:
            return self._copy(max(int(index), self._start()), self._end)

    def _copy(self, lo: int, hi: int) -> RingSlice:
        ticks = np.arange(lo, max(lo, hi), dtype=np.int64)
        slots = ticks % self.capacity
        return RingSlice(ticks, self._data[slots], self._valid[slots])
