"""Replay in the GUI (seek, pause, markers) and the ``live``/``replay`` screenshot CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from emgfb.cli import main
from emgfb.cli.replay import replay_info
from emgfb.live import LiveSession
from emgfb.recording import open_recording


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """An 8 s simulated recording with two markers."""
    path = tmp_path_factory.mktemp("rec") / "demo.h5"
    s = LiveSession("sim://?speed=0&seed=11", subject="P042")
    s.start()
    try:
        assert s.wait_for_index(99, timeout=20)
        s.start_record(path)
        assert s.wait_for_index(2100, timeout=20)
        s.add_marker("brow lift", "phase")
        assert s.wait_for_index(6100, timeout=20)
        s.add_marker("relax", "phase")
        assert s.wait_for_index(8100, timeout=20)
    finally:
        s.stop()
    return path


def test_replay_seek_pause_and_markers(qtbot, recording, live_threads):
    from emgfb.gui import theme
    from emgfb.gui.main_window import MainWindow

    theme.configure_pyqtgraph()
    info = replay_info(recording)
    assert [m[1] for m in info["markers"]] == ["brow lift", "relax"]
    # The unpaced simulator may publish a few hundred samples before recording starts,
    # so the file holds 6-8 s; the description must agree with the file itself.
    with open_recording(recording) as rec:
        n_samples, fs = rec.n_samples, rec.fs
    assert 6.0 < info["duration"] < 8.5
    assert abs(info["duration"] - n_samples / fs) < 0.01
    session = LiveSession(f"file://{recording}?speed=1")
    session.start()
    win = MainWindow(session, "replay", replay=True, replay_info=info)
    try:
        win.show()
        bar = win.replay_bar
        assert bar is not None and len(bar.timeline.markers) == 2
        assert win.replay_view.marker_list.count() == 2
        qtbot.waitUntil(lambda: win.model.newest_index > 100, timeout=10000)
        win.seek(5.0)
        qtbot.waitUntil(lambda: session.position_s >= 5.0, timeout=10000)
        qtbot.waitUntil(lambda: bar.timeline.position >= 5.0, timeout=10000)
        assert bar.clock.text().startswith(("0:05", "0:06"))
        # markers delivered by the file after the seek point reach the session
        qtbot.waitUntil(lambda: "relax" in [m.label for m in session.markers], timeout=10000)
        bar.play_button.click()  # pause
        assert session.paused and win.model.frozen
        bar.play_button.click()  # play
        assert not session.paused
        pos = session.position_s
        qtbot.waitUntil(lambda: session.finished or session.position_s > pos, timeout=10000)
    finally:
        win.close()
    assert not live_threads()


def test_live_screenshot_cli(tmp_path, qapp, live_threads):
    png = tmp_path / "shot.png"
    code = main(["live", "--source", "sim://?speed=2&seed=1", "--view", "feedback",
                 "--screenshot", str(png), "--after", "1", "--size", "900x600"])
    assert code == 0
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert not live_threads()


def test_replay_screenshot_cli(tmp_path, qapp, recording):
    png = tmp_path / "replay.png"
    code = main(["replay", str(recording), "--speed", "4", "--screenshot", str(png),
                 "--after", "0.5", "--size", "900x600"])
    assert code == 0 and png.stat().st_size > 10_000


def test_replay_missing_file_is_one_line_error(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "nope.h5")]) == 2
    assert "no such recording" in capsys.readouterr().err


def test_help_does_not_import_qt():
    code = ("import sys; from emgfb.cli import build_parser; build_parser(); "
            "print('PyQt5' in sys.modules or 'pyqtgraph' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "False"
