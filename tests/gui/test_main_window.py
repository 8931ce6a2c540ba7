"""The live GUI offscreen: data flow, views, shortcuts, markers, recording, shutdown."""

from __future__ import annotations

import numpy as np
from PyQt5 import QtCore

from emgfb.recording import open_recording


def _finite(curve) -> int:
    _, y = curve.getData()
    return 0 if y is None else int(np.isfinite(y).sum())


def test_window_opens_and_data_flows_into_every_channel(make_window, qtbot):
    win = make_window()
    view = win.setup_view
    assert len(view.plots) == 6
    qtbot.waitUntil(lambda: all(_finite(c) > 100 for c in view.raw_curves), timeout=10000)
    qtbot.waitUntil(lambda: all(_finite(c) > 50 for c in view.env_curves), timeout=10000)
    # montage shown as muscle + side
    assert "Frontalis" in view.cards[0].findChildren(type(view.banner))[0].text()
    qtbot.waitUntil(lambda: win.frame_stats.fps() > 5, timeout=10000)
    assert "fps" in win.status_labels["fps"].text()
    assert win.status_labels["rate"].text() == "1000 Hz × 6 ch"
    assert not win.setup_view.banner.isVisible()


def test_mains_power_warning_banner(qtbot):
    from emgfb.gui.main_window import MainWindow
    from emgfb.live import LiveSession

    s = LiveSession("sim://?speed=1")
    s.start()
    win = MainWindow(s, mains_power=True)
    try:
        win.show()
        assert win.setup_view.banner.isVisible()
        assert "battery" in win.setup_view.banner.text()
    finally:
        win.shutdown()


def test_view_switching_by_shortcut(make_window, qtbot):
    win = make_window()
    assert win.current_view == "setup"
    qtbot.keyClick(win, QtCore.Qt.Key_F2)
    assert win.current_view == "feedback"
    fb = win.feedback_view
    # one row per muscle pair, affected and healthy side by side
    assert [r.muscle for r in fb.rows] == ["frontalis", "orbicularis_oculi",
                                          "zygomaticus_major"]
    qtbot.waitUntil(lambda: _finite(fb.rows[0].affected_curve) > 20, timeout=10000)
    qtbot.keyClick(win, QtCore.Qt.Key_F3)
    assert win.current_view == "replay"
    qtbot.keyClick(win, QtCore.Qt.Key_1, QtCore.Qt.ControlModifier)
    assert win.current_view == "setup"


def test_suppression_ceiling_turns_red_when_the_eye_fires(make_window, qtbot):
    win = make_window(view="feedback")
    fb = win.feedback_view
    eye = next(r for r in fb.rows if r.muscle == "orbicularis_oculi")
    qtbot.waitUntil(lambda: eye.bars.ceiling is not None, timeout=10000)
    assert not eye.bars.ceiling_crossed
    model = win.session.source.model
    model.set_drive({"zygomaticus_major": 1.0, "orbicularis_oculi": 1.0})
    qtbot.waitUntil(lambda: eye.bars.ceiling_crossed, timeout=10000)
    assert "relax" in eye.message.text()
    model.set_drive({})
    qtbot.waitUntil(lambda: not eye.bars.ceiling_crossed, timeout=10000)


def test_record_and_typed_marker_reach_the_recording(make_window, qtbot, tmp_path):
    win = make_window()
    qtbot.waitUntil(lambda: win.session.newest_index > 200, timeout=10000)
    qtbot.keyClick(win, QtCore.Qt.Key_R)
    path = win.session.recording_path
    assert path is not None and path.parent == tmp_path
    win.refresh_status()
    assert "REC" in win.status_labels["record"].text()
    qtbot.keyClick(win, QtCore.Qt.Key_M)
    assert win.marker_edit.hasFocus()
    qtbot.keyClicks(win.marker_edit, "rest baseline")
    qtbot.keyClick(win.marker_edit, QtCore.Qt.Key_Return)
    assert win.marker_edit.text() == ""
    # the recording's own clock, not the processed index: raw chunks reach the file ahead
    # of the DSP (issue 11), so on a loaded machine the two differ
    fs = win.session.fs
    qtbot.waitUntil(lambda: win.session.recording_seconds * fs > 300, timeout=10000)
    qtbot.keyClick(win, QtCore.Qt.Key_R)
    assert win.session.recording_path is None
    with open_recording(path) as rec:
        assert rec.meta["complete"]
        assert rec.n_samples > 300
        assert rec.tick[-1] - rec.tick[0] + 1 == rec.n_samples + rec.lost_ticks
        assert [m.label for m in rec.markers if m.kind != "channel"] == ["rest baseline"]


def test_pause_freezes_the_display_only(make_window, qtbot):
    win = make_window()
    qtbot.waitUntil(lambda: win.model.newest_index > 100, timeout=10000)
    qtbot.keyClick(win, QtCore.Qt.Key_Space)
    frozen_at = win.model.newest_index
    target = win.session.newest_index + 200
    qtbot.waitUntil(lambda: win.session.newest_index > target, timeout=10000)
    assert win.model.newest_index == frozen_at  # display held, acquisition went on
    qtbot.keyClick(win, QtCore.Qt.Key_Space)
    qtbot.waitUntil(lambda: win.model.newest_index > target, timeout=10000)


def test_quality_badge_turns_bad_when_an_electrode_drops(make_window, qtbot):
    win = make_window("sim://?speed=4&seed=5&electrode_off=2")
    view = win.setup_view
    qtbot.waitUntil(lambda: view.badge_states()[2] == "bad", timeout=15000)
    assert "Electrode 3" in view.cards[2].hint.text()
    assert view.badge_states()[0] != "bad" or "flat" not in view.cards[0].hint.text()


def test_closing_the_window_stops_everything(make_window, qtbot, tmp_path, live_threads):
    win = make_window()
    qtbot.waitUntil(lambda: win.session.newest_index > 100, timeout=10000)
    path = win.session.start_record(tmp_path / "closing.h5")
    assert live_threads()
    win.close()
    assert not win.session.running
    assert not live_threads()
    with open_recording(path) as rec:
        assert rec.meta["complete"]


def test_a_failed_recording_shows_a_red_banner_never_a_counting_rec(make_window, qtbot,
                                                                    tmp_path):
    import errno

    win = make_window()
    win.session.start_record(tmp_path / "full.h5")
    rec = win.status_labels["record"]
    qtbot.waitUntil(lambda: rec.text().startswith("● REC full.h5"), timeout=10000)
    assert not win.alert_banner.isVisible()
    # the writer meets the error a disk filled by another program gives (its own path)
    writer = win.session.recording._writer
    writer._fail(OSError(errno.ENOSPC, "No space left on device"), "disk full")
    qtbot.waitUntil(win.alert_banner.isVisible, timeout=5000)
    text = win.alert_banner.text()
    assert text.startswith("Recording stopped") and "No space left on device" in text
    assert text.endswith("(full.h5)")
    assert "● REC" not in rec.text() and "stopped" in rec.text()
    status = win.session.status()
    assert not status.recording and "No space left" in status.recording_error
    win.grab().save(str(tmp_path / "banner.png"))


def test_a_window_on_a_session_not_started_says_so(qapp):
    import pytest

    from emgfb.gui.main_window import MainWindow
    from emgfb.live import LiveSession, SessionError

    with pytest.raises(SessionError, match="start the session before showing it"):
        MainWindow(LiveSession("sim://?speed=0"), "setup")
