"""The autopilot patient: a seeded, imperfect follower of the runner's cues.

This module owns :class:`AutopilotPatient`, which turns each :class:`~emgfb.exercises.
runner.Cue` into a muscle drive for the simulated board
(:meth:`emgfb.acquisition.simulator.FacialEmgModel.set_drive`). It follows the cues the way
a patient does, imperfectly: it reacts after a lag, its effort is a damped second-order
response (it overshoots a step and lags a ramp), it wobbles (seeded Ornstein-Uhlenbeck
noise), and it pushes harder than the target because the affected side it watches is
weak, so the healthy side overshoots. The weaker affected side and the oral-ocular
synkinesis (the eye firing with the smile) come from the model itself. Driven by the
cue's ticks, never a clock, so a run is reproducible. Imports numpy and
``exercises.runner`` (the :class:`Cue` record) only; the model is duck-typed.
"""

from __future__ import annotations

import collections
import logging
import math
from typing import Protocol as _Interface

import numpy as np

from emgfb.exercises.runner import Cue

log = logging.getLogger(__name__)


class DrivenModel(_Interface):
    """What the autopilot needs from a simulated face."""

    def set_drive(self, levels: dict[str, float] | None) -> None:
        """Set per-muscle drive levels 0..1."""


class AutopilotPatient:
    """Follow runner cues by steering a simulated face.

    Parameters
    ----------
    model
        The simulated face (``SimSource.model``).
    fs
        Sample rate of the cue ticks.
    seed
        Seed of the wobble.
    effort_level
        Drive (0..1) the patient uses for a reference contraction (= 100 %).
    compensation
        Factor by which the patient over-drives an exercise target (the affected side they
        watch is weak, so they push harder; the healthy side then overshoots).
    lag_s
        Reaction time to a cue.
    natural_hz, damping
        Second-order response of the effort (damping < 1 overshoots a step).
    noise
        Standard deviation of the wobble, as a fraction of the drive.
    noise_tau_s
        Time constant of the wobble.
    """

    def __init__(self, model: DrivenModel, fs: float, seed: int = 1, *,
                 effort_level: float = 0.8, compensation: float = 2.5, lag_s: float = 0.3,
                 natural_hz: float = 0.8, damping: float = 0.55, noise: float = 0.05,
                 noise_tau_s: float = 0.5):
        self.model = model
        self.fs = float(fs)
        self.effort_level = float(effort_level)
        self.compensation = float(compensation)
        self.lag_ticks = int(round(lag_s * self.fs))
        self.omega = 2 * math.pi * float(natural_hz)
        self.damping = float(damping)
        self.noise = float(noise)
        self.noise_tau_s = float(noise_tau_s)
        self._rng = np.random.default_rng(seed)
        self._history: collections.deque[tuple[int, dict[str, float]]] = collections.deque()
        self._level: dict[str, float] = {}
        self._speed: dict[str, float] = {}
        self._wobble = 0.0
        self._last_tick: int | None = None
        self.drive: dict[str, float] = {}

    def desired(self, cue: Cue) -> dict[str, float]:
        """The drive a perfect patient would use for ``cue`` (muscle -> 0..1)."""
        if cue.finished or cue.target_pct is None or not cue.target_muscles:
            return {}
        level = float(np.nan_to_num(cue.target_ahead_pct[0] if cue.target_ahead_pct
                                    else cue.target_pct)) / 100.0 * self.effort_level
        if cue.step_kind == "exercise":
            level *= self.compensation
        return {m: level for m in cue.target_muscles}

    def update(self, cue: Cue) -> dict[str, float]:
        """Advance to ``cue.tick`` and set the model's drive; returns the drive set."""
        self._history.append((cue.tick, self.desired(cue)))
        # react to what was asked lag_ticks ago: the newest request at or before then
        due = cue.tick - self.lag_ticks
        while len(self._history) > 1 and self._history[1][0] <= due:
            self._history.popleft()
        aim = self._history[0][1] if self._history[0][0] <= due else {}
        dt = 0.0 if self._last_tick is None else (cue.tick - self._last_tick) / self.fs
        self._last_tick = cue.tick
        if dt > 0:
            decay = math.exp(-dt / self.noise_tau_s)
            self._wobble = self._wobble * decay + math.sqrt(1 - decay * decay) * float(
                self._rng.standard_normal()) * self.noise
        muscles = set(aim) | set(self._level)
        for m in sorted(muscles):
            x, v, goal = self._level.get(m, 0.0), self._speed.get(m, 0.0), aim.get(m, 0.0)
            steps = max(1, int(math.ceil(dt / 0.005)))  # stable integration in 5 ms steps
            h = dt / steps
            for _ in range(steps):
                v += h * (self.omega ** 2 * (goal - x) - 2 * self.damping * self.omega * v)
                x += h * v
            self._level[m], self._speed[m] = x, v
        self.drive = {m: float(min(1.0, max(0.0, x * (1.0 + self._wobble))))
                      for m, x in self._level.items() if x * (1.0 + self._wobble) > 1e-4}
        self.model.set_drive(self.drive)
        return self.drive
