"""A guided session in the live window: cues, markers and documents, ceiling, shutdown.

A tiny protocol (about 14 s of signal) runs on the simulated board at 4x real time with
the autopilot patient (issue 6: "Runner: drives the feedback view ...").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from emgfb.cli import main
from emgfb.exercises.guided import score_words, summary_words
from emgfb.exercises.protocol import load_protocol
from emgfb.recording import open_recording

TINY = """
name = "tiny"
montage = "face6"

[[step]]
kind = "signal-check"
duration_s = 0.5

[[step]]
kind = "rest"
duration_s = 2

[[step]]
kind = "reference"
muscle = "zygomaticus_major"
prepare_s = 0.5
effort_s = 1.5
relax_s = 0.5

[[step]]
kind = "reference"
muscle = "orbicularis_oculi"
prepare_s = 0.5
effort_s = 1.5
relax_s = 0.5

[[step]]
kind = "exercise"
label = "Gentle smile"
name = "smile"
sunnybrook = "open-mouth smile"
target = ["zygomaticus_major"]
suppress = ["orbicularis_oculi"]
shape = "hold"
level_pct = 30
ramp_up_s = 0.5
hold_s = 1.5
ramp_down_s = 0.5
reps = 2
rest_s = 1
prepare_s = 0.5
band_pct = 10
ceiling = { mode = "baseline_sd", value = 3 }
"""

# Twice real time: each phase lasts at least 0.25 s on the wall clock, many display frames
# even on a loaded machine.
URL = "sim://?speed=2&seed=3&montage=face6"


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture
def guided(qtbot, tmp_path, tiny):
    """Start a recording live session, its window and a guided session on it."""
    from emgfb.exercises.guided import GuidedDriver
    from emgfb.gui import theme
    from emgfb.gui.main_window import MainWindow
    from emgfb.gui.session_panel import attach
    from emgfb.live import LiveSession

    made = []

    def make(on_frame=None):
        """``on_frame(win, g)`` runs after the guided tick of every display frame, from the
        very first one (connected before the window is shown)."""
        theme.configure_pyqtgraph()
        out = tmp_path / "guided.h5"
        session = LiveSession(URL, montage="face6", record_path=out, subject="P001")
        session.record_meta = {"protocol": "tiny", "session": "guided"}
        session.start()
        win = MainWindow(session, "setup", record_dir=tmp_path, mains_power=False)
        made.append(win)
        g = attach(win, GuidedDriver(session, load_protocol(tiny), seed=2))
        if on_frame is not None:
            win.timer.timeout.connect(lambda: on_frame(win, g))
        win.show()
        qtbot.waitExposed(win)
        return win, g, out

    yield make
    for win in made:
        win.shutdown()


def test_guided_session_runs_through_and_records(guided, qtbot, live_threads):
    from emgfb.gui import theme

    seen: list[tuple[str, str, str, bool]] = []
    eye_words: set[str] = set()

    def frame(win, g) -> None:  # after the guided tick on the same display timer
        eye = next(r for r in win.feedback_view.rows if r.muscle == "orbicularis_oculi")
        seen.append((g.panel.text.text(), g.panel.rep.text(),
                     eye.ceiling_line.pen.color().name().upper(), g.driver.cue.suppression_over))
        eye_words.add(eye.message.text())

    win, g, out = guided(frame)
    assert win.current_view == "feedback"
    win.toggle_record()  # R during a guided session: the recording goes on
    assert win.session.recording_path == out
    qtbot.waitUntil(lambda: g.driver.done, timeout=30000)
    assert g.driver.error is None
    texts = list(dict.fromkeys(t for t, *_ in seen))
    for want in ("Relax your whole face and breathe calmly", "Get ready to smile",
                 "Now smile as strongly as is comfortable", "Slowly smile...",
                 "Hold... — keep your eye soft", "Relax slowly...", "Rest",
                 "Well done: the session is over"):
        assert want in texts, (want, texts)
    assert texts.index("Slowly smile...") < texts.index("Hold... — keep your eye soft")
    reps = {rep for _, rep, *_ in seen}
    assert {"Rep 1 of 2", "Rep 2 of 2"} <= reps
    # the autopilot's eye fires with the smile: the ceiling turns red while it is over it
    red = theme.CEILING_CROSSED.upper()
    assert any(colour == red and prev[3]
               for prev, (_, _, colour, _) in zip(seen, seen[1:], strict=False))
    # "too active" and "quiet" differ by more than colour (deuteranopia): sign and words
    assert "✗ Too active — relax this area" in eye_words and "✓ Stay relaxed here" in eye_words
    assert g.panel.score.text().startswith("Rep 2 of 2: ")
    assert "in the band" in g.panel.score.text()
    # finished: summary shown, recording finished, window and session still live
    assert g.summary.isVisible() and "Gentle smile: 2 reps" in g.summary.body.text()
    assert win.session.recording_path is None and win.session.running
    win.shutdown()
    assert not live_threads()
    with open_recording(out) as rec:
        labels = [m.label for m in rec.markers]
        kinds = {m.kind for m in rec.markers}
        scores = rec.document("scores")
        cal = rec.document("calibration")
        proto = rec.document("protocol")
        assert rec.meta["complete"]
    # "check": the signal check waited, then passed; "channel": the channel states
    assert kinds <= {"phase", "rep", "check", "channel"} and "channel" in kinds
    assert not any("overridden" in label for label in labels)
    for want in ("Rest baseline: baseline", "Gentle smile rep 1/2 start",
                 "Gentle smile rep 2/2 end", "Gentle smile: end"):
        assert want in labels, want
    assert [(s["step"], s["rep"]) for s in scores] == [("Gentle smile", 1), ("Gentle smile", 2)]
    assert all(s["pct_in_band"] is not None and s["valid"] for s in scores)
    assert cal["rest"]["mean_uv"] and cal["reference_uv"][4] is not None
    assert proto["name"] == "tiny" and proto["finished"]


def test_closing_mid_session_keeps_the_file(guided, qtbot, live_threads):
    win, g, out = guided()
    qtbot.waitUntil(lambda: g.runner.baseline is not None, timeout=10000)
    assert not g.driver.done
    win.close()
    assert not live_threads()
    with open_recording(out) as rec:
        assert rec.meta["complete"]
        assert rec.document("calibration")["rest"] is not None
        assert rec.document("protocol")["finished"] is False
        assert rec.document("scores") == []
        assert "Rest baseline: end" in [m.label for m in rec.markers]


def test_session_cli_screenshot(tmp_path, qapp, tiny, live_threads):
    out, png = tmp_path / "s.h5", tmp_path / "s.png"
    code = main(["session", "--protocol", str(tiny), "--source", "sim://?speed=4&seed=3",
                 "-o", str(out), "--subject", "P002", "--screenshot", str(png),
                 "--after", "1.5"])
    assert code == 0 and png.stat().st_size > 10_000
    assert not live_threads()
    with open_recording(out) as rec:
        assert rec.meta["subject"] == "P002"
        assert rec.document("protocol")["name"] == "tiny"
        assert "Signal check: check" in [m.label for m in rec.markers]


def test_session_cli_refuses_an_existing_output_before_opening(tmp_path, tiny):
    out = tmp_path / "exists.h5"
    out.write_bytes(b"")
    assert main(["session", "--protocol", str(tiny), "-o", str(out)]) == 2


def test_scores_in_plain_words(tiny):
    s = {"rep": 2, "n_reps": 3, "pct_in_band": 68.2, "pct_below_ceiling": 90.4,
         "shape": "hold", "step": "Gentle smile", "symmetry_ratio": 0.5}
    assert score_words(s, ("orbicularis_oculi",)) == (
        "Rep 2 of 3: 68 % in the band, eye stayed quiet 90 %")
    mirror = {**s, "shape": "mirror", "pct_below_ceiling": None}
    assert score_words(mirror) == "Rep 2 of 3: followed the healthy side 68 % of the time"
    assert score_words({"rep": 1, "n_reps": 1}) == "Rep 1 of 1: no clean signal to score"
    lines = summary_words([s, {**s, "rep": 3, "pct_in_band": 50.0}], load_protocol(tiny))
    assert lines == ["Gentle smile: 2 reps, 59 % in the band on average, eye quiet 90 %, "
                     "affected side at 50 % of the healthy side"]


# --------------------------------------------------------------------------- issue 12
# The patient is never shown a level or praise from a channel that cannot be trusted.

def test_electrode_off_shows_check_electrode_instead_of_a_bar(make_window, qtbot):
    win = make_window("sim://?speed=2&seed=5&electrode_off=2&montage=face6", view="feedback")
    view = win.feedback_view
    eye = next(r for r in view.rows if r.muscle == "orbicularis_oculi")
    qtbot.waitUntil(lambda: eye.blocked != "", timeout=10000)
    assert eye.blocked == "Check electrode — please wait"
    assert eye.bars.blocked == eye.blocked  # no bars and no percentages are painted
    assert eye.message.text() == "⚠ Check electrode — please wait"
    assert not eye.affected_curve.isVisible() and not eye.healthy_curve.isVisible()
    assert view.states[2].state == "bad" and "flat line" in view.states[2].reason
    for _ in range(10):  # it stays so: never "Stay relaxed here" on a flat channel
        qtbot.wait(50)
        assert "relaxed" not in eye.message.text() and eye.blocked
    others = [r for r in view.rows if r is not eye]
    assert all(r.blocked == "" for r in others)


def test_unplugged_board_tells_the_patient_to_wait(make_window, qtbot, tmp_path):
    import subprocess
    import sys

    link = tmp_path / "ttyVB"
    with subprocess.Popen(
            [sys.executable, "-m", "emgfb", "virtual-board", "--link", str(link), "--channels",
             "6", "--faults", "vanish_after=2"], stdout=subprocess.PIPE, text=True) as board:
        _unplugged_view(make_window, qtbot, board, link)


def _unplugged_view(make_window, qtbot, board, link) -> None:
    try:
        assert board.stdout.readline().strip()  # the port: the board is up
        win = make_window(f"serial://{link}?reset_wait=0&reconnect=1", view="feedback")
        view = win.feedback_view
        qtbot.waitUntil(lambda: win.model.newest_index > 0, timeout=10000)
        qtbot.waitUntil(lambda: all(r.blocked == "No signal — please wait"
                                    for r in view.rows), timeout=15000)
        for r in view.rows:
            assert r.message.text() == "○ No signal — please wait"
            assert r.bars.blocked and not r.affected_curve.isVisible()
    finally:
        board.terminate()
        board.wait(timeout=10)


def test_guided_window_fits_a_1366x768_laptop(guided, qtbot):
    win, g, _ = guided()
    win.resize(1366, 768)
    qtbot.waitUntil(lambda: g.driver.runner.elapsed_s > 0.5, timeout=10000)
    assert win.width() == 1366 and win.height() == 768
    assert win.minimumSizeHint().width() <= 1366 and win.minimumSizeHint().height() <= 720
    right = win.mapToGlobal(win.rect().topRight()).x()
    for w in (g.panel.rep, g.panel.countdown):  # the rep counter and the countdown show
        assert w.mapToGlobal(w.rect().topRight()).x() <= right
    plot = win.feedback_view.rows[0].plot
    assert plot.mapToGlobal(plot.rect().topRight()).x() <= right  # the course ahead too
