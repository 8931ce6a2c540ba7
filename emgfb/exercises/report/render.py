"""The report as HTML: one self-contained, printable page per session (issue 6).

This module owns the markup: the inline CSS, escaping and number formatting, tables,
embedded PNG figures (base64 ``data:`` URIs, so the page needs no other file, network or
JavaScript), the glossary, the page frame and every section of a session report (session
details without names, notes or device serials; signal quality; data gaps; calibration;
exercises with per-repetition tables; symmetry and synkinesis; the overview). Every value
read from a file (subject, protocol and exercise names, labels, reasons, notes) reaches the
page through :func:`esc`: :func:`table` escapes each cell unless it is :class:`Raw` markup
built here. Imports ``exercises.report.metrics``, ``.analysis`` and ``.figures``.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from emgfb.exercises.report.analysis import (
    SessionData,
    exercise_name,
    exercise_summary,
    exercises,
    invalid_note,
    mean_sd,
    num,
    rep_cocon,
    session_date,
    target_and_suppression,
)
from emgfb.exercises.report.figures import exercise_figure, overview_figure, png_bytes
from emgfb.exercises.report.metrics import (
    CALIBRATION_METRICS,
    DERIVED_METRICS,
    METRICS,
    QUALITY_METRICS,
    SCORE_METRICS,
    Metric,
)

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
    v = num(value)
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
    return _png_figure(png_bytes(fig), caption, attrs)


def _png_figure(png: bytes, caption: str, attrs: str = "") -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f"<figure{(' ' + attrs) if attrs else ''}><img alt=\"{esc(caption)}\" "
            f"src=\"data:image/png;base64,{data}\"><figcaption>{esc(caption)}</figcaption>"
            "</figure>")


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



def _section_session(s: SessionData) -> str:
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


def _section_quality(s: SessionData, quality: list[dict[str, Any]]) -> str:
    from emgfb.dsp.quality import NOT_ASSESSED, stored_state_text

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
        if s.channel_states:
            row.append(stored_state_text(s.channel_states.get(rec.labels[i])))
        rows.append(row)
    heads = ["Channel"] + [metric_heading(METRICS[k]) for k, _ in keys] + ["Assessment"]
    if s.channel_states:
        heads.append("During the session")
        live = ("<p class=\"note\">During the session: each channel's state as assessed "
                "live (what a session's screen shows), stored with the recording: its "
                "worst state, that state's share of the time, and why.</p>")
    else:
        live = ("<p class=\"note\">The channel states assessed live are not stored in "
                f"this file ({NOT_ASSESSED}).</p>")
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
            + live
            + table(heads, rows, numeric=[False, True, True, True, True, True, False]
                    + [False] * bool(s.channel_states)))


def _section_gaps(s: SessionData) -> str:
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
        after_tick = (s.tick_at(start) if start < rec.n_samples
                      else s.tick_at(rec.n_samples - 1) + 1)
        rows.append([fmt(s.seconds(after_tick - n), 3), fmt(n, 0),
                     fmt(1000.0 * n / rec.fs, 1), _phase_at(s, after_tick - n)])
    more = (f"<p class=\"note\">… and {len(rec.gaps) - 50} more gaps.</p>"
            if len(rec.gaps) > 50 else "")
    return (head + f"<p><span class=\"warn\">{lost} samples lost</span> in {len(rec.gaps)} "
            f"gaps ({100.0 * lost / total:.3f} % of the session). Gaps are never filled; "
            "envelopes restart after each one and are undefined while the filters settle."
            "</p>" + table(["At (s)", "Lost samples", "Duration (ms)", "During"], rows,
                           numeric=[True, True, True, False]) + more)


def _phase_at(s: SessionData, tick: int) -> str:
    for st in s.steps:
        if "start_tick" in st and "end_tick" in st and st["start_tick"] <= tick < st["end_tick"]:
            return f"{st.get('kind', '')}: {exercise_name(st)}"
    label = "–"
    for m in s.rec.markers:
        if m.kind == "phase" and m.tick <= tick:
            label = m.label
    return label


def _section_calibration(s: SessionData) -> str:
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
            f" after waiting {num(check.get('waited_s')):.0f} s" if num(
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



def _section_exercises(s: SessionData) -> str:
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
            cc = mean_sd(rep_cocon(s, r) for r in reps)[0]
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
        fig = exercise_figure(s, name, step, reps)
        if fig:
            parts.append(_png_figure(*fig))
        if reps:
            heads = ["Rep", "Start (s)"] + [metric_heading(m) for m in SCORE_METRICS] + [
                "%COCON (%)", "Valid"]
            rows = []
            for r in reps:
                start = fmt(s.seconds(r["start_tick"]), 1) if "start_tick" in r else "–"
                ok = bool(r.get("valid", True))
                undefined = r.get("undefined")
                why: dict[str, Any] = undefined if isinstance(undefined, dict) else {}
                cells = [fmt_metric(m.key, r.get(m.key)) if ok else "–"
                         for m in SCORE_METRICS] + [fmt_metric("cocon", rep_cocon(s, r))]
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


def _step_facts(s: SessionData, step: dict[str, Any], reps: list[dict[str, Any]]) -> str:
    rec = s.rec
    target, sup = target_and_suppression(s, step, reps)
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
        bits.append("ramp {:g} s / hold {:g} s / ramp {:g} s".format(
            *(float(x or 0) for x in times)))
    if isinstance(step.get("reps"), int):
        bits.append(f"{step['reps']} reps planned, {len(reps)} scored")
    ceiling = step.get("ceiling")
    if sup and isinstance(ceiling, dict) and "value" in ceiling:
        bits.append("ceiling rest + {:g} SD".format(ceiling["value"])
                    if ceiling.get("mode") == "baseline_sd"
                    else "ceiling {:g} % of the healthy reference".format(ceiling["value"]))
    return f"<p class=\"note\">{esc(' · '.join(bits))}</p>" if bits else ""



def _section_symmetry(s: SessionData) -> str:
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
        sym_reps = sum(1 for r in reps if math.isfinite(num(r.get("asymmetry_index")))
                       and abs(num(r.get("asymmetry_index"))) <= 0.10)
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
        cc = mean_sd(rep_cocon(s, r) for r in reps)[0]
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



def _section_overview(s: SessionData) -> str:
    fig = overview_figure(s)
    if fig is None:
        return "<h2 id=\"overview\">Envelopes</h2><p>The recording holds no samples.</p>"
    return "<h2 id=\"overview\">Envelopes</h2>" + _png_figure(*fig)


def render_report(s: SessionData) -> str:
    """The whole page of a scanned session (:meth:`SessionData.scan`)."""
    rec = s.rec
    parts = [_section_session(s), _section_quality(s, s.quality), _section_gaps(s)]
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
