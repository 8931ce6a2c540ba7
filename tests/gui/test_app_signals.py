"""Ctrl-C and SIGTERM close the live window however early they come (issue 11)."""

from __future__ import annotations

import os
import signal

from PyQt5 import QtWidgets

from emgfb import interrupts
from emgfb.gui.app import run_window
from emgfb.live import LiveSession


class _SignalOnShow(QtWidgets.QWidget):
    """A child whose show event (Python called from C++ inside ``win.show()``, before the
    event loop runs) sends this process SIGTERM: where a service manager's SIGTERM lands
    when it comes while the window is being set up."""

    def showEvent(self, ev) -> None:  # noqa: N802 - Qt override
        os.kill(os.getpid(), signal.SIGTERM)
        super().showEvent(ev)


def test_a_signal_while_the_window_is_set_up_still_closes_it(qapp, tmp_path):
    # before the fix the handler raised inside the show event, PyQt printed the traceback
    # and swallowed it, and the guided window ran its whole protocol (seen: 118 s)
    with interrupts.installed():
        session = LiveSession("sim://?speed=2&seed=5", record_path=tmp_path / "s.h5")
        session.start()
        code = run_window(session, view="feedback",
                          on_window=lambda win: win.statusBar().addWidget(_SignalOnShow()))
        got = interrupts.received()
    assert code == 143 and got == signal.SIGTERM
    assert not session.running
