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
activity. Comparison with notch banks: ``docs/mains-removal.md``.

The per-block recursion (amplitudes with a data-dependent gain, quiet level, line
hysteresis, the phase/frequency loop) is sequential by nature, with work of a few thousand
multiply-adds per block of 40 samples: as numpy calls from Python it cost ~230 µs per block
(8.7x the bare scipy chain offline), so it runs compiled with numba (``@njit(cache=True)``):
~10 µs per block. The machine code is cached next to the module (or in numba's user cache
when that is read-only, or in ``NUMBA_CACHE_DIR``); a fresh install compiles once, ~3 s.
Where no cache is writable (a read-only install run without a home) the kernel is compiled
in every process, with one warning naming the way out. That (or loading the cache,
~0.2 s) happens when this module is imported, so before a command opens a board, never
while a stream's samples wait. Every chunking runs each block's sums in
the same order, so chunk parity is bit-identical. Imports numpy and numba only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit

log = logging.getLogger(__name__)

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
#: Time constant (s) of the quiet blocks' frequency average, used while a contraction holds
#: the lines.
HOLD_AVERAGE_S = 2.0
HOLD_ENGAGE_S = 0.1
#: Largest difference (Hz) between the loop's frequency and the quiet average that is
#: taken for loop noise (the loop wanders by ~10 mHz at rest).
HOLD_NOISE_HZ = 0.025
#: A block whose non-hum power is more than e**GATE_LOG (8x) the quiet level is activity.
GATE_LOG = math.log(8.0)
GATE = 8.0


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
                               < math.pi / 2)
        self._fixed = np.array([self.alpha, self.k_phase, self.k_freq, self._nu_max,
                                self._fll_dead, ACQUIRE_S * self.fs,
                                min(1.0, self.block / (HOLD_AVERAGE_S * self.fs)),
                                self.block / (HOLD_ENGAGE_S * self.fs),
                                2.0 * math.pi * HOLD_NOISE_HZ / self.fs])
        ramp = np.arange(self.block) - (self.block - 1) / 2.0
        self._ramp = ramp / np.sqrt(ramp @ ramp)  # unit vector of a linear trend
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget amplitudes, frequency and phase."""
        k, c = len(self.harmonics), self.n_channels
        self.amplitude = np.zeros((k, c), complex)  #: current complex amplitude per line
        # scalars the kernel moves: frequency correction (rad/sample), phase of the
        # fundamental at the current block's start, angular frequency of the block's basis,
        # the frequency correction averaged over quiet blocks, their (weighted) count, and
        # how many blocks the lines have been held
        self._st = np.array([0.0, 0.0, self._omega0, 0.0, 0.0, 0.0])
        self._ist = np.zeros(2, np.int64)  # position inside the block, blocks learned from
        self._buf = np.zeros((self.block, c))
        self._quiet = np.full(c, np.nan)  # log of the quiet high-frequency power
        self._prev_mean = np.full(c, np.nan)  # previous block's mean per channel
        self._prev_meas = np.full((k, c), np.nan, complex)  # previous block's demodulation
        self._active = np.zeros((k, c), np.bool_)  # lines that stand above the noise
        self._shown = np.zeros((k, c), complex)  # amplitudes subtracted: active lines only
        self._refc = np.zeros((self.block, k))  # the block's references, real part
        self._refs = np.zeros((self.block, k))  # and imaginary part
        self._hum = np.zeros((self.block, c))  # the whole block's hum
        self._leak = np.zeros(k, complex)
        self._slope_leak = np.zeros(k, complex)
        self._basis()

    def expect(self, line_hz: float) -> None:
        """Centre the tracking range on ``line_hz`` (e.g. the nominal moved by a measured
        clock error); the tracked frequency moves into the new range if it lies outside."""
        old = self._omega0
        self.line_hz = float(line_hz)
        self._omega0 = 2.0 * math.pi * self.line_hz / self.fs
        for i in (0, 3):
            self._st[i] = float(np.clip(old + self._st[i] - self._omega0, -self._nu_max,
                                        self._nu_max))

    @property
    def frequency_hz(self) -> float:
        """The tracked line frequency in sample time (Hz)."""
        return (self._omega0 + float(self._st[0])) * self.fs / (2.0 * math.pi)

    def _basis(self) -> None:
        self._st[2] = self._omega0 + self._st[0]
        _basis(self._st[1], self._st[2], self._shown, self._refc, self._refs, self._hum,
               self._leak, self._slope_leak)

    # ------------------------------------------------------------------ processing
    def skip(self, n: int) -> None:
        """Advance over ``n`` lost samples: the phase runs on, the amplitudes are kept."""
        if n <= 0:
            return
        pos = int(self._ist[0])
        left = self.block - pos
        if n < left:
            self._buf[pos:pos + n] = np.nan
            self._ist[0] = pos + n
            return
        # finish the current block without an update (it holds lost samples), then whole
        # blocks of phase
        n -= left
        whole, rest = divmod(n, self.block)
        self._st[1] = math.fmod(self._st[1] + self._st[2] * self.block * (1 + whole),
                                2.0 * math.pi)
        self._ist[0] = 0
        self._basis()
        if rest:
            self._buf[:rest] = np.nan
            self._ist[0] = rest

    def process(self, x: np.ndarray) -> np.ndarray:
        """Remove the hum from ``x`` (n, ch), continuing from the previous chunk."""
        x = np.ascontiguousarray(x, dtype=float)
        out = np.empty_like(x)
        _run(x, out, self._buf, self._st, self._ist, self._omega0, self._fixed,
             self._ramp, self._fll_harmonics, self.amplitude, self._shown, self._active,
             self._quiet, self._prev_mean, self._prev_meas, self._refc, self._refs,
             self._hum, self._leak, self._slope_leak)
        return out


# ---------------------------------------------------------------------- the kernel
_uncached_warned = False


def _compiled(fn: Callable[..., Any]) -> Any:
    """``fn`` compiled by numba with its machine code cached; where numba finds no
    writable cache directory it refuses caching (RuntimeError "no locator available"), and
    the kernel is compiled in this process only."""
    global _uncached_warned
    options: dict[str, Any] = {"nogil": True, "error_model": "numpy"}
    try:
        return njit(cache=True, **options)(fn)
    except RuntimeError as exc:
        if "no locator" not in str(exc):
            raise
        if not _uncached_warned:
            _uncached_warned = True
            log.warning("%s: no writable cache for the compiled mains canceller (its "
                        "directory and numba's user cache are read-only): compiling it in "
                        "every process (~3 s); set NUMBA_CACHE_DIR to a writable directory",
                        __file__)
        return njit(**options)(fn)


# Compiled with numba: the recursion runs once per block of 40 samples, and as numpy calls
# from Python it cost ~230 µs per block (about 80 small calls), 8x the bare scipy chain
# offline. The maths is that of the numpy version it replaces; each block's sums run in
# one fixed order whatever the chunking, so chunk parity stays bit-identical.

@_compiled
def _basis(phase, omega, shown, refc, refs, hum, leak, slope_leak):  # pragma: no cover
    """References ``exp(j·k·φ)`` of the block starting at ``phase``, the hum of the lines
    shown, the negative-frequency leak of each line and the leak of a unit slope."""
    n_block, n_harm = refc.shape
    n_ch = hum.shape[1]
    # row 0: exp(j·k·phase); each later row turns harmonic k by exp(j·k·omega)
    cw, sw = math.cos(omega), math.sin(omega)
    c1, s1 = math.cos(phase), math.sin(phase)
    rot_c = np.empty(n_harm)
    rot_s = np.empty(n_harm)
    c, s, rc, rs = c1, s1, cw, sw
    for k in range(n_harm):
        refc[0, k], refs[0, k], rot_c[k], rot_s[k] = c, s, rc, rs
        c, s = c * c1 - s * s1, s * c1 + c * s1
        rc, rs = rc * cw - rs * sw, rs * cw + rc * sw
    for n in range(1, n_block):
        for k in range(n_harm):
            c, s = refc[n - 1, k], refs[n - 1, k]
            refc[n, k] = c * rot_c[k] - s * rot_s[k]
            refs[n, k] = s * rot_c[k] + c * rot_s[k]
    leak_re = np.zeros(n_harm)
    leak_im = np.zeros(n_harm)
    for n in range(n_block):
        for k in range(n_harm):
            c, s = refc[n, k], refs[n, k]
            leak_re[k] += c * c - s * s  # conj(ref)²
            leak_im[k] -= 2.0 * c * s
    cp, sp = math.cos(phase), -math.sin(phase)
    sw = -sw
    c, s, cc, ss = cp, sp, cw, sw
    for k in range(n_harm):
        leak[k] = complex(leak_re[k] / n_block, leak_im[k] / n_block)
        slope_leak[k] = complex(c, s) / complex(cc - 1.0, ss)
        c, s = c * cp - s * sp, s * cp + c * sp
        cc, ss = cc * cw - ss * sw, ss * cw + cc * sw
    hum[:] = 0.0
    for k in range(n_harm):
        on = False
        for c in range(n_ch):
            on = on or shown[k, c] != 0
        if not on:
            continue
        sr = np.empty(n_ch)
        si = np.empty(n_ch)
        for c in range(n_ch):
            sr[c] = 2.0 * shown[k, c].real
            si[c] = 2.0 * shown[k, c].imag
        for n in range(n_block):
            rc, rs = refc[n, k], refs[n, k]
            for c in range(n_ch):
                hum[n, c] += rc * sr[c] - rs * si[c]


@_compiled
def _run(x, out, buf, st, ist, omega0, fixed, ramp, fll_harmonics, amplitude, shown,
         active, quiet, prev_mean, prev_meas, refc, refs, hum, leak,
         slope_leak):  # pragma: no cover
    """Subtract the hum sample by sample; learn at each block's end (``_update``)."""
    n_block = buf.shape[0]
    n_ch = buf.shape[1]
    pos = ist[0]
    for i in range(x.shape[0]):
        for c in range(n_ch):
            v = x[i, c]
            out[i, c] = v - hum[pos, c]
            buf[pos, c] = v
        pos += 1
        if pos == n_block:
            _update(buf, st, ist, omega0, fixed, ramp, fll_harmonics, amplitude, shown,
                    active, quiet, prev_mean, prev_meas, refc, refs, leak, slope_leak)
            st[1] = np.fmod(st[1] + st[2] * n_block, 2.0 * math.pi)
            st[2] = omega0 + st[0]
            _basis(st[1], st[2], shown, refc, refs, hum, leak, slope_leak)
            pos = 0
    ist[0] = pos


@_compiled
def _update(buf, st, ist, omega0, fixed, ramp, fll_harmonics, amplitude, shown, active,
            quiet, prev_mean, prev_meas, refc, refs, leak, slope_leak):  # pragma: no cover
    """One block's learning step: demodulate, gate, update amplitudes, lines and loop."""
    alpha, k_phase, k_freq, nu_max, fll_dead, acquire, beta, engage, hold_noise = (
        fixed[0], fixed[1], fixed[2], fixed[3], fixed[4], fixed[5], fixed[6], fixed[7],
        fixed[8])
    n_block, n_ch = buf.shape
    n_harm = refc.shape[1]
    ok = np.empty(n_ch, np.bool_)
    any_ok = False
    for c in range(n_ch):
        ok[c] = True
        for n in range(n_block):
            if math.isnan(buf[n, c]):
                ok[c] = False
                break
        any_ok = any_ok or ok[c]
    if not any_ok:
        return
    # demodulation of the whole cycles (a channel with a lost sample learns nothing here)
    xs = np.empty((n_block, n_ch))
    for n in range(n_block):
        for c in range(n_ch):
            xs[n, c] = buf[n, c] if ok[c] else 0.0
    m_re = np.zeros((n_harm, n_ch))
    m_im = np.zeros((n_harm, n_ch))
    mean = np.zeros(n_ch)
    for n in range(n_block):
        for c in range(n_ch):
            mean[c] += xs[n, c]
        for k in range(n_harm):
            rc, rs = refc[n, k], refs[n, k]
            for c in range(n_ch):
                m_re[k, c] += xs[n, c] * rc
                m_im[k, c] -= xs[n, c] * rs
    slope = np.zeros(n_ch)
    for c in range(n_ch):
        mean[c] /= n_block
        if ok[c] and not math.isnan(prev_mean[c]):
            slope[c] = (mean[c] - prev_mean[c]) / n_block
        prev_mean[c] = mean[c] if ok[c] else np.nan
    meas = np.empty((n_harm, n_ch), np.complex128)
    for k in range(n_harm):
        for c in range(n_ch):
            m = complex(m_re[k, c], m_im[k, c]) / n_block
            # a line's negative-frequency half leaks in when the block is not whole cycles
            # of the tracked line: meas = a + conj(a)·L, solved for a
            m = (m - m.conjugate() * leak[k]) / (1.0 - abs(leak[k]) ** 2)
            # a drift leaks into the demodulation; its slope comes from the block means
            # (hum averages out over whole cycles) and its leak is known in closed form
            m = m - slope_leak[k] * slope[c]
            meas[k, c] = m
            m_re[k, c] = 2.0 * m.real
            m_im[k, c] = 2.0 * m.imag
    # high-frequency power of what is not hum (the block's own fit, mean and linear trend
    # removed): EMG, not drift, and not hum left over, which must never look like activity
    rest = xs
    rmean = np.zeros(n_ch)
    for n in range(n_block):
        for k in range(n_harm):
            rc, rs = refc[n, k], refs[n, k]
            for c in range(n_ch):
                rest[n, c] -= rc * m_re[k, c] - rs * m_im[k, c]
        for c in range(n_ch):
            rmean[c] += rest[n, c]
    trend = np.zeros(n_ch)
    for n in range(n_block):
        for c in range(n_ch):
            rest[n, c] -= rmean[c] / n_block
            trend[c] += ramp[n] * rest[n, c]
    dof = n_block - 2 * n_harm - 2  # the fit and the trend took 2K + 2 degrees of freedom
    power = np.zeros(n_ch)
    for n in range(n_block):
        for c in range(n_ch):
            r = rest[n, c] - ramp[n] * trend[c]
            power[c] += r * r
    ist[1] += 1
    g = max(alpha, 1.0 / ist[1])  # the running mean at start-up
    weight = np.zeros(n_ch)
    quiet_now = np.empty(n_ch)
    noise = np.empty(n_ch)
    snr_scale = np.zeros(n_ch)
    snr_block = np.zeros(n_ch)
    for c in range(n_ch):
        power[c] /= dof
        # quiet level: a lower-middle quantile of the block powers, in logs; a block far
        # above it (a contraction) raises it by x1.002 at most
        lp = math.log(max(power[c], 1e-300))
        lq = lp if math.isnan(quiet[c]) else quiet[c]
        step = lp - lq
        if step < 0:
            lq += 0.02 * step
        elif step < GATE_LOG:
            lq += 0.01 * step
        else:
            lq += 0.002
        quiet_now[c] = math.exp(lq)
        if ok[c]:
            quiet[c] = lq
            gate = GATE * quiet_now[c]
            weight[c] = (gate / power[c]) ** 2 if power[c] > gate else 1.0
            # |c_k|² of noise alone is about σ²/block, σ² ≈ quiet / 2 for broadband noise
            noise[c] = LINE_SNR * quiet_now[c] / n_block
            snr_scale[c] = n_block / quiet_now[c]
            # the phase read in this block is as noisy as the block (EMG included)
            snr_block[c] = n_block / max(quiet_now[c], power[c])
        else:
            noise[c] = np.inf
    # amplitudes move toward their measurement; a line is subtracted once it stands 20x
    # (then while 10x) above the noise of its own estimate: hum-free channels pass
    # untouched. Judged at rest only.
    total = 0.0
    s_fll_sum = 0.0
    eps = 0.0
    snr_fll = 0.0
    theta = 0.0
    rho = 0.0
    quiet_lines = 0.0
    for k in range(n_harm):
        h = k + 1.0
        for c in range(n_ch):
            a_old = amplitude[k, c]
            m = meas[k, c]
            innov = m - a_old
            a_new = a_old + g * weight[c] * innov
            amplitude[k, c] = a_new
            est_noise = power[c] / n_block * g / (2.0 - g)
            level = a_new.real ** 2 + a_new.imag ** 2
            if weight[c] > 0.5:
                active[k, c] = level > (10.0 if active[k, c] else 20.0) * est_noise
            shown[k, c] = a_new if active[k, c] else 0.0
            # phase error of the lines above the noise, per fundamental radian. A burst
            # block (small weight) moves nothing: the weights are not normalised away.
            line = a_old.real ** 2 + a_old.imag ** 2
            strength = max(line - noise[c], 0.0)
            total += strength
            snr = line * snr_scale[c]
            if strength > 0:
                err = (innov * a_old.conjugate()).imag / line
                theta += weight[c] * strength * err / h
                rho += weight[c] * line * snr_block[c]
                quiet_lines += weight[c] * strength
            # frequency-locked loop: how far each line turned since the last block
            # (unambiguous for the low harmonics), pulls in a large offset at once
            prev = prev_meas[k, c]
            prev_meas[k, c] = m if ok[c] and weight[c] >= 0.5 else complex(np.nan, np.nan)
            turn = m * prev.conjugate()
            if fll_harmonics[k] and not (math.isnan(turn.real) or math.isnan(turn.imag)):
                s_fll = max(m.real ** 2 + m.imag ** 2 - noise[c], 0.0)
                s_fll_sum += s_fll
                eps += weight[c] * s_fll * math.atan2(turn.imag, turn.real) / h
                snr_fll += snr
    nu = st[0]
    if s_fll_sum > 0:
        eps = eps / s_fll_sum / n_block
        # noise of that turn: a phase read at SNR ρ scatters by 1/sqrt(2ρ)
        spread = 1.0 / math.sqrt(max(snr_fll, 1e-12)) / n_block
        acquiring = ist[1] * n_block < acquire
        if acquiring and abs(eps) > max(fll_dead, 4.0 * spread):
            nu = min(max(nu + K_FLL * eps, -nu_max), nu_max)
    if total > 0:
        # the loop slows down on weak lines, where each phase reading is noisy
        theta = theta / total * (rho / (rho + SNR_FULL_GAIN))
        nu = min(max(nu + k_freq * theta, -nu_max), nu_max)
        # through a contraction the loop has no reading and the hum runs on; after
        # HOLD_ENGAGE_S of it, at the frequency of the quiet blocks before, averaged: the
        # loop's own frequency wanders by ~10 mHz, which a held line would turn into a
        # residual growing through the contraction. (Not at once: a single loud block,
        # as a fast-drifting line can cause, must not pull the loop to a stale average.)
        q = quiet_lines / total
        st[5] = st[5] + 1.0 if q < 0.5 else 0.0
        if ist[1] * n_block < acquire:
            st[3], st[4] = nu, 0.0
        else:
            st[4] += q  # a running mean at first, then an exponential average
            st[3] += max(beta, 1.0 / max(st[4], 1.0)) * q * (nu - st[3])
            # the average only takes out the loop's noise: a larger difference is a real
            # drift, which the last reading follows better
            near = max(0.0, 1.0 - abs(st[3] - nu) / hold_noise)
            nu += (1.0 - q) * min(1.0, st[5] * engage) * near * (st[3] - nu)
        st[1] += k_phase * theta
        # the frame turned: so did the last measurement, seen from it
        for k in range(n_harm):
            turn_back = complex(math.cos((k + 1.0) * k_phase * theta),
                                -math.sin((k + 1.0) * k_phase * theta))
            for c in range(n_ch):
                prev_meas[k, c] = prev_meas[k, c] * turn_back
    st[0] = nu


# compile (or load from the cache) now, at import: not while a board's samples pile up
MainsCanceller(50.0, 1000.0, 1).process(np.empty((0, 1)))
