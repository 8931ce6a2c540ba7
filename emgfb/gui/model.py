"""What the views draw: decimated windows of a session's streams, updated per display frame.

Owns :class:`DisplayModel`, which on every display tick pulls only the samples published
since the previous tick from a :class:`~emgfb.live.LiveSession` (filtered µV, envelope µV,
activation) and folds them into :class:`~emgfb.gui.decimate.ScrollingTrace` windows. It
restarts after a replay seek, keeps the latency stamp of the newest sample it pulled and
never filters anything. Qt-free; imports ``emgfb.live`` and ``emgfb.gui.decimate``.
"""

from __future__ import annotations

import numpy as np

from emgfb.gui.decimate import ScrollingTrace
from emgfb.live import LiveSession, SessionError
from emgfb.montage import Montage


class DisplayModel:
    """Display windows of one session.

    Parameters
    ----------
    session
        A started :class:`~emgfb.live.LiveSession`.
    setup_window_s
        Span of the set-up view's raw and envelope traces (2-10 s).
    feedback_window_s
        Span of the feedback view's activation traces.
    n_bins
        Display bins across a window (about the plot width in pixels).
    """

    def __init__(self, session: LiveSession, setup_window_s: float = 5.0,
                 feedback_window_s: float = 10.0, n_bins: int = 500):
        montage = session.montage
        if montage is None:  # fs and channels are known once the source has opened
            raise SessionError("start the session before showing it")
        self.session = session
        #: The session's montage.
        self.montage: Montage = montage
        self.n_bins = n_bins
        self.feedback_window_s = feedback_window_s
        self.frozen = False
        self.newest_index = -1
        self.newest_host_time: float | None = None
        self._generation = session.generation
        self.set_setup_window(setup_window_s)
        n, fs = session.n_channels, session.fs
        self.activation = ScrollingTrace(n, fs, feedback_window_s, n_bins // 2, "last")

    def set_setup_window(self, seconds: float) -> None:
        """Change the set-up view's span; the window refills from the ring buffers."""
        n, fs = self.session.n_channels, self.session.fs
        self.setup_window_s = float(seconds)
        self.filtered = ScrollingTrace(n, fs, seconds, self.n_bins, "minmax")
        self.envelope = ScrollingTrace(n, fs, seconds, self.n_bins, "last")

    def traces(self) -> dict[str, ScrollingTrace]:
        """The windows by stream name."""
        return {"filtered": self.filtered, "envelope": self.envelope,
                "activation": self.activation}

    def update(self) -> bool:
        """Pull new samples into every window; return True if anything new arrived."""
        if self.frozen:
            return False
        s = self.session
        if s.generation != self._generation:
            self._generation = s.generation
            for tr in self.traces().values():
                tr.clear()
        newest = s.newest_index
        if newest < 0:
            return False
        got = False
        for stream, tr in self.traces().items():
            since = tr.next_index
            if since is None:
                since = max(0, newest + 1 - int(tr.window_s * s.fs))
            if since > newest:
                continue
            first, data = s.read(stream, since)
            if len(data):
                tr.push(first, data)
                got = True
        if got:
            idx = (self.envelope.next_index or 0) - 1
            if idx > self.newest_index:
                self.newest_index = idx
                self.newest_host_time = s.host_time_of(idx)
        return got

    def latest_activation(self) -> np.ndarray:
        """Newest activation per channel (NaN where none)."""
        return np.array([self.activation.latest(c) for c in range(self.session.n_channels)])

    def latest_envelope(self) -> np.ndarray:
        """Newest envelope µV per channel (NaN where none)."""
        return np.array([self.envelope.latest(c) for c in range(self.session.n_channels)])
