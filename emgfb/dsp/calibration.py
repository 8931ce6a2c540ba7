"""Calibration and normalisation of envelopes: rest baseline, reference contraction, %.

This module owns the per-channel rest :class:`Baseline` (mean and SD of the envelope over
relaxed rest), the reference contraction (peak 500 ms RMS of a 3-5 s effort, DOMAIN.md §4),
the check that a reference clears rest clearly (:func:`check_reference`) and the
normalised views of an envelope: rest-subtracted, % of the channel's own reference and %
of the healthy homologous side's reference (pairs from :meth:`emgfb.montage.Montage.pairs`).

Rest noise and muscle activity add in power, so the rest level is subtracted in
quadrature, ``sqrt(max(env² − rest², 0))`` (:func:`subtract_rest`), never linearly (a
true 5 % effort would read 2.4 %). The rest level is :attr:`Baseline.level`, the RMS of
the rest envelope. Works offline on arrays; NaN rows (lost samples, settling filters) are
ignored. Imports numpy and ``emgfb.errors`` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from emgfb.errors import CalibrationError


@dataclass(frozen=True)
class Baseline:
    """Rest level of each channel's envelope.

    Attributes
    ----------
    mean, sd
        Per-channel mean and standard deviation (µV), shape ``(n_channels,)``.
    n_samples
        Valid samples per channel the statistics were computed from.
    """

    mean: np.ndarray
    sd: np.ndarray
    n_samples: np.ndarray

    @property
    def level(self) -> np.ndarray:
        """Rest level in power terms, ``sqrt(mean² + sd²)`` = RMS of the rest envelope (µV).

        This is what :func:`subtract_rest` removes: noise adds to activity in power.
        """
        return np.sqrt(np.asarray(self.mean, float) ** 2 + np.asarray(self.sd, float) ** 2)

    def threshold(self, k: float) -> np.ndarray:
        """``mean + k * sd`` per channel (e.g. k = 3 for onsets or a suppression ceiling)."""
        return self.mean + k * self.sd

    def as_dict(self) -> dict[str, list[float]]:
        """Plain lists for a recording's metadata."""
        return {"mean": self.mean.tolist(), "sd": self.sd.tolist(),
                "n_samples": self.n_samples.tolist()}


def _as_2d(envelope: np.ndarray) -> np.ndarray:
    envelope = np.asarray(envelope, dtype=float)
    if envelope.ndim == 1:
        envelope = envelope[:, None]
    if envelope.ndim != 2:
        raise ValueError(f"expected an (n_samples, n_channels) array, got {envelope.shape}")
    return envelope


def rest_baseline(envelope: np.ndarray, fs: float | None = None,
                  min_duration_s: float = 0.0) -> Baseline:
    """Mean and SD of the envelope over a rest period, per channel.

    Parameters
    ----------
    envelope
        ``(n, n_channels)`` envelope (µV) recorded at relaxed rest; NaN rows are skipped.
    fs
        Sampling rate, needed only to enforce ``min_duration_s``.
    min_duration_s
        Shortest acceptable valid rest per channel (DOMAIN.md: 60 s advised, 10 s minimum).

    Raises
    ------
    CalibrationError
        If a channel has fewer than two valid samples or less than ``min_duration_s``.
    """
    env = _as_2d(envelope)
    valid = ~np.isnan(env)
    count = valid.sum(axis=0)
    need = max(2, int(np.ceil(min_duration_s * fs)) if fs else 2)
    short = np.flatnonzero(count < need)
    if short.size:
        ch = int(short[0])
        have = f"{count[ch] / fs:.2f} s" if fs else f"{count[ch]} samples"
        want = f"{need / fs:.2f} s" if fs else f"{need} samples"
        raise CalibrationError(
            f"rest baseline: channel {ch} has {have} of valid signal; expected at least {want}")
    mean = np.nanmean(env, axis=0)
    sd = np.nanstd(env, axis=0, ddof=1)
    return Baseline(mean, sd, count)


def moving_rms_centred(x: np.ndarray, window: int) -> np.ndarray:
    """Centred moving RMS over ``window`` samples; NaN where a window is incomplete."""
    x = _as_2d(x)
    n = len(x)
    out = np.full(x.shape, np.nan)
    if window < 1 or n < window:
        return out
    valid = ~np.isnan(x)
    sq = np.where(valid, x * x, 0.0)
    c = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(sq, axis=0)])
    k = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(valid, axis=0)])
    sums = c[window:] - c[:-window]
    full = (k[window:] - k[:-window]) == window
    rms = np.sqrt(np.maximum(sums, 0.0) / window)
    start = (window - 1) // 2
    out[start:start + len(rms)] = np.where(full, rms, np.nan)
    return out


def reference_contraction(envelope: np.ndarray, fs: float, window_s: float = 0.5
                          ) -> np.ndarray:
    """Peak ``window_s`` RMS of a reference effort, per channel (DOMAIN.md §4).

    Parameters
    ----------
    envelope
        ``(n, n_channels)`` envelope or filtered µV signal during a 3-5 s effort. The RMS
        of a moving-RMS envelope over 500 ms equals the 500 ms RMS of the signal (up to
        the envelope window), so either input gives the same reference.
    fs
        Sampling rate in Hz.
    window_s
        RMS window (500 ms by default).

    Returns
    -------
    numpy.ndarray
        ``(n_channels,)`` reference levels in µV.

    Raises
    ------
    CalibrationError
        If a channel has no complete window of valid samples.
    """
    env = _as_2d(envelope)
    window = max(1, int(round(window_s * fs)))
    rms = moving_rms_centred(env, window)
    bad = np.flatnonzero(np.all(np.isnan(rms), axis=0))
    if bad.size:
        raise CalibrationError(
            f"reference contraction: channel {int(bad[0])} has no complete {window_s:g} s "
            f"window of valid signal in {len(env) / fs:.2f} s; expected a 3-5 s effort")
    return np.nanmax(rms, axis=0)


#: A reference contraction must exceed the rest level by this factor (power-subtracted).
MIN_REFERENCE_RATIO = 5.0
#: ... and by at least this many µV (power-subtracted), so a flat channel never passes.
MIN_REFERENCE_UV = 5.0


def subtract_rest(envelope: np.ndarray | float, rest: np.ndarray | float
                  ) -> np.ndarray | float:
    """Activity above rest, subtracted in power: ``sqrt(max(env² − rest², 0))``.

    An RMS envelope over rest noise is ``sqrt(signal² + noise²)``; this recovers the
    signal. NaN stays NaN. ``rest`` broadcasts (one value per channel).
    """
    env = np.asarray(envelope, dtype=float)
    r = np.asarray(rest, dtype=float)
    with np.errstate(invalid="ignore"):
        out = np.sqrt(np.maximum(env * env - r * r, 0.0))
    out = np.where(np.isnan(env), np.nan, out)
    return out if out.ndim else float(out)


def baseline_subtracted(envelope: np.ndarray, baseline: Baseline) -> np.ndarray:
    """Envelope above the rest level per channel, in quadrature (:func:`subtract_rest`)."""
    return np.asarray(subtract_rest(_as_2d(envelope), baseline.level))


def check_reference(reference: float, rest_level: float, label: str) -> str | None:
    """Why a reference contraction does not clear rest clearly, or ``None`` if it does.

    The criterion (docs/metrics.md, "Reference contraction"): the reference above rest,
    ``sqrt(ref² − rest²)``, must be at least :data:`MIN_REFERENCE_RATIO` × the rest level
    and at least :data:`MIN_REFERENCE_UV`. Exercise targets start at 20 % of the healthy
    reference; at 5× rest, 20 % is as strong as the rest noise itself (0 dB), the least a
    bar can follow. A flat (electrode-off) channel reads 0 µV and always fails.
    """
    above = subtract_rest(reference, rest_level) if np.isfinite(reference) else float("nan")
    need = max(MIN_REFERENCE_RATIO * rest_level, MIN_REFERENCE_UV)
    if np.isfinite(above) and above >= need:
        return None
    return (f"{label} reference {reference:.3g} uV is {above:.3g} uV above its rest level "
            f"{rest_level:.3g} uV: expected at least {need:.3g} uV "
            f"({MIN_REFERENCE_RATIO:g}x rest, >= {MIN_REFERENCE_UV:g} uV)")


def _span(reference: np.ndarray, baseline: Baseline | None) -> np.ndarray:
    reference = np.asarray(reference, dtype=float)
    rest = baseline.level if baseline is not None else np.zeros(len(reference))
    span = np.asarray(subtract_rest(reference, rest))
    bad = np.flatnonzero(~(span > 0))
    if bad.size:
        ch = int(bad[0])
        raise CalibrationError(
            f"reference of channel {ch} = {reference[ch]:.3g} uV: expected a level above the "
            f"rest level ({rest[ch]:.3g} uV)")
    return span


def percent_of_reference(envelope: np.ndarray, reference: np.ndarray,
                         baseline: Baseline | None = None) -> np.ndarray:
    """Envelope as % of each channel's own reference contraction.

    With a baseline the rest level is subtracted in power from both the envelope and the
    reference first: ``100 * sqrt(env² − rest²) / sqrt(ref² − rest²)``.
    """
    env = _as_2d(envelope)
    rest = baseline.level if baseline is not None else 0.0
    return 100.0 * np.asarray(subtract_rest(env, rest)) / _span(reference, baseline)


def percent_of_healthy(envelope: np.ndarray, reference: np.ndarray,
                       pairs: Sequence[tuple[str, int, int]],
                       baseline: Baseline | None = None) -> np.ndarray:
    """Envelope as % of the healthy homologous muscle's reference.

    Parameters
    ----------
    envelope
        ``(n, n_channels)`` envelope.
    reference
        ``(n_channels,)`` reference contraction levels.
    pairs
        ``(muscle, affected_index, healthy_index)`` from :meth:`Montage.pairs`.
    baseline
        Optional rest baseline, subtracted in power from envelope and reference alike.

    Returns
    -------
    numpy.ndarray
        Same shape as ``envelope``: affected channels in % of their healthy partner's
        reference (``100·sqrt(env_A² − rest_A²)/sqrt(ref_H² − rest_H²)``), every other
        channel in % of its own reference.
    """
    env = _as_2d(envelope)
    span = _span(reference, baseline)
    rest = baseline.level if baseline is not None else np.zeros(env.shape[1])
    divisor = span.copy()
    for _muscle, affected, healthy in pairs:
        divisor[affected] = span[healthy]
    return 100.0 * np.asarray(subtract_rest(env, rest)) / divisor
