"""Clinical metrics on envelopes: symmetry, co-contraction, synkinesis, onsets, TKEO.

This module owns the numbers a session report or an exercise score is built from
(DOMAIN.md §4): the symmetry ratio and asymmetry index of a homologous pair (bounded, and
undefined with a reason when both sides rest), Winter's co-contraction index on envelopes
normalised to each muscle's reference, the oral-ocular synkinesis index, onset/offset
detection with hysteresis and hold times, the Teager-Kaiser energy operator, the
envelope pipeline's own delay (:func:`envelope_delay_s`, taken out of tracking lags) and
the name of the envelope kind (:func:`envelope_label`: an RMS and an ARV envelope of the
same signal differ by ~11 %, so a number never goes without it). Pure functions on numpy
arrays; NaN samples never count as activity. Imports numpy, scipy and ``emgfb.dsp``
modules only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import signal

from emgfb.dsp.calibration import subtract_rest
from emgfb.dsp.settings import DspConfig, OnsetConfig
from emgfb.dsp.stages import MAX_HIGH_FRACTION, design_cascade, design_envelope_lowpass

#: Band over which the filter cascade's group delay is averaged: where facial sEMG has
#: most of its power (median frequency 60-100 Hz, DOMAIN.md §9).
DELAY_BAND_HZ = (40.0, 150.0)


def _mean(x: np.ndarray | float) -> float:
    a = np.asarray(x, dtype=float)
    return float(np.nanmean(a)) if a.size and not np.all(np.isnan(a)) else float("nan")


def symmetry_ratio(affected: np.ndarray | float, healthy: np.ndarray | float
                   ) -> np.ndarray | float:
    """R = A / H, affected over healthy activity above rest (DOMAIN.md §4).

    Activities below 0 count as 0, so R >= 0; NaN where H = 0 (undefined: see
    :func:`pair_activity` for the reason).
    """
    a = np.maximum(np.asarray(affected, float), 0.0)
    h = np.maximum(np.asarray(healthy, float), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(h != 0, a / np.where(h != 0, h, 1.0), np.nan)
    return r if r.ndim else float(r)


def asymmetry_index(affected: np.ndarray | float, healthy: np.ndarray | float
                    ) -> np.ndarray | float:
    """AI = (H − A) / (H + A), 0 = symmetric, +1 = affected silent (DOMAIN.md §4).

    Activities below 0 count as 0, so AI lies in [−1, 1]; NaN where both are 0.
    """
    a = np.maximum(np.asarray(affected, float), 0.0)
    h = np.maximum(np.asarray(healthy, float), 0.0)
    s = h + a
    with np.errstate(divide="ignore", invalid="ignore"):
        ai = np.where(s != 0, (h - a) / np.where(s != 0, s, 1.0), np.nan)
    return ai if ai.ndim else float(ai)


def is_symmetric(ai: np.ndarray | float, tolerance: float = 0.10) -> np.ndarray | bool:
    """|AI| <= tolerance; healthy faces are 7-9 % asymmetric, so ±10 % counts (DOMAIN.md §4)."""
    out = np.abs(np.asarray(ai, float)) <= tolerance
    return out if out.ndim else bool(out)


def cocon(a: np.ndarray, b: np.ndarray) -> float:
    """Winter's %COCON = 2·Σmin(a, b) / (Σa + Σb) · 100 (Winter 2009, DOMAIN.md §4).

    ``a`` and ``b`` are envelopes of two muscles over the same samples; rows where either
    is NaN are skipped.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = ~(np.isnan(a) | np.isnan(b))
    total = a[ok].sum() + b[ok].sum()
    if total <= 0:
        return float("nan")
    return float(200.0 * np.minimum(a[ok], b[ok]).sum() / total)


def pair_activity(affected: np.ndarray, healthy: np.ndarray, rest_mean: Sequence[float],
                  rest_sd: Sequence[float], k: float = 3.0
                  ) -> tuple[float, float, str | None]:
    """Activity of both sides of a pair over a stretch, above rest, and why R is undefined.

    Each side's activity is its mean envelope power minus its rest power, as a level:
    ``sqrt(max(mean(env²) − rest_level², 0))`` with ``rest_level² = mean² + sd²``, over
    samples where both sides are valid. A side *rests* when its activity is at most that
    of the rest ceiling ``mean + k·sd`` (the suppression ceiling, DOMAIN.md §4).

    Parameters
    ----------
    affected, healthy
        Envelopes (µV) of the two sides over the same samples.
    rest_mean, rest_sd
        ``(affected, healthy)`` rest mean and SD of the envelope (µV).
    k
        Ceiling in rest SDs.

    Returns
    -------
    (float, float, str or None)
        ``A``, ``H`` (µV) and the reason the symmetry ratio is undefined: ``"no valid
        samples"``, ``"both sides at rest"``, ``"healthy side at rest"``; else ``None``.
    """
    a, h = np.asarray(affected, float), np.asarray(healthy, float)
    ok = np.isfinite(a) & np.isfinite(h)
    if not ok.any():
        return float("nan"), float("nan"), "no valid samples"
    out = []
    resting = []
    for x, m, sd in ((a[ok], rest_mean[0], rest_sd[0]), (h[ok], rest_mean[1], rest_sd[1])):
        level = float(np.hypot(m, sd))
        act = float(subtract_rest(float(np.sqrt(np.mean(x * x))), level))
        out.append(act)
        resting.append(act <= float(subtract_rest(m + k * sd, level)))
    if resting[0] and resting[1]:
        return out[0], out[1], "both sides at rest"
    if resting[1]:
        return out[0], out[1], "healthy side at rest"
    return out[0], out[1], None


def cocon_normalised(a: np.ndarray, b: np.ndarray, rest: Sequence[float],
                     reference: Sequence[float]) -> tuple[float, str | None]:
    """Winter's %COCON on envelopes normalised to each muscle's reference, with a reason.

    Each envelope is taken above its rest level in power and divided by its reference
    above rest, ``sqrt(env² − rest²) / sqrt(ref² − rest²)`` (so 1 = the muscle's
    reference), then :func:`cocon` is applied. Winter's index is defined on normalised
    envelopes: on raw µV a muscle 5× smaller caps a perfect overlap at 33 %.

    Parameters
    ----------
    a, b
        Envelopes (µV) of the two muscles over the same samples.
    rest
        Rest levels ``(a, b)`` in power terms (:attr:`Baseline.level`), µV.
    reference
        Reference contractions ``(a, b)`` in µV.

    Returns
    -------
    (float, str or None)
        %COCON, or NaN and the reason (missing reference, reference not above rest, both
        muscles at rest).
    """
    spans = []
    for name, r, ref in (("first", rest[0], reference[0]), ("second", rest[1], reference[1])):
        if ref is None or not np.isfinite(ref):
            return float("nan"), f"no reference contraction of the {name} muscle"
        span = float(subtract_rest(float(ref), float(r)))
        if not span > 0:
            return float("nan"), f"the {name} muscle's reference is not above its rest level"
        spans.append(span)
    na = np.asarray(subtract_rest(np.asarray(a, float), rest[0])) / spans[0]
    nb = np.asarray(subtract_rest(np.asarray(b, float), rest[1])) / spans[1]
    value = cocon(na, nb)
    return (value, None) if np.isfinite(value) else (float("nan"), "both muscles at rest")


def envelope_delay_s(config: DspConfig, fs: float) -> float:
    """The envelope pipeline's own delay behind the muscle, in seconds.

    The filter cascade's group delay averaged (median) over :data:`DELAY_BAND_HZ`, plus
    the envelope's: ``(N − 1) / 2`` samples for a moving RMS of ``N`` samples, or the
    low-pass's group delay near 1 Hz for an ARV envelope. A tracking lag measured on
    envelopes includes it; :func:`emgfb.exercises.scoring.lag_ms` takes it out.
    """
    sos = design_cascade(config, fs)
    lo, hi = DELAY_BAND_HZ
    hi = min(hi, MAX_HIGH_FRACTION * fs)
    f = np.linspace(lo, hi, 256)
    delay = 0.0
    if len(sos):
        delay += float(np.median(_sos_group_delay(sos, f, fs))) / fs
    env = config.envelope
    if env.method == "rms":
        window = max(1, round(env.window_ms * fs / 1000.0))
        delay += (window - 1) / 2.0 / fs
    else:
        lp = design_envelope_lowpass(env.lowpass_hz, env.lowpass_order, fs)
        delay += float(_sos_group_delay(lp, np.array([1.0]), fs)[0]) / fs
    return delay


def _sos_group_delay(sos: np.ndarray, f: np.ndarray, fs: float) -> np.ndarray:
    """Group delay (samples) of an SOS cascade at frequencies ``f`` (Hz): the derivative of
    the unwrapped phase, from the response on a grid 0.05 Hz fine around each ``f``."""
    step = 0.05
    grid = np.concatenate([f - step / 2, f + step / 2])
    _w, h = signal.sosfreqz(np.atleast_2d(sos), worN=grid, fs=fs)
    phase = np.angle(h[len(f):] * np.conj(h[:len(f)]))  # phase step across each pair
    return -phase / (2 * np.pi * step / fs)


def envelope_label(config: DspConfig) -> str:
    """What kind of envelope a number was computed on, e.g. ``"RMS envelope (100 ms)"``.

    RMS (moving root-mean-square) and ARV (average rectified value: full-wave rectified and
    low-passed) envelopes of the same signal differ (by √(π/2) ≈ 1.25 for Gaussian EMG, as
    RMS / mean |x|), so they are labelled apart wherever a level is shown.
    """
    env = config.envelope
    if env.method == "rms":
        return f"RMS envelope ({env.window_ms:g} ms moving window)"
    return (f"ARV envelope (full-wave rectified, {env.lowpass_hz:g} Hz low-pass, "
            f"order {env.lowpass_order})")


def oral_ocular_index(ocular_during_smile: np.ndarray | float,
                      ocular_during_closure: np.ndarray | float,
                      ocular_rest: np.ndarray | float = 0.0) -> float:
    """Orbicularis oculi activity in a smile ÷ in gentle eye closure, both minus rest.

    Oral-ocular synkinesis index of DOMAIN.md §4; arrays are averaged (NaN-aware) first.
    0 = no synkinesis, 1 = the eye closes as hard as when asked to.
    """
    rest = _mean(ocular_rest)
    denom = _mean(ocular_during_closure) - rest
    if not denom > 0:
        return float("nan")
    return (_mean(ocular_during_smile) - rest) / denom


def tkeo(x: np.ndarray) -> np.ndarray:
    """Teager-Kaiser energy ψ[n] = x[n]² − x[n−1]·x[n+1] along axis 0 (Kaiser 1990).

    The first and last rows repeat their neighbours.
    """
    x = np.asarray(x, float)
    out = np.empty_like(x)
    if len(x) < 3:
        out[...] = x * x
        return out
    out[1:-1] = x[1:-1] ** 2 - x[:-2] * x[2:]
    out[0], out[-1] = out[1], out[-2]
    return out


def tkeo_activation(filtered: np.ndarray, fs: float, lowpass_hz: float = 50.0) -> np.ndarray:
    """TKEO of the filtered signal, rectified and low-passed (Solnik et al. 2010).

    Use as the activation signal for :func:`detect_onsets` (with a baseline computed on
    the same transform) when onsets must be sharper than the RMS envelope allows.
    """
    sos = signal.butter(2, lowpass_hz, "lowpass", fs=fs, output="sos")
    return signal.sosfilt(sos, np.abs(tkeo(filtered)), axis=0)


def detect_onsets(activation: np.ndarray, fs: float, mean: float, sd: float,
                  onset: OnsetConfig | None = None) -> list[tuple[int, int]]:
    """Onsets and offsets of one channel's activity, with hysteresis and hold times.

    Onset: the first sample of a run above ``mean + k_on·SD`` lasting ``hold_on_ms``;
    offset: the first sample of a later run below ``mean + k_off·SD`` lasting
    ``hold_off_ms`` (Hodges & Bui 1996 style; defaults DOMAIN.md §4). NaN samples break
    runs.

    Parameters
    ----------
    activation
        1-D envelope (or :func:`tkeo_activation`) of one channel.
    fs
        Sampling rate in Hz.
    mean, sd
        Rest baseline of ``activation`` (:class:`~emgfb.dsp.calibration.Baseline`).
    onset
        Thresholds and hold times (defaults of ``[onset]``).

    Returns
    -------
    list of (int, int)
        ``(onset_index, offset_index)``; the offset is ``len(activation)`` when the
        activity lasts to the end.
    """
    cfg = onset or OnsetConfig()
    x = np.asarray(activation, float)
    if x.ndim != 1:
        raise ValueError(f"expected one channel (1-D), got shape {x.shape}")
    hold_on = max(1, round(cfg.hold_on_ms * fs / 1000.0))
    hold_off = max(1, round(cfg.hold_off_ms * fs / 1000.0))
    with np.errstate(invalid="ignore"):
        above = x > mean + cfg.k_on * sd
        below = x < mean + cfg.k_off * sd
    on_starts = _run_starts(above, hold_on)
    off_starts = _run_starts(below, hold_off)
    events = []
    pos = 0
    while True:
        i = np.searchsorted(on_starts, pos)
        if i == len(on_starts):
            break
        start = int(on_starts[i])
        j = np.searchsorted(off_starts, start + 1)
        stop = int(off_starts[j]) if j < len(off_starts) else len(x)
        events.append((start, stop))
        if stop >= len(x):
            break
        pos = stop
    return events


def _run_starts(mask: np.ndarray, min_len: int) -> np.ndarray:
    """Start indices of True runs of at least ``min_len`` samples."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    starts, stops = edges[::2], edges[1::2]
    return starts[(stops - starts) >= min_len]
