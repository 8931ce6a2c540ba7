"""SourcePump: the one loop that reads a source, stepped by hand (no threads)."""

from __future__ import annotations

import numpy as np
import pytest

from emgfb.acquisition.source import Source
from emgfb.live.pump import PumpEnd, SourcePump
from emgfb.records import BoardInfo, Chunk

INFO = BoardInfo("1.0.0", "fake", 2, 100.0, 10, 5000.0, "EMGFB fake")


class ScriptedSource(Source):
    """Hands out scripted chunks of 10 ticks; then ``after`` says what it does."""

    def __init__(self, n_chunks: int, after: str = "silent") -> None:
        super().__init__()
        self._info = INFO
        self.url = "fake://"
        self.left, self.after, self.next_tick = n_chunks, after, 0
        self.status.state = "streaming"

    def start(self) -> None:
        self.status.state = "streaming"

    def read(self, timeout: float | None = 0.1) -> Chunk | None:
        if self.left == 0:
            if self.after == "fail":
                self.status.state, self.status.detail = "failed", "board came back changed"
            return None
        self.left -= 1
        tick = np.arange(self.next_tick, self.next_tick + 10)
        self.next_tick += 10
        return Chunk(tick, np.zeros((10, 2), np.uint16), np.zeros(10, bool), 0.0)

    @property
    def finished(self) -> bool:
        return self.after == "finish" and self.left == 0

    def stop(self) -> None:
        self.status.state = "stopped"


def test_cuts_the_stream_at_exactly_seconds_of_signal():
    src = ScriptedSource(100)
    got = []
    pump = SourcePump(src, [got.append], seconds=0.25)
    while not pump.done:
        pump.step(0)
    assert pump.end is PumpEnd.SECONDS and pump.problem is None
    assert np.concatenate([c.tick for c in got]).tolist() == list(range(25))


def test_a_failing_source_ends_the_run_with_its_reason():
    pump = SourcePump(ScriptedSource(3, after="fail"), seconds=10)
    while not pump.done:
        pump.step(0)
    assert pump.end is PumpEnd.FAILED and pump.samples == 30
    assert pump.problem == "fake://: board came back changed"


def test_a_finite_source_finishes_without_a_problem():
    pump = SourcePump(ScriptedSource(3, after="finish"))
    while not pump.done:
        pump.step(0)
    assert pump.end is PumpEnd.FINISHED and pump.problem is None and pump.samples == 30


def test_a_silent_source_ends_at_the_deadline(monkeypatch):
    import emgfb.live.pump as pump_mod

    now = [1000.0]
    monkeypatch.setattr(pump_mod.time, "monotonic", lambda: now[0])
    pump = SourcePump(ScriptedSource(2, after="silent"), seconds=1.0, grace_s=2.0)
    steps = 0
    while not pump.done:
        pump.step(0.1)
        now[0] += 0.1  # the board says nothing; the wall clock goes on
        steps += 1
    assert pump.end is PumpEnd.DEADLINE
    assert pump.problem == "fake://: only 0.2 s of 1 s arrived within 3 s"
    assert steps == pytest.approx(30, abs=1)


class PacedSource(ScriptedSource):
    """Chunks whose host receive times run ``pace`` times the board's nominal rate."""

    def __init__(self, n_chunks: int, pace: float, wall_slew_ppm: float | None = None) -> None:
        super().__init__(n_chunks)
        self.pace, self.slew = pace, wall_slew_ppm

    def read(self, timeout: float | None = 0.1) -> Chunk | None:
        chunk = super().read(timeout)
        if chunk is None:
            return None
        host = 1000.0 + (int(chunk.tick[-1]) + 1) / (INFO.fs * self.pace)
        if self.slew is None:
            return Chunk(chunk.tick, chunk.counts, chunk.overrun, host)
        # the wall clock is being slewed by time synchronisation; the steady clock is not
        wall = 2e9 + (host - 1000.0) * (1 + self.slew * 1e-6)
        return Chunk(chunk.tick, chunk.counts, chunk.overrun, wall, host_clock=host)


def _run_paced(pace: float, wall_slew_ppm: float | None = None) -> SourcePump:
    pump = SourcePump(PacedSource(300, pace, wall_slew_ppm), seconds=None)
    for _ in range(300):
        pump.step(0)
    return pump


def test_a_board_clock_off_by_3000_ppm_is_measured():
    pump = _run_paced(1.003)
    assert pump.rate is not None and abs(pump.rate.ppm - 3000.0) < 1.0
    assert pump.clock_document()["estimated"] is True


def test_the_rate_is_measured_on_the_steady_clock_not_the_slewed_wall_clock():
    # an NTP daemon slewing the wall clock by 500 ppm would otherwise bias it by as much
    pump = _run_paced(1.003, wall_slew_ppm=-500.0)
    assert pump.rate is not None and abs(pump.rate.ppm - 3000.0) < 1.0


def test_a_rate_no_board_clock_could_have_is_not_adopted(caplog):
    # a simulator paced at 1.5x real time once moved the mains filter to 33 Hz
    with caplog.at_level("WARNING", logger="emgfb.live.pump"):
        pump = _run_paced(1.5)
        doc = pump.clock_document()
    assert pump.rate is None and doc["estimated"] is False
    assert doc["reason"].startswith("implausible: measured +500000 ppm from nominal")
    said = [r.getMessage() for r in caplog.records if "beyond any board clock" in r.getMessage()]
    assert len(said) == 1 and "fake://" in said[0] and "not used" in said[0]
