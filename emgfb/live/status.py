"""One status snapshot of a live run, for the GUI's status line and the CLI.

This module owns :class:`SessionState` and :class:`SessionStatus`: everything a status
line needs (run state, the source's state, the recording and why it stopped, counters),
taken as one consistent snapshot, so that a view never shows a counting "REC" beside a
recording that failed. Imports ``records`` only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from emgfb.records import SourceStats


class SessionState(enum.Enum):
    """Where a live run is."""

    #: Constructed, not started.
    IDLE = "idle"
    #: Reading and processing.
    RUNNING = "running"
    #: Playback halted by :meth:`~emgfb.live.LiveSession.pause`.
    PAUSED = "paused"
    #: The source is re-connecting (no samples arrive meanwhile).
    RECONNECTING = "reconnecting"
    #: A finite source (a replay) delivered everything.
    FINISHED = "finished"
    #: The source or a worker failed (see :attr:`SessionStatus.error`).
    FAILED = "failed"
    #: Stopped.
    STOPPED = "stopped"


@dataclass
class SessionCounters(SourceStats):
    """Integrity and throughput counters of a session, as one consistent snapshot: the
    source's own counters (:class:`~emgfb.records.SourceStats`) plus the workers'.

    Attributes
    ----------
    chunks
        Chunks processed by the processing worker.
    newest_index
        Absolute index of the newest published sample (-1 before the first).
    dsp_seconds
        Worker time spent in DSP and quality checks (for CPU accounting).
    dsp_dropped
        Samples the processing worker never saw because it fell behind the source by more
        than its bounded queue holds (shown as a gap; the recording still has them).
    fs_estimate_hz, clock_ppm
        The board's true sample rate measured from host receive times, and its deviation
        from nominal in ppm (NaN before ~10 s of data; :mod:`emgfb.dsp.clock`).
    """

    chunks: int = 0
    newest_index: int = -1
    dsp_seconds: float = 0.0
    dsp_dropped: int = 0
    fs_estimate_hz: float = float("nan")
    clock_ppm: float = float("nan")


@dataclass(frozen=True)
class SessionStatus:
    """A consistent snapshot of a live run.

    Attributes
    ----------
    state
        The run's :class:`SessionState`.
    source
        The source's state and detail as one line, e.g. ``"streaming"``.
    error
        Why the run failed (source or worker), one line; None while all is well.
    recording_path
        The file being recorded (also after the writer failed), or None.
    recording_error
        Why the recording stopped writing (disk full, I/O error), or None.
    recording_s
        Signal time recorded so far.
    position_s
        Replay position, None for live sources.
    counters
        The integrity and throughput counters.
    """

    state: SessionState
    source: str
    error: str | None = None
    recording_path: Path | None = None
    recording_error: str | None = None
    recording_s: float = 0.0
    position_s: float | None = None
    counters: SessionCounters = field(default_factory=SessionCounters)

    @property
    def recording(self) -> bool:
        """True while a recording is being written (not after its writer failed)."""
        return self.recording_path is not None and self.recording_error is None
