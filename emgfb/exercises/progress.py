"""Progress across sessions: one self-contained HTML page of trends for one subject code.

This module owns scanning a folder for emgfb sessions (files that are not sessions are
skipped with a note), grouping them by pseudonymous subject code, and the trend page:
per score metric and exercise the mean over each session's repetitions, plotted against
the session date and listed in a table, plus the reference-contraction symmetry of every
muscle pair. Dates are shown as days (no time of day); names, notes and device serials
never appear (DOMAIN.md §7). Imports ``errors``, ``recording`` (reader),
:mod:`emgfb.exercises.report` (glossary, page and table helpers) and matplotlib
(Agg, when plotting); never Qt.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from emgfb.errors import EmgfbError
from emgfb.exercises.report import (
    CALIBRATION_METRICS,
    METRICS,
    SCORE_METRICS,
    ProgressFn,
    calibration_values,
    esc,
    exercise_summary,
    exercises,
    figure_png,
    fmt,
    fmt_metric,
    glossary,
    metric_heading,
    page,
    pyplot,
    session_date,
    table,
    write_html,
)

log = logging.getLogger(__name__)

#: File name endings scanned for sessions.
SESSION_SUFFIXES = (".h5", ".hdf5")


@dataclass
class SessionPoint:
    """What one session contributes to the trends.

    Attributes
    ----------
    path
        The file.
    subject
        Subject code ("" if none).
    date
        Start (UTC), or None if unknown.
    duration_s, lost_ticks, complete
        Session facts.
    protocol
        Protocol name ("" for a plain recording).
    exercises
        ``{exercise: {"reps": n, metric: mean}}`` over the session's repetitions.
    reference_ratio
        ``{muscle: affected/healthy reference}`` from the calibration.
    """

    path: Path
    subject: str
    date: datetime | None
    duration_s: float
    lost_ticks: int
    complete: bool
    protocol: str = ""
    exercises: dict[str, dict[str, float]] = field(default_factory=dict)
    reference_ratio: dict[str, float] = field(default_factory=dict)

    @property
    def day(self) -> str:
        """The session day ``YYYY-MM-DD`` (or ``unknown date``)."""
        return self.date.strftime("%Y-%m-%d") if self.date else "unknown date"


def summarise_session(path: Path) -> SessionPoint:
    """Read one session's documents into a :class:`SessionPoint` (no signal processing).

    Raises
    ------
    RecordingError
        If ``path`` is not a readable emgfb session.
    """
    from emgfb.recording import open_recording

    with open_recording(path) as rec:
        protocol = rec.document("protocol")
        scores = rec.document("scores")
        rows = [r for r in (scores if isinstance(scores, list) else []) if isinstance(r, dict)]
        steps = protocol.get("steps", []) if isinstance(protocol, dict) else []
        steps = [st for st in steps if isinstance(st, dict)]
        point = SessionPoint(
            path=path, subject=str(rec.meta.get("subject") or ""),
            date=session_date(rec.meta), duration_s=rec.duration_s,
            lost_ticks=rec.lost_ticks, complete=bool(rec.meta.get("complete")),
            protocol=str(protocol.get("name", "")) if isinstance(protocol, dict) else "")
        for name, _step, reps in exercises(steps, rows):
            if not reps:
                continue
            summ = exercise_summary(reps)
            entry: dict[str, float] = {"reps": float(len(reps))}
            entry.update({k: v[0] for k, v in summ.items()})
            point.exercises[name] = entry
        cal = calibration_values(rec.document("calibration"), rec.labels)
        ref = cal["reference_uv"]
        for muscle, a, h in rec.montage.pairs():
            if math.isfinite(ref[a]) and ref[h] > 0:
                point.reference_ratio[muscle] = float(ref[a] / ref[h])
    return point


def scan(directory: str | Path, progress: ProgressFn | None = None
         ) -> tuple[list[SessionPoint], list[tuple[str, str]]]:
    """Every emgfb session under ``directory`` (recursively) and the files skipped.

    Returns
    -------
    sessions, skipped
        Sessions in date order; ``(relative path, reason)`` of ``.h5`` files that are not
        readable sessions.

    Raises
    ------
    EmgfbError
        If ``directory`` is not a directory.
    """
    from emgfb.errors import RecordingError

    root = Path(directory)
    if not root.is_dir():
        raise EmgfbError(f"{root}: not a directory; expected a folder of emgfb .h5 sessions")
    files = sorted(p for p in root.rglob("*") if p.is_file()
                   and p.suffix.lower() in SESSION_SUFFIXES)
    sessions, skipped = [], []
    for k, path in enumerate(files):
        if progress:
            progress(f"reading {k + 1}/{len(files)}: {path.name}")
        try:
            sessions.append(summarise_session(path))
        except RecordingError as exc:
            reason = str(exc)
            prefix = f"{path}: "
            skipped.append((str(path.relative_to(root)),
                            reason[len(prefix):] if reason.startswith(prefix) else reason))
            log.info("skipping %s: %s", path, reason)
    sessions.sort(key=lambda p: (p.date is None, p.date or datetime.min, str(p.path)))
    return sessions, skipped


def select_subject(sessions: list[SessionPoint], subject: str | None,
                   directory: str | Path) -> list[SessionPoint]:
    """The sessions of ``subject`` (required when the folder holds several codes).

    Raises
    ------
    EmgfbError
        No sessions, several subjects without ``subject``, or none of ``subject``.
    """
    codes = sorted({p.subject for p in sessions})
    shown = ", ".join(c or "(none)" for c in codes)
    if not sessions:
        raise EmgfbError(f"{directory}: no emgfb sessions found (*.h5)")
    if subject is None:
        if len(codes) > 1:
            raise EmgfbError(f"{directory}: sessions of {len(codes)} subjects ({shown}); "
                             "choose one with --subject CODE")
        return sessions
    chosen = [p for p in sessions if p.subject == subject]
    if not chosen:
        raise EmgfbError(f"{directory}: --subject {subject!r}: no sessions of that code; "
                         f"found {shown}")
    return chosen


def _date_axis(ax: object, sessions: list[SessionPoint]) -> None:
    """Ticks at the session days only (at most 12), labelled YYYY-MM-DD."""
    import matplotlib.dates as mdates

    days = sorted({p.date.replace(hour=0, minute=0, second=0, microsecond=0)
                   for p in sessions if p.date is not None})
    if len(days) > 12:
        days = days[:: math.ceil(len(days) / 12)]
    ax.set_xticks(days)  # type: ignore[attr-defined]
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))  # type: ignore[attr-defined]


def _trend_figure(sessions: list[SessionPoint], key: str, names: list[str]) -> str:
    plt = pyplot()
    m = METRICS[key]
    fig, ax = plt.subplots(figsize=(4.5, 2.4))
    n_points = 0
    dated = [p for p in sessions if p.date is not None]
    for k, name in enumerate(names):
        xs, ys = [], []
        for p in dated:
            v = p.exercises.get(name, {}).get(key, float("nan"))
            if math.isfinite(v):
                xs.append(p.date)
                ys.append(v)
        if xs:
            n_points += len(xs)
            ax.plot(xs, ys, marker="o", ms=3.5, lw=1.2, label=name,
                    color=f"C{k % 10}")
    if key == "asymmetry_index":
        ax.axhspan(-0.10, 0.10, color="#38a169", alpha=0.12, lw=0, label="symmetric (±0.10)")
    if key == "symmetry_ratio":
        ax.axhline(1.0, color="#2f855a", lw=0.8, ls="--")
    ax.set_title(metric_heading(m), loc="left")
    better = {"higher": "higher is better", "lower": "lower is better",
              "zero": "closer to 0 is better", "one": "closer to 1 is better"}.get(m.better, "")
    if better:
        ax.text(1.0, 1.02, better, transform=ax.transAxes, ha="right", va="bottom",
                fontsize=7, color="#616e7c")
    ax.legend(loc="best")
    _date_axis(ax, sessions)
    fig.autofmt_xdate()
    fig.tight_layout()
    return figure_png(fig, f"{m.title} per session (mean over repetitions)",
                      attrs=f'data-metric="{key}" data-points="{n_points}"')


def _ratio_figure(sessions: list[SessionPoint], muscles: list[str]) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 2.4))
    n_points = 0
    for k, muscle in enumerate(muscles):
        xs = [p.date for p in sessions if p.date and muscle in p.reference_ratio]
        ys = [p.reference_ratio[muscle] for p in sessions
              if p.date and muscle in p.reference_ratio]
        if xs:
            n_points += len(xs)
            ax.plot(xs, ys, marker="o", ms=3.5, lw=1.2, label=muscle.replace("_", " "),
                    color=f"C{k % 10}")
    ax.axhline(1.0, color="#2f855a", lw=0.8, ls="--")
    ax.set_title(metric_heading(METRICS["reference_ratio"]), loc="left")
    ax.legend(loc="best")
    _date_axis(ax, sessions)
    fig.autofmt_xdate()
    fig.tight_layout()
    return figure_png(fig, "Reference contraction, affected / healthy side, per session",
                      attrs=f'data-metric="reference_ratio" data-points="{n_points}"')


def build_progress(directory: str | Path, subject: str | None = None, *,
                   progress: ProgressFn | None = None) -> str:
    """The progress page of one subject's sessions under ``directory``.

    Parameters
    ----------
    directory
        Folder scanned recursively for ``*.h5`` sessions.
    subject
        Subject code; required when the folder holds sessions of several codes.
    progress
        Called with one line per file read.

    Returns
    -------
    str
        A self-contained HTML page.

    Raises
    ------
    EmgfbError
        Not a directory, no sessions, or an ambiguous / unknown subject.
    """
    all_sessions, skipped = scan(directory, progress)
    sessions = select_subject(all_sessions, subject, directory)
    code = sessions[0].subject or "(no subject code)"
    names = list(dict.fromkeys(n for p in sessions for n in p.exercises))
    muscles = list(dict.fromkeys(m for p in sessions for m in p.reference_ratio))
    parts = []
    days = [p.day for p in sessions]
    rows = [[p.day, p.path.name, p.protocol or "–", fmt(p.duration_s / 60, 1),
             sum(int(e["reps"]) for e in p.exercises.values()), fmt(p.lost_ticks, 0),
             "yes" if p.complete else "no"] for p in sessions]
    parts.append("<h2 id=\"sessions\">Sessions</h2>" + table(
        ["Date", "File", "Protocol", "Minutes", "Scored reps", "Lost samples", "Complete"],
        rows, "sessions", numeric=[False, False, False, True, True, True, False]))
    notes = []
    if skipped:
        notes.append(f"{len(skipped)} file(s) skipped, not readable emgfb sessions: " +
                     "; ".join(f"{name} ({reason})" for name, reason in skipped))
    others = sorted({p.subject or "(none)" for p in all_sessions} - {sessions[0].subject
                                                                      or "(none)"})
    if others:
        notes.append(f"Sessions of other subject codes not shown: {', '.join(others)}.")
    undated = sum(1 for p in sessions if p.date is None)
    if undated:
        notes.append(f"{undated} session(s) without a start date are listed but not plotted.")
    parts += [f"<p class=\"note\">{esc(n)}</p>" for n in notes]
    if names:
        figs = [_trend_figure(sessions, m.key, names) for m in SCORE_METRICS]
        parts.append("<h2 id=\"trends\">Trends per exercise</h2>"
                     "<p class=\"note\">Each point is the mean over the scored repetitions "
                     "of that exercise in one session.</p>"
                     f"<div class=\"grid\">{''.join(figs)}</div>")
        trows = []
        for p in sessions:
            for name in names:
                e = p.exercises.get(name)
                if e is None:
                    continue
                trows.append([p.day, name, int(e["reps"])] +
                             [fmt_metric(m.key, e.get(m.key)) for m in SCORE_METRICS])
        parts.append(table(["Date", "Exercise", "Reps"] +
                           [metric_heading(m) for m in SCORE_METRICS], trows, "trend",
                           numeric=[False, False] + [True] * (len(SCORE_METRICS) + 1)))
    else:
        parts.append("<p>No scored exercises in these sessions (plain recordings only).</p>")
    if muscles:
        crow = [[p.day] + [fmt_metric("reference_ratio", p.reference_ratio.get(mu))
                           for mu in muscles] for p in sessions]
        parts.append("<h2 id=\"calibration\">Reference symmetry</h2><div class=\"grid\">"
                     f"<div>{_ratio_figure(sessions, muscles)}</div><div>" +
                     table(["Date"] + [f"{mu.replace('_', ' ')} A/H" for mu in muscles],
                           crow, "reference", numeric=[False] + [True] * len(muscles)) +
                     "</div></div>")
    used = list(SCORE_METRICS) + [c for c in CALIBRATION_METRICS if c.key == "reference_ratio"]
    parts.append("<h2 id=\"definitions\">Definitions</h2>" + glossary(used))
    span = f"{days[0]} to {days[-1]}" if len(sessions) > 1 else days[0]
    return page("EMG biofeedback progress report",
                f"Subject {code} · {len(sessions)} session(s) · {span}", "".join(parts))


def write_progress(directory: str | Path, out: str | Path, subject: str | None = None, *,
                   force: bool = False, progress: ProgressFn | None = None) -> Path:
    """Write the progress page to ``out`` (refused if it exists unless ``force``)."""
    from emgfb.outputs import check_output

    out = check_output(out, force=force)
    text = build_progress(directory, subject, progress=progress)
    return write_html(out, text, force)


__all__ = ["SessionPoint", "build_progress", "scan", "select_subject", "summarise_session",
           "write_progress"]
