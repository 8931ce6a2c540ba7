"""The numbers a report or progress page shows, with their glossary entries.

This module owns :class:`Metric` and the metric tables (per-repetition scores, derived,
calibration and signal-quality metrics) mirrored by ``docs/metrics.md``. Plain data: no
numpy, no matplotlib, no HTML.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """One number a report shows, with its glossary entry.

    Attributes
    ----------
    key
        Field name (in the ``scores`` document where it is a per-rep score).
    title
        Short column heading.
    unit
        Unit shown after the heading ("" for ratios).
    digits
        Decimals shown.
    definition
        One-line definition with the formula.
    source
        Where the definition comes from.
    better
        ``"higher"``, ``"lower"``, ``"zero"`` (closer to 0 is better), ``"one"`` or ``""``.
    limit
        Largest magnitude that can be a real measurement; beyond it the value is shown as
        implausible, never as a number (a flat reference once gave NRMSE 4e28).
    """

    key: str
    title: str
    unit: str
    digits: int
    definition: str
    source: str
    better: str = ""
    limit: float = math.inf


_SCORING = "DOMAIN.md §4 (Scoring)"

#: Per-repetition scores, in the order the tables show them (keys of the scores document).
SCORE_METRICS: tuple[Metric, ...] = (
    Metric("pct_in_band", "In band", "%", 1,
           "share of the repetition's samples where the affected target muscle, in % of the "
           "healthy reference, is within ±band_pct points (10 by default) of the target line",
           _SCORING, "higher"),
    Metric("nrmse", "NRMSE", "", 2,
           "normalised RMS tracking error: RMS(tracked − target) / max(target), both in % of "
           "the healthy reference; 0 = perfect tracking", _SCORING, "lower", 100.0),
    Metric("overshoot_pct", "Overshoot", "%", 1,
           "how far the tracked peak exceeds the target peak: 100·max(0, max(tracked) − "
           "max(target)) / max(target)", _SCORING, "lower", 10_000.0),
    Metric("lag_ms", "Lag", "ms", 0,
           "delay of the patient behind the target line: the peak of their "
           "cross-correlation (searched within ±1 s) minus the envelope pipeline's own "
           "delay (stored as pipeline_delay_ms); positive = late", _SCORING, "zero"),
    Metric("pct_below_ceiling", "Below ceiling", "%", 1,
           "share of the repetition's samples where every suppression (synkinetic) channel "
           "is below its ceiling (rest mean + 3 SD by default)",
           "DOMAIN.md §4 (Exercise, Scoring)",
           "higher"),
    Metric("symmetry_ratio", "R = A/H", "", 2,
           "symmetry ratio A/H: activity of the affected over the healthy side of the "
           "target muscle during the repetition, each above its rest level in power "
           "(sqrt(mean env² − rest²)); 1 = symmetric; undefined when the healthy side rests",
           "DOMAIN.md §4 (Symmetry)", "one", 100.0),
    Metric("asymmetry_index", "AI", "", 2,
           "asymmetry index (H − A)/(H + A) with the same A and H, between −1 and +1; "
           "0 = symmetric, +1 = affected side silent; undefined when both sides rest; "
           "|AI| ≤ 0.10 counts as symmetric (healthy faces are 7-9 % asymmetric)",
           "DOMAIN.md §4 (Symmetry)", "zero", 1.0),
    Metric("oral_ocular_index", "Oral-ocular", "", 2,
           "orbicularis oculi activity during the smile ÷ during gentle eye closure, both "
           "minus rest; 0 = no synkinesis, 1 = the eye closes as when asked to (smile "
           "exercises only)", "DOMAIN.md §4 (Synkinesis)", "lower"),
)

#: Numbers the report computes itself from the envelopes.
DERIVED_METRICS: tuple[Metric, ...] = (
    Metric("cocon", "%COCON", "%", 1,
           "Winter's co-contraction index of the target and the suppression muscle over the "
           "repetition, on envelopes normalised to each muscle's own reference (rest "
           "subtracted in power): 2·Σmin(a, b) / (Σa + Σb) · 100",
           "Winter 2009; DOMAIN.md §4 (Synkinesis)", "lower", 100.0),
)

#: Calibration values (``calibration`` document).
CALIBRATION_METRICS: tuple[Metric, ...] = (
    Metric("rest_mean_uv", "Rest mean", "µV", 2,
           "mean envelope over the relaxed rest baseline; relaxed facial muscle is ~1-3 µV",
           "DOMAIN.md §3, §4 (Baseline)"),
    Metric("rest_sd_uv", "Rest SD", "µV", 2,
           "standard deviation of the envelope over the rest baseline",
           "DOMAIN.md §4 (Baseline, Onset)"),
    Metric("ceiling_uv", "Ceiling", "µV", 2,
           "suppression ceiling = rest mean + 3 SD; a synkinetic muscle above it is firing",
           "DOMAIN.md §4 (Exercise)"),
    Metric("reference_uv", "Reference", "µV", 1,
           "reference contraction: peak 500 ms RMS of a 3-5 s effort of that muscle; "
           "targets are % of the healthy side's reference", "DOMAIN.md §4 (Normalisation)"),
    Metric("reference_ratio", "Ref. A/H", "", 2,
           "affected over healthy reference contraction of a homologous pair (strength "
           "symmetry at maximal effort); shown only when the healthy reference clears rest "
           "(docs/metrics.md)", "DOMAIN.md §4 (Normalisation, Symmetry)", "one", 100.0),
)

#: Signal-quality indicators (the impedance-check proxies of DOMAIN.md §6).
QUALITY_METRICS: tuple[Metric, ...] = (
    Metric("rest_rms_uv", "Rest RMS", "µV", 2,
           "RMS of the raw signal in the EMG band (mains bins left out) over the quietest "
           "1 s windows (the rest steps of a guided session); 1-3 µV expected",
           "DOMAIN.md §3, §6; emgfb.dsp.SignalQuality", "lower"),
    Metric("mains_db", "Mains", "dB", 1,
           "mains hum over the EMG floor: 10·log10(power in the mains bands / EMG-band power "
           "without them), median of 1 s windows; warn ≥ 30 dB",
           "DOMAIN.md §3, §6; emgfb.dsp.SignalQuality", "lower"),
    Metric("motion_ratio", "Motion", "", 2,
           "power below 20 Hz / power in 1 Hz..upper band corner, median of 1 s windows "
           "(movement artefact)", "DOMAIN.md §6; emgfb.dsp.SignalQuality", "lower"),
    Metric("clipping_pct", "Clipping", "%", 2,
           "share of samples at the ADC rails (0 or 2^bits − 1): saturation",
           "DOMAIN.md §6", "lower"),
    Metric("flat_pct", "Flat", "%", 1,
           "share of 1 s windows whose raw SD is below the flat-line threshold (electrode "
           "off or shorted)", "DOMAIN.md §6", "lower"),
    Metric("lost_ticks", "Lost samples", "", 0,
           "board ticks missing from the recording (gaps; never filled or joined)",
           "docs/file-format.md (raw/gaps)", "lower"),
)

#: Every metric a report or progress page shows, by key.
METRICS: dict[str, Metric] = {m.key: m for m in (
    SCORE_METRICS + DERIVED_METRICS + CALIBRATION_METRICS + QUALITY_METRICS)}

__all__ = ["CALIBRATION_METRICS", "DERIVED_METRICS", "METRICS", "QUALITY_METRICS",
           "SCORE_METRICS", "Metric"]
