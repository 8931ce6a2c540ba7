"""Running the GUI: the QApplication, the main window around a session, screenshots.

Owns :func:`run_window`, which the ``emgfb live`` and ``emgfb replay`` subcommands call
with a started :class:`~emgfb.live.LiveSession`: it creates (or reuses) the
QApplication, applies the emgfb style, shows the main window, optionally saves a PNG of it
after some seconds and quits, and always stops the session on the way out. Imports Qt and
``emgfb.gui``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

from PyQt5 import QtCore, QtWidgets, sip

from emgfb.gui import theme
from emgfb.gui.main_window import MainWindow
from emgfb.live import LiveSession

log = logging.getLogger(__name__)


def ensure_app() -> QtWidgets.QApplication:
    """The QApplication (created once, styled for emgfb)."""
    app = QtWidgets.QApplication.instance()
    if app is None:
        QtWidgets.QApplication.setAttribute(QtCore.Qt.AA_EnableHighDpiScaling, True)
        app = QtWidgets.QApplication(sys.argv[:1])
        app.setApplicationName("emgfb")
    theme.configure_pyqtgraph()
    theme.apply_style(app)
    return app


#: Windows that were closed: kept until the process exits, never destroyed mid-run.
_RETIRED: list[QtWidgets.QWidget] = []


def retire(widget: QtWidgets.QWidget) -> None:
    """Close a top-level widget for good and keep it alive until the process exits.

    Destroying pyqtgraph views while the process goes on is not safe: left to Python's
    garbage collector, or deleted through Qt, their items can be torn down piecemeal while
    queued events still reach them (seen as segfaults and "pure virtual method called"
    between GUI tests). A closed window costs only memory, and an ``emgfb`` command has
    one window per process.
    """
    if sip.isdeleted(widget) or any(w is widget for w in _RETIRED):
        return
    widget.close()
    _RETIRED.append(widget)


def run_window(session: LiveSession, *, view: str = "setup", replay: bool = False,
               screenshot: str | Path | None = None, after: float = 3.0,
               replay_info: dict | None = None, record_dir: str | Path | None = None,
               fps: float = 60.0, size: tuple[int, int] = (1400, 900),
               on_window: Callable[[MainWindow], None] | None = None) -> int:
    """Show the main window around ``session`` until it is closed; return an exit code.

    With ``screenshot``, the window is saved as a PNG after ``after`` seconds and closed.
    The session is stopped (recording finished) in every case. ``on_window`` is called
    with the new window before it is shown (e.g. to attach a guided session).
    """
    try:
        app = ensure_app()
        win = MainWindow(session, view, replay=replay, replay_info=replay_info,
                         record_dir=record_dir, fps=fps)
        win.resize(*size)
        if on_window is not None:
            on_window(win)
        win.show()
        if screenshot is not None:
            def shoot() -> None:
                path = win.save_screenshot(screenshot)
                log.info("screenshot saved: %s", path)
                win.close()

            QtCore.QTimer.singleShot(int(max(0.0, after) * 1000), shoot)
        app.exec_()
        win.shutdown()
        retire(win)
    finally:
        session.stop()
    if session.error:
        log.error("session ended with an error: %s", session.error)
        return 1
    return 0
