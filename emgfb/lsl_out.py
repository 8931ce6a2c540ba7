"""Lab Streaming Layer output: emgfb's µV, envelope and marker streams as LSL outlets.

This module owns :class:`LslPublisher`, used by ``emgfb live``, ``record`` and ``stream``
with ``--lsl`` (and by :class:`~emgfb.live.LiveSession`). It publishes three streams under
one base name ``NAME``:

========================= =============== ========================================
stream (name)              type            content
========================= =============== ========================================
``NAME``                   ``EMG``         raw signal in µV, one sample per tick
``NAME-envelope``          ``EMGEnvelope`` activation envelope in µV, per tick
``NAME-markers``           ``Markers``     every marker emgfb inserts (string, irregular)
========================= =============== ========================================

Timestamps come from the sample clock (:class:`~emgfb.acquisition.lsl.SampleClock`:
ticks anchored to ``local_clock()`` at the first chunk, at the board's measured rate once
ten seconds show how far its crystal is off the nominal one), never from read times, so a
gap of lost ticks is a gap in time, read jitter never reaches the stream and a board 0.5 %
fast does not drift 18 s an hour away from the other streams.
The ``EMG`` stream describes its channels (label, unit ``microvolts``, type, muscle, side)
and the acquisition (board, firmware, rate, ADC bits, ``uv_per_count``,
``offset_counts``), which lets ``lsl://`` on another emgfb recover the exact counts.

Imports ``acquisition`` (the sample clock and pylsl loader), ``montage``, ``protocol``,
``errors`` and, for a publisher that computes its own envelope, ``dsp``; pylsl is imported
lazily. Never Qt.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from emgfb import __version__
from emgfb.acquisition.lsl import SampleClock, import_pylsl
from emgfb.montage import Montage
from emgfb.protocol import BoardInfo
from emgfb.records import Chunk, Marker

log = logging.getLogger(__name__)

DEFAULT_NAME = "emgfb"


def _fmt(values: Any) -> str:
    """One number or a per-channel array as space-separated text."""
    return " ".join(repr(float(v)) for v in np.atleast_1d(np.asarray(values, dtype=float)))


class LslPublisher:
    """Publish one session's µV samples, envelope and markers on LSL.

    Lifecycle: construct (creates the three outlets; they are visible on the network at
    once) -> :meth:`push_chunk` / :meth:`push_envelope` / :meth:`push_marker` from the
    acquisition thread (markers from any thread) -> :meth:`close`. ``with`` closes.

    Parameters
    ----------
    info
        The board's identification (rate, channel count, ADC).
    montage
        Channel labels, muscles and sides.
    uv_per_count, offset_counts
        Counts-to-µV scale, one number or one per channel:
        ``uv = (counts - offset_counts) * uv_per_count``.
    name
        Base name of the streams (``NAME``, ``NAME-envelope``, ``NAME-markers``).
    source_id
        LSL source id (lets inlets reconnect after a restart); default ``emgfb-NAME``.
    dsp_config
        If given, :meth:`push_chunk` also computes the envelope with an
        :class:`~emgfb.dsp.EnvelopePipeline` of these settings and publishes it; without
        it the caller pushes the envelope with :meth:`push_envelope` (a live session,
        which has it already).
    clock
        The tick <-> LSL time mapping; default a new one anchored at the first chunk and
        drift-corrected by every chunk's arrival.
        Share it with an :class:`~emgfb.acquisition.lsl.LslMarkerInlet` so incoming and
        outgoing timestamps agree.
    """

    def __init__(self, info: BoardInfo, montage: Montage, uv_per_count: Any,
                 offset_counts: Any, name: str = DEFAULT_NAME, *,
                 source_id: str | None = None, dsp_config: Any = None,
                 clock: SampleClock | None = None):
        pylsl = self._pylsl = import_pylsl()
        self.name = name
        self.fs = float(info.fs)
        self.n_channels = int(info.n_channels)
        self.uv_per_count = np.asarray(uv_per_count, dtype=np.float64)
        self.offset_counts = np.asarray(offset_counts, dtype=np.float64)
        self.clock = clock if clock is not None else SampleClock(self.fs)
        self.source_id = source_id or f"emgfb-{name}"
        self.samples_pushed = 0
        self.markers_pushed = 0
        self._last_tick: int | None = None
        self._pipeline: Any = None
        if dsp_config is not None:
            from emgfb.dsp import EnvelopePipeline

            self._pipeline = EnvelopePipeline(dsp_config, self.fs, self.n_channels,
                                              uv_per_count, offset_counts)
        emg = pylsl.StreamInfo(name, "EMG", self.n_channels, self.fs, pylsl.cf_float32,
                               self.source_id)
        self._describe(emg, info, montage, "EMG")
        env = pylsl.StreamInfo(f"{name}-envelope", "EMGEnvelope", self.n_channels, self.fs,
                               pylsl.cf_float32, f"{self.source_id}-envelope")
        self._describe(env, info, montage, "EMGEnvelope")
        mk = pylsl.StreamInfo(f"{name}-markers", "Markers", 1, pylsl.IRREGULAR_RATE,
                              pylsl.cf_string, f"{self.source_id}-markers")
        mk.desc().append_child_value("manufacturer", "emgfb")
        # chunk_size 0 / pushthrough: every chunk leaves at once (low latency)
        self._emg = pylsl.StreamOutlet(emg)
        self._env = pylsl.StreamOutlet(env)
        self._markers = pylsl.StreamOutlet(mk)
        log.info("LSL outlets %r, %r, %r (%d ch at %g Hz)", name, f"{name}-envelope",
                 f"{name}-markers", self.n_channels, self.fs)

    def _describe(self, sinfo: Any, info: BoardInfo, montage: Montage, kind: str) -> None:
        desc = sinfo.desc()
        desc.append_child_value("manufacturer", "emgfb")
        chans = desc.append_child("channels")
        for ch in montage.channels:
            c = chans.append_child("channel")
            c.append_child_value("label", ch.label)
            c.append_child_value("unit", "microvolts")
            c.append_child_value("type", kind)
            c.append_child_value("muscle", ch.muscle)
            c.append_child_value("side", ch.side)
        acq = desc.append_child("acquisition")
        for key, value in (
            ("manufacturer", "emgfb"), ("model", info.board), ("firmware", info.firmware),
            ("emgfb_version", __version__), ("fs", repr(float(info.fs))),
            ("bits", str(info.bits)), ("vref_mv", repr(float(info.vref_mv))),
            ("uv_per_count", _fmt(self.uv_per_count)),
            ("offset_counts", _fmt(self.offset_counts)),
            ("timestamps", "sample clock: ticks anchored to local_clock(), drift-corrected"),
        ):
            acq.append_child_value(key, value)
        mont = desc.append_child("montage")
        mont.append_child_value("name", montage.name)
        mont.append_child_value("affected_side", montage.affected_side)

    # -- pushing -------------------------------------------------------------------------

    def _timestamps(self, tick: np.ndarray) -> np.ndarray:
        if self._last_tick is not None and int(tick[0]) <= self._last_tick:
            # A replay seek (or a restarted source) went back in ticks: continue the
            # timeline from now rather than send timestamps back in time.
            log.info("LSL: ticks restarted at %d; re-anchoring the sample clock", tick[0])
            self.clock.anchor(int(tick[-1]), self._pylsl.local_clock())
        return self.clock.time_of(tick)

    def push_chunk(self, chunk: Chunk) -> None:
        """Publish a chunk's samples in µV (plus its envelope with ``dsp_config``, and the
        markers it carries) with sample-clock timestamps."""
        if len(chunk) == 0 or self._emg is None:
            return
        self.clock.observe(chunk)
        tick = np.asarray(chunk.tick, dtype=np.int64)
        ts = self._timestamps(tick)
        uv = (chunk.counts.astype(np.float64) - self.offset_counts) * self.uv_per_count
        self._emg.push_chunk(np.ascontiguousarray(uv, dtype=np.float32), ts.tolist())
        self._last_tick = int(tick[-1])
        self.samples_pushed += len(tick)
        if self._pipeline is not None:
            self._push_env(ts, self._pipeline.process(chunk.counts, tick=tick))
        for m in chunk.markers:
            self.push_marker(m)

    def push_envelope(self, tick: np.ndarray, env: np.ndarray) -> None:
        """Publish envelope rows (µV, shape ``(n, n_channels)``) of ticks ``tick``.

        Call after :meth:`push_chunk` of the same ticks (which anchors the clock).
        """
        tick = np.asarray(tick, dtype=np.int64)
        if len(tick) == 0 or not self.clock.anchored or self._env is None:
            return
        self._push_env(self.clock.time_of(tick), env)

    def _push_env(self, ts: np.ndarray, env: np.ndarray) -> None:
        self._env.push_chunk(np.ascontiguousarray(env, dtype=np.float32), ts.tolist())

    def push_marker(self, marker: Marker) -> None:
        """Publish a marker's label, stamped with the LSL time of its tick (thread-safe)."""
        if self._markers is None:
            return
        ts = (float(self.clock.time_of(marker.tick)) if self.clock.anchored
              else self._pylsl.local_clock())
        self._markers.push_sample([marker.label], ts)
        self.markers_pushed += 1

    def close(self) -> None:
        """Destroy the outlets (idempotent); inlets see the streams end."""
        for attr in ("_emg", "_env", "_markers"):
            if getattr(self, attr, None) is not None:
                setattr(self, attr, None)  # pylsl destroys the outlet with the object
        log.info("LSL outlets %r closed (%d samples, %d markers)", self.name,
                 self.samples_pushed, self.markers_pushed)

    def __enter__(self) -> LslPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
