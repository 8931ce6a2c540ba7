"""A guided session in the feedback view: cue panel, moving target, ceilings, summary.

Owns :class:`GuidedFeedback`, which attaches a :class:`~emgfb.exercises.guided.GuidedDriver`
to a :class:`~emgfb.gui.main_window.MainWindow`: on every tick of the window's display
timer it polls the driver (whatever view is visible, so markers and documents never
depend on the display), shows the cue on a :class:`CuePanel` above the muscle rows (big
instruction, countdown, rep i/n, step and Sunnybrook item, the last rep's score in plain
words), draws the runner's target course (the last seconds and the next
:data:`~emgfb.exercises.runner.AHEAD_S` seconds, with its band) on the target muscle's row
and gives the feedback view each row's target band and suppression ceiling (red when the
runner says the suppression muscle is over it). While a channel the current step uses is
not good the patient is asked to wait instead (the rows show why), and while the signal
check waits the clinician sees which channel and may override it (a marker). When the
protocol ends it shows a :class:`SummaryPanel`; the window stays open. Imports Qt,
pyqtgraph, ``emgfb.gui``, ``emgfb.exercises`` and ``emgfb.dsp.quality`` (the state names).
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtWidgets

from emgfb.dsp.quality import GOOD
from emgfb.exercises.guided import QUIET_WORDS, GuidedDriver, score_words, summary_words
from emgfb.exercises.runner import AHEAD_S
from emgfb.gui import theme

#: Seconds of past target course shown left of "now" (the traces span 10 s).
PAST_S = 8.0
SCORE_COLOUR = "#1E6B34"
QWIDGETSIZE_MAX = (1 << 24) - 1


def _label(point_size: int, bold: bool = False, colour: str = theme.TEXT,
           wrap: bool = False) -> QtWidgets.QLabel:
    lab = QtWidgets.QLabel()
    f = lab.font()
    f.setPointSize(point_size)
    f.setBold(bold)
    lab.setFont(f)
    lab.setStyleSheet(f"color: {colour};")
    lab.setWordWrap(wrap)
    return lab


class CuePanel(QtWidgets.QFrame):
    """What the patient should do now: instruction, countdown, rep counter, last score."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("card")
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(18, 10, 18, 10)
        lay.setSpacing(4)
        top = QtWidgets.QHBoxLayout()
        self.where = _label(15, colour=theme.TEXT_MUTED)
        top.addWidget(self.where, 1)
        self.rep = _label(24, bold=True, colour=theme.AFFECTED)
        top.addWidget(self.rep)
        lay.addLayout(top)
        mid = QtWidgets.QHBoxLayout()
        self.text = _label(32, bold=True, wrap=True)
        self.text.setMinimumHeight(60)
        mid.addWidget(self.text, 1)
        self.countdown = _label(32, colour=theme.TEXT_MUTED)
        # PyQt5's stubs type flag | flag as int; it is a Qt.Alignment at run time
        right = QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter
        self.countdown.setAlignment(right)  # type: ignore[arg-type]
        self.countdown.setMinimumWidth(110)
        mid.addWidget(self.countdown)
        lay.addLayout(mid)
        self.score = _label(18, colour=SCORE_COLOUR, wrap=True)
        lay.addWidget(self.score)
        check = QtWidgets.QHBoxLayout()
        self.check = _label(13, colour=theme.WARNING_TEXT, wrap=True)
        check.addWidget(self.check, 1)
        self.override = QtWidgets.QPushButton("Override signal check (clinician)")
        self.override.setToolTip("Start although a channel is not good; stored as a marker. "
                                 "Repetitions using that channel are not scored.")
        check.addWidget(self.override)
        lay.addLayout(check)
        self.check.hide()
        self.override.hide()
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(6)
        self.progress.setStyleSheet(
            f"QProgressBar {{ background: #E9EDF1; border: none; border-radius: 3px; }}"
            f"QProgressBar::chunk {{ background: {theme.AFFECTED}; border-radius: 3px; }}")
        lay.addWidget(self.progress)


class SummaryPanel(QtWidgets.QFrame):
    """The end of the session: per-exercise results in plain words."""

    back = QtCore.pyqtSignal()

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("card")
        self.lay = QtWidgets.QVBoxLayout(self)
        self.lay.setContentsMargins(24, 16, 24, 16)
        self.title = _label(26, bold=True)
        self.lay.addWidget(self.title)
        self.body = _label(18, wrap=True)
        self.body.setTextFormat(QtCore.Qt.TextFormat.RichText)
        # PyQt5's stubs type flag | flag as int; it is a Qt.Alignment at run time
        top_left = QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop
        self.body.setAlignment(top_left)  # type: ignore[arg-type]
        self.lay.addWidget(self.body, 1)
        self.file = _label(12, colour=theme.TEXT_MUTED, wrap=True)
        self.lay.addWidget(self.file)
        self.button = QtWidgets.QPushButton("Show the live signals")
        self.button.clicked.connect(self.back)
        self.lay.addWidget(self.button, 0, QtCore.Qt.AlignmentFlag.AlignLeft)


class _RowOverlay:
    """Target course, its band and a "now" line drawn in one row's trace plot."""

    def __init__(self, plot: pg.PlotWidget):
        item = plot.getPlotItem()
        self.lo = pg.PlotCurveItem(pen=pg.mkPen(None))
        self.hi = pg.PlotCurveItem(pen=pg.mkPen(None))
        self.fill = pg.FillBetweenItem(self.lo, self.hi, brush=pg.mkBrush(*theme.TARGET_FILL))
        self.fill.setZValue(-10)
        self.line = pg.PlotCurveItem(pen=pg.mkPen(theme.TARGET_LINE, width=2))
        self.now = pg.InfiniteLine(0.0, angle=90, movable=False,
                                   pen=pg.mkPen(theme.BORDER, width=2))
        for it in (self.fill, self.line, self.now):
            item.addItem(it)
        self.set_visible(False)

    def set_visible(self, visible: bool) -> None:
        for it in (self.fill, self.line):
            it.setVisible(visible)

    def set_course(self, x: np.ndarray, y: np.ndarray, band: float) -> None:
        self.lo.setData(x, np.maximum(y - band, 0.0))
        self.hi.setData(x, y + band)
        self.line.setData(x, y)
        self.set_visible(True)


class GuidedFeedback(QtCore.QObject):
    """Drive a main window's feedback view from a guided session.

    Parameters
    ----------
    window
        The main window around the driver's session.
    driver
        The guided session (its runner, autopilot, documents).
    """

    def __init__(self, window: QtWidgets.QMainWindow, driver: GuidedDriver):
        super().__init__(window)
        self.window, self.driver = window, driver
        self.runner = driver.runner
        self.view = view = window.feedback_view
        self.record_path = window.session.recording_path
        for i in range(view.header.count()):  # the free-running settings do not apply
            w = view.header.itemAt(i).widget()
            if w is not None:
                w.hide()
        view.header.invalidate()  # their width must not hold the window wide (1366 px)
        self.panel = CuePanel()
        view.layout().insertWidget(0, self.panel)
        self.summary = SummaryPanel()
        self.summary.hide()
        self.summary.back.connect(self.show_rows)
        view.layout().addWidget(self.summary, 3)
        self.overlays = {}
        self._titles = {r.affected: r.title.text() for r in view.rows}
        for r in view.rows:
            r.plot.setXRange(-PAST_S, AHEAD_S, padding=0)
            r.plot.getPlotItem().setLabel("bottom", "seconds  (0 = now · right: what comes next)")
            r.set_guides(None, None)
            self.overlays[r.affected] = _RowOverlay(r.plot)
        fs = self.runner.fs
        self._x = np.arange(-PAST_S, AHEAD_S + 1e-9, 0.05)
        self._dx = np.round(self._x * fs).astype(np.int64)
        self._step_span: dict[int, tuple[int, int]] = {}
        for seg in self.runner.segments:
            a, b = self._step_span.get(seg.step_index, (seg.start, seg.end))
            self._step_span[seg.step_index] = (min(a, seg.start), max(b, seg.end))
        self._shown: dict[str, object] = {}
        self._ceilings: dict[int, float | None] = {}
        self.summary_shown = False
        self.panel.override.clicked.connect(driver.override_check)
        view.guide = self
        window.timer.timeout.connect(self.tick)
        window.shutdown_hooks.append(self.close)
        self.tick()

    # -- the feedback view asks --------------------------------------------------------

    def row_guides(self, row) -> tuple[tuple[float, float] | None, float | None]:
        """Target band and suppression ceiling (activation units) of a feedback row."""
        cue = self.driver.cue
        if cue.finished or self.driver.done or cue.step_kind != "exercise":
            return None, None
        target = None  # only during a rep: between reps the patient just rests
        if row.affected == cue.target_channel and cue.rep and cue.target_pct is not None \
                and math.isfinite(cue.target_pct):
            t, b = cue.target_pct / 100.0, (cue.band_pct or 0.0) / 100.0
            target = (max(0.0, t - b), t + b)
        ceiling = None
        if row.affected in cue.suppression_channels:
            ceiling = self.driver.ceiling_activation(
                cue.suppression_channels.index(row.affected))
        return target, ceiling

    def ceiling_crossed(self, row) -> bool:
        """True when the runner sees this row's suppression muscle above its ceiling."""
        cue = self.driver.cue
        return bool(cue.suppression_over and row.affected in cue.suppression_channels)

    # -- timer ---------------------------------------------------------------------------

    def tick(self) -> None:
        """Poll the driver, update the cue panel and the target course (display timer)."""
        was_done = self.driver.done
        self.driver.poll()
        cue = self.driver.cue
        self._update_panel(cue)
        if self.window.current_view == "feedback" and not self.summary_shown:
            self._update_guides(cue)
        if self.driver.done and not was_done:
            self._finished()

    def _set(self, key: str, label: QtWidgets.QLabel, text: str) -> None:
        if self._shown.get(key) != text:
            self._shown[key] = text
            label.setText(text)

    def _update_panel(self, cue) -> None:
        p, r = self.panel, self.runner
        if self.driver.error:
            self._set("where", p.where, "The session stopped — please ask your clinician")
            self._set("text", p.text, self.driver.error)
            self._set("countdown", p.countdown, "")
            self._set("rep", p.rep, "")
            return
        if cue.finished:
            self._set("where", p.where, f"{r.protocol.name}: all {cue.n_steps} steps done")
            self._set("rep", p.rep, "")
        else:
            step = r.protocol.steps[cue.step_index]
            where = f"Step {cue.step_index + 1} of {cue.n_steps} · {step.label}"
            if step.kind == "exercise" and step.sunnybrook:
                where += f" · Sunnybrook item: {step.sunnybrook}"
            self._set("where", p.where, where)
            rep = ""
            if step.kind == "exercise":
                done = sum(1 for s in r.scores if s["step"] == step.label)
                rep = (f"Rep {cue.rep} of {cue.n_reps}" if cue.rep
                       else f"{done} of {cue.n_reps} done")
            self._set("rep", p.rep, rep)
        text = cue.text.replace(" - ", " — ")
        waiting = self._waiting_channels(cue)
        if waiting:  # never a level or praise from a channel that cannot be trusted
            text = "Please wait — checking the electrodes"
        self._set("text", p.text, text)
        check = ""
        if cue.check_waiting:
            labels = r.montage.labels
            check = "Signal check waiting for: " + "; ".join(
                f"{labels[c]} {cue.channel_states[c].state.replace('_', ' ')}"
                + (f" ({cue.channel_states[c].reason})" if cue.channel_states[c].reason
                   else "") for c in cue.check_waiting)
        elif cue.notice:
            check = cue.notice
        self._set("check", p.check, check)
        p.check.setVisible(bool(check))
        p.override.setVisible(bool(cue.check_waiting))
        self._set("countdown", p.countdown,
                  f"{math.ceil(cue.countdown_s - 1e-9)} s"
                  if not (cue.finished or waiting) else "")
        last = cue.last_score
        if last is not None:
            steps = {s.label: s for s in r.protocol.steps}
            supp = steps[last["step"]].suppress if last["step"] in steps else ()
            self._set("score", p.score, score_words(last, supp))
        total = max(1, r.total_ticks)
        p.progress.setValue(int(1000 * min(1.0, r.elapsed_s * r.fs / total)))

    def _waiting_channels(self, cue) -> list[int]:
        """Channels the current step uses that are not good (the patient waits)."""
        states = cue.channel_states
        if not states or cue.finished:
            return []
        if cue.step_kind == "signal-check":
            return list(cue.check_waiting)
        chans = [c for c in (cue.target_channel, cue.healthy_channel,
                             *cue.suppression_channels) if c is not None]
        return [c for c in chans if states[c].state != GOOD]

    def _update_guides(self, cue) -> None:
        r = self.runner
        newest = self.window.model.newest_index
        target_ch = cue.target_channel if cue.step_kind == "exercise" else None
        for ch, ov in self.overlays.items():
            if ch != target_ch or newest < 0 or r.origin is None or cue.finished:
                ov.set_visible(False)
                continue
            offs = newest + 1 - r.origin + self._dx
            y = r.targets_at(offs) / 100.0
            a, b = self._step_span.get(cue.step_index, (0, 0))
            keep = (offs >= a) & (offs < b) & np.isfinite(y)
            if keep.sum() < 2:
                ov.set_visible(False)
                continue
            ov.set_course(self._x[keep], y[keep], (cue.band_pct or 0.0) / 100.0)
        focus = self._focus(cue)
        for row in self.view.rows:
            if self._shown.get(f"focus{row.affected}") != (row.affected in focus):
                self._shown[f"focus{row.affected}"] = row.affected in focus
                # the rows the exercise is about get the room; the others stay small
                # (still drawn: the first row's paints count the display fps)
                row.setMinimumHeight(130 if row.affected in focus else 0)
                row.setMaximumHeight(QWIDGETSIZE_MAX if row.affected in focus else 110)
                left = row.plot.getPlotItem().getAxis("left")
                left.setTicks([[(v, f"{int(v * 100)}%") for v in (
                    (0, .25, .5, .75, 1) if row.affected in focus else (.5,))]])
            title = self._titles[row.affected]
            if row.affected in cue.suppression_channels and not cue.finished:
                word = QUIET_WORDS.get(row.muscle, row.muscle.replace("_", " "))
                title = f"{word.capitalize()}: keep it quiet"
            if row.title.text() != title:
                row.title.setText(title)
            _, ceiling = self.row_guides(row)
            if self._ceilings.get(row.affected, -1.0) != ceiling:
                self._ceilings[row.affected] = ceiling
                row.set_guides(None, ceiling)

    def _focus(self, cue) -> set[int]:
        """Affected channels of the rows the current step is about (all outside exercises)."""
        rows = {row.affected for row in self.view.rows}
        if cue.finished or cue.step_kind != "exercise" or cue.target_channel is None:
            return rows
        return ({cue.target_channel, *cue.suppression_channels} & rows) or rows

    # -- the end -------------------------------------------------------------------------

    def _finished(self) -> None:
        for ov in self.overlays.values():
            ov.set_visible(False)
        for row in self.view.rows:
            row.set_guides(None, None)
        s = self.summary
        if self.driver.error:
            s.title.setText("The session stopped early")
            lines = [self.driver.error]
        else:
            s.title.setText("Your results")
            lines = summary_words(self.runner.scores, self.runner.protocol) or [
                "No repetitions were scored."]
        s.body.setText("<br>".join(f"• {line}" for line in lines))
        if self.record_path is not None:
            s.file.setText(f"Saved to {self.record_path}  ·  "
                           f"report: emgfb report {self.record_path.name} -o report.html")
        self.show_summary()
        bar = self.window.statusBar()
        assert bar is not None  # a QMainWindow always makes one
        bar.showMessage(
            f"Guided session {self.runner.protocol.name} "
            f"{'stopped' if self.driver.error else 'finished'}; recording saved", 10000)

    def show_summary(self) -> None:
        """Replace the muscle rows with the summary."""
        self.summary_shown = True
        for row in self.view.rows:
            row.hide()
        self.summary.show()

    def show_rows(self) -> None:
        """Back to the live muscle rows (after the summary)."""
        self.summary_shown = False
        self.summary.hide()
        for row in self.view.rows:
            row.show()

    def close(self) -> None:
        """Window closing: store the documents measured so far (the recording is kept)."""
        if not self.driver.done:
            self.driver.store_documents()
            if self.driver.model is not None:
                self.driver.model.set_drive(None)


def attach(window: QtWidgets.QMainWindow, driver: GuidedDriver) -> GuidedFeedback:
    """Attach a guided session to ``window`` and show the feedback view."""
    guided = GuidedFeedback(window, driver)
    window.show_view("feedback")
    window.guided = guided
    return guided
