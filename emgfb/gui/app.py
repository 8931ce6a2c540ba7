"""Running the GUI: the QApplication, the main window around a session, screenshots.

Owns :func:`run_window`, which the ``emgfb live`` and ``emgfb replay`` subcommands call
with a started :class:`~emgfb.live.LiveSession`: it creates (or reuses) the
QApplication, applies the emgfb style, shows the main window, optionally saves a PNG of it
after some seconds and quits, and always stops the session on the way out; Ctrl-C and
SIGTERM close the window like its close button (exit 130/143, the recording complete).
Imports Qt, ``emgfb.interrupts``, ``emgfb.live`` and ``emgfb.gui``.
"""

from __future__ import annotations

import gc
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from PyQt5 import QtCore, QtWidgets, sip

from emgfb import interrupts
from emgfb.errors import EmgfbError
from emgfb.gui import theme
from emgfb.gui.main_window import MainWindow
from emgfb.live import LiveSession

log = logging.getLogger(__name__)


def ensure_app() -> QtWidgets.QApplication:
    """The QApplication (created once, styled for emgfb)."""
    app = QtWidgets.QApplication.instance()
    if app is None:
        QtWidgets.QApplication.setAttribute(
            QtCore.Qt.ApplicationAttribute.AA_EnableHighDpiScaling, True)
        app = QtWidgets.QApplication(sys.argv[:1])
        app.setApplicationName("emgfb")
    if not isinstance(app, QtWidgets.QApplication):
        raise RuntimeError("emgfb's window needs a QApplication, not the QCoreApplication "
                           "(no GUI) that is running")
    collect_garbage_on_gui_thread(app)
    theme.configure_pyqtgraph()
    theme.apply_style(app)
    return app


class GuiThreadCollector(QtCore.QObject):
    """Runs Python's cyclic garbage collector on the GUI thread, and only there.

    CPython starts a collection in whichever thread allocates when a generation's threshold
    is crossed: in emgfb that is usually the live worker, the writer or a reader thread. A
    garbage cycle holding PyQt wrappers (pyqtgraph items and their views refer to each
    other) is then destroyed on that thread, so C++ destructors of graphics items run while
    the GUI thread is painting the scene that still lists them: "wrapped C/C++ object of
    type AxisItem has been deleted", then a segmentation fault. This object switches
    automatic collection off for the process and collects on a GUI-thread timer instead,
    generation by generation with CPython's own thresholds, so the cost stays what it was.
    Qt objects are then always destroyed on the thread that owns them.
    """

    def __init__(self, parent: QtCore.QObject, interval_ms: int = 100) -> None:
        super().__init__(parent)
        gc.disable()
        self._timer = QtCore.QTimer(self)
        self._timer.timeout.connect(self.step)
        self._timer.start(interval_ms)

    def step(self) -> None:
        """Collect the oldest generation whose allocation count crossed its threshold."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        for generation in (2, 1, 0):
            if counts[generation] > thresholds[generation]:
                gc.collect(generation)
                return


def collect_garbage_on_gui_thread(app: QtWidgets.QApplication) -> GuiThreadCollector:
    """Install (once) the :class:`GuiThreadCollector` on ``app``; returns it."""
    existing = app.findChild(GuiThreadCollector)
    return existing if existing is not None else GuiThreadCollector(app)


def dispose(widget: QtWidgets.QWidget) -> None:
    """Close a top-level widget and destroy it now, on the GUI thread, in Qt's order.

    Qt deletes the C++ objects (children before the widget, pyqtgraph scenes with their
    items) through ``deleteLater``; the Python wrappers left over are then collected here,
    on the GUI thread (see :class:`GuiThreadCollector`), never by another thread.
    """
    if sip.isdeleted(widget):
        return
    widget.close()
    widget.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
    gc.collect()


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
    failures: list[EmgfbError] = []
    windows: list[MainWindow] = []

    def close_on_signal(_signum: int) -> None:
        # never raise inside Qt: a signal during set-up (pyqtgraph runs Python inside
        # win.show()) would be printed by PyQt and lost, and the window would run on
        if windows:
            # PyQt5's stubs want a slot returning None; Qt ignores close()'s bool
            QtCore.QTimer.singleShot(0, windows[0].close)  # type: ignore[arg-type]

    try:
        with interrupts.divert(close_on_signal):
            app = ensure_app()
            win = MainWindow(session, view, replay=replay, replay_info=replay_info,
                             record_dir=record_dir, fps=fps)
            windows.append(win)
            # the timer gives Python a moment every 100 ms to run its signal handlers
            # during Qt's loop
            wake = QtCore.QTimer(win)
            wake.timeout.connect(lambda: None)
            wake.start(100)
            win.resize(*size)
            if on_window is not None:
                on_window(win)
            win.show()
            if screenshot is not None:
                def shoot() -> None:
                    try:  # a failure in a Qt callback must still close the window
                        path = win.save_screenshot(screenshot)
                        log.info("screenshot saved: %s", path)
                    except EmgfbError as exc:
                        failures.append(exc)
                    finally:
                        win.close()

                QtCore.QTimer.singleShot(int(max(0.0, after) * 1000), shoot)
            if interrupts.received() is not None:  # a signal came while setting up
                QtCore.QTimer.singleShot(0, win.close)  # type: ignore[arg-type]
            app.exec_()
        win.shutdown()
        dispose(win)
    finally:
        session.stop()
    if failures:
        raise failures[0]
    signum = interrupts.received()
    if signum is not None:
        log.warning("window closed by %s; recording finished", signal.Signals(signum).name)
        return 128 + signum  # 130 Ctrl-C, 143 SIGTERM
    if session.error:
        log.error("session ended with an error: %s", session.error)
        return 1
    return 0
