"""The stream hub of a live run: ring buffers, the newest index and host receive times.

This module owns :class:`StreamHub`: the processing worker publishes filtered µV, envelope
µV and activation into one ring buffer each (absolute sample indices, gaps NaN), together
with the newest published index and the host receive time of each chunk; readers (the
GUI, tests, benchmarks) read copies from any thread and may wait for an index. Buffers and
the newest index change together under one lock, so a reader never sees samples newer
than :attr:`StreamHub.newest_index`. Imports ``acquisition.ringbuffer`` only.
"""

from __future__ import annotations

import collections
import threading
import time

import numpy as np

from emgfb.acquisition.ringbuffer import RingBuffer

#: Streams a session publishes, each ``(n_samples, n_channels)`` float32 by absolute index.
STREAMS = ("filtered", "envelope", "activation")


class StreamHub:
    """Ring buffers of the published streams, with the newest index and host times.

    Parameters
    ----------
    fs, n_channels
        Sample rate and channel count of the streams.
    buffer_s
        Seconds each ring buffer holds.
    """

    def __init__(self, fs: float, n_channels: int, buffer_s: float = 30.0) -> None:
        self.fs = float(fs)
        self.n_channels = int(n_channels)
        self.capacity = max(1, int(round(buffer_s * self.fs)))
        self._lock = threading.Lock()
        self._published = threading.Condition(self._lock)
        self._buffers = self._new_buffers()
        self._newest = -1
        self._generation = 0
        self._chunk_times: collections.deque[tuple[int, float]] = collections.deque(maxlen=512)
        self._closed = False

    def _new_buffers(self) -> dict[str, RingBuffer]:
        return {name: RingBuffer(self.capacity, self.n_channels, np.float32)
                for name in STREAMS}

    # -- writer side (the processing worker) ---------------------------------------------
    def publish(self, tick: np.ndarray, host_time: float, streams: dict[str, np.ndarray]
                ) -> None:
        """Append one chunk of every stream (rows stamped with ``tick``) and wake waiters."""
        last = int(tick[-1])
        with self._published:
            for name, data in streams.items():
                self._buffers[name].write(tick, np.asarray(data, dtype=np.float32))
            self._newest = last
            self._chunk_times.append((last, float(host_time)))
            self._published.notify_all()

    def restart(self) -> None:
        """Empty every buffer (a replay seek): readers see a new :attr:`generation`."""
        with self._published:
            self._buffers = self._new_buffers()
            self._newest = -1
            self._chunk_times.clear()
            self._generation += 1
            self._published.notify_all()

    def close(self) -> None:
        """No more samples will come: wake every waiter."""
        with self._published:
            self._closed = True
            self._published.notify_all()

    # -- reader side (any thread) --------------------------------------------------------
    @property
    def newest_index(self) -> int:
        """Absolute index of the newest published sample (-1 before the first)."""
        return self._newest

    @property
    def generation(self) -> int:
        """Bumped whenever the buffers restart: readers start over."""
        return self._generation

    def read(self, stream: str, since: int | None = None, max_samples: int | None = None
             ) -> tuple[int, np.ndarray]:
        """Samples of ``stream`` from absolute index ``since`` on (a copy); see
        :meth:`emgfb.live.LiveSession.read`."""
        with self._lock:
            buf = self._buffers[stream]
            if since is None:
                sl = buf.latest(max_samples if max_samples is not None else buf.capacity)
            else:
                sl = buf.since(since)
        data = sl.data
        first = int(sl.tick[0]) if len(sl.tick) else buf.end
        if max_samples is not None and len(data) > max_samples:
            first, data = first + len(data) - max_samples, data[-max_samples:]
        return first, data

    def host_time_of(self, index: int) -> float | None:
        """Host receive time of the chunk holding sample ``index`` (None if not known)."""
        with self._lock:
            times = list(self._chunk_times)
        for last, t in times:  # oldest first
            if last >= index:
                return t
        return None

    def wait_for_index(self, index: int, timeout: float = 5.0) -> bool:
        """Block until sample ``index`` is published, the hub closed, or ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._published:
            while self._newest < index and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._published.wait(left)
            return self._newest >= index
