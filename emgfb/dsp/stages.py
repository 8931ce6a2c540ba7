"""Pure, stateful chunk-in/chunk-out DSP stages and the filter designs they run.

This module owns the building blocks of the envelope pipeline: counts-to-µV scaling, IIR
filters in second-order sections (DC high-pass, mains notch with harmonics, band-pass,
merged into one cascade by :func:`design_cascade`), full-wave rectification, the moving-RMS
and linear (low-pass) envelopes. Every stage has ``process(x) -> y`` on
``(n_samples, n_channels)`` float64 arrays and ``reset()``; its state lives inside it, so
feeding a signal in chunks of any size gives the same output as one pass over the whole
array (bit for bit for the filters). No I/O, no threads, no Qt. Imports numpy, scipy,
``emgfb.dsp.settings`` and ``emgfb.errors`` only.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy import signal

from emgfb.dsp.settings import BandpassConfig, DspConfig, HighpassConfig, NotchConfig
from emgfb.errors import ConfigError

log = logging.getLogger(__name__)

#: Nominal upper limit of the band-pass as a fraction of the sampling rate.
MAX_HIGH_FRACTION = 0.45


# --------------------------------------------------------------------------- filter design
def design_highpass(cfg: HighpassConfig, fs: float) -> np.ndarray:
    """Butterworth high-pass SOS at ``cfg.cutoff_hz`` (empty ``(0, 6)`` array when off)."""
    if cfg.cutoff_hz <= 0:
        return np.zeros((0, 6))
    return signal.butter(cfg.order, cfg.cutoff_hz, "highpass", fs=fs, output="sos")


def notch_frequencies(cfg: NotchConfig, fs: float) -> list[float]:
    """Mains frequency and harmonics that get a notch (strictly below Nyquist)."""
    if not cfg.enabled:
        return []
    nyq = fs / 2.0
    n_max = math.ceil(nyq / cfg.mains_hz) - 1
    if cfg.harmonics:
        n_max = min(n_max, cfg.harmonics)
    return [float(k * cfg.mains_hz) for k in range(1, n_max + 1)]


def design_notch(cfg: NotchConfig, fs: float) -> np.ndarray:
    """IIR notches (``scipy.signal.iirnotch``, quality ``cfg.q``) as SOS, one per harmonic."""
    rows = []
    for f0 in notch_frequencies(cfg, fs):
        b, a = signal.iirnotch(f0, cfg.q, fs=fs)
        rows.append(np.concatenate([b, a]))
    return np.array(rows).reshape(-1, 6)


def design_bandpass(cfg: BandpassConfig, fs: float) -> np.ndarray:
    """Butterworth band-pass SOS; the upper corner is clipped to 0.45·fs."""
    high = min(cfg.high_hz, MAX_HIGH_FRACTION * fs)
    if high <= cfg.low_hz:
        raise ConfigError(
            f"bandpass.low_hz = {cfg.low_hz}: expected a value below the upper corner "
            f"{high:g} Hz (0.45 x fs = {fs:g} Hz)"
        )
    if high < cfg.high_hz:
        log.info("band-pass upper corner clipped from %g to %g Hz (fs %g Hz)",
                 cfg.high_hz, high, fs)
    return signal.butter(cfg.order, [cfg.low_hz, high], "bandpass", fs=fs, output="sos")


def design_cascade(config: DspConfig, fs: float) -> np.ndarray:
    """High-pass, fixed notches (``notch.method = "iir"`` only; the tracking canceller of
    :mod:`emgfb.dsp.mains` runs before the cascade) and band-pass merged into one SOS
    cascade (one ``sosfilt`` call)."""
    notch = (design_notch(config.notch, fs) if config.notch.method == "iir"
             else np.zeros((0, 6)))
    return np.vstack([
        design_highpass(config.highpass, fs),
        notch,
        design_bandpass(config.bandpass, fs),
    ])


def design_envelope_lowpass(hz: float, order: int, fs: float) -> np.ndarray:
    """Butterworth low-pass SOS of the linear envelope."""
    return signal.butter(order, hz, "lowpass", fs=fs, output="sos")


def settle_samples(sos: np.ndarray, settle_db: float) -> int:
    """Samples until the slowest mode of ``sos`` has decayed by ``settle_db``.

    A mode with pole radius ``r`` decays as ``r**n``; the slowest (largest ``r``) bounds
    how long any restart transient stays visible.
    """
    if len(sos) == 0 or settle_db <= 0:
        return 0
    radius = max(float(np.max(np.abs(np.roots(s[3:])), initial=0.0)) for s in sos)
    if radius <= 0.0:
        return 0
    if radius >= 1.0:
        raise ValueError(f"unstable filter (pole radius {radius})")
    return math.ceil(settle_db / 20.0 * math.log(10.0) / -math.log(radius))


# --------------------------------------------------------------------------- stages
class ScaleStage:
    """Counts to microvolts: ``(x - offset_counts) * uv_per_count`` per channel (stateless).

    Parameters
    ----------
    uv_per_count, offset_counts
        Scalars or one value per channel.
    n_channels
        Number of channels.
    """

    def __init__(self, uv_per_count: float | np.ndarray, offset_counts: float | np.ndarray,
                 n_channels: int):
        self.scale = np.broadcast_to(np.asarray(uv_per_count, float), (n_channels,)).copy()
        self.offset = np.broadcast_to(np.asarray(offset_counts, float), (n_channels,)).copy()
        self.identity = bool(np.all(self.scale == 1.0) and np.all(self.offset == 0.0))

    def process(self, x: np.ndarray) -> np.ndarray:
        """Return ``x`` in µV."""
        if self.identity:
            return np.asarray(x, float)
        return (x - self.offset) * self.scale

    def reset(self) -> None:
        """Nothing to forget."""


class SosFilterStage:
    """A causal IIR filter in second-order sections with its state kept between chunks.

    Parameters
    ----------
    sos
        ``(n_sections, 6)`` coefficients (e.g. from :func:`design_cascade`).
    n_channels
        Number of channels.
    steady_start
        After construction or :meth:`reset`, start from the steady state for the first
        sample's value (``sosfilt_zi * x[0]``), so a DC offset does not ring through; when
        false, start from rest (zero state).
    """

    def __init__(self, sos: np.ndarray, n_channels: int, steady_start: bool = True):
        self.sos = np.ascontiguousarray(sos, dtype=float).reshape(-1, 6)
        self.n_channels = n_channels
        self.steady_start = steady_start
        self._zi_unit = signal.sosfilt_zi(self.sos) if len(self.sos) else np.zeros((0, 2))
        self.zi: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the filter state; the next sample starts the filter afresh."""
        self.zi = None

    def process(self, x: np.ndarray) -> np.ndarray:
        """Filter ``x`` (n, ch) causally, continuing from the previous chunk."""
        x = np.asarray(x, float)
        if len(self.sos) == 0 or len(x) == 0:
            return x.copy()
        xt = x.T  # (ch, n) view: sosfilt along the last axis of a transposed view is fastest
        if self.zi is None:
            if self.steady_start:
                self.zi = self._zi_unit[:, None, :] * xt[:, 0][None, :, None]
            else:
                self.zi = np.zeros((len(self.sos), x.shape[1], 2))
        y, self.zi = signal.sosfilt(self.sos, xt, axis=-1, zi=self.zi)
        return y.T


class RectifyStage:
    """Full-wave rectification ``|x|`` (stateless)."""

    def process(self, x: np.ndarray) -> np.ndarray:
        """Return ``|x|``."""
        return np.abs(x)

    def reset(self) -> None:
        """Nothing to forget."""


class MovingRmsStage:
    """Causal moving RMS over the last ``window`` samples, over the valid ones only.

    The running sums (of squares, and of valid samples) are a comb (add the new value, drop
    the one ``window`` samples back) followed by a sequential cumulative sum, carried across
    chunks, so any chunking gives bit-identical output. Every ``anchor`` samples since the
    last reset the sums are recomputed exactly from the window, so rounding never drifts.
    Samples marked invalid (lost, or still carrying a filter transient) are left out: the
    RMS is over the valid samples of the window, NaN while fewer than ``min_valid`` of them
    are in it. Without a mask every sample is valid and, until a full window has been seen,
    the missing samples count as zero (``min_valid`` = 0).

    Parameters
    ----------
    window
        Window length in samples (>= 1).
    n_channels
        Number of channels.
    anchor
        Exact re-summation interval in samples.
    min_valid
        Fewest valid samples in the window for a value (masked use).
    """

    def __init__(self, window: int, n_channels: int, anchor: int = 1 << 16,
                 min_valid: int | None = None):
        if window < 1:
            raise ValueError(f"window must be >= 1 sample, got {window}")
        self.window = int(window)
        self.n_channels = n_channels
        self.anchor = max(int(anchor), self.window)
        self.min_valid = max(1, (self.window + 1) // 2 if min_valid is None else min_valid)
        self.reset()

    def reset(self) -> None:
        """Empty the window."""
        # state kept channel-major: (2·ch, n) rows: squares, then valid flags
        self._tail = np.zeros((2 * self.n_channels, self.window))
        self._sum = np.zeros(2 * self.n_channels)
        self._count = 0  # samples since reset, positions the exact re-summations

    def process(self, x: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """Return the moving RMS of ``x`` (n, ch), continuing from the previous chunk.

        ``valid`` (n, ch) bool marks the samples to include; None: all, and the RMS divides
        by the full window (values of invalid samples are ignored whatever they are).
        """
        xt = np.asarray(x, float).T
        c, n = self.n_channels, xt.shape[1]
        both = np.empty((2 * c, n))
        if valid is None:
            np.multiply(xt, xt, out=both[:c])
            both[c:] = 1.0
        else:
            v = np.asarray(valid, bool).T
            np.multiply(xt, xt, out=both[:c])
            both[:c][~v] = 0.0
            both[c:] = v
        sums = np.empty((2 * c, n))
        start = 0
        while start < n:
            # split at absolute anchor positions so re-summation is independent of chunking
            to_anchor = self.anchor - (self._count % self.anchor)
            stop = min(n, start + to_anchor)
            self._segment(both[:, start:stop], sums[:, start:stop])
            self._count += stop - start
            if self._count % self.anchor == 0:
                self._sum = np.sum(self._tail, axis=1)
            start = stop
        sq = np.maximum(sums[:c], 0.0)  # rounding may dip a hair below zero
        if valid is None:
            return np.sqrt(sq * (1.0 / self.window)).T
        cnt = np.rint(sums[c:])
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.sqrt(sq / cnt)
        out[cnt < self.min_valid] = np.nan
        return out.T

    def _segment(self, vals: np.ndarray, out: np.ndarray) -> None:
        n, w = vals.shape[1], self.window
        hist = np.empty((vals.shape[0], w + n))  # hist[:, i] is the value of sample i - w
        hist[:, :w] = self._tail
        hist[:, w:] = vals
        acc = np.empty((vals.shape[0], n + 1))
        acc[:, 0] = self._sum
        np.subtract(hist[:, w:], hist[:, :n], out=acc[:, 1:])
        np.cumsum(acc, axis=1, out=acc)
        self._sum = acc[:, -1].copy()
        self._tail = hist[:, -w:].copy()
        out[:] = acc[:, 1:]


class LowpassEnvelopeStage:
    """Linear envelope: full-wave rectification then a causal Butterworth low-pass.

    Starts from rest after construction or :meth:`reset` (the rectified mean rises from
    zero, never overshoots into false activity).
    """

    def __init__(self, hz: float, order: int, fs: float, n_channels: int):
        self.filter = SosFilterStage(design_envelope_lowpass(hz, order, fs), n_channels,
                                     steady_start=False)

    def process(self, x: np.ndarray) -> np.ndarray:
        """Return the linear envelope of ``x`` (n, ch)."""
        return self.filter.process(np.abs(x))

    def reset(self) -> None:
        """Forget the filter state."""
        self.filter.reset()
