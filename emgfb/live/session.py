"""One live (or replayed) run: a source, its acquisition and processing workers, sinks.

This module owns :class:`LiveSession`, which wires the rooms of the ``live`` package:

- the acquisition worker runs a :class:`~emgfb.live.pump.SourcePump`: it reads the source
  and hands every raw chunk at once to the sinks (:class:`~emgfb.live.sinks.RecordingSink`,
  :class:`~emgfb.live.sinks.LslSink`) and to a bounded queue for processing, so the
  recording never waits behind DSP or the GUI;
- the processing worker runs the DSP envelope pipeline and signal-quality checks and
  publishes filtered µV, envelope µV and activation into the
  :class:`~emgfb.live.hub.StreamHub`;
- :class:`~emgfb.live.playback.PlaybackControl` carries pause, seek and speed requests;
- :meth:`LiveSession.status` is one :class:`~emgfb.live.status.SessionStatus` snapshot.

When processing falls behind a board by more than its queue holds, the oldest chunks are
dropped for processing only (counted in ``dsp_dropped``; the display shows a gap; the
recording keeps them); an on-demand source (unpaced simulator or replay) waits instead.
Readers only read, from any thread. May import ``acquisition``, ``dsp``, ``recording``,
``lsl_out``, ``montage``, ``config``, ``records``, ``worker`` and ``errors``; never Qt.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emgfb.acquisition.source import Source, open_source
from emgfb.errors import ConfigError
from emgfb.live.channels import ChannelSetup, resolve_channels
from emgfb.live.hub import StreamHub
from emgfb.live.playback import PlaybackControl
from emgfb.live.pump import SourcePump
from emgfb.live.sinks import LslSink, RecordingSink, SessionError
from emgfb.live.status import SessionCounters, SessionState, SessionStatus
from emgfb.montage import Montage
from emgfb.records import Chunk, Marker
from emgfb.worker import Worker, WorkerState

log = logging.getLogger(__name__)

#: Envelope (µV) that counts as 100 % activation until a reference contraction is measured.
DEFAULT_REFERENCE_UV = 200.0

#: Chunks the processing queue holds (a serial board delivers one per ~16 ms: ~4 s).
PROCESSING_QUEUE_CHUNKS = 256

#: ... and for an on-demand source, which loses nothing by waiting: keep it close.
ON_DEMAND_QUEUE_CHUNKS = 4

#: Test hook: the processing worker holds every chunk this many seconds (a stalled DSP).
HOLD_DSP_ENV = "EMGFB_TEST_HOLD_DSP_S"

_RESTART = object()  # queued after a seek: the processing side starts over


@dataclass
class Normalisation:
    """Per-channel scale from envelope µV to activation (0 = rest, 1 = reference).

    ``activation = sqrt(max(envelope² − rest_uv², 0)) / sqrt(reference_uv² − rest_uv²)``:
    rest noise and activity add in power (:func:`emgfb.dsp.calibration.subtract_rest`).
    """

    rest_uv: np.ndarray
    reference_uv: np.ndarray
    calibrated: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def apply(self, envelope: np.ndarray) -> np.ndarray:
        """Activation of ``envelope`` (n, ch) in µV."""
        from emgfb.dsp.calibration import subtract_rest

        span = np.maximum(subtract_rest(self.reference_uv, self.rest_uv), 1e-6)
        return subtract_rest(envelope, self.rest_uv) / span


class LiveSession:
    """Acquisition, DSP, recording and LSL of one source, on two worker threads.

    Lifecycle: construct (configure only, no I/O) -> :meth:`start` (opens and starts the
    source in the calling thread, so a missing port fails at once with a one-line error,
    then starts the workers) -> read with :meth:`read` / :meth:`status` / :meth:`quality`
    -> :meth:`stop` (joins the workers, finishes the recording, closes the source).
    ``with LiveSession(...) as s:`` does start and stop.

    Parameters
    ----------
    source_url
        Any URL :func:`~emgfb.acquisition.source.open_source` understands, or an already
        constructed (not started) :class:`~emgfb.acquisition.source.Source`.
    montage
        A :class:`~emgfb.montage.Montage`, a montage name or path; default: the source's,
        else the bundled montage for the board's channel count.
    dsp_config
        A DSP config name, path or loaded config (see :func:`emgfb.dsp.load_dsp_config`);
        default: the bundled default.
    record_path
        Start recording to this HDF5 file as soon as the session starts.
    buffer_s
        Seconds each ring buffer holds.
    frontend
        Front-end name or path giving the counts-to-µV scale when the source does not.
    subject
        Pseudonymous subject code written into recordings.
    read_timeout
        Longest wait of one source read (bounds the reaction time to stop/pause).
    lsl
        Publish the µV, envelope and marker streams on Lab Streaming Layer under this
        base name (:class:`~emgfb.lsl_out.LslPublisher`); None: no LSL.
    markers_from
        ``lsl://NAME`` of another program's marker stream: its markers join the session
        (and the recording) at the tick they were stamped with.
    """

    def __init__(
        self,
        source_url: str | Source,
        montage: Montage | str | Path | None = None,
        dsp_config: Any = None,
        record_path: str | Path | None = None,
        *,
        buffer_s: float = 30.0,
        frontend: str | Path = "bioamp",
        subject: str | None = None,
        read_timeout: float = 0.02,
        lsl: str | None = None,
        markers_from: str | None = None,
    ):
        self.source_url = source_url if isinstance(source_url, str) else source_url.url
        self._source_arg = source_url
        self._montage_arg = montage
        self._dsp_arg = dsp_config
        self._initial_record = Path(record_path) if record_path else None
        self.buffer_s = float(buffer_s)
        self._frontend_arg = frontend
        self.subject = subject
        self.read_timeout = float(read_timeout)
        self._lsl_name = lsl
        self._markers_from = markers_from
        #: Extra metadata stored in every recording this session starts (e.g. a protocol).
        self.record_meta: dict[str, Any] = {}

        self.source: Source | None = None
        self.channels: ChannelSetup | None = None
        self.dsp_config: Any = None
        self.normalisation: Normalisation | None = None
        self.hub: StreamHub | None = None
        self.recording: RecordingSink | None = None
        self.lsl: LslSink | None = None
        self.playback: PlaybackControl | None = None
        self._pump: SourcePump | None = None
        self._acquire: Worker | None = None
        self._process: Worker | None = None
        self._pipeline: Any = None
        self._quality_checker: Any = None
        self._quality: list[Any] = []
        # monotonic time the source last delivered samples: "no signal" is about the board
        # and the link, never about our own processing falling behind on a loaded CPU
        self._last_data: float | None = None
        self._rate: Any = None  # the pump's estimate of the board's rate the DSP follows
        self._markers: list[Marker] = []
        self._lock = threading.Lock()  # markers and counters
        self._counters = SessionCounters()
        self._queue: collections.deque[Any] = collections.deque()
        self._queue_cond = threading.Condition()
        self._stopped = False
        self._hold_dsp_s = float(os.environ.get(HOLD_DSP_ENV, "0") or 0)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Open and start the source, set up DSP and buffers, start the workers."""
        if self._acquire is not None:
            raise SessionError("session already started")
        src = self._source_arg
        self.source = open_source(src) if isinstance(src, str) else src
        self.source.start()
        try:
            channels, recording = self._configure(self.source)
            if self._initial_record is not None:
                self.start_record(self._initial_record)
            if self._lsl_name or self._markers_from:
                self.lsl = LslSink(channels, self._lsl_name, self._markers_from,
                                   self._insert_marker)
        except BaseException:
            self._close_sinks()
            self.source.stop()
            self.source.close()
            raise
        sinks = [recording.write]
        if self.lsl is not None:
            sinks.append(self.lsl.push_chunk)
        sinks.append(self._enqueue)
        self._pump = SourcePump(self.source, sinks, on_rate=self._store_clock)
        self._process = Worker("emgfb-live", self._run_processing,
                               wake=self._wake_processing)
        self._acquire = Worker("emgfb-live-source", self._run_acquisition,
                               on_exit=lambda _w: self._wake_processing())
        self._process.start()
        self._acquire.start()
        log.info("live session started: %s, %g Hz x %d ch", self.source_url, self.fs,
                 self.n_channels)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the workers (joined), finish any recording, stop and close the source.

        Idempotent. Safe to call from any thread but the workers'.
        """
        self._stopped = True
        for worker in (self._acquire, self._process):
            if worker is not None:
                worker.stop(timeout)
        try:
            self._close_sinks()
        finally:
            if self.hub is not None:
                self.hub.close()
            if self.source is not None:
                try:
                    self.source.stop()
                finally:
                    self.source.close()

    def _close_sinks(self) -> None:
        lsl, self.lsl = self.lsl, None
        try:
            if lsl is not None:
                lsl.close()
        finally:
            if self.recording is not None:
                pump, src = self._pump, self.source
                self.recording.stop(None if src is None else src.stats.as_dict(),
                                    None if pump is None else pump.clock_document())

    def __enter__(self) -> LiveSession:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True while the workers run."""
        return self._process is not None and self._process.alive

    # -- configuration -------------------------------------------------------------------

    def _configure(self, source: Source) -> tuple[ChannelSetup, RecordingSink]:
        """Channels, DSP, quality, buffers and the sinks of ``source``'s run; returns the
        channel set-up and the recording sink."""
        from emgfb.dsp import ChannelStateTracker, EnvelopePipeline, load_dsp_config

        try:
            ch = self.channels = resolve_channels(source, self._montage_arg, self._frontend_arg)
        except ConfigError as exc:
            if "channels" in str(exc):
                raise SessionError(str(exc)) from None
            raise
        cfg = self._dsp_arg
        self.dsp_config = load_dsp_config(cfg) if cfg is None or isinstance(cfg, str | Path) \
            else cfg
        self._pipeline = EnvelopePipeline(self.dsp_config, ch.fs, ch.n_channels,
                                          ch.uv_per_count, ch.offset_counts)
        self._quality_checker = ChannelStateTracker(self.dsp_config, ch.fs, ch.n_channels,
                                                    self.adc_max, ch.uv_per_count)
        n = ch.n_channels
        self.normalisation = Normalisation(
            np.zeros(n), np.full(n, DEFAULT_REFERENCE_UV), np.zeros(n, dtype=bool)
        )
        self.hub = StreamHub(ch.fs, n, self.buffer_s)
        self.recording = RecordingSink(ch, self.source_url, self.subject)
        self.playback = PlaybackControl(source, self._restart_processing)
        return ch, self.recording

    @property
    def montage(self) -> Montage | None:
        """The run's montage (after :meth:`start`)."""
        return None if self.channels is None else self.channels.montage

    @property
    def fs(self) -> float:
        """Nominal sample rate (0 before :meth:`start`)."""
        return 0.0 if self.channels is None else self.channels.fs

    @property
    def n_channels(self) -> int:
        """Channel count (0 before :meth:`start`)."""
        return 0 if self.channels is None else self.channels.n_channels

    @property
    def uv_per_count(self) -> Any:
        """Counts-to-µV scale (float or per channel)."""
        return 1.0 if self.channels is None else self.channels.uv_per_count

    @property
    def offset_counts(self) -> Any:
        """ADC count of zero volts (float or per channel)."""
        return 0.0 if self.channels is None else self.channels.offset_counts

    @property
    def adc_max(self) -> int:
        """Largest ADC count."""
        return 1023 if self.channels is None else (1 << int(self.channels.info.bits)) - 1

    # -- reading (any thread) ------------------------------------------------------------

    @property
    def generation(self) -> int:
        """Bumped whenever the buffers restart (a replay seek): readers start over."""
        return 0 if self.hub is None else self.hub.generation

    def read(self, stream: str, since: int | None = None, max_samples: int | None = None
             ) -> tuple[int, np.ndarray]:
        """Samples of ``stream`` from absolute index ``since`` on (a copy).

        Parameters
        ----------
        stream
            ``"filtered"`` (µV), ``"envelope"`` (µV) or ``"activation"`` (0..1 scale).
        since
            First absolute index wanted; ``None`` for the newest ``max_samples``.
        max_samples
            At most this many of the newest samples.

        Returns
        -------
        first_index, data
            Absolute index of ``data[0]`` and the samples, shape ``(n, n_channels)``;
            gaps (lost ticks) are NaN.
        """
        if self.hub is None:
            raise SessionError("start the session first")
        return self.hub.read(stream, since, max_samples)

    @property
    def newest_index(self) -> int:
        """Absolute index of the newest published sample (-1 before the first)."""
        return -1 if self.hub is None else self.hub.newest_index

    def host_time_of(self, index: int) -> float | None:
        """Host receive time (``time.time()``) of the chunk holding sample ``index``.

        None if that chunk is no longer remembered (only the last 512 chunks are) or has
        not arrived yet.
        """
        return None if self.hub is None else self.hub.host_time_of(index)

    def wait_for_index(self, index: int, timeout: float = 5.0) -> bool:
        """Block until sample ``index`` is published (or the session ended, or timeout).

        Returns True if it was published. For tests, benchmarks and scripts; the GUI never
        waits.
        """
        return self.hub is not None and self.hub.wait_for_index(index, timeout)

    def quality(self) -> list[Any]:
        """Latest :class:`~emgfb.dsp.ChannelState` per channel (empty before data)."""
        return list(self._quality)

    def channel_states(self) -> list[Any]:
        """One :class:`~emgfb.dsp.ChannelState` per channel, obeyed by every consumer:
        ``no_signal`` before data and when none has arrived for ``[quality] stale_s``."""
        tracker = self._quality_checker
        if tracker is None:
            return []
        if self._last_data is None:
            idle = float("inf")
        else:
            idle = 0.0 if self.paused else time.monotonic() - self._last_data
        return list(tracker.current(idle, ended=self.finished))

    def counters(self) -> SessionCounters:
        """A snapshot of the integrity and throughput counters."""
        with self._lock:
            c = SessionCounters(**self._counters.__dict__)
        c.newest_index = self.newest_index
        rate = self._rate
        if rate is not None:
            c.fs_estimate_hz, c.clock_ppm = rate.fs_hz, rate.ppm
        if self.source is not None:
            c.__dict__.update(self.source.stats.as_dict())
        return c

    def _store_clock(self, document: dict) -> None:
        """A new estimate of the board's rate: keep the running recording's copy fresh
        (so a killed recording keeps a recent one)."""
        if self.recording is not None:
            self.recording.set_document("clock", document)

    @property
    def sample_rate_estimate(self) -> Any:
        """The board's true sample rate (:class:`~emgfb.dsp.clock.RateEstimate`) measured
        from host receive times, or None before ~10 s of data (for recordings and exports)."""
        return self._rate

    @property
    def state(self) -> str:
        """The run's :class:`~emgfb.live.status.SessionState` value, e.g. ``"running"``."""
        return self._state().value

    @property
    def error(self) -> str | None:
        """Why the run failed (source or worker), one line; None while all is well."""
        for worker in (self._acquire, self._process):
            if worker is not None and worker.error is not None:
                return f"{type(worker.error).__name__}: {worker.error}"
        if self.source is not None and self.source.status.state == "failed":
            return self.source.status.detail or "source failed"
        return None

    def _state(self) -> SessionState:
        if self._acquire is None:
            return SessionState.STOPPED if self._stopped else SessionState.IDLE
        if self.error is not None:
            return SessionState.FAILED
        if self._stopped:
            return SessionState.STOPPED
        if self.source is not None and self.source.finished and not self._queue:
            return SessionState.FINISHED
        if self.playback is not None and self.playback.paused.is_set():
            return SessionState.PAUSED
        if self.source is not None and self.source.status.state == "reconnecting":
            return SessionState.RECONNECTING
        return SessionState.RUNNING

    def status(self) -> SessionStatus:
        """One consistent snapshot of the run for status lines."""
        rec = self.recording
        return SessionStatus(
            state=self._state(), source=self.source_status, error=self.error,
            recording_path=None if rec is None else rec.path,
            recording_error=None if rec is None else rec.error,
            recording_s=0.0 if rec is None else rec.seconds,
            position_s=self.position_s, counters=self.counters(),
        )

    @property
    def source_status(self) -> str:
        """The source's state and detail as one line, e.g. ``"streaming"``."""
        if self.source is None:
            return "not started"
        st = self.source.status
        return f"{st.state}: {st.detail}" if st.detail else st.state

    @property
    def finished(self) -> bool:
        """True when a finite source (replay without loop) has delivered everything."""
        return self.source is not None and self.source.finished

    @property
    def markers(self) -> list[Marker]:
        """Markers added live or delivered by a replayed recording, in order."""
        with self._lock:
            return list(self._markers)

    # -- control (any thread) ------------------------------------------------------------

    def add_marker(self, label: str, kind: str = "note", tick: int | None = None) -> Marker:
        """Put a marker at ``tick`` (default: the newest sample); it goes into the
        recording if one runs. A guided-session runner passes the tick of its phase."""
        marker = Marker(max(0, self.newest_index) if tick is None else int(tick), str(label),
                        kind)
        self._insert_marker(marker)
        log.info("marker %r at tick %d", marker.label, marker.tick)
        if self.lsl is not None:
            self.lsl.push_marker(marker)
        return marker

    def _insert_marker(self, marker: Marker) -> None:
        """A marker with its own tick (also another program's, via LSL): session +
        recording."""
        with self._lock:
            self._markers.append(marker)
        if self.recording is not None:
            self.recording.add_marker(marker)

    def set_document(self, name: str, document: Any) -> bool:
        """Store a JSON document (``calibration``, ``protocol``, ``scores``) in the running
        recording (:meth:`~emgfb.recording.SessionWriter.set_document`; replaces an earlier
        one). Returns False, storing nothing, when no recording runs."""
        return self.recording is not None and self.recording.set_document(name, document)

    def start_record(self, path: str | Path) -> Path:
        """Start recording every following chunk to ``path`` (never overwrites).

        Raises
        ------
        SessionError
            If a recording already runs or the session has no source yet.
        RecordingError
            If the file exists or cannot be created.
        """
        if self.recording is None:
            raise SessionError("start the session before recording")
        return self.recording.start(path, self.dsp_config, self.record_meta)

    def stop_record(self) -> Path | None:
        """Finish the recording (flushes and closes the file); returns its path."""
        if self.recording is None:
            return None
        pump, src = self._pump, self.source  # pump still reading: no refit on this thread
        return self.recording.stop(None if src is None else src.stats.as_dict(),
                                   None if pump is None else pump.clock_document(final=False))

    @property
    def recording_path(self) -> Path | None:
        """The file being recorded, or None."""
        return None if self.recording is None else self.recording.path

    @property
    def recording_error(self) -> str | None:
        """Why the running recording stopped writing (disk full, I/O error), or None."""
        return None if self.recording is None else self.recording.error

    @property
    def recording_seconds(self) -> float:
        """Signal time recorded so far (0 when not recording)."""
        return 0.0 if self.recording is None else self.recording.seconds

    def pause(self) -> None:
        """Stop reading the source (replay: playback halts where it is)."""
        self._control().pause()

    def resume(self) -> None:
        """Continue reading after :meth:`pause` (a replay continues where it halted)."""
        self._control().resume()

    @property
    def paused(self) -> bool:
        """True between :meth:`pause` and :meth:`resume`."""
        return self.playback is not None and self.playback.paused.is_set()

    @property
    def position_s(self) -> float | None:
        """Replay: seconds into the recording of the next sample; None for live sources."""
        return None if self.playback is None else self.playback.position_s

    def seek(self, seconds: float) -> None:
        """Replay only: continue from ``seconds`` into the recording (buffers restart)."""
        self._control().seek(seconds)

    def set_speed(self, speed: float) -> None:
        """Replay only: playback speed (x real time), from the current position on."""
        self._control().set_speed(speed)

    def _control(self) -> PlaybackControl:
        if self.playback is None:
            raise SessionError("start the session first")
        return self.playback

    def set_normalisation(self, rest_uv: np.ndarray | None = None,
                          reference_uv: np.ndarray | None = None) -> None:
        """Set per-channel rest level and reference contraction (µV) for activation."""
        if self.normalisation is None:
            raise SessionError("start the session first")
        n = self.normalisation
        rest = n.rest_uv if rest_uv is None else np.asarray(rest_uv, dtype=float)
        ref = n.reference_uv if reference_uv is None else np.asarray(reference_uv, dtype=float)
        cal = n.calibrated | (reference_uv is not None)
        self.normalisation = Normalisation(rest.copy(), ref.copy(), cal)

    # -- acquisition worker: source -> sinks + processing queue --------------------------

    def _run_acquisition(self, stop: threading.Event) -> None:
        assert self._pump is not None and self.playback is not None
        self._pump.run(stop, self.read_timeout, paused=self.playback.paused,
                       between=self.playback.apply)

    def _enqueue(self, chunk: Chunk) -> None:
        """Hand a raw chunk to processing: wait for room (on-demand sources) or drop the
        oldest chunk, counted (boards: the recording must never wait)."""
        if chunk.markers:
            with self._lock:
                self._markers.extend(chunk.markers)
        if len(chunk):
            self._last_data = time.monotonic()
        stop = self._acquire.stop_event if self._acquire is not None else None
        with self._queue_cond:
            if self.source is not None and self.source.on_demand:
                while (len(self._queue) >= ON_DEMAND_QUEUE_CHUNKS
                       and not (stop is not None and stop.is_set())):
                    self._queue_cond.wait(0.1)
            elif len(self._queue) >= PROCESSING_QUEUE_CHUNKS:
                old = self._queue.popleft()
                if old is not _RESTART:
                    with self._lock:
                        self._counters.dsp_dropped += len(old)
            self._queue.append(chunk)
            self._queue_cond.notify_all()

    def _restart_processing(self) -> None:
        """After a seek: drop what was queued, let the processing side start over."""
        with self._queue_cond:
            self._queue.clear()
            self._queue.append(_RESTART)
            self._queue_cond.notify_all()

    def _wake_processing(self) -> None:
        with self._queue_cond:
            self._queue_cond.notify_all()

    # -- processing worker: queue -> DSP -> hub ------------------------------------------

    def _run_processing(self, stop: threading.Event) -> None:
        while True:
            with self._queue_cond:
                while not self._queue and not stop.is_set() and self._acquire_alive():
                    self._queue_cond.wait(0.1)
                if stop.is_set() or not self._queue:
                    return
                item = self._queue.popleft()
                self._queue_cond.notify_all()
            if self._hold_dsp_s > 0 and stop.wait(self._hold_dsp_s):
                return
            if item is _RESTART:
                self._pipeline.reset()
                self._quality_checker.reset()
                if self.hub is not None:
                    self.hub.restart()
            else:
                self._process_chunk(item)

    def _acquire_alive(self) -> bool:
        w = self._acquire
        return w is None or w.state in (WorkerState.IDLE, WorkerState.RUNNING)

    def _process_chunk(self, chunk: Chunk) -> None:
        t0 = time.perf_counter()
        ch, norm, rec, hub = self.channels, self.normalisation, self.recording, self.hub
        # all four are made by start() before this worker runs
        assert ch is not None and norm is not None and rec is not None and hub is not None
        counts, tick = chunk.counts, chunk.tick
        env = self._pipeline.process(counts, tick=tick)
        filtered = self._pipeline.last_filtered
        act = norm.apply(env)
        raw_uv = (counts.astype(np.float64) - ch.offset_counts) * ch.uv_per_count
        q = self._quality_checker.update(raw_uv, counts, filtered)
        rate = None if self._pump is None else self._pump.rate
        if rate is not None and rate is not self._rate:  # a new fit: place the mains filter
            self._rate = rate
            self._pipeline.expect_line_hz(rate.line_hz(self.dsp_config.notch.mains_hz))
        dt = time.perf_counter() - t0
        if q:
            self._quality = list(q)
            rec.log_states(self._quality, int(tick[-1]))
        if self.lsl is not None:
            self.lsl.push_envelope(tick, env)
        with self._lock:
            self._counters.chunks += 1
            self._counters.dsp_seconds += dt
        hub.publish(tick, chunk.host_time,
                    {"filtered": filtered, "envelope": env, "activation": act})
