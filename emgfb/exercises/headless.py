"""Headless guided session: source -> envelope -> runner -> recording, in one loop.

This module owns :func:`run_session`, a synchronous, deterministic loop without threads
of its own (the :class:`~emgfb.recording.SessionWriter` keeps its writer thread) and
without :class:`~emgfb.live.LiveSession`: for each chunk it lets the autopilot patient
(simulated boards only) react to the runner's cue, reads the next chunk and writes it
(one step of the :class:`~emgfb.live.pump.SourcePump`, which also ends the session by the
protocol's length plus a grace whatever the board does),
computes its envelope (:class:`~emgfb.dsp.EnvelopePipeline`, the settings stored in the
file) and each channel's state (a :class:`~emgfb.dsp.ChannelStateTracker` fed the same raw
µV, counts and filtered signal as the live session's), feeds both to the
:class:`~emgfb.exercises.runner.SessionRunner` and stores its markers;
the calibration, protocol and scores documents are stored as soon as they change and
again at the end. With ``sim://?speed=0`` a session runs as fast as the CPU allows and
its results depend only on the seeds. KeyboardInterrupt ends it cleanly and keeps the
file. Imports ``acquisition``, ``dsp``, ``recording``, ``live`` (channel set-up and pump),
``config``, ``montage``, ``errors`` and the other ``exercises`` modules; never the GUI.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from emgfb.acquisition.source import open_source, parse_source_url
from emgfb.config import load_frontend
from emgfb.exercises.autopilot import AutopilotPatient
from emgfb.exercises.protocol import Protocol, load_protocol
from emgfb.exercises.runner import RunnerEvent, SessionRunner
from emgfb.live.channels import resolve_channels
from emgfb.live.pump import PumpEnd, SourcePump
from emgfb.montage import Montage, load_montage

log = logging.getLogger(__name__)

DEFAULT_SOURCE = "sim://?speed=0"


@dataclass
class SessionResult:
    """What :func:`run_session` did.

    Attributes
    ----------
    path
        The recording.
    protocol
        The protocol run.
    finished
        True if every step ran; False after an interrupt or the end of the source.
    interrupted
        True if KeyboardInterrupt ended the session.
    samples, lost_ticks
        Samples written and ticks lost.
    elapsed_s
        Session time run.
    scores, calibration
        The documents stored.
    recording_error
        The writer's error message, if it failed.
    source_error
        Why the source ended the session early (failed, or silent past the protocol's
        length plus the grace), one line; else None.
    signum
        The signal that interrupted the session (2 Ctrl-C, 15 SIGTERM), else 0.
    """

    path: Path
    protocol: Protocol
    finished: bool = False
    interrupted: bool = False
    samples: int = 0
    lost_ticks: int = 0
    elapsed_s: float = 0.0
    scores: list[dict[str, Any]] = field(default_factory=list)
    calibration: dict[str, Any] = field(default_factory=dict)
    recording_error: str | None = None
    source_error: str | None = None
    signum: int = 0


def session_source_url(url: str, montage: Montage, montage_arg: str) -> str:
    """Add the montage to a ``sim://`` URL that names none, so the board matches it."""
    scheme, _path, query = parse_source_url(url)
    if scheme != "sim" or "montage" in query or "ch" in query:
        return url
    query = {**query, "montage": montage_arg}
    return url.split("?", 1)[0] + "?" + urlencode(query)


def prepare(protocol: str | Path, montage: str | None = None
            ) -> tuple[Protocol, Montage, str]:
    """Load the protocol and the montage (given, else the protocol's) and cross-check them.

    Raises
    ------
    ConfigError
        On any problem with either file, before anything is opened.
    """
    proto = load_protocol(protocol)
    montage_arg = montage or proto.montage
    mont = load_montage(montage_arg)
    proto.check_montage(mont)
    return proto, mont, montage_arg


def run_session(
    protocol: str | Path,
    output: str | Path,
    source_url: str = DEFAULT_SOURCE,
    *,
    montage: str | None = None,
    subject: str = "",
    notes: str = "",
    dsp: str | Path | None = None,
    frontend: str = "bioamp",
    autopilot: bool = True,
    seed: int = 1,
    progress: Callable[[str], None] | None = None,
    progress_every_s: float = 10.0,
    override_check: bool = False,
    check_timeout_s: float = 30.0,
) -> SessionResult:
    """Run a guided session headless and record it.

    Parameters
    ----------
    protocol
        Protocol name (``demo``) or TOML path.
    output
        New ``.h5`` file (never overwritten).
    source_url
        Board URL (default ``sim://?speed=0``: the simulated board, unpaced).
    montage
        Montage name or TOML (default: the protocol's ``montage``).
    subject, notes
        Pseudonymous subject code and session notes.
    dsp
        DSP settings TOML (default: bundled).
    frontend
        Front-end name or TOML (counts-to-µV scale).
    autopilot
        Let the autopilot patient follow the cues on a simulated board.
    seed
        Seed of the autopilot patient.
    progress
        Called with a one-line status every ``progress_every_s`` of session time and at
        every step start.
    override_check
        The clinician lets the signal check pass although a channel is not good (stored
        as a marker; repetitions using that channel are still marked invalid).
    check_timeout_s
        How long the signal check waits for every used channel to be good before the
        session stops.

    Raises
    ------
    EmgfbError
        On bad files or options (before the session starts), a failing board, a signal
        check that does not pass, or a reference that is refused more often than the
        protocol allows (the recording is kept up to that point; the message names the
        channel).
    """
    from emgfb.dsp import ChannelStateTracker, EnvelopePipeline, StateLog, load_dsp_config
    from emgfb.dsp.metrics import envelope_delay_s
    from emgfb.dsp.quality import STATE_LOG_HOLD_S
    from emgfb.recording.schema import check_subject
    from emgfb.recording.writer import SessionWriter, check_new_path

    output = Path(output)
    check_subject(subject)
    check_new_path(output)
    proto, mont, montage_arg = prepare(protocol, montage)
    cfg = load_dsp_config(dsp)
    fe = load_frontend(frontend)
    url = session_source_url(source_url, mont, montage_arg)
    source = open_source(url)
    result = SessionResult(output, proto)
    say = progress or (lambda line: None)
    with source:
        setup = resolve_channels(source, mont, fe)  # the one channel set-up, front-end check
        info = setup.info
        pipe = EnvelopePipeline(cfg, info.fs, info.n_channels, setup.uv_per_count,
                                setup.offset_counts)
        tracker = ChannelStateTracker(cfg, info.fs, info.n_channels,
                                      (1 << info.bits) - 1 if info.bits else None,
                                      setup.uv_per_count)
        state_log = StateLog(mont.labels, round(STATE_LOG_HOLD_S * info.fs))
        runner = SessionRunner(proto, mont, info.fs,
                               reference_window_s=cfg.calibration.reference_window_ms / 1000,
                               pipeline_delay_s=envelope_delay_s(cfg, info.fs),
                               check_timeout_s=check_timeout_s)
        if override_check:
            runner.override_check("the clinician (headless --override-check)")
        model = source.face
        pilot = AutopilotPatient(model, info.fs, seed) if autopilot and model else None
        extra = {"source_url": url, "protocol": proto.name, "session": "guided",
                 "autopilot": {"seed": seed} if pilot else None}
        writer = SessionWriter(
            output, info=info, montage=mont, uv_per_count=setup.uv_per_count,
            offset_counts=setup.offset_counts, subject=subject, notes=notes,
            dsp_config=cfg.as_dict(), frontend=setup.frontend_meta(), extra_meta=extra,
        )
        # the protocol's length (grown by repeats and check waits, which the runner bounds)
        # is the --seconds promise: the session ends by then, plus the pump's grace
        promised = runner.total_ticks / info.fs + 1.0
        pump = SourcePump(source, [writer.write], seconds=promised,
                          on_rate=lambda doc: writer.set_document("clock", doc))
        next_report = 0.0
        writer.start()
        try:  # from here on, an interrupt still completes the file
            writer.set_document("protocol", runner.protocol_document())
            while not runner.finished and not pump.done:
                if pilot is not None:
                    pilot.update(runner.cue)
                chunk = pump.step(timeout=1.0)
                if chunk is None:
                    continue
                env = pipe.process(chunk.counts, tick=chunk.tick)
                states = tracker.update(pipe.scale.process(chunk.counts), chunk.counts,
                                        pipe.last_filtered)
                if states:
                    for marker in state_log.feed(states, int(chunk.tick[-1])):
                        writer.add_marker(marker)
                events = runner.feed(chunk.tick, env, states)
                # a repeated reference or a waiting signal check lengthens the protocol
                grown = runner.total_ticks / info.fs + 1.0
                pump.extend(grown - promised)
                promised = max(promised, grown)
                _store(events, runner, writer, say)
                if runner.elapsed_s >= next_report:
                    say(_status(runner))
                    next_report += progress_every_s
            if pump.end is PumpEnd.FINISHED and not runner.finished:
                log.warning("source %s ended before the protocol", url)
        except KeyboardInterrupt as exc:
            result.interrupted = True
            result.signum = getattr(exc, "signum", 2)
            log.warning("session interrupted at %.1f s", runner.elapsed_s)
        finally:
            if model is not None:
                model.set_drive(None)
            writer.set_document("calibration", runner.calibration_document())
            writer.set_document("protocol", runner.protocol_document())
            writer.set_document("scores", runner.scores)
            writer.set_document("link", source.stats.as_dict())
            writer.set_document("clock", pump.clock_document())
            writer.close()
    result.source_error = pump.problem
    result.finished = runner.finished
    result.samples = writer.samples_written
    result.lost_ticks = writer.lost_ticks
    result.elapsed_s = runner.elapsed_s
    result.scores = list(runner.scores)
    result.calibration = runner.calibration_document()
    result.recording_error = str(writer.error) if writer.failed else None
    return result


def _store(events: list[RunnerEvent], runner: SessionRunner, writer: Any,
           say: Callable[[str], None]) -> None:
    for ev in events:
        if ev.kind == "marker" and ev.marker is not None:
            writer.add_marker(ev.marker)
            if ev.marker.kind == "phase" and not ev.marker.label.endswith(": end"):
                log.debug("%s", ev.marker.label)
        elif ev.kind == "calibration":
            writer.set_document("calibration", runner.calibration_document())
        elif ev.kind == "score" and ev.score is not None:
            writer.set_document("scores", runner.scores)
            s = ev.score
            head = f"{s['step']} rep {s['rep']}/{s['n_reps']}: "
            say(head + (_fmt_score(s) if s.get("valid", True)
                        else f"not valid ({s.get('invalid_reason')})"))
        elif ev.kind == "step":
            writer.set_document("protocol", runner.protocol_document())


def _fmt_score(s: dict[str, Any]) -> str:
    parts = []
    for key, fmt in (("pct_in_band", "in band {:.0f} %"), ("lag_ms", "lag {:.0f} ms"),
                     ("pct_below_ceiling", "below ceiling {:.0f} %"),
                     ("symmetry_ratio", "A/H {:.2f}"), ("oral_ocular_index", "OOI {:.2f}")):
        if s.get(key) is not None:
            parts.append(fmt.format(s[key]))
    return ", ".join(parts) or "no valid samples"


def _status(runner: SessionRunner) -> str:
    cue = runner.cue
    if cue.finished:
        return f"finished, elapsed {runner.elapsed_s:.1f} s"
    rep = f", rep {cue.rep}/{cue.n_reps}" if cue.rep else ""
    return (f"step {cue.step_index + 1}/{cue.n_steps} {cue.step_label} ({cue.phase}){rep}, "
            f"elapsed {runner.elapsed_s:.1f} s of {runner.total_ticks / runner.fs:.0f} s")


def summary_lines(scores: list[dict[str, Any]]) -> list[str]:
    """Per-exercise mean of every metric over its valid repetitions, one line each."""
    from emgfb.exercises.scoring import METRICS, valid_reps

    lines = []
    steps = list(dict.fromkeys(s["step"] for s in scores))
    for step in steps:
        reps = [s for s in scores if s["step"] == step]
        good = valid_reps(reps)
        parts = []
        for key in METRICS:
            vals = [s[key] for s in good if s.get(key) is not None]
            if vals:
                parts.append(f"{key}={sum(vals) / len(vals):.3g}")
        head = f"{step} ({reps[0]['exercise']}, {len(good)} of {len(reps)} reps valid)"
        if len(good) < len(reps):
            why = next(s.get("invalid_reason") for s in reps if not s.get("valid", True))
            parts.append(f"[not valid: {why}]")
        lines.append(f"{head}: " + (" ".join(parts) or "no valid repetition"))
    return lines
