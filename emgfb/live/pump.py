"""The one loop that reads a source: raw chunks to their sinks at once, and the end rule.

This module owns :class:`SourcePump`, which every command that reads a board uses (the
live session's acquisition worker, headless guided sessions, ``emgfb record`` and
``emgfb stream``): it reads a started source, hands each raw chunk straight to its sinks
(the recording writer, LSL publishers; never behind DSP or the GUI), cuts the stream at
``seconds`` of signal, and keeps the ``--seconds`` promise: whatever the source does
(silent for good, reconnecting, back with another configuration), the pump ends by
``seconds`` of wall time plus :data:`GRACE_S`, and says why in :attr:`SourcePump.problem`.
It can be stepped by hand (:meth:`SourcePump.step`: deterministic headless sessions and
tests) or run on a :class:`~emgfb.worker.Worker` (:meth:`SourcePump.run`). Because every
acquiring command reads through it, it is also the one place that measures the board's
true sample rate from the chunks' host receive times (:attr:`SourcePump.rate`,
:meth:`SourcePump.clock_document`; :mod:`emgfb.dsp.clock`), starting a new clock segment
whenever the source reconnected or the board's counter restarted. Imports
``acquisition.source``, ``dsp.clock``, ``records`` and ``worker``.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from emgfb.acquisition.source import Source
from emgfb.dsp.clock import RateEstimate, SampleRateEstimator, clock_document
from emgfb.limits import CLOCK_PPM
from emgfb.records import Chunk

log = logging.getLogger(__name__)

#: Wall-time seconds a run may take beyond its ``seconds`` of signal (start-up, a source
#: catching up) before the pump gives up on the source.
GRACE_S = 2.0

ChunkSink = Callable[[Chunk], None]


class PumpEnd(enum.Enum):
    """Why a :class:`SourcePump` ended."""

    #: ``seconds`` of signal were read.
    SECONDS = "seconds"
    #: A finite source (a replay) delivered everything.
    FINISHED = "finished"
    #: The source failed (port gone, board back with another configuration).
    FAILED = "failed"
    #: ``seconds`` of wall time plus the grace passed before the signal was complete.
    DEADLINE = "deadline"
    #: The caller stopped it.
    STOPPED = "stopped"


class SourcePump:
    """Read one started source and hand every chunk, at once, to its raw sinks.

    Lifecycle: construct with a started source -> :meth:`step` repeatedly (or :meth:`run`
    on a worker thread) until :attr:`end` is set -> the caller stops the source. The wall
    clock starts at the first :meth:`step`.

    Parameters
    ----------
    source
        A started :class:`~emgfb.acquisition.source.Source`.
    sinks
        Called with every chunk, in order, as soon as it is read (the chunk handed on is
        already cut at ``seconds``).
    seconds
        Signal time to read (ticks, gaps included); None: until the source finishes or
        the caller stops.
    grace_s
        Wall time allowed beyond ``seconds`` before the pump ends with
        :attr:`PumpEnd.DEADLINE`.
    on_rate
        Called (on the reading thread) with the ``clock`` document whenever a new
        estimate of the board's rate is fitted (at most every few seconds), e.g. to keep
        a recording's copy fresh.
    """

    def __init__(self, source: Source, sinks: Sequence[ChunkSink] = (), *,
                 seconds: float | None = None, grace_s: float = GRACE_S,
                 on_rate: Callable[[dict], None] | None = None) -> None:
        self.source = source
        self.sinks = list(sinks)
        self.seconds = seconds
        self.grace_s = float(grace_s)
        fs = float(source.info.fs)
        self._limit = None if seconds is None else max(1, round(seconds * fs))
        self._first_tick: int | None = None
        self._t0: float | None = None
        self.ticks = 0  # signal read so far (ticks, gaps included)
        self.samples = 0
        self.end: PumpEnd | None = None
        #: Why the run ended short (source failure or deadline), one line; else None.
        self.problem: str | None = None
        #: The latest estimate of the board's true rate (None before ~10 s of signal).
        self.rate: RateEstimate | None = None
        self.on_rate = on_rate
        self._clock: SampleRateEstimator | None = None
        self._clock_reason: str | None = None
        if source.playback is not None:
            self._clock_reason = "playback: a recording's host times are not its board's clock"
        elif source.on_demand:
            self._clock_reason = "unpaced source: frames are made as they are read"
        elif not source.realtime:
            self._clock_reason = ("not paced in real time (a simulator at another speed): "
                                  "host time does not run with its clock")
        else:
            self._clock = SampleRateEstimator(fs)
        self._links = (0, 0)  # reconnects and counter restarts seen
        self._implausible_said = False

    @property
    def done(self) -> bool:
        """True once :attr:`end` is set."""
        return self.end is not None

    @property
    def elapsed_s(self) -> float:
        """Wall time since the first :meth:`step`."""
        return 0.0 if self._t0 is None else time.monotonic() - self._t0

    def extend(self, seconds: float) -> None:
        """Allow ``seconds`` more of signal and of wall time (a guided protocol grows when
        it repeats a refused step or waits for its signal check)."""
        if self.seconds is not None and seconds > 0:
            self.seconds += seconds
            self._limit = max(1, round(self.seconds * float(self.source.info.fs)))

    def finish(self, end: PumpEnd, problem: str | None = None) -> None:
        """End the run (the first reason given wins)."""
        if self.end is None:
            self.end, self.problem = end, problem
            if problem:
                log.error("%s", problem)

    def step(self, timeout: float = 0.1) -> Chunk | None:
        """Read once (waiting up to ``timeout`` s, less near the deadline), feed the sinks.

        Returns the chunk handed to the sinks, or None (nothing arrived, or the run ended).
        """
        if self.end is not None:
            return None
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        deadline = self._deadline()
        if deadline is not None:
            if now >= deadline:
                self._check_source(now)
                return None
            timeout = max(0.0, min(timeout, deadline - now))
        chunk = self.source.read(timeout)
        if chunk is None or not len(chunk):
            self._check_source(time.monotonic())
            return None
        if self._first_tick is None:
            self._first_tick = int(chunk.tick[0])
        self._observe(chunk)
        if self._limit is not None and chunk.tick[-1] - self._first_tick + 1 >= self._limit:
            keep = int(np.searchsorted(chunk.tick, self._first_tick + self._limit, side="left"))
            if keep < len(chunk):
                chunk = dataclasses.replace(chunk, tick=chunk.tick[:keep],
                                            counts=chunk.counts[:keep],
                                            overrun=chunk.overrun[:keep])
            self.end = PumpEnd.SECONDS
        self.ticks = int(chunk.tick[-1]) - self._first_tick + 1
        self.samples += len(chunk)
        for sink in self.sinks:
            sink(chunk)
        return chunk

    def _deadline(self) -> float | None:
        """Monotonic time by which ``seconds`` of signal must have arrived (with the grace),
        or None without a limit or before the first step."""
        allowed = self._allowed_s()
        return None if allowed is None or self._t0 is None else self._t0 + allowed

    def _allowed_s(self) -> float | None:
        """Wall time allowed for ``seconds`` of signal: the signal time plus the grace."""
        return None if self.seconds is None else self.seconds + self.grace_s

    def _observe(self, chunk: Chunk) -> None:
        """Feed the rate estimator (before any cut: host_time is the chunk's last byte)."""
        clock = self._clock
        if clock is None:
            return
        stats = self.source.stats
        links = (stats.reconnects, stats.seq_restarts)
        if links != self._links:  # the index is aligned by the host clock only from here
            self._links = links
            clock.new_segment()
        steady = chunk.host_clock
        clock.observe(int(chunk.tick[-1]), steady if math.isfinite(steady) else chunk.host_time)
        rate = clock.estimate
        if rate is not None and rate is not self.rate and self._plausible(rate):
            self.rate = rate
            if self.on_rate is not None:
                self.on_rate(self.clock_document(final=False))

    def _plausible(self, rate: RateEstimate) -> bool:
        """A fit beyond any board clock's error is not adopted (it would move the mains
        filter and every exported time axis): said once, in the log."""
        if CLOCK_PPM.ok(rate.ppm):
            return True
        if not self._implausible_said:
            self._implausible_said = True
            self._clock_reason = (f"implausible: measured {rate.ppm:+.0f} ppm from nominal, "
                                  "beyond any board clock (a source not paced in real time?)")
            log.warning("%s: measured sample rate %.1f Hz is %+.0f ppm from the nominal %g Hz, "
                        "beyond any board clock (expected %s): not used", self.source.url,
                        rate.fs_hz, rate.ppm, self.source.info.fs, CLOCK_PPM.expected)
        return False

    def clock_document(self, final: bool = True) -> dict:
        """The recording's ``clock`` document: nominal and estimated rate, ppm, its
        uncertainty and span, or ``estimated: false`` with the reason.

        ``final``: fit once more over every point (call at the end, on the reading thread
        or after it stopped)."""
        if self._clock is not None and final:
            rate = self._clock.refit()
            if rate is not None and self._plausible(rate):
                self.rate = rate
        return clock_document(self.source.info.fs, self.rate, self._clock_reason)

    def _check_source(self, now: float) -> bool:
        """End the run when the source failed, finished or the deadline passed."""
        src = self.source
        if src.status.state == "failed":
            self.finish(PumpEnd.FAILED, f"{src.url or 'source'}: {src.status.detail or 'failed'}")
        elif src.finished:
            self.finish(PumpEnd.FINISHED)
        elif (deadline := self._deadline()) is not None and now >= deadline:
            st = src.status
            why = "" if st.state == "streaming" else (
                f" ({st.state}: {st.detail})" if st.detail else f" ({st.state})")
            fs = float(src.info.fs)
            self.finish(PumpEnd.DEADLINE,
                        f"{src.url or 'source'}: only {self.ticks / fs:.1f} s of "
                        f"{self.seconds:g} s arrived within "
                        f"{self._allowed_s():g} s{why}")
        return self.end is not None

    def run(self, stop: threading.Event, timeout: float = 0.1,
            paused: threading.Event | None = None,
            between: Callable[[], None] | None = None) -> None:
        """Step until the run ends or ``stop`` is set (the body of a worker thread).

        ``paused``: while set, do not read (a replay halts where it is). ``between``: called
        before every read on this thread (e.g. seek commands that must run where the
        source is read).
        """
        while not stop.is_set() and self.end is None:
            if between is not None:
                between()
            if paused is not None and paused.is_set():
                stop.wait(timeout)
                continue
            self.step(timeout)
        if self.end is None:
            self.end = PumpEnd.STOPPED
