"""The patient and set-up views obey the one channel state (issue 12), deterministically.

A small stand-in for a live session publishes a fixed activation of every channel and
answers ``channel_states()`` from a real :class:`~emgfb.dsp.ChannelStateTracker` fed
seeded signals, so each test decides exactly what the tracker sees: a relaxed face, an
electrode off (flat), or a board that stopped sending. Nothing runs in the background.
"""

from __future__ import annotations

import numpy as np
import pytest

from emgfb.dsp import ChannelStateTracker, load_dsp_config
from emgfb.dsp.quality import BAD, GOOD, HINTS, NO_SIGNAL
from emgfb.gui.feedback_view import FeedbackView, patient_words
from emgfb.gui.model import DisplayModel
from emgfb.gui.setup_view import SetupView
from emgfb.montage import default_montage

FS = 1000.0
OOC_L = 2  # face6: FRO-L FRO-R OOC-L OOC-R ZYG-L ZYG-R; the eye is the smile's ceiling row


class TrackedSession:
    """Just what the views read from a :class:`~emgfb.live.LiveSession`, with the channel
    states of a real tracker."""

    def __init__(self, flat: tuple[int, ...] = (), seed: int = 7):
        self.montage = default_montage(6)
        self.n_channels, self.fs, self.generation = 6, FS, 0
        self.tracker = ChannelStateTracker(load_dsp_config(), FS, 6, 1023, 2.0)
        rng = np.random.default_rng(seed)
        uv = 2.0 * rng.standard_normal((int(3 * FS), 6))  # relaxed face: 2 µV RMS
        uv[:, list(flat)] = 0.0
        counts = np.round(512 + uv / 2.0)
        for i in range(0, len(uv), 50):
            self.tracker.update(uv[i:i + 50], counts[i:i + 50])
        self.newest_index = len(uv) - 1
        self.activation = np.full((len(uv), 6), 0.05)  # well below every ceiling
        self.seconds_without_data = 0.0

    def read(self, stream: str, since: int) -> tuple[int, np.ndarray]:
        return since, self.activation[since:]

    def host_time_of(self, index: int) -> float:
        return index / FS

    def channel_states(self) -> list:
        return self.tracker.current(self.seconds_without_data)


def _feedback(qtbot, session: TrackedSession) -> FeedbackView:
    model = DisplayModel(session)
    view = FeedbackView(model)
    qtbot.addWidget(view)
    model.update()
    view.refresh()
    return view


def _eye(view: FeedbackView):
    return next(r for r in view.rows if r.muscle == "orbicularis_oculi")


def test_a_trusted_eye_channel_shows_its_bar_and_praise(qtbot) -> None:
    view = _feedback(qtbot, TrackedSession())
    assert [s.state for s in view.states] == [GOOD] * 6
    eye = _eye(view)
    assert eye.blocked == "" and eye.message.text() == "✓ Stay relaxed here"


def test_an_electrode_off_shows_check_electrode_never_a_bar_or_praise(qtbot) -> None:
    view = _feedback(qtbot, TrackedSession(flat=(OOC_L,)))
    state = view.states[OOC_L]
    assert state.state == BAD and state.reason == HINTS["flat"]
    eye = _eye(view)
    assert eye.blocked == "Check electrode — please wait" == patient_words(state)
    assert eye.bars.blocked == eye.blocked  # no bars, no percentages
    assert eye.message.text() == "⚠ Check electrode — please wait"
    assert not eye.affected_curve.isVisible() and not eye.healthy_curve.isVisible()
    assert all(r.blocked == "" for r in view.rows if r is not eye)


def test_a_board_that_stopped_sending_tells_every_row_to_wait(qtbot) -> None:
    session = TrackedSession(flat=(OOC_L,))
    view = _feedback(qtbot, session)
    session.seconds_without_data = 2.0  # beyond [quality] stale_s
    view.refresh()
    assert {s.state for s in view.states} == {NO_SIGNAL}
    assert "no data from the board for 2.0 s" in view.states[0].reason
    for r in view.rows:  # no signal wins over the flat eye: the patient only waits
        assert r.blocked == "No signal — please wait"
        assert r.message.text() == "○ No signal — please wait"
        assert not r.affected_curve.isVisible()
    session.seconds_without_data = 0.0  # data again: the trusted rows come back
    view.refresh()
    assert _eye(view).blocked and all(r.blocked == "" for r in view.rows
                                      if r is not _eye(view))


def test_nothing_assessed_yet_is_no_signal(qtbot) -> None:
    session = TrackedSession()
    session.tracker.reset()
    view = _feedback(qtbot, session)
    assert all(r.blocked == "No signal — please wait" for r in view.rows)


@pytest.mark.parametrize("idle", [0.0, 2.0])
def test_setup_badges_show_the_trackers_state_and_reason(qtbot, idle: float) -> None:
    session = TrackedSession(flat=(OOC_L,))
    session.seconds_without_data = idle
    view = SetupView(DisplayModel(session), mains_power=False)
    qtbot.addWidget(view)
    view.refresh_quality()
    expected = [s.state for s in session.channel_states()]
    assert view.badge_states() == expected
    if idle:
        assert expected == [NO_SIGNAL] * 6
        assert view.cards[0].hint.text() == (
            "Electrode 1: no data from the board for 2.0 s: check the USB cable and the "
            "board's power; emgfb reconnects by itself.")
    else:
        assert expected == [GOOD, GOOD, BAD, GOOD, GOOD, GOOD]
        assert view.cards[OOC_L].hint.text() == f"Electrode 3: {HINTS['flat']}."
        assert view.cards[0].hint.text() == "Signal looks good."
