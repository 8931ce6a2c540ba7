"""Exercises room: guided retraining sessions (protocols, runner, scoring, autopilot).

This package owns the session scripts (``emgfb/configs/protocols/*.toml``, validated by
:mod:`~emgfb.exercises.protocol`), the target shapes a patient follows
(:mod:`~emgfb.exercises.targets`), the pure tick-driven :class:`SessionRunner` that cues
the patient, inserts markers, calibrates and scores every repetition
(:mod:`~emgfb.exercises.runner`, :mod:`~emgfb.exercises.scoring`), the simulated
"autopilot patient" (:mod:`~emgfb.exercises.autopilot`) and the synchronous headless
session loop (:mod:`~emgfb.exercises.headless`). It may import ``config``, ``montage``,
``errors``, ``dsp``, ``acquisition`` and ``recording``; never the GUI. Only
:mod:`~emgfb.exercises.headless` touches acquisition and recording.
"""

from emgfb.exercises.protocol import Ceiling, Protocol, Step, load_protocol
from emgfb.exercises.runner import Cue, RunnerEvent, SessionRunner
from emgfb.exercises.targets import Target

__all__ = ["Ceiling", "Cue", "Protocol", "RunnerEvent", "SessionRunner", "Step", "Target",
           "load_protocol"]
