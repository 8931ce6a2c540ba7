"""Clinical metrics on envelopes: symmetry, co-contraction, synkinesis, onsets, TKEO.

This module owns the numbers a session report or an exercise score is built from
(DOMAIN.md §4): the symmetry ratio and asymmetry index of a homologous pair, Winter's
co-contraction index, the oral-ocular synkinesis index, onset/offset detection with
hysteresis and hold times, and the Teager-Kaiser energy operator. Pure functions on numpy
arrays; NaN samples never count as activity. Imports numpy, scipy and ``emgfb.dsp``
modules only.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from emgfb.dsp.settings import OnsetConfig


def _mean(x: np.ndarray | float) -> float:
    a = np.asarray(x, dtype=float)
    return float(np.nanmean(a)) if a.size and not np.all(np.isnan(a)) else float("nan")


def symmetry_ratio(affected: np.ndarray | float, healthy: np.ndarray | float
                   ) -> np.ndarray | float:
    """R = A / H, affected over healthy activity (DOMAIN.md §4); NaN where H = 0."""
    a, h = np.asarray(affected, float), np.asarray(healthy, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(h != 0, a / np.where(h != 0, h, 1.0), np.nan)
    return r if r.ndim else float(r)


def asymmetry_index(affected: np.ndarray | float, healthy: np.ndarray | float
                    ) -> np.ndarray | float:
    """AI = (H − A) / (H + A), 0 = symmetric, +1 = affected silent (DOMAIN.md §4)."""
    a, h = np.asarray(affected, float), np.asarray(healthy, float)
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
