"""ensure_app: the one QApplication of the process."""

from __future__ import annotations

import os
import subprocess
import sys


def test_ensure_app_refuses_a_running_non_gui_qcoreapplication():
    # a QCoreApplication cannot be styled or show a window: one clear line, not an
    # AttributeError from deep inside apply_style (own process: one Qt app per process)
    code = ("from PyQt5 import QtCore\n"
            "core = QtCore.QCoreApplication([])\n"
            "from emgfb.gui.app import ensure_app\n"
            "ensure_app()\n")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == (
        "RuntimeError: emgfb's window needs a QApplication, not the QCoreApplication "
        "(no GUI) that is running")
