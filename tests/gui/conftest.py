"""GUI tests run offscreen: no display needed, same pixels as on screen."""

from __future__ import annotations

import os
import threading

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _live_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "emgfb-live" and t.is_alive()]


@pytest.fixture
def live_threads():
    """Function listing emgfb session worker threads that are still alive."""
    return _live_threads


@pytest.fixture
def make_window(qtbot, tmp_path):
    """Build a started session and its main window; always shut both down."""
    from PyQt5 import QtWidgets

    from emgfb.gui import theme
    from emgfb.gui.main_window import MainWindow
    from emgfb.live import LiveSession

    made = []

    def make(url: str = "sim://?speed=2&seed=5", view: str = "setup", **kw):
        theme.configure_pyqtgraph()
        session = LiveSession(url)
        session.start()
        win = MainWindow(session, view, record_dir=tmp_path, mains_power=False, **kw)
        win.show()
        qtbot.waitExposed(win)
        made.append(win)
        win.activateWindow()  # shortcuts act in the active window only
        qtbot.waitUntil(lambda: QtWidgets.QApplication.activeWindow() is win, timeout=5000)
        return win

    yield make
    from emgfb.gui.app import dispose

    for win in made:
        win.shutdown()
        dispose(win)


@pytest.fixture(autouse=True)
def _dispose_windows(qapp):
    """Collect garbage on the GUI thread only (as the app does, see
    :class:`emgfb.gui.app.GuiThreadCollector`), and after each GUI test destroy emgfb's
    top-level widgets through Qt on this thread, so nothing of one test is left for the
    next."""
    from emgfb.gui.app import collect_garbage_on_gui_thread, dispose

    collect_garbage_on_gui_thread(qapp)
    yield
    # Only emgfb's own windows: Qt keeps parentless helper widgets of its own among the
    # top-level widgets (a graphics layout's style probe, tool tips) and deletes them itself.
    for w in qapp.topLevelWidgets():
        if type(w).__module__.startswith("emgfb."):
            dispose(w)
