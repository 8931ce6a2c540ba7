"""Lab Streaming Layer (LSL) input: ``lsl://NAME`` as a source, marker inlets, the sample clock.

This module owns everything emgfb reads from LSL and the mapping between sample ticks and
LSL time that both directions share:

* :class:`LslSource` — a :class:`~emgfb.acquisition.source.Source` that resolves a numeric
  stream (``lsl://NAME``, ``lsl://type=EMG``, ``lsl://source_id=...``), pulls its chunks,
  turns LSL timestamps into ticks and its float samples into 16-bit counts;
* :class:`LslMarkerInlet` — a background inlet on another program's marker stream that
  hands each marker, clock-corrected and placed on the tick timeline, to a callback (the
  recording, a live session);
* :class:`SampleClock` — ``lsl_time = anchor + (tick - anchor_tick) / fs``, anchored once to
  ``pylsl.local_clock()`` at the first chunk.

pylsl (whose wheels bundle liblsl) is imported lazily inside functions, so emgfb works and
``emgfb --help`` stays fast where it is missing; using LSL then fails with one
:class:`~emgfb.errors.DeviceError` line. Imports ``source``, ``montage``, ``protocol``,
``errors`` and numpy only.

URL parameters of ``lsl://`` (all optional):

============== ========= ===========================================================
``timeout``     5         seconds to wait for the stream to appear on the network
``scale``       0.1       µV per count of the virtual 16-bit ADC; one value or one per
                          channel, comma-separated (``0.1,0.1,0.5``)
``jitter_ms``   5         lateness beyond the stream's clock line tolerated (plus one
                          period and the spread batched stamps showed) before samples
                          count as lost (:class:`StreamClock`)
``stall``       2         seconds without a sample after which the source fails (the
                          sender stopped, crashed or left the network); 0: wait forever
============== ========= ===========================================================

Quantisation: each float sample ``x`` (in the channel's unit: microvolts unless the stream
description says ``millivolts`` or ``volts``) becomes ``counts = round(x_uv / scale) + 32768``
clipped to 0..65535, so the counts-to-µV rule of every other source,
``uv = (counts - offset_counts) * uv_per_count``, holds with ``uv_per_count = scale`` and
``offset_counts = 32768``. The default spans ±3.28 mV at 0.1 µV resolution, far beyond
facial sEMG and below any front-end's noise. A stream published by emgfb itself carries its
board's scale in ``<desc><acquisition>``; it is then used as is, so the counts equal the
board's counts exactly.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from emgfb import __version__
from emgfb.acquisition.source import (
    Chunk,
    Marker,
    Source,
    query_param,
    register_scheme,
    steady_clock,
)
from emgfb.errors import ConfigError, DeviceError
from emgfb.montage import MUSCLES, SIDES, Channel, Montage
from emgfb.protocol import BoardInfo
from emgfb.worker import Worker

log = logging.getLogger(__name__)

_HINT = "lsl:// URL"
_KNOWN = ("timeout", "scale", "jitter_ms", "stall", "name", "type", "source_id", "hostname")
#: Stream properties a ``lsl://`` URL may select on.
SELECTORS = ("name", "type", "source_id", "hostname")
#: Counts of the virtual ADC an LSL stream is quantised into.
LSL_BITS = 16
LSL_OFFSET_COUNTS = 32768.0
DEFAULT_SCALE_UV = 0.1
#: Unit strings (lower case) in a stream description and their factor to microvolts.
UNIT_TO_UV = {
    "microvolts": 1.0, "microvolt": 1.0, "uv": 1.0, "µv": 1.0, "μv": 1.0,
    "millivolts": 1e3, "millivolt": 1e3, "mv": 1e3,
    "volts": 1e6, "volt": 1e6, "v": 1e6,
}
_PULL_MAX = 4096


def import_pylsl() -> Any:
    """Return the ``pylsl`` module, or raise one :class:`DeviceError` line if unusable.

    Raises
    ------
    DeviceError
        If pylsl is not installed or cannot load liblsl.
    """
    try:
        import pylsl
    except (ImportError, OSError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DeviceError(
            f"Lab Streaming Layer unavailable ({first}); install it with: pip install pylsl"
        ) from None
    return pylsl


def lsl_errors(pylsl: Any) -> tuple[type[BaseException], type[BaseException]]:
    """pylsl's ``(LostError, TimeoutError)`` classes, wherever this pylsl version keeps them.

    pylsl up to 1.16 exported them at top level; 1.17 and later keep them in
    ``pylsl.util`` only. Both derive from :class:`RuntimeError`, the fallback.
    """
    found = []
    for name in ("LostError", "TimeoutError"):
        cls: Any = None
        for where in (getattr(pylsl, "util", None), pylsl, getattr(pylsl, "pylsl", None)):
            cls = getattr(where, name, None)
            if isinstance(cls, type) and issubclass(cls, BaseException):
                break
        found.append(cls if isinstance(cls, type) else RuntimeError)
    return found[0], found[1]


def local_clock() -> float:
    """LSL's local clock (seconds, monotonic), the time base of all LSL timestamps."""
    return float(import_pylsl().local_clock())


def parse_lsl_url(path: str, query: dict[str, str], hint: str = _HINT) -> tuple[str, str]:
    """The stream property and value an ``lsl://`` URL selects.

    ``lsl://NAME`` selects by name; ``lsl://type=EMG`` (or ``?type=EMG``) by another
    property of :data:`SELECTORS`.

    Raises
    ------
    ConfigError
        If no stream or an unknown property is named.
    """
    path = path.strip("/")
    chosen = [(k, v) for k, v in query.items() if k in SELECTORS]
    if path:
        if "=" in path:
            key, _, value = path.partition("=")
            chosen.insert(0, (key, value))
        else:
            chosen.insert(0, ("name", path))
    if not chosen:
        raise ConfigError(f"{hint}: name a stream, e.g. lsl://MyEMG or lsl://type=EMG")
    key, value = chosen[0]
    if key not in SELECTORS or not value:
        raise ConfigError(
            f"{hint}: {key}={value!r}: expected a stream name or one of "
            f"{', '.join(f'{s}=VALUE' for s in SELECTORS)}"
        )
    return key, value


def resolve_stream(prop: str, value: str, timeout: float) -> Any:
    """Find the first LSL stream whose ``prop`` equals ``value`` within ``timeout`` s.

    Returns
    -------
    pylsl.StreamInfo
        The stream's (short) info, to open an inlet with.

    Raises
    ------
    DeviceError
        If none appears in time.
    """
    pylsl = import_pylsl()
    found = pylsl.resolve_byprop(prop, value, minimum=1, timeout=float(timeout))
    if not found:
        raise DeviceError(
            f"lsl://: no LSL stream with {prop}={value!r} found within {timeout:g} s "
            "(is the sending program running, on this network?)"
        )
    if len(found) > 1:
        log.warning("%d LSL streams have %s=%r; using the one from %s", len(found), prop,
                    value, found[0].hostname())
    return found[0]


class SampleClock:
    """Map sample ticks to LSL time and back, following the board's real rate.

    ``lsl_time(tick) = anchor_time + (tick - anchor_tick) * slope``. It is anchored at the
    first chunk, so timestamps follow the sample clock (gaps stay gaps) and never the
    jitter of read times. Read the first chunk promptly after the source starts: a backlog
    at that read would shift every timestamp later by its age.

    Drift: a board's crystal or resonator is off its nominal rate by up to a few per mille
    (0.5 % is 18 s an hour). Every chunk's arrival (:meth:`observe`) feeds a least-squares
    line of arrival time against tick, with exponential forgetting; once it spans
    ``settle_s`` of ticks and its rate is within 2 % of nominal (an unpaced or
    fast-forwarded source is not real time and keeps the nominal rate), the slope steers
    towards it over ``steer_s``: timestamps stay continuous and monotonic, and follow
    ``local_clock()`` to within the read jitter instead of drifting away.
    Thread-safe: fed by the acquisition thread, read by marker threads.

    Parameters
    ----------
    fs
        Nominal sample rate in Hz.
    settle_s, steer_s, memory_s
        Tick span before drift is corrected; time over which an offset is steered out;
        forgetting time constant of the fit.
    """

    def __init__(self, fs: float, *, settle_s: float = 10.0, steer_s: float = 5.0,
                 memory_s: float = 60.0):
        if not fs > 0:
            raise ConfigError(f"sample clock: fs={fs!r}: expected > 0")
        self.fs = float(fs)
        self.settle_s, self.steer_s = float(settle_s), float(steer_s)
        self._fit = _DecayedLine(1.0 / self.fs, memory_s)
        self._anchor_tick = 0
        self._anchor_time = 0.0
        self._slope = 1.0 / self.fs
        self._last_observed: int | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()

    @property
    def anchored(self) -> bool:
        """True once :meth:`observe` or :meth:`anchor` has run."""
        return self._ready.is_set()

    @property
    def rate_hz(self) -> float:
        """The sample rate the timestamps currently follow (nominal until drift is known)."""
        with self._lock:
            return 1.0 / self._slope

    def anchor(self, tick: int, lsl_time: float) -> None:
        """(Re-)anchor: sample ``tick`` was taken at ``lsl_time``; forgets the drift fit."""
        with self._lock:
            self._anchor_tick, self._anchor_time = int(tick), float(lsl_time)
            self._slope = 1.0 / self.fs
            self._fit.reset()
            self._fit.add(int(tick), float(lsl_time))
            self._last_observed = int(tick)
        self._ready.set()

    def observe(self, chunk: Chunk) -> None:
        """Note a chunk's arrival: its last sample was taken (at the latest) now."""
        if len(chunk) == 0:
            return
        age = max(0.0, time.time() - float(chunk.host_time))
        self.observe_arrival(int(chunk.tick[-1]), local_clock() - age)

    def observe_arrival(self, tick: int, lsl_time: float) -> None:
        """Sample ``tick`` arrived at ``lsl_time``: anchor at the first, then track drift."""
        if not self.anchored:
            self.anchor(tick, lsl_time)
            return
        with self._lock:
            prev = self._last_observed
            if prev is not None and tick <= prev:
                return  # seen already (two observers of one chunk)
            self._last_observed = int(tick)
            self._fit.add(int(tick), float(lsl_time))
            slope = self._fit.slope(settle_s=self.settle_s)
            nominal = 1.0 / self.fs
            if prev is None or slope is None or abs(slope / nominal - 1.0) > 0.02:
                return
            # continue from the last tick already stamped (no step in the timestamps)
            then = self._anchor_time + (prev - self._anchor_tick) * self._slope
            offset = self._fit.at(prev) - then  # > 0: stamps run ahead of the arrivals' line
            self._anchor_tick, self._anchor_time = int(prev), then
            steer = offset / (self.steer_s * self.fs)
            self._slope = min(max(slope + steer, 0.99 * slope), 1.01 * slope)

    def time_of(self, tick: np.ndarray | int) -> np.ndarray:
        """LSL time of ``tick`` (an array or one tick)."""
        with self._lock:
            t0, k0, slope = self._anchor_time, self._anchor_tick, self._slope
        return t0 + (np.asarray(tick, dtype=np.float64) - k0) * slope

    def tick_at(self, lsl_time: float) -> int:
        """The tick nearest to ``lsl_time`` (a local-clock time)."""
        with self._lock:
            t0, k0, slope = self._anchor_time, self._anchor_tick, self._slope
        return int(k0 + round((float(lsl_time) - t0) / slope))

    def wait_anchored(self, timeout: float) -> bool:
        """Block until anchored or ``timeout`` s passed; True if anchored."""
        return self._ready.wait(timeout)


class _DecayedLine:
    """Least-squares line ``t = a + slope * tick`` through points, forgetting old ones
    with time constant ``memory_s`` (in ticks at ``period``)."""

    def __init__(self, period: float, memory_s: float):
        self.period, self.memory_s = float(period), float(memory_s)
        self.reset()

    def reset(self) -> None:
        self.ref: tuple[int, float] | None = None
        self.sums = np.zeros(5)  # w, Σk, Σt, Σkk, Σkt of (tick - ref, time - ref)
        self.last = 0

    def add(self, tick: int, t: float) -> None:
        if self.ref is None:
            self.ref, self.last = (int(tick), float(t)), int(tick)
        k, tt = float(tick - self.ref[0]), float(t) - self.ref[1]
        decay = np.exp(-max(0, tick - self.last) * self.period / self.memory_s)
        self.sums = self.sums * decay + np.array([1.0, k, tt, k * k, k * tt])
        self.last = max(self.last, int(tick))

    def slope(self, settle_s: float, prior: tuple[float, float] | None = None
              ) -> float | None:
        """Fitted seconds per tick, or None while the points span less than ``settle_s``
        (uniformly spread points over T have a standard deviation of T / sqrt(12)).
        ``prior=(slope, span_s)`` weighs a known slope as if its points spanned
        ``span_s``."""
        w, sk, st, skk, skt = self.sums
        if w <= 1:
            return None
        mk = sk / w
        var = skk / w - mk * mk
        if var * self.period**2 * 12.0 < settle_s**2:
            return None
        cov = skt / w - mk * (st / w)
        if prior is not None:
            var0 = (prior[1] / self.period) ** 2 / 12.0
            return float((cov + var0 * prior[0]) / (var + var0))
        return float(cov / var) if var > 0 else None

    def at(self, tick: int, slope: float | None = None) -> float:
        """The line's time at ``tick`` (with ``slope``, or the fitted one)."""
        assert self.ref is not None
        w, sk, st, skk, skt = self.sums
        mk, mt = sk / w, st / w
        if slope is None:
            var = skk / w - mk * mk
            slope = (skt / w - mk * mt) / var if var > 0 else self.period
        return float(self.ref[1] + mt + slope * (tick - self.ref[0] - mk))


class StreamClock:
    """Ticks of an incoming stream's samples, from their LSL timestamps and a fitted line.

    Every sample advances one tick; a gap (lost samples) is declared only when samples
    arrive *later than the stream's own clock line* by more than one period, ``jitter_s``
    and the spread that batched timestamps have shown so far. The line
    ``t = a + slope * tick`` is a least-squares fit through the earliest-stamped sample of
    each pull (batched or delayed stamps are late, never early), with exponential
    forgetting (``memory_s``), so it follows a sender whose clock runs up to 2 % fast or
    slow. Judging each step between neighbouring stamps instead invents gaps wherever a
    sender stamps in batches (several samples with one stamp, then a jump), as
    BrainFlow's LSL streamer does. A gap inside one pull shows in the suffix minimum of
    the residuals: from the gap on, *every* later sample is late; its length is the
    median lateness of the late stretch against the usual median. The spread of batched
    stamps is the largest drawdown of the residuals (a batch falls behind the line sample
    by sample; a gap only ever jumps ahead).

    Parameters
    ----------
    fs
        Nominal rate in Hz.
    jitter_s
        Extra lateness tolerated before a gap is declared.
    memory_s
        Time constant of the line fit's forgetting.

    Attributes
    ----------
    lost_ticks
        Ticks declared lost so far.
    last_tick
        Tick of the latest sample (-1 before any).
    """

    def __init__(self, fs: float, jitter_s: float = 0.005, memory_s: float = 30.0):
        self.fs = float(fs)
        self.period = 1.0 / self.fs
        self.jitter_s = float(jitter_s)
        self.lost_ticks = 0
        self.last_tick = -1
        self._line = _DecayedLine(self.period, memory_s)
        self._spread = 0.0  # largest drawdown of batched stamps seen lately
        self._floor = 0.0  # usual residual of a pull's earliest-stamped sample
        self._mid = 0.0  # usual median residual of a pull
        self._batched = False  # runs of equal stamps seen

    @property
    def slope(self) -> float:
        """Fitted seconds per tick: the nominal period weighted as one second of points,
        so a few noisy points cannot tilt the line; clamped to 2 % of nominal (a sender
        clock further off is a fault, not drift)."""
        slope = self._line.slope(settle_s=0.0, prior=(self.period, 1.0))
        if slope is None:
            return self.period
        return min(max(slope, 0.98 * self.period), 1.02 * self.period)

    def ready(self, ts: np.ndarray, hold_max: int) -> int:
        """How many of ``ts`` can be judged now.

        A sender that stamps in batches (runs of equal stamps) may have a batch cut by the
        pull, even after its first sample, which alone looks late: for such a sender the
        trailing run waits for the next pull (at most ``hold_max`` samples, one batch of
        latency). A sender that stamps every sample waits for nothing.
        """
        n = len(ts)
        if n and not self._batched:
            self._batched = bool(np.any(np.diff(ts) == 0))
        if n == 0 or not self._batched:
            return n
        start = int(np.flatnonzero(np.r_[True, ts[:-1] != ts[-1]])[-1])
        return n if n - start > hold_max else start

    def time_of(self, tick: int) -> float:
        """LSL time of ``tick`` on the fitted line (the sender's dejittered clock)."""
        if self._line.ref is None:
            raise RuntimeError("StreamClock.time_of before any timestamp")
        return self._line.at(tick, self.slope)

    def ticks(self, ts: np.ndarray) -> np.ndarray:
        """Ticks of the next samples, stamped ``ts`` (in arrival order)."""
        ts = np.asarray(ts, dtype=np.float64)
        k = self.last_tick + 1 + np.arange(len(ts), dtype=np.int64)
        if len(ts) == 0:
            return k
        first_pull = self._line.ref is None
        if first_pull:  # the line starts through the earliest-stamped sample
            low = int(np.argmin(ts - k * self.period))
            self._line.add(int(k[low]), float(ts[low]))
        slope = self.slope
        r = ts - np.array([self._line.at(int(k[0]), slope)]) - (k - k[0]) * slope
        suffix_min = np.minimum.accumulate(r[::-1])[::-1]
        drawdown = float(np.max(r - suffix_min))
        if first_pull:
            self._spread, self._floor = drawdown, float(r.min())
        later = suffix_min - self._floor  # every sample from i on is this late
        tol = self.period + self.jitter_s + self._spread
        late = later > tol
        if first_pull:
            self._mid = float(np.median(r[~late]))
        if late.any():
            edges = np.flatnonzero(np.diff(np.where(late, later, 0.0)) > tol) + 1
            if late[0]:
                edges = np.r_[0, edges]
            shift = np.zeros(len(ts), dtype=np.int64)
            done = 0
            for a, b in zip(edges, [*edges[1:], len(ts)], strict=True):
                size = int(np.rint((np.median(r[a:b]) - self._mid) * self.fs))
                done = max(done + 1, size)  # each late stretch is at least one tick
                shift[a:b] = done
            k = k + shift
            r = r - shift * slope
            self.lost_ticks += int(shift[-1])
        low = int(np.argmin(r))
        self._line.add(int(k[low]), float(ts[low]))
        rmin, rmid = float(r[low]), float(np.median(r))
        # the usual residuals: down at once (an early stamp is never a delay), up slowly
        self._floor = rmin if rmin < self._floor else self._floor + 0.1 * (rmin - self._floor)
        self._mid += 0.1 * (rmid - self._mid)
        self._spread = max(drawdown, self._spread * 0.999)
        self.last_tick = int(k[-1])
        return k


def _desc_channels(full_info: Any) -> list[dict[str, str]]:
    """``<desc><channels><channel>`` children as dicts (empty if absent)."""
    out: list[dict[str, str]] = []
    ch = full_info.desc().child("channels").child("channel")
    while not ch.empty():
        out.append({k: ch.child_value(k) for k in ("label", "unit", "type", "muscle", "side")})
        ch = ch.next_sibling("channel")
    return out


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split()]
    except ValueError:
        return []


class LslSource(Source):
    """A numeric LSL stream read as an emgfb source.

    Lifecycle as for every :class:`Source`: construct (no I/O) -> :meth:`start` (resolve
    within ``timeout``, open the inlet, read the stream description) -> :meth:`read` ...
    -> :meth:`stop` / :meth:`close`.

    Ticks: the first sample is tick 0; each following sample advances one tick, unless
    samples arrive later than the stream's fitted clock line allows (:class:`StreamClock`):
    then the lateness, at the nominal rate, becomes a gap of lost ticks, counted in
    :attr:`stats`. Counts: see the module docstring. A stream silent for ``stall_s``
    (the sender stopped or vanished; liblsl keeps trying to recover it) makes
    :meth:`read` fail with one :class:`DeviceError` line and ``status.state == "failed"``.

    Parameters
    ----------
    prop, value
        The stream property to select on (``"name"``, ``"type"``, ...) and its value.
    timeout
        Seconds to wait for the stream to appear.
    scale_uv
        µV per count, one value or one per channel (used unless the stream was published
        by emgfb, whose own scale then wins).
    jitter_ms
        Timestamp jitter tolerated before samples count as lost.
    stall_s
        Seconds without a sample before the source fails (0: never).

    Attributes
    ----------
    uv_per_count, offset_counts
        The counts-to-µV scale (per channel) and zero offset of the delivered counts.
    montage
        The stream's own channel labels (muscle and side where it describes them, else
        ``other`` and alternating sides), or ``None`` if it names no channels.
    units
        The channels' units as the stream declares them (``""`` if it does not).
    stream_info
        Name, type, source_id and hostname of the resolved stream.
    """

    def __init__(self, prop: str, value: str, *, timeout: float = 5.0,
                 scale_uv: float | list[float] = DEFAULT_SCALE_UV, jitter_ms: float = 5.0,
                 stall_s: float = 2.0):
        super().__init__()
        if not timeout > 0:
            raise ConfigError(f"{_HINT}: timeout={timeout!r}: expected > 0")
        scales = np.atleast_1d(np.asarray(scale_uv, dtype=np.float64))
        if not np.all(scales > 0):
            raise ConfigError(f"{_HINT}: scale={scale_uv!r}: expected µV per count > 0")
        self.prop, self.value = prop, value
        self.timeout = float(timeout)
        self.jitter_s = max(0.0, float(jitter_ms)) / 1000.0
        if not stall_s >= 0:
            raise ConfigError(f"{_HINT}: stall={stall_s!r}: expected seconds >= 0")
        self.stall_s = float(stall_s)
        self._scale_arg = scales
        self.uv_per_count: np.ndarray | None = None
        self.offset_counts: float | np.ndarray = LSL_OFFSET_COUNTS
        self.montage: Montage | None = None
        self.units: list[str] = []
        self.stream_info: dict[str, str] = {}
        self.clock: StreamClock | None = None
        self._inlet: Any = None
        self._pylsl: Any = None
        self._lost_error: type[BaseException] = RuntimeError
        self._unit = np.ones(0)
        self._last_sample = 0.0
        self._held_x = np.zeros((0, 0))
        self._held_ts = np.zeros(0)
        self._clipped = 0

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Resolve the stream, open an inlet and derive :attr:`info` from its description."""
        if self._inlet is not None:
            return
        pylsl = self._pylsl = import_pylsl()
        short = resolve_stream(self.prop, self.value, self.timeout)
        fs = float(short.nominal_srate())
        n = int(short.channel_count())
        if fs <= 0:
            raise DeviceError(f"lsl://{self.value}: the stream has an irregular rate; "
                              "emgfb needs a regularly sampled stream")
        if short.channel_format() == pylsl.cf_string:
            raise DeviceError(f"lsl://{self.value}: a string stream (markers?) is not EMG")
        if n > 16:
            raise DeviceError(f"lsl://{self.value}: {n} channels; emgfb handles at most 16")
        self._lost_error = lsl_errors(pylsl)[0]
        inlet = pylsl.StreamInlet(short, max_buflen=60, recover=True)
        try:
            full = inlet.info(self.timeout)
            inlet.open_stream(self.timeout)
        except RuntimeError as exc:  # pylsl's TimeoutError/LostError derive from it
            raise DeviceError(f"lsl://{self.value}: cannot open the stream ({exc})") from None
        self._inlet = inlet
        self._configure(full, n, fs)
        self.clock = StreamClock(fs, self.jitter_s)
        self._held_x, self._held_ts = np.zeros((0, n)), np.zeros(0)
        self._last_sample = time.monotonic()
        self.status.state, self.status.detail = "streaming", self.info.line
        log.info("LSL inlet open: %s (%d ch at %g Hz from %s)", full.name(), n, fs,
                 full.hostname())

    def _configure(self, full: Any, n: int, fs: float) -> None:
        chans = _desc_channels(full)
        named = len(chans) == n and all(c["label"].strip() for c in chans)
        if len(chans) != n:
            chans = [{"label": f"ch{i}", "unit": "", "muscle": "", "side": ""}
                     for i in range(n)]
        self.units = [c["unit"].strip() for c in chans]
        units = [u.lower() for u in self.units]
        unknown = sorted({u for u in units if u not in UNIT_TO_UV})
        if unknown:
            log.warning("lsl://%s: channel unit(s) %s unknown; taken as microvolts",
                        self.value, ", ".join(repr(u) for u in unknown))
        self._unit = np.array([UNIT_TO_UV.get(u, 1.0) for u in units])
        acq = full.desc().child("acquisition")
        own_scale = _floats(acq.child_value("uv_per_count"))
        own_offset = _floats(acq.child_value("offset_counts"))
        if acq.child_value("manufacturer") == "emgfb" and own_scale and own_offset:
            # emgfb's own stream: reproduce the board's counts exactly
            self.uv_per_count = np.broadcast_to(np.asarray(own_scale), (n,)).astype(float)
            offset = np.broadcast_to(np.asarray(own_offset), (n,)).astype(float)
            self.offset_counts = float(offset[0]) if np.all(offset == offset[0]) else offset
            bits = int(acq.child_value("bits") or LSL_BITS)
        else:
            if self._scale_arg.size not in (1, n):
                raise ConfigError(f"{_HINT}: scale has {self._scale_arg.size} values, the "
                                  f"stream has {n} channels")
            self.uv_per_count = np.broadcast_to(self._scale_arg, (n,)).astype(float)
            self.offset_counts = LSL_OFFSET_COUNTS
            bits = LSL_BITS
        self._bits = bits
        if all(c.get("muscle") in MUSCLES and c.get("side") in SIDES for c in chans):
            self.montage = Montage(
                f"lsl-{full.name()}",
                tuple(Channel(c["label"], c["muscle"], c["side"]) for c in chans),
                full.desc().child("montage").child_value("affected_side") or "left",
            )
        elif named:  # another program's stream: keep its labels, invent no anatomy
            self.montage = Montage(
                f"lsl-{full.name()}",
                tuple(Channel(c["label"].strip(), "other", SIDES[i % 2])
                      for i, c in enumerate(chans)),
                "none",
            )
        self.stream_info = {"name": full.name(), "type": full.type(),
                            "source_id": full.source_id(), "hostname": full.hostname()}
        if any(self.units):
            self.stream_info["units"] = ",".join(self.units)
        vref_mv = float(self.uv_per_count[0]) * (1 << bits) / 1000.0
        info = BoardInfo(__version__, "lsl", n, fs, bits, vref_mv, "",
                         extra={f"lsl_{k}": v for k, v in self.stream_info.items()})
        self._info = dataclasses.replace(info, line=f"{info.format_line()} lsl={full.name()}")

    def stop(self) -> None:
        """Close the inlet (idempotent)."""
        inlet, self._inlet = self._inlet, None
        if inlet is not None:
            try:
                inlet.close_stream()
            finally:
                del inlet
            self.status.state = "stopped"
            log.info("LSL inlet closed: lsl://%s", self.value)

    # -- data ----------------------------------------------------------------------------

    def scale(self) -> tuple[np.ndarray, Any] | None:
        """The inlet's counts-to-µV scale (known after :meth:`start`)."""
        if self.uv_per_count is None:
            return None
        return self.uv_per_count, self.offset_counts

    def read(self, timeout: float | None = 0.1) -> Chunk | None:
        """Pull what has arrived, waiting up to ``timeout`` s for the first sample."""
        inlet = self._inlet
        if inlet is None:
            return None
        try:
            samples, stamps = inlet.pull_chunk(timeout=0.0, max_samples=_PULL_MAX)
            if not stamps and timeout:
                sample, ts = inlet.pull_sample(timeout=float(timeout))
                if sample is not None:
                    more, more_ts = inlet.pull_chunk(timeout=0.0, max_samples=_PULL_MAX - 1)
                    samples, stamps = [sample, *more], [ts, *more_ts]
        except self._lost_error:
            self._fail("the stream was lost")
        if not stamps:
            silent = time.monotonic() - self._last_sample
            if self.stall_s and silent > self.stall_s:
                self._fail(f"no sample for {silent:.1f} s (stall={self.stall_s:g}); the "
                           "sending program stopped or left the network")
            return None
        self._last_sample = time.monotonic()
        host_time, host_clock = time.time(), steady_clock()
        x = np.asarray(samples, dtype=np.float64).reshape(len(stamps), -1)
        ts = np.asarray(stamps, dtype=np.float64)
        if len(self._held_ts):  # the rest of a batch the last pull cut
            x, ts = np.concatenate([self._held_x, x]), np.concatenate([self._held_ts, ts])
        assert self.clock is not None
        ready = self.clock.ready(ts, hold_max=max(1, int(self.info.fs / 2)))
        self._held_x, self._held_ts = x[ready:], ts[ready:]
        if ready == 0:
            return None
        x, ts = x[:ready], ts[:ready]
        ticks = self.clock.ticks(ts)
        self.stats.lost_ticks = self.clock.lost_ticks
        counts = self._quantise(x)
        overrun = np.zeros(len(ticks), dtype=bool)
        self.stats.frames += len(ticks)
        return Chunk(ticks, counts, overrun, host_time, host_clock=host_clock)

    def _fail(self, why: str) -> None:
        self.status.state, self.status.detail = "failed", f"LSL: {why}"
        self.status.errors.append(why)
        raise DeviceError(f"lsl://{self.value}: {why}")

    def _quantise(self, x: np.ndarray) -> np.ndarray:
        assert self.uv_per_count is not None  # set by start()
        uv = x * self._unit
        bad = ~np.isfinite(uv)
        if bad.any():
            uv = np.where(bad, 0.0, uv)
        c = np.rint(uv / self.uv_per_count + self.offset_counts)
        clipped = (c < 0) | (c > 65535)
        if clipped.any():
            if self._clipped == 0:
                log.warning("lsl://%s: values beyond the ±%.0f µV range are clipped (raise "
                            "scale=)", self.value, float(np.max(self.uv_per_count)) * 32768)
            self._clipped += int(clipped.sum())
        return np.clip(c, 0, 65535).astype(np.uint16)


class LslMarkerInlet:
    """Another program's LSL marker stream, delivered as :class:`Marker` on the tick timeline.

    Each marker's timestamp (the sender's clock) plus ``inlet.time_correction()`` gives the
    local LSL time, which ``clock`` turns into the tick recorded at that moment. Markers
    that arrive before the clock is anchored wait for it. A background thread pulls and
    calls ``on_marker(marker)`` (which must be thread-safe, e.g. ``SessionWriter.add_marker``).

    Lifecycle: construct (no I/O) -> :meth:`start` (resolve within ``timeout``, open, first
    clock-offset estimate, start the thread) -> :meth:`stop`. ``with`` does both.

    Parameters
    ----------
    url
        ``lsl://NAME`` or ``lsl://type=Markers`` ...
    clock
        The tick <-> LSL time mapping of the session's samples.
    on_marker
        Called from the inlet thread for each marker.
    kind
        :attr:`Marker.kind` given to the markers.
    """

    def __init__(self, url: str, clock: SampleClock, on_marker: Callable[[Marker], None],
                 *, timeout: float = 5.0, kind: str = "lsl"):
        from emgfb.acquisition.source import parse_source_url

        scheme, path, query = parse_source_url(url)
        hint = f"--markers-from {url!r}"
        if scheme != "lsl":
            raise ConfigError(f"{hint}: expected an lsl:// URL, e.g. lsl://MyMarkers")
        self.prop, self.value = parse_lsl_url(path, query, hint)
        self.timeout = float(query_param(query, "timeout", float, timeout, hint))
        self.url = url
        self.clock = clock
        self.on_marker = on_marker
        self.kind = kind
        self.received = 0
        self.time_correction = 0.0
        self._inlet: Any = None
        self._worker: Worker | None = None

    def start(self) -> None:
        """Resolve and open the marker stream, estimate the clock offset, start pulling."""
        pylsl = import_pylsl()
        short = resolve_stream(self.prop, self.value, self.timeout)
        inlet = pylsl.StreamInlet(short, max_buflen=360, recover=True)
        try:
            inlet.open_stream(self.timeout)
        except Exception as exc:  # pylsl's TimeoutError/LostError
            raise DeviceError(f"{self.url}: cannot open the marker stream ({exc})") from None
        self._inlet = inlet
        self._worker = Worker("emgfb-lsl-markers", self._run).start()
        log.info("LSL marker inlet open: %s", self.url)

    @property
    def error(self) -> str | None:
        """Why the inlet thread stopped (it is logged), or None."""
        exc = self._worker.error if self._worker is not None else None
        return None if exc is None else f"{type(exc).__name__}: {exc}"

    def _run(self, stop: threading.Event) -> None:
        pending: list[tuple[str, float]] = []
        # a failure ends the Worker with .error set, logged once
        # The first offset estimate takes ~0.7 s: here, not in start(), so the session's
        # first chunk (which anchors the sample clock) is read without a backlog.
        # Markers meanwhile wait in the inlet's buffer.
        self.time_correction = float(self._inlet.time_correction(self.timeout))
        log.info("LSL marker clock offset %+.6f s (%s)", self.time_correction, self.url)
        while not stop.is_set():
            sample, ts = self._inlet.pull_sample(timeout=0.05)
            if sample is not None:
                label = " ".join(str(v) for v in sample)
                try:
                    self.time_correction = float(self._inlet.time_correction(0.5))
                except Exception as exc:  # keep the last estimate
                    log.debug("time_correction failed: %s", exc)
                pending.append((label, float(ts) + self.time_correction))
            if pending and self.clock.anchored:
                for label, t in pending:
                    marker = Marker(max(0, self.clock.tick_at(t)), label, self.kind)
                    self.on_marker(marker)
                    self.received += 1
                    log.info("LSL marker %r at tick %d", label, marker.tick)
                pending.clear()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread and close the inlet (idempotent)."""
        if self._worker is not None:  # kept: its error stays readable
            self._worker.stop(timeout)
        inlet, self._inlet = self._inlet, None
        if inlet is not None:
            inlet.close_stream()

    def __enter__(self) -> LslMarkerInlet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _open_lsl(path: str, query: dict[str, str]) -> LslSource:
    unknown = sorted(set(query) - set(_KNOWN))
    if unknown:
        raise ConfigError(f"{_HINT}: unknown parameter(s) {', '.join(unknown)}; expected "
                          f"{', '.join(_KNOWN)}")
    prop, value = parse_lsl_url(path, query)
    raw_scale = query.get("scale", "")
    try:
        scale = [float(v) for v in raw_scale.split(",")] if raw_scale else [DEFAULT_SCALE_UV]
    except ValueError:
        raise ConfigError(f"{_HINT}: scale={raw_scale!r}: expected µV per count, e.g. 0.1 "
                          "or 0.1,0.2,...") from None
    return LslSource(
        prop, value,
        timeout=query_param(query, "timeout", float, 5.0, _HINT),
        scale_uv=scale if len(scale) > 1 else scale[0],
        jitter_ms=query_param(query, "jitter_ms", float, 5.0, _HINT),
        stall_s=query_param(query, "stall", float, 2.0, _HINT),
    )


register_scheme("lsl", _open_lsl)
