"""One live (or replayed) run wired together, off the GUI thread: source -> DSP -> buffers.

This module owns :class:`LiveSession`: it opens a source by URL, runs acquisition, the DSP
envelope pipeline, signal-quality checks and the optional recording on one worker thread,
and publishes filtered µV, envelope µV and normalised activation into ring buffers with
absolute sample indices, plus the latest quality per channel, integrity counters and the
host receive time of the newest samples (latency bookkeeping). Readers (the GUI, tests,
benchmarks) only read, from any thread. Markers, recording start/stop, pause and seek
(replay) are requested from any thread.

May import ``acquisition``, ``dsp``, ``recording``, ``montage``, ``config`` and ``errors``;
never Qt (the GUI imports this module, not the other way round).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emgfb.acquisition.ringbuffer import RingBuffer
from emgfb.acquisition.source import Chunk, Marker, Source, SourceStats, open_source
from emgfb.config import load_frontend
from emgfb.errors import EmgfbError, RecordingError
from emgfb.montage import Montage, default_montage, load_montage

log = logging.getLogger(__name__)

#: Streams a session publishes, each ``(n_samples, n_channels)`` float32 by absolute index.
STREAMS = ("filtered", "envelope", "activation")

#: Envelope (µV) that counts as 100 % activation until a reference contraction is measured.
DEFAULT_REFERENCE_UV = 200.0


class SessionError(EmgfbError):
    """A live session cannot do what was asked (not started, already recording, ...)."""


@dataclass
class SessionCounters(SourceStats):
    """Integrity and throughput counters of a session, as one consistent snapshot: the
    source's own counters (:class:`~emgfb.acquisition.source.SourceStats`) plus the
    worker's.

    Attributes
    ----------
    chunks
        Chunks processed by the worker.
    newest_index
        Absolute index of the newest published sample (-1 before the first).
    dsp_seconds
        Worker time spent in DSP and quality checks (for CPU accounting).
    """

    chunks: int = 0
    newest_index: int = -1
    dsp_seconds: float = 0.0


@dataclass
class Normalisation:
    """Per-channel scale from envelope µV to activation (0 = rest, 1 = reference).

    ``activation = max(0, envelope - rest_uv) / (reference_uv - rest_uv)``.
    """

    rest_uv: np.ndarray
    reference_uv: np.ndarray
    calibrated: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def apply(self, envelope: np.ndarray) -> np.ndarray:
        """Activation of ``envelope`` (n, ch) in µV."""
        span = np.maximum(self.reference_uv - self.rest_uv, 1e-6)
        return np.maximum(envelope - self.rest_uv, 0.0) / span


class LiveSession:
    """Acquisition + DSP (+ recording) of one source on a worker thread.

    Lifecycle: construct (configure only, no I/O) -> :meth:`start` (opens and starts the
    source in the calling thread, so a missing port fails at once with a one-line error,
    then starts the worker) -> read with :meth:`read` / :meth:`counters` / :meth:`quality`
    -> :meth:`stop` (joins the worker, finishes the recording, closes the source).
    ``with LiveSession(...) as s:`` does start and stop.

    Parameters
    ----------
    source_url
        Any URL :func:`~emgfb.acquisition.source.open_source` understands, or an already
        constructed (not started) :class:`~emgfb.acquisition.source.Source`.
    montage
        A :class:`~emgfb.montage.Montage`, a montage name or path; default: the bundled
        montage for the board's channel count.
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
        #: Extra metadata stored in every recording this session starts (e.g. a protocol).
        self.record_meta: dict[str, Any] = {}

        self.source: Source | None = None
        self.montage: Montage | None = None
        self.fs = 0.0
        self.n_channels = 0
        self.uv_per_count = 1.0
        self.offset_counts = 0.0
        self.adc_max = 1023
        self.dsp_config: Any = None
        self.normalisation: Normalisation | None = None

        self._buffers: dict[str, RingBuffer] = {}
        self._generation = 0
        self._pipeline: Any = None
        self._quality_checker: Any = None
        self._quality: list[Any] = []
        self._last_data: float | None = None  # monotonic time of the last processed chunk
        self._counters = SessionCounters()
        self._chunk_times: collections.deque[tuple[int, float]] = collections.deque(maxlen=512)
        self._markers: list[Marker] = []

        self._lock = threading.RLock()  # guards buffers swap, writer, markers, counters
        self._published = threading.Condition()
        self._writer: Any = None
        self._record_path: Path | None = None
        self._record_start_index = 0
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._commands: collections.deque[tuple[str, Any]] = collections.deque()
        self._thread: threading.Thread | None = None
        self.state = "stopped"
        self.error: str | None = None
        self._lsl_name = lsl
        self._markers_from = markers_from
        self._lsl: Any = None  # LslPublisher
        self._lsl_clock: Any = None  # SampleClock shared by publisher and marker inlet
        self._lsl_markers: Any = None  # LslMarkerInlet

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Open and start the source, set up DSP and buffers, start the worker thread."""
        if self._thread is not None:
            raise SessionError("session already started")
        src = self._source_arg
        self.source = open_source(src) if isinstance(src, str) else src
        self.source.start()
        try:
            self._configure(self.source)
            if self._initial_record is not None:
                self.start_record(self._initial_record)
            if self._lsl_name or self._markers_from:
                self._start_lsl()
        except BaseException:
            self._stop_lsl()
            self.source.stop()
            self.source.close()
            raise
        self._stop.clear()
        self.state = "running"
        self._thread = threading.Thread(target=self._run, name="emgfb-live", daemon=True)
        self._thread.start()
        log.info("live session started: %s, %g Hz x %d ch", self.source_url, self.fs,
                 self.n_channels)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker (joined), finish any recording, stop and close the source.

        Idempotent. Safe to call from any thread but the worker's.
        """
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.error("live worker did not stop within %.1f s", timeout)
        try:
            self._stop_lsl()
            self.stop_record()
        finally:
            if self.source is not None:
                try:
                    self.source.stop()
                finally:
                    self.source.close()
        if self.state not in ("failed",):
            self.state = "stopped"

    def __enter__(self) -> LiveSession:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True while the worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    # -- configuration -------------------------------------------------------------------

    def _configure(self, source: Source) -> None:
        from emgfb.dsp import ChannelStateTracker, EnvelopePipeline, load_dsp_config

        info = source.info
        self.fs = float(info.fs)
        self.n_channels = int(info.n_channels)
        self.adc_max = (1 << int(info.bits)) - 1
        self.montage = self._resolve_montage(
            self._montage_arg or getattr(source, "montage", None), self.n_channels)
        self.uv_per_count, self.offset_counts = self._scale(source)
        cfg = self._dsp_arg
        self.dsp_config = load_dsp_config(cfg) if cfg is None or isinstance(cfg, str | Path) \
            else cfg
        self._pipeline = EnvelopePipeline(
            self.dsp_config, self.fs, self.n_channels, self.uv_per_count, self.offset_counts
        )
        self._quality_checker = ChannelStateTracker(
            self.dsp_config, self.fs, self.n_channels, self.adc_max, self.uv_per_count
        )
        n = self.n_channels
        self.normalisation = Normalisation(
            np.zeros(n), np.full(n, DEFAULT_REFERENCE_UV), np.zeros(n, dtype=bool)
        )
        self._buffers = self._new_buffers()

    def _resolve_montage(self, arg: Montage | str | Path | None, n: int) -> Montage:
        montage = arg if isinstance(arg, Montage) else (
            load_montage(arg) if arg is not None else default_montage(n)
        )
        if montage.n_channels != n:
            raise SessionError(
                f"montage {montage.name!r} has {montage.n_channels} channels, "
                f"the source sends {n}"
            )
        return montage

    def _scale(self, source: Source) -> tuple[Any, Any]:
        """Counts-to-µV scale: from the source if it knows (simulator, replay), else the
        front-end descriptor with the board's ADC resolution and reference."""
        for holder in (source, getattr(source, "model", None)):
            upc = getattr(holder, "uv_per_count", None)
            if upc is not None:
                offset = getattr(holder, "offset_counts", 0.0)
                return _scalar_or_array(upc), _scalar_or_array(offset)
        fe = load_frontend(self._frontend_arg)
        info = source.info
        from emgfb.hardware import check_frontend  # refuses what cannot work, logs warnings

        check_frontend(fe, bits=info.bits, vref_mv=info.vref_mv, fs=info.fs, board=info.board)
        return fe.uv_per_count(info.bits, info.vref_mv), fe.offset_counts(info.bits, info.vref_mv)

    def _new_buffers(self) -> dict[str, RingBuffer]:
        cap = max(1, int(round(self.buffer_s * self.fs)))
        return {name: RingBuffer(cap, self.n_channels, np.float32) for name in STREAMS}

    # -- reading (any thread) ------------------------------------------------------------

    @property
    def generation(self) -> int:
        """Bumped whenever the buffers restart (a replay seek): readers start over."""
        return self._generation

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
        with self._lock:
            return _ring_read(self._buffers[stream], since, max_samples)

    @property
    def newest_index(self) -> int:
        """Absolute index of the newest published sample (-1 before the first)."""
        return self._counters.newest_index

    def host_time_of(self, index: int) -> float | None:
        """Host receive time (``time.time()``) of the chunk holding sample ``index``.

        None if that chunk is no longer remembered (only the last 512 chunks are) or has
        not arrived yet.
        """
        for last, t in list(self._chunk_times):  # oldest first
            if last >= index:
                return t
        return None

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
        return list(tracker.current(idle))

    def counters(self) -> SessionCounters:
        """A snapshot of the integrity and throughput counters."""
        with self._lock:
            c = SessionCounters(**self._counters.__dict__)
        if self.source is not None:
            c.__dict__.update(self.source.stats.as_dict())
        return c

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
        with self._lock:
            self._markers.append(marker)
            if self._writer is not None:
                self._writer.add_marker(marker)
        log.info("marker %r at tick %d", marker.label, marker.tick)
        if self._lsl is not None:
            self._lsl.push_marker(marker)
        return marker

    # -- Lab Streaming Layer -------------------------------------------------------------

    def _start_lsl(self) -> None:
        from emgfb.acquisition.lsl import LslMarkerInlet, SampleClock

        self._lsl_clock = SampleClock(self.fs)
        if self._lsl_name:
            from emgfb.lsl_out import LslPublisher

            self._lsl = LslPublisher(self.source.info, self.montage, self.uv_per_count,
                                     self.offset_counts, name=self._lsl_name,
                                     clock=self._lsl_clock)
        if self._markers_from:
            self._lsl_markers = LslMarkerInlet(self._markers_from, self._lsl_clock,
                                               self._insert_marker)
            self._lsl_markers.start()

    def _stop_lsl(self) -> None:
        inlet, self._lsl_markers = self._lsl_markers, None
        if inlet is not None:
            inlet.stop()
        pub, self._lsl = self._lsl, None
        if pub is not None:
            pub.close()

    def _insert_marker(self, marker: Marker) -> None:
        """A marker with its own tick (another program's, via LSL): session + recording."""
        with self._lock:
            self._markers.append(marker)
            if self._writer is not None:
                self._writer.add_marker(marker)

    def set_document(self, name: str, document: Any) -> bool:
        """Store a JSON document (``calibration``, ``protocol``, ``scores``) in the running
        recording (:meth:`~emgfb.recording.SessionWriter.set_document`; replaces an earlier
        one). Returns False, storing nothing, when no recording runs."""
        with self._lock:
            writer = self._writer
        if writer is None:
            return False
        writer.set_document(name, document)  # a no-op if the writer closed meanwhile
        return True

    def start_record(self, path: str | Path) -> Path:
        """Start recording every following chunk to ``path`` (never overwrites).

        Raises
        ------
        SessionError
            If a recording already runs or the session has no source yet.
        RecordingError
            If the file exists or cannot be created.
        """
        from emgfb.recording import SessionWriter

        if self.source is None or self.montage is None:
            raise SessionError("start the session before recording")
        path = Path(path)
        with self._lock:
            if self._writer is not None:
                raise SessionError(f"already recording to {self._record_path}")
        if path.exists():
            raise RecordingError(f"{path}: exists; emgfb never overwrites a recording")
        writer = SessionWriter(
            path, info=self.source.info, montage=self.montage, uv_per_count=self.uv_per_count,
            offset_counts=self.offset_counts, subject=self.subject or "",
            dsp_config=self.dsp_config.as_dict() if self.dsp_config is not None else None,
            extra_meta={"source_url": self.source_url, **self.record_meta},
        )
        writer.start()
        with self._lock:
            self._writer = writer
            self._record_path = path
            self._record_start_index = self.newest_index + 1
        log.info("recording to %s", path)
        return path

    def stop_record(self) -> Path | None:
        """Finish the recording (flushes and closes the file); returns its path."""
        with self._lock:
            writer, self._writer = self._writer, None
            path, self._record_path = self._record_path, None
        if writer is not None:
            writer.close()
            log.info("recording finished: %s", path)
        return path

    @property
    def recording_path(self) -> Path | None:
        """The file being recorded, or None."""
        return self._record_path

    @property
    def recording_error(self) -> str | None:
        """Why the running recording stopped writing (disk full, I/O error), or None."""
        w = self._writer
        return str(w.error) if w is not None and w.failed else None

    @property
    def recording_seconds(self) -> float:
        """Signal time recorded so far (0 when not recording)."""
        if self._record_path is None or self.fs <= 0:
            return 0.0
        return max(0, self.newest_index + 1 - self._record_start_index) / self.fs

    def pause(self) -> None:
        """Stop reading the source (replay: playback halts where it is)."""
        self._paused.set()

    def resume(self) -> None:
        """Continue reading after :meth:`pause` (a replay continues where it halted)."""
        if self._paused.is_set() and hasattr(self.source, "position_s"):
            self._commands.append(("rebase", None))
        self._paused.clear()

    @property
    def paused(self) -> bool:
        """True between :meth:`pause` and :meth:`resume`."""
        return self._paused.is_set()

    @property
    def position_s(self) -> float | None:
        """Replay: seconds into the recording of the next sample; None for live sources."""
        pos = getattr(self.source, "position_s", None)
        return float(pos) if pos is not None else None

    def seek(self, seconds: float) -> None:
        """Replay only: continue from ``seconds`` into the recording (buffers restart)."""
        if not hasattr(self.source, "seek"):
            raise SessionError(f"{self.source_url}: this source cannot seek")
        self._commands.append(("seek", float(seconds)))

    def set_speed(self, speed: float) -> None:
        """Replay only: playback speed (x real time), from the current position on."""
        if not hasattr(self.source, "seek") or not hasattr(self.source, "speed"):
            raise SessionError(f"{self.source_url}: this source has no playback speed")
        if not speed > 0:
            raise SessionError(f"speed {speed!r}: expected > 0")
        self._commands.append(("speed", float(speed)))

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

    # -- worker --------------------------------------------------------------------------

    def _run(self) -> None:
        assert self.source is not None
        try:
            while not self._stop.is_set():
                self._do_commands()
                if self._paused.is_set():
                    self._stop.wait(self.read_timeout)
                    continue
                chunk = self.source.read(self.read_timeout)
                if chunk is None or len(chunk) == 0:
                    if self.source.finished:
                        self.state = "finished"
                        self._stop.wait(self.read_timeout)
                    continue
                self.state = "running"
                self._process(chunk)
        except Exception as exc:  # surfaced as state, never swallowed
            log.exception("live worker failed")
            self.state = "failed"
            self.error = f"{type(exc).__name__}: {exc}"

    def _do_commands(self) -> None:
        # The source is used from this thread only, so seeks happen here.
        while self._commands:
            cmd, arg = self._commands.popleft()
            if cmd == "seek":
                self.source.seek(arg)
                self._pipeline.reset()
                self._quality_checker.reset()
                with self._lock:
                    self._buffers = self._new_buffers()
                    self._counters.newest_index = -1
                    self._chunk_times.clear()
                    self._generation += 1
                log.info("replay: seek to %.2f s", arg)
            elif cmd in ("speed", "rebase"):
                # re-anchor the replay clock at the current position (no burst, no jump)
                if cmd == "speed":
                    self.source.speed = arg
                pos = self.source.position_s
                if not self.source.finished:
                    self.source.seek(pos)

    def _process(self, chunk: Chunk) -> None:
        t0 = time.perf_counter()
        counts = chunk.counts
        tick = chunk.tick
        env = self._pipeline.process(counts, tick=tick)
        filtered = self._pipeline.last_filtered
        act = self.normalisation.apply(env)
        raw_uv = (counts.astype(np.float64) - self.offset_counts) * self.uv_per_count
        q = self._quality_checker.update(raw_uv, counts, filtered)
        self._last_data = time.monotonic()
        dt = time.perf_counter() - t0
        last = int(tick[-1])
        with self._lock:
            writer = self._writer
            if writer is not None:
                writer.write(chunk)
            if chunk.markers:
                self._markers.extend(chunk.markers)
            # buffers and newest_index change together: a reader never sees one ahead
            for name, data in (("filtered", filtered), ("envelope", env), ("activation", act)):
                _ring_write(self._buffers[name], tick, data)
            self._counters.newest_index = last
        if self._lsl_clock is not None:
            self._lsl_clock.observe(chunk)
            pub = self._lsl
            if pub is not None:
                pub.push_chunk(chunk)
                pub.push_envelope(tick, env)
        if q:
            self._quality = list(q)
        self._chunk_times.append((last, chunk.host_time))
        with self._lock:
            c = self._counters
            c.chunks += 1
            c.dsp_seconds += dt
        with self._published:
            self._published.notify_all()

    def wait_for_index(self, index: int, timeout: float = 5.0) -> bool:
        """Block until sample ``index`` is published (or the worker ended, or timeout).

        Returns True if it was published. For tests, benchmarks and scripts; the GUI never
        waits.
        """
        deadline = time.monotonic() + timeout
        with self._published:
            while self.newest_index < index:
                left = deadline - time.monotonic()
                if left <= 0 or not self.running:
                    break
                self._published.wait(min(left, 0.1))
        return self.newest_index >= index


def _scalar_or_array(value: Any) -> float | np.ndarray:
    """A per-channel scale as a float when all channels agree, else a float array."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0 or np.all(arr == arr.flat[0]):
        return float(arr.flat[0])
    return arr


def _ring_write(buf: RingBuffer, tick: np.ndarray, data: np.ndarray) -> None:
    """Write samples with their absolute ticks (gaps become NaN in the buffer)."""
    buf.write(tick, np.asarray(data, dtype=np.float32))


def _ring_read(buf: RingBuffer, since: int | None, max_samples: int | None
               ) -> tuple[int, np.ndarray]:
    if since is None:
        sl = buf.latest(max_samples if max_samples is not None else buf.capacity)
    else:
        sl = buf.since(since)
    data = sl.data
    first = int(sl.tick[0]) if len(sl.tick) else buf.end
    if max_samples is not None and len(data) > max_samples:
        first, data = first + len(data) - max_samples, data[-max_samples:]
    return first, data
