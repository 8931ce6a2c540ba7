"""The emgfb desktop GUI (PyQt5 + pyqtgraph): set-up, feedback and replay views.

This package owns everything that draws: the main window, its three views (clinician
set-up, patient feedback, replay), the status line, keyboard shortcuts and the screenshot
option of ``emgfb live`` / ``emgfb replay``. It reads the ring buffers a
:class:`~emgfb.live.LiveSession` publishes, on its own display timer, and decimates for
display; it never runs acquisition, DSP or recording itself. It may import the whole
library; nothing outside ``emgfb.gui`` imports it (only the CLI, lazily).
"""
