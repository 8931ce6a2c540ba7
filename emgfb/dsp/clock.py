"""The board's true sample rate, estimated from when its samples reach the host.

This module owns :class:`SampleRateEstimator`, a pure object fed ``(tick, host_time)``
pairs (the absolute index of a chunk's last sample and the host time its last byte
arrived). A board clocked by a ceramic resonator (±0.5 %) samples at ``fs·(1 + ε)``, which
moves every time axis and, in sample time, the mains hum (DOMAIN.md §9). Arrival times are
the sample times plus a delay that is never negative and often large (USB latency timer,
scheduling): the fit is the line under every point with the least summed gap above it
(the lower envelope of Moon, Skelly & Towsley 1999, "Estimation and removal of clock skew
from network delay measurements"), so late chunks never bias it: only the earliest
arrivals hold it up, and a stretch that arrived late (a busy host) cannot tilt it. One
point is kept per ``spacing_s`` slot over the last ``window_s`` (of the chunks of one slot,
the one that arrived with the least delay); the fit is redone every ``refit_s``. Lost
ticks leave the sample index exact (it counts board ticks), so gaps do not bias the fit;
after a reconnect or a restart of the board's counter the index is only aligned by the
host clock, so the caller starts a new segment (:meth:`SampleRateEstimator.new_segment`):
every segment has its own offset and all share one slope. :func:`clock_document` is the
``clock`` document a recording stores. Imports numpy only.
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
        A conservative standard error of ``ppm`` (each stretch's spread of arrivals above the
        line over the time it spans; see :data:`_UNCERTAINTY_SCALE`).
    span_s
        Host seconds the fit covers.
    points
        Points in the fit (one a ``spacing_s`` slot).
    segments
        Stretches of unbroken board clock the fit spans (1 + reconnects/restarts seen).
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
        slope = _envelope_slope(x, y, seg, n_seg)
        if slope is None:
            return None
        gap = y - slope * x
        floor = np.full(n_seg, np.inf)
        np.minimum.at(floor, seg, gap)
        gap -= floor[seg]  # each point's delay above its segment's earliest arrival
        fs = self.nominal_fs / slope
        ppm = (1.0 / slope - 1.0) * 1e6
        se = _UNCERTAINTY_SCALE * _slope_error(x, gap, seg, n_seg) / slope * 1e6
        return RateEstimate(float(fs), float(ppm), float(se), span, len(x), n_seg)


#: Slopes searched (host seconds per nominal sample second): clocks up to 2x off nominal.
_SLOPE_RANGE = (0.5, 2.0)
#: The spread-based standard error, scaled so it is never optimistic: in simulated 14 s
#: recordings of three stretches (exponential delays of 0.5 to 200 ms, 100 seeds each) 95 %
#: of the errors lie within 2.2 of it; with one stretch (15-120 s, 1 and 16 ms delay tails,
#: 40 seeds each) every error lay within 2 of it, the median at 0.06-0.3 (conservative).
_UNCERTAINTY_SCALE = 2.0


def _envelope_slope(x: np.ndarray, y: np.ndarray, seg: np.ndarray, n_seg: int
                    ) -> float | None:
    """The slope ``a`` (one offset ``b_s`` a segment) of the line with every point on or
    above it and the least total gap ``sum(y - a*x - b_s)``. For a given slope each offset
    is its segment's lowest ``y - a*x``, so the total gap is convex in ``a`` and its
    derivative ``sum_s n_s * x[lowest of s] - sum(x)`` never decreases: bisect for its
    sign change. None when the slope lies outside :data:`_SLOPE_RANGE`."""
    counts = np.bincount(seg, minlength=n_seg)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))[counts > 0]
    weight, total = counts[counts > 0], float(np.sum(x))

    def rising(a: float) -> bool:
        lowest = np.lexsort((y - a * x, seg))[starts]
        return float(np.sum(weight * x[lowest])) >= total

    lo, hi = _SLOPE_RANGE
    if rising(lo) or not rising(hi):
        return None
    for _ in range(60):  # (hi - lo) / 2**60: far below any clock's resolution
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if rising(mid) else (mid, hi)
    return 0.5 * (lo + hi)


def _slope_error(x: np.ndarray, gap: np.ndarray, seg: np.ndarray, n_seg: int) -> float:
    """Standard error of a shared slope from each segment's lower half of gaps (their
    spread above the floor, over the host time they span), segments weighted by it."""
    info = 0.0
    for s in range(n_seg):
        g, xs = gap[seg == s], x[seg == s]
        low = g <= np.median(g)
        if low.sum() < 3:
            continue
        sxx, sd = float(np.sum((xs[low] - xs[low].mean()) ** 2)), float(np.std(g[low]))
        if sxx > 0 and sd > 0:
            info += sxx / sd ** 2
    return 1.0 / math.sqrt(info) if info > 0 else math.inf


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
