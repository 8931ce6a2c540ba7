"""The board's true sample rate, estimated from when its samples reach the host.

This module owns :class:`SampleRateEstimator`, a pure object fed ``(tick, host_time)``
pairs (the absolute index of a chunk's last sample and the host time its last byte
arrived). A board clocked by a ceramic resonator (±0.5 %) samples at ``fs·(1 + ε)``, which
moves every time axis and, in sample time, the mains hum (DOMAIN.md §9). Arrival times are
the sample times plus a delay that is never negative and often large (USB latency timer,
scheduling): the fit is a line under the cloud of points, found by fitting, keeping the
points on or below the line (residual at most its lower half's median), and fitting again,
so late chunks never bias it. Points are kept at most every ``spacing_s`` over the last
``window_s``; the fit is redone every ``refit_s``. Imports numpy only.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RateEstimate:
    """The board's sample rate as measured against the host clock.

    Attributes
    ----------
    fs_hz
        Samples per host second.
    ppm
        Deviation from the nominal rate in parts per million (+ = the board runs fast).
    uncertainty_ppm
        About one standard error of ``ppm`` (spread of the fitted points over the span).
    span_s
        Host seconds the fit covers.
    points
        Points in the fit.
    """

    fs_hz: float
    ppm: float
    uncertainty_ppm: float
    span_s: float
    points: int

    def line_hz(self, mains_hz: float) -> float:
        """Where mains at ``mains_hz`` lands in this board's sample time (Hz): nominal
        sample rate over the true one times the line frequency."""
        return mains_hz / (1.0 + self.ppm * 1e-6)


class SampleRateEstimator:
    """Robust, incremental fit of sample index against host receive time.

    Parameters
    ----------
    nominal_fs
        The rate the board is configured for (Hz).
    window_s
        Host seconds of history kept.
    spacing_s
        Shortest host time between two kept points (bounds memory and cost).
    min_span_s
        Shortest span before an estimate is given.
    """

    def __init__(self, nominal_fs: float, window_s: float = 600.0, spacing_s: float = 0.25,
                 min_span_s: float = 10.0, refit_s: float = 5.0):
        self.nominal_fs = float(nominal_fs)
        self.refit_s = float(refit_s)
        self.window_s = float(window_s)
        self.spacing_s = float(spacing_s)
        self.min_span_s = float(min_span_s)
        self.reset()

    def reset(self) -> None:
        """Forget every point (a new stream, or the board restarted its clock)."""
        self._points: collections.deque[tuple[int, float]] = collections.deque()
        self._latest: RateEstimate | None = None
        self._dirty = False
        self._fitted_at = -math.inf  # host time of the newest point of the last fit

    def observe(self, tick: int, host_time: float) -> None:
        """Add the absolute index of a chunk's last sample and the host time it arrived."""
        if not math.isfinite(host_time):
            return
        pts = self._points
        if pts and (tick <= pts[-1][0] or host_time < pts[-1][1]):
            if tick < pts[-1][0]:  # the stream restarted: an old clock says nothing
                self.reset()
                pts = self._points
            else:
                return
        if pts and host_time - pts[-1][1] < self.spacing_s:
            return
        pts.append((int(tick), float(host_time)))
        while pts and host_time - pts[0][1] > self.window_s:
            pts.popleft()
        self._dirty = True

    @property
    def estimate(self) -> RateEstimate | None:
        """The current estimate, or None before ``min_span_s`` of data; refitted when
        ``refit_s`` of new data has come in (cheap to ask after every chunk)."""
        if self._dirty and self._points[-1][1] - self._fitted_at >= self.refit_s:
            self._latest = self._fit()
            self._fitted_at = self._points[-1][1]
            self._dirty = False
        return self._latest

    def _fit(self) -> RateEstimate | None:
        if len(self._points) < 8:
            return None
        arr = np.array(self._points)
        tick, t = arr[:, 0], arr[:, 1]
        span = t[-1] - t[0]
        if span < self.min_span_s:
            return None
        # host time as a function of the sample index: slope = 1 / fs
        x = (tick - tick[0]) / self.nominal_fs
        y = t - t[0]
        keep = np.ones(len(x), bool)
        for _ in range(4):
            slope, icpt = np.polyfit(x[keep], y[keep], 1)
            res = y - (slope * x + icpt)
            low = res[keep] <= np.median(res[keep])
            cut = np.median(res[keep][low]) if low.any() else 0.0
            new = res <= max(cut, np.min(res) + 1e-6)
            if new.sum() < 4 or np.array_equal(new, keep):
                break
            keep = new
        slope, icpt = np.polyfit(x[keep], y[keep], 1)
        res = y[keep] - (slope * x[keep] + icpt)
        fs = self.nominal_fs / slope
        ppm = (1.0 / slope - 1.0) * 1e6
        sx = np.sqrt(np.sum((x[keep] - x[keep].mean()) ** 2))
        se = float(np.std(res) / sx / slope * 1e6) if sx > 0 else float("inf")
        return RateEstimate(float(fs), float(ppm), se, float(span), int(keep.sum()))
