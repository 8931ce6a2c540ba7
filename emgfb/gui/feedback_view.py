"""The patient's feedback view: each muscle's affected and healthy side, side by side.

Owns :class:`FeedbackView`: one row per homologous muscle pair with two bars (affected,
healthy) on a shared normalised scale and the last seconds of both activations as
traces, a target band the patient tries to match on the exercised muscle, a suppression
ceiling on the synkinetic muscle that turns red when crossed, and mirror mode (the
affected side's target is the healthy side's live activation). Large fonts, calm colours.

It never shows the patient a wrong picture: a row whose affected or healthy channel is
not in the good state (:meth:`emgfb.live.LiveSession.channel_states`, the one channel
state: electrode off, clipping, no samples, board unplugged) shows "Check electrode —
please wait" or "No signal — please wait" (:func:`patient_words`) instead of bars,
percentages, traces or praise. Messages never rely on colour alone (a sign starts each).
Reads a :class:`~emgfb.gui.model.DisplayModel`. Imports Qt, pyqtgraph, ``emgfb.gui`` and
``emgfb.dsp.quality`` (the state names).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pyqtgraph as pg
from PyQt5 import QtCore, QtWidgets

from emgfb.dsp.quality import GOOD, NO_SIGNAL, ChannelState
from emgfb.gui import theme
from emgfb.gui.model import DisplayModel
from emgfb.gui.widgets import (
    MUSCLE_ACTIONS,
    PairBars,
    add_curve,
    make_plot,
    muscle_name,
    set_curve,
)

#: Half-width of the target band (DOMAIN.md §4: ±10 % counts as on target).
TARGET_TOLERANCE = 0.10
DEFAULT_TARGET = 0.30
DEFAULT_CEILING = 0.15
SYNKINESIS_MUSCLE = "orbicularis_oculi"


def patient_words(state: ChannelState) -> str:
    """What the patient is told about a channel that is not good (``""`` when good): the
    clinician's reason is for the set-up view; the patient only learns to wait."""
    if state.state == GOOD:
        return ""
    if state.state == NO_SIGNAL:
        return "No signal — please wait"
    return "Check electrode — please wait"


class PairRow(QtWidgets.QFrame):
    """One muscle pair: title, bars and activation traces."""

    def __init__(self, muscle: str, affected: int, healthy: int, sides: tuple[str, str],
                 on_paint: Callable[[float], None] | None = None,
                 parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("card")
        self.muscle, self.affected, self.healthy = muscle, affected, healthy
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(14, 8, 14, 8)
        lay.setSpacing(16)
        left = QtWidgets.QVBoxLayout()
        self.title = QtWidgets.QLabel(MUSCLE_ACTIONS.get(muscle, muscle))
        f = self.title.font()
        f.setPointSize(theme.PATIENT_POINT_SIZE)
        f.setBold(True)
        self.title.setFont(f)
        self.title.setWordWrap(True)
        left.addWidget(self.title)
        sub = QtWidgets.QLabel(muscle_name(muscle))
        sub.setObjectName("muted")
        f2 = sub.font()
        f2.setPointSize(13)
        sub.setFont(f2)
        left.addWidget(sub)
        self.sub = sub
        self.message = QtWidgets.QLabel("")
        f3 = self.message.font()
        f3.setPointSize(14)
        self.message.setFont(f3)
        self.message.setWordWrap(True)
        self.message.setFixedHeight(50)
        # PyQt5's stubs type flag | flag as int; it is a Qt.Alignment at run time
        top_left = QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop
        self.message.setAlignment(top_left)  # type: ignore[arg-type]
        left.addWidget(self.message)
        left.addStretch(1)
        box = QtWidgets.QWidget()
        box.setLayout(left)
        box.setFixedWidth(290)
        lay.addWidget(box)
        self.bars = PairBars(f"Affected ({sides[0][0].upper()})",
                             f"Healthy ({sides[1][0].upper()})")
        lay.addWidget(self.bars)
        self.plot = make_plot(on_paint)
        item = self.plot.getPlotItem()
        item.setYRange(0, 1.0, padding=0.02)
        item.getAxis("left").setTicks([[(v, f"{int(v * 100)}%") for v in (0, .25, .5, .75, 1)]])
        item.getAxis("left").setWidth(48)
        item.setLabel("bottom", "seconds ago")
        axis_font = self.font()
        axis_font.setPointSize(12)
        item.getAxis("left").setStyle(tickFont=axis_font)
        item.getAxis("bottom").setStyle(tickFont=axis_font)
        self.band = pg.LinearRegionItem((0, 0), orientation="horizontal", movable=False,
                                        brush=pg.mkBrush(*theme.TARGET_FILL),
                                        pen=pg.mkPen(theme.TARGET_LINE))
        self.band.setZValue(-10)
        item.addItem(self.band)
        self.ceiling_line = pg.InfiniteLine(angle=0, movable=False,
                                            pen=pg.mkPen(theme.CEILING_OK, width=2,
                                                         style=QtCore.Qt.PenStyle.DashLine))
        item.addItem(self.ceiling_line)
        self.healthy_curve = add_curve(self.plot, theme.HEALTHY, 2)
        self.affected_curve = add_curve(self.plot, theme.AFFECTED, 3)
        lay.addWidget(self.plot, 1)
        #: Why this row shows no level ("" when it does), e.g. "Check electrode — ...".
        self.blocked = ""
        self._guides: tuple[tuple[float, float] | None, float | None] = (None, None)

    def set_blocked(self, message: str) -> None:
        """Replace bars and traces by ``message`` ("" shows them again)."""
        if message == self.blocked:
            return
        self.blocked = message
        self.bars.set_blocked(message)
        for curve in (self.affected_curve, self.healthy_curve):
            curve.setVisible(not message)
        self.set_guides(*self._guides)

    def set_guides(self, target: tuple[float, float] | None, ceiling: float | None) -> None:
        """Show or hide the target band and the ceiling line in the trace plot."""
        self._guides = (target, ceiling)
        if self.blocked:  # shown again when the row is unblocked
            target = ceiling = None
        self.band.setVisible(target is not None)
        if target is not None:
            self.band.setRegion(target)
        self.ceiling_line.setVisible(ceiling is not None)
        if ceiling is not None:
            self.ceiling_line.setValue(ceiling)


class FeedbackView(QtWidgets.QWidget):
    """Side-by-side feedback for the patient.

    Parameters
    ----------
    model
        The display model of the running session.
    on_paint
        Called after the first trace plot paints (fps and latency bookkeeping).
    """

    def __init__(self, model: DisplayModel, on_paint: Callable[[float], None] | None = None,
                 parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.model = model
        #: A guided session's overlay (:class:`emgfb.gui.session_panel.GuidedFeedback`):
        #: when set, it gives each row's target band, ceiling and ceiling state.
        self.guide = None
        montage = model.montage
        self.pairs = montage.pairs()
        if not self.pairs:  # no homologous pairs: show channels one by one against nothing
            self.pairs = [(c.muscle, i, i) for i, c in enumerate(montage.channels)]
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(16, 10, 16, 10)
        outer.setSpacing(8)

        head = QtWidgets.QHBoxLayout()
        self.instruction = QtWidgets.QLabel()
        f = self.instruction.font()
        f.setPointSize(18)
        self.instruction.setFont(f)
        # wraps rather than widening the window: the whole view fits a 1366 x 768 laptop
        self.instruction.setWordWrap(True)
        self.instruction.setMinimumWidth(200)
        head.addWidget(self.instruction, 1)
        head.addWidget(QtWidgets.QLabel("Exercise"))
        self.muscle_box = QtWidgets.QComboBox()
        muscles = [m for m, _, _ in self.pairs]
        for m in muscles:
            self.muscle_box.addItem(MUSCLE_ACTIONS.get(m, m), m)
        default = "zygomaticus_major" if "zygomaticus_major" in muscles else muscles[0]
        self.muscle_box.setCurrentIndex(muscles.index(default))
        head.addWidget(self.muscle_box)
        head.addWidget(QtWidgets.QLabel("Target"))
        self.target_box = QtWidgets.QSpinBox()
        self.target_box.setRange(5, 100)
        self.target_box.setSingleStep(5)
        self.target_box.setSuffix(" %")
        self.target_box.setValue(int(DEFAULT_TARGET * 100))
        head.addWidget(self.target_box)
        head.addWidget(QtWidgets.QLabel("Ceiling"))
        self.ceiling_box = QtWidgets.QSpinBox()
        self.ceiling_box.setRange(5, 100)
        self.ceiling_box.setSingleStep(5)
        self.ceiling_box.setSuffix(" %")
        self.ceiling_box.setValue(int(DEFAULT_CEILING * 100))
        head.addWidget(self.ceiling_box)
        self.mirror_box = QtWidgets.QCheckBox("Mirror")
        self.mirror_box.setToolTip("Mirror mode: the target is the healthy side's live level")
        head.addWidget(self.mirror_box)
        outer.addLayout(head)
        self.header = head
        for w in (self.muscle_box, self.target_box, self.ceiling_box):
            sig = w.currentIndexChanged if isinstance(w, QtWidgets.QComboBox) else w.valueChanged
            sig.connect(self._settings_changed)
        self.mirror_box.toggled.connect(self._settings_changed)

        self.rows: list[PairRow] = []
        for k, (muscle, a, h) in enumerate(self.pairs):
            sides = (montage.channels[a].side, montage.channels[h].side)
            row = PairRow(muscle, a, h, sides, on_paint if k == 0 else None)
            row.setMinimumHeight(120)
            outer.addWidget(row, 1)
            self.rows.append(row)
        x_range = model.activation.window_s
        for r in self.rows:
            r.plot.setXRange(-x_range, 0, padding=0)
        self._newest = -1
        # the window redraws only when samples arrive; this watchdog redraws when they stop
        # (the session's states then turn to no signal)
        self._watchdog = QtCore.QTimer(self)
        self._watchdog.setInterval(250)
        self._watchdog.timeout.connect(self._when_silent)
        self._watchdog.start()
        #: The latest :class:`~emgfb.dsp.ChannelState` per channel (what the rows obey).
        self.states: list[ChannelState] = []
        self._settings_changed()

    # -- settings ------------------------------------------------------------------------

    @property
    def exercise_muscle(self) -> str:
        """Muscle the patient is training."""
        return str(self.muscle_box.currentData())

    @property
    def synkinesis_muscle(self) -> str | None:
        """Muscle that must stay quiet (the main synkinesis sensor), if in the montage."""
        muscles = [m for m, _, _ in self.pairs]
        ex = self.exercise_muscle
        if ex != SYNKINESIS_MUSCLE and SYNKINESIS_MUSCLE in muscles:
            return SYNKINESIS_MUSCLE
        if ex == SYNKINESIS_MUSCLE and "zygomaticus_major" in muscles:
            return "zygomaticus_major"  # eye closure must not pull the mouth corner
        return None

    def _settings_changed(self) -> None:
        ex = self.exercise_muscle
        action = MUSCLE_ACTIONS.get(ex, ex).lower()
        if self.mirror_box.isChecked():
            self.instruction.setText(f"Slow, small {action}: make the blue side follow the "
                                     "healthy side")
        else:
            self.instruction.setText(f"Slow, small {action}: bring the blue bar into the "
                                     "amber band, hold, relax")
        for r in self.rows:
            r.set_guides(self.target_band() if r.muscle == ex and not self.mirror_box.isChecked()
                         else None,
                         self.ceiling() if r.muscle == self.synkinesis_muscle else None)
            r.message.setText("")

    def target_band(self) -> tuple[float, float]:
        """Target band (activation) of the exercised muscle's affected side."""
        t = self.target_box.value() / 100.0
        return max(0.0, t - TARGET_TOLERANCE), t + TARGET_TOLERANCE

    def ceiling(self) -> float:
        """Suppression ceiling (activation) on the synkinetic muscle."""
        return self.ceiling_box.value() / 100.0

    # -- drawing -------------------------------------------------------------------------

    def channel_states(self) -> list[ChannelState]:
        """Each channel's state now: the session's (``no_signal`` before the first sample
        and when samples stop)."""
        m = self.model
        self._newest = m.newest_index
        states = list(m.session.channel_states())
        n = m.montage.n_channels
        if len(states) != n:  # nothing configured yet
            return [ChannelState(ch, NO_SIGNAL, "waiting for data from the board")
                    for ch in range(n)]
        return states

    def _when_silent(self) -> None:
        """Redraw when no sample arrived since the last redraw: the session's states turn
        to no signal when the board stops sending, and the rows must say so."""
        m = self.model
        if (self.isVisible() and not getattr(m, "frozen", False)
                and m.newest_index == self._newest):
            self.refresh()

    def refresh(self) -> None:
        """Redraw bars and traces from the model (called on the display timer)."""
        m = self.model
        act = m.activation
        x = act.x
        latest = m.latest_activation()
        ex, syn = self.exercise_muscle, self.synkinesis_muscle
        mirror = self.mirror_box.isChecked()
        self.states = states = self.channel_states()
        for r in self.rows:
            bad = [v for v in (states[r.affected], states[r.healthy]) if v.state != GOOD]
            if bad:
                worst = next((v for v in bad if v.state == NO_SIGNAL), bad[0])
                words = patient_words(worst)
                r.set_blocked(words)
                self._show_message(r, ("○ " if worst.state == NO_SIGNAL else "⚠ ") + words,
                                   theme.TEXT)
                continue
            r.set_blocked("")
            set_curve(r.affected_curve, x, act.y(r.affected))
            set_curve(r.healthy_curve, x, act.y(r.healthy))
            a, h = float(latest[r.affected]), float(latest[r.healthy])
            target = None
            if r.muscle == ex:
                if mirror and math.isfinite(h):
                    target = (max(0.0, h - TARGET_TOLERANCE), h + TARGET_TOLERANCE)
                elif not mirror:
                    target = self.target_band()
            ceiling = self.ceiling() if r.muscle == syn else None
            if self.guide is not None:
                target, ceiling = self.guide.row_guides(r)
            r.bars.set_state(a, h, target, ceiling)
            self._message(r, a, target, ceiling)

    def _message(self, r: PairRow, a: float, target: tuple[float, float] | None,
                 ceiling: float | None) -> None:
        text, colour = "", theme.TEXT
        if ceiling is not None:
            crossed = (r.bars.ceiling_crossed if self.guide is None
                       else self.guide.ceiling_crossed(r))
            text = "✗ Too active — relax this area" if crossed else "✓ Stay relaxed here"
            colour = theme.CEILING_CROSSED if crossed else theme.CEILING_OK
            if getattr(r, "_ceiling_colour", None) != colour:
                r._ceiling_colour = colour
                r.ceiling_line.setPen(pg.mkPen(colour, width=2, style=QtCore.Qt.PenStyle.DashLine))
        elif target is not None and math.isfinite(a):
            if a < target[0]:
                text, colour = "▲ A little more", theme.TEXT_MUTED
            elif a > target[1]:
                text, colour = "▼ Gentler", theme.TARGET_LINE
            else:
                text, colour = "● On target — hold", "#1E6B34"
        self._show_message(r, text, colour)

    @staticmethod
    def _show_message(r: PairRow, text: str, colour: str) -> None:
        if r.message.text() != text:
            r.message.setText(text)
            r.message.setStyleSheet(f"color: {colour};")
