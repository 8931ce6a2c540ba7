"""The envelope pipeline: raw counts or µV in, filtered µV and activation envelope out.

This module owns :class:`EnvelopePipeline`, which chains the stages of
:mod:`emgfb.dsp.stages` and :mod:`emgfb.dsp.mains` (scale → mains canceller tracking the
line frequency → one merged high-pass/band-pass SOS cascade → moving-RMS or linear
envelope) and owns the handling of lost samples, per channel: a NaN cell is lost on its own
channel only; a jump in the absolute tick index loses every channel. Gaps up to
``[gaps] fill_max_s`` are bridged: the mains tracking runs on, the filters see the last
value held, and the lost samples plus the band-pass transient after them are left out of
the envelope, which is the RMS of the valid samples in its window (NaN only while fewer
than half of them are valid). Longer gaps restart the filters. The live (chunked) path and
:meth:`EnvelopePipeline.process_offline` run the same code, so a recording re-processed
offline matches what the patient saw. Imports numpy, scipy, ``emgfb.dsp.settings``,
``emgfb.dsp.stages``, ``emgfb.dsp.mains`` and ``emgfb.errors`` only.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy import signal

from emgfb.dsp.mains import MainsCanceller
from emgfb.dsp.settings import DspConfig, check_sample_rate
from emgfb.dsp.stages import (
    LowpassEnvelopeStage,
    MovingRmsStage,
    ScaleStage,
    SosFilterStage,
    design_bandpass,
    design_cascade,
    design_envelope_lowpass,
    notch_frequencies,
    settle_samples,
)

log = logging.getLogger(__name__)

#: Decay (dB) of the band-pass transient after a bridged gap before samples count again: the
#: hum is gone before the gap is bridged, so the step left is the size of the EMG itself.
GAP_SETTLE_DB = 6.0
#: Start-up time of the mains canceller (s): amplitudes and frequency lock (measured in
#: tests/dsp/test_dsp_mains.py).
MAINS_SETTLE_S = 0.3


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
    line_hz
        Line frequency in sample time (the nominal moved by the board's clock error, see
        :class:`~emgfb.dsp.clock.SampleRateEstimator`); default: nominal.

    Attributes
    ----------
    last_filtered
        Filtered µV signal of the last :meth:`process` call, shape ``(n, n_channels)``, NaN
        where samples were lost or the filters are still settling.
    filter_settle, envelope_settle
        Rows after the start (or a restart after a long gap) whose filtered signal /
        envelope is reported as NaN.
    gap_settle
        Rows after a bridged gap whose filtered signal is left out (band-pass transient).
    """

    def __init__(self, config: DspConfig, fs: float, n_channels: int,
                 uv_per_count: float | np.ndarray = 1.0,
                 offset_counts: float | np.ndarray = 0.0, line_hz: float | None = None):
        self.config = config
        self.fs = check_sample_rate(fs)
        if int(n_channels) < 1:
            raise ValueError(f"n_channels must be >= 1, got {n_channels}")
        self.n_channels = int(n_channels)
        notch = config.notch
        self.line_hz = float(line_hz or notch.mains_hz)
        self.mains: MainsCanceller | None = None
        if notch.enabled and notch.method == "track":
            self.mains = MainsCanceller(notch.mains_hz, self.fs, self.n_channels,
                                        line_hz=self.line_hz, tau_s=notch.tau_s,
                                        track_hz=notch.track_hz)
        self.sos = design_cascade(config, self.fs)
        self.scale = ScaleStage(uv_per_count, offset_counts, self.n_channels)
        self.filter = SosFilterStage(self.sos, self.n_channels, steady_start=True)
        env = config.envelope
        # after a bridged gap: the band-pass transient (the canceller keeps the hum out of
        # the bridge), or with fixed notches their ringing on the hum that was cut off
        self.gap_settle = settle_samples(
            design_bandpass(config.bandpass, self.fs) if self.mains is not None
            or not notch.enabled else self.sos, GAP_SETTLE_DB)
        if self.mains is not None:
            self.filter_settle = max(self.gap_settle, round(MAINS_SETTLE_S * self.fs))
        else:
            self.filter_settle = settle_samples(self.sos, config.gaps.settle_db)
        self.fill_max = round(config.gaps.fill_max_s * self.fs)
        if env.method == "rms":
            self.window = max(1, round(env.window_ms * self.fs / 1000.0))
            self.envelope: MovingRmsStage | LowpassEnvelopeStage = MovingRmsStage(
                self.window, self.n_channels)
            tail = self.envelope.min_valid - 1
        else:
            self.window = 0
            self.envelope = LowpassEnvelopeStage(env.lowpass_hz, env.lowpass_order, self.fs,
                                                 2 * self.n_channels)
            tail = settle_samples(self.envelope.filter.sos, self.config.gaps.settle_db) // 4
        self.envelope_settle = self.filter_settle + tail
        self.last_filtered = np.zeros((0, self.n_channels))
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget all state: the next sample is treated as the start of a new stream."""
        self.filter.reset()
        self.envelope.reset()
        if self.mains is not None:
            self.mains.reset()
        self._last_tick: int | None = None
        self._need_restart = True
        self._hold = np.zeros(self.n_channels)  # last valid cancelled value per channel
        self._since = np.zeros(self.n_channels, dtype=np.int64)  # rows since a lost one
        self.restarts = 0  #: number of (re)starts so far, including the first

    def describe(self) -> dict[str, Any]:
        """What this pipeline does, for a recording's metadata (ISEK reporting)."""
        notch = self.config.notch
        mains: dict[str, Any] = {"method": notch.method if notch.enabled else "off"}
        if self.mains is not None:
            mains.update(line_hz=self.line_hz, harmonics=len(self.mains.harmonics),
                         tau_s=notch.tau_s, track_hz=notch.track_hz)
        return {
            "fs": self.fs,
            "mains": mains,
            "notch_hz": (notch_frequencies(notch, self.fs) if notch.method == "iir"
                         else []),
            "bandpass_hz": [self.config.bandpass.low_hz,
                            min(self.config.bandpass.high_hz, 0.45 * self.fs)],
            "sos": self.sos.tolist(),
            "envelope": self.config.envelope.method,
            "window_samples": self.window,
            "filter_settle_samples": self.filter_settle,
            "envelope_settle_samples": self.envelope_settle,
            "gap_settle_samples": self.gap_settle,
            "config": self.config.as_dict(),
        }

    def expect_line_hz(self, line_hz: float) -> None:
        """Where the mains line is expected in sample time (from
        :meth:`~emgfb.dsp.clock.RateEstimate.line_hz`): re-centres the canceller's range."""
        self.line_hz = float(line_hz)
        if self.mains is not None:
            self.mains.expect(line_hz)

    @property
    def mains_frequency_hz(self) -> float | None:
        """The line frequency the canceller tracks now (None without one)."""
        return None if self.mains is None else self.mains.frequency_hz

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
            a NaN cell is a lost sample of that channel.
        tick
            Optional absolute sample indices (int64, strictly increasing, also across
            chunks); a step larger than one is a gap of lost samples on every channel.

        Returns
        -------
        filtered, envelope
            Both ``(n, n_channels)`` float64 µV. ``filtered`` is NaN on lost cells, for
            ``gap_settle`` rows after them and for ``filter_settle`` rows after a (re)start;
            ``envelope`` is the RMS of the valid filtered samples in its window, NaN while
            fewer than half are valid.
        """
        x = np.asarray(x, dtype=float)
        if x.ndim != 2 or x.shape[1] != self.n_channels:
            raise ValueError(f"expected shape (n, {self.n_channels}), got {x.shape}")
        n = len(x)
        if n == 0:
            return np.zeros((0, self.n_channels)), np.zeros((0, self.n_channels))
        lost_before = self._lost_before(tick, n)
        if lost_before is None:
            return self._run(x, 0)
        filtered = np.empty((n, self.n_channels))
        envelope = np.empty((n, self.n_channels))
        cuts = [0, *np.flatnonzero(lost_before[1:] > self.fill_max) + 1, n]
        for lo, hi in zip(cuts[:-1], cuts[1:], strict=False):
            gap = int(lost_before[lo])
            if gap > self.fill_max:
                self._need_restart = True
            part = lost_before[lo:hi].copy()
            part[0] = 0 if gap > self.fill_max else part[0]
            if part.any():  # bridge short gaps with lost rows, then keep the real ones
                rows = np.arange(hi - lo) + np.cumsum(part)
                grown = np.full((rows[-1] + 1, self.n_channels), np.nan)
                grown[rows] = x[lo:hi]
                f, e = self._run(grown, gap if gap > self.fill_max else 0)
                filtered[lo:hi], envelope[lo:hi] = f[rows], e[rows]
            else:
                filtered[lo:hi], envelope[lo:hi] = self._run(x[lo:hi],
                                                             gap if gap > self.fill_max else 0)
        return filtered, envelope

    def _lost_before(self, tick: np.ndarray | None, n: int) -> np.ndarray | None:
        """Per row, how many ticks were lost just before it (None when none were)."""
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
        lost = step - 1
        return lost if lost.any() else None

    def _run(self, x: np.ndarray, skipped: int) -> tuple[np.ndarray, np.ndarray]:
        """Run rows (NaN cells = lost) through the stages; ``skipped`` ticks were lost
        before them and a restart is due."""
        if self._need_restart:
            self.filter.reset()
            self.envelope.reset()
            if self.mains is not None and skipped:
                self.mains.skip(skipped)  # the hum ran on: keep its amplitudes
            self._since[:] = self.gap_settle - self.filter_settle
            self._need_restart = False
            self.restarts += 1
        u = self.scale.process(x)
        if self.mains is not None:
            u = self.mains.process(u)
        lost = np.isnan(u)
        any_lost = bool(lost.any())
        if any_lost:  # hold the last valid value: the filters see no step into the gap
            u = np.array(u)
            idx = np.where(lost, -1, np.arange(len(u))[:, None])
            np.maximum.accumulate(idx, axis=0, out=idx)
            held = np.take_along_axis(u, np.maximum(idx, 0), axis=0)
            u = np.where(idx >= 0, held, self._hold)
        self._hold = u[-1].copy()
        filtered = np.array(self.filter.process(u))
        # rows since the last lost sample, per channel, carried across chunks
        rows = np.arange(1, len(u) + 1)[:, None]
        if any_lost:
            last = np.where(lost, rows, 0)
            np.maximum.accumulate(last, axis=0, out=last)
            since = np.where(last > 0, rows - last, rows + self._since)
        else:
            since = rows + self._since
        self._since = since[-1].copy()
        valid = since > self.gap_settle
        filtered[~valid] = np.nan
        if isinstance(self.envelope, MovingRmsStage):
            envelope = self.envelope.process(filtered, valid)
        else:  # normalised low-pass: the low-pass of |x|·valid over the low-pass of valid
            both = self.envelope.filter.process(np.hstack([
                np.where(valid, np.abs(filtered), 0.0), valid.astype(float)]))
            c = self.n_channels
            with np.errstate(divide="ignore", invalid="ignore"):
                envelope = np.maximum(both[:, :c], 0.0) / both[:, c:]
            envelope[~(both[:, c:] >= 0.5)] = np.nan
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
                                 self.scale.scale, self.scale.offset, self.line_hz)
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
        u = self.scale.process(x)
        if fresh.mains is not None:  # causal and narrow: run once, following the gaps
            cuts = [0, *np.flatnonzero(breaks), n]
            parts = []
            for lo, hi in zip(cuts[:-1], cuts[1:], strict=False):
                if lo > 0 and tick is not None:
                    fresh.mains.skip(int(tick[lo] - tick[lo - 1] - 1))
                parts.append(fresh.mains.process(u[lo:hi]))
            u = np.vstack(parts)
        filtered = np.full((n, self.n_channels), np.nan)
        envelope = np.full((n, self.n_channels), np.nan)
        edges = np.flatnonzero(np.diff(np.concatenate([[False], valid, [False]]).astype(int)))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            cuts = [a, *(np.flatnonzero(breaks[a + 1:b]) + a + 1), b]
            for lo, hi in zip(cuts[:-1], cuts[1:], strict=False):
                filtered[lo:hi], envelope[lo:hi] = self._zero_phase(u[lo:hi])
        return filtered, envelope

    def _zero_phase(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nan = np.full(u.shape, np.nan)
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

