"""Mains removal that follows the line frequency: regression on tracked reference sinusoids.

This module owns :class:`MainsCanceller`, a causal, stateful chunk-in/chunk-out stage. It
keeps one complex amplitude per channel and harmonic of the line frequency and subtracts
the hum they describe; the references are ``exp(j·k·φ)`` with a phase ``φ`` that runs at
the *tracked* line frequency. Work happens in blocks of whole line cycles aligned to
absolute sample positions:

1. inside a block the output is ``x − 2·Re(Σ_k a_k·exp(j·k·φ))`` with the amplitudes of
   the blocks before it (so it is causal, and any chunking gives bit-identical output);
2. at the block's end the block is demodulated (``c_k = mean(x·exp(−j·k·φ))``: whole
   cycles, so offsets and the other harmonics cancel; the leak of a drift, whose slope the
   block means give, is subtracted in closed form) and every amplitude moves toward its
   measurement with gain ``α = block / (tau_s·fs)`` times a per-channel weight that falls
   as the block's high-frequency power rises above the quiet level: an EMG burst does not
   teach the canceller, so it neither eats the burst nor rings after it;
3. the phase error of the lines that stand above the noise drives a second-order loop on
   the frequency (clamped to ``track_hz`` around the expected line), so hum off nominal or
   drifting is followed and each harmonic keeps its depth.

Lost samples (NaN, or a tick gap via :meth:`MainsCanceller.skip`) advance the phase and keep
the amplitudes: the hum is still there after a gap, so nothing has to settle again. It
removes a band about ``1/(2·tau_s)`` Hz wide around each line at rest and none during
activity. Comparison with notch banks: ``docs/mains-removal.md``. Imports numpy only.
"""

from __future__ import annotations

import math

import numpy as np

#: Highest harmonic frequency cancelled, as a fraction of the sample rate.
MAX_HARMONIC_FRACTION = 0.45
K_PHASE = 0.6
K_FREQ = K_PHASE ** 2 / 2.0
K_FLL = 0.3
FLL_DEAD_HZ = 0.15
LINE_SNR = 30.0
#: Summed line SNR at which the phase loop runs at half its gain.
SNR_FULL_GAIN = 5000.0
#: The frequency-locked loop pulls in during the first seconds only; later the phase loop
#: follows the (slow) drift, without the frequency loop's noise.
ACQUIRE_S = 1.5
#: A block whose non-hum power is more than e**GATE_LOG (8x) the quiet level is activity.
GATE_LOG = math.log(8.0)


class MainsCanceller:
    """Causal mains-hum canceller tracking the line frequency.

    Lifecycle: construct → :meth:`process` consecutive chunks (and :meth:`skip` for lost
    samples that are not in the array) → :meth:`reset` for an unrelated stream.

    Parameters
    ----------
    mains_hz
        Nominal line frequency (50 or 60).
    fs
        Sampling rate in Hz.
    n_channels
        Number of channels.
    line_hz
        Expected line frequency in sample time (the nominal moved by the board's clock
        error); default ``mains_hz``. Tracking starts here.
    tau_s
        Memory of the amplitude estimate at rest (s): longer takes less EMG, shorter follows
        amplitude changes faster.
    track_hz
        Largest distance from ``line_hz`` the tracked frequency may move (Hz).
    max_hz
        Highest harmonic frequency cancelled (default 0.45·fs).
    cycles
        Line cycles per block.
    """

    def __init__(self, mains_hz: float, fs: float, n_channels: int,
                 line_hz: float | None = None, tau_s: float = 0.5, track_hz: float = 0.6,
                 max_hz: float | None = None, cycles: int = 2):
        self.mains_hz = float(mains_hz)
        self.fs = float(fs)
        self.n_channels = int(n_channels)
        self.line_hz = float(line_hz or mains_hz)
        self.tau_s = float(tau_s)
        self.track_hz = float(track_hz)
        top = MAX_HARMONIC_FRACTION * self.fs if max_hz is None else min(
            float(max_hz), MAX_HARMONIC_FRACTION * self.fs)
        n_harm = int((top - self.track_hz) // self.line_hz)
        if n_harm < 1:
            raise ValueError(f"no mains harmonic below {top:g} Hz at fs = {fs:g} Hz")
        self.harmonics = np.arange(1, n_harm + 1)
        self.block = max(4 * n_harm + 4, round(cycles * self.fs / self.line_hz))
        self.alpha = min(1.0, self.block / (self.tau_s * self.fs))
        # second-order frequency loop, about critically damped with the amplitude update
        self.k_phase = K_PHASE
        self.k_freq = K_FREQ / self.block
        self._omega0 = 2.0 * math.pi * self.line_hz / self.fs
        self._nu_max = 2.0 * math.pi * self.track_hz / self.fs
        self._fll_dead = 2.0 * math.pi * FLL_DEAD_HZ / self.fs
        # harmonics whose turn per block stays below π/2 anywhere in the tracking range
        self._fll_harmonics = (self.harmonics * (self._nu_max * 1.2) * self.block
                               < math.pi / 2)[:, None]
        self._steps = np.arange(self.block)
        ramp = self._steps - (self.block - 1) / 2.0
        self._ramp = ramp / np.sqrt(ramp @ ramp)  # unit vector of a linear trend
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget amplitudes, frequency and phase."""
        k, c = len(self.harmonics), self.n_channels
        self.amplitude = np.zeros((k, c), complex)  #: current complex amplitude per line
        self._nu = 0.0  # frequency correction, rad/sample
        self._phase = 0.0  # phase of the fundamental at the current block's start
        self._pos = 0  # position inside the current block
        self._buf = np.zeros((self.block, c))
        self._quiet = np.full(c, np.nan)  # log of the quiet high-frequency power
        self._prev_mean = np.full(c, np.nan)  # previous block's mean per channel
        self._prev_meas = np.full((k, c), np.nan, complex)  # previous block's demodulation
        self._blocks = 0
        self._active = np.zeros((k, c), bool)  # lines that stand above the noise
        self._shown = np.zeros((k, c), complex)  # amplitudes subtracted: active lines only
        self._basis()

    def expect(self, line_hz: float) -> None:
        """Centre the tracking range on ``line_hz`` (e.g. the nominal moved by a measured
        clock error); the tracked frequency moves into the new range if it lies outside."""
        nu_total = self._omega0 + self._nu
        self.line_hz = float(line_hz)
        self._omega0 = 2.0 * math.pi * self.line_hz / self.fs
        self._nu = float(np.clip(nu_total - self._omega0, -self._nu_max, self._nu_max))

    @property
    def frequency_hz(self) -> float:
        """The tracked line frequency in sample time (Hz)."""
        return (self._omega0 + self._nu) * self.fs / (2.0 * math.pi)

    def _basis(self) -> None:
        omega = self._omega0 + self._nu
        phi = self._phase + omega * self._steps
        self._ref = np.exp(1j * np.outer(phi, self.harmonics))  # (block, K)
        self._demod = self._ref.conj().T / self.block  # (K, block)
        leak = (self._ref.conj() ** 2).mean(axis=0)[:, None]  # (K, 1)
        self._conj_leak = leak
        self._conj_norm = 1.0 - np.abs(leak) ** 2
        # the whole block's hum at once: the same arithmetic whatever the chunking
        self._hum = 2.0 * (self._ref @ self._shown).real
        # what a unit slope per sample leaves in the demodulation of a block
        self._slope_leak = (np.exp(-1j * self.harmonics * self._phase)
                            / (np.exp(-1j * self.harmonics * omega) - 1.0))[:, None]
        self._omega = omega

    # ------------------------------------------------------------------ processing
    def skip(self, n: int) -> None:
        """Advance over ``n`` lost samples: the phase runs on, the amplitudes are kept."""
        if n <= 0:
            return
        left = self.block - self._pos
        if n < left:
            self._pos += n
            self._buf[self._pos - n:self._pos] = np.nan
            return
        # finish the current block without an update (it holds lost samples), then whole
        # blocks of phase
        n -= left
        whole, rest = divmod(n, self.block)
        self._phase = math.fmod(self._phase + self._omega * self.block * (1 + whole),
                                2.0 * math.pi)
        self._pos = 0
        self._basis()
        if rest:
            self._buf[:rest] = np.nan
            self._pos = rest

    def process(self, x: np.ndarray) -> np.ndarray:
        """Remove the hum from ``x`` (n, ch), continuing from the previous chunk."""
        x = np.asarray(x, dtype=float)
        n = len(x)
        out = np.empty_like(x)
        i = 0
        while i < n:
            m = min(self.block - self._pos, n - i)
            p = self._pos
            seg = x[i:i + m]
            y = seg - self._hum[p:p + m]
            out[i:i + m] = y
            self._buf[p:p + m] = seg
            self._pos += m
            i += m
            if self._pos == self.block:
                self._update()
        return out

    def _update(self) -> None:
        xb = self._buf
        ok = ~np.isnan(xb).any(axis=0)  # a channel with a lost sample learns nothing here
        a_old = self.amplitude
        if ok.any():
            xs = np.where(ok, xb, 0.0)
            meas = self._demod @ xs  # (K, ch)
            # a line's negative-frequency half leaks in when the block is not whole cycles
            # of the tracked line: meas = a + conj(a)·L, solved for a
            meas = (meas - meas.conj() * self._conj_leak) / self._conj_norm
            # a drift leaks into the demodulation; its slope comes from the block means
            # (hum averages out over whole cycles) and its leak is known in closed form
            mean = xs.mean(axis=0)
            slope = np.where(ok & ~np.isnan(self._prev_mean),
                             (mean - self._prev_mean) / self.block, 0.0)
            self._prev_mean = np.where(ok, mean, np.nan)
            meas = meas - self._slope_leak * slope
            # high-frequency power of what is not hum (the block's own fit removed): EMG,
            # not drift, and not hum left over, which must never look like a contraction
            rest = xs - 2.0 * (self._ref @ meas).real
            rest = rest - rest.mean(axis=0)
            rest -= np.outer(self._ramp, self._ramp @ rest)  # the block's linear trend
            # the fit and the trend took 2K + 2 degrees of freedom of the block's noise
            power = np.sum(rest * rest, axis=0) / (self.block - 2 * len(self.harmonics) - 2)
            # quiet level: a lower-middle quantile of the block powers, in logs; a block
            # far above it (a contraction) raises it by x1.002 at most, so even a long
            # contraction barely moves it
            with np.errstate(divide="ignore"):
                lp = np.log(np.maximum(power, 1e-300))
            lq = np.where(np.isnan(self._quiet), lp, self._quiet)
            step = lp - lq
            lq = lq + np.where(step < 0, 0.02 * step,
                               np.where(step < GATE_LOG, 0.01 * step, 0.002))
            self._quiet = np.where(ok, lq, self._quiet)
            quiet = np.exp(lq)
            gate = math.exp(GATE_LOG) * quiet
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                weight = np.where(power > gate, (gate / power) ** 2, 1.0)
            weight = np.where(ok, weight, 0.0)
            self._blocks += 1
            gain = max(self.alpha, 1.0 / self._blocks) * weight
            innov = meas - a_old
            self.amplitude = a_old + gain * innov
            # a line is subtracted once it stands 20x (then while 10x) above the noise of its
            # own estimate: hum-free channels pass untouched. Judged at rest only.
            g = max(self.alpha, 1.0 / self._blocks)  # the running mean at start-up
            est_noise = power / self.block * g / (2.0 - g)
            level = np.abs(self.amplitude) ** 2
            judged = weight > 0.5
            now = np.where(self._active, level > 10.0 * est_noise, level > 20.0 * est_noise)
            self._active = np.where(judged, now, self._active)
            self._shown = np.where(self._active, self.amplitude, 0.0)
            # phase error of the lines above the noise, per fundamental radian. |c_k|² of
            # noise alone is about σ²/block, σ² ≈ quiet / 2 for broadband noise; a line
            # counts when it stands 4x above that. A burst block (small weight) moves
            # nothing: the weights are not normalised away.
            noise = LINE_SNR * np.where(ok, quiet, np.inf) / self.block
            line = np.abs(a_old) ** 2
            strength = np.maximum(line - noise, 0.0)
            total = strength.sum()
            # frequency-locked loop: how far each line turned since the last block
            # (unambiguous for the low harmonics), pulls in a large offset at once
            prev = self._prev_meas
            self._prev_meas = np.where(ok & (weight >= 0.5), meas, np.nan)  # quiet only
            turn = meas * prev.conj()
            fll = self._fll_harmonics & ~np.isnan(turn)
            s_fll = np.where(fll, np.maximum(np.abs(meas) ** 2 - noise, 0.0), 0.0)
            # signal-to-noise of each line's phase, |c|² / (σ²/block)
            snr = np.where(ok, line / (quiet / self.block), 0.0)
            if s_fll.sum() > 0:
                rate = np.where(fll, np.angle(np.where(fll, turn, 1.0)), 0.0)
                eps = float((weight * s_fll * rate / self.harmonics[:, None]).sum()
                            / s_fll.sum()) / self.block
                # noise of that turn: a phase read at SNR ρ scatters by 1/sqrt(2ρ)
                spread = 1.0 / math.sqrt(max(float((snr * fll).sum()), 1e-12)) / self.block
                acquiring = self._blocks * self.block < ACQUIRE_S * self.fs
                if acquiring and abs(eps) > max(self._fll_dead, 4.0 * spread):
                    self._nu = float(np.clip(self._nu + K_FLL * eps, -self._nu_max,
                                             self._nu_max))
            if total > 0:
                with np.errstate(divide="ignore", invalid="ignore"):
                    err = np.where(line > 0, (innov * a_old.conj()).imag / line, 0.0)
                theta = float((weight * strength * err / self.harmonics[:, None]).sum()
                              / total)
                # the loop slows down on weak lines, where each phase reading is noisy
                rho = float((weight * snr * (strength > 0)).sum())
                loop = rho / (rho + SNR_FULL_GAIN)
                theta *= loop
                self._nu = float(np.clip(self._nu + self.k_freq * theta, -self._nu_max,
                                         self._nu_max))
                self._phase += self.k_phase * theta
                # the frame turned: so did the last measurement, seen from it
                self._prev_meas = self._prev_meas * np.exp(
                    -1j * self.harmonics * self.k_phase * theta)[:, None]
        self._phase = math.fmod(self._phase + self._omega * self.block, 2.0 * math.pi)
        self._pos = 0
        self._basis()
