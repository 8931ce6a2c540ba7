"""The report's figures: matplotlib (Agg backend, imported when plotting), never HTML.

This module owns the two kinds of plot a session report shows: one per exercise (target
muscle against its nominal line and band, healthy partner, suppression muscles against
their ceilings, repetitions and phase markers) and the overview of the whole session
(envelopes per homologous pair, gaps, step starts). They draw the display traces
:class:`~emgfb.exercises.report.analysis.SessionData` kept (min/max per display bin), so a
figure never needs the whole recording in memory. Each function returns a closed figure as
PNG bytes plus its caption. Imports ``exercises.report.analysis``, ``dsp.calibration``,
numpy and matplotlib.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

from emgfb.exercises.report.analysis import (
    SessionData,
    ceiling_uv,
    channel_index,
    exercise_name,
    exercise_span,
    healthy_partner,
    healthy_span,
    nominal,
    rest_level,
    target_and_suppression,
)

AFFECTED_COLOUR = "#c05621"
HEALTHY_COLOUR = "#2b6cb0"
SUPPRESS_COLOURS = ("#6b46c1", "#2f855a", "#975a16", "#4a5568")


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


def png_bytes(fig: Any) -> bytes:
    """The figure as PNG (110 dpi); the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def exercise_figure(s: SessionData, name: str, step: dict[str, Any],
                    reps: list[dict[str, Any]]) -> tuple[bytes, str] | None:
    """The plot of one exercise as (PNG, caption), or None without a span or target."""
    rec = s.rec
    target, sup = target_and_suppression(s, step, reps)
    ticks = exercise_span(step, reps)
    if ticks is None:
        return None
    t_start, t_end = ticks
    a, b = s.sample_of(t_start), s.sample_of(t_end)
    if target is None or b - a < 2:
        return None
    plt = pyplot()
    n_axes = 2 if sup else 1
    fig, axes = plt.subplots(n_axes, 1, figsize=(9.2, 2.0 * n_axes + 0.4), sharex=True,
                             squeeze=False)
    trace = s.trace(a, b)
    t = trace.t
    ax = axes[0, 0]
    partner = channel_index(rec, reps[0].get("healthy_channel")) if reps else None
    if partner is None:
        partner = healthy_partner(rec, target)
    span = healthy_span(s, target)
    percent = math.isfinite(span)
    series = [(target, AFFECTED_COLOUR)]
    if partner is not None:
        series.append((partner, HEALTHY_COLOUR))
    for ch, colour in series:
        c = rec.montage.channels[ch]
        role = ("affected" if c.side == rec.montage.affected_side else "healthy")
        y = trace.y[:, ch]
        if percent:  # monotonic for envelopes >= 0: commutes with the bins' min/max
            from emgfb.dsp.calibration import subtract_rest

            y = 100.0 * np.asarray(subtract_rest(y, rest_level(s, ch))) / span
        ax.plot(t, y, color=colour, lw=1.0, label=f"{c.label} ({role})")
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
            nom = nominal(step, tr - r0)
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
            colour = SUPPRESS_COLOURS[k % len(SUPPRESS_COLOURS)]
            ax2.plot(t, trace.y[:, ch], color=colour, lw=1.0, label=rec.labels[ch])
            ceil = ceiling_uv(s, step, ch, reps)
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
    return png_bytes(fig), (f"{name}: {labels} in {unit}{sup_text}. Shaded: repetitions; "
                            "dashed: target line with its band; grey lines: phase markers.")


def overview_figure(s: SessionData) -> tuple[bytes, str] | None:
    """The envelopes of the whole session as (PNG, caption); None without samples."""
    rec = s.rec
    if rec.n_samples < 2:
        return None
    plt = pyplot()
    pairs = rec.montage.pairs()
    rows: list[list[int]] = [[a, h] for _m, a, h in pairs]
    paired = {i for r in rows for i in r}
    rows += [[i] for i in range(rec.n_channels) if i not in paired]
    fig, axes = plt.subplots(len(rows), 1, figsize=(9.2, 0.95 * len(rows) + 1.0),
                             sharex=True, squeeze=False)
    trace = s.overview
    gap_spans = []
    for g in rec.gaps:
        start = int(g["start_sample"])
        if 0 < start < rec.n_samples:
            gap_spans.append((s.seconds(s.tick_at(start - 1)), s.seconds(s.tick_at(start))))
    # step starts of a guided session, else phase markers, as labelled boundaries
    bounds = [(int(st["start_tick"]), exercise_name(st)) for st in s.steps
              if "start_tick" in st]
    if not bounds:
        bounds = [(m.tick, m.label) for m in rec.markers if m.kind == "phase"]
    for k, chans in enumerate(rows):
        ax = axes[k, 0]
        for ch in chans:
            c = rec.montage.channels[ch]
            colour = (AFFECTED_COLOUR if c.side == rec.montage.affected_side
                      else HEALTHY_COLOUR)
            ax.plot(trace.t, trace.y[:, ch], color=colour, lw=0.7, label=c.label)
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
        min_gap = 0.025 * max(s.seconds(s.tick_at(rec.n_samples - 1)), 1e-9)
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
    return png_bytes(fig), caption



__all__ = ["exercise_figure", "overview_figure", "png_bytes", "pyplot"]
