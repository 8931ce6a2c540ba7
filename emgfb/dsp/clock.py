"""The board's true sample rate, estimated from when its samples reach the host.

This module owns :class:`SampleRateEstimator`, a pure object fed ``(tick, host_time)``
pairs (the absolute index of a chunk's last sample and the host time its last byte
arrived). A board clocked by a ceramic resonator (±0.5 %) samples at ``fs·(1 + ε)``, which
moves every time axis and, in sample time, the mains hum (DOMAIN.md §9). Arrival times are
the sample times plus a delay that is never negative and often large (USB latency timer,
scheduling): the fit is a line under the cloud of points, found by fitting, keeping the
quarter of the points with the smallest residuals and fitting again until that set no
longer changes, so late chunks never bias it. One point is kept per ``spacing_s`` slot
over the last ``window_s`` (of the chunks of one slot, the one that arrived with the least
delay); the fit is redone every ``refit_s``. Lost ticks leave the sample index exact (it
counts board ticks), so gaps do not bias the fit; after a reconnect or a restart of
the board's counter the index is only aligned by the host clock, so the caller starts a
new segment (:meth:`SampleRateEstimator.new_segment`): every segment has its own offset
and all share one slope. :func:`clock_document` is the ``clock`` document a recording
stores. Imports numpy only.
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
    segments
        Stretches of unbroken board clock in the fit (1 + reconnects/restarts seen).
    """

    fs_hz: float
    ppm: float
    uncertainty_ppm: float
    span_s: float
    points: int
    segments: int = 1

    def line_hz(self, mains_hz: float) -> float:
        """Where mains at ``mains_hz`` lands in this board's sample time (Hz): nominal
        sample rate over the true one times the line frequency."""
        return mains_hz / (1.0 + self.ppm * 1e-6)


#: Fraction of the points (the earliest arrivals about the fitted line) the fit rests on.
_LOWER_FRACTION = 0.25


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
        self._points: collections.deque[tuple[int, float, int]] = collections.deque()
        self._segment = 0
        self._new_segment = False
        self._slot_start = -math.inf  # host time the newest point's slot began
        self._slot_offset = math.inf  # its host time minus its sample time
        self._latest: RateEstimate | None = None
        self._dirty = False
        self._fitted_at = -math.inf  # host time of the newest point of the last fit

    def new_segment(self) -> None:
        """The next point starts a new stretch of board clock (after a reconnect or a
        restart of the board's counter the sample index is aligned by the host clock only):
        it gets its own offset, the slope stays shared."""
        if self._points:
            self._new_segment = True

    def observe(self, tick: int, host_time: float) -> None:
        """Add the absolute index of a chunk's last sample and the host time it arrived."""
        if not math.isfinite(host_time):
            return
        pts = self._points
        if pts and (tick <= pts[-1][0] or host_time < pts[-1][1]):
            if tick < pts[-1][0] and not self._new_segment:  # the stream restarted
                self.reset()
                pts = self._points
            else:
                return
        offset = host_time - tick / self.nominal_fs  # sample time plus the delay
        if self._new_segment:
            self._new_segment = False
            self._segment += 1
        elif pts and host_time - self._slot_start < self.spacing_s:
            # one point per slot: the earliest arrival (least delay) of the slot's chunks
            if offset < self._slot_offset:
                pts[-1] = (int(tick), float(host_time), self._segment)
                self._slot_offset = offset
                self._dirty = True
            return
        pts.append((int(tick), float(host_time), self._segment))
        self._slot_start, self._slot_offset = float(host_time), offset
        while pts and host_time - pts[0][1] > self.window_s:
            pts.popleft()
        self._dirty = True

    @property
    def estimate(self) -> RateEstimate | None:
        """The current estimate, or None before ``min_span_s`` of data; refitted when
        ``refit_s`` of new data has come in (cheap to ask after every chunk)."""
        return self.refit(force=False)

    def refit(self, force: bool = True) -> RateEstimate | None:
        """Fit now over every point kept (``force``), e.g. once at the end of a recording;
        else as :attr:`estimate`."""
        if self._dirty and (force or self._points[-1][1] - self._fitted_at >= self.refit_s):
            self._latest = self._fit()
            self._fitted_at = self._points[-1][1]
            self._dirty = False
        return self._latest

    def _fit(self) -> RateEstimate | None:
        if len(self._points) < 8:
            return None
        arr = np.array(self._points)
        tick, t, seg = arr[:, 0], arr[:, 1], arr[:, 2].astype(int)
        seg = seg - seg.min()
        n_seg = int(seg.max()) + 1
        first = np.full(n_seg, np.inf)
        last = np.full(n_seg, -np.inf)
        np.minimum.at(first, seg, t)
        np.maximum.at(last, seg, t)
        span = float(np.sum((last - first)[np.isfinite(first)]))
        if span < self.min_span_s:
            return None
        # host time as a function of the sample index: slope = 1 / fs, one offset a segment
        x = (tick - tick[0]) / self.nominal_fs
        y = t - t[0]
        keep = np.ones(len(x), bool)
        slope, res = _segment_fit(x, y, seg, n_seg, keep)
        for _ in range(8):  # converge on the earliest quarter of arrivals around the line
            new = res <= np.quantile(res, _LOWER_FRACTION)
            if new.sum() < 4 or np.array_equal(new, keep):
                break
            keep = new
            slope, res = _segment_fit(x, y, seg, n_seg, keep)
        fs = self.nominal_fs / slope
        ppm = (1.0 / slope - 1.0) * 1e6
        # uncertainty from the lower half of the points (the kept quarter's own spread
        # understates it: it was chosen for being small)
        half = res <= np.median(res)
        dx = x[half] - _segment_means(x, seg, n_seg, half)[seg[half]]
        sx = np.sqrt(np.sum(dx ** 2))
        se = float(np.std(res[half]) / sx / slope * 1e6) if sx > 0 else float("inf")
        used = int(np.count_nonzero(np.bincount(seg[keep], minlength=n_seg)))
        return RateEstimate(float(fs), float(ppm), se, span, int(keep.sum()), used)


def _segment_means(v: np.ndarray, seg: np.ndarray, n_seg: int, keep: np.ndarray
                   ) -> np.ndarray:
    n = np.bincount(seg[keep], minlength=n_seg)
    return np.bincount(seg[keep], v[keep], n_seg) / np.maximum(n, 1)


def _segment_fit(x: np.ndarray, y: np.ndarray, seg: np.ndarray, n_seg: int,
                 keep: np.ndarray) -> tuple[float, np.ndarray]:
    """Least squares of y = slope·x + offset[segment] over the kept points; returns the
    slope and every point's residual."""
    mx, my = _segment_means(x, seg, n_seg, keep), _segment_means(y, seg, n_seg, keep)
    dx, dy = x[keep] - mx[seg[keep]], y[keep] - my[seg[keep]]
    sxx = float(np.sum(dx * dx))
    slope = float(np.sum(dx * dy) / sxx) if sxx > 0 else 1.0
    return slope, y - (slope * x + (my - slope * mx)[seg])


def clock_document(nominal_fs: float, estimate: RateEstimate | None,
                   reason: str | None = None) -> dict[str, object]:
    """The ``clock`` document of a recording (docs/file-format.md).

    Parameters
    ----------
    nominal_fs
        The rate the board says it samples at (Hz).
    estimate
        The fit, or None.
    reason
        Why there is no estimate (None: the recording was too short for one).
    """
    doc: dict[str, object] = {"nominal_fs": float(nominal_fs), "estimated": estimate is not None}
    if estimate is None:
        doc["reason"] = reason or "too short: an estimate needs about 10 s of signal"
        return doc
    doc.update(fs_hz=estimate.fs_hz, ppm=estimate.ppm,
               uncertainty_ppm=estimate.uncertainty_ppm, span_s=estimate.span_s,
               points=estimate.points, segments=estimate.segments,
               method="lower-envelope line fit of board sample index against host receive "
                      "time (emgfb.dsp.clock)")
    return doc
