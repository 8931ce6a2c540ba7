"""Session reports: one self-contained, printable HTML page per recording (issue 6).

This package owns turning one emgfb session into the clinician's report, in memory that
does not grow with the recording's length (issue 11). It is split by job:

- :mod:`~emgfb.exercises.report.metrics`: the metric glossary :data:`METRICS` (shown in
  every report and mirrored by ``docs/metrics.md``);
- :mod:`~emgfb.exercises.report.analysis`: the numbers: one block-by-block pass over the
  samples (envelopes with the causal pipeline, signal quality), keeping only repetition
  windows and display traces; the exercise documents; no matplotlib, no HTML;
- :mod:`~emgfb.exercises.report.figures`: the matplotlib plots (Agg backend);
- :mod:`~emgfb.exercises.report.render`: the HTML (escaping, tables, sections, page).

This module wires them (:func:`build_report`, :func:`write_report`) and re-exports what
:mod:`emgfb.exercises.progress` shares. A recording without exercise documents gets the
session, quality, gaps and envelope sections only. Imports ``errors``, ``outputs``,
``recording`` (reader), ``dsp`` and the modules above; never Qt.
"""

from __future__ import annotations

from pathlib import Path

from emgfb.exercises.report.analysis import (
    ProgressFn,
    ProgressMeter,
    SessionData,
    Trace,
    calibration_values,
    channel_index,
    exercise_name,
    exercise_summary,
    exercises,
    group_scores,
    healthy_partner,
    invalid_note,
    mean_sd,
    quality_table,
    session_date,
)
from emgfb.exercises.report.figures import pyplot
from emgfb.exercises.report.metrics import (
    CALIBRATION_METRICS,
    DERIVED_METRICS,
    METRICS,
    QUALITY_METRICS,
    SCORE_METRICS,
    Metric,
)
from emgfb.exercises.report.render import (
    Raw,
    esc,
    figure_png,
    fmt,
    fmt_metric,
    glossary,
    metric_heading,
    page,
    render_report,
    table,
    write_html,
)


def build_report(path: str | Path, *, progress: ProgressFn | None = None,
                 max_plot_points: int = 4000) -> str:
    """The HTML report of the session ``path``.

    Parameters
    ----------
    path
        An emgfb ``.h5`` session (guided or plain).
    progress
        Called with one line per stage and a percentage every 2 s of long work (for
        stderr on long files).
    max_plot_points
        Display bins per plotted span; each bin is drawn as its minimum and maximum.

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
        s = SessionData(rec, progress)
        s.scan(max_points=max_plot_points)
        return render_report(s)


def write_report(src: str | Path, out: str | Path, *, force: bool = False,
                 progress: ProgressFn | None = None) -> Path:
    """Write the report of ``src`` to ``out`` by the output rule (:mod:`emgfb.outputs`).

    The output is checked before the (possibly long) analysis starts: never over ``src``
    or any session, an existing file only with ``force``, atomically.
    """
    from emgfb.outputs import check_output

    check_output(out, inputs=[src], force=force)
    text = build_report(src, progress=progress)
    return write_html(out, text, force, inputs=[src])


__all__ = [
    "CALIBRATION_METRICS", "DERIVED_METRICS", "METRICS", "QUALITY_METRICS", "SCORE_METRICS",
    "Metric", "ProgressFn", "ProgressMeter", "Raw", "SessionData", "Trace", "build_report",
    "calibration_values", "channel_index", "esc", "exercise_name", "exercise_summary",
    "exercises", "figure_png", "fmt", "fmt_metric", "glossary", "group_scores",
    "healthy_partner", "invalid_note", "mean_sd", "metric_heading", "page", "pyplot",
    "quality_table", "session_date", "table", "write_html", "write_report",
]
