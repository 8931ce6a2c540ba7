"""The envelope pipeline: raw counts or µV in, filtered µV and activation envelope out.

This module owns :class:`EnvelopePipeline`, which chains the stages of
:mod:`emgfb.dsp.stages` (scale → one merged high-pass/notch/band-pass SOS cascade →
rectification → moving-RMS or linear envelope) and owns the handling of lost samples: a
jump in the absolute tick index, or a NaN row, restarts the filters from steady state and
marks as NaN every output row whose value still depends on the restart transient. The live
(chunked) path and :meth:`EnvelopePipeline.process_offline` run the same code, so a
recording re-processed offline matches what the patient saw. Imports numpy, scipy,
``emgfb.dsp.settings``, ``emgfb.dsp.stages`` and ``emgfb.errors`` only.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy import signal

from emgfb.dsp.settings import DspConfig, check_sample_rate
from emgfb.dsp.stages import (
    LowpassEnvelopeStage,
    MovingRmsStage,
    ScaleStage,
    SosFilterStage,
    design_cascade,
    design_envelope_lowpass,
    notch_frequencies,
    settle_samples,
)

log = logging.getLogger(__name__)


class EnvelopePipeline:
    """Causal, stateful EMG envelope for ``n_channels`` at ``fs`` Hz.

    Lifecycle: construct once per stream → :meth:`process` (or :meth:`process_full`) on
    consecutive chunks → :meth:`reset` before feeding an unrelated stream.

    Parameters
    ----------
    config
        DSP settings (:func:`~emgfb.dsp.settings.load_dsp_config`).
    fs
        Sampling rate in Hz (>= 250).
    n_channels
        Number of channels.
    uv_per_count
        Microvolts per input unit, a scalar or one value per channel (1.0: input is µV;
        1000.0: input is mV; ``FrontendSpec.uv_per_count(...)`` for ADC counts).
    offset_counts
        Input value that corresponds to 0 µV (scalar or per channel), e.g. the ADC mid-rail.

    Attributes
    ----------
    last_filtered
        Filtered µV signal of the last :meth:`process` call, shape ``(n, n_channels)``, NaN
        where samples were lost or the filters are still settling.
    filter_settle, envelope_settle
        Rows after a (re)start whose filtered signal / envelope is reported as NaN.
    """

    def __init__(self, config: DspConfig, fs: float, n_channels: int,
                 uv_per_count: float | np.ndarray = 1.0,
                 offset_counts: float | np.ndarray = 0.0):
        self.config = config
        self.fs = check_sample_rate(fs)
        if int(n_channels) < 1:
            raise ValueError(f"n_channels must be >= 1, got {n_channels}")
        self.n_channels = int(n_channels)
        self.sos = design_cascade(config, self.fs)
        self.scale = ScaleStage(uv_per_count, offset_counts, self.n_channels)
        self.filter = SosFilterStage(self.sos, self.n_channels, steady_start=True)
        env = config.envelope
        self.filter_settle = settle_samples(self.sos, config.gaps.settle_db)
        if env.method == "rms":
            self.window = max(1, round(env.window_ms * self.fs / 1000.0))
            self.envelope: MovingRmsStage | LowpassEnvelopeStage = MovingRmsStage(
                self.window, self.n_channels)
            tail = self.window - 1
        else:
            self.window = 0
            self.envelope = LowpassEnvelopeStage(env.lowpass_hz, env.lowpass_order, self.fs,
                                                 self.n_channels)
            tail = settle_samples(self.envelope.filter.sos, config.gaps.settle_db)
        self.envelope_settle = self.filter_settle + tail
        self.last_filtered = np.zeros((0, self.n_channels))
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget all state: the next sample is treated as the start of a new stream."""
        self.filter.reset()
        self.envelope.reset()
        self._last_tick: int | None = None
        self._need_restart = True
        self._filter_left = 0
        self._envelope_left = 0
        self.restarts = 0  #: number of (re)starts so far, including the first

    def describe(self) -> dict[str, Any]:
        """What this pipeline does, for a recording's metadata (ISEK reporting)."""
        return {
            "fs": self.fs,
            "notch_hz": notch_frequencies(self.config.notch, self.fs),
            "bandpass_hz": [self.config.bandpass.low_hz,
                            min(self.config.bandpass.high_hz, 0.45 * self.fs)],
            "sos": self.sos.tolist(),
            "envelope": self.config.envelope.method,
            "window_samples": self.window,
            "filter_settle_samples": self.filter_settle,
            "envelope_settle_samples": self.envelope_settle,
            "config": self.config.as_dict(),
        }

    # ------------------------------------------------------------------ live path
    def process(self, x: np.ndarray, tick: np.ndarray | None = None) -> np.ndarray:
        """Envelope (µV) of the next chunk; see :meth:`process_full`."""
        filtered, envelope = self.process_full(x, tick)
        self.last_filtered = filtered
        return envelope

    def process_full(self, x: np.ndarray, tick: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Filter the next chunk and compute its envelope.

        Parameters
        ----------
        x
            ``(n, n_channels)`` raw values (scaled by ``uv_per_count``/``offset_counts``);
            a row holding any NaN is a lost sample.
        tick
            Optional absolute sample indices (int64, strictly increasing, also across
            chunks); a step larger than one is a gap of lost samples.

        Returns
        -------
        filtered, envelope
            Both ``(n, n_channels)`` float64 µV; NaN on lost rows and on rows that still
            carry a restart transient (``filter_settle`` / ``envelope_settle`` rows after
            every gap and at the very start).
        """
        x = np.asarray(x, dtype=float)
        if x.ndim != 2 or x.shape[1] != self.n_channels:
            raise ValueError(f"expected shape (n, {self.n_channels}), got {x.shape}")
        n = len(x)
        if n == 0:
            return np.zeros((0, self.n_channels)), np.zeros((0, self.n_channels))
        jumps = self._jumps(tick, n)
        lost_rows = np.isnan(x).any(axis=1) if np.isnan(x.sum()) else None
        if jumps is None and lost_rows is None:
            return self._run(x, self._need_restart)
        valid = np.ones(n, bool) if lost_rows is None else ~lost_rows
        starts = valid.copy()
        starts[1:] &= ~valid[:-1] | (jumps[1:] if jumps is not None else False)
        starts[0] &= self._need_restart or (jumps is not None and bool(jumps[0]))
        if lost_rows is not None and lost_rows[0]:
            self._need_restart = True
        filtered = np.full((n, self.n_channels), np.nan)
        envelope = np.full((n, self.n_channels), np.nan)
        # runs of valid rows, each split where a restart is due
        edges = np.flatnonzero(np.diff(np.concatenate([[False], valid, [False]]).astype(int)))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            cuts = [a, *(np.flatnonzero(starts[a + 1:b]) + a + 1), b]
            for lo, hi in zip(cuts[:-1], cuts[1:], strict=False):
                f, e = self._run(x[lo:hi], bool(starts[lo]) or self._need_restart)
                filtered[lo:hi], envelope[lo:hi] = f, e
            if b < n:  # lost rows follow this run
                self._need_restart = True
        return filtered, envelope

    def _jumps(self, tick: np.ndarray | None, n: int) -> np.ndarray | None:
        """Per row, whether ticks were lost just before it (None when there were none)."""
        if tick is None:
            return None
        tick = np.asarray(tick, dtype=np.int64)
        if tick.shape != (n,):
            raise ValueError(f"tick must have shape ({n},), got {tick.shape}")
        prev = tick[0] - 1 if self._last_tick is None else self._last_tick
        step = np.diff(tick, prepend=prev)
        self._last_tick = int(tick[-1])
        if np.any(step < 1):
            raise ValueError("tick must be strictly increasing across chunks "
                             "(call reset() before feeding another stream)")
        jumps = step > 1
        return jumps if jumps.any() else None

    def _run(self, x: np.ndarray, restart: bool) -> tuple[np.ndarray, np.ndarray]:
        """Run one gap-free stretch of rows through the stages."""
        if restart:
            self.filter.reset()
            self.envelope.reset()
            self._filter_left = self.filter_settle
            self._envelope_left = self.envelope_settle
            self._need_restart = False
            self.restarts += 1
        filtered = self.filter.process(self.scale.process(x))
        envelope = self.envelope.process(filtered)
        if self._filter_left or self._envelope_left:
            filtered = np.array(filtered)  # the filter output may be a view: own it
            k = min(self._filter_left, len(x))
            filtered[:k] = np.nan
            self._filter_left -= k
            k = min(self._envelope_left, len(x))
            envelope[:k] = np.nan
            self._envelope_left -= k
        return filtered, envelope

    # ------------------------------------------------------------------ offline path
    def process_offline(self, x: np.ndarray, zero_phase: bool = False,
                        tick: np.ndarray | None = None) -> np.ndarray:
        """Envelope of a whole recording; see :meth:`process_offline_full`."""
        return self.process_offline_full(x, zero_phase, tick)[1]

    def process_offline_full(self, x: np.ndarray, zero_phase: bool = False,
                             tick: np.ndarray | None = None
                             ) -> tuple[np.ndarray, np.ndarray]:
        """Filtered µV and envelope of a whole array, leaving the live state untouched.

        Parameters
        ----------
        x, tick
            As for :meth:`process_full`.
        zero_phase
            False: one causal pass, identical to feeding ``x`` chunk by chunk to a fresh
            pipeline. True: forward-backward filtering (``sosfiltfilt``) and a centred
            RMS window or forward-backward low-pass, per gap-free stretch, for analysis
            only (never what the patient saw). Stretches too short to pad are NaN.
        """
        fresh = EnvelopePipeline(self.config, self.fs, self.n_channels,
                                 self.scale.scale, self.scale.offset)
        if not zero_phase:
            return fresh.process_full(x, tick)
        x = np.asarray(x, dtype=float)
        if x.ndim != 2 or x.shape[1] != self.n_channels:
            raise ValueError(f"expected shape (n, {self.n_channels}), got {x.shape}")
        n = len(x)
        valid = ~np.isnan(x).any(axis=1)
        breaks = np.zeros(n, bool)
        if tick is not None:
            tick = np.asarray(tick, dtype=np.int64)
            breaks[1:] = np.diff(tick) > 1
        filtered = np.full((n, self.n_channels), np.nan)
        envelope = np.full((n, self.n_channels), np.nan)
        edges = np.flatnonzero(np.diff(np.concatenate([[False], valid, [False]]).astype(int)))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            cuts = [a, *(np.flatnonzero(breaks[a + 1:b]) + a + 1), b]
            for lo, hi in zip(cuts[:-1], cuts[1:], strict=False):
                filtered[lo:hi], envelope[lo:hi] = self._zero_phase(x[lo:hi])
        return filtered, envelope

    def _zero_phase(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nan = np.full(x.shape, np.nan)
        u = self.scale.process(x)
        pad = 3 * (2 * len(self.sos) + 1)
        if len(u) <= pad:
            return nan, nan.copy()
        f = signal.sosfiltfilt(self.sos, u.T, axis=-1).T if len(self.sos) else u.copy()
        env = self.config.envelope
        if env.method == "lowpass":
            lp = design_envelope_lowpass(env.lowpass_hz, env.lowpass_order, self.fs)
            if len(u) <= 3 * (2 * len(lp) + 1):
                return f, nan
            e = signal.sosfiltfilt(lp, np.abs(f).T, axis=-1).T
            return f, np.maximum(e, 0.0)
        # centred moving RMS; windows cut by the stretch's edges average what they hold
        w = self.window
        c = np.concatenate([np.zeros((1, f.shape[1])), np.cumsum(f * f, axis=0)])
        idx = np.arange(len(f))
        lo = np.clip(idx - w // 2, 0, len(f))
        hi = np.clip(lo + w, 0, len(f))
        e = np.sqrt(np.maximum(c[hi] - c[lo], 0.0) / (hi - lo)[:, None])
        return f, e

