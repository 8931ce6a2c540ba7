"""The built-in simulated board: ``sim://?seed=1&speed=1&ch=6&fs=1000``.

This module owns :class:`SimSource`, a :class:`~emgfb.acquisition.source.Source` that runs a
:class:`~emgfb.acquisition.simulator.FacialEmgModel` and passes its counts through wire
protocol v1 bytes (``encode_frames`` -> ``FrameDecoder.feed``), so every consumer of the
simulator also exercises the real decoder. It paces itself on a monotonic clock at
``speed`` x real time, or, with ``speed=0``, hands out the next chunk at once (tests, batch
work). The data depend only on the seed, never on the speed or the reading rhythm.
No threads. Imports ``source``, ``simulator``, ``protocol``, ``montage``, ``errors``.

URL parameters (all optional):

============== ========== =====================================================
``seed``        1          seed of the model
``speed``       1          1 = real time, N = N x, 0 = as fast as the reader reads
``ch``          6          channel count 1..16 (``montage.default_montage(ch)``)
``fs``          1000       sample rate in Hz (1..20000, emgfb.limits)
``mains``       50         mains frequency: 50, 60 or 0 (no hum)
``script``      demo       ``demo`` (rest, brow lift, eye closure, smile, pucker) or ``rest``
``electrode_off``          channel index whose electrode is off
``off_mode``    rail       how it is off: ``rail``, ``mid`` (flat at mid-scale),
                           ``dither`` (one-count dither) or ``float`` (hum)
``contact``                channel index with intermittent contact (steps and pops)
``motion``                 channel index with motion artefacts (~3 Hz bumps)
``drift``                  channel index with a slow baseline drift
``saturate``               channel index whose front-end saturates below the ADC rails
``clock_ppm``   (seeded)   the board's clock error in ppm (moves the hum off 50/60 Hz;
                           at speed 1 it also paces the samples, as a real board's)
``grid_drift``  0.1        the grid's frequency wander in Hz (0 = steady)
``chunk``       10         milliseconds of data per read (1..1000)
``montage``                montage name or TOML path (its channel count wins over ``ch``)
============== ========== =====================================================
"""

from __future__ import annotations

import dataclasses
import logging
import time

from emgfb import __version__
from emgfb.acquisition.simulator import OFF_MODES, SCRIPTS, FacialEmgModel
from emgfb.acquisition.source import (
    Chunk,
    Source,
    query_param,
    register_scheme,
    steady_clock,
)
from emgfb.errors import ConfigError
from emgfb.limits import CHANNELS, CLOCK_PPM, SAMPLE_RATE_HZ, SPEED
from emgfb.montage import Montage, default_montage, load_montage
from emgfb.protocol import BoardInfo, FrameDecoder, encode_frames

log = logging.getLogger(__name__)

_KNOWN = ("seed", "speed", "ch", "fs", "mains", "script", "electrode_off", "off_mode",
          "contact", "motion", "drift", "saturate", "clock_ppm", "grid_drift", "chunk",
          "montage")
#: URL parameters naming a channel with an artefact, and the model's name for it.
_ARTEFACT_PARAMS = {"contact": "contact", "motion": "motion", "drift": "drift"}
_HINT = "sim:// URL"
#: A paced reader that fell far behind gets at most this much per read (seconds of data).
_MAX_CATCH_UP_S = 1.0


class SimSource(Source):
    """Simulated board delivering realistic facial sEMG through protocol-v1 frames.

    Lifecycle as for every :class:`Source`: construct (no work) -> :meth:`start` ->
    :meth:`read` ... -> :meth:`stop`; :meth:`start` again restarts the stream from tick 0
    with a fresh model (same seed, same data).

    Parameters
    ----------
    montage
        Channels of the simulated face.
    fs
        Sample rate in Hz.
    seed
        Model seed.
    speed
        Pace: 1 = real time, N = N x real time, 0 = no pacing.
    mains_hz
        50, 60 or 0.
    script
        ``"demo"`` or ``"rest"`` (see :mod:`emgfb.acquisition.simulator`).
    electrode_off
        Channel whose electrode is off (flat line at the rail), or ``None``.
    chunk_ms
        Milliseconds of data per read.
    off_mode
        How the electrode is off (:data:`~emgfb.acquisition.simulator.OFF_MODES`).
    faults
        ``{"contact"|"motion"|"drift"|"saturate": channel}``: artefacts switched on, and
        the channel whose front-end saturates below the ADC rails.
    clock_ppm, grid_drift_hz
        The board's clock error (None: seeded) and the grid's frequency wander.

    Attributes
    ----------
    model
        The :class:`FacialEmgModel` (valid from construction; replaced on each
        :meth:`start`), e.g. for ``source.model.set_drive({...})``.
    decoder
        The :class:`~emgfb.protocol.FrameDecoder` every frame passes through.
    """

    def __init__(
        self,
        montage: Montage,
        fs: float = 1000.0,
        seed: int = 1,
        *,
        speed: float = 1.0,
        mains_hz: float = 50.0,
        script: str = "demo",
        electrode_off: int | None = None,
        chunk_ms: float = 10.0,
        off_mode: str = "rail",
        faults: dict[str, int] | None = None,
        clock_ppm: float | None = None,
        grid_drift_hz: float = 0.1,
    ):
        super().__init__()
        if speed < 0:
            raise ConfigError(f"{_HINT}: speed={speed!r}: expected >= 0 (0 = unpaced)")
        self.montage: Montage = montage  # always known (the base allows None)
        self.fs = float(fs)
        self.seed = int(seed)
        self.speed = float(speed)
        self.mains_hz = float(mains_hz)
        self.script = script
        self.electrode_off = electrode_off
        self.off_mode = off_mode
        self.faults = dict(faults or {})
        self.clock_ppm = clock_ppm
        self.grid_drift_hz = float(grid_drift_hz)
        self.chunk_len = max(1, round(chunk_ms * self.fs / 1000.0))
        self.model = self._make_model()
        self.decoder = FrameDecoder(montage.n_channels)
        self._running = False
        self._t0 = 0.0
        self._next_tick = 0
        bits, vref = self.model.bits, self.model.vref_mv
        info = BoardInfo(__version__, "sim", montage.n_channels, self.fs, bits, vref, "")
        self._board_info = dataclasses.replace(info, line=info.format_line())

    def _make_model(self) -> FacialEmgModel:
        model = FacialEmgModel(
            self.montage, self.fs, self.seed, mains_hz=self.mains_hz, script=self.script,
            clock_ppm=self.clock_ppm, grid_drift_hz=self.grid_drift_hz,
        )
        if self.electrode_off is not None:
            model.set_electrode_off(self.electrode_off, True, self.off_mode)
        for name, channel in self.faults.items():
            if name == "saturate":
                model.set_saturation(channel, True, stage="frontend")
            else:
                model.set_artefact(_ARTEFACT_PARAMS[name], channel, True)
        return model

    def start(self) -> None:
        """Begin a fresh run at tick 0 (idempotent while running)."""
        if self._running:
            return
        if self.model.samples_generated:
            self.model = self._make_model()
        self.decoder = FrameDecoder(self.montage.n_channels)
        self._info = self._board_info
        self._next_tick = 0
        self._t0 = time.monotonic()
        self._running = True
        self.status.state, self.status.detail = "streaming", self._board_info.line
        log.info("simulated board started: %s (speed %g)", self._board_info.line, self.speed)

    @property
    def on_demand(self) -> bool:
        """Unpaced (``speed=0``): frames are made as they are read."""
        return self.speed == 0

    @property
    def face(self) -> FacialEmgModel:
        """The simulated face (:attr:`model`), for an autopilot patient to steer."""
        return self.model

    def scale(self) -> tuple[float, float]:
        """The simulated front-end's counts-to-µV scale and offset."""
        return self.model.uv_per_count, self.model.offset_counts

    def read(self, timeout: float | None = 0.1) -> Chunk | None:
        """Return the next chunk (``speed=0``) or the chunk(s) due by now, waiting up to
        ``timeout`` seconds for one to fall due. ``None`` if stopped or nothing is due."""
        if not self._running:
            return None
        n = self.chunk_len
        if self.speed > 0:
            n = self._wait_due(timeout)
            if n == 0:
                return None
        counts = self.model.generate(n)
        data = encode_frames(self._next_tick, counts)
        self._next_tick += n
        frames = self.decoder.feed(data)
        self._sync_stats()
        return Chunk(frames.tick, frames.counts, frames.overrun, time.time(),
                     host_clock=steady_clock())

    @property
    def realtime(self) -> bool:
        """At speed 1 the simulated board's clock paces it (see :meth:`_wait_due`)."""
        return self.speed == 1.0

    def _wait_due(self, timeout: float | None) -> int:
        """Frames due now, in whole chunks; sleeps until the next chunk is due if needed.
        The simulated board samples at ``fs·(1 + clock_ppm·1e-6)`` per host second, as a
        real board with that clock error does (the hum sits where that clock puts it)."""
        rate = self.fs * (1.0 + self.model.clock_ppm * 1e-6) * self.speed
        due = int((time.monotonic() - self._t0) * rate) - self._next_tick
        if due < self.chunk_len:
            wait = (self._next_tick + self.chunk_len) / rate - (time.monotonic() - self._t0)
            if timeout is not None and wait > timeout:
                time.sleep(max(timeout, 0.0))  # pacing a real-time source, not synchronising
                return 0
            time.sleep(max(wait, 0.0))
            due = int((time.monotonic() - self._t0) * rate) - self._next_tick
        due = min(due, max(self.chunk_len, int(_MAX_CATCH_UP_S * self.fs)))
        return (due // self.chunk_len) * self.chunk_len

    def _sync_stats(self) -> None:
        d = self.decoder.stats
        s = self.stats
        s.frames, s.lost_ticks, s.crc_errors = d.frames, d.lost_ticks, d.crc_errors
        s.bytes_skipped, s.overrun_flags = d.bytes_skipped, d.overrun_flags

    def stop(self) -> None:
        """Stop streaming (idempotent)."""
        if self._running:
            log.info("simulated board stopped after %d ticks", self._next_tick)
        self._running = False
        self.status.state = "stopped"


def _factory(path: str, query: dict[str, str]) -> SimSource:
    """Build a :class:`SimSource` from ``sim://`` URL parameters (see module docstring)."""
    unknown = sorted(set(query) - set(_KNOWN))
    if unknown:
        raise ConfigError(
            f"{_HINT}: unknown parameter {unknown[0]!r}; expected one of {', '.join(_KNOWN)}"
        )
    if path not in ("", "/"):
        raise ConfigError(f"{_HINT}: unexpected path {path!r}; use sim://?key=value&...")
    seed = query_param(query, "seed", int, 1, _HINT)
    speed = query_param(query, "speed", SPEED, 1.0, _HINT)
    n_ch = query_param(query, "ch", CHANNELS, 6, _HINT)
    fs = query_param(query, "fs", SAMPLE_RATE_HZ, 1000.0, _HINT)
    mains = query_param(query, "mains", float, 50.0, _HINT)
    script = query_param(query, "script", str, "demo", _HINT)
    electrode_off = query_param(query, "electrode_off", int, None, _HINT)
    chunk_ms = query_param(query, "chunk", float, 10.0, _HINT)
    montage_name = query_param(query, "montage", str, None, _HINT)
    off_mode = query_param(query, "off_mode", str, "rail", _HINT)
    clock_ppm = query_param(query, "clock_ppm", CLOCK_PPM, None, _HINT)
    grid_drift = query_param(query, "grid_drift", float, 0.1, _HINT)
    faults = {name: query_param(query, name, int, None, _HINT)
              for name in (*_ARTEFACT_PARAMS, "saturate") if name in query}
    _check(off_mode not in OFF_MODES, "off_mode", off_mode, "one of " + ", ".join(OFF_MODES))
    _check(not 0 <= grid_drift <= 2, "grid_drift", grid_drift, "0..2 Hz")
    _check(mains not in (0, 50, 60), "mains", mains, "50, 60 or 0")
    _check(script not in SCRIPTS, "script", script, "one of " + ", ".join(SCRIPTS))
    _check(not 1 <= chunk_ms <= 1000, "chunk", chunk_ms, "1..1000 ms")
    if montage_name is not None:
        montage = load_montage(montage_name)
        if "ch" in query and montage.n_channels != n_ch:
            raise ConfigError(
                f"{_HINT}: ch={n_ch} but montage {montage_name!r} has "
                f"{montage.n_channels} channels"
            )
    else:
        montage = default_montage(n_ch)
    for name, channel in (("electrode_off", electrode_off), *faults.items()):
        if channel is not None:
            _check(not 0 <= channel < montage.n_channels, name, channel,
                   f"a channel index 0..{montage.n_channels - 1}")
    return SimSource(
        montage, fs, seed, speed=speed, mains_hz=mains, script=script,
        electrode_off=electrode_off, chunk_ms=chunk_ms, off_mode=off_mode, faults=faults,
        clock_ppm=clock_ppm, grid_drift_hz=grid_drift,
    )


def _check(bad: bool, name: str, value: object, expected: str) -> None:
    if bad:
        raise ConfigError(f"{_HINT}: {name}={value!r}: expected {expected}")


register_scheme("sim", _factory)
