"""The emgfb main window: views, display timer, shortcuts, status line, clean shutdown.

Owns :class:`MainWindow`: a tab per view (set-up, feedback, replay), the display timer
that pulls new samples into the :class:`~emgfb.gui.model.DisplayModel` and redraws only
the visible view (30-60 Hz), the display fps counter and latency stamps, keyboard
shortcuts (record, marker with a typed label, pause, view switching), the replay transport
bar and the status line (source, rate, frames, lost ticks, CRC errors, reconnects,
recording and display fps). Closing the window stops the session, which finishes the
recording. Imports Qt, pyqtgraph, ``emgfb.live`` and ``emgfb.gui``.
"""

from __future__ import annotations

import collections
import logging
import time
from pathlib import Path

from PyQt5 import QtCore, QtGui, QtWidgets

from emgfb.errors import EmgfbError
from emgfb.gui import theme
from emgfb.gui.feedback_view import FeedbackView
from emgfb.gui.model import DisplayModel
from emgfb.gui.power import on_mains_power
from emgfb.gui.replay_view import ReplayBar, ReplayView
from emgfb.gui.setup_view import SetupView
from emgfb.live import LiveSession, SessionState

log = logging.getLogger(__name__)

VIEWS = ("setup", "feedback", "replay")
VIEW_TITLES = {"setup": "Set-up (clinician)", "feedback": "Feedback (patient)",
               "replay": "Replay"}


class FrameStats:
    """Display frames per second and draw latency over the last ~2 s."""

    def __init__(self) -> None:
        self.paints: collections.deque[float] = collections.deque(maxlen=240)
        self.latencies: collections.deque[float] = collections.deque(maxlen=4096)
        #: (paint wall time, newest sample index drawn) of recent paints with new data
        self.drawn: collections.deque[tuple[float, int]] = collections.deque(maxlen=4096)
        self.pending_host_time: float | None = None
        self.pending_index = -1
        self.n_paints = 0  #: paints since construction (the deques keep only recent ones)

    def painted(self, t: float) -> None:
        """Record a real paint at wall time ``t``; closes a pending latency stamp."""
        self.paints.append(t)
        self.n_paints += 1
        if self.pending_host_time is not None:
            self.latencies.append(t - self.pending_host_time)
            self.drawn.append((t, self.pending_index))
            self.pending_host_time = None

    def fps(self, now: float | None = None) -> float:
        """Paints per second over the last 2 s."""
        now = time.time() if now is None else now
        recent = [t for t in self.paints if now - t <= 2.0]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)


class MainWindow(QtWidgets.QMainWindow):
    """The emgfb window around one running :class:`~emgfb.live.LiveSession`.

    Parameters
    ----------
    session
        A started session (live or ``file://`` replay); the window stops it on close.
    view
        Initial view: ``"setup"``, ``"feedback"`` or ``"replay"``.
    replay
        True when the session replays a recording (shows the transport bar).
    record_dir
        Folder for recordings started with the record shortcut.
    fps
        Display refresh rate in Hz.
    replay_info
        For replay: ``duration`` (s) and ``description`` (rich text) and ``markers``
        (``[(seconds, label)]``).
    """

    def __init__(self, session: LiveSession, view: str = "setup", *, replay: bool = False,
                 record_dir: str | Path | None = None, fps: float = 60.0,
                 replay_info: dict | None = None, mains_power: bool | None = None):
        super().__init__()
        self.session = session
        self.replay = replay
        self.record_dir = Path(record_dir) if record_dir else Path.cwd()
        self.model = DisplayModel(session)
        self.frame_stats = FrameStats()
        self._closed = False
        #: Called on shutdown before the session stops (a guided session stores its
        #: documents into the recording).
        self.shutdown_hooks: list = []
        mode = "Replay" if replay else "Live"
        self.setWindowTitle(f"emgfb — {mode} — {session.source_url}")
        if mains_power is None and not replay:
            mains_power = on_mains_power()

        central = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(central)
        lay.setContentsMargins(6, 6, 6, 0)
        lay.setSpacing(4)
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.setDocumentMode(False)
        paint = self.frame_stats.painted
        self.setup_view = SetupView(self.model, mains_power if not replay else False, paint)
        self.feedback_view = FeedbackView(self.model, paint)
        info = replay_info or {}
        self.replay_view = ReplayView(
            self.model, info.get("description", self._live_description()), self.seek, paint)
        self.views: dict[str, SetupView | FeedbackView | ReplayView] = {
            "setup": self.setup_view, "feedback": self.feedback_view, "replay": self.replay_view}
        for key in VIEWS:
            self.tabs.addTab(self.views[key], VIEW_TITLES[key])
        # a failure the clinician must see at once (never a counting REC beside a recording
        # that stopped): a red banner above the views
        self.alert_banner = QtWidgets.QLabel()
        self.alert_banner.setObjectName("alertBanner")
        self.alert_banner.setWordWrap(True)
        self.alert_banner.setStyleSheet(
            f"background: {theme.RECORDING}; color: white; font-weight: bold; "
            "padding: 6px 10px; border-radius: 3px;")
        self.alert_banner.hide()
        lay.addWidget(self.alert_banner)
        lay.addWidget(self.tabs, 1)

        self.replay_bar: ReplayBar | None = None
        self._replay_markers: list[tuple[float, str]] = []
        if replay:
            if session.playback is None:
                raise ValueError("MainWindow(replay=True): the session must be started")
            self.replay_bar = ReplayBar(float(info.get("duration", 0.0)),
                                        session.playback.speed)
            self.replay_bar.play_toggled.connect(self.set_playing)
            self.replay_bar.speed_changed.connect(self.set_speed)
            self.replay_bar.timeline.seek_requested.connect(self.seek)
            lay.addWidget(self.replay_bar)
            self.set_replay_markers(info.get("markers", []))

        self._build_toolbar()
        self._build_status()
        self._build_shortcuts()
        self.setCentralWidget(central)
        self.show_view(view)
        self.resize(1400, 900)
        self.tabs.setFocus()

        self.timer = QtCore.QTimer(self)
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.setInterval(max(5, int(round(1000.0 / fps))))
        self.timer.timeout.connect(self.on_frame)
        self.timer.start()
        self.status_timer = QtCore.QTimer(self)
        self.status_timer.setInterval(250)
        self.status_timer.timeout.connect(self.refresh_status)
        self.status_timer.start()
        self.refresh_status()

    # -- construction --------------------------------------------------------------------

    def _live_description(self) -> str:
        s = self.session
        info = s.source.info if s.source is not None else None
        board = f"{info.board}, firmware {info.firmware}" if info else "?"
        montage = s.montage.name if s.montage is not None else "?"
        return (f"<b>Live session</b><br>{s.source_url}<br>board: {board}<br>"
                f"{s.fs:g} Hz × {s.n_channels} channels, montage {montage}<br><br>"
                "Open a recording with <code>emgfb replay FILE.h5</code>.")

    def _build_toolbar(self) -> None:
        bar = QtWidgets.QToolBar("Session")
        bar.setMovable(False)
        bar.setIconSize(QtCore.QSize(16, 16))
        self.addToolBar(bar)
        self.record_action = QtWidgets.QAction("● Record", self)
        self.record_action.setCheckable(True)
        self.record_action.setToolTip("Start or stop recording (R)")
        self.record_action.triggered.connect(self.toggle_record)
        if not self.replay:  # a replay is already a recording
            bar.addAction(self.record_action)
        self.pause_action = QtWidgets.QAction("Pause display", self)
        self.pause_action.setCheckable(True)
        self.pause_action.setToolTip("Freeze the display; acquisition and recording go on "
                                     "(Space)")
        self.pause_action.triggered.connect(self._pause_triggered)
        bar.addAction(self.pause_action)
        bar.addSeparator()
        bar.addWidget(QtWidgets.QLabel(" Marker: "))
        self.marker_edit = QtWidgets.QLineEdit()
        self.marker_edit.setPlaceholderText("type a label, Enter (M)")
        self.marker_edit.setMaximumWidth(280)
        self.marker_edit.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)
        self.marker_edit.returnPressed.connect(self._marker_entered)
        bar.addWidget(self.marker_edit)
        spacer = QtWidgets.QWidget()
        spacer.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Preferred)
        bar.addWidget(spacer)
        keys = QtWidgets.QLabel("R record · M marker · Space pause · F1/F2/F3 views  ")
        keys.setObjectName("muted")
        bar.addWidget(keys)

    def _build_status(self) -> None:
        # statusBar() creates the bar on first call, never None (PyQt5's stubs: Optional)
        sb: QtWidgets.QStatusBar = self.statusBar()  # type: ignore[assignment]
        self.status_bar = sb
        sb.setSizeGripEnabled(False)
        self.status_labels: dict[str, QtWidgets.QLabel] = {}
        for key in ("source", "rate", "frames", "lost", "crc", "reconnects", "record", "fps"):
            lab = QtWidgets.QLabel()
            self.status_labels[key] = lab
            sb.addPermanentWidget(lab, 1 if key == "source" else 0)

    def _build_shortcuts(self) -> None:
        def short(key: str | QtGui.QKeySequence.StandardKey, slot) -> None:
            sc = QtWidgets.QShortcut(QtGui.QKeySequence(key), self)
            sc.activated.connect(slot)

        short("R", self.toggle_record)
        short("M", self.focus_marker)
        short("Space", self.toggle_pause)
        for i, key in enumerate(VIEWS):
            short(f"F{i + 1}", lambda k=key: self.show_view(k))
            short(f"Ctrl+{i + 1}", lambda k=key: self.show_view(k))
        short("Escape", lambda: self.views[self.current_view].setFocus())

    # -- views ---------------------------------------------------------------------------

    def show_view(self, key: str) -> None:
        """Switch to view ``key`` (setup, feedback, replay)."""
        if key not in self.views:
            raise ValueError(f"unknown view {key!r}; expected one of {', '.join(VIEWS)}")
        self.tabs.setCurrentWidget(self.views[key])

    @property
    def current_view(self) -> str:
        """Key of the visible view."""
        w = self.tabs.currentWidget()
        return next(k for k, v in self.views.items() if v is w)

    # -- display timer -------------------------------------------------------------------

    def on_frame(self) -> None:
        """Pull new samples and redraw the visible view (display timer slot)."""
        if self.model.update():
            self.views[self.current_view].refresh()
            self.frame_stats.pending_host_time = self.model.newest_host_time
            self.frame_stats.pending_index = self.model.newest_index
        if self.replay_bar is not None:
            pos = self.session.position_s
            if pos is not None:
                self.replay_bar.set_position(pos)

    def refresh_status(self) -> None:
        """Update the status line and the alert banner from one status snapshot (4 Hz)."""
        st = self.session.status()
        s, c = self.session, st.counters
        lab = self.status_labels
        state = st.state.value if st.state is not SessionState.RUNNING else \
            st.source.split(":", 1)[0]
        if st.error:
            state = f"error: {st.error}"
        _set(lab["source"], f"Source: {s.source_url}  ({state})")
        _set(lab["rate"], f"{s.fs:g} Hz × {s.n_channels} ch")
        _set(lab["frames"], f"frames {c.frames:,}".replace(",", " "))
        _set(lab["lost"], f"lost ticks {c.lost_ticks}")
        _set(lab["crc"], f"CRC errors {c.crc_errors}")
        _set(lab["reconnects"], f"reconnects {c.reconnects}")
        for key, bad in (("lost", c.lost_ticks), ("crc", c.crc_errors),
                         ("reconnects", c.reconnects)):
            lab[key].setStyleSheet(f"color: {theme.CEILING_CROSSED};" if bad else "")
        path = st.recording_path
        if st.recording_error:
            _set(lab["record"], f"■ REC stopped: {path.name if path else ''}")
            lab["record"].setStyleSheet(f"color: {theme.RECORDING}; font-weight: bold;")
        elif path is not None:
            secs = st.recording_s
            _set(lab["record"], f"● REC {path.name}  {int(secs // 60):02d}:{int(secs % 60):02d}")
            lab["record"].setStyleSheet(f"color: {theme.RECORDING}; font-weight: bold;")
        else:
            _set(lab["record"], "not recording" if not self.replay else "replay")
            lab["record"].setStyleSheet(f"color: {theme.TEXT_MUTED};")
        alerts = []
        if st.recording_error:
            alerts.append(_recording_alert(st.recording_error, path))
        if st.error:
            alerts.append(f"Signal stopped: {st.error}")
        _set(self.alert_banner, "\n".join(alerts))
        self.alert_banner.setVisible(bool(alerts))
        paused = " (paused)" if self.model.frozen else ""
        _set(lab["fps"], f"display {self.frame_stats.fps():.0f} fps{paused}")
        if self.record_action.isChecked() != (path is not None):
            self.record_action.setChecked(path is not None)
        self.setup_view.refresh_quality()

    # -- actions -------------------------------------------------------------------------

    def toggle_record(self) -> None:
        """Start recording to a new file in :attr:`record_dir`, or finish the recording."""
        if self.replay:
            return
        guided = getattr(self, "guided", None)
        if guided is not None and not guided.driver.done:
            # its markers, calibration and scores would have nowhere to go
            self.status_bar.showMessage(
                "A guided session records until its protocol ends; close the window to "
                "stop early (the file is kept).", 8000)
            return
        try:
            if self.session.recording_path is None:
                name = time.strftime("emgfb-%Y%m%d-%H%M%S.h5")
                self.session.start_record(self.record_dir / name)
            else:
                self.session.stop_record()
        except EmgfbError as exc:
            self.status_bar.showMessage(f"Recording: {exc}", 8000)
            log.error("recording: %s", exc)
        self.refresh_status()

    def focus_marker(self) -> None:
        """Put the cursor in the marker field (type a label, Enter)."""
        self.marker_edit.setFocus()
        self.marker_edit.selectAll()

    def _marker_entered(self) -> None:
        label = self.marker_edit.text().strip() or f"marker {len(self.session.markers) + 1}"
        self.add_marker(label)
        self.marker_edit.clear()
        self.views[self.current_view].setFocus()

    def add_marker(self, label: str) -> None:
        """Add a clinician marker (goes into the recording when one runs)."""
        m = self.session.add_marker(label, kind="note")
        pos = self.session.position_s
        if pos is not None:  # replay: show it on the timeline (the file is not changed)
            self.set_replay_markers(sorted([*self._replay_markers, (pos, m.label)]))
        else:
            pos = self.session.recording_seconds if self.session.recording_path else None
        where = f" at {pos:.1f} s" if pos is not None else ""
        self.status_bar.showMessage(f"Marker “{m.label}”{where}", 4000)

    def _pause_triggered(self, checked: bool) -> None:
        self.set_paused(checked)

    def toggle_pause(self) -> None:
        """Space: freeze/unfreeze the display (replay: pause/continue playback)."""
        self.set_paused(not self.pause_action.isChecked())

    def set_paused(self, paused: bool) -> None:
        """Freeze the display; in replay also halt playback."""
        self.pause_action.setChecked(paused)
        self.model.frozen = paused
        if self.replay:
            if self.replay_bar is not None:
                self.replay_bar.play_button.setChecked(not paused)
            self.set_playing(not paused)
        self.refresh_status()

    def set_playing(self, playing: bool) -> None:
        """Replay: continue or halt playback."""
        if playing:
            self.session.resume()
        else:
            self.session.pause()
        self.model.frozen = not playing
        self.pause_action.setChecked(not playing)

    def set_speed(self, speed: float) -> None:
        """Replay: playback speed (x real time)."""
        try:
            self.session.set_speed(speed)
        except EmgfbError as exc:
            self.status_bar.showMessage(str(exc), 5000)

    def seek(self, seconds: float) -> None:
        """Replay: continue from ``seconds``."""
        try:
            self.session.seek(seconds)
        except EmgfbError as exc:
            self.status_bar.showMessage(str(exc), 5000)
            return
        if self.replay_bar is not None:
            self.replay_bar.set_position(seconds)

    def set_replay_markers(self, markers: list[tuple[float, str]]) -> None:
        """Markers of the replayed recording, ``(seconds, label)``."""
        self._replay_markers = list(markers)
        if self.replay_bar is not None:
            self.replay_bar.timeline.set_markers(self._replay_markers)
        self.replay_view.set_markers(self._replay_markers)

    # -- shutdown ------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop the timers and the session (joins its thread, finishes the recording)."""
        if self._closed:
            return
        self._closed = True
        self.timer.stop()
        self.status_timer.stop()
        try:
            for hook in self.shutdown_hooks:
                hook()
        finally:
            self.session.stop()

    def closeEvent(self, ev: QtGui.QCloseEvent | None) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(ev)

    def save_screenshot(self, path: str | Path) -> Path:
        """Render the window into a PNG."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.grab().save(str(path), "PNG"):
            raise EmgfbError(f"{path}: cannot write the screenshot")
        return path


def _recording_alert(error: str, path: Path | None) -> str:
    """``"Recording stopped ...: why (file.h5)"``, from the writer's one-line error."""
    if path is not None and error.startswith(f"{path}: "):
        error = error[len(f"{path}: "):]
    if error.lower().startswith("recording stopped"):
        error = "R" + error[1:]
    else:
        error = f"Recording stopped: {error}"
    return f"{error} ({path.name})" if path is not None else error


def _set(label: QtWidgets.QLabel, text: str) -> None:
    if label.text() != text:
        label.setText(text)
