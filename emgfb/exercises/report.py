"""Session reports: one self-contained, printable HTML page per recording (issue 6).

This module owns turning one emgfb session into the clinician's report: session details
(pseudonymous subject code, date, board, montage, DSP settings; never names, notes or
device serials), the calibration table, per-exercise and per-repetition score tables,
envelope plots per exercise with target band, ceiling and markers, symmetry and
synkinesis summaries, signal-quality notes and data gaps. Plots are PNG images embedded
as base64 ``data:`` URIs and the CSS is inline, so the page needs no other file, network
or JavaScript. It also owns the metric glossary :data:`METRICS` (shown in every report and
mirrored by ``docs/metrics.md``) and the helpers :mod:`emgfb.exercises.progress` shares.
A recording without exercise documents gets the session, quality, gaps and envelope
sections only. Imports ``errors``, ``recording`` (reader, envelope export), ``dsp``
(metrics, quality), numpy and matplotlib (Agg backend, imported when plotting); never Qt.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: A callable receiving one line of progress ("computing envelopes ...").
ProgressFn = Callable[[str], None]


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

_CSS = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#d9dee3; --soft:#f4f6f8; --accent:#2b6cb0;
        --good:#2f855a; --warn:#b7791f; --bad:#c53030; }
* { box-sizing: border-box; }
body { font: 14px/1.45 "Segoe UI", "Helvetica Neue", Arial, sans-serif; color: var(--ink);
       max-width: 1000px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
header { border-bottom: 3px solid var(--accent); margin-bottom: 8px; padding-bottom: 6px; }
h1 { font-size: 22px; margin: 0; font-weight: 600; }
.subtitle { color: var(--muted); margin: 2px 0 0; }
h2 { font-size: 17px; font-weight: 600; margin: 28px 0 8px; padding-bottom: 3px;
     border-bottom: 1px solid var(--line); break-after: avoid; }
h3 { font-size: 15px; font-weight: 600; margin: 18px 0 6px; break-after: avoid; }
p, ul { margin: 6px 0; }
.note { color: var(--muted); font-size: 12.5px; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px;
        font-variant-numeric: tabular-nums; break-inside: avoid; }
th, td { padding: 3px 9px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; }
td:first-child { white-space: nowrap; }
.sd { color: var(--muted); font-size: 11.5px; }
table.facts th { background: none; color: var(--muted); font-weight: normal; width: 11em; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 0 28px; }
.good { color: var(--good); } .warn { color: var(--warn); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
.badge { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px;
         border: 1px solid currentColor; }
figure { margin: 8px 0 14px; break-inside: avoid; }
figure img { width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 12px; margin-top: 2px; }
dl.glossary { display: grid; grid-template-columns: 11em 1fr; gap: 3px 14px; font-size: 12.5px; }
dl.glossary dt { font-weight: 600; } dl.glossary dd { margin: 0; }
dl.glossary .src { color: var(--muted); }
footer { margin-top: 32px; color: var(--muted); font-size: 11.5px;
         border-top: 1px solid var(--line); padding-top: 6px; }
@media print { body { padding: 0; max-width: none; font-size: 11pt; }
               h2 { break-before: auto; } a { color: inherit; } }
"""

_AFFECTED_COLOUR = "#c05621"
_HEALTHY_COLOUR = "#2b6cb0"
_SUPPRESS_COLOURS = ("#6b46c1", "#2f855a", "#975a16", "#4a5568")


# ---------------------------------------------------------------------------------- helpers
def esc(text: Any) -> str:
    """HTML-escape ``text`` (also quotes)."""
    return html.escape(str(text), quote=True)


def fmt(value: Any, digits: int = 2) -> str:
    """A number with ``digits`` decimals; an en dash for None/NaN; text as is."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float, np.integer, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return "–"
        return f"{v:.{digits}f}" if digits else f"{round(v):d}"
    return str(value)


def fmt_metric(key: str, value: Any) -> str:
    """``value`` formatted with the decimals of metric ``key``; "implausible" beyond the
    metric's :attr:`Metric.limit`, never an absurd number."""
    m = METRICS.get(key)
    v = _num(value)
    if m is not None and math.isfinite(v) and abs(v) > m.limit:
        return "implausible"
    return fmt(value, m.digits if m else 2)


def metric_heading(m: Metric) -> str:
    """Column heading with the unit, e.g. ``In band (%)``."""
    return f"{m.title} ({m.unit})" if m.unit else m.title


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], cls: str = "",
          numeric: Sequence[bool] | None = None) -> str:
    """An HTML table; cells are escaped unless they are already markup (:class:`Raw`)."""
    numeric = list(numeric) if numeric is not None else [False] * len(headers)
    head = "".join(f'<th class="num">{esc(h)}</th>' if n else f"<th>{esc(h)}</th>"
                   for h, n in zip(headers, numeric, strict=True))
    body = []
    for row in rows:
        cells = []
        for value, n in zip(row, numeric, strict=True):
            text = value.html if isinstance(value, Raw) else esc(value)
            cells.append(f'<td class="num">{text}</td>' if n else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cls_attr = f' class="{cls}"' if cls else ""
    return f"<table{cls_attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


@dataclass(frozen=True)
class Raw:
    """Markup that :func:`table` must not escape."""

    html: str


def figure_png(fig: Any, caption: str, attrs: str = "") -> str:
    """Render a matplotlib figure to an embedded PNG ``<figure>`` and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (f"<figure{(' ' + attrs) if attrs else ''}><img alt=\"{esc(caption)}\" "
            f"src=\"data:image/png;base64,{data}\"><figcaption>{esc(caption)}</figcaption>"
            "</figure>")


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 8.5, "axes.spines.top": False,
                         "axes.spines.right": False, "axes.titlesize": 9,
                         "axes.titleweight": "bold", "legend.fontsize": 7.5,
                         "legend.frameon": False})
    return plt


def glossary(metrics: Iterable[Metric]) -> str:
    """The definitions section: one line per metric with its source."""
    items = []
    for m in metrics:
        items.append(f"<dt>{esc(metric_heading(m))}</dt><dd>{esc(m.definition)} "
                     f"<span class=\"src\">Source: {esc(m.source)}.</span></dd>")
    return f"<dl class=\"glossary\">{''.join(items)}</dl>"


def page(title: str, subtitle: str, body: str) -> str:
    """A whole self-contained HTML page."""
    from emgfb import __version__

    now = datetime.now(UTC).strftime("%Y-%m-%d")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p class=\"subtitle\">{esc(subtitle)}</p></header>"
        f"{body}<footer>Generated by emgfb {esc(__version__)} on {now}. Pseudonymised "
        "health data (GDPR Art. 4(5), Art. 9): subject codes only, no names or device "
        "serials. Not a medical device.</footer></body></html>\n")


def write_html(out: str | Path, text: str, force: bool = False,
               inputs: Iterable[str | Path] = ()) -> Path:
    """Write ``text`` to ``out`` by the output rule (:mod:`emgfb.outputs`): atomically,
    never over ``inputs`` or a session, an existing file only with ``force``.

    Raises
    ------
    EmgfbError
        If ``out`` may not or cannot be written (one line).
    """
    from emgfb.outputs import atomic_output

    with atomic_output(out, inputs=inputs, force=force) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(out)


def session_date(meta: dict[str, Any]) -> datetime | None:
    """The session's start as an aware UTC datetime, or None if unknown."""
    text = meta.get("start_time_utc") or ""
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _num(value: Any) -> float:
    """Float of a score value; NaN for None/missing/non-numbers."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return v


def mean_sd(values: Iterable[Any]) -> tuple[float, float, int]:
    """NaN-aware mean, SD (ddof 1) and count of defined values."""
    a = np.array([_num(v) for v in values], dtype=float)
    a = a[np.isfinite(a)]
    if not len(a):
        return float("nan"), float("nan"), 0
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else float("nan"), len(a)


# ------------------------------------------------------------------------ exercise documents
def exercise_name(row: dict[str, Any]) -> str:
    """The exercise label of a score row or protocol step."""
    return str(row.get("exercise") or row.get("label") or row.get("name") or
               f"step {row.get('step', '?')}")


def group_scores(scores: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Score rows grouped by exercise, in the order exercises first appear."""
    out: dict[str, list[dict[str, Any]]] = {}
    for row in scores:
        out.setdefault(exercise_name(row), []).append(row)
    return out


def exercise_summary(rows: Sequence[dict[str, Any]]) -> dict[str, tuple[float, float, int]]:
    """Per score metric: mean, SD and count over the *valid* reps of one exercise (invalid
    reps never count: :func:`emgfb.exercises.scoring.valid_reps`)."""
    from emgfb.exercises.scoring import valid_reps

    good = valid_reps(rows)
    return {m.key: mean_sd(r.get(m.key) for r in good) for m in SCORE_METRICS}


def invalid_note(rows: Sequence[dict[str, Any]]) -> str:
    """"2 of 3 reps not valid: OOC-L: flat line ..." ("" when every rep is valid)."""
    bad = [r for r in rows if not r.get("valid", True)]
    if not bad:
        return ""
    reasons = list(dict.fromkeys(str(r.get("invalid_reason") or "not valid") for r in bad))
    return (f"{len(bad)} of {len(rows)} rep{'s' if len(rows) != 1 else ''} not valid "
            f"(left out of every mean): " + "; ".join(reasons))


def _steps(protocol: Any) -> list[dict[str, Any]]:
    if isinstance(protocol, dict):
        steps = protocol.get("steps") or protocol.get("step") or []
    elif isinstance(protocol, list):
        steps = protocol
    else:
        steps = []
    return [s for s in steps if isinstance(s, dict)]


def _per_channel(value: Any, n: int) -> np.ndarray:
    """A per-channel list (or ``{label: value}`` handled by the caller) as floats."""
    if isinstance(value, (list, tuple)) and len(value) == n:
        return np.array([_num(v) for v in value], dtype=float)
    return np.full(n, np.nan)


def calibration_values(calibration: Any, labels: Sequence[str]) -> dict[str, np.ndarray]:
    """Per-channel rest mean/SD, ceiling and reference (µV) from the calibration document.

    Accepts ``{"rest": {"mean_uv", "sd_uv"}, "reference_uv": [...]}`` (also ``mean``/``sd``
    and per-label dicts); missing values are NaN. The ceiling is the document's
    ``ceiling_uv`` if present, else rest mean + 3 SD.
    """
    n = len(labels)
    cal = calibration if isinstance(calibration, dict) else {}

    def pick(obj: Any, *keys: str) -> np.ndarray:
        if not isinstance(obj, dict):
            return _per_channel(obj, n)
        for k in keys:
            if k in obj:
                v = obj[k]
                if isinstance(v, dict):
                    return np.array([_num(v.get(lab)) for lab in labels], dtype=float)
                return _per_channel(v, n)
        return np.full(n, np.nan)

    rest = cal.get("rest", {})
    mean = pick(rest, "mean_uv", "mean")
    sd = pick(rest, "sd_uv", "sd")
    ref = pick(cal, "reference_uv", "reference")
    ceiling = pick(cal, "ceiling_uv")
    if np.all(np.isnan(ceiling)):
        ceiling = mean + 3.0 * sd
    return {"rest_mean_uv": mean, "rest_sd_uv": sd, "ceiling_uv": ceiling,
            "reference_uv": ref}


def channel_index(rec: Any, ref: Any) -> int | None:
    """Index of a channel named by index, label, or muscle (on the affected side)."""
    if ref is None:
        return None
    if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
        return int(ref) if 0 <= int(ref) < rec.n_channels else None
    text = str(ref)
    if text in rec.labels:
        return rec.labels.index(text)
    side = rec.montage.affected_side if rec.montage.affected_side != "none" else "left"
    hits = [i for i, c in enumerate(rec.montage.channels) if c.muscle == text]
    for i in hits:
        if rec.montage.channels[i].side == side:
            return i
    return hits[0] if hits else None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def healthy_partner(rec: Any, ch: int) -> int | None:
    """The homologous channel on the other side, or None."""
    for _muscle, a, h in rec.montage.pairs():
        if ch == a:
            return h
        if ch == h:
            return a
    return None


# ---------------------------------------------------------------------------- signal quality
def quality_table(rec: Any, cfg: Any, rest_spans: Sequence[tuple[int, int]],
                  progress: ProgressFn | None = None) -> list[dict[str, Any]]:
    """Per-channel quality indicators over the whole recording, 1 s windows.

    Parameters
    ----------
    rec
        Open recording.
    cfg
        :class:`~emgfb.dsp.DspConfig` (quality thresholds and bands).
    rest_spans
        ``(start_sample, stop_sample)`` of rest steps; the rest RMS is their median when
        given, else the median of the quietest 20 % of windows.
    progress
        Progress callback.

    Returns
    -------
    list of dict
        One per channel: the :data:`QUALITY_METRICS` keys plus ``states`` and ``hint``.
    """
    from emgfb.dsp import SignalQuality
    from emgfb.dsp.quality import BAD, GOOD, UNKNOWN, WARN, grade, summarise

    q = cfg.quality
    adc_max = (2 ** rec.info.bits - 1) if rec.info is not None and rec.info.bits else None
    sq = SignalQuality(cfg, rec.fs, rec.n_channels, adc_max=adc_max)
    win = sq.size
    n_win = rec.n_samples // win
    rms, mains, motion, sd, starts = [], [], [], [], []
    clipped = np.zeros(rec.n_channels)
    block = max(win, (500_000 // win) * win)
    for lo in range(0, n_win * win, block):
        hi = min(lo + block, n_win * win)
        counts = np.asarray(rec.read_counts(lo, hi))
        uv = (counts.astype(np.float64) - rec.offset_counts) * rec.uv_per_count
        if adc_max is not None:
            clipped += ((counts <= 0) | (counts >= adc_max)).sum(axis=0)
        for w in range(0, hi - lo, win):
            sq.reset()
            res = sq.update(uv[w:w + win], counts[w:w + win])
            rms.append([c.rest_rms_uv for c in res])
            mains.append([c.mains_db for c in res])
            motion.append([c.motion_ratio for c in res])
            sd.append([c.raw_sd_uv for c in res])
            starts.append(lo + w)
        if progress and n_win > 600:
            progress(f"signal quality: {100 * hi / (n_win * win):.0f} %")
    out: list[dict[str, Any]] = []
    if not rms:
        for _c in range(rec.n_channels):
            out.append({"rest_rms_uv": float("nan"), "mains_db": float("nan"),
                        "motion_ratio": float("nan"), "clipping_pct": float("nan"),
                        "flat_pct": float("nan"), "states": {}, "state": UNKNOWN,
                        "hint": "recording shorter than one quality window"})
        return out
    rms_a, mains_a = np.array(rms), np.array(mains)
    motion_a, sd_a, starts_a = np.array(motion), np.array(sd), np.array(starts)
    in_rest = np.zeros(len(starts_a), bool)
    for a, b in rest_spans:
        in_rest |= (starts_a >= a) & (starts_a + win <= b)
    flat = sd_a < q.flat_sd_uv
    analysed = n_win * win

    for c in range(rec.n_channels):
        live = ~flat[:, c]
        if in_rest.any():
            r = rms_a[in_rest & live, c]
        else:
            r = np.sort(rms_a[live, c])[: max(1, int(math.ceil(0.2 * live.sum())))]
        rest_rms = float(np.median(r)) if len(r) else float("nan")
        mains_db = float(np.median(mains_a[live, c])) if live.any() else float("nan")
        mot = float(np.median(motion_a[live, c])) if live.any() else float("nan")
        clip = 100.0 * clipped[c] / analysed if adc_max is not None else float("nan")
        flat_pct = 100.0 * float(flat[:, c].mean())
        states = {
            "flat": BAD if flat_pct >= 50 else WARN if flat_pct > 0 else GOOD,
            "clipping": grade(clip, q.clipping_warn_pct, q.clipping_bad_pct),
            "mains": grade(mains_db, q.mains_db_warn, q.mains_db_bad),
            "motion": grade(mot, q.motion_ratio_warn, q.motion_ratio_bad),
            "rest_rms": grade(rest_rms, q.rest_rms_warn_uv, q.rest_rms_bad_uv),
        }
        worst, hint = summarise(states)
        out.append({"rest_rms_uv": rest_rms, "mains_db": mains_db, "motion_ratio": mot,
                    "clipping_pct": clip, "flat_pct": flat_pct, "states": states,
                    "state": worst, "hint": hint})
    return out


# ------------------------------------------------------------------------------------ report
def envelopes(rec: Any, cfg: Any, progress: ProgressFn | None = None,
              block: int = 200_000) -> np.ndarray:
    """Envelopes (µV, float32) of every stored sample with the causal pipeline, in blocks.

    Streaming the pipeline block by block gives the same values as one pass (the stages
    keep their state; ticks mark the gaps) while memory stays at the float32 output plus
    one block.
    """
    from emgfb.dsp import EnvelopePipeline

    pipe = EnvelopePipeline(cfg, rec.fs, rec.n_channels, rec.uv_per_count, rec.offset_counts)
    env = np.empty((rec.n_samples, rec.n_channels), dtype=np.float32)
    for lo in range(0, rec.n_samples, block):
        hi = min(lo + block, rec.n_samples)
        env[lo:hi] = pipe.process(rec.read_counts(lo, hi).astype(np.float64),
                                  tick=rec.tick[lo:hi])
        if progress and rec.n_samples > 5 * block:
            progress(f"envelopes: {100 * hi / rec.n_samples:.0f} %")
    return env


class _Session:
    """Everything the sections need, loaded once."""

    def __init__(self, rec: Any, progress: ProgressFn | None) -> None:
        from emgfb.dsp import dsp_config_from_dict, load_dsp_config

        self.rec = rec
        self.progress = progress or (lambda _line: None)
        self.protocol = rec.document("protocol")
        self.calibration = rec.document("calibration")
        scores = rec.document("scores")
        self.scores: list[dict[str, Any]] = [
            r for r in (scores if isinstance(scores, list) else
                        (scores or {}).get("reps", []) if isinstance(scores, dict) else [])
            if isinstance(r, dict)]
        self.steps = _steps(self.protocol)
        for st in self.steps:  # a step the session never reached has null ticks
            for key in ("start_tick", "end_tick"):
                if st.get(key) is None:
                    st.pop(key, None)
        stored = rec.meta.get("dsp_config")
        self.cfg = (dsp_config_from_dict(stored, f"{rec.path}: dsp_config") if stored
                    else load_dsp_config())
        self.t0 = int(rec.tick[0]) if rec.n_samples else 0
        self.cal = calibration_values(self.calibration, rec.labels)
        self.progress(f"{rec.path.name}: computing envelopes "
                      f"({rec.n_samples} samples x {rec.n_channels} channels)")
        self.env = envelopes(rec, self.cfg, self.progress)

    def sample_of(self, tick: Any) -> int:
        """Index of the first sample at or after ``tick``."""
        return int(np.searchsorted(self.rec.tick, int(tick), side="left"))

    def seconds(self, tick: Any) -> float:
        """Seconds since the first sample."""
        return (int(tick) - self.t0) / self.rec.fs


def build_report(path: str | Path, *, progress: ProgressFn | None = None,
                 max_plot_points: int = 4000) -> str:
    """The HTML report of the session ``path``.

    Parameters
    ----------
    path
        An emgfb ``.h5`` session (guided or plain).
    progress
        Called with one line per stage (for stderr on long files).
    max_plot_points
        Points per plotted trace (envelopes are decimated for display only).

    Returns
    -------
    str
        A self-contained HTML page.

    Raises
    ------
    RecordingError
        If the file is missing, not an emgfb session, or damaged.
    """
    from emgfb.recording import open_recording

    with open_recording(path) as rec:
        s = _Session(rec, progress)
        s.max_points = max_plot_points  # type: ignore[attr-defined]
        rest_spans = [(s.sample_of(st["start_tick"]), s.sample_of(st["end_tick"]))
                      for st in s.steps if str(st.get("kind")) in ("rest", "post-rest")
                      and "start_tick" in st and "end_tick" in st]
        s.progress(f"{rec.path.name}: signal quality")
        quality = quality_table(rec, s.cfg, rest_spans, s.progress)
        parts = [_section_session(s), _section_quality(s, quality), _section_gaps(s)]
        if s.calibration:
            parts.append(_section_calibration(s))
        if s.scores or s.steps:
            s.progress(f"{rec.path.name}: exercises")
            parts.append(_section_exercises(s))
            parts.append(_section_symmetry(s))
        s.progress(f"{rec.path.name}: session overview plot")
        parts.append(_section_overview(s))
        used = list(QUALITY_METRICS)
        if s.calibration:
            used = list(CALIBRATION_METRICS) + used
        if s.scores:
            used = list(SCORE_METRICS) + list(DERIVED_METRICS) + used
        parts.append("<h2 id=\"definitions\">Definitions</h2>" + glossary(used))
        subject = rec.meta.get("subject") or "no subject code"
        when = session_date(rec.meta)
        title = "EMG biofeedback session report"
        sub = f"Subject {subject} · " + (when.strftime("%Y-%m-%d %H:%M UTC") if when
                                          else "date unknown")
        if s.protocol and isinstance(s.protocol, dict) and s.protocol.get("name"):
            sub += f" · protocol {s.protocol['name']}"
        return page(title, sub, "".join(parts))


def write_report(src: str | Path, out: str | Path, *, force: bool = False,
                 progress: ProgressFn | None = None) -> Path:
    """Write the report of ``src`` to ``out`` (refused if it exists unless ``force``).

    The output is checked before the (possibly long) analysis starts.
    """
    from emgfb.outputs import check_output

    check_output(out, inputs=[src], force=force)
    text = build_report(src, progress=progress)
    return write_html(out, text, force, inputs=[src])


# ---------------------------------------------------------------------------------- sections
def _section_session(s: _Session) -> str:
    rec, meta = s.rec, s.rec.meta
    when = session_date(meta)
    board = rec.info
    cfg = s.cfg
    notch = (f"{cfg.notch.mains_hz} Hz + harmonics, Q {cfg.notch.q:g}" if cfg.notch.enabled
             else "off")
    env = cfg.envelope
    env_text = (f"moving RMS {env.window_ms:g} ms" if env.method == "rms"
                else f"rectify + {env.lowpass_hz:g} Hz low-pass")
    frontend = meta.get("frontend") or {}
    facts = [
        ("Subject code", meta.get("subject") or "–"),
        ("Date", when.strftime("%Y-%m-%d") if when else "unknown"),
        ("Start (UTC)", when.strftime("%H:%M") if when else "–"),
        ("Duration", f"{rec.duration_s / 60:.1f} min ({rec.duration_s:.1f} s)"),
        ("Complete", "yes" if meta.get("complete") else
         "NO: the recorder did not close the file"),
        ("Board", f"{board.board}, firmware {board.firmware}, {board.bits}-bit ADC"
         if board else "none (imported data)"),
        ("Front-end", frontend.get("name", "–") if isinstance(frontend, dict) else "–"),
        ("Sampling rate", f"{rec.fs:g} Hz, {rec.n_channels} channels"),
        ("Affected side", rec.montage.affected_side),
        ("DSP", f"band-pass {cfg.bandpass.low_hz:g}-{cfg.bandpass.high_hz:g} Hz "
         f"(order {cfg.bandpass.order}); notch {notch}; envelope {env_text}"),
        ("Markers", f"{len(rec.markers)} ({', '.join(sorted({m.kind for m in rec.markers}))})"
         if rec.markers else "none"),
    ]
    if isinstance(s.protocol, dict) and s.protocol.get("name"):
        facts.insert(4, ("Protocol", s.protocol["name"]))
    left = table(["", ""], facts, "facts")
    left = left.replace("<thead><tr><th></th><th></th></tr></thead>", "")
    left = left.replace("<tr><td>", "<tr><th>").replace("</td><td>", "</th><td>", )
    affected = rec.montage.affected_side
    rows = []
    for i, c in enumerate(rec.montage.channels):
        role = ("affected" if c.side == affected else "healthy") if affected in (
            "left", "right") else "–"
        rows.append([c.label, c.muscle.replace("_", " "), c.side, role,
                     fmt(rec.uv_per_count[i], 3)])
    montage = table(["Channel", "Muscle", "Side", "Role", "µV/count"], rows,
                    numeric=[False, False, False, False, True])
    return ("<h2 id=\"session\">Session</h2><div class=\"grid\"><div>" + left +
            f"</div><div><h3>Montage {esc(rec.montage.name)}</h3>{montage}</div></div>")


def _state_cell(value: str, state: str) -> Raw:
    cls = {"good": "good", "warn": "warn", "bad": "bad"}.get(state, "")
    return Raw(f'<span class="{cls}">{esc(value)}</span>' if cls else esc(value))


def _section_quality(s: _Session, quality: list[dict[str, Any]]) -> str:
    rec = s.rec
    keys = [("rest_rms_uv", "rest_rms"), ("mains_db", "mains"), ("motion_ratio", "motion"),
            ("clipping_pct", "clipping"), ("flat_pct", "flat")]
    rows = []
    for i, qd in enumerate(quality):
        st = qd.get("states", {})
        row: list[Any] = [rec.labels[i]]
        for key, sk in keys:
            row.append(_state_cell(fmt_metric(key, qd[key]), st.get(sk, "")))
        state = qd.get("state", "unknown")
        row.append(Raw(f'<span class="badge {esc(state)}">{esc(state)}</span> '
                       f'{esc(qd.get("hint", ""))}'))
        rows.append(row)
    heads = ["Channel"] + [metric_heading(METRICS[k]) for k, _ in keys] + ["Assessment"]
    where = ("rest steps of the protocol" if any(
        str(st.get("kind")) in ("rest", "post-rest") for st in s.steps)
        else "the quietest 20 % of 1 s windows")
    q = s.cfg.quality
    return ("<h2 id=\"quality\">Signal quality</h2>"
            f"<p class=\"note\">Computed from the raw signal in 1 s windows; rest RMS from "
            f"{esc(where)}. Thresholds (stored DSP settings): rest RMS warn "
            f"{q.rest_rms_warn_uv:g} / bad {q.rest_rms_bad_uv:g} µV, mains warn "
            f"{q.mains_db_warn:g} / bad {q.mains_db_bad:g} dB, clipping warn "
            f"{q.clipping_warn_pct:g} / bad {q.clipping_bad_pct:g} %.</p>"
            + table(heads, rows, numeric=[False, True, True, True, True, True, False]))


def _section_gaps(s: _Session) -> str:
    rec = s.rec
    lost = rec.lost_ticks
    head = "<h2 id=\"gaps\">Data gaps</h2>"
    if not len(rec.gaps):
        return head + (f"<p>No lost samples: {rec.n_samples} samples, continuous.</p>"
                       + (f"<p class=\"note\">{len(rec.overrun)} frames carried the board's "
                          "overrun flag.</p>" if len(rec.overrun) else ""))
    total = rec.n_samples + lost
    rows = []
    for g in rec.gaps[:50]:
        start, n = int(g["start_sample"]), int(g["lost_ticks"])
        after_tick = int(rec.tick[start]) if start < rec.n_samples else int(rec.tick[-1]) + 1
        rows.append([fmt(s.seconds(after_tick - n), 3), fmt(n, 0),
                     fmt(1000.0 * n / rec.fs, 1), _phase_at(s, after_tick - n)])
    more = (f"<p class=\"note\">… and {len(rec.gaps) - 50} more gaps.</p>"
            if len(rec.gaps) > 50 else "")
    return (head + f"<p><span class=\"warn\">{lost} samples lost</span> in {len(rec.gaps)} "
            f"gaps ({100.0 * lost / total:.3f} % of the session). Gaps are never filled; "
            "envelopes restart after each one and are undefined while the filters settle."
            "</p>" + table(["At (s)", "Lost samples", "Duration (ms)", "During"], rows,
                           numeric=[True, True, True, False]) + more)


def _phase_at(s: _Session, tick: int) -> str:
    for st in s.steps:
        if "start_tick" in st and "end_tick" in st and st["start_tick"] <= tick < st["end_tick"]:
            return f"{st.get('kind', '')}: {exercise_name(st)}"
    label = "–"
    for m in s.rec.markers:
        if m.kind == "phase" and m.tick <= tick:
            label = m.label
    return label


def _section_calibration(s: _Session) -> str:
    rec = s.rec
    cal = s.cal
    from emgfb.dsp.calibration import check_reference

    ratio = np.full(rec.n_channels, np.nan)
    refused: list[str] = []
    for _m, a, h in rec.montage.pairs():
        ref = cal["reference_uv"]
        level = float(np.hypot(cal["rest_mean_uv"][h], cal["rest_sd_uv"][h]))
        if not math.isfinite(ref[h]):
            continue
        why = check_reference(float(ref[h]), level if math.isfinite(level) else 0.0,
                              f"healthy {rec.labels[h]}")
        if why is None:
            ratio[a] = ref[a] / ref[h]
        else:
            refused.append(why)
    rows = []
    for i, c in enumerate(rec.montage.channels):
        rows.append([c.label, c.muscle.replace("_", " "), c.side,
                     fmt_metric("rest_mean_uv", cal["rest_mean_uv"][i]),
                     fmt_metric("rest_sd_uv", cal["rest_sd_uv"][i]),
                     fmt_metric("ceiling_uv", cal["ceiling_uv"][i]),
                     fmt_metric("reference_uv", cal["reference_uv"][i]),
                     fmt_metric("reference_ratio", ratio[i])])
    heads = ["Channel", "Muscle", "Side"] + [metric_heading(m) for m in CALIBRATION_METRICS]
    doc = s.calibration if isinstance(s.calibration, dict) else {}
    notes = []
    check = doc.get("signal_check")
    if isinstance(check, dict):
        bad = {k: v for k, v in (check.get("channels") or {}).items() if v}
        state = ("overridden by the clinician" if check.get("overridden") else
                 "passed" if check.get("passed") else "failed")
        notes.append(f"Signal check {state}" + (
            f" after waiting {_num(check.get('waited_s')):.0f} s" if _num(
                check.get("waited_s")) > 0 else "") + (
            ": " + "; ".join(f"{k} {v}" for k, v in bad.items()) if bad else "."))
    for f in doc.get("reference_failures") or []:
        if isinstance(f, dict):
            notes.append(f"{f.get('step')}: attempt {f.get('attempt')} refused: "
                         f"{f.get('reason')}")
    notes += [f"Ref. A/H not shown: {why}" for why in refused]
    note_html = "".join(f'<p class="bad">{esc(n)}</p>' for n in notes)
    return ("<h2 id=\"calibration\">Calibration</h2>"
            "<p class=\"note\">Rest baseline and reference contractions recorded at the start "
            "of the session; Ref. A/H is shown on the affected channel of each pair.</p>"
            + note_html
            + table(heads, rows, "calibration", numeric=[False] * 3 + [True] * 5))


def _rep_cocon(s: _Session, row: dict[str, Any]) -> float:
    """%COCON of a rep: stored with the score, else computed on envelopes normalised to
    each muscle's reference (:func:`emgfb.dsp.metrics.cocon_normalised`); NaN for an
    invalid rep or without references."""
    if not row.get("valid", True):
        return float("nan")
    if "cocon" in row:
        return _num(row.get("cocon"))
    t = channel_index(s.rec, row.get("target_channel"))
    sup = [channel_index(s.rec, x) for x in _as_list(row.get("suppression_channels"))]
    sup = [x for x in sup if x is not None]
    if t is None or not sup or "start_tick" not in row or "end_tick" not in row:
        return float("nan")
    from emgfb.dsp.metrics import cocon_normalised

    a, b = s.sample_of(row["start_tick"]), s.sample_of(row["end_tick"])
    level = np.hypot(np.nan_to_num(s.cal["rest_mean_uv"]), np.nan_to_num(s.cal["rest_sd_uv"]))
    ref = s.cal["reference_uv"]
    value, _why = cocon_normalised(s.env[a:b, t], s.env[a:b, sup[0]],
                                   (float(level[t]), float(level[sup[0]])),
                                   (float(ref[t]), float(ref[sup[0]])))
    return value


def exercises(steps: Sequence[dict[str, Any]], scores: Sequence[dict[str, Any]]
              ) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    """Exercise steps of a protocol with their score rows, in session order.

    A score row belongs to a step when its ``exercise`` equals the step's label or name,
    else when its ``step`` is the step's index; rows matching no step form groups of their
    own (by ``exercise``).

    Returns
    -------
    list of (name, step, rows)
        ``name`` is the step label (or the rows' exercise name), ``step`` ``{}`` if unknown.
    """
    out: list[tuple[str, dict[str, Any], list[dict[str, Any]]]] = []
    used: set[int] = set()
    for i, st in enumerate(steps):
        if str(st.get("kind")) != "exercise":
            continue
        names = {str(st[k]) for k in ("label", "name") if st.get(k)}
        rows = [r for r in scores if str(r.get("exercise")) in names]
        if not rows:
            rows = [r for r in scores if r.get("step") == i and not isinstance(
                r.get("step"), bool)]
        rows = [r for r in rows if id(r) not in used]
        used.update(id(r) for r in rows)
        out.append((exercise_name(st), st, rows))
    rest = [r for r in scores if id(r) not in used]
    for name, rows in group_scores(rest).items():
        out.append((name, {}, rows))
    return out


def _section_exercises(s: _Session) -> str:
    rec = s.rec
    entries = [e for e in exercises(s.steps, s.scores)]
    parts = ["<h2 id=\"exercises\">Exercises</h2>"]
    if s.scores:
        heads = (["Exercise", "Sunnybrook item", "Reps"] +
                 [metric_heading(m) for m in SCORE_METRICS] + ["%COCON (%)"])
        rows = []
        for name, step, reps in entries:
            if not reps:
                continue
            summ = exercise_summary(reps)
            n_ok = sum(1 for r in reps if r.get("valid", True))
            cells: list[Any] = [name, step.get("sunnybrook") or reps[0].get("sunnybrook")
                                or "–", len(reps) if n_ok == len(reps)
                                else f"{n_ok} valid of {len(reps)}"]
            for m in SCORE_METRICS:
                mean, sd, _n = summ[m.key]
                sd_txt = (f' <span class="sd">±{esc(fmt(sd, m.digits))}</span>'
                          if math.isfinite(sd) else "")
                shown = fmt_metric(m.key, mean)
                cells.append(Raw(esc(shown) + (sd_txt if shown != "implausible" else "")))
            cc = mean_sd(_rep_cocon(s, r) for r in reps)[0]
            cells.append(fmt_metric("cocon", cc))
            rows.append(cells)
        notes = "".join(f"<p class=\"bad\">{esc(name)}: {esc(invalid_note(reps))}</p>"
                        for name, _st, reps in entries if invalid_note(reps))
        parts.append("<p class=\"note\">Mean ± SD over the valid repetitions of each "
                     "exercise; a repetition is not valid when a channel it uses was not "
                     "trustworthy (electrode off, clipping, no signal) or too much of it "
                     "was lost.</p>" + notes
                     + table(heads, rows, "exercise-summary",
                             numeric=[False, False, True] + [True] * (len(SCORE_METRICS) + 1)))
    for k, (name, step, reps) in enumerate(entries):
        s.progress(f"{rec.path.name}: exercise {k + 1}/{len(entries)} ({name})")
        parts.append(f"<h3>{esc(name)}</h3>")
        parts.append(_step_facts(s, step, reps))
        fig = _exercise_plot(s, name, step, reps)
        if fig:
            parts.append(fig)
        if reps:
            heads = ["Rep", "Start (s)"] + [metric_heading(m) for m in SCORE_METRICS] + [
                "%COCON (%)", "Valid"]
            rows = []
            for r in reps:
                start = fmt(s.seconds(r["start_tick"]), 1) if "start_tick" in r else "–"
                ok = bool(r.get("valid", True))
                why = r.get("undefined") if isinstance(r.get("undefined"), dict) else {}
                cells = [fmt_metric(m.key, r.get(m.key)) if ok else "–"
                         for m in SCORE_METRICS] + [fmt_metric("cocon", _rep_cocon(s, r))]
                cells = [Raw(f'{esc(c)} <span class="sd">({esc(why[m])})</span>')
                         if ok and c == "–" and m in why else c
                         for c, m in zip(cells, [m.key for m in SCORE_METRICS] + ["cocon"],
                                         strict=True)]
                valid_cell = Raw("yes" if ok else
                                 f'<span class="bad">no: {esc(r.get("invalid_reason"))}</span>')
                rows.append([r.get("rep", "–"), start] + cells + [valid_cell])
            parts.append(table(heads, rows, "reps",
                               numeric=[True] * (len(SCORE_METRICS) + 3) + [False]))
        else:
            parts.append("<p class=\"note\">No scored repetitions.</p>")
    return "".join(parts)


def _target_and_suppression(s: _Session, step: dict[str, Any], reps: list[dict[str, Any]]
                            ) -> tuple[int | None, list[int]]:
    rec = s.rec
    first = reps[0] if reps else {}
    target = channel_index(rec, first.get("target_channel"))
    if target is None:
        target = channel_index(rec, (_as_list(step.get("target")) or [None])[0])
    sup_refs = first.get("suppression_channels") if "suppression_channels" in first else (
        step.get("suppress"))
    sup = [i for i in (channel_index(rec, x) for x in _as_list(sup_refs)) if i is not None]
    return target, sup


def _step_facts(s: _Session, step: dict[str, Any], reps: list[dict[str, Any]]) -> str:
    rec = s.rec
    target, sup = _target_and_suppression(s, step, reps)
    bits = []
    item = step.get("sunnybrook") or (reps[0].get("sunnybrook") if reps else None)
    if item:
        bits.append(f"Sunnybrook item: {item}")
    if target is not None:
        bits.append(f"target {rec.labels[target]}")
    if sup:
        bits.append(f"suppress {', '.join(rec.labels[i] for i in sup)}")
    if step.get("shape"):
        shape = str(step["shape"])
        if shape != "relax" and isinstance(step.get("level_pct"), (int, float)):
            shape += f" at {step['level_pct']:g} % of the healthy reference"
        bits.append(shape)
    if isinstance(step.get("band_pct"), (int, float)):
        bits.append(f"band ±{step['band_pct']:g} points")
    times = [step.get(k) for k in ("ramp_up_s", "hold_s", "ramp_down_s")]
    if all(isinstance(x, (int, float)) for x in times):
        bits.append("ramp {:g} s / hold {:g} s / ramp {:g} s".format(*times))
    if isinstance(step.get("reps"), int):
        bits.append(f"{step['reps']} reps planned, {len(reps)} scored")
    ceiling = step.get("ceiling")
    if sup and isinstance(ceiling, dict) and "value" in ceiling:
        bits.append("ceiling rest + {:g} SD".format(ceiling["value"])
                    if ceiling.get("mode") == "baseline_sd"
                    else "ceiling {:g} % of the healthy reference".format(ceiling["value"]))
    return f"<p class=\"note\">{esc(' · '.join(bits))}</p>" if bits else ""


def _decimate(t: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    step = max(1, len(t) // max_points)
    return t[::step], y[::step]


def _healthy_span(s: _Session, ch: int) -> float:
    """Healthy-side reference above its rest level in power (µV): 100 % of a target; NaN
    when that reference does not clear rest (then nothing is shown in %)."""
    from emgfb.dsp.calibration import check_reference, subtract_rest

    h = healthy_partner(s.rec, ch)
    h = ch if h is None else h
    ref = float(s.cal["reference_uv"][h])
    level = _rest_level(s, h)
    if not math.isfinite(ref) or check_reference(ref, level, "healthy") is not None:
        return float("nan")
    return float(subtract_rest(ref, level))


def _rest_level(s: _Session, ch: int) -> float:
    """Rest level of ``ch`` in power terms, hypot(mean, SD) (0 when unknown)."""
    level = float(np.hypot(s.cal["rest_mean_uv"][ch], s.cal["rest_sd_uv"][ch]))
    return level if math.isfinite(level) else 0.0


def _ceiling_uv(s: _Session, step: dict[str, Any], ch: int,
                reps: Sequence[dict[str, Any]] = ()) -> float:
    """The suppression ceiling of ``ch`` in µV: as scored (``ceiling_uv`` of the rows),
    else the step's ceiling rule, else rest mean + 3 SD of the calibration."""
    for r in reps:
        chans = [channel_index(s.rec, x) for x in _as_list(r.get("suppression_channels"))]
        levels = _as_list(r.get("ceiling_uv"))
        if ch in chans and len(levels) == len(chans):
            v = _num(levels[chans.index(ch)])
            if math.isfinite(v):
                return v
    ceiling = step.get("ceiling")
    mean, sd = s.cal["rest_mean_uv"][ch], s.cal["rest_sd_uv"][ch]
    if isinstance(ceiling, dict) and isinstance(ceiling.get("value"), (int, float)):
        if ceiling.get("mode") == "baseline_sd" and math.isfinite(mean + sd):
            return float(mean + ceiling["value"] * sd)
        if ceiling.get("mode") == "reference_pct":
            span = _healthy_span(s, ch)
            return float(np.hypot(_rest_level(s, ch), ceiling["value"] / 100 * span))
    return float(s.cal["ceiling_uv"][ch])


def _nominal(step: dict[str, Any], t: np.ndarray) -> np.ndarray | None:
    """Nominal target (% of healthy reference) ``t`` s after a rep start, or None."""
    keys = ("level_pct", "ramp_up_s", "hold_s", "ramp_down_s")
    if step.get("shape") not in ("hold", "mirror", "relax") or not all(
            isinstance(step.get(k), (int, float)) for k in keys):
        return None
    ru, h, rd = (float(step[k]) for k in keys[1:])
    level = 0.0 if step["shape"] == "relax" else float(step["level_pct"])
    up = np.clip(t / ru, 0.0, 1.0) if ru > 0 else (t >= 0).astype(float)
    down = 1.0 - np.clip((t - ru - h) / rd, 0.0, 1.0) if rd > 0 else (
        (t - ru - h) < 0).astype(float)
    inside = (t >= 0) & (t < ru + h + rd)
    return np.where(inside, level * np.minimum(up, down), np.nan)


def _exercise_plot(s: _Session, name: str, step: dict[str, Any],
                   reps: list[dict[str, Any]]) -> str | None:
    rec = s.rec
    target, sup = _target_and_suppression(s, step, reps)
    if "start_tick" in step and "end_tick" in step:
        t_start, t_end = int(step["start_tick"]), int(step["end_tick"])
    elif reps and all("start_tick" in r and "end_tick" in r for r in reps):
        t_start = min(int(r["start_tick"]) for r in reps)
        t_end = max(int(r["end_tick"]) for r in reps)
    else:
        return None
    a, b = s.sample_of(t_start), s.sample_of(t_end)
    if target is None or b - a < 2:
        return None
    plt = pyplot()
    n_axes = 2 if sup else 1
    fig, axes = plt.subplots(n_axes, 1, figsize=(9.2, 2.0 * n_axes + 0.4), sharex=True,
                             squeeze=False)
    t = (rec.tick[a:b] - s.t0) / rec.fs
    ax = axes[0, 0]
    partner = channel_index(rec, reps[0].get("healthy_channel")) if reps else None
    if partner is None:
        partner = healthy_partner(rec, target)
    span = _healthy_span(s, target)
    percent = math.isfinite(span)
    max_points = s.max_points  # type: ignore[attr-defined]
    series = [(target, _AFFECTED_COLOUR)]
    if partner is not None:
        series.append((partner, _HEALTHY_COLOUR))
    for ch, colour in series:
        c = rec.montage.channels[ch]
        role = ("affected" if c.side == rec.montage.affected_side else "healthy")
        y = s.env[a:b, ch]
        if percent:
            from emgfb.dsp.calibration import subtract_rest

            y = 100.0 * np.asarray(subtract_rest(y, _rest_level(s, ch))) / span
        tt, yy = _decimate(t, y, max_points)
        ax.plot(tt, yy, color=colour, lw=1.0, label=f"{c.label} ({role})")
    band = float(step.get("band_pct", 10.0)) if isinstance(
        step.get("band_pct", 10.0), (int, float)) else 10.0
    drew_target = False
    if percent:
        for r in reps:
            if "start_tick" not in r:
                continue
            r0 = s.seconds(r["start_tick"])
            r1 = s.seconds(r.get("end_tick", r["start_tick"]))
            tr = np.linspace(r0, max(r1, r0 + 1e-3), 200)
            nom = _nominal(step, tr - r0)
            if nom is None or step.get("shape") == "mirror":
                continue
            ax.fill_between(tr, nom - band, nom + band, color="#38a169", alpha=0.18, lw=0,
                            label=None if drew_target else f"target ±{band:g} points")
            ax.plot(tr, nom, color="#2f855a", lw=0.9, ls="--")
            drew_target = True
    ax.set_ylabel("% of healthy ref." if percent else "envelope (µV)")
    title = f"{name}: target muscle"
    if step.get("shape") == "mirror":
        title += " (target: mirror the healthy side)"
    ax.set_title(title, loc="left")
    if sup:
        ax2 = axes[1, 0]
        for k, ch in enumerate(sup):
            colour = _SUPPRESS_COLOURS[k % len(_SUPPRESS_COLOURS)]
            tt, yy = _decimate(t, s.env[a:b, ch], max_points)
            ax2.plot(tt, yy, color=colour, lw=1.0, label=rec.labels[ch])
            ceil = _ceiling_uv(s, step, ch, reps)
            if math.isfinite(ceil):
                ax2.axhline(ceil, color=colour, lw=1.0, ls=":",
                            label=f"ceiling {rec.labels[ch]} ({ceil:.1f} µV)")
        ax2.set_ylabel("envelope (µV)")
        ax2.set_title("suppression (synkinesis) muscle", loc="left")
    for r in reps:
        if "start_tick" in r and "end_tick" in r:
            for row in axes[:, 0]:
                row.axvspan(s.seconds(r["start_tick"]), s.seconds(r["end_tick"]),
                            color="#718096", alpha=0.07, lw=0)
            axes[0, 0].text(s.seconds(r["start_tick"]), 0.98, f" rep {r.get('rep', '')}",
                            transform=axes[0, 0].get_xaxis_transform(), fontsize=7,
                            va="top", color="#4a5568")
    for m in rec.markers:
        if t_start <= m.tick <= t_end and m.kind == "phase":
            for row in axes[:, 0]:
                row.axvline(s.seconds(m.tick), color="#a0aec0", lw=0.6)
    for row in axes[:, 0]:
        row.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=4)
        row.margins(x=0)
        lo, hi = row.get_ylim()
        row.set_ylim(min(0.0, lo), hi * 1.15)
    axes[-1, 0].set_xlabel("time in session (s)")
    fig.tight_layout()
    labels = ", ".join(rec.labels[i] for i, _ in series)
    sup_text = f"; suppression {', '.join(rec.labels[i] for i in sup)} in µV" if sup else ""
    unit = "% of the healthy reference (rest subtracted)" if percent else "µV"
    return figure_png(fig, f"{name}: {labels} in {unit}{sup_text}. Shaded: repetitions; "
                      "dashed: target line with its band; grey lines: phase markers.")


def _section_symmetry(s: _Session) -> str:
    rec = s.rec
    from emgfb.exercises.scoring import valid_reps

    groups = {name: valid_reps(reps) for name, _st, reps in exercises(s.steps, s.scores)
              if valid_reps(reps)}
    if not groups:
        return ("<h2 id=\"symmetry\">Symmetry</h2><p>No valid repetition to compute "
                "symmetry or synkinesis from.</p>" if s.scores else "")
    rows = []
    for name, reps in groups.items():
        ai, _sd, n = mean_sd(r.get("asymmetry_index") for r in reps)
        ratio = mean_sd(r.get("symmetry_ratio") for r in reps)[0]
        sym_reps = sum(1 for r in reps if math.isfinite(_num(r.get("asymmetry_index")))
                       and abs(_num(r.get("asymmetry_index"))) <= 0.10)
        verdict = ("–" if not n else "symmetric" if abs(ai) <= 0.10 else
                   "affected side weaker" if ai > 0 else "affected side stronger")
        rows.append([name, fmt_metric("symmetry_ratio", ratio),
                     fmt_metric("asymmetry_index", ai), f"{sym_reps}/{n}", verdict])
    sym = table(["Exercise", "R = A/H", "AI", "Symmetric reps (|AI| ≤ 0.10)", "Overall"],
                rows, "symmetry", numeric=[False, True, True, True, False])
    rows = []
    for name, reps in groups.items():
        below = mean_sd(r.get("pct_below_ceiling") for r in reps)[0]
        ooi = mean_sd(r.get("oral_ocular_index") for r in reps)
        cc = mean_sd(_rep_cocon(s, r) for r in reps)[0]
        if not (math.isfinite(below) or ooi[2] or math.isfinite(cc)):
            continue
        flag = ("synkinesis: the suppression muscle was above its ceiling > 20 % of the time"
                if math.isfinite(below) and below < 80 else "")
        rows.append([name, fmt_metric("pct_below_ceiling", below),
                     fmt_metric("oral_ocular_index", ooi[0]), fmt_metric("cocon", cc), flag])
    syn = (table(["Exercise", "Below ceiling (%)", "Oral-ocular index", "%COCON (%)", "Note"],
                 rows, "synkinesis", numeric=[False, True, True, True, False]) if rows
           else "<p>No suppression channel in these exercises.</p>")
    del rec
    return ("<h2 id=\"symmetry\">Symmetry</h2>" + sym +
            "<h2 id=\"synkinesis\">Synkinesis</h2>" + syn)


def _section_overview(s: _Session) -> str:
    rec = s.rec
    if rec.n_samples < 2:
        return "<h2 id=\"overview\">Envelopes</h2><p>The recording holds no samples.</p>"
    plt = pyplot()
    pairs = rec.montage.pairs()
    rows: list[list[int]] = [[a, h] for _m, a, h in pairs]
    paired = {i for r in rows for i in r}
    rows += [[i] for i in range(rec.n_channels) if i not in paired]
    fig, axes = plt.subplots(len(rows), 1, figsize=(9.2, 0.95 * len(rows) + 1.0),
                             sharex=True, squeeze=False)
    t = (rec.tick - s.t0) / rec.fs
    gap_spans = []
    for g in rec.gaps:
        start = int(g["start_sample"])
        if 0 < start < rec.n_samples:
            gap_spans.append((t[start - 1], t[start]))
    # step starts of a guided session, else phase markers, as labelled boundaries
    bounds = [(int(st["start_tick"]), exercise_name(st)) for st in s.steps
              if "start_tick" in st]
    if not bounds:
        bounds = [(m.tick, m.label) for m in rec.markers if m.kind == "phase"]
    for k, chans in enumerate(rows):
        ax = axes[k, 0]
        for ch in chans:
            c = rec.montage.channels[ch]
            colour = (_AFFECTED_COLOUR if c.side == rec.montage.affected_side
                      else _HEALTHY_COLOUR)
            tt, yy = _decimate(t, s.env[:, ch], s.max_points)  # type: ignore[attr-defined]
            ax.plot(tt, yy, color=colour, lw=0.7, label=c.label)
        for x0, x1 in gap_spans:
            ax.axvspan(x0, x1, color="#e53e3e", alpha=0.35, lw=0)
        for tick, _label in bounds:
            ax.axvline(s.seconds(tick), color="#a0aec0", lw=0.5)
        ax.set_ylabel("µV", fontsize=7)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.set_ylim(bottom=0)
        ax.margins(x=0)
    if bounds:
        ax0 = axes[0, 0]
        last = -math.inf
        min_gap = 0.025 * max(t[-1] - t[0], 1e-9)
        for tick, label in bounds:
            x = s.seconds(tick)
            if x - last < min_gap:
                continue  # keep labels legible: skip one too close to the previous
            last = x
            ax0.text(x, 1.03, label[:22], rotation=28, fontsize=6.5,
                     transform=ax0.get_xaxis_transform(), ha="left", va="bottom",
                     color="#4a5568")
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    caption = ("Envelopes of the whole session (orange: affected side, blue: healthy side; "
               "stored DSP settings)" + ("; red: data gaps" if gap_spans else "") +
               ("; grey lines: step starts" if bounds else "") + ".")
    return "<h2 id=\"overview\">Envelopes</h2>" + figure_png(fig, caption)


__all__ = [
    "CALIBRATION_METRICS", "DERIVED_METRICS", "METRICS", "QUALITY_METRICS", "SCORE_METRICS",
    "Metric", "build_report", "write_report",
]
