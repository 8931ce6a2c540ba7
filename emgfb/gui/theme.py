"""Colours, fonts and pens of the emgfb GUI: one calm, light, clinical palette.

Owns every colour and font size so the views agree. Imports Qt and pyqtgraph only.
"""

from __future__ import annotations

import pyqtgraph as pg
from PyQt5 import QtGui, QtWidgets

#: Window and panel colours.
BACKGROUND = "#F4F6F8"
PANEL = "#FFFFFF"
BORDER = "#D5DCE3"
TEXT = "#1F2D3D"
TEXT_MUTED = "#5F6F80"
GRID_ALPHA = 0.12

#: Signal colours (set-up view).
RAW_TRACE = "#7D93AB"
ENVELOPE = "#08525A"

#: Sides in the feedback view: affected and healthy, distinguishable for colour-blind users.
AFFECTED = "#2F6DB5"
HEALTHY = "#8A8F98"
TARGET_FILL = (233, 168, 60, 70)
TARGET_LINE = "#C98A1B"
CEILING_OK = "#7A8794"
CEILING_CROSSED = "#C0392B"

#: Quality badge colours (background, text) per state.
QUALITY = {
    "good": ("#DFF2E4", "#1E6B34"),
    "check": ("#FCEFD2", "#8A5A00"),
    "bad": ("#F9DADA", "#9B1C1C"),
    "unknown": ("#E6EAEE", "#5F6F80"),
    "no_signal": ("#F9DADA", "#9B1C1C"),
}

#: Banner (mains-power warning) colours.
WARNING_BG = "#FFF4D6"
WARNING_TEXT = "#7A4F00"
RECORDING = "#C0392B"

BASE_POINT_SIZE = 10
PATIENT_POINT_SIZE = 20


def configure_pyqtgraph() -> None:
    """Global pyqtgraph options: no antialiasing (speed), light background."""
    pg.setConfigOptions(antialias=False, background=PANEL, foreground=TEXT_MUTED)


def apply_style(app: QtWidgets.QApplication) -> None:
    """Give the application the emgfb look: Fusion style, light palette, readable font."""
    app.setStyle("Fusion")
    pal = QtGui.QPalette()
    pal.setColor(QtGui.QPalette.Window, QtGui.QColor(BACKGROUND))
    pal.setColor(QtGui.QPalette.Base, QtGui.QColor(PANEL))
    pal.setColor(QtGui.QPalette.AlternateBase, QtGui.QColor(BACKGROUND))
    pal.setColor(QtGui.QPalette.Text, QtGui.QColor(TEXT))
    pal.setColor(QtGui.QPalette.WindowText, QtGui.QColor(TEXT))
    pal.setColor(QtGui.QPalette.ButtonText, QtGui.QColor(TEXT))
    pal.setColor(QtGui.QPalette.Button, QtGui.QColor("#E9EDF1"))
    pal.setColor(QtGui.QPalette.Highlight, QtGui.QColor(AFFECTED))
    pal.setColor(QtGui.QPalette.HighlightedText, QtGui.QColor("#FFFFFF"))
    app.setPalette(pal)
    font = app.font()
    font.setPointSize(BASE_POINT_SIZE)
    app.setFont(font)
    app.setStyleSheet(STYLESHEET)


STYLESHEET = f"""
QTabBar::tab {{
    padding: 6px 22px; min-width: 120px; margin-right: 2px; border: 1px solid {BORDER};
    border-bottom: none; border-top-left-radius: 4px; border-top-right-radius: 4px;
    background: #E9EDF1; color: {TEXT_MUTED};
}}
QTabBar::tab:selected {{ background: {PANEL}; color: {TEXT}; border-bottom: 3px solid {AFFECTED}; }}
QTabWidget::pane {{ border: 1px solid {BORDER}; background: {PANEL}; }}
QStatusBar {{ background: #E9EDF1; color: {TEXT}; border-top: 1px solid {BORDER}; }}
QStatusBar QLabel {{ padding: 0 8px; }}
QFrame#card {{ background: {PANEL}; border: 1px solid {BORDER}; border-radius: 6px; }}
QLabel#banner {{
    background: {WARNING_BG}; color: {WARNING_TEXT}; border: 1px solid #E8C872;
    border-radius: 4px; padding: 6px 10px;
}}
QLabel#muted {{ color: {TEXT_MUTED}; }}
"""


def pen(color: str, width: int = 1) -> QtGui.QPen:
    """A cosmetic pyqtgraph pen (1 px unless told: wider pens double the drawing cost)."""
    return pg.mkPen(color=color, width=width)
