"""One state per channel: good / check / bad / no signal, with its reason, fed chunk by chunk.

This module owns :class:`ChannelStateTracker` (the impedance-check proxies of DOMAIN.md §6
turned into one verdict per channel that every consumer obeys), :class:`ChannelState`,
its result, and :class:`StateLog`, which turns the verdicts into the markers a recording
keeps. The tracker keeps the last ``window_s`` of raw µV (with NaN where a sample was
lost, per channel), the ADC counts when given and the filtered signal when given, and every
``update_s`` computes per channel:

- ``missing``: share of lost samples in the window (a NULL cell or a gap on this channel
  only) → ``no_signal``;
- ``flat``: raw SD below ``flat_sd_uv`` or a 1st-99th percentile span of at most one ADC
  count (electrode off: flat at a rail, at mid-scale, or a one-count dither) → ``bad``;
- ``clipping``: % of samples at the ADC rails;
- ``saturation``: % of samples in runs of at least :data:`PLATEAU_RUN` equal values at the
  window's extreme, far from the median (front-end output saturating below the ADC rails);
- ``mains``: the hum left *after* mains removal (measured on the filtered signal when given,
  else the raw hum less the remover's guaranteed :data:`MAINS_REMOVAL_DB`), in dB over the
  EMG-band power: what the hum adds to the rest envelope, not how much hum the removal took;
- ``motion``: power in :data:`MOTION_BAND_HZ` over 2 Hz..upper corner, after removing the
  window's linear trend (a drift the filters remove is not an artefact);
- ``rest_rms``: the rest level, a low percentile of the band RMS over the last
  ``history_s`` (a contraction is activity, not a fault) → at worst ``check``.

The channel's state is the worst of its indicators; its reason names the *first* non-good
indicator in :data:`HINTS` order, which runs from causes to symptoms (a clipping channel also
has a high level: the reason names the clipping). :meth:`ChannelStateTracker.current` turns
every channel to ``no_signal`` when no data has arrived for ``stale_s``. Per-chunk cost is a
ring-buffer copy; the FFT runs a few times a second. Imports numpy, ``emgfb.dsp`` modules
and the ground floor's records only. Thresholds and their reasons: ``docs/metrics.md``
(channel state).
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emgfb.dsp.settings import DspConfig, check_sample_rate
from emgfb.dsp.stages import MAX_HIGH_FRACTION
from emgfb.records import Marker

#: Channel states, best to worst.
GOOD, CHECK, BAD, NO_SIGNAL = "good", "check", "bad", "no_signal"
#: Indicator level for what cannot be measured (no counts, nothing assessed yet).
UNKNOWN = "unknown"
#: Older name of :data:`CHECK`.
WARN = CHECK
STATES = (GOOD, CHECK, BAD, NO_SIGNAL)
_RANK = {UNKNOWN: 0, GOOD: 1, CHECK: 2, BAD: 3, NO_SIGNAL: 4}
#: Low-frequency band of movement artefacts and intermittent contact (Hz).
MOTION_BAND_HZ = (2.0, 20.0)
#: Half-width of each mains band in the spectrum (Hz): covers hum ±0.5 Hz off nominal plus
#: the main lobe of a 1 s Hann window (±2 bins).
MAINS_HALF_WIDTH_HZ = 2.5
#: Hum suppression the mains removal guarantees (dB), used when no filtered signal is given.
MAINS_REMOVAL_DB = 30.0
#: Equal consecutive samples at the window's extreme that count as a saturated plateau.
PLATEAU_RUN = 3

#: Plain-language advice per indicator, causes before symptoms (the first non-good one wins).
HINTS: dict[str, str] = {
    "missing": "no samples from this channel: check the board and the cable",
    "flat": "flat line: electrode off or lead broken; check contact and cable",
    "clipping": "signal hits the ADC limits: check electrode contact and the reference "
                "electrode",
    "saturation": "amplifier saturates: check electrode contact and the reference electrode",
    "motion": "movement artefact or loose contact: keep the face and the cable still, "
              "press the electrode on",
    "mains": "mains hum reaches the envelope: press the electrodes on, check the reference "
             "electrode, run the laptop on battery",
    "rest_rms": "high level at rest: if the patient is relaxed, re-prepare the skin",
}

#: Kind of the markers that store channel states in a recording (:class:`StateLog`).
MARKER_KIND = "channel"
#: A state change is stored once the new state has held this long (s).
STATE_LOG_HOLD_S = 1.0

#: Advice when no data arrives from the board at all (every channel at once).
STALE_HINT = "check the USB cable and the board's power; emgfb reconnects by itself"


@dataclass(frozen=True)
class ChannelState:
    """The verdict on one channel over the last window.

    Attributes
    ----------
    channel
        Channel index.
    state
        ``"good"`` (trust it), ``"check"`` (usable, with the caveat in ``reason``),
        ``"bad"`` (do not show or score it: electrode off, clipping, saturation) or
        ``"no_signal"`` (no samples, or nothing assessed yet).
    reason
        One line for the clinician: ``"signal looks good"`` when good.
    indicators
        ``{name: "good"|"check"|"bad"|"no_signal"|"unknown"}`` for every :data:`HINTS` key.
    rest_rms_uv
        Rest level: the ``rest_percentile`` of the EMG-band RMS (mains bands left out) over
        the last ``history_s``; relaxed facial muscle is 1-3 µV.
    level_rms_uv
        EMG-band RMS of the current window (rises with a contraction).
    mains_db
        Hum left after mains removal over the EMG-band power, dB; the rest envelope is
        ``sqrt(1 + 10**(mains_db/10))`` times its hum-free value.
    raw_mains_db
        Hum in the raw signal over the EMG-band power, dB (before removal; information).
    clipping_pct, saturation_pct
        % of the window at the ADC rails / on a saturated plateau (NaN: not measurable).
    raw_sd_uv
        SD of the raw signal; near zero is a flat line.
    motion_ratio
        Detrended power in :data:`MOTION_BAND_HZ` over the power from 2 Hz to the upper
        band corner.
    missing_pct
        % of the window's samples lost on this channel.
    """

    channel: int
    state: str = NO_SIGNAL
    reason: str = "collecting signal"
    indicators: dict[str, str] = field(default_factory=dict)
    rest_rms_uv: float = float("nan")
    level_rms_uv: float = float("nan")
    mains_db: float = float("nan")
    raw_mains_db: float = float("nan")
    clipping_pct: float = float("nan")
    saturation_pct: float = float("nan")
    raw_sd_uv: float = float("nan")
    motion_ratio: float = float("nan")
    missing_pct: float = float("nan")

    @property
    def usable(self) -> bool:
        """True when the envelope may be shown (good, or check with a caveat)."""
        return self.state in (GOOD, CHECK)

    @property
    def states(self) -> dict[str, str]:
        """Older name of :attr:`indicators`."""
        return self.indicators

    @property
    def hint(self) -> str:
        """Older name of :attr:`reason`."""
        return self.reason


#: Older name of :class:`ChannelState`.
ChannelQuality = ChannelState


def grade(value: float, warn: float, bad: float) -> str:
    """``"bad"`` at or above ``bad``, ``"check"`` at or above ``warn``, else ``"good"``;
    ``"unknown"`` when the value is not finite (not measurable)."""
    if not np.isfinite(value):
        return UNKNOWN
    return BAD if value >= bad else CHECK if value >= warn else GOOD


def summarise(states: dict[str, str]) -> tuple[str, str]:
    """The worst of a channel's indicator levels and the reason for it: the hint of the
    first non-good indicator in :data:`HINTS` order (causes before symptoms)."""
    if not states:
        return NO_SIGNAL, "collecting signal"
    worst = max(states.values(), key=_RANK.__getitem__)
    if worst in (GOOD, UNKNOWN):
        return (GOOD if worst == GOOD else NO_SIGNAL,
                "signal looks good" if worst == GOOD else "collecting signal")
    for name, hint in HINTS.items():
        if states.get(name) in (CHECK, BAD, NO_SIGNAL):
            return worst, hint
    return worst, "signal looks good"  # pragma: no cover - every indicator has a hint


class ChannelStateTracker:
    """Rolling per-channel state, fed chunk by chunk (pure: no clock, no I/O).

    Lifecycle: construct once per stream → :meth:`update` with every chunk (raw µV, and the
    counts and filtered signal of the same rows when available) → read :attr:`latest`, or
    :meth:`current` with the seconds since data last arrived → :meth:`reset` on a new
    stream or after a seek.

    Parameters
    ----------
    config
        DSP settings (``[quality]`` thresholds; band-pass and notch for the bands).
    fs
        Sampling rate in Hz.
    n_channels
        Number of channels.
    adc_max
        Largest ADC count (1023 for 10 bits); the clipping indicator needs it and counts.
    uv_per_count
        µV per ADC count (scalar or per channel): one count is the dither floor of the flat
        test; None: only ``flat_sd_uv`` applies when no counts are given.
    mains_hz
        Line frequency in the signal's sample time (measured, e.g. 50 Hz moved by the board's
        clock error); default: the configured nominal.
    """

    def __init__(self, config: DspConfig, fs: float, n_channels: int,
                 adc_max: int | None = None, uv_per_count: float | np.ndarray | None = None,
                 mains_hz: float | None = None):
        self.config = config
        self.fs = check_sample_rate(fs)
        self.n_channels = int(n_channels)
        self.adc_max = adc_max
        self.uv_per_count = (None if uv_per_count is None else np.broadcast_to(
            np.asarray(uv_per_count, float), (self.n_channels,)).copy())
        self.mains_hz = float(mains_hz or config.notch.mains_hz)
        q = config.quality
        self.size = max(16, round(q.window_s * self.fs))
        self.update_every = max(1, round(q.update_s * self.fs))
        self._hann = np.hanning(self.size)
        self._bands_full = self._bands(np.fft.rfftfreq(self.size, 1.0 / self.fs))
        self.reset()

    def reset(self) -> None:
        """Forget the buffered signal and the rest-level history."""
        n, c = self.size, self.n_channels
        self._uv = np.full((n, c), np.nan)
        self._filt = np.full((n, c), np.nan)
        self._counts = np.full((n, c), np.nan)
        self._has_counts = False
        self._has_filtered = False
        self._pos = 0
        self._filled = 0
        self._since = 0
        keep = max(1, round(self.config.quality.history_s / self.config.quality.update_s))
        self._history: collections.deque[np.ndarray] = collections.deque(maxlen=keep)
        self._latest = [ChannelState(ch) for ch in range(c)]

    @property
    def latest(self) -> list[ChannelState]:
        """The most recent assessment (without feeding new samples)."""
        return self._latest

    def current(self, seconds_without_data: float, ended: bool = False
                ) -> list[ChannelState]:
        """:attr:`latest`, or every channel ``no_signal`` when no data has arrived for more
        than ``stale_s``: from a board, unplugged or stalled (with :data:`STALE_HINT`); from
        a recording that has been replayed to its end (``ended``), simply ended."""
        stale = self.config.quality.stale_s
        if not seconds_without_data > stale:
            return self._latest
        if ended:
            reason = "the recording has ended"
        elif np.isfinite(seconds_without_data):
            reason = f"no data from the board for {seconds_without_data:.1f} s: {STALE_HINT}"
        else:
            reason = "waiting for data from the board"
        return [dataclasses.replace(s, state=NO_SIGNAL, reason=reason) for s in self._latest]

    def update(self, uv_chunk: np.ndarray, counts_chunk: np.ndarray | None = None,
               filtered_chunk: np.ndarray | None = None) -> list[ChannelState]:
        """Add a chunk and return the current assessment, one entry per channel.

        Parameters
        ----------
        uv_chunk
            ``(n, n_channels)`` raw (unfiltered) signal in µV; NaN marks a lost sample of
            that channel only.
        counts_chunk
            The same rows as ADC counts (clipping, saturation, one-count flat test).
        filtered_chunk
            The same rows after mains removal and band-pass (the pipeline's filtered µV,
            NaN while settling); the hum left in it is what ``mains`` grades.
        """
        uv = np.asarray(uv_chunk, dtype=float)
        if uv.ndim != 2 or uv.shape[1] != self.n_channels:
            raise ValueError(f"expected shape (n, {self.n_channels}), got {uv.shape}")
        counts = None
        if counts_chunk is not None:
            counts = np.asarray(counts_chunk, dtype=float)
            self._has_counts = True
        filt = None
        if filtered_chunk is not None:
            filt = np.asarray(filtered_chunk, dtype=float)
            self._has_filtered = True
        self._write(uv, counts, filt)
        if self._since >= self.update_every and self._filled >= min(self.size,
                                                                    self.update_every):
            self._since = 0
            self._latest = self._assess()
        return self._latest

    # ------------------------------------------------------------------ internals
    def _write(self, uv: np.ndarray, counts: np.ndarray | None, filt: np.ndarray | None
               ) -> None:
        n = len(uv)
        self._since += n
        if n > self.size:
            uv = uv[-self.size:]
            counts = counts[-self.size:] if counts is not None else None
            filt = filt[-self.size:] if filt is not None else None
            n = self.size
        idx = (self._pos + np.arange(n)) % self.size
        self._uv[idx] = uv
        self._counts[idx] = counts if counts is not None else np.nan
        self._filt[idx] = filt if filt is not None else np.nan
        self._pos = (self._pos + n) % self.size
        self._filled = min(self.size, self._filled + n)

    def _window(self, buf: np.ndarray) -> np.ndarray:
        if self._filled == self.size:
            return np.roll(buf, -self._pos, axis=0)
        return buf[:self._filled]

    def _spectrum(self, x: np.ndarray, valid: np.ndarray, detrend: bool) -> np.ndarray:
        """One-sided power spectrum per channel (sum over bins ≈ mean square); lost samples
        are filled with the channel's fit so they add no power."""
        n = len(x)
        t = np.linspace(-1.0, 1.0, n)
        y = np.where(valid, x, 0.0)
        cnt = np.maximum(valid.sum(axis=0), 1)
        mean = y.sum(axis=0) / cnt
        y = np.where(valid, x - mean, 0.0)
        if detrend:
            tv = np.where(valid, t[:, None], 0.0)
            tm = tv.sum(axis=0) / cnt
            tc = np.where(valid, t[:, None] - tm, 0.0)
            slope = (tc * y).sum(axis=0) / np.maximum((tc * tc).sum(axis=0), 1e-12)
            y = np.where(valid, y - slope * tc, 0.0)
        win = self._hann if n == self.size else np.hanning(n)
        spec = np.abs(np.fft.rfft(y * win[:, None], axis=0)) ** 2
        spec[1:] *= 2.0
        spec /= cnt * np.sum(win * win)  # lost samples were zeros: scale by the kept ones
        return spec

    def _assess(self) -> list[ChannelState]:
        q = self.config.quality
        n = self._filled
        x = self._window(self._uv)
        valid = ~np.isnan(x)
        bands = self._bands_full if n == self.size else self._bands(
            np.fft.rfftfreq(n, 1.0 / self.fs))
        total, mains, emg, motion_band = bands
        cnt = valid.sum(axis=0)
        missing = 100.0 * (1.0 - cnt / n)
        with np.errstate(invalid="ignore", divide="ignore"):
            xs = np.where(valid, x, np.nan)
            raw_sd = np.nanstd(xs, axis=0) if cnt.all() else np.array(
                [np.nanstd(xs[:, c]) if cnt[c] > 1 else np.nan for c in range(x.shape[1])])
        spec = self._spectrum(x, valid, detrend=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            emg_power = spec[emg].sum(axis=0)
            floor_density = emg_power / max(int(emg.sum()), 1)
            raw_hum = np.maximum(spec[mains].sum(axis=0) - floor_density * mains.sum(),
                                 1e-12 * emg_power)
            raw_mains_db = 10.0 * np.log10(raw_hum / emg_power)
            tot = spec[total].sum(axis=0)
            motion = np.where(tot > 0, spec[motion_band].sum(axis=0) / tot, np.nan)
        level = np.sqrt(emg_power)
        residual_db = self._residual_hum_db(raw_mains_db, emg_power, mains, emg)
        self._history.append(level)
        hist = np.array(self._history)
        with np.errstate(invalid="ignore"):
            rest = np.nanpercentile(hist, q.rest_percentile, axis=0) if np.isfinite(
                hist).any() else np.full(self.n_channels, np.nan)
        clip_pct, sat_pct, flat_counts = self._counts_indicators(valid)
        out = []
        for c in range(self.n_channels):
            ind: dict[str, str] = {}
            ind["missing"] = NO_SIGNAL if missing[c] >= q.missing_pct else GOOD
            if ind["missing"] == NO_SIGNAL:
                out.append(self._state(c, ind, missing_pct=float(missing[c])))
                continue
            flat = bool(raw_sd[c] < q.flat_sd_uv or flat_counts[c])
            ind["flat"] = BAD if flat else GOOD
            ind["clipping"] = grade(clip_pct[c], q.clipping_warn_pct, q.clipping_bad_pct)
            ind["saturation"] = UNKNOWN if flat else grade(
                sat_pct[c], q.clipping_warn_pct, q.clipping_bad_pct)
            ind["motion"] = UNKNOWN if flat else grade(motion[c], q.motion_ratio_warn,
                                                       q.motion_ratio_bad)
            ind["mains"] = UNKNOWN if flat else grade(residual_db[c], q.mains_db_warn,
                                                      q.mains_db_bad)
            # a high rest level is never "bad": a held contraction looks the same
            r = grade(rest[c], q.rest_rms_warn_uv, q.rest_rms_bad_uv)
            ind["rest_rms"] = UNKNOWN if flat else (CHECK if r == BAD else r)
            out.append(self._state(
                c, ind, rest_rms_uv=float(rest[c]), level_rms_uv=float(level[c]),
                mains_db=float(residual_db[c]), raw_mains_db=float(raw_mains_db[c]),
                clipping_pct=float(clip_pct[c]), saturation_pct=float(sat_pct[c]),
                raw_sd_uv=float(raw_sd[c]), motion_ratio=float(motion[c]),
                missing_pct=float(missing[c])))
        return out

    @staticmethod
    def _state(c: int, ind: dict[str, str], **values: float) -> ChannelState:
        state, reason = summarise(ind)
        return ChannelState(c, state, reason, ind, **values)

    def _residual_hum_db(self, raw_mains_db: np.ndarray, emg_power: np.ndarray,
                         mains: np.ndarray, emg: np.ndarray) -> np.ndarray:
        """Hum left after mains removal over the EMG-band power (dB)."""
        if not self._has_filtered:
            return raw_mains_db - MAINS_REMOVAL_DB
        f = self._window(self._filt)
        fvalid = ~np.isnan(f)
        out = np.full(self.n_channels, np.nan)  # filters still settling: not measurable
        enough = fvalid.sum(axis=0) >= len(f) // 2
        if not enough.any():
            return out
        spec = self._spectrum(f, fvalid, detrend=False)
        with np.errstate(divide="ignore", invalid="ignore"):
            femg = spec[emg].sum(axis=0)
            floor = femg / max(int(emg.sum()), 1)
            hum = np.maximum(spec[mains].sum(axis=0) - floor * mains.sum(), 1e-12 * femg)
            db = 10.0 * np.log10(hum / femg)
        return np.where(enough, db, out)

    def _counts_indicators(self, valid: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """% at the ADC rails, % on saturated plateaus, and the one-count flat test."""
        c = self.n_channels
        nan = np.full(c, np.nan)
        if self._has_counts:
            k = self._window(self._counts)
            step = np.ones(c)
            uv_scale = self.uv_per_count if self.uv_per_count is not None else step
        elif self.uv_per_count is not None:
            k = self._window(self._uv)
            step = self.uv_per_count
            uv_scale = np.ones(c)
        else:
            return nan, nan, np.zeros(c, bool)
        kv = np.where(valid & ~np.isnan(k), k, np.nan)
        clip = nan.copy()
        if self._has_counts and self.adc_max is not None:
            with np.errstate(invalid="ignore"):
                at_rail = (kv <= 0) | (kv >= self.adc_max)
            clip = 100.0 * at_rail.sum(axis=0) / np.maximum(valid.sum(axis=0), 1)
        sat = np.zeros(c)
        flat = np.zeros(c, bool)
        min_span = self.config.quality.saturation_min_uv
        for ch in range(c):
            col = kv[:, ch]
            col = col[~np.isnan(col)]
            if len(col) < 16:
                sat[ch] = np.nan
                continue
            p1, p99 = np.percentile(col, (1.0, 99.0))
            flat[ch] = (p99 - p1) <= 1.5 * step[ch]
            med = float(np.median(col))
            runs = 0
            for extreme in (col.max(), col.min()):
                if abs(extreme - med) * uv_scale[ch] < min_span:
                    continue
                runs += _plateau_samples(col == extreme, PLATEAU_RUN)
            sat[ch] = 100.0 * runs / len(col)
        return clip, sat, flat

    def _bands(self, f: np.ndarray) -> tuple[np.ndarray, ...]:
        cfg = self.config
        high = min(cfg.bandpass.high_hz, MAX_HIGH_FRACTION * self.fs)
        mains = np.zeros(len(f), bool)
        for k in range(1, int(high // self.mains_hz) + 1):
            mains |= np.abs(f - k * self.mains_hz) <= MAINS_HALF_WIDTH_HZ
        total = (f >= MOTION_BAND_HZ[0]) & (f <= high)
        return (total, mains & total, (f >= cfg.bandpass.low_hz) & (f <= high) & ~mains,
                (f >= MOTION_BAND_HZ[0]) & (f < MOTION_BAND_HZ[1]))


class StateLog:
    """The channel states a recording keeps: markers of kind :data:`MARKER_KIND`.

    Feed it every assessment with the tick of its newest sample. The first assessment (not
    the placeholder before the tracker's window has filled) gives one marker per channel
    (the state the recording starts in); after that a channel gets a marker when its state
    changes and the new state holds for ``hold_ticks``, placed at the tick where it changed,
    so a channel that flickers on a threshold does not fill the file.
    Labels read ``"<channel label>: <state> — <reason>"``.
    """

    def __init__(self, labels: list[str] | tuple[str, ...], hold_ticks: int):
        self.labels = list(labels)
        self.hold_ticks = int(hold_ticks)
        self._logged: list[str | None] = [None] * len(self.labels)
        self._pending: list[tuple[ChannelState, int] | None] = [None] * len(self.labels)

    def feed(self, states: list[ChannelState], tick: int) -> list[Marker]:
        """Markers for the state changes that ``states`` (at ``tick``) confirms."""
        out = []
        for s in states:
            ch = s.channel
            if not s.indicators:  # nothing assessed yet ("collecting signal")
                continue
            if s.state == self._logged[ch]:
                self._pending[ch] = None
                continue
            pending = self._pending[ch]
            if pending is None or pending[0].state != s.state:
                self._pending[ch] = pending = (s, tick)
            if self._logged[ch] is None or tick - pending[1] >= self.hold_ticks:
                first, at = pending
                out.append(Marker(at, f"{self.labels[ch]}: {first.state.replace('_', ' ')}"
                                      f" — {first.reason}", MARKER_KIND))
                self._logged[ch], self._pending[ch] = first.state, None
        return out

    @staticmethod
    def parse(marker: Marker, labels: Iterable[str] = ()) -> tuple[str, str, str] | None:
        """``(channel label, state, reason)`` of a marker this class wrote, else None.
        ``labels``: the recording's channel labels, so a label that itself holds ": " reads
        whole; a label not among them is taken to end at the first ": "."""
        text = marker.label
        if marker.kind != MARKER_KIND or ": " not in text:
            return None
        label = max((lb for lb in labels if text.startswith(lb + ": ")), key=len,
                    default=text.split(": ", 1)[0])
        state, _, reason = text[len(label) + 2:].partition(" — ")
        state = state.replace(" ", "_")
        return (label, state, reason) if state in STATES else None


def stored_states(markers: list[Marker], first_tick: int, end_tick: int,
                  labels: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """What a recording's channel-state markers say, per channel label (``labels``: the
    recording's, see :meth:`StateLog.parse`): the share of
    ``[first_tick, end_tick)`` spent in each state (``{"good": 0.97, ...}``, time before a
    channel's first marker left out) and the reason of the worst state it was in.
    Empty when the recording stores no states (older files, imports)."""
    by_label: dict[str, list[tuple[int, str, str]]] = {}
    for m in sorted(markers, key=lambda m: m.tick):
        parsed = StateLog.parse(m, labels)
        if parsed is not None:
            by_label.setdefault(parsed[0], []).append((m.tick, parsed[1], parsed[2]))
    out: dict[str, dict[str, Any]] = {}
    for label, changes in by_label.items():
        spans: dict[str, int] = {}
        for (tick, state, _), nxt in zip(changes, [*changes[1:], (end_tick, "", "")],
                                         strict=True):
            lo, hi = max(tick, first_tick), min(nxt[0], end_tick)
            spans[state] = spans.get(state, 0) + max(0, hi - lo)
        total = sum(spans.values())
        worst = max(changes, key=lambda c: _RANK[c[1]])
        out[label] = {"shares": {s: n / total for s, n in spans.items() if n} if total else {},
                      "worst": worst[1], "worst_reason": worst[2]}
    return out


#: Why a recording holds no channel states: nothing assessed them while it was made.
NOT_ASSESSED = "nothing assessed them while recording: emgfb record, an import or an older file"


def stored_state_text(entry: dict[str, Any] | None) -> str:
    """One channel's :func:`stored_states` entry in words: ``"good throughout"``, else its
    worst state with that state's share of the time and its reason; ``"not assessed"``
    when the recording stores no state for the channel."""
    if entry is None:
        return "not assessed"
    worst = entry["worst"]
    if worst == GOOD:
        return "good throughout"
    share = entry["shares"].get(worst, 0.0)
    return f"{worst.replace('_', ' ')} {100 * share:.0f} % of the time ({entry['worst_reason']})"


def _plateau_samples(hit: np.ndarray, min_run: int) -> int:
    """Samples of ``hit`` that lie in runs of at least ``min_run`` consecutive True."""
    if not hit.any():
        return 0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], hit.astype(np.int8), [0]])))
    lengths = edges[1::2] - edges[::2]
    return int(lengths[lengths >= min_run].sum())


#: Older name of :class:`ChannelStateTracker`.
SignalQuality = ChannelStateTracker
