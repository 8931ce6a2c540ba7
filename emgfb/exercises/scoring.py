"""Scores of one exercise repetition: tracking, suppression, symmetry and synkinesis.

This module owns the per-repetition metrics of DOMAIN.md §4 ("Scoring" and "Symmetry" /
"Synkinesis" rows) as pure functions on numpy arrays, and :func:`score_rep`, which builds
the dict stored in a recording's ``scores`` document (names in :data:`METRICS`). Every
function ignores samples where an input is NaN (lost samples, settling filters) and
returns ``None`` where the metric is undefined (no valid samples, flat target ...), which
is JSON ``null`` in the recording; :func:`score_rep` says why in ``undefined``. It also
owns the rule that makes a repetition *invalid* (:func:`rep_validity`: a channel it uses
was not trustworthy, or too few valid samples) and :func:`valid_reps`, the only way
results average repetitions: invalid ones never count. Imports numpy, scipy and
``emgfb.dsp`` only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import signal

from emgfb.dsp.metrics import (
    asymmetry_index,
    cocon_normalised,
    oral_ocular_index,
    pair_activity,
    symmetry_ratio,
)

#: Metric names of a score dict, in report order, with their unit.
METRICS: dict[str, str] = {
    "pct_in_band": "%",
    "nrmse": "",
    "overshoot_pct": "%",
    "lag_ms": "ms",
    "pct_below_ceiling": "%",
    "symmetry_ratio": "",
    "asymmetry_index": "",
    "oral_ocular_index": "",
    "cocon": "%",
}

#: Least share of a repetition with a valid target envelope for a valid repetition.
MIN_VALID_FRACTION = 0.8

#: Largest lag searched by :func:`lag_ms`, in seconds.
MAX_LAG_S = 1.0


def _finite(x: np.ndarray | float | None) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _pair(tracked: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(tracked, float), np.asarray(target, float)
    if x.shape != y.shape:
        raise ValueError(f"tracked {x.shape} and target {y.shape} differ in shape")
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def pct_in_band(tracked: np.ndarray, target: np.ndarray, band: float) -> float | None:
    """% of valid samples with ``|tracked − target| <= band`` (DOMAIN.md §4: ±10 % band).

    Both in % of the healthy reference; ``band`` in % points.
    """
    x, y = _pair(tracked, target)
    if not len(x):
        return None
    return float(100.0 * np.mean(np.abs(x - y) <= band))


def nrmse(tracked: np.ndarray, target: np.ndarray) -> float | None:
    """Normalised RMS tracking error: RMS(tracked − target) / max(|target|) (DOMAIN.md §4).

    ``None`` when the target is zero throughout (relax: see :func:`pct_in_band`).
    """
    x, y = _pair(tracked, target)
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    if peak <= 0:
        return None
    return float(np.sqrt(np.mean((x - y) ** 2)) / peak)


def overshoot_pct(tracked: np.ndarray, target: np.ndarray) -> float | None:
    """Overshoot: max(0, max(tracked) − max(target)) / max(target) · 100 (DOMAIN.md §4).

    ``None`` when the target peak is not positive.
    """
    x, y = _pair(tracked, target)
    if not len(x) or not np.max(y) > 0:
        return None
    peak = float(np.max(y))
    return float(100.0 * max(0.0, float(np.max(x)) - peak) / peak)


def lag_ms(tracked: np.ndarray, target: np.ndarray, fs: float,
           max_lag_s: float = MAX_LAG_S, pipeline_delay_s: float = 0.0) -> float | None:
    """Lag of the patient behind the target: the cross-correlation peak (DOMAIN.md §4), ms.

    ``c[k] = Σ_n target[n − d] · tracked[n + k]`` over ``|k| <= max_lag_s · fs`` (NaN
    samples count as 0), where ``d`` is the envelope pipeline's own delay
    (:func:`emgfb.dsp.metrics.envelope_delay_s`): the target is delayed by it, so an
    on-time patient reads 0 and the pipeline delay is reported apart. Positive = late.
    Both series are in % of the reference, 0 at rest, and a repetition starts and ends at
    rest, so they are not mean-removed (removing the mean would weight the rest edges and
    bias the peak towards 0). ``None`` if either series is all zero.
    """
    x = np.nan_to_num(np.asarray(tracked, float))
    y = np.nan_to_num(np.asarray(target, float))
    if x.shape != y.shape:
        raise ValueError(f"tracked {x.shape} and target {y.shape} differ in shape")
    if len(x) < 3 or not (np.any(x != 0) and np.any(y != 0)):
        return None
    corr = signal.correlate(x, y, mode="full")
    lags = signal.correlation_lags(len(x), len(y), mode="full")
    keep = np.abs(lags) <= max_lag_s * fs
    k = int(lags[keep][np.argmax(corr[keep])])
    return float(1000.0 * k / fs - 1000.0 * pipeline_delay_s)


def pct_below_ceiling(suppression: np.ndarray, ceiling: Sequence[float] | np.ndarray
                      ) -> float | None:
    """% of valid samples where every suppression channel is below its ceiling (§4).

    ``suppression`` is ``(n, k)`` (or ``(n,)``) envelope, ``ceiling`` one level per column
    in the same unit. ``None`` without suppression channels or valid samples.
    """
    s = np.asarray(suppression, float)
    if s.ndim == 1:
        s = s[:, None]
    c = np.asarray(ceiling, float).reshape(-1)
    if s.shape[1] == 0 or not len(s):
        return None
    ok = np.all(np.isfinite(s), axis=1)
    if not ok.any():
        return None
    return float(100.0 * np.mean(np.all(s[ok] < c, axis=1)))


def symmetry(affected: np.ndarray, healthy: np.ndarray, rest_mean: Sequence[float],
             rest_sd: Sequence[float]) -> tuple[float | None, float | None, str | None]:
    """Symmetry ratio A/H and asymmetry index (H−A)/(H+A) of a repetition (DOMAIN.md §4).

    A and H are each side's activity above rest in power terms
    (:func:`emgfb.dsp.metrics.pair_activity`), so R >= 0 and −1 <= AI <= 1. Both are
    undefined when both sides rest, R alone when the healthy side rests (AI = −1 then);
    the third value says why.
    """
    a, h, reason = pair_activity(affected, healthy, rest_mean, rest_sd)
    if reason in ("no valid samples", "both sides at rest"):
        return None, None, reason
    ai = _finite(asymmetry_index(a, h))
    if reason is not None:
        return None, ai, reason
    return _finite(symmetry_ratio(a, h)), ai, None


def oral_ocular(ocular_during_rep: np.ndarray, ocular_during_closure: np.ndarray | float,
                ocular_rest: float) -> float | None:
    """Oral-ocular synkinesis index: eye activity in the smile ÷ in gentle eye closure,
    both minus rest (DOMAIN.md §4, :func:`emgfb.dsp.metrics.oral_ocular_index`)."""
    return _finite(oral_ocular_index(ocular_during_rep, ocular_during_closure, ocular_rest))


def rep_validity(*, channel_problems: dict[int, str], labels: Sequence[str],
                 n_valid: int, n_samples: int) -> tuple[bool, str | None]:
    """Whether a repetition's scores can be trusted, and why not.

    Parameters
    ----------
    channel_problems
        Channel index -> the first reason a channel the repetition uses (target, healthy
        partner, suppression, ocular) was not in the good state during it, e.g.
        ``"flat line: electrode off"``.
    labels
        Channel labels, for the reason.
    n_valid, n_samples
        Valid target-envelope samples and the repetition's length.

    Returns
    -------
    (bool, str or None)
        ``valid`` and ``invalid_reason`` (one line naming the channel).
    """
    for ch, why in sorted(channel_problems.items()):
        return False, f"{labels[ch]}: {why}"
    if n_samples <= 0 or n_valid < MIN_VALID_FRACTION * n_samples:
        share = 100.0 * n_valid / n_samples if n_samples > 0 else 0.0
        return False, (f"only {share:.0f} % of the repetition has a valid envelope "
                       f"(lost samples); expected at least {100 * MIN_VALID_FRACTION:.0f} %")
    return True, None


def valid_reps(scores: Sequence[dict]) -> list[dict]:
    """The repetitions that count: ``valid`` true (files before validity count as valid)."""
    return [s for s in scores if s.get("valid", True)]


def score_rep(*, tracked_pct: np.ndarray, target_pct: np.ndarray, band_pct: float,
              fs: float, affected_uv: np.ndarray, healthy_uv: np.ndarray,
              rest_mean_uv: Sequence[float], rest_sd_uv: Sequence[float],
              suppression_uv: np.ndarray | None = None,
              ceiling_uv: Sequence[float] | None = None,
              ocular_uv: np.ndarray | None = None,
              closure_ocular_uv: float | None = None,
              ocular_rest_uv: float | None = None,
              cocon_pair: tuple[np.ndarray, np.ndarray, Sequence[float], Sequence[float]]
              | None = None,
              pipeline_delay_s: float = 0.0) -> dict[str, Any]:
    """Every metric of :data:`METRICS` for one repetition, and why any is undefined.

    Parameters
    ----------
    tracked_pct, target_pct
        Affected target channel and its target, in % of the healthy reference, per sample.
    band_pct
        Tolerance band in % points.
    fs
        Sample rate (for the lag).
    affected_uv, healthy_uv, rest_mean_uv, rest_sd_uv
        Envelopes (µV) of the target muscle's two sides and their rest mean and SD
        ``(affected, healthy)`` (symmetry).
    suppression_uv, ceiling_uv
        ``(n, k)`` suppression envelopes and their ceilings in µV (or ``None``).
    ocular_uv, closure_ocular_uv, ocular_rest_uv
        Affected orbicularis oculi envelope during the rep, its mean during the gentle
        eye-closure reference and at rest, for the oral-ocular index (or ``None``).
    cocon_pair
        ``(target_uv, suppression_uv, rest_levels, references)`` for %COCON
        (:func:`emgfb.dsp.metrics.cocon_normalised`), or ``None``.
    pipeline_delay_s
        The envelope pipeline's own delay, taken out of the lag.

    Returns
    -------
    dict
        The metrics, plus ``undefined``: metric name -> reason, for each ``None`` whose
        reason is known.
    """
    undefined: dict[str, str] = {}
    sym, ai, why = symmetry(affected_uv, healthy_uv, rest_mean_uv, rest_sd_uv)
    if why:
        undefined["symmetry_ratio"] = why
        if ai is None:
            undefined["asymmetry_index"] = why
    below = None
    if suppression_uv is not None and ceiling_uv is not None and len(ceiling_uv):
        below = pct_below_ceiling(suppression_uv, ceiling_uv)
    ooi = None
    if ocular_uv is not None and closure_ocular_uv is not None and ocular_rest_uv is not None:
        ooi = oral_ocular(ocular_uv, closure_ocular_uv, ocular_rest_uv)
    cc = None
    if cocon_pair is not None:
        value, why = cocon_normalised(*cocon_pair)
        cc = _finite(value)
        if why:
            undefined["cocon"] = why
    out: dict[str, Any] = {
        "pct_in_band": pct_in_band(tracked_pct, target_pct, band_pct),
        "nrmse": nrmse(tracked_pct, target_pct),
        "overshoot_pct": overshoot_pct(tracked_pct, target_pct),
        "lag_ms": lag_ms(tracked_pct, target_pct, fs, pipeline_delay_s=pipeline_delay_s),
        "pipeline_delay_ms": 1000.0 * pipeline_delay_s,
        "pct_below_ceiling": below,
        "symmetry_ratio": sym,
        "asymmetry_index": ai,
        "oral_ocular_index": ooi,
        "cocon": cc,
    }
    if out["nrmse"] is None and not np.any(np.nan_to_num(np.asarray(target_pct, float)) > 0):
        undefined["nrmse"] = undefined["overshoot_pct"] = "the target is 0 (relax)"
    out["undefined"] = undefined
    return out
