"""The clinician's set-up view: every channel's µV trace, envelope and signal quality.

Owns :class:`SetupView`: one row per channel with a montage card (muscle, side, label,
quality badge with a plain-language hint) and a scrolling trace (filtered µV as min/max
per display bin, its envelope on top; all rows in one pyqtgraph view, so a frame is one
paint), a mains-power warning banner and the window and scale selectors. Reads a
:class:`~emgfb.gui.model.DisplayModel` and the session's channel states
(:meth:`emgfb.live.LiveSession.channel_states`); computes nothing but display values.
Imports Qt, pyqtgraph, ``emgfb.gui`` and ``emgfb.dsp.quality`` (the state names).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtWidgets

from emgfb.dsp.quality import GOOD, NO_SIGNAL, ChannelState
from emgfb.gui import theme
from emgfb.gui.model import DisplayModel
from emgfb.gui.widgets import (
    ChannelCard,
    TimedLayoutWidget,
    TraceCurve,
    add_curve,
    set_curve,
    style_plot_item,
)

WINDOWS_S = (2, 5, 10)
SCALES_UV = (25, 50, 100, 250, 500, 1000)
ROW_SPACING = 4
AXIS_WIDTH = 48
MAINS_WARNING = (
    "⚠  This computer is running on mains power. For patient safety, unplug the charger and "
    "run on battery, or connect the board through a certified USB isolator."
)


def quality_view(q: ChannelState | None, channel: int) -> tuple[str, str, str]:
    """(state, hint, level text) of a :class:`~emgfb.dsp.ChannelState` (``None``: nothing
    configured yet)."""
    if q is None:
        return "unknown", "Waiting for signal…", ""
    if q.state == GOOD:
        hint = "Signal looks good."
    else:
        hint = f"Electrode {channel + 1}: {q.reason}."
    rms = q.rest_rms_uv
    level = f"rest {rms:.1f} µV RMS" if q.state != NO_SIGNAL and math.isfinite(rms) else ""
    return q.state, hint, level


class SetupView(QtWidgets.QWidget):
    """Per-channel traces, envelopes and quality badges for electrode set-up."""

    def __init__(self, model: DisplayModel, mains_power: bool | None,
                 on_paint: Callable[[float], None] | None = None,
                 parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.model = model
        montage = model.montage
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(10, 8, 10, 6)
        outer.setSpacing(6)

        self.banner = QtWidgets.QLabel(MAINS_WARNING)
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setVisible(bool(mains_power))
        outer.addWidget(self.banner)

        head = QtWidgets.QHBoxLayout()
        title = QtWidgets.QLabel("<b>Signal check</b> — relaxed face: traces should be "
                                 "flat and quiet; badges green before you start.")
        head.addWidget(title, 1)
        head.addWidget(QtWidgets.QLabel("Window"))
        self.window_box = QtWidgets.QComboBox()
        for w in WINDOWS_S:
            self.window_box.addItem(f"{w} s", w)
        self.window_box.setCurrentIndex(WINDOWS_S.index(5))
        self.window_box.currentIndexChanged.connect(self._window_changed)
        head.addWidget(self.window_box)
        head.addSpacing(12)
        head.addWidget(QtWidgets.QLabel("Scale"))
        self.scale_box = QtWidgets.QComboBox()
        for v in SCALES_UV:
            self.scale_box.addItem(f"±{v} µV", v)
        self.scale_box.setCurrentIndex(SCALES_UV.index(250))
        self.scale_box.currentIndexChanged.connect(self._scale_changed)
        head.addWidget(self.scale_box)
        outer.addLayout(head)

        # Cards in a column of widgets; all traces in ONE graphics view (one paint per
        # frame instead of one per channel), rows of equal height lined up with the cards.
        body = QtWidgets.QHBoxLayout()
        body.setSpacing(ROW_SPACING)
        cards = QtWidgets.QVBoxLayout()
        cards.setSpacing(ROW_SPACING)
        self.traces = TimedLayoutWidget(on_paint=on_paint)
        self.traces.setAntialiasing(False)
        self.traces.setFrameShape(QtWidgets.QFrame.NoFrame)
        layout = self.traces.ci.layout
        self.traces.ci.setContentsMargins(0, 0, 0, 0)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setVerticalSpacing(ROW_SPACING)
        layout.setHorizontalSpacing(0)
        self.cards: list[ChannelCard] = []
        self.plots: list[pg.PlotItem] = []
        self.raw_curves: list[TraceCurve] = []
        self.env_curves: list[TraceCurve] = []
        for i, ch in enumerate(montage.channels):
            card = ChannelCard(i, ch.label, ch.muscle, ch.side,
                               ch.side == montage.affected_side)
            cards.addWidget(card, 1)
            plot = self.traces.addPlot(row=i, col=0)
            style_plot_item(plot)
            plot.setLabel("left", "µV")
            plot.getAxis("left").setWidth(AXIS_WIDTH)
            plot.hideAxis("bottom")
            plot.setContentsMargins(0, 0, 0, 0)
            layout.setRowStretchFactor(i, 1)
            self.raw_curves.append(add_curve(plot, theme.RAW_TRACE))
            self.env_curves.append(add_curve(plot, theme.ENVELOPE))
            self.cards.append(card)
            self.plots.append(plot)
        # One time axis under all rows (linked to the last plot): every row has the same
        # height, so the cards on the left line up with their traces.
        self.time_axis = pg.AxisItem("bottom")
        self.time_axis.linkToView(self.plots[-1].getViewBox())
        self.time_axis.setPen(pg.mkPen(theme.BORDER))
        self.time_axis.setTextPen(pg.mkPen(theme.TEXT_MUTED))
        self.time_axis.setLabel("time (s), newest at right")
        self.time_axis.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
        axis_row = self.traces.ci.addLayout(row=len(self.plots), col=0)
        axis_row.setContentsMargins(0, 0, 0, 0)
        axis_row.layout.setContentsMargins(0, 0, 0, 0)
        axis_row.layout.setSpacing(0)
        axis_row.addItem(_Spacer(AXIS_WIDTH))
        axis_row.addItem(self.time_axis)
        axis_h = int(self.time_axis.height())
        layout.setRowFixedHeight(len(self.plots), axis_h)
        cards.addSpacing(axis_h)
        body.addLayout(cards)
        body.addWidget(self.traces, 1)
        outer.addLayout(body, 1)
        self._scale_changed()
        self._set_xrange()

    def _window_changed(self) -> None:
        self.model.set_setup_window(float(self.window_box.currentData()))
        self._set_xrange()

    def _set_xrange(self) -> None:
        w = self.model.filtered.window_s
        for p in self.plots:
            p.setXRange(-w, 0, padding=0)
        for p in self.plots[:-1]:
            p.setXLink(self.plots[-1])

    def _scale_changed(self) -> None:
        v = float(self.scale_box.currentData())
        for p in self.plots:
            p.setYRange(-v, v, padding=0)

    def refresh(self) -> None:
        """Redraw the traces from the model (called on the display timer)."""
        m = self.model
        x_raw, x_env = m.filtered.x, m.envelope.x
        for i in range(len(self.plots)):
            set_curve(self.raw_curves[i], x_raw, m.filtered.y(i))
            set_curve(self.env_curves[i], x_env, m.envelope.y(i))
        # Badges and hints change slowly: the main window's 4 Hz status timer updates them.

    def refresh_quality(self) -> None:
        """Update the badges and hints from the session's channel states (the one channel
        state: ``no_signal`` before data and as soon as samples stop arriving)."""
        states = self.model.session.channel_states()
        for i, card in enumerate(self.cards):
            card.set_quality(*quality_view(states[i] if i < len(states) else None, i))

    def badge_states(self) -> list[str]:
        """Current badge state per channel (for tests and screenshots)."""
        return [c.state for c in self.cards]

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 - Qt override
        return QtCore.QSize(1280, 800)


class _Spacer(QtWidgets.QGraphicsWidget):
    """Fixed-width empty cell (keeps the time axis under the plots, not the µV axes)."""

    def __init__(self, width: int):
        super().__init__()
        self.setMinimumWidth(width)
        self.setMaximumWidth(width)


def finite_count(y: np.ndarray) -> int:
    """Number of finite points (used by tests to see data flowing)."""
    return int(np.isfinite(y).sum())
