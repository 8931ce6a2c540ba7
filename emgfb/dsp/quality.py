"""Live signal-quality indicators per channel, the impedance-check proxies of DOMAIN.md §6.

This module owns :class:`SignalQuality`, which keeps the last ``window_s`` of raw µV (and
the ADC-rail flags of the raw counts) per channel and, every ``update_s``, computes from one
Hann-windowed spectrum: resting RMS in the EMG band (mains bins excluded), the mains hum
over the EMG floor (dB), the power ratio below 20 Hz (motion artefact), the raw SD (flat line =
electrode off or shorted) and the % of samples at the ADC rails (clipping). Each indicator
gets a good/warn/bad state from the ``[quality]`` thresholds, and each channel a one-line
plain-language hint. Per-chunk cost is a ring-buffer copy; the FFT runs a few times a
second. Imports numpy and ``emgfb.dsp`` modules only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from emgfb.dsp.settings import DspConfig, check_sample_rate
from emgfb.dsp.stages import MAX_HIGH_FRACTION

GOOD, WARN, BAD, UNKNOWN = "good", "warn", "bad", "unknown"
_RANK = {UNKNOWN: 0, GOOD: 1, WARN: 2, BAD: 3}
MOTION_BAND_HZ = (1.0, 20.0)
MAINS_HALF_WIDTH_HZ = 2.0

#: Plain-language advice per indicator, in order of priority (first bad/warn one wins).
HINTS: dict[str, str] = {
    "flat": "flat line: electrode off or lead broken; check contact and cable",
    "clipping": "signal hits the ADC limits: check electrode contact and the reference "
                "electrode",
    "mains": "strong mains hum: press the electrodes on, check the reference electrode, "
             "run the laptop on battery",
    "motion": "movement artefact: keep the face and the cable still, tape the lead down",
    "rest_rms": "high level at rest: ask the patient to relax, or re-prepare the skin",
}


@dataclass(frozen=True)
class ChannelQuality:
    """Quality of one channel over the last window.

    Attributes
    ----------
    channel
        Channel index.
    rest_rms_uv
        RMS (µV) in the EMG band with the mains bins left out; 1-3 µV at relaxed rest.
    mains_db
        Mains hum over the EMG floor in dB: ``10*log10`` of the power in the mains bands over
        the power in the EMG band without them. Leaky notch territory above ~30 dB.
    clipping_pct
        % of samples at 0 or the ADC maximum (NaN without raw counts and ADC range).
    raw_sd_uv
        SD of the raw µV signal; near zero is a flat line.
    motion_ratio
        Power in 1-20 Hz / power in 1 Hz..upper band corner.
    states
        ``{"rest_rms"|"mains"|"clipping"|"flat"|"motion": "good"|"warn"|"bad"|"unknown"}``.
    state
        Worst of ``states`` (``"unknown"`` until enough signal has arrived).
    hint
        One line of advice for the clinician.
    """

    channel: int
    rest_rms_uv: float = float("nan")
    mains_db: float = float("nan")
    clipping_pct: float = float("nan")
    raw_sd_uv: float = float("nan")
    motion_ratio: float = float("nan")
    states: dict[str, str] = field(default_factory=dict)
    state: str = UNKNOWN
    hint: str = "collecting signal"


def grade(value: float, warn: float, bad: float) -> str:
    """``"bad"`` at or above ``bad``, ``"warn"`` at or above ``warn``, else ``"good"``;
    ``"unknown"`` when the value is not finite (not measurable)."""
    if not np.isfinite(value):
        return UNKNOWN
    return BAD if value >= bad else WARN if value >= warn else GOOD


def summarise(states: dict[str, str]) -> tuple[str, str]:
    """The worst of a channel's indicator states and the advice for it: the hint of the
    first bad indicator in :data:`HINTS` order, else of the first warning one."""
    worst = max(states.values(), key=_RANK.__getitem__)
    for level in (BAD, WARN):
        for name, hint in HINTS.items():
            if states.get(name) == level:
                return worst, hint
    return worst, "signal looks good"


class SignalQuality:
    """Rolling per-channel quality indicators, fed chunk by chunk.

    Parameters
    ----------
    config
        DSP settings (``[quality]`` thresholds, band-pass and notch for the bands).
    fs
        Sampling rate in Hz.
    n_channels
        Number of channels.
    adc_max
        Largest ADC count (e.g. 1023 for 10 bits); clipping needs it and raw counts.
    """

    def __init__(self, config: DspConfig, fs: float, n_channels: int,
                 adc_max: int | None = None):
        self.config = config
        self.fs = check_sample_rate(fs)
        self.n_channels = int(n_channels)
        self.adc_max = adc_max
        q = config.quality
        self.size = max(16, round(q.window_s * self.fs))
        self.update_every = max(1, round(q.update_s * self.fs))
        self._hann = np.hanning(self.size)
        self._total, self._mains, self._emg, self._motion = self._masks(
            np.fft.rfftfreq(self.size, 1.0 / self.fs))
        self.reset()

    def reset(self) -> None:
        """Forget the buffered signal."""
        self._uv = np.zeros((self.size, self.n_channels))
        self._clip = np.zeros((self.size, self.n_channels), dtype=bool)
        self._has_counts = False
        self._pos = 0
        self._filled = 0
        self._since = 0
        self._latest = [ChannelQuality(c) for c in range(self.n_channels)]

    @property
    def latest(self) -> list[ChannelQuality]:
        """The most recent assessment (without feeding new samples)."""
        return self._latest

    def update(self, uv_chunk: np.ndarray, counts_chunk: np.ndarray | None = None
               ) -> list[ChannelQuality]:
        """Add a chunk and return the current assessment, one entry per channel.

        Parameters
        ----------
        uv_chunk
            ``(n, n_channels)`` raw (unfiltered) signal in µV; NaN rows (lost samples) are
            skipped.
        counts_chunk
            The same rows as ADC counts, for the clipping indicator (needs ``adc_max``).
        """
        uv = np.asarray(uv_chunk, dtype=float)
        if uv.ndim != 2 or uv.shape[1] != self.n_channels:
            raise ValueError(f"expected shape (n, {self.n_channels}), got {uv.shape}")
        clip = None
        if counts_chunk is not None and self.adc_max is not None:
            counts = np.asarray(counts_chunk)
            clip = (counts <= 0) | (counts >= self.adc_max)
            self._has_counts = True
        if np.isnan(uv.sum()):
            keep = ~np.isnan(uv).any(axis=1)
            uv = uv[keep]
            clip = clip[keep] if clip is not None else None
        self._write(uv, clip)
        if self._since >= self.update_every and self._filled >= min(self.size,
                                                                    self.update_every):
            self._since = 0
            self._latest = self._assess()
        return self._latest

    def _write(self, uv: np.ndarray, clip: np.ndarray | None) -> None:
        n = len(uv)
        if n > self.size:
            uv, n = uv[-self.size:], self.size
            clip = clip[-self.size:] if clip is not None else None
        idx = (self._pos + np.arange(n)) % self.size
        self._uv[idx] = uv
        self._clip[idx] = clip if clip is not None else False
        self._pos = (self._pos + n) % self.size
        self._filled = min(self.size, self._filled + n)
        self._since += len(uv)

    def _assess(self) -> list[ChannelQuality]:
        q = self.config.quality
        n = self._filled
        if n == self.size:
            x = np.roll(self._uv, -self._pos, axis=0)
            win = self._hann
            mask_total, mask_mains, mask_emg, mask_motion = (
                self._total, self._mains, self._emg, self._motion)
        else:  # window not full yet: analyse what there is
            x = self._uv[:n]
            win = np.hanning(n)
            f = np.fft.rfftfreq(n, 1.0 / self.fs)
            mask_total, mask_mains, mask_emg, mask_motion = self._masks(f)
        x = x - x.mean(axis=0)
        raw_sd = x.std(axis=0)
        spec = np.abs(np.fft.rfft(x * win[:, None], axis=0)) ** 2
        spec[1:] *= 2.0
        spec /= n * np.sum(win * win)  # one-sided: sum over bins ≈ mean square
        total = spec[mask_total].sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            emg_power = spec[mask_emg].sum(axis=0)
            mains = 10.0 * np.log10(spec[mask_mains].sum(axis=0) / emg_power)
            motion = np.where(total > 0, spec[mask_motion].sum(axis=0) / total, np.nan)
        rest_rms = np.sqrt(emg_power)
        clip_pct = (100.0 * self._clip[:n].mean(axis=0) if self._has_counts
                    else np.full(self.n_channels, np.nan))
        out = []
        for c in range(self.n_channels):
            flat = raw_sd[c] < q.flat_sd_uv
            states = {
                "flat": BAD if flat else GOOD,
                "clipping": grade(clip_pct[c], q.clipping_warn_pct, q.clipping_bad_pct),
                "mains": UNKNOWN if flat else grade(mains[c], q.mains_db_warn,
                                                     q.mains_db_bad),
                "motion": UNKNOWN if flat else grade(motion[c], q.motion_ratio_warn,
                                                      q.motion_ratio_bad),
                "rest_rms": UNKNOWN if flat else grade(rest_rms[c], q.rest_rms_warn_uv,
                                                        q.rest_rms_bad_uv),
            }
            worst, hint = summarise(states)
            out.append(ChannelQuality(c, float(rest_rms[c]), float(mains[c]),
                                      float(clip_pct[c]), float(raw_sd[c]), float(motion[c]),
                                      states, worst, hint))
        return out

    def _masks(self, f: np.ndarray) -> tuple[np.ndarray, ...]:
        cfg = self.config
        high = min(cfg.bandpass.high_hz, MAX_HIGH_FRACTION * self.fs)
        mains = np.zeros(len(f), bool)
        for k in range(1, int(high // cfg.notch.mains_hz) + 1):
            mains |= np.abs(f - k * cfg.notch.mains_hz) <= MAINS_HALF_WIDTH_HZ
        total = (f >= MOTION_BAND_HZ[0]) & (f <= high)
        return (total, mains & total, (f >= cfg.bandpass.low_hz) & (f <= high) & ~mains,
                (f >= MOTION_BAND_HZ[0]) & (f < MOTION_BAND_HZ[1]))
