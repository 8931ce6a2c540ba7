"""A guided session on a running live session: runner fed from the envelope ring buffer.

This module owns :class:`GuidedDriver`, the Qt-free glue between a started
:class:`~emgfb.live.LiveSession` (duck-typed: ``read``, ``add_marker``, ``set_document``,
``set_normalisation``, ``stop_record``, ``channel_states``, ``montage``, ``fs``,
``source``, ``dsp_config``) and a :class:`~emgfb.exercises.runner.SessionRunner`. A
display timer (or a test) calls :meth:`GuidedDriver.poll`: it lets the autopilot patient
(simulated boards) react to the current cue, reads the envelope samples published since
the previous poll (from the first poll on: the protocol starts when its cues can be seen),
feeds them to the runner with each channel's state
(:meth:`~emgfb.live.LiveSession.channel_states`: the session's one
:class:`~emgfb.dsp.ChannelStateTracker`, ``no_signal`` when data stops), and routes its
events: markers go to the session (and so the recording) at the runner's ticks, the
calibration, protocol and scores documents to the recording as
soon as they change. Once calibrated, the session's live activation scale is set to the
runner's (% of the healthy homologous reference), so the feedback view's bars and traces
share the target's scale. :func:`score_words` and :func:`summary_words` put scores into
plain words for the patient. Imports ``exercises``, ``dsp`` and numpy only; never Qt.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from emgfb.errors import EmgfbError
from emgfb.exercises.autopilot import AutopilotPatient
from emgfb.exercises.protocol import Protocol
from emgfb.exercises.runner import RunnerEvent, SessionRunner
from emgfb.exercises.scoring import valid_reps

log = logging.getLogger(__name__)

#: Plain words for a suppression muscle ("eye stayed quiet").
QUIET_WORDS = {"orbicularis_oculi": "eye", "orbicularis_oris": "lips",
               "zygomaticus_major": "cheek", "frontalis": "brow"}


class GuidedDriver:
    """Run ``protocol`` on the envelopes of a started live session.

    Lifecycle: construct on a started session that records (the protocol document is
    stored at once) -> :meth:`poll` on a timer until :attr:`done` -> :meth:`store_documents`
    (also done on finishing; call it before stopping the session when closing early).
    When the protocol finishes, the documents are stored and the recording is finished;
    the session itself keeps running.

    Parameters
    ----------
    session
        A started :class:`~emgfb.live.LiveSession` whose montage the protocol fits.
    protocol
        A validated protocol.
    autopilot
        On a simulated board (its source has a ``model``), let the
        :class:`~emgfb.exercises.autopilot.AutopilotPatient` follow the cues.
    seed
        Seed of the autopilot patient.
    finish_recording
        Finish the recording when the protocol ends.
    """

    def __init__(self, session: Any, protocol: Protocol, *, autopilot: bool = True,
                 seed: int = 1, finish_recording: bool = True):
        self.session = session
        cal = getattr(session.dsp_config, "calibration", None)
        window_s = cal.reference_window_ms / 1000.0 if cal is not None else 0.5
        delay = 0.0
        if cal is not None:
            from emgfb.dsp.metrics import envelope_delay_s

            delay = envelope_delay_s(session.dsp_config, session.fs)
        self.runner = SessionRunner(protocol, session.montage, session.fs,
                                    reference_window_s=window_s, pipeline_delay_s=delay)
        model = session.source.face if session.source is not None else None
        self.model = model if autopilot else None
        self.pilot = (AutopilotPatient(self.model, session.fs, seed)
                      if self.model is not None else None)
        self.finish_recording = finish_recording
        self.error: str | None = None
        self.done = False
        self._next: int | None = None
        session.set_document("protocol", self.runner.protocol_document())

    @property
    def cue(self) -> Any:
        """The runner's current :class:`~emgfb.exercises.runner.Cue`."""
        return self.runner.cue

    def poll(self) -> list[RunnerEvent]:
        """Feed the runner what was published since the last poll; route its events.

        Never raises for an unusable calibration: the session then ends, :attr:`error`
        says why, and the documents measured so far are stored.
        """
        if self.done:
            return []
        if self.pilot is not None:
            self.pilot.update(self.runner.cue)
        s = self.session
        if s.newest_index < 0 or (self._next is not None and self._next > s.newest_index):
            return []
        if self._next is None:
            # the protocol starts now, with the patient in front of the cues: samples that
            # arrived before the first poll (window still opening) are not run through it
            self._next = s.newest_index
        first, env = s.read("envelope", self._next)
        if not len(env):
            return []
        ticks = np.arange(first, first + len(env), dtype=np.int64)
        self._next = first + len(env)
        states = s.channel_states()
        if len(states) != self.runner.n_channels:  # no tracker yet: keep the last ones
            states = None
        try:
            events = self.runner.feed(ticks, env, states)
        except EmgfbError as exc:  # CalibrationError: the session cannot go on
            self.error = str(exc)
            log.error("guided session stopped: %s", exc)
            self._end()
            return []
        for ev in events:
            self._route(ev)
        return events

    def override_check(self) -> None:
        """The clinician lets the signal check pass (a marker says so)."""
        self.runner.override_check("the clinician")

    def _route(self, ev: RunnerEvent) -> None:
        s, r = self.session, self.runner
        if ev.kind == "marker" and ev.marker is not None:
            s.add_marker(ev.marker.label, ev.marker.kind, tick=ev.marker.tick)
        elif ev.kind == "calibration":
            s.set_document("calibration", r.calibration_document())
            self._apply_normalisation()
        elif ev.kind == "score":
            s.set_document("scores", r.scores)
        elif ev.kind == "step":
            s.set_document("protocol", r.protocol_document())
        elif ev.kind == "finished":
            self._end()

    def _end(self) -> None:
        self.done = True
        if self.model is not None:
            self.model.set_drive(None)  # the simulated board's own script resumes
        self.store_documents()
        if self.finish_recording:
            path = self.session.stop_record()
            log.info("guided session %s: recording finished: %s",
                     self.runner.protocol.name, path)

    def store_documents(self) -> None:
        """Store the calibration, protocol and scores documents as they stand."""
        r = self.runner
        self.session.set_document("calibration", r.calibration_document())
        self.session.set_document("protocol", r.protocol_document())
        self.session.set_document("scores", r.scores)

    def _apply_normalisation(self) -> None:
        """Live activation in the runner's scale: each side's activity above its rest
        level (in power) relative to the healthy reference's, as
        :func:`emgfb.dsp.percent_of_healthy`."""
        from emgfb.dsp.calibration import subtract_rest

        r = self.runner
        if r.baseline is None:
            return
        rest = np.asarray(r.baseline.level, dtype=float)
        norm = self.session.normalisation
        ref = np.array(norm.reference_uv, dtype=float) if norm is not None else rest + 200.0
        ref = np.where(ref > rest, ref, rest + 200.0)
        for _muscle, a, h in r.pairs:
            span = float(subtract_rest(r.reference_uv[h], rest[h]))
            if np.isfinite(span) and span > 0:
                ref[a], ref[h] = np.hypot(rest[a], span), np.hypot(rest[h], span)
        self.session.set_normalisation(rest, ref)

    def ceiling_activation(self, index: int) -> float | None:
        """Ceiling of the cue's ``index``-th suppression channel in activation units."""
        from emgfb.dsp.calibration import subtract_rest

        cue = self.runner.cue
        if index >= len(cue.ceiling_uv):
            return None
        pct = cue.ceiling_pct[index]
        if pct is not None:
            return pct / 100.0
        norm = self.session.normalisation
        ch = cue.suppression_channels[index]
        span = float(subtract_rest(norm.reference_uv[ch], norm.rest_uv[ch]))
        return (float(subtract_rest(cue.ceiling_uv[index], norm.rest_uv[ch])) / span
                if span > 0 else None)


def _quiet_word(muscles: Any) -> str:
    return " and ".join(QUIET_WORDS.get(m, m.replace("_", " ")) for m in muscles)


def score_words(score: dict[str, Any], suppress: Any = ()) -> str:
    """One rep's score for the patient, e.g. ``"Rep 2 of 3: 68 % in the band, eye stayed
    quiet 90 %"``."""
    head = f"Rep {score['rep']} of {score['n_reps']}: "
    if not score.get("valid", True):
        return head + "not scored - the signal could not be trusted"
    parts = []
    band = score.get("pct_in_band")
    if band is not None:
        parts.append(f"followed the healthy side {band:.0f} % of the time"
                     if score.get("shape") == "mirror" else f"{band:.0f} % in the band")
    quiet = score.get("pct_below_ceiling")
    if quiet is not None:
        parts.append(f"{_quiet_word(suppress) or 'quiet muscle'} stayed quiet {quiet:.0f} %")
    return head + (", ".join(parts) if parts else "no clean signal to score")


def summary_words(scores: list[dict[str, Any]], protocol: Protocol) -> list[str]:
    """Per exercise, one plain line: reps, mean % in the band, quiet %, symmetry."""
    steps = {s.label: s for s in protocol.steps}
    lines = []
    for label in dict.fromkeys(s["step"] for s in scores):
        every = [s for s in scores if s["step"] == label]
        reps = valid_reps(every)
        if not reps:
            lines.append(f"{label}: no repetition could be scored (signal not trustworthy)")
            continue

        def mean(key: str, reps: list = reps) -> float | None:
            vals = [s[key] for s in reps if s.get(key) is not None]
            return sum(vals) / len(vals) if vals else None

        parts = [f"{len(reps)} rep{'s' if len(reps) != 1 else ''}"
                 + (f" of {len(every)} scored" if len(reps) < len(every) else "")]
        if (band := mean("pct_in_band")) is not None:
            parts.append(f"{band:.0f} % in the band on average")
        if (quiet := mean("pct_below_ceiling")) is not None:
            step = steps.get(label)
            word = _quiet_word(step.suppress) if step is not None else "quiet muscle"
            parts.append(f"{word} quiet {quiet:.0f} %")
        if (ratio := mean("symmetry_ratio")) is not None:
            parts.append(f"affected side at {ratio * 100:.0f} % of the healthy side")
        lines.append(f"{label}: " + ", ".join(parts))
    return lines
