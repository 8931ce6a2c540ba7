"""Small reusable widgets: plot with paint timing, quality badge card, pair bars, timeline.

Owns :class:`TimedPlotWidget` and :class:`TimedLayoutWidget` (pyqtgraph views that report
when they have really painted, for fps and latency), the fast curve item
:class:`TraceCurve`, :class:`ElidedText` (wrapped text that
fits its box), :class:`ChannelCard` (montage + quality badge of one channel in the set-up
view), :class:`PairBars` (affected and healthy activation side by side with target
band and suppression ceiling) and :class:`Timeline` (replay scrubber with markers).
Imports Qt, pyqtgraph and ``emgfb.gui.theme``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

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


if TYPE_CHECKING:
    _View = QtWidgets.QGraphicsView  # what the mixin goes before (pyqtgraph's views)
else:
    _View = object


class _PaintStamps(_View):
    """Mixin for a pyqtgraph view: calls ``on_paint(t)`` with ``time.time()`` after each
    real paint (display fps and latency stamps)."""

    def __init__(self, *args, on_paint: Callable[[float], None] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.on_paint = on_paint

    def paintEvent(self, ev: QtGui.QPaintEvent | None) -> None:  # noqa: N802 - Qt override
        super().paintEvent(ev)
        if self.on_paint is not None:
            self.on_paint(time.time())


class TimedPlotWidget(_PaintStamps, pg.PlotWidget):
    """A PlotWidget that calls ``on_paint(t)`` with ``time.time()`` after each real paint."""


class TimedLayoutWidget(_PaintStamps, pg.GraphicsLayoutWidget):
    """A GraphicsLayoutWidget (several plots in one view) that calls ``on_paint(t)`` with
    ``time.time()`` after each real paint."""


def style_plot_item(item: pg.PlotItem) -> None:
    """Give a plot the emgfb look: light grid, no mouse zoom, no context menu, cached axes."""
    item.setMenuEnabled(False)
    item.setMouseEnabled(x=False, y=False)
    item.hideButtons()
    item.showGrid(x=True, y=True, alpha=theme.GRID_ALPHA)
    for name in ("left", "bottom"):
        ax = item.getAxis(name)
        ax.setPen(pg.mkPen(theme.BORDER))
        ax.setTextPen(pg.mkPen(theme.TEXT_MUTED))
        # Axes and grid only change with the (fixed) ranges: paint them from a pixmap
        # instead of replaying their drawing on every frame.
        ax.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)


def make_plot(on_paint: Callable[[float], None] | None = None) -> TimedPlotWidget:
    """A plot styled for emgfb: white, light grid, no mouse zoom, no context menu."""
    w = TimedPlotWidget(on_paint=on_paint)
    w.setAntialiasing(False)
    style_plot_item(w.getPlotItem())
    return w


class TraceCurve(pg.GraphicsObject):
    """An already-decimated trace drawn as plain polylines with a 1-px cosmetic pen.

    Cheaper than :class:`pyqtgraph.PlotCurveItem` for data that change every frame: the
    points are written in place into one reused ``QPolygonF`` (no ``QPainterPath`` is
    built) and the bounding rectangle is the x window, never computed from the data (the
    views have fixed ranges; the ViewBox clips). NaN (gaps) split the line.

    A wider line (``width`` 2 or 3) is drawn as the 1-px polyline repeated at whole-pixel
    offsets (a small square or cross "brush"): Qt strokes wide polylines with joins and
    wide segments one by one, both several times slower than a few thin polylines.
    """

    _OFFSETS = {
        1: ((0, 0),),
        2: ((0, 0), (1, 0), (0, 1), (1, 1)),
        3: ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)),
    }

    _Y_SPAN = 1e5  # beyond any plotted range, small enough for int device coordinates

    def __init__(self, pen: QtGui.QPen, width: int = 1):
        super().__init__()
        if width not in self._OFFSETS:
            raise ValueError(f"width must be one of {sorted(self._OFFSETS)}, got {width!r}")
        self._offsets = self._OFFSETS[width]
        self._pen = QtGui.QPen(pen)
        self._pen.setWidth(1)
        self._pen.setCosmetic(True)
        self._bounds = QtCore.QRectF()
        self._x: np.ndarray | None = None
        self._y: np.ndarray | None = None
        self._poly = QtGui.QPolygonF()
        self._xy = np.empty((0, 2))
        #: what paint draws: the whole polygon (no gaps) or one polygon per finite run
        self._parts: list[QtGui.QPolygonF] = []

    def set_x_window(self, x0: float, x1: float) -> None:
        """The x extent the data will occupy."""
        rect = QtCore.QRectF(x0, -self._Y_SPAN, max(x1 - x0, 1e-9), 2 * self._Y_SPAN)
        if rect != self._bounds:
            self.prepareGeometryChange()
            self._bounds = rect

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 - Qt override
        return self._bounds

    def setPen(self, pen: QtGui.QPen) -> None:  # noqa: N802 - pyqtgraph naming
        """Line colour and width."""
        self._pen = QtGui.QPen(pen)
        self._pen.setWidth(1)
        self._pen.setCosmetic(True)
        self.update()

    def getData(self) -> tuple[np.ndarray | None, np.ndarray | None]:  # noqa: N802
        """The last ``(x, y)`` given to :meth:`setData`."""
        return self._x, self._y

    def setData(self, x: np.ndarray, y: np.ndarray) -> None:  # noqa: N802 - pyqtgraph naming
        """New points (same length); NaN in ``y`` breaks the line."""
        n = len(x)
        if len(self._xy) != n:
            self._poly = pg.functions.create_qpolygonf(n)
            self._xy = pg.functions.ndarray_from_qpolygonf(self._poly)
        self._xy[:, 0] = x
        self._xy[:, 1] = y
        self._x, self._y = x, y
        finite = np.isfinite(y)
        if finite.all():
            self._parts = [self._poly] if n > 1 else []
        else:
            edges = np.diff(finite.astype(np.int8), prepend=0, append=0)
            starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
            self._parts = []
            for a, b in zip(starts, ends, strict=True):
                if b - a > 1:
                    part = pg.functions.create_qpolygonf(int(b - a))
                    pg.functions.ndarray_from_qpolygonf(part)[:] = self._xy[a:b]
                    self._parts.append(part)
        self.update()

    def paint(self, p: QtGui.QPainter, *args) -> None:
        if not self._parts:
            return
        p.setRenderHint(QtGui.QPainter.Antialiasing, False)
        p.setPen(self._pen)
        if len(self._offsets) == 1:
            for part in self._parts:
                p.drawPolyline(part)
            return
        base = p.transform()
        for dx, dy in self._offsets:
            # whole device pixels: the offset is applied after the view transform
            p.setTransform(base * QtGui.QTransform.fromTranslate(dx, dy))
            for part in self._parts:
                p.drawPolyline(part)
        p.setTransform(base)


def add_curve(plot: pg.PlotWidget | pg.PlotItem, color: str, width: int = 1) -> TraceCurve:
    """A bare :class:`TraceCurve` (no PlotDataItem layer: the data arrive decimated)."""
    curve = TraceCurve(theme.pen(color), width)
    item = plot.getPlotItem() if isinstance(plot, pg.PlotWidget) else plot
    item.addItem(curve)
    return curve


def set_curve(curve: TraceCurve | pg.PlotDataItem, x: np.ndarray, y: np.ndarray) -> None:
    """New data for ``curve``; NaN (gaps) break the line."""
    if isinstance(curve, TraceCurve):
        if len(x):
            curve.set_x_window(float(x[0]), float(x[-1]))
        curve.setData(x, y)
        return
    # Without gaps, connect="all" takes pyqtgraph's fast path (one polygon); "finite"
    # would split the data at every NaN even when there are none.
    gaps = bool(np.isnan(y).any())
    curve.setData(x, y, connect="finite" if gaps else "all", skipFiniteCheck=not gaps)


def quality_style(state: str) -> str:
    """Stylesheet of a quality badge in ``state`` (good/check/bad/unknown/no_signal)."""
    bg, fg = theme.QUALITY.get(state, theme.QUALITY["unknown"])
    return (f"background:{bg}; color:{fg}; border-radius:9px; padding:2px 10px;"
            " font-weight:bold;")


BADGE_TEXT = {"good": "Good", "check": "Check", "bad": "Poor", "unknown": "Waiting",
              "no_signal": "No signal"}


class ElidedText(QtWidgets.QWidget):
    """Word-wrapped text that fills the space it is given and never more.

    Unlike a word-wrapping QLabel it does not ask its layout for the height of the whole
    text (so a long text can neither be clipped mid-line nor re-lay-out the window when it
    changes): it shows as many whole lines as fit, ends the last one with "…" when the
    text is longer, and then offers the full text as a tooltip.
    """

    def __init__(self, text: str = "", color: str = theme.TEXT_MUTED,
                 parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self._text = ""
        self._lines: list[str] = []
        self._elided = False
        self._color = QtGui.QColor(color)
        self.setSizePolicy(QtWidgets.QSizePolicy.Ignored, QtWidgets.QSizePolicy.Expanding)
        self.setMinimumHeight(self.fontMetrics().lineSpacing())
        self.setText(text)

    @property
    def elided(self) -> bool:
        """True when the text does not fit and ends in "…"."""
        return self._elided

    def text(self) -> str:
        """The full text."""
        return self._text

    def setText(self, text: str) -> None:  # noqa: N802 - QLabel naming
        """Show ``text`` (repaints only if it changed; never changes the layout)."""
        if text == self._text:
            return
        self._text = text
        self._wrap()
        self.update()

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 - Qt override
        return QtCore.QSize(100, 2 * self.fontMetrics().lineSpacing())

    def resizeEvent(self, ev: QtGui.QResizeEvent | None) -> None:  # noqa: N802 - Qt override
        self._wrap()
        super().resizeEvent(ev)

    def _wrap(self) -> None:
        fm = self.fontMetrics()
        width = max(1, self.width())
        # n lines need (n - 1) line spacings plus one line's height
        max_lines = max(1, (self.height() - fm.height()) // fm.lineSpacing() + 1)
        layout = QtGui.QTextLayout(self._text, self.font())
        layout.beginLayout()
        spans = []
        while True:
            line = layout.createLine()
            if not line.isValid():
                break
            line.setLineWidth(width)
            spans.append((line.textStart(), line.textLength()))
        layout.endLayout()
        lines = [self._text[a:a + n].rstrip() for a, n in spans[:max_lines]]
        self._elided = len(spans) > max_lines
        if self._elided:
            rest = self._text[spans[max_lines - 1][0]:]
            elide = QtCore.Qt.TextElideMode.ElideRight
            lines[-1] = fm.elidedText(rest.replace("\n", " "), elide, width)
            if not lines[-1].endswith("…"):
                lines[-1] = fm.elidedText(lines[-1] + " …", elide, width)
            self.setToolTip(self._text)
        else:
            self.setToolTip("")
        self._lines = lines

    def paintEvent(self, ev: QtGui.QPaintEvent | None) -> None:  # noqa: N802 - Qt override
        p = QtGui.QPainter(self)
        p.setPen(self._color)
        fm = self.fontMetrics()
        for k, line in enumerate(self._lines):
            p.drawText(0, k * fm.lineSpacing() + fm.ascent(), line)
        p.end()


class ChannelCard(QtWidgets.QFrame):
    """Montage and signal quality of one channel: muscle, side, label, badge, hint.

    The hint fills whatever height the card gets (rows are short with 8 channels): what
    does not fit ends in "…", with the full hint as a tooltip. Quality changes repaint the
    card's labels but never re-lay-out the window (fixed-size badge and level).
    """

    def __init__(self, index: int, label: str, muscle: str, side: str, affected: bool,
                 parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("card")
        self.setFixedWidth(310)
        self.index = index
        lay = QtWidgets.QVBoxLayout(self)
        # a tight bottom margin: with six channels in 900 px it makes room for a third
        # hint line (descenders need no margin below them)
        lay.setContentsMargins(10, 3, 10, 1)
        lay.setSpacing(1)
        # two lines of facts (title + badge, where + level) so six cards fit a 768 px screen
        top = QtWidgets.QHBoxLayout()
        top.setSpacing(8)
        title = QtWidgets.QLabel(f"<b>{muscle_name(muscle)}</b>"
                                 f"<span style='color:{theme.TEXT_MUTED}; font-size:small'>"
                                 f"&nbsp;ch&nbsp;{index + 1}</span>")
        title.setTextFormat(QtCore.Qt.TextFormat.RichText)
        top.addWidget(title, 1)
        self.badge = QtWidgets.QLabel()
        self.badge.setObjectName("badge")
        self.badge.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        top.addWidget(self.badge)
        lay.addLayout(top)
        row = QtWidgets.QHBoxLayout()
        row.setSpacing(8)
        side_txt = side.capitalize() + (", affected" if affected else "")
        where = QtWidgets.QLabel(f"{side_txt} · {label}")
        where.setObjectName("muted")
        row.addWidget(where)
        self.level = QtWidgets.QLabel("")
        right = QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter
        # PyQt5's stubs type flag | flag as int; it is a Qt.Alignment at run time
        self.level.setAlignment(right)  # type: ignore[arg-type]
        row.addWidget(self.level, 1)
        lay.addLayout(row)
        self.hint = ElidedText("Waiting for signal…")
        lay.addWidget(self.hint, 1)
        self._label = label
        self.state = ""
        self.set_quality("unknown", "Waiting for signal…", "")
        # Fixed sizes: a new text then only repaints the label (a size change would
        # re-lay-out the whole set-up view, plots included).
        fm = self.fontMetrics()
        bold = QtGui.QFont(self.font())
        bold.setBold(True)
        badge_w = max(QtGui.QFontMetrics(bold).horizontalAdvance(t)
                      for t in BADGE_TEXT.values()) + 24
        self.badge.setFixedSize(badge_w, fm.height() + 6)
        self.level.setFixedHeight(fm.height() + 6)
        self.level.setMinimumWidth(10)
        self.level.setSizePolicy(QtWidgets.QSizePolicy.Ignored, QtWidgets.QSizePolicy.Fixed)

    def set_quality(self, state: str, hint: str, level: str) -> None:
        """Show ``state`` (good/check/bad/no_signal/unknown), a plain-language hint and a
        level text."""
        if state != self.state:
            self.state = state
            self.badge.setText(BADGE_TEXT.get(state, state))
            self.badge.setStyleSheet(quality_style(state))
        self.hint.setText(hint)
        if self.level.text() != level:
            self.level.setText(level)


class PairBars(QtWidgets.QWidget):
    """Affected and healthy activation of one muscle as two bars on a shared 0-100 % scale.

    A target band (amber) sits on the affected bar; an optional suppression ceiling (a line
    across both bars) turns red, with the bar, when the affected side crosses it. Colour
    never carries that alone (8 % of men are red-green colour blind): a crossed ceiling is
    also a solid, thicker line, the bar gets a hatch and its value a warning sign.
    :meth:`set_blocked` replaces bars and percentages by a message (a channel that cannot
    be trusted shows no level at all).
    """

    SCALE_MAX = 1.0

    def __init__(self, affected_label: str, healthy_label: str,
                 parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.labels = (affected_label, healthy_label)
        self.values = (0.0, 0.0)
        self.target: tuple[float, float] | None = None
        self.ceiling: float | None = None
        self.blocked = ""
        self.setMinimumSize(240, 110)
        self.setSizePolicy(QtWidgets.QSizePolicy.Fixed, QtWidgets.QSizePolicy.Expanding)

    @property
    def ceiling_crossed(self) -> bool:
        """True when the affected side is above the suppression ceiling."""
        return self.ceiling is not None and self.values[0] > self.ceiling

    def set_state(self, affected: float, healthy: float,
                  target: tuple[float, float] | None, ceiling: float | None) -> None:
        """New values (activation, 1 = reference) and guides; repaints if anything changed."""
        vals = (0.0 if math.isnan(affected) else float(affected),
                0.0 if math.isnan(healthy) else float(healthy))
        state = (tuple(round(v, 3) for v in vals), target, ceiling)
        if state == (tuple(round(v, 3) for v in self.values), self.target, self.ceiling):
            return
        self.values, self.target, self.ceiling = vals, target, ceiling
        self.update()

    def set_blocked(self, message: str) -> None:
        """Show ``message`` instead of bars and values ("" shows the bars again)."""
        if message != self.blocked:
            self.blocked = message
            self.update()

    def paintEvent(self, ev: QtGui.QPaintEvent | None) -> None:  # noqa: N802 - Qt override
        p = QtGui.QPainter(self)
        w, h = self.width(), self.height()
        if self.blocked:
            rect = QtCore.QRectF(6, 6, w - 12, h - 12)
            p.fillRect(rect, QtGui.QColor("#EEF1F4"))
            p.setPen(QtGui.QPen(QtGui.QColor(theme.TEXT_MUTED), 2, QtCore.Qt.PenStyle.DashLine))
            p.drawRect(rect)
            font = p.font()
            font.setPointSize(14)
            font.setBold(True)
            p.setFont(font)
            p.setPen(QtGui.QColor(theme.TEXT))
            p.drawText(rect.adjusted(8, 8, -8, -8),
                       QtCore.Qt.AlignmentFlag.AlignCenter | QtCore.Qt.TextFlag.TextWordWrap,
                       self.blocked)
            p.end()
            return
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
            y_tick = int(y_of(frac))
            p.drawLine(10, y_tick, xs[1] + bar_w + 10, y_tick)
        crossed = self.ceiling_crossed
        colours = (theme.CEILING_CROSSED if crossed else theme.AFFECTED, theme.HEALTHY)
        for i, (x, v) in enumerate(zip(xs, self.values, strict=True)):
            p.fillRect(QtCore.QRectF(x, top, bar_w, span), QtGui.QColor("#EEF1F4"))
            y = y_of(v)
            p.fillRect(QtCore.QRectF(x, y, bar_w, bottom - y), QtGui.QColor(colours[i]))
            if i == 0 and crossed:  # not colour alone: a hatch on the bar
                p.fillRect(QtCore.QRectF(x, y, bar_w, bottom - y),
                           QtGui.QBrush(QtGui.QColor("#FFFFFF"), QtCore.Qt.BrushStyle.BDiagPattern))
            p.setPen(QtGui.QColor(theme.TEXT))
            pct = "100+%" if v > self.SCALE_MAX else f"{v * 100:.0f} %"
            if i == 0 and crossed:
                pct = "⚠ " + pct
            p.drawText(QtCore.QRectF(x - 15, 0, bar_w + 30, top - 4),
                       QtCore.Qt.AlignmentFlag.AlignHCenter | QtCore.Qt.AlignmentFlag.AlignBottom,
                       pct)
            p.setPen(QtGui.QColor(theme.TEXT_MUTED))
            small = p.font()
            small.setPointSize(11)  # "Affected (L)" fits under its bar
            p.setFont(small)
            p.drawText(QtCore.QRectF(x - 14, bottom + 2, bar_w + 28, 26),
                       QtCore.Qt.AlignmentFlag.AlignHCenter | QtCore.Qt.AlignmentFlag.AlignTop,
                       self.labels[i])
            p.setFont(font)
        if self.target is not None:
            lo, hi = self.target
            rect = QtCore.QRectF(xs[0] - 6, y_of(hi), bar_w + 12, y_of(lo) - y_of(hi))
            p.fillRect(rect, QtGui.QColor(*theme.TARGET_FILL))
            p.setPen(QtGui.QPen(QtGui.QColor(theme.TARGET_LINE), 2))
            p.drawRect(rect)
        if self.ceiling is not None:
            c = theme.CEILING_CROSSED if crossed else theme.CEILING_OK
            pen_ = (QtGui.QPen(QtGui.QColor(c), 5, QtCore.Qt.PenStyle.SolidLine) if crossed
                    else QtGui.QPen(QtGui.QColor(c), 3, QtCore.Qt.PenStyle.DashLine))
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
        self.setCursor(QtCore.Qt.CursorShape.PointingHandCursor)

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

    def mousePressEvent(self, ev: QtGui.QMouseEvent | None) -> None:  # noqa: N802
        if ev is not None:
            self.seek_requested.emit(self.seconds_at(ev.pos().x()))

    def mouseMoveEvent(self, ev: QtGui.QMouseEvent | None) -> None:  # noqa: N802
        if ev is not None and ev.buttons() & QtCore.Qt.MouseButton.LeftButton:
            self.set_position(self.seconds_at(ev.pos().x()))

    def mouseReleaseEvent(self, ev: QtGui.QMouseEvent | None) -> None:  # noqa: N802
        if ev is not None:
            self.seek_requested.emit(self.seconds_at(ev.pos().x()))

    def paintEvent(self, ev: QtGui.QPaintEvent | None) -> None:  # noqa: N802
        p = QtGui.QPainter(self)
        tr = self._track()
        p.setPen(QtCore.Qt.PenStyle.NoPen)
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
