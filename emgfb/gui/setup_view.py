"""The clinician's set-up view: every channel's µV trace, envelope and signal quality.

Owns :class:`SetupView`: one row per channel with a montage card (muscle, side, label,
quality badge with a plain-language hint) and a scrolling trace (filtered µV as min/max
per display bin, its envelope on top), a mains-power warning banner and the window and
scale selectors. Reads a :class:`~emgfb.gui.model.DisplayModel`; computes nothing but
display values. Imports Qt, pyqtgraph and ``emgfb.gui``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from PyQt5 import QtCore, QtWidgets

from emgfb.gui import theme
from emgfb.gui.model import DisplayModel
from emgfb.gui.widgets import ChannelCard, add_curve, make_plot, set_curve

WINDOWS_S = (2, 5, 10)
SCALES_UV = (25, 50, 100, 250, 500, 1000)
MAINS_WARNING = (
    "⚠  This computer is running on mains power. For patient safety, unplug the charger and "
    "run on battery, or connect the board through a certified USB isolator."
)


def quality_view(q: Any, channel: int) -> tuple[str, str, str]:
    """(state, hint, level text) of a channel-quality result, tolerant of missing fields."""
    if q is None:
        return "unknown", "Waiting for signal…", ""
    state = str(getattr(q, "state", "unknown"))
    hint = str(getattr(q, "hint", "") or "")
    if state == "good":
        hint = "Signal looks good."
    elif state == "unknown":
        hint = "Collecting signal…"
    elif hint:
        hint = f"Electrode {channel + 1}: {hint}."
    rms = getattr(q, "rest_rms_uv", None)
    level = f"rest {rms:.1f} µV RMS" if rms is not None and math.isfinite(rms) else ""
    return state, hint, level


class SetupView(QtWidgets.QWidget):
    """Per-channel traces, envelopes and quality badges for electrode set-up."""

    def __init__(self, model: DisplayModel, mains_power: bool | None,
                 on_paint: Callable[[float], None] | None = None,
                 parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.model = model
        s = model.session
        montage = s.montage
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

        grid = QtWidgets.QGridLayout()
        grid.setSpacing(4)
        grid.setColumnStretch(1, 1)
        self.cards: list[ChannelCard] = []
        self.plots = []
        self.raw_curves = []
        self.env_curves = []
        n = s.n_channels
        for i, ch in enumerate(montage.channels):
            card = ChannelCard(i, ch.label, ch.muscle, ch.side,
                               ch.side == montage.affected_side)
            plot = make_plot(on_paint if i == 0 else None)
            item = plot.getPlotItem()
            item.setLabel("left", "µV")
            item.getAxis("left").setWidth(48)
            last = i == n - 1
            item.showAxis("bottom", last)
            if last:
                item.setLabel("bottom", "time (s), newest at right")
            raw = add_curve(plot, theme.RAW_TRACE)
            env = add_curve(plot, theme.ENVELOPE)
            grid.addWidget(card, i, 0)
            grid.addWidget(plot, i, 1)
            grid.setRowStretch(i, 1)
            self.cards.append(card)
            self.plots.append(plot)
            self.raw_curves.append(raw)
            self.env_curves.append(env)
        outer.addLayout(grid, 1)
        self._scale_changed()
        self._set_xrange()
        self._quality_clock = 0

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
        self._quality_clock += 1
        if self._quality_clock % 6 == 1:  # badges change slowly: ~10 Hz is plenty
            self.refresh_quality()

    def refresh_quality(self) -> None:
        """Update the badges and hints from the session's latest quality results."""
        q = self.model.session.quality()
        for i, card in enumerate(self.cards):
            state, hint, level = quality_view(q[i] if i < len(q) else None, i)
            card.set_quality(state, hint, level)

    def badge_states(self) -> list[str]:
        """Current badge state per channel (for tests and screenshots)."""
        return [c.state for c in self.cards]

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 - Qt override
        return QtCore.QSize(1280, 800)


def finite_count(y: np.ndarray) -> int:
    """Number of finite points (used by tests to see data flowing)."""
    return int(np.isfinite(y).sum())
