"""Target shapes a patient follows during an exercise repetition.

This module owns :class:`Target`: the time course, in % of the healthy homologous
reference, of one repetition of an exercise (DOMAIN.md §4: ramp up 2-3 s, hold ~5 s at
20-40 %, ramp down). Three shapes exist:

``hold``
    ramp up from 0 to ``level_pct`` over ``ramp_up_s``, hold for ``hold_s``, ramp down to 0
    over ``ramp_down_s``.
``mirror``
    follow the healthy side live; the nominal course (drawn ahead, followed by the
    autopilot) is the ``hold`` trapezoid, but the scored target is the healthy channel's
    own % of reference as recorded.
``relax``
    stay at rest (0 %) for the whole repetition.

Pure numpy; imports nothing else from emgfb.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHAPES = ("hold", "mirror", "relax")


@dataclass(frozen=True)
class Target:
    """One repetition's target course.

    Attributes
    ----------
    shape
        ``"hold"``, ``"mirror"`` or ``"relax"``.
    level_pct
        Plateau in % of the healthy reference (0 for ``relax``).
    ramp_up_s, hold_s, ramp_down_s
        Phase durations in seconds (ramps may be 0).
    """

    shape: str
    level_pct: float
    ramp_up_s: float
    hold_s: float
    ramp_down_s: float

    @property
    def duration_s(self) -> float:
        """Length of one repetition (ramp up + hold + ramp down)."""
        return self.ramp_up_s + self.hold_s + self.ramp_down_s

    def phases(self) -> list[tuple[str, float]]:
        """``(phase, duration_s)`` of the repetition, zero-length phases left out."""
        out = [("ramp_up", self.ramp_up_s), ("hold", self.hold_s),
               ("ramp_down", self.ramp_down_s)]
        return [(name, d) for name, d in out if d > 0]

    def nominal(self, t_s: np.ndarray | float) -> np.ndarray:
        """Nominal target in % at ``t_s`` seconds after the repetition start.

        Outside ``[0, duration_s)`` the target is 0 (rest). For ``mirror`` this is the
        course the healthy side is asked to make; the scored target is the healthy side.
        """
        t = np.asarray(t_s, dtype=float)
        if self.shape == "relax" or self.level_pct == 0:
            return np.zeros_like(t)
        ru, h, rd = self.ramp_up_s, self.hold_s, self.ramp_down_s
        up = np.clip(t / ru, 0.0, 1.0) if ru > 0 else (t >= 0).astype(float)
        down_t = t - ru - h
        down = 1.0 - np.clip(down_t / rd, 0.0, 1.0) if rd > 0 else (down_t < 0).astype(float)
        inside = (t >= 0) & (t < self.duration_s)
        return np.where(inside, self.level_pct * np.minimum(up, down), 0.0)
