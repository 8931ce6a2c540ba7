"""A seeded model of facial surface EMG as an Arduino-class board digitises it.

This module owns :class:`FacialEmgModel`: per-muscle activation (from a built-in looping
script or from :meth:`FacialEmgModel.set_drive`) shapes band-limited, amplitude-modulated
Gaussian noise (a motor-unit-like interference pattern with a facial spectrum peaking near
100 Hz), on top of a 1-3 µV rest tone, mains hum with odd harmonics and white sensor noise.
The affected side (``montage.affected_side``) is weaker, the affected orbicularis oculi
fires with the zygomaticus drive (synkinesis), and a channel can lose its electrode or
saturate. The result is front-end scaled (``counts = offset + µV / uv_per_count``),
quantised and clipped to the ADC range.

Pure numpy/scipy: no I/O after construction (the front-end descriptor is read once), no
threads of its own; only the drive/fault setters take a lock, so a GUI or exercise thread
may steer a model that another thread generates from. All filter states and the sample
clock carry across calls, so ``generate(n); generate(n)`` equals ``generate(2 * n)``.
Imports ``config``, ``montage`` and ``errors`` only.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping

import numpy as np
from scipy import signal

from emgfb.config import FrontendSpec, load_frontend
from emgfb.errors import ConfigError
from emgfb.limits import CLOCK_PPM
from emgfb.montage import MUSCLES, Montage

log = logging.getLogger(__name__)

#: RMS in µV at the electrode of each muscle at full voluntary effort (healthy side).
#: Chosen so that peaks (~3.5 x RMS) stay inside a BioAmp + Uno range of about +-1 mV.
FULL_EFFORT_UV: dict[str, float] = {
    "frontalis": 180.0,
    "corrugator": 150.0,
    "orbicularis_oculi": 140.0,
    "levator_labii": 150.0,
    "zygomaticus_major": 220.0,
    "orbicularis_oris": 180.0,
    "depressor_anguli_oris": 150.0,
    "platysma": 150.0,
    "masseter": 250.0,
    "other": 150.0,
}

#: Built-in scripts: keyframes ``(time_s, {muscle: level})`` interpolated linearly and
#: looped. Muscles absent from a keyframe are at 0 there.
SCRIPTS: dict[str, list[tuple[float, dict[str, float]]]] = {
    "demo": [
        (0.0, {}),
        (8.0, {}),  # rest: the first screen a clinician sees is a relaxed face
        (10.0, {"frontalis": 0.6}),  # brow lift: 2 s ramp, 4 s hold, 2 s release
        (14.0, {"frontalis": 0.6}),
        (16.0, {}),
        (18.0, {}),
        (19.5, {"orbicularis_oculi": 0.3}),  # gentle eye closure
        (23.5, {"orbicularis_oculi": 0.3}),
        (25.0, {}),
        (27.0, {}),
        (29.0, {"zygomaticus_major": 0.7}),  # smile (synkinesis shows on the eye)
        (33.0, {"zygomaticus_major": 0.7}),
        (35.0, {}),
        (37.0, {}),
        (39.0, {"orbicularis_oris": 0.6}),  # lip pucker
        (43.0, {"orbicularis_oris": 0.6}),
        (45.0, {}),
        (47.0, {}),
    ],
    "rest": [(0.0, {}), (1.0, {})],
}

_EMG_BAND_HZ = (25.0, 125.0)  # 2nd-order band: like real facial sEMG (DOMAIN.md §9),
# spectral peak ~40-60 Hz, median ~70-90 Hz
_MOD_DEPTH = 0.3  # slow random fluctuation of the firing envelope (std, relative)
_SLOW_TAU_S = 0.06  # muscles do not switch on in one sample; also the fluctuation's pace
_HUM_TABLE_MAX = 1 << 16  # samples in the precomputed hum period (else computed per call)
_HARMONICS = ((1, 1.0), (3, 0.3), (5, 0.12))  # hum: odd harmonics of mains
_FLOAT_HUM_GAIN = 40.0  # a floating input picks up this much more hum
_CLOCK_PPM_MAX = 2500.0  # a ceramic resonator's error drawn from the seed (±0.25 %)
_POP_UV = 400.0  # intermittent contact: step size scale (µV) ...
_POP_TAU_S = 0.4  # ... decaying as the electrode double layer recharges
_MOTION_UV = 300.0  # motion artefact: a ~3 Hz bump of this scale (µV)
_FRONTEND_SWING = 0.6  # a saturating front-end's output swing, fraction of the ADC half-range


#: Electrode-off modes of :meth:`FacialEmgModel.set_electrode_off`.
OFF_MODES = ("rail", "mid", "dither", "float")
#: Artefacts of :meth:`FacialEmgModel.set_artefact`.
ARTEFACTS = ("contact", "motion", "drift")


def _normal_quantile(p: np.ndarray) -> np.ndarray:
    """Standard normal quantile (scipy.special.ndtri)."""
    from scipy.special import ndtri

    return ndtri(p)


def _unit_gain(sos: np.ndarray, n: int = 16384) -> float:
    """RMS of the filter's output for unit-variance white noise input."""
    impulse = np.zeros(n)
    impulse[0] = 1.0
    return float(np.sqrt(np.sum(signal.sosfilt(sos, impulse) ** 2)))


class FacialEmgModel:
    """Seeded, streaming generator of facial sEMG in ADC counts.

    Parameters
    ----------
    montage
        Channels (muscle and side) in hardware order; ``montage.affected_side`` is weaker.
    fs
        Sample rate in Hz.
    seed
        Seed of every random draw; the same seed gives the same counts for any chunking.
    bits, vref_mv
        ADC resolution and reference (10 and 5000 for an Uno).
    frontend
        Analog front-end (gain, mid-rail offset); default the Muscle BioAmp
        (``emgfb/configs/frontends/bioamp.toml``, about 2 µV per count on an Uno).
    mains_hz
        Mains frequency (50 or 60; 0 disables hum).
    hum_uv
        Amplitude in µV of the mains fundamental at the electrode (per channel it varies by
        +-30 %); 3rd and 5th harmonics are added at 0.3 and 0.12 of it.
    rest_uv
        RMS of the relaxed-muscle tone in µV (DOMAIN.md §3: 1-3 µV).
    sensor_noise_uv
        RMS of white amplifier/electrode noise in µV.
    affected_gain
        Activation scale of the affected side (0..1).
    synkinesis
        Fraction of the zygomaticus drive that reaches the affected orbicularis oculi.
    script
        ``"demo"`` (looping: 8 s rest, brow lift, eye closure, smile, pucker) or ``"rest"``;
        used while no drive is set.
    clock_ppm
        The board's clock error in ppm (+ = fast): in sample time the hum lands at
        ``mains / (1 + ppm·1e-6)``. None: drawn from the seed within ±2500 ppm (a ceramic
        resonator).
    grid_drift_hz, grid_period_s
        The grid frequency wanders sinusoidally by ±``grid_drift_hz`` over
        ``grid_period_s`` (0 = steady).

    Attributes
    ----------
    uv_per_count
        Microvolts at the electrode per ADC count.
    offset_counts
        Count that corresponds to 0 µV at the electrode.
    """

    def __init__(
        self,
        montage: Montage,
        fs: float,
        seed: int,
        *,
        bits: int = 10,
        vref_mv: float = 5000.0,
        frontend: FrontendSpec | None = None,
        mains_hz: float = 50.0,
        hum_uv: float = 15.0,
        rest_uv: float = 2.0,
        sensor_noise_uv: float = 0.5,
        affected_gain: float = 0.35,
        synkinesis: float = 0.4,
        script: str = "demo",
        clock_ppm: float | None = None,
        grid_drift_hz: float = 0.1,
        grid_period_s: float = 90.0,
    ):
        if not fs > 0 or not math.isfinite(fs):
            raise ConfigError(f"simulator: fs = {fs!r}: expected a positive sample rate in Hz")
        if not 1 <= bits <= 16:
            raise ConfigError(f"simulator: bits = {bits!r}: expected 1..16")
        if mains_hz not in (0, 50, 60):
            raise ConfigError(f"simulator: mains_hz = {mains_hz!r}: expected 50, 60 or 0")
        if script not in SCRIPTS:
            raise ConfigError(
                f"simulator: script = {script!r}: expected one of {', '.join(SCRIPTS)}"
            )
        if not 0.0 <= affected_gain <= 1.0:
            raise ConfigError(f"simulator: affected_gain = {affected_gain!r}: expected 0..1")
        if not 0.0 <= synkinesis <= 1.0:
            raise ConfigError(f"simulator: synkinesis = {synkinesis!r}: expected 0..1")
        self.montage = montage
        self.fs = float(fs)
        self.seed = int(seed)
        self.bits = int(bits)
        self.vref_mv = float(vref_mv)
        self.frontend = frontend if frontend is not None else load_frontend("bioamp")
        self.mains_hz = float(mains_hz)
        self.hum_uv = float(hum_uv)
        self.rest_uv = float(rest_uv)
        self.sensor_noise_uv = float(sensor_noise_uv)
        self.affected_gain = float(affected_gain)
        self.synkinesis = float(synkinesis)
        self.script = script
        self.uv_per_count = self.frontend.uv_per_count(self.bits, self.vref_mv)
        self.offset_counts = self.frontend.offset_counts(self.bits, self.vref_mv)
        self.max_count = (1 << self.bits) - 1

        n_ch = montage.n_channels
        self.n_channels = n_ch
        muscles = [c.muscle for c in montage.channels]
        affected = np.array([c.side == montage.affected_side for c in montage.channels])
        self._full_uv = np.array([FULL_EFFORT_UV.get(m, 150.0) for m in muscles])
        self._side_gain = np.where(affected, self.affected_gain, 1.0)
        self._synk_channels = np.flatnonzero(
            affected & (np.array(muscles) == "orbicularis_oculi")
        )
        self._muscles = muscles
        self._script_table = self._compile_script(SCRIPTS[script], muscles)

        rng = np.random.default_rng(self.seed)
        setup_rng, self._rng = rng.spawn(2)
        self._hum_scale = setup_rng.uniform(0.7, 1.3, n_ch)
        self._hum_phase = setup_rng.uniform(0, 2 * np.pi, n_ch)
        drawn = float(setup_rng.uniform(-_CLOCK_PPM_MAX, _CLOCK_PPM_MAX))
        self.clock_ppm = drawn if clock_ppm is None else float(clock_ppm)
        CLOCK_PPM.check(self.clock_ppm, "clock_ppm", "simulator")
        if not (0.0 <= grid_drift_hz <= 2.0 and grid_period_s > 0):
            raise ConfigError(f"simulator: grid_drift_hz = {grid_drift_hz!r}, grid_period_s = "
                              f"{grid_period_s!r}: expected 0..2 Hz and a period > 0 s")
        self.grid_drift_hz = float(grid_drift_hz)
        self.grid_period_s = float(grid_period_s)
        #: Line frequency in sample time, before the grid's wander (Hz).
        self.line_hz = self.mains_hz / (1.0 + self.clock_ppm * 1e-6)
        harmonics = [(k, a) for k, a in _HARMONICS if k * self.mains_hz < self.fs / 2]
        self._harmonics = harmonics if self.mains_hz > 0 else []

        hi = min(_EMG_BAND_HZ[1], 0.45 * self.fs)
        lo = min(_EMG_BAND_HZ[0], hi / 2)
        # A 4-pole band-pass is safe in transfer-function form; lfilter is cheaper per call.
        self._emg_ba = signal.butter(2, [lo, hi], btype="band", fs=self.fs)
        self._emg_norm = 1.0 / _unit_gain(signal.tf2sos(*self._emg_ba))
        # One 1-pole low-pass smooths the activation targets and colours the fluctuation
        # noise (both columns go through one lfilter call: generation runs live).
        alpha = math.exp(-1.0 / (_SLOW_TAU_S * self.fs))
        self._slow_ba = (np.array([1.0 - alpha]), np.array([1.0, -alpha]))
        self._mod_norm = _MOD_DEPTH / math.sqrt((1.0 - alpha) / (1.0 + alpha))
        self._emg_zi = np.zeros((len(self._emg_ba[1]) - 1, n_ch))
        # artefacts: pops decay with one pole, motion bumps ring at ~3 Hz, drift wanders
        # below 0.1 Hz; all carry their filter state across calls
        self._pop_ba = (np.array([1.0]), np.array([1.0, -math.exp(-1.0 / (_POP_TAU_S * fs))]))
        self._motion_ba = signal.butter(2, min(3.0, 0.2 * fs), fs=self.fs)
        self._drift_ba = signal.butter(1, min(0.05, 0.01 * fs), fs=self.fs)
        self._art_zi = [np.zeros((1, n_ch)), np.zeros((2, n_ch)), np.zeros((1, n_ch))]
        impulse = np.zeros(int(2 * fs))
        impulse[0] = 1.0
        self._motion_peak = float(np.max(np.abs(signal.lfilter(*self._motion_ba, impulse))))
        self._drift_gain = _unit_gain(signal.tf2sos(*self._drift_ba), int(100 * fs))
        self._slow_zi: np.ndarray | None = None  # starts at the first target (no ramp-in)
        self._hum_table = self._make_hum_table()

        self._lock = threading.Lock()
        self._drive: dict[str, float] | None = None
        self._electrode_off: dict[int, str] = {}
        self._saturation: dict[int, tuple[float, str]] = {}
        self._artefacts: dict[str, dict[int, float]] = {"contact": {}, "motion": {},
                                                        "drift": {}}
        self._n = 0  # samples generated so far: the model's clock

    # -- steering (thread-safe) --------------------------------------------------------

    def set_drive(self, levels: Mapping[str, float] | None) -> None:
        """Drive muscles directly (``muscle -> 0..1``, both sides); ``None`` resumes the script.

        Muscles not named are at rest. The affected side and synkinesis still apply, and
        activation follows the drive with a 60 ms time constant.
        """
        if levels is None:
            with self._lock:
                self._drive = None
            return
        drive: dict[str, float] = {}
        for muscle, level in levels.items():
            if muscle not in MUSCLES:
                raise ConfigError(
                    f"simulator drive: unknown muscle {muscle!r}; expected one of "
                    f"{', '.join(MUSCLES)}"
                )
            value = float(level)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"simulator drive: {muscle} = {level!r}: expected 0..1")
            drive[muscle] = value
        with self._lock:
            self._drive = drive

    def set_electrode_off(self, channel: int, off: bool, mode: str = "rail") -> None:
        """Detach (or re-attach) the electrode of ``channel``.

        ``mode="rail"`` gives a flat line at the top of the ADC range (input pulled to the
        rail); ``"mid"`` a flat line at mid-scale; ``"dither"`` mid-scale with a one-count
        dither; ``"float"`` a floating input dominated by hum (DOMAIN.md §9).
        """
        self._check_channel(channel)
        if mode not in OFF_MODES:
            raise ConfigError(f"simulator: electrode-off mode {mode!r}: expected one of "
                              f"{', '.join(OFF_MODES)}")
        with self._lock:
            if off:
                self._electrode_off[channel] = mode
            else:
                self._electrode_off.pop(channel, None)

    def set_saturation(self, channel: int, on: bool, factor: float = 8.0,
                       stage: str = "adc") -> None:
        """Multiply ``channel``'s input by ``factor`` so its peaks clip: at the ADC rails
        (``stage="adc"``) or at the front-end's output swing, below the rails
        (``stage="frontend"``, 60 % of the ADC half-range)."""
        self._check_channel(channel)
        if stage not in ("adc", "frontend"):
            raise ConfigError(f"simulator: saturation stage {stage!r}: expected adc or "
                              "frontend")
        with self._lock:
            if on:
                self._saturation[channel] = (float(factor), stage)
            else:
                self._saturation.pop(channel, None)

    def set_artefact(self, kind: str, channel: int, on: bool, rate: float = 1.0) -> None:
        """Switch an artefact on ``channel``: ``"contact"`` (intermittent contact: steps
        and pops, ``rate`` per second), ``"motion"`` (~3 Hz bumps of a few hundred µV,
        ``rate`` per second) or ``"drift"`` (a slow baseline wander of ``rate`` × 300 µV
        RMS)."""
        self._check_channel(channel)
        if kind not in ARTEFACTS:
            raise ConfigError(f"simulator: artefact {kind!r}: expected one of "
                              f"{', '.join(ARTEFACTS)}")
        if not 0.0 < rate <= 100.0:
            raise ConfigError(f"simulator: {kind} rate = {rate!r}: expected 0..100")
        with self._lock:
            if on:
                self._artefacts[kind][channel] = float(rate)
            else:
                self._artefacts[kind].pop(channel, None)

    @property
    def samples_generated(self) -> int:
        """Number of samples produced so far (the model's clock in ticks)."""
        return self._n

    # -- generation --------------------------------------------------------------------

    def generate_uv(self, n: int) -> np.ndarray:
        """Next ``n`` samples in µV at the electrode (before the ADC), shape ``(n, ch)``.

        Electrode-off channels are not modelled here (see :meth:`generate`).
        """
        with self._lock:
            drive = None if self._drive is None else dict(self._drive)
            saturation = dict(self._saturation)
            floating = [c for c, m in self._electrode_off.items() if m == "float"]
            artefacts = {kind: dict(chs) for kind, chs in self._artefacts.items()}
        n_ch = self.n_channels
        k = self._n + np.arange(n)
        # one draw per call whatever is switched on: the data never depend on chunking
        noise = self._rng.standard_normal((n, 5 * n_ch))

        target = self._targets(k, drive)
        b, a = self._slow_ba
        slow_in = np.concatenate([target, noise[:, n_ch : 2 * n_ch]], axis=1)
        if self._slow_zi is None:  # steady state at the first target, fluctuation at 0
            self._slow_zi = np.concatenate([target[:1], np.zeros((1, n_ch))], 1) * -a[1]
        slow, self._slow_zi = signal.lfilter(b, a, slow_in, axis=0, zi=self._slow_zi)
        act, mod = slow[:, :n_ch], slow[:, n_ch:]

        emg, self._emg_zi = signal.lfilter(
            *self._emg_ba, noise[:, :n_ch], axis=0, zi=self._emg_zi
        )
        envelope = self.rest_uv + act * (self._full_uv * self._side_gain)
        envelope *= np.maximum(1.0 + mod * self._mod_norm, 0.2)
        uv = envelope * emg * self._emg_norm
        uv += noise[:, 2 * n_ch : 3 * n_ch] * self.sensor_noise_uv
        if self._harmonics and self.hum_uv > 0:
            hum = self._hum(k)
            if floating:
                hum[:, floating] *= _FLOAT_HUM_GAIN
            uv += hum
        uv += self._artefact_uv(noise[:, 3 * n_ch:], artefacts)
        limit = _FRONTEND_SWING * min(self.offset_counts, self.max_count - self.offset_counts)
        for ch, (factor, stage) in saturation.items():
            uv[:, ch] *= factor
            if stage == "frontend":
                np.clip(uv[:, ch], -limit * self.uv_per_count, limit * self.uv_per_count,
                        out=uv[:, ch])
        self._n += n
        return uv

    def _artefact_uv(self, noise: np.ndarray, artefacts: dict[str, dict[int, float]]
                     ) -> np.ndarray:
        """Pops, motion bumps and drift in µV from two noise columns per channel."""
        n, n_ch = len(noise), self.n_channels
        events, values = noise[:, :n_ch], noise[:, n_ch:]
        out = np.zeros((n, n_ch))
        for i, (kind, ba, scale) in enumerate((("contact", self._pop_ba, _POP_UV),
                                               ("motion", self._motion_ba, _MOTION_UV),
                                               ("drift", self._drift_ba, 300.0))):
            rate = np.zeros(n_ch)
            for ch, r in artefacts[kind].items():
                rate[ch] = r
            if kind == "drift":  # RMS of ``rate`` x the scale
                drive = values * (rate / self._drift_gain)
            else:
                # an event where a normal draw exceeds the quantile of rate/fs
                threshold = np.where(rate > 0, _normal_quantile(1.0 - rate / self.fs), np.inf)
                drive = np.where(events > threshold, values, 0.0)
                if kind == "motion":  # a bump's peak is the drawn value x the scale
                    drive = drive / self._motion_peak
            y, self._art_zi[i] = signal.lfilter(*ba, drive, axis=0, zi=self._art_zi[i])
            out += y * scale * (rate > 0)
        return out

    def generate(self, n: int) -> np.ndarray:
        """Next ``n`` samples as ADC counts, uint16, shape ``(n, n_channels)``."""
        uv = self.generate_uv(n)
        counts = np.rint(self.offset_counts + uv / self.uv_per_count)
        np.clip(counts, 0, self.max_count, out=counts)
        with self._lock:
            off = dict(self._electrode_off)
        for ch, mode in off.items():
            if mode == "rail":
                counts[:, ch] = self.max_count
            elif mode in ("mid", "dither"):
                counts[:, ch] = round(self.offset_counts)
                if mode == "dither":  # the last bit toggles with the sensor noise
                    counts[:, ch] += uv[:, ch] > np.median(uv[:, ch])
        return counts.astype(np.uint16)

    def uv_from_counts(self, counts: np.ndarray) -> np.ndarray:
        """Convert counts back to µV at the electrode (float64)."""
        return (np.asarray(counts, dtype=np.float64) - self.offset_counts) * self.uv_per_count

    # -- internals ---------------------------------------------------------------------

    def _check_channel(self, channel: int) -> None:
        if not 0 <= int(channel) < self.n_channels:
            raise ConfigError(
                f"simulator: channel {channel!r}: expected 0..{self.n_channels - 1}"
            )

    @staticmethod
    def _compile_script(
        keys: list[tuple[float, dict[str, float]]], muscles: list[str]
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Keyframe times and levels; the last level column is the zygomaticus drive."""
        times = np.array([t for t, _ in keys])
        columns = [*muscles, "zygomaticus_major"]
        levels = np.array([[lv.get(m, 0.0) for m in columns] for _, lv in keys])
        return times, levels, float(times[-1])

    def _targets(self, k: np.ndarray, drive: dict[str, float] | None) -> np.ndarray:
        """Target activation per sample and channel, synkinesis included."""
        n = len(k)
        if drive is None:
            times, levels, period = self._script_table
            t = (k / self.fs) % period
            i = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
            w = ((t - times[i]) / (times[i + 1] - times[i]))[:, None]
            table = levels[i] * (1.0 - w) + levels[i + 1] * w  # linear interpolation
            target, zyg = table[:, :-1], table[:, -1]
        else:
            row = np.array([drive.get(m, 0.0) for m in self._muscles])
            target = np.broadcast_to(row, (n, self.n_channels)).copy()
            zyg = np.full(n, drive.get("zygomaticus_major", 0.0))
        if len(self._synk_channels) and self.synkinesis > 0:
            for c in self._synk_channels:
                target[:, c] = np.maximum(target[:, c], self.synkinesis * zyg)
        return target

    def _make_hum_table(self) -> np.ndarray | None:
        """One exact period of the hum when it is steady, exact and short, else ``None``."""
        if not self._harmonics or not (self.fs.is_integer() and self.mains_hz.is_integer()):
            return None
        if self.clock_ppm != 0.0 or self.grid_drift_hz > 0.0:
            return None
        period = int(self.fs) // math.gcd(int(self.fs), int(self.mains_hz))
        if period > _HUM_TABLE_MAX:
            return None
        return self._hum_direct(np.arange(period))

    def _hum(self, k: np.ndarray) -> np.ndarray:
        if self._hum_table is not None:
            return self._hum_table[k % len(self._hum_table)]
        return self._hum_direct(k)

    def _hum_direct(self, k: np.ndarray) -> np.ndarray:
        # Cycles of the fundamental in closed form from the integer clock (line moved by the
        # board clock, plus the grid's sinusoidal wander), so chunking cannot matter.
        if self.clock_ppm == 0.0 and self.grid_drift_hz == 0.0:
            cycles = ((k * self.mains_hz) % self.fs) / self.fs
        else:
            cycles = np.mod(k * (self.line_hz / self.fs), 1.0)
            if self.grid_drift_hz > 0.0:
                w = 2 * np.pi / (self.grid_period_s * self.fs)
                cycles = cycles + (self.grid_drift_hz / self.line_hz * self.line_hz
                                   / (w * self.fs)) * (1.0 - np.cos(w * k))
        hum = np.zeros((len(k), self.n_channels))
        for harmonic, rel in self._harmonics:
            hum += rel * np.sin(2 * np.pi * harmonic * cycles[:, None]
                                + harmonic * self._hum_phase)
        return hum * (self.hum_uv * self._hum_scale)
