"""Display decimation: turn a stream of samples into a fixed number of screen bins.

Owns :class:`ScrollingTrace`, which keeps the last ``window_s`` seconds of a multi-channel
stream as per-bin min/max pairs (raw traces: spikes stay visible) or per-bin last values
(smooth envelopes). New samples are folded in incrementally, so each display frame costs
only the samples that arrived since the previous one, never a pass over the whole window.
Pure numpy; no Qt.
"""

from __future__ import annotations

import numpy as np

MODES = ("minmax", "last")


class ScrollingTrace:
    """The visible window of a stream, decimated to ``n_bins`` display bins.

    Parameters
    ----------
    n_channels
        Channels in the stream.
    fs
        Sample rate in Hz.
    window_s
        Visible span in seconds.
    n_bins
        Display bins across the window (about the plot width in pixels).
    mode
        ``"minmax"`` keeps each bin's minimum and maximum (two points per bin), ``"last"``
        keeps its last sample.

    Notes
    -----
    Samples carry absolute indices; a jump forward is a gap and is drawn as NaN (plots use
    ``connect="finite"``), a jump backward (replay seek) clears the window.
    """

    def __init__(
        self, n_channels: int, fs: float, window_s: float, n_bins: int = 1000, mode: str = "minmax"
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.n_channels = n_channels
        self.fs = float(fs)
        self.mode = mode
        self.bin = max(1, int(round(self.fs * window_s / max(1, n_bins))))
        self.n_bins = max(2, int(round(self.fs * window_s / self.bin)))
        self.window_s = self.n_bins * self.bin / self.fs
        self._per_bin = 2 if mode == "minmax" else 1
        self._buf = np.full((self.n_bins, self._per_bin, n_channels), np.nan, dtype=np.float32)
        self._write = 0
        self._partial = np.empty((0, n_channels), dtype=np.float32)
        self._next_index: int | None = None
        t = (np.arange(self.n_bins) - (self.n_bins - 1)) * self.bin / self.fs
        self.x = np.repeat(t, self._per_bin).astype(np.float64)

    @property
    def next_index(self) -> int | None:
        """Absolute index of the next expected sample (``None`` before the first push)."""
        return self._next_index

    def clear(self) -> None:
        """Forget everything (after a seek or a new session)."""
        self._buf.fill(np.nan)
        self._write = 0
        self._partial = self._partial[:0]
        self._next_index = None

    def push(self, first_index: int, data: np.ndarray) -> None:
        """Fold in ``data`` (shape ``(n, n_channels)``) whose first sample has ``first_index``."""
        n = len(data)
        if n == 0:
            return
        if self._next_index is not None and first_index < self._next_index:
            self.clear()
        if self._next_index is not None and first_index > self._next_index:
            gap = min(first_index - self._next_index, self.n_bins * self.bin)
            self._fold(np.full((gap, self.n_channels), np.nan, dtype=np.float32))
        self._fold(np.asarray(data, dtype=np.float32))
        self._next_index = first_index + n

    def _fold(self, data: np.ndarray) -> None:
        if len(self._partial):
            data = np.concatenate([self._partial, data])
        n_full = len(data) // self.bin
        self._partial = data[n_full * self.bin :].copy()
        if n_full == 0:
            return
        # Only the newest n_bins bins can be visible.
        first = max(0, n_full - self.n_bins)
        blocks = data[first * self.bin : n_full * self.bin].reshape(-1, self.bin, self.n_channels)
        if self.mode == "minmax":
            # fmin/fmax skip NaN without warning; an all-NaN bin stays NaN (a gap).
            new = np.stack([np.fmin.reduce(blocks, axis=1), np.fmax.reduce(blocks, axis=1)], 1)
        else:
            new = blocks[:, -1:, :]
        k = len(new)
        end = self._write + k
        if end <= self.n_bins:
            self._buf[self._write : end] = new
        else:
            split = self.n_bins - self._write
            self._buf[self._write :] = new[:split]
            self._buf[: k - split] = new[split:]
        self._write = end % self.n_bins

    def y(self, channel: int) -> np.ndarray:
        """Display values of one channel, oldest first, aligned with :attr:`x`."""
        col = self._buf[:, :, channel]
        out = np.concatenate([col[self._write :], col[: self._write]])
        return out.reshape(-1)

    def latest(self, channel: int) -> float:
        """The newest display value of ``channel`` (NaN if none)."""
        return float(self._buf[(self._write - 1) % self.n_bins, -1, channel])
