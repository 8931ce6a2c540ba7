"""Ground-floor data records that travel between rooms: no behaviour, no I/O.

This module owns the plain records every room passes around: :class:`BoardInfo` (a board's
identification), :class:`Marker` (a label in the sample timeline), :class:`Chunk` (frames
delivered by a source), :class:`SourceStats` (integrity counters) and :class:`SourceState`
(what a source is doing). Recording, exercises, LSL and the GUI import them from here, so
that nothing has to import ``acquisition`` for a type. Imports nothing from emgfb.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class BoardInfo:
    """What a board says about itself in its ``EMGFB ...`` line.

    Attributes
    ----------
    firmware
        Firmware version (semver).
    board
        Board name, e.g. ``uno``.
    n_channels, fs, bits, vref_mv
        Channel count, sample rate in Hz, ADC resolution and reference in millivolts.
    line
        The line exactly as received.
    extra
        Any further ``key=value`` fields, kept for forward compatibility.
    """

    firmware: str
    board: str
    n_channels: int
    fs: float
    bits: int
    vref_mv: float
    line: str
    extra: dict[str, str] = field(default_factory=dict)

    def format_line(self) -> str:
        """Return the canonical ``EMGFB ...`` line for these values."""
        fs = int(self.fs) if float(self.fs).is_integer() else self.fs
        vref = int(self.vref_mv) if float(self.vref_mv).is_integer() else self.vref_mv
        return (
            f"EMGFB fw={self.firmware} board={self.board} ch={self.n_channels} fs={fs} "
            f"bits={self.bits} vref_mv={vref}"
        )

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly dict of the fields."""
        return {
            "firmware": self.firmware,
            "board": self.board,
            "n_channels": self.n_channels,
            "fs": self.fs,
            "bits": self.bits,
            "vref_mv": self.vref_mv,
            "line": self.line,
            **({"extra": dict(self.extra)} if self.extra else {}),
        }



@dataclass(frozen=True)
class Marker:
    """A time-stamped label in the sample timeline.

    Attributes
    ----------
    tick
        Absolute tick index the marker belongs to.
    label
        Free text, e.g. ``"rep 3 start"``.
    kind
        Category: ``"phase"``, ``"rep"``, ``"note"``, ``"key"``, ``"import"`` ...
    """

    tick: int
    label: str
    kind: str = "note"


@dataclass(frozen=True)
class Chunk:
    """Consecutive frames delivered by a source in one :meth:`Source.read`.

    Attributes
    ----------
    tick
        Absolute tick index of each frame, int64, strictly increasing across chunks; a step
        larger than one is an explicit gap of lost ticks (never silently joined).
    counts
        ADC counts as received, shape ``(n_frames, n_channels)``, uint16.
    overrun
        Per frame, the board's "dropped ticks before this frame" flag.
    host_time
        Host wall-clock time (``time.time()``, UTC seconds) when the last byte of this chunk
        was received.
    markers
        Markers that fall inside this chunk (replay); live sources leave it empty.
    host_clock
        The same moment on the host's steady clock
        (:func:`~emgfb.acquisition.source.steady_clock`: never stepped or slewed by time
        synchronisation), which the board's rate is measured against; NaN when the source
        does not give it (then ``host_time`` is used).
    """

    tick: np.ndarray
    counts: np.ndarray
    overrun: np.ndarray
    host_time: float
    markers: tuple[Marker, ...] = ()
    host_clock: float = math.nan

    def __len__(self) -> int:
        return len(self.tick)

    @property
    def lost_ticks(self) -> int:
        """Ticks missing inside this chunk (not counting a gap before its first frame)."""
        if len(self.tick) < 2:
            return 0
        return int(self.tick[-1] - self.tick[0] + 1 - len(self.tick))


@dataclass
class SourceStats:
    """Integrity counters of a source since :meth:`Source.start`.

    ``lost_ticks`` includes ticks lost while reconnecting (estimated from the host clock).
    ``suspect_frames`` counts frames that passed the CRC but whose seq no following frame
    confirmed (never delivered); ``seq_restarts`` counts restarts of the board's counter
    seen mid-stream (no tick booked as lost); ``overflow_frames`` counts frames a source
    had to drop because its consumer stopped reading (see its queue limit).
    """

    frames: int = 0
    lost_ticks: int = 0
    crc_errors: int = 0
    bytes_skipped: int = 0
    overrun_flags: int = 0
    reconnects: int = 0
    suspect_frames: int = 0
    seq_restarts: int = 0
    overflow_frames: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return dict(self.__dict__)


@dataclass
class SourceState:
    """What a source is doing, for status lines: ``"streaming"``, ``"reconnecting"``,
    ``"stopped"``, ``"finished"`` or ``"failed"``, with a human-readable detail."""

    state: str = "stopped"
    detail: str = ""
    errors: list[str] = field(default_factory=list)
