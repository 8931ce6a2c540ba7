"""Replay: transport bar (play/pause, speed, timeline with markers) and the replay page.

Owns :class:`ReplayBar`, shown under every view while a recording replays, and
:class:`ReplayView`, the page with the recording's description, its marker list (double
click to jump) and an envelope overview of all channels. The replayed data reach the
set-up and feedback views exactly like live data (a ``file://`` source in a
:class:`~emgfb.live.LiveSession`). Imports Qt, pyqtgraph and ``emgfb.gui``.
"""

from __future__ import annotations

from collections.abc import Callable

from PyQt5 import QtCore, QtWidgets

from emgfb.gui import theme
from emgfb.gui.model import DisplayModel
from emgfb.gui.widgets import Timeline, make_plot, muscle_name, set_curve

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def fmt_time(seconds: float) -> str:
    """``m:ss.s`` for the transport bar."""
    seconds = max(0.0, seconds)
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


class ReplayBar(QtWidgets.QFrame):
    """Play/pause, speed and a timeline scrubber with marker ticks."""

    play_toggled = QtCore.pyqtSignal(bool)
    speed_changed = QtCore.pyqtSignal(float)

    def __init__(self, duration_s: float, speed: float = 1.0,
                 parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("card")
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(10, 4, 10, 4)
        self.play_button = QtWidgets.QPushButton("Pause")
        self.play_button.setCheckable(True)
        self.play_button.setChecked(True)
        self.play_button.setMinimumWidth(80)
        self.play_button.toggled.connect(self._toggled)
        lay.addWidget(self.play_button)
        lay.addWidget(QtWidgets.QLabel("Speed"))
        self.speed_box = QtWidgets.QComboBox()
        for s in SPEEDS:
            self.speed_box.addItem(f"{s:g}×", s)
        if speed not in SPEEDS:
            self.speed_box.addItem(f"{speed:g}×", speed)
        self.speed_box.setCurrentIndex(self.speed_box.findData(speed))
        self.speed_box.currentIndexChanged.connect(
            lambda _i: self.speed_changed.emit(float(self.speed_box.currentData())))
        lay.addWidget(self.speed_box)
        self.timeline = Timeline()
        self.timeline.duration = duration_s
        lay.addWidget(self.timeline, 1)
        self.clock = QtWidgets.QLabel()
        self.clock.setMinimumWidth(120)
        lay.addWidget(self.clock)
        self.set_position(0.0)

    def _toggled(self, playing: bool) -> None:
        self.play_button.setText("Pause" if playing else "Play")
        self.play_toggled.emit(playing)

    def set_position(self, seconds: float) -> None:
        """Move the cursor and the clock."""
        self.timeline.set_position(seconds)
        text = f"{fmt_time(seconds)} / {fmt_time(self.timeline.duration)}"
        if self.clock.text() != text:
            self.clock.setText(text)


class ReplayView(QtWidgets.QWidget):
    """Page describing the replayed recording: facts, markers, envelope overview."""

    def __init__(self, model: DisplayModel, description: str,
                 seek: Callable[[float], None],
                 on_paint: Callable[[float], None] | None = None,
                 parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self._seek = seek
        s = model.session
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(12, 10, 12, 10)
        side = QtWidgets.QVBoxLayout()
        info = QtWidgets.QLabel(description)
        info.setTextFormat(QtCore.Qt.TextFormat.RichText)
        info.setWordWrap(True)
        side.addWidget(info)
        side.addWidget(QtWidgets.QLabel("<b>Markers</b> (double-click to jump)"))
        self.marker_list = QtWidgets.QListWidget()
        self.marker_list.itemDoubleClicked.connect(self._jump)
        side.addWidget(self.marker_list, 1)
        box = QtWidgets.QWidget()
        box.setLayout(side)
        box.setFixedWidth(320)
        lay.addWidget(box)

        self.plot = make_plot(on_paint)
        item = self.plot.getPlotItem()
        item.setLabel("left", "envelope (µV)")
        item.setLabel("bottom", "time (s), newest at right")
        item.addLegend(offset=(10, 5), labelTextColor=theme.TEXT, brush=(255, 255, 255, 200))
        palette = ("#2F6DB5", "#8A8F98", "#0B6E79", "#B5762F", "#6B4FA0", "#4F8A3A",
                   "#A0435F", "#3F5F7F")
        if s.montage is None:
            raise ValueError("ReplayView: the session must be started")
        self.curves = []
        for i, ch in enumerate(s.montage.channels):
            name = f"{ch.label} {muscle_name(ch.muscle).lower()} ({ch.side})"
            c = item.plot(pen=theme.pen(palette[i % len(palette)]), name=name,
                          connect="finite")
            self.curves.append(c)
        self._window_s = model.envelope.window_s
        self.plot.setXRange(-self._window_s, 0, padding=0)
        self.plot.enableAutoRange(axis="y")
        lay.addWidget(self.plot, 1)

    def set_markers(self, markers: list[tuple[float, str]]) -> None:
        """Fill the marker list with ``(seconds, label)``."""
        self.marker_list.clear()
        for t, label in markers:
            it = QtWidgets.QListWidgetItem(f"{t:7.1f} s   {label}")
            it.setData(QtCore.Qt.ItemDataRole.UserRole, t)
            self.marker_list.addItem(it)

    def _jump(self, item: QtWidgets.QListWidgetItem) -> None:
        self._seek(float(item.data(QtCore.Qt.ItemDataRole.UserRole)))

    def refresh(self) -> None:
        """Redraw the envelope overview (display timer)."""
        env = self.model.envelope
        if env.window_s != self._window_s:
            self._window_s = env.window_s
            self.plot.setXRange(-env.window_s, 0, padding=0)
        for i, c in enumerate(self.curves):
            set_curve(c, env.x, env.y(i))
