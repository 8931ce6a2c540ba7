"""Small reusable widgets: plot with paint timing, quality badge card, pair bars, timeline.

Owns :class:`TimedPlotWidget` (a pyqtgraph plot that reports when it has really painted,
for fps and latency), :class:`ChannelCard` (montage + quality badge of one channel in the
set-up view), :class:`PairBars` (affected and healthy activation side by side with target
band and suppression ceiling) and :class:`Timeline` (replay scrubber with markers).
Imports Qt, pyqtgraph and ``emgfb.gui.theme``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import pyqtgraph as pg
from PyQt5 import QtCore, QtGui, QtWidgets

from emgfb.gui import theme

MUSCLE_NAMES = {
    "frontalis": "Frontalis",
    "corrugator": "Corrugator",
    "orbicularis_oculi": "Orbicularis oculi",
    "levator_labii": "Levator labii",
    "zygomaticus_major": "Zygomaticus major",
    "orbicularis_oris": "Orbicularis oris",
    "depressor_anguli_oris": "Depressor anguli oris",
    "platysma": "Platysma",
    "masseter": "Masseter",
    "other": "Channel",
}

#: What the patient is asked to do for each muscle (DOMAIN.md §2, Sunnybrook items).
MUSCLE_ACTIONS = {
    "frontalis": "Brow lift",
    "corrugator": "Frown",
    "orbicularis_oculi": "Gentle eye closure",
    "levator_labii": "Snarl",
    "zygomaticus_major": "Smile",
    "orbicularis_oris": "Lip pucker",
    "depressor_anguli_oris": "Mouth corner down",
    "platysma": "Neck tension",
    "masseter": "Clench",
    "other": "Activity",
}


def muscle_name(muscle: str) -> str:
    """Readable muscle name."""
    return MUSCLE_NAMES.get(muscle, muscle.replace("_", " ").capitalize())


class TimedPlotWidget(pg.PlotWidget):
    """A PlotWidget that calls ``on_paint(t)`` with ``time.time()`` after each real paint."""

    def __init__(self, *args, on_paint: Callable[[float], None] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.on_paint = on_paint

    def paintEvent(self, ev: QtGui.QPaintEvent) -> None:  # noqa: N802 - Qt override
        super().paintEvent(ev)
        if self.on_paint is not None:
            self.on_paint(time.time())


def make_plot(on_paint: Callable[[float], None] | None = None) -> TimedPlotWidget:
    """A plot styled for emgfb: white, light grid, no mouse zoom, no context menu."""
    w = TimedPlotWidget(on_paint=on_paint)
    w.setMenuEnabled(False)
    w.setMouseEnabled(x=False, y=False)
    w.hideButtons()
    w.setAntialiasing(False)
    item = w.getPlotItem()
    item.showGrid(x=True, y=True, alpha=theme.GRID_ALPHA)
    for name in ("left", "bottom"):
        ax = item.getAxis(name)
        ax.setPen(pg.mkPen(theme.BORDER))
        ax.setTextPen(pg.mkPen(theme.TEXT_MUTED))
        # Axes and grid only change with the (fixed) ranges: paint them from a pixmap
        # instead of replaying their drawing on every frame.
        ax.setCacheMode(QtWidgets.QGraphicsItem.DeviceCoordinateCache)
    return w


class FixedBoundsCurve(pg.PlotCurveItem):
    """A curve whose bounding rectangle is its x window, never computed from the data.

    Views here have fixed ranges (no auto-range), so the data bounds pyqtgraph would
    recompute (a NaN-aware min/max over every point, several times per frame) are not
    needed; the ViewBox clips whatever lies outside its range.
    """

    _Y_SPAN = 1e5  # beyond any plotted range, small enough for int device coordinates

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._bounds = QtCore.QRectF()

    def set_x_window(self, x0: float, x1: float) -> None:
        """The x extent the data will occupy."""
        rect = QtCore.QRectF(x0, -self._Y_SPAN, max(x1 - x0, 1e-9), 2 * self._Y_SPAN)
        if rect != self._bounds:
            self.prepareGeometryChange()
            self._bounds = rect

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 - Qt override
        return self._bounds


def add_curve(plot: pg.PlotWidget, color: str, width: int = 1) -> FixedBoundsCurve:
    """A bare curve (no PlotDataItem layer: the data arrive already decimated)."""
    curve = FixedBoundsCurve(pen=theme.pen(color, width), connect="finite")
    plot.getPlotItem().addItem(curve)
    return curve


def set_curve(curve: pg.PlotCurveItem, x: np.ndarray, y: np.ndarray) -> None:
    """New data for ``curve``; NaN (gaps) break the line, and the finite check runs only
    when there are gaps."""
    if isinstance(curve, FixedBoundsCurve) and len(x):
        curve.set_x_window(float(x[0]), float(x[-1]))
    gaps = bool(np.isnan(y).any())
    curve.setData(x, y, connect="finite", skipFiniteCheck=not gaps)


def quality_style(state: str) -> str:
    """Stylesheet of a quality badge in ``state`` (good/warn/bad/unknown)."""
    bg, fg = theme.QUALITY.get(state, theme.QUALITY["unknown"])
    return (f"background:{bg}; color:{fg}; border-radius:9px; padding:2px 10px;"
            " font-weight:bold;")


BADGE_TEXT = {"good": "Good", "warn": "Check", "bad": "Poor", "unknown": "Waiting"}


class ChannelCard(QtWidgets.QFrame):
    """Montage and signal quality of one channel: muscle, side, label, badge, hint."""

    def __init__(self, index: int, label: str, muscle: str, side: str, affected: bool,
                 parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("card")
        self.setFixedWidth(290)
        self.index = index
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(10, 4, 10, 4)
        lay.setSpacing(1)
        title = QtWidgets.QLabel(f"<b>{muscle_name(muscle)}</b>")
        title.setTextFormat(QtCore.Qt.RichText)
        lay.addWidget(title)
        side_txt = f"{side.capitalize()} side" + (", affected" if affected else "")
        where = QtWidgets.QLabel(f"{side_txt} · {label} · ch {index + 1}")
        where.setObjectName("muted")
        lay.addWidget(where)
        row = QtWidgets.QHBoxLayout()
        row.setSpacing(8)
        self.badge = QtWidgets.QLabel()
        self.badge.setObjectName("badge")
        row.addWidget(self.badge)
        self.level = QtWidgets.QLabel("")
        row.addWidget(self.level, 1)
        lay.addLayout(row)
        self.hint = QtWidgets.QLabel("Waiting for signal…")
        self.hint.setObjectName("muted")
        self.hint.setWordWrap(True)
        lay.addWidget(self.hint)
        lay.addStretch(1)
        self._label = label
        self.state = ""
        self.set_quality("unknown", "Waiting for signal…", "")

    def set_quality(self, state: str, hint: str, level: str) -> None:
        """Show ``state`` (good/warn/bad/unknown), a plain-language hint and a level text."""
        if state != self.state:
            self.state = state
            self.badge.setText(BADGE_TEXT.get(state, state))
            self.badge.setStyleSheet(quality_style(state))
        if self.hint.text() != hint:
            self.hint.setText(hint)
        if self.level.text() != level:
            self.level.setText(level)


class PairBars(QtWidgets.QWidget):
    """Affected and healthy activation of one muscle as two bars on a shared 0-100 % scale.

    A target band (amber) sits on the affected bar; an optional suppression ceiling (a line
    across both bars) turns red, with the bar, when the affected side crosses it.
    """

    SCALE_MAX = 1.0

    def __init__(self, affected_label: str, healthy_label: str,
                 parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.labels = (affected_label, healthy_label)
        self.values = (0.0, 0.0)
        self.target: tuple[float, float] | None = None
        self.ceiling: float | None = None
        self.setMinimumSize(240, 150)
        self.setSizePolicy(QtWidgets.QSizePolicy.Fixed, QtWidgets.QSizePolicy.Expanding)

    @property
    def ceiling_crossed(self) -> bool:
        """True when the affected side is above the suppression ceiling."""
        return self.ceiling is not None and self.values[0] > self.ceiling

    def set_state(self, affected: float, healthy: float,
                  target: tuple[float, float] | None, ceiling: float | None) -> None:
        """New values (activation, 1 = reference) and guides; repaints if anything changed."""
        vals = tuple(0.0 if math.isnan(v) else float(v) for v in (affected, healthy))
        state = (tuple(round(v, 3) for v in vals), target, ceiling)
        if state == (tuple(round(v, 3) for v in self.values), self.target, self.ceiling):
            return
        self.values, self.target, self.ceiling = vals, target, ceiling
        self.update()

    def paintEvent(self, ev: QtGui.QPaintEvent) -> None:  # noqa: N802 - Qt override
        p = QtGui.QPainter(self)
        w, h = self.width(), self.height()
        top, bottom = 30, h - 30
        span = max(1, bottom - top)

        def y_of(v: float) -> float:
            return bottom - min(max(v, 0.0), self.SCALE_MAX) / self.SCALE_MAX * span

        bar_w = min(80, (w - 40) // 2 - 10)
        xs = (20, 20 + bar_w + 30)
        font = p.font()
        font.setPointSize(13)
        p.setFont(font)
        # scale ticks
        p.setPen(QtGui.QPen(QtGui.QColor(theme.BORDER)))
        for frac in (0.25, 0.5, 0.75, 1.0):
            y = int(y_of(frac))
            p.drawLine(10, y, xs[1] + bar_w + 10, y)
        crossed = self.ceiling_crossed
        colours = (theme.CEILING_CROSSED if crossed else theme.AFFECTED, theme.HEALTHY)
        for i, (x, v) in enumerate(zip(xs, self.values, strict=True)):
            p.fillRect(QtCore.QRectF(x, top, bar_w, span), QtGui.QColor("#EEF1F4"))
            y = y_of(v)
            p.fillRect(QtCore.QRectF(x, y, bar_w, bottom - y), QtGui.QColor(colours[i]))
            p.setPen(QtGui.QColor(theme.TEXT))
            pct = "100+%" if v > self.SCALE_MAX else f"{v * 100:.0f} %"
            p.drawText(QtCore.QRectF(x - 15, 0, bar_w + 30, top - 4),
                       QtCore.Qt.AlignHCenter | QtCore.Qt.AlignBottom, pct)
            p.setPen(QtGui.QColor(theme.TEXT_MUTED))
            p.drawText(QtCore.QRectF(x - 15, bottom + 2, bar_w + 30, 26),
                       QtCore.Qt.AlignHCenter | QtCore.Qt.AlignTop, self.labels[i])
        if self.target is not None:
            lo, hi = self.target
            rect = QtCore.QRectF(xs[0] - 6, y_of(hi), bar_w + 12, y_of(lo) - y_of(hi))
            p.fillRect(rect, QtGui.QColor(*theme.TARGET_FILL))
            p.setPen(QtGui.QPen(QtGui.QColor(theme.TARGET_LINE), 2))
            p.drawRect(rect)
        if self.ceiling is not None:
            c = theme.CEILING_CROSSED if crossed else theme.CEILING_OK
            pen_ = QtGui.QPen(QtGui.QColor(c), 3, QtCore.Qt.DashLine)
            p.setPen(pen_)
            y = int(y_of(self.ceiling))
            p.drawLine(xs[0] - 8, y, xs[0] + bar_w + 8, y)
        p.end()


class Timeline(QtWidgets.QWidget):
    """Replay scrubber: a track with the current position and marker ticks.

    Emits :attr:`seek_requested` (seconds) on click or drag.
    """

    seek_requested = QtCore.pyqtSignal(float)

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.duration = 0.0
        self.position = 0.0
        self.markers: list[tuple[float, str]] = []
        self.setMinimumHeight(44)
        self.setMouseTracking(False)
        self.setCursor(QtCore.Qt.PointingHandCursor)

    def set_markers(self, markers: Sequence[tuple[float, str]]) -> None:
        """Markers as ``(seconds, label)``."""
        self.markers = list(markers)
        self.update()

    def set_position(self, seconds: float) -> None:
        """Move the cursor."""
        if abs(seconds - self.position) > 1e-3:
            self.position = seconds
            self.update()

    def _track(self) -> QtCore.QRectF:
        return QtCore.QRectF(10, 18, max(1, self.width() - 20), 10)

    def _x_of(self, t: float) -> float:
        tr = self._track()
        frac = 0.0 if self.duration <= 0 else min(max(t / self.duration, 0.0), 1.0)
        return tr.left() + frac * tr.width()

    def seconds_at(self, x: float) -> float:
        """Recording time under pixel ``x``."""
        tr = self._track()
        frac = min(max((x - tr.left()) / tr.width(), 0.0), 1.0)
        return frac * self.duration

    def mousePressEvent(self, ev: QtGui.QMouseEvent) -> None:  # noqa: N802
        self.seek_requested.emit(self.seconds_at(ev.pos().x()))

    def mouseMoveEvent(self, ev: QtGui.QMouseEvent) -> None:  # noqa: N802
        if ev.buttons() & QtCore.Qt.LeftButton:
            self.set_position(self.seconds_at(ev.pos().x()))

    def mouseReleaseEvent(self, ev: QtGui.QMouseEvent) -> None:  # noqa: N802
        self.seek_requested.emit(self.seconds_at(ev.pos().x()))

    def paintEvent(self, ev: QtGui.QPaintEvent) -> None:  # noqa: N802
        p = QtGui.QPainter(self)
        tr = self._track()
        p.setPen(QtCore.Qt.NoPen)
        p.setBrush(QtGui.QColor("#DDE3E9"))
        p.drawRoundedRect(tr, 5, 5)
        x = self._x_of(self.position)
        p.setBrush(QtGui.QColor(theme.AFFECTED))
        p.drawRoundedRect(QtCore.QRectF(tr.left(), tr.top(), x - tr.left(), tr.height()), 5, 5)
        p.setPen(QtGui.QPen(QtGui.QColor(theme.TARGET_LINE), 2))
        for t, _label in self.markers:
            mx = int(self._x_of(t))
            p.drawLine(mx, int(tr.top()) - 8, mx, int(tr.bottom()) + 8)
        p.setPen(QtGui.QPen(QtGui.QColor(theme.TEXT), 1))
        p.setBrush(QtGui.QColor("#FFFFFF"))
        p.drawEllipse(QtCore.QPointF(x, tr.center().y()), 8, 8)
        p.end()
