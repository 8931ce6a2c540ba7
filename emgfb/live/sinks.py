"""Where raw chunks go straight from the source: the recording and Lab Streaming Layer.

This module owns :class:`RecordingSink` (one :class:`~emgfb.recording.SessionWriter` at a
time, started and stopped from any thread, fed from the acquisition worker) and
:class:`LslSink` (the µV, envelope and marker outlets plus another program's marker
inlet). Both are fed raw chunks by the :class:`~emgfb.live.pump.SourcePump` before any
processing, so a stalled DSP worker or GUI never holds the recording back; the recording
also keeps the channel states as markers (:class:`~emgfb.dsp.StateLog`). Imports
``recording``, ``dsp``, ``lsl_out``, ``acquisition.lsl``, ``records``, ``errors`` and the other
``live`` modules.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from emgfb.errors import EmgfbError, RecordingError
from emgfb.live.channels import ChannelSetup
from emgfb.records import Chunk, Marker

log = logging.getLogger(__name__)


class SessionError(EmgfbError):
    """A live session cannot do what was asked (not started, already recording, ...)."""


class RecordingSink:
    """The running recording of a session: at most one writer, fed raw chunks.

    Parameters
    ----------
    setup
        The run's channels (montage, scale).
    source_url
        Stored in every recording.
    subject
        Pseudonymous subject code written into recordings.
    """

    def __init__(self, setup: ChannelSetup, source_url: str, subject: str | None = None
                 ) -> None:
        self.setup = setup
        self.source_url = source_url
        self.subject = subject
        self._lock = threading.Lock()
        self._writer: Any = None
        self._path: Path | None = None
        self._first_tick: int | None = None
        self._last_tick: int | None = None
        self._states: Any = None  # the running recording's StateLog

    def start(self, path: str | Path, dsp_config: Any = None,
              meta: dict[str, Any] | None = None) -> Path:
        """Create ``path`` (never overwrites) and record every following chunk into it.

        Raises
        ------
        SessionError
            If a recording already runs.
        RecordingError
            If the file exists or cannot be created.
        """
        from emgfb.dsp import StateLog
        from emgfb.dsp.quality import STATE_LOG_HOLD_S
        from emgfb.recording import SessionWriter

        path = Path(path)
        with self._lock:
            if self._writer is not None:
                raise SessionError(f"already recording to {self._path}")
        if path.exists():
            raise RecordingError(f"{path}: exists; emgfb never overwrites a recording")
        s = self.setup
        writer = SessionWriter(
            path, info=s.info, montage=s.montage, uv_per_count=s.uv_per_count,
            offset_counts=s.offset_counts, subject=self.subject or "",
            dsp_config=dsp_config.as_dict() if hasattr(dsp_config, "as_dict") else dsp_config,
            frontend=None if s.scale_from_source else s.frontend_meta(),
            extra_meta={"source_url": self.source_url, **(meta or {})},
        )
        writer.start()
        with self._lock:
            self._writer, self._path = writer, path
            self._first_tick = self._last_tick = None
            self._states = StateLog(s.montage.labels, round(STATE_LOG_HOLD_S * s.fs))
        log.info("recording to %s", path)
        return path

    def stop(self, link: dict | None = None, clock: dict | None = None) -> Path | None:
        """Finish the recording (flush, close, mark complete); returns its path.

        ``link``: the source's integrity counters, stored as the ``link`` document;
        ``clock``: the board's measured rate, stored as the ``clock`` document."""
        with self._lock:
            writer, self._writer = self._writer, None
            path, self._path = self._path, None
        if writer is not None:
            if link is not None:
                writer.set_document("link", link)
            if clock is not None:
                writer.set_document("clock", clock)
            writer.close()
            log.info("recording finished: %s", path)
        return path

    def write(self, chunk: Chunk) -> None:
        """Queue a raw chunk (never blocks); a no-op when nothing records."""
        with self._lock:
            writer = self._writer
            if writer is None:
                return
            writer.write(chunk)
            if self._first_tick is None:
                self._first_tick = int(chunk.tick[0])
            self._last_tick = int(chunk.tick[-1])

    def add_marker(self, marker: Marker) -> None:
        """Queue a marker for the running recording, if any."""
        with self._lock:
            if self._writer is not None:
                self._writer.add_marker(marker)

    def log_states(self, states: list[Any], tick: int) -> None:
        """Store the channel states (an assessment at ``tick``) as the recording's
        ``channel`` markers (:class:`~emgfb.dsp.StateLog`), if a recording runs."""
        with self._lock:
            if self._writer is None:
                return
            for marker in self._states.feed(states, tick):
                self._writer.add_marker(marker)

    def set_document(self, name: str, document: Any) -> bool:
        """Store a JSON document in the running recording; False when none runs."""
        with self._lock:
            writer = self._writer
        if writer is None:
            return False
        writer.set_document(name, document)  # a no-op if the writer closed meanwhile
        return True

    @property
    def path(self) -> Path | None:
        """The file being recorded, or None."""
        return self._path

    @property
    def error(self) -> str | None:
        """Why the running recording stopped writing (disk full, I/O error), or None."""
        w = self._writer
        return str(w.error) if w is not None and w.failed else None

    @property
    def seconds(self) -> float:
        """Signal time handed to the recording so far (ticks, gaps included)."""
        first, last = self._first_tick, self._last_tick
        if self._path is None or first is None or last is None:
            return 0.0
        return (last - first + 1) / self.setup.fs


class LslSink:
    """Lab Streaming Layer around a session: outlets for its streams, an inlet for markers.

    Parameters
    ----------
    setup
        The run's channels.
    name
        Base name of the µV, envelope and marker outlets; None: no outlets.
    markers_from
        ``lsl://NAME`` of another program's marker stream; its markers go to
        ``on_marker`` at the tick they were stamped with.
    on_marker
        Receives the inlet's markers.
    dsp_config
        Stored in the outlets' descriptions.
    """

    def __init__(self, setup: ChannelSetup, name: str | None, markers_from: str | None,
                 on_marker: Callable[[Marker], None], dsp_config: Any = None) -> None:
        from emgfb.acquisition.lsl import LslMarkerInlet, SampleClock

        self.clock = SampleClock(setup.fs)
        self.publisher: Any = None
        self.inlet: Any = None
        try:
            if name:
                from emgfb.lsl_out import LslPublisher

                self.publisher = LslPublisher(setup.info, setup.montage, setup.uv_per_count,
                                              setup.offset_counts, name=name,
                                              dsp_config=dsp_config, clock=self.clock)
            if markers_from:
                self.inlet = LslMarkerInlet(markers_from, self.clock, on_marker)
                self.inlet.start()
        except BaseException:
            self.close()
            raise

    def push_chunk(self, chunk: Chunk) -> None:
        """Anchor the sample clock on a raw chunk and publish it (acquisition thread)."""
        self.clock.observe(chunk)
        if self.publisher is not None:
            self.publisher.push_chunk(chunk)

    def push_envelope(self, tick: np.ndarray, envelope: np.ndarray) -> None:
        """Publish envelope rows (processing thread)."""
        if self.publisher is not None:
            self.publisher.push_envelope(tick, envelope)

    def push_marker(self, marker: Marker) -> None:
        """Publish a session marker."""
        if self.publisher is not None:
            self.publisher.push_marker(marker)

    def close(self) -> None:
        """Stop the inlet and close the outlets (idempotent)."""
        inlet, self.inlet = self.inlet, None
        if inlet is not None:
            inlet.stop()
        pub, self.publisher = self.publisher, None
        if pub is not None:
            pub.close()
