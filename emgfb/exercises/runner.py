"""The session runner: a pure, tick-driven state machine that runs a protocol.

This module owns :class:`SessionRunner`. It is fed envelope chunks with their absolute
ticks (:meth:`SessionRunner.feed`) and never looks at a clock, so the same data give the
same markers, calibration and scores whether they come live, from a headless simulation
or from a replay. From the protocol it lays out a timeline of phases in ticks (the first
tick fed is time 0); while the ticks advance it

* emits markers: kind ``"phase"`` at every phase start (``"<step label>: <phase>"``) and
  step end (``"<step label>: end"``), kind ``"rep"`` at every repetition start and end
  (``"<step label> rep i/n start"`` / ``"... end"``), kind ``"check"`` when the signal
  check waits, passes or is overridden, kind ``"calibration"`` when a reference is refused;
* holds the ``signal-check`` step until every channel the protocol uses is good (the
  channel states fed with the envelope: :class:`emgfb.dsp.ChannelState`, from the one
  :class:`~emgfb.dsp.ChannelStateTracker` of the stream), or the
  clinician overrides it (:meth:`SessionRunner.override_check`);
* computes the calibration: the rest baseline (:func:`emgfb.dsp.rest_baseline`) over the
  ``rest`` step, the reference contraction of both sides of each referenced muscle
  (:func:`emgfb.dsp.reference_contraction`) over each ``effort`` phase, refused and
  repeated (up to the step's ``retries``) when the healthy side does not clear rest
  (:func:`emgfb.dsp.calibration.check_reference`), and from then on normalises envelopes
  to % of the healthy homologous reference (:func:`emgfb.dsp.percent_of_healthy` with
  :meth:`emgfb.montage.Montage.pairs`);
* scores every repetition when it ends (:mod:`emgfb.exercises.scoring`), valid only if
  every channel it uses stayed good;
* publishes :attr:`SessionRunner.cue` for a feedback view or the autopilot patient.

It holds no Qt, no threads and no I/O. Imports ``dsp``, ``montage``, ``errors``,
``acquisition.source`` (the :class:`Marker` record) and the other ``exercises`` modules.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emgfb.dsp import (
    Baseline,
    percent_of_healthy,
    reference_contraction,
    rest_baseline,
)
from emgfb.dsp.calibration import check_reference, subtract_rest
from emgfb.dsp.quality import GOOD, ChannelState
from emgfb.errors import CalibrationError
from emgfb.exercises import scoring
from emgfb.exercises.protocol import VERBS, Protocol, Step
from emgfb.montage import Montage
from emgfb.records import Marker

log = logging.getLogger(__name__)

#: How far ahead :attr:`Cue.target_ahead_pct` looks, and its spacing, in seconds.
AHEAD_S = 5.0
AHEAD_STEP_S = 0.1
#: How long a signal check that waits for good channels is extended at a time, seconds.
CHECK_WAIT_STEP_S = 0.5


@dataclass(frozen=True)
class Segment:
    """One phase of the timeline, in ticks from the first tick fed (``[start, end)``)."""

    start: int
    end: int
    step_index: int
    phase: str
    rep: int
    rep_start: int  # start of this phase's repetition (rep > 0), else ``start``
    first_of_rep: bool = False
    last_of_rep: bool = False


@dataclass(frozen=True)
class RunnerEvent:
    """Something the runner did while consuming a chunk.

    Attributes
    ----------
    kind
        ``"marker"`` (store :attr:`marker`), ``"calibration"`` (the calibration document
        changed), ``"score"`` (a repetition was scored: :attr:`score`), ``"step"`` (a step
        ended; the protocol document changed) or ``"finished"``.
    tick
        Absolute tick it belongs to.
    marker, score
        Payload of ``marker`` / ``score`` events.
    """

    kind: str
    tick: int
    marker: Marker | None = None
    score: dict[str, Any] | None = None


@dataclass(frozen=True)
class Cue:
    """What the patient should do now, for a feedback view or the autopilot.

    Percentages are of the healthy homologous reference (0 = rest, 100 = reference);
    ``None``/NaN where not defined (before calibration, outside exercises).

    Attributes
    ----------
    tick
        Absolute tick the cue is valid from (the next tick expected).
    step_index, n_steps, step_label, step_kind, phase
        Where the session is; ``phase`` is one of ``check``, ``baseline``, ``prepare``,
        ``effort``, ``relax``, ``ramp_up``, ``hold``, ``ramp_down``, ``rest``, ``done``.
    text
        Instruction for the patient, e.g. ``"Slowly smile..."``.
    countdown_s
        Seconds left in the current phase.
    rep, n_reps
        Current repetition (1-based; 0 outside repetitions) and their number.
    exercise, shape
        Exercise name and target shape (``""`` outside exercises).
    target_muscles, suppress_muscles
        Muscles to contract (the reference muscle during a reference step) and to keep quiet.
    target_channel, healthy_channel, suppression_channels
        Channel indices: the affected side of the first target muscle, its healthy
        partner and the affected side of each suppression muscle.
    target_pct, band_pct
        Target now (100 during a reference effort) and the tolerance band (± % points).
    target_ahead_pct
        Target at ``tick + k * ahead_step_s * fs`` for k = 0 .. ``AHEAD_S / AHEAD_STEP_S``
        (NaN where undefined). For ``mirror`` it is the nominal course.
    ahead_step_s
        Spacing of :attr:`target_ahead_pct`.
    level_pct, healthy_pct
        Latest valid normalised level of the target channel and its healthy partner.
    ceiling_uv, ceiling_pct
        Suppression ceilings per suppression channel (µV, and % where a reference exists).
    suppression_over
        True if a suppression channel's latest envelope is above its ceiling.
    last_score
        Scores of the last finished repetition (shown to the patient), or ``None``.
    finished
        True after the last step.
    channel_states
        The latest :class:`~emgfb.dsp.ChannelState` per channel (empty when none were
        fed).
    check_waiting
        Channels the signal check is waiting for (not good), while it waits.
    notice
        A line for the clinician, e.g. why a reference is being repeated.
    """

    tick: int
    step_index: int
    n_steps: int
    step_label: str
    step_kind: str
    phase: str
    text: str
    countdown_s: float
    rep: int = 0
    n_reps: int = 0
    exercise: str = ""
    shape: str = ""
    target_muscles: tuple[str, ...] = ()
    suppress_muscles: tuple[str, ...] = ()
    target_channel: int | None = None
    healthy_channel: int | None = None
    suppression_channels: tuple[int, ...] = ()
    target_pct: float | None = None
    band_pct: float | None = None
    target_ahead_pct: tuple[float, ...] = ()
    ahead_step_s: float = AHEAD_STEP_S
    level_pct: float | None = None
    healthy_pct: float | None = None
    ceiling_uv: tuple[float, ...] = ()
    ceiling_pct: tuple[float | None, ...] = ()
    suppression_over: bool = False
    last_score: dict[str, Any] | None = None
    finished: bool = False
    channel_states: tuple[ChannelState, ...] = ()
    check_waiting: tuple[int, ...] = ()
    notice: str = ""


@dataclass
class _Reference:
    step: str
    muscle: str
    channels: list[int]
    start_tick: int
    end_tick: int
    peak_uv: list[float]
    mean_uv: list[float]


@dataclass
class _Window:
    """Rows collected for one calibration phase or repetition."""

    ticks: list[np.ndarray] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)

    def arrays(self, n_channels: int) -> tuple[np.ndarray, np.ndarray]:
        if not self.rows:
            return np.zeros(0, np.int64), np.zeros((0, n_channels))
        return np.concatenate(self.ticks), np.concatenate(self.rows)


class SessionRunner:
    """Run ``protocol`` on envelope chunks of ``montage`` sampled at ``fs``.

    Lifecycle: construct -> :meth:`feed` consecutive chunks (the first tick fed is the
    session start) until :attr:`finished` -> read :meth:`calibration_document`,
    :meth:`protocol_document` and :attr:`scores`.

    Parameters
    ----------
    protocol
        A validated protocol (:func:`~emgfb.exercises.protocol.load_protocol`); it is
        checked against ``montage`` here too.
    montage
        Channels and the affected side.
    fs
        Sample rate in Hz (ticks per second).
    reference_window_s
        RMS window of the reference contraction (DSP ``calibration.reference_window_ms``).
    rest_min_fraction
        Share of the rest step that must hold valid envelope samples.
    pipeline_delay_s
        The envelope pipeline's own delay (:func:`emgfb.dsp.metrics.envelope_delay_s`),
        taken out of tracking lags and stored with each score.
    check_timeout_s
        How long the signal check may wait for good channels before the session stops
        (:class:`CalibrationError`); ``None`` waits for the clinician.

    Raises
    ------
    ConfigError
        If the protocol uses a muscle the montage does not record on both sides.
    """

    def __init__(self, protocol: Protocol, montage: Montage, fs: float, *,
                 reference_window_s: float = 0.5, rest_min_fraction: float = 0.5,
                 pipeline_delay_s: float = 0.0, check_timeout_s: float | None = None):
        protocol.check_montage(montage)
        self.protocol = protocol
        self.montage = montage
        self.fs = float(fs)
        self.n_channels = montage.n_channels
        self.reference_window_s = float(reference_window_s)
        self.rest_min_fraction = float(rest_min_fraction)
        self.pipeline_delay_s = float(pipeline_delay_s)
        self.check_timeout_s = check_timeout_s
        self.pairs = montage.pairs()
        self._pair_of = {m: (a, h) for m, a, h in self.pairs}
        self._healthy_of = {a: h for _, a, h in self.pairs}
        self.segments = self._layout()
        self._reindex()
        self.used_channels = self._used_channels()
        self._ahead_offsets = np.round(
            np.arange(int(round(AHEAD_S / AHEAD_STEP_S)) + 1) * AHEAD_STEP_S * self.fs
        ).astype(np.int64)

        self.origin: int | None = None
        self._pos = 0  # next offset expected
        self._i = 0  # current segment
        self._entered = False
        self._window = _Window()
        self._rep_window = _Window()
        self.baseline: Baseline | None = None
        self.rest_info: dict[str, Any] | None = None
        self.post_rest_info: dict[str, Any] | None = None
        self.reference_uv = np.full(self.n_channels, np.nan)
        self.references: list[_Reference] = []
        self.closure_ocular_uv: np.ndarray | None = None
        self.scores: list[dict[str, Any]] = []
        self._step_ticks: dict[int, list[int | None]] = {}
        self._phase_ticks: list[dict[str, Any]] = []
        self._last_level = np.full(self.n_channels, np.nan)  # latest valid % per channel
        self._last_env = np.full(self.n_channels, np.nan)  # latest valid µV per channel
        self.finished = False
        self.states: list[ChannelState] | None = None  # latest state per channel
        self._check_overridden: str | bool = False  # who overrode the signal check
        self._check_waited = 0  # ticks the signal check was extended by
        self.check_info: dict[str, Any] | None = None
        self._rep_problems: dict[int, str] = {}
        self._ref_problems: dict[int, str] = {}
        self._retries: dict[int, int] = {}  # step index -> repeats done
        self.reference_failures: list[dict[str, Any]] = []
        self._notice = ""
        self._cue = self._make_cue()

    # ------------------------------------------------------------------ timeline
    def _layout(self) -> list[Segment]:
        segs: list[Segment] = []
        t = 0.0
        for si, step in enumerate(self.protocol.steps):
            phases = step.phases()
            rep_start = 0
            for pi, (phase, dur, rep) in enumerate(phases):
                start, end = round(t * self.fs), round((t + dur) * self.fs)
                t += dur
                if end <= start:
                    continue
                prev_rep = phases[pi - 1][2] if pi else 0
                next_rep = phases[pi + 1][2] if pi + 1 < len(phases) else 0
                first = rep > 0 and prev_rep != rep
                if first:
                    rep_start = start
                segs.append(Segment(start, end, si, phase, rep,
                                    rep_start if rep else start, first,
                                    rep > 0 and next_rep != rep))
        return segs

    def _reindex(self) -> None:
        self._starts = [s.start for s in self.segments]
        self._starts_arr = np.array(self._starts, dtype=np.int64)
        self.total_ticks = self.segments[-1].end if self.segments else 0

    def _used_channels(self) -> list[int]:
        """Both sides of every muscle the protocol contracts or keeps quiet."""
        muscles: set[str] = set()
        for step in self.protocol.steps:
            muscles.update(step.target)
            muscles.update(step.suppress)
            if step.muscle:
                muscles.add(step.muscle)
        return sorted(ch for m in muscles if m in self._pair_of for ch in self._pair_of[m])

    def _shift(self, after: int, ticks: int, extend_current: bool) -> None:
        """Move every segment after index ``after`` by ``ticks`` (and stretch ``after``)."""
        segs = self.segments
        if extend_current:
            segs[after] = dataclasses.replace(segs[after], end=segs[after].end + ticks)
        for k in range(after + 1, len(segs)):
            sg = segs[k]
            segs[k] = dataclasses.replace(sg, start=sg.start + ticks, end=sg.end + ticks,
                                          rep_start=sg.rep_start + ticks)
        self._reindex()

    def _step(self, seg: Segment) -> Step:
        return self.protocol.steps[seg.step_index]

    @property
    def cue(self) -> Cue:
        """The current cue (valid for the next tick to be fed)."""
        return self._cue

    @property
    def elapsed_s(self) -> float:
        """Session time consumed so far."""
        return self._pos / self.fs

    # ------------------------------------------------------------------ feeding
    def feed(self, tick: np.ndarray, envelope_uv: np.ndarray,
             states: Sequence[ChannelState] | None = None) -> list[RunnerEvent]:
        """Consume the next envelope chunk.

        Parameters
        ----------
        tick
            Absolute ticks (int64, strictly increasing across calls; steps > 1 are gaps).
        envelope_uv
            ``(n, n_channels)`` envelopes in µV, NaN where invalid.
        states
            The channels' states for this chunk (the stream's
            :class:`~emgfb.dsp.ChannelStateTracker`, e.g.
            :meth:`emgfb.live.LiveSession.channel_states`); ``None`` keeps the previous
            ones (never fed: every channel counts as good).

        Returns
        -------
        list of RunnerEvent
            Markers, calibration updates, scores, step ends, in tick order.

        Raises
        ------
        CalibrationError
            If the rest baseline or a reference contraction is unusable.
        """
        tick = np.asarray(tick, dtype=np.int64)
        env = np.asarray(envelope_uv, dtype=float)
        if env.ndim != 2 or env.shape != (len(tick), self.n_channels):
            raise ValueError(f"envelope shape {env.shape}: expected ({len(tick)}, "
                             f"{self.n_channels})")
        if states is not None:
            if len(states) != self.n_channels:
                raise ValueError(f"{len(states)} channel states: expected {self.n_channels}")
            self.states = list(states)
        events: list[RunnerEvent] = []
        if not len(tick) or self.finished:
            return events
        if self.origin is None:
            self.origin = int(tick[0])
        off = tick - self.origin
        lo, n = 0, len(tick)
        while self._i < len(self.segments):
            seg = self.segments[self._i]
            if not self._entered:
                self._enter(seg, events)
            hi = lo + int(np.searchsorted(off[lo:], seg.end, side="left"))
            if hi > lo and self._collects(seg):
                self._window.ticks.append(tick[lo:hi])
                self._window.rows.append(env[lo:hi])
            if hi > lo:
                self._note_states(seg)
            lo = hi
            if lo < n or off[-1] >= seg.end - 1:
                if self._hold(seg, events):
                    continue
                self._leave(seg, events)
                self._i += 1
                self._entered = False
            else:
                break
        self._pos = max(self._pos, int(off[-1]) + 1)
        self._track_levels(env)  # after the loop: a calibration may have just finished
        if self._i >= len(self.segments) and not self.finished:
            self.finished = True
            events.append(RunnerEvent("finished", self.origin + self.total_ticks))
            log.info("session %s finished", self.protocol.name)
        self._cue = self._make_cue()
        return events

    def _problem(self, ch: int) -> str | None:
        """Why channel ``ch`` is not good now (``None`` if it is, or nothing is known)."""
        if self.states is None:
            return None
        v = self.states[ch]
        if v.state == GOOD:
            return None
        return f"{v.state.replace('_', ' ')}: {v.reason}" if v.reason else v.state

    def _note_states(self, seg: Segment) -> None:
        """Remember the first problem of each channel a repetition or reference uses."""
        step = self._step(seg)
        if seg.rep > 0:
            target, healthy, supp = self._channels(step)
            chans = [c for c in (target, healthy, *supp, self._ocular_channel(step))
                     if c is not None]
            for ch in chans:
                why = self._problem(ch)
                if why is not None:
                    self._rep_problems.setdefault(ch, why)
        elif step.kind == "reference" and seg.phase == "effort":
            for ch in self._pair_of[step.muscle]:
                why = self._problem(ch)
                if why is not None:
                    self._ref_problems.setdefault(ch, why)

    def check_blockers(self) -> list[int]:
        """Channels the protocol uses that are not good now (what the signal check waits
        for); empty when nothing is known."""
        return [ch for ch in self.used_channels if self._problem(ch) is not None]

    def override_check(self, who: str = "the clinician") -> None:
        """Let the signal check pass although a channel is not good. When the check ends
        (at once if it is waiting) a marker names who overrode it and what was wrong."""
        if not self._check_overridden:
            self._check_overridden = who

    @property
    def check_overridden(self) -> bool:
        """True once the clinician let the signal check pass."""
        return bool(self._check_overridden)

    def _hold(self, seg: Segment, events: list[RunnerEvent]) -> bool:
        """At the end of a signal check: extend it while a used channel is not good."""
        if seg.phase != "check":
            return False
        blockers = self.check_blockers()
        what = "; ".join(f"{self.montage.labels[c]} {self._problem(c)}" for c in blockers)
        tick = self._abs(seg.end)
        if not blockers or self._check_overridden:
            overridden = bool(blockers)
            self.check_info = {"passed": True, "overridden": overridden,
                               "waited_s": self._check_waited / self.fs,
                               "channels": {self.montage.labels[c]: self._problem(c)
                                            for c in self.used_channels}}
            if overridden:
                label = f"signal check overridden by {self._check_overridden} ({what})"
                log.warning("%s", label)
                events.append(RunnerEvent("marker", tick, Marker(tick, label, "check")))
            elif self._check_waited:
                events.append(RunnerEvent("marker", tick, Marker(
                    tick, "signal check passed", "check")))
            return False
        if not self._check_waited:
            events.append(RunnerEvent("marker", tick, Marker(
                tick, f"signal check waiting: {what}", "check")))
            log.warning("signal check waiting: %s", what)
        if self.check_timeout_s is not None and self._check_waited >= (
                self.check_timeout_s * self.fs):
            self.check_info = {"passed": False, "overridden": False,
                               "waited_s": self._check_waited / self.fs,
                               "channels": {self.montage.labels[c]: self._problem(c)
                                            for c in self.used_channels}}
            raise CalibrationError(
                f"signal check: {what} after waiting {self._check_waited / self.fs:.0f} s; "
                "fix the electrode or override the check")
        step_ticks = max(1, round(CHECK_WAIT_STEP_S * self.fs))
        self._check_waited += step_ticks
        self._shift(self._i, step_ticks, extend_current=True)
        return True

    def _collects(self, seg: Segment) -> bool:
        kind = self._step(seg).kind
        return (kind in ("rest", "post-rest") and seg.phase == "baseline") or (
            kind == "reference" and seg.phase == "effort") or seg.rep > 0

    def _abs(self, offset: int) -> int:
        assert self.origin is not None
        return self.origin + offset

    def _enter(self, seg: Segment, events: list[RunnerEvent]) -> None:
        self._entered = True
        step = self._step(seg)
        self._step_ticks.setdefault(seg.step_index, [self._abs(seg.start), None])
        self._phase_ticks.append({"step": step.label, "phase": seg.phase, "rep": seg.rep,
                                  "start_tick": self._abs(seg.start), "end_tick": None})
        self._window = _Window()
        events.append(RunnerEvent("marker", self._abs(seg.start),
                                  Marker(self._abs(seg.start), f"{step.label}: {seg.phase}",
                                         "phase")))
        if seg.first_of_rep:
            events.append(RunnerEvent("marker", self._abs(seg.start), Marker(
                self._abs(seg.start), f"{step.label} rep {seg.rep}/{step.reps} start", "rep")))
            self._rep_window = _Window()
            self._rep_problems = {}
        step_kind = step.kind
        if step_kind == "reference" and seg.phase == "effort":
            self._ref_problems = {}

    def _leave(self, seg: Segment, events: list[RunnerEvent]) -> None:
        step = self._step(seg)
        end = self._abs(seg.end)
        self._phase_ticks[-1]["end_tick"] = end
        ticks, rows = self._window.arrays(self.n_channels)
        if step.kind in ("rest", "post-rest") and seg.phase == "baseline":
            self._finish_rest(step, seg, rows)
            events.append(RunnerEvent("calibration", end))
        elif step.kind == "reference" and seg.phase == "effort":
            if self._finish_reference(step, seg, rows, events):
                self._notice = ""
            events.append(RunnerEvent("calibration", end))
        if seg.rep > 0:
            self._rep_window.ticks.append(ticks)
            self._rep_window.rows.append(rows)
            if seg.last_of_rep:
                events.append(RunnerEvent("marker", end, Marker(
                    end, f"{step.label} rep {seg.rep}/{step.reps} end", "rep")))
                score = self._score(step, seg)
                self.scores.append(score)
                events.append(RunnerEvent("score", end, score=score))
        last_of_step = (self._i + 1 >= len(self.segments)
                        or self.segments[self._i + 1].step_index != seg.step_index)
        if last_of_step:
            self._step_ticks[seg.step_index][1] = end
            events.append(RunnerEvent("marker", end, Marker(end, f"{step.label}: end", "phase")))
            events.append(RunnerEvent("step", end))

    # ------------------------------------------------------------------ calibration
    def _finish_rest(self, step: Step, seg: Segment, rows: np.ndarray) -> None:
        need = self.rest_min_fraction * (seg.end - seg.start) / self.fs
        try:
            base = rest_baseline(rows if len(rows) else np.zeros((0, self.n_channels)),
                                 self.fs, min_duration_s=need)
        except CalibrationError as exc:
            if step.kind == "post-rest":  # the session is over: keep what was measured
                log.warning("post-rest baseline not usable: %s", exc)
                return
            raise CalibrationError(f"step {step.label!r}: {exc}") from None
        info = {"step": step.label, "start_tick": self._abs(seg.start),
                "end_tick": self._abs(seg.end), "mean_uv": base.mean.tolist(),
                "sd_uv": base.sd.tolist(), "n_samples": base.n_samples.tolist()}
        if step.kind == "rest":
            self.baseline, self.rest_info = base, info
        else:
            self.post_rest_info = info
        log.info("%s: rest mean %s uV", step.label, np.round(base.mean, 2).tolist())

    def _finish_reference(self, step: Step, seg: Segment, rows: np.ndarray,
                          events: list[RunnerEvent]) -> bool:
        """Measure a reference; refuse it (and repeat the step) when the healthy side does
        not clear rest clearly. Returns True when accepted."""
        a, h = self._pair_of[step.muscle]
        chans = [a, h]
        if not len(rows):
            raise CalibrationError(f"step {step.label!r}: no envelope samples in the effort")
        try:
            peak = reference_contraction(rows[:, chans], self.fs, self.reference_window_s)
        except CalibrationError as exc:
            raise CalibrationError(f"step {step.label!r}: {exc}") from None
        rest = float(self.baseline.level[h]) if self.baseline is not None else 0.0
        label = self.montage.labels[h]
        why = (f"{label} {self._ref_problems[h]}" if h in self._ref_problems
               else check_reference(float(peak[1]), rest, f"healthy {label}"))
        if why is not None:
            done = self._retries.get(seg.step_index, 0)
            self.reference_failures.append({"step": step.label, "muscle": step.muscle,
                                            "channel": label, "attempt": done + 1,
                                            "reference_uv": float(peak[1]),
                                            "rest_level_uv": rest, "reason": why})
            if done >= step.retries:
                raise CalibrationError(f"step {step.label!r}: {why}; "
                                       f"{done + 1} attempt(s), none usable")
            self._retries[seg.step_index] = done + 1
            self._repeat_step(seg)
            self._notice = f"Reference refused, repeating ({done + 1}/{step.retries}): {why}"
            end = self._abs(seg.end)
            events.append(RunnerEvent("marker", end, Marker(
                end, f"{step.label}: refused, repeat {done + 1}/{step.retries}: {why}",
                "calibration")))
            log.warning("%s", self._notice)
            return False
        self.reference_uv[chans] = peak
        mean = np.nanmean(rows, axis=0) if np.isfinite(rows).any() else rows[0]
        self.references.append(_Reference(step.label, step.muscle, chans,
                                          self._abs(seg.start), self._abs(seg.end),
                                          peak.tolist(), mean.tolist()))
        if step.muscle == "orbicularis_oculi":
            self.closure_ocular_uv = mean
        return True

    def _repeat_step(self, seg: Segment) -> None:
        """Insert the whole reference step again right after the current segment."""
        step = self._step(seg)
        t = seg.end
        new: list[Segment] = []
        for phase, dur, rep in step.phases():
            n = round(dur * self.fs)
            if n <= 0:
                continue
            new.append(Segment(t, t + n, seg.step_index, phase, rep, t))
            t += n
        self._shift(self._i, t - seg.end, extend_current=False)
        self.segments[self._i + 1:self._i + 1] = new
        self._reindex()

    # ------------------------------------------------------------------ normalisation
    def normalise(self, envelope_uv: np.ndarray) -> np.ndarray:
        """Envelope in % of the healthy homologous reference (NaN where not calibrated).

        Only channels of muscles with a reference step are defined (both sides).
        """
        env = np.asarray(envelope_uv, dtype=float)
        out = np.full(env.shape, np.nan)
        if self.baseline is None:
            return out
        b = self.baseline
        for muscle, a, h in self.pairs:
            if not np.isfinite(self.reference_uv[[a, h]]).all():
                continue
            idx = [a, h]
            # The affected side's own reference is not used (it is scaled by the healthy
            # one) and may lie at rest level in a paralysed face: keep it out of the check.
            ref = np.array([max(self.reference_uv[a], b.level[a] + 1.0), self.reference_uv[h]])
            out[:, idx] = percent_of_healthy(
                env[:, idx], ref, [(muscle, 0, 1)],
                Baseline(b.mean[idx], b.sd[idx], b.n_samples[idx]))
        return out

    def _track_levels(self, env: np.ndarray) -> None:
        """Remember each channel's latest valid envelope (µV) and its normalised level."""
        ok = np.isfinite(env)
        anyok = ok.any(axis=0)
        if anyok.any():
            idx = len(env) - 1 - np.argmax(ok[::-1], axis=0)
            self._last_env[anyok] = env[idx[anyok], np.flatnonzero(anyok)]
        # normalisation is per sample: the latest level is that of the latest µV
        self._last_level = self.normalise(self._last_env[None, :])[0]

    def _channels(self, step: Step) -> tuple[int | None, int | None, list[int]]:
        """Target affected channel, its healthy partner, affected suppression channels."""
        muscles = step.target if step.kind == "exercise" else (step.muscle,)
        target, healthy = self._pair_of.get(muscles[0], (None, None)) if muscles[0] else (
            None, None)
        supp = [self._pair_of[m][0] for m in step.suppress]
        return target, healthy, supp

    def ceilings(self, step: Step) -> tuple[list[float], list[float | None]]:
        """Suppression ceilings of an exercise step in µV and in % (None: no reference)."""
        _, _, supp = self._channels(step)
        if self.baseline is None or step.ceiling is None:
            return [], []
        b = self.baseline
        uv: list[float] = []
        pct: list[float | None] = []
        for ch in supp:
            h = self._healthy_of.get(ch, ch)
            span = float(subtract_rest(self.reference_uv[h], b.level[h]))
            if step.ceiling.mode == "baseline_sd":
                level = float(b.threshold(step.ceiling.value)[ch])
            else:  # the envelope whose level above rest (in power) is value % of the span
                level = float(np.hypot(b.level[ch], step.ceiling.value / 100.0 * span))
            uv.append(level)
            pct.append(float(100.0 * subtract_rest(level, b.level[ch]) / span)
                       if np.isfinite(span) and span > 0 else None)
        return uv, pct

    # ------------------------------------------------------------------ scoring
    def target_pct(self, step: Step, rep_start: int, offsets: np.ndarray) -> np.ndarray:
        """Nominal target (% of healthy reference) at tick ``offsets`` of a repetition."""
        assert step.shape_target is not None
        return step.shape_target.nominal((np.asarray(offsets) - rep_start) / self.fs)

    def _ocular_channel(self, step: Step) -> int | None:
        """Affected orbicularis oculi of a smile exercise (oral-ocular index), if measured."""
        if "zygomaticus_major" in step.target and self.closure_ocular_uv is not None:
            return self._pair_of.get("orbicularis_oculi", (None, None))[0]
        return None

    def _score(self, step: Step, seg: Segment) -> dict[str, Any]:
        ticks, rows = self._rep_window.arrays(self.n_channels)
        target_ch, healthy_ch, supp = self._channels(step)
        assert target_ch is not None and healthy_ch is not None and self.baseline is not None
        assert step.shape_target is not None
        pct = self.normalise(rows)
        offsets = ticks - self._abs(0)
        if step.shape_target.shape == "mirror":
            target = pct[:, healthy_ch]
        else:
            target = self.target_pct(step, seg.rep_start, offsets)
        ceil_uv, _ = self.ceilings(step)
        ocular = self._ocular_channel(step)
        b = self.baseline
        rest = b.mean
        cocon_pair = None
        if supp:
            s0 = supp[0]
            cocon_pair = (rows[:, target_ch], rows[:, s0],
                          (float(b.level[target_ch]), float(b.level[s0])),
                          (float(self.reference_uv[target_ch]), float(self.reference_uv[s0])))
        metrics = scoring.score_rep(
            tracked_pct=pct[:, target_ch], target_pct=target, band_pct=step.band_pct,
            fs=self.fs, affected_uv=rows[:, target_ch], healthy_uv=rows[:, healthy_ch],
            rest_mean_uv=(float(rest[target_ch]), float(rest[healthy_ch])),
            rest_sd_uv=(float(b.sd[target_ch]), float(b.sd[healthy_ch])),
            suppression_uv=rows[:, supp] if supp else None, ceiling_uv=ceil_uv or None,
            ocular_uv=rows[:, ocular] if ocular is not None else None,
            closure_ocular_uv=(float(self.closure_ocular_uv[ocular])
                               if ocular is not None and self.closure_ocular_uv is not None
                               else None),
            ocular_rest_uv=float(rest[ocular]) if ocular is not None else None,
            cocon_pair=cocon_pair, pipeline_delay_s=self.pipeline_delay_s,
        )
        n_valid = int(np.isfinite(pct[:, target_ch]).sum())
        valid, reason = scoring.rep_validity(
            channel_problems=self._rep_problems, labels=self.montage.labels,
            n_valid=n_valid, n_samples=self._abs(seg.end) - self._abs(seg.rep_start))
        score = {
            "step": step.label, "exercise": step.name, "sunnybrook": step.sunnybrook,
            "shape": step.shape_target.shape, "rep": seg.rep, "n_reps": step.reps,
            "start_tick": self._abs(seg.rep_start), "end_tick": self._abs(seg.end),
            "target_channel": target_ch, "healthy_channel": healthy_ch,
            "suppression_channels": supp, "ocular_channel": ocular,
            "level_pct": step.shape_target.level_pct, "band_pct": step.band_pct,
            "ceiling_uv": ceil_uv,
            "n_valid": n_valid,
            "valid": valid, "invalid_reason": reason,
            **metrics,
        }
        if valid:
            log.info("%s rep %d/%d: %s", step.label, seg.rep, step.reps,
                     {k: v for k, v in metrics.items() if v is not None})
        else:
            log.warning("%s rep %d/%d not valid: %s", step.label, seg.rep, step.reps, reason)
        return score

    # ------------------------------------------------------------------ cue
    def _segment_at(self, offset: int) -> Segment | None:
        i = bisect.bisect_right(self._starts, offset) - 1
        if 0 <= i < len(self.segments) and offset < self.segments[i].end:
            return self.segments[i]
        return None

    def target_at(self, offset: int) -> float:
        """Nominal target (%) at a tick offset from the session start (NaN: none)."""
        return float(self.targets_at(np.array([offset]))[0])

    def targets_at(self, offsets: np.ndarray) -> np.ndarray:
        """:meth:`target_at` for an array of tick offsets: 100 in a reference effort, 0
        elsewhere in a reference step, the rep's course in an exercise, NaN elsewhere."""
        offs = np.asarray(offsets, dtype=np.int64)
        out = np.full(len(offs), np.nan)
        idx = np.searchsorted(self._starts_arr, offs, side="right") - 1
        for i in np.unique(idx):
            if i < 0:
                continue
            seg = self.segments[i]
            sel = (idx == i) & (offs < seg.end)
            step = self._step(seg)
            if step.kind == "reference":
                out[sel] = 100.0 if seg.phase == "effort" else 0.0
            elif step.kind == "exercise":
                out[sel] = self.target_pct(step, seg.rep_start, offs[sel]) if seg.rep else 0.0
        return out

    def _make_cue(self) -> Cue:
        tick = (self.origin or 0) + self._pos
        last = self.scores[-1] if self.scores else None
        if self.finished or not self.segments:
            return Cue(tick, len(self.protocol.steps), len(self.protocol.steps), "", "done",
                       "done", "Well done: the session is over", 0.0, last_score=last,
                       finished=True)
        seg = self._segment_at(self._pos) or self.segments[self._i]
        step = self._step(seg)
        target_ch, healthy_ch, supp = self._channels(step)
        ahead = tuple(self.targets_at(self._pos + self._ahead_offsets).tolist())
        target_now = ahead[0]
        shape = step.shape_target.shape if step.shape_target else ""
        if shape == "mirror" and seg.rep > 0 and healthy_ch is not None:
            target_now = float(self._last_level[healthy_ch])
        ceil_uv, ceil_pct = self.ceilings(step) if step.kind == "exercise" else ([], [])
        over = any(np.isfinite(self._last_env[c]) and self._last_env[c] > u
                   for c, u in zip(supp, ceil_uv, strict=True))

        def pct(ch: int | None) -> float | None:
            v = self._last_level[ch] if ch is not None else np.nan
            return float(v) if np.isfinite(v) else None

        return Cue(
            tick=tick, step_index=seg.step_index, n_steps=len(self.protocol.steps),
            step_label=step.label, step_kind=step.kind, phase=seg.phase,
            text=self._text(step, seg), countdown_s=(seg.end - self._pos) / self.fs,
            rep=seg.rep, n_reps=step.reps, exercise=step.name, shape=shape,
            target_muscles=step.target if step.kind == "exercise" else (
                (step.muscle,) if step.muscle else ()),
            suppress_muscles=step.suppress, target_channel=target_ch,
            healthy_channel=healthy_ch, suppression_channels=tuple(supp),
            target_pct=target_now if np.isfinite(target_now) else None,
            band_pct=step.band_pct if step.kind == "exercise" else None,
            target_ahead_pct=ahead, level_pct=pct(target_ch), healthy_pct=pct(healthy_ch),
            ceiling_uv=tuple(ceil_uv), ceiling_pct=tuple(ceil_pct), suppression_over=over,
            last_score=last, channel_states=tuple(self.states or ()),
            check_waiting=tuple(self.check_blockers()) if (
                seg.phase == "check" and self._check_waited and not self._check_overridden)
            else (), notice=self._notice,
        )

    @staticmethod
    def _text(step: Step, seg: Segment) -> str:
        if step.text and seg.phase in ("check", "baseline", "effort", "hold"):
            return step.text
        muscle = step.target[0] if step.target else step.muscle
        verb = VERBS.get(muscle, "contract")
        quiet = ""
        if step.suppress:
            quiet = " - keep your " + " and ".join(
                {"orbicularis_oculi": "eye", "orbicularis_oris": "lips",
                 "zygomaticus_major": "cheek", "frontalis": "brow"}.get(m, m.replace("_", " "))
                for m in step.suppress) + " soft"
        shape = step.shape_target.shape if step.shape_target else ""
        texts = {
            "check": "Sit still and relaxed: checking the signals",
            "baseline": "Relax your whole face and breathe calmly",
            "prepare": f"Get ready to {verb}",
            "effort": f"Now {verb} as strongly as is comfortable",
            "relax": "Relax",
            "ramp_up": f"Slowly {verb}..." if shape != "mirror" else
                       f"Slowly {verb} - match the healthy side...",
            "hold": f"Hold...{quiet}" if shape != "relax" else f"Stay relaxed...{quiet}",
            "ramp_down": "Relax slowly...",
            "rest": "Rest",
        }
        return texts.get(seg.phase, seg.phase)

    # ------------------------------------------------------------------ documents
    def calibration_document(self) -> dict[str, Any]:
        """The ``calibration`` document (layout in docs/file-format.md, ``/exercises``)."""
        healthy = {"left": "right", "right": "left"}.get(self.montage.affected_side, "right")
        return {
            "fs": self.fs,
            "labels": self.montage.labels,
            "affected_side": self.montage.affected_side,
            "reference_side": healthy,
            "normalisation": "percent_of_healthy",
            "pairs": [list(p) for p in self.pairs],
            "reference_window_s": self.reference_window_s,
            "rest": self.rest_info,
            "post_rest": self.post_rest_info,
            "reference_uv": [float(v) if np.isfinite(v) else None for v in self.reference_uv],
            "references": [r.__dict__.copy() for r in self.references],
            "eye_closure_ocular_uv": (self.closure_ocular_uv.tolist()
                                      if self.closure_ocular_uv is not None else None),
            "reference_failures": [dict(f) for f in self.reference_failures],
            "signal_check": dict(self.check_info) if self.check_info else None,
            "pipeline_delay_s": self.pipeline_delay_s,
        }

    def protocol_document(self) -> dict[str, Any]:
        """The ``protocol`` document: the resolved protocol plus ticks as run."""
        doc = self.protocol.as_dict()
        doc["montage_used"] = self.montage.name
        doc["affected_side"] = self.montage.affected_side
        doc["fs"] = self.fs
        doc["origin_tick"] = self.origin
        doc["finished"] = self.finished
        for i, step in enumerate(doc["steps"]):
            start, end = self._step_ticks.get(i, [None, None])
            step["start_tick"], step["end_tick"] = start, end
        doc["phases"] = [dict(p) for p in self._phase_ticks]
        return doc
