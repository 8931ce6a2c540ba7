"""The ``Source`` interface every acquisition back-end implements, and URL dispatch.

This module owns the contract between data producers (serial boards, the simulated board,
recording replay, LSL) and their consumers (DSP, recording, GUI): the lifecycle of a
:class:`Source` and :func:`open_source`, which picks an implementation from a URL such as
``serial:///dev/ttyACM0?baud=1000000``, ``sim://?seed=1&speed=0`` or
``file://session.h5?speed=2``. The records a source delivers (:class:`Chunk`,
:class:`SourceStats`, ...) live in ``emgfb.records`` and are re-exported here. Imports
``records`` and ``errors`` only; implementations register themselves with
:func:`register_scheme`.
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlsplit

from emgfb.errors import ConfigError
from emgfb.limits import Limit
from emgfb.records import BoardInfo, Chunk, Marker, SourceState, SourceStats

if TYPE_CHECKING:
    from emgfb.montage import Montage

log = logging.getLogger(__name__)

__all__ = [
    "BUILTIN_SCHEMES", "BoardInfo", "Chunk", "Marker", "Playback", "Source", "SourceFactory",
    "SourceState", "SourceStats", "open_source", "parse_source_url", "query_param",
    "register_scheme",
]


@runtime_checkable
class Playback(Protocol):
    """What a recorded source lets its reader control: position, speed and seeking."""

    speed: float

    @property
    def position_s(self) -> float:
        """Seconds into the recording of the next sample to be delivered."""

    def seek(self, seconds: float) -> None:
        """Continue delivery from ``seconds`` into the recording."""


#: The host clock a board's rate is measured against: CLOCK_MONOTONIC_RAW (the host's own
#: oscillator, never stepped nor slewed: NTP daemons slew the other clocks by up to 500 ppm,
#: chrony by far more while it corrects an offset) where the OS has it.
_STEADY = getattr(time, "CLOCK_MONOTONIC_RAW", None)


def steady_clock() -> float:
    """Seconds on the host's steady clock (:attr:`~emgfb.records.Chunk.host_clock`):
    ``CLOCK_MONOTONIC_RAW`` where the OS has it, else :func:`time.monotonic`."""
    return time.clock_gettime(_STEADY) if _STEADY is not None else time.monotonic()


class Source(abc.ABC):
    """A producer of EMG frames.

    Lifecycle: construct (configure only, no I/O) -> :meth:`start` (open, handshake, begin
    streaming; :attr:`info` is valid afterwards) -> :meth:`read` repeatedly -> :meth:`stop`
    -> :meth:`close`. ``with source:`` starts and finally stops and closes it. Sources are
    used from one consumer thread; implementations may run their own reader thread inside.

    What a source can do beyond streaming it declares here, instead of consumers probing
    it with ``getattr``: :attr:`montage` (the channels, if the source knows them),
    :meth:`scale` (its counts-to-µV scale, if it knows it), :attr:`playback` (seek,
    speed and position, for recorded sources), :attr:`on_demand` (frames made as they
    are read), :attr:`realtime` (host time runs with the board's clock) and :attr:`face`
    (the simulated face an autopilot can steer).
    """

    url: str = ""
    #: The montage the source knows (simulated board, replay, ``lsl://``), else None.
    montage: Montage | None = None

    def __init__(self) -> None:
        self.stats = SourceStats()
        self.status = SourceState()
        self._info: BoardInfo | None = None

    @property
    def info(self) -> BoardInfo:
        """The board's identification (valid after :meth:`start`)."""
        if self._info is None:
            raise RuntimeError(f"{type(self).__name__}.info is only known after start()")
        return self._info

    @property
    def finished(self) -> bool:
        """True when a finite source (a file without loop) has delivered everything."""
        return False

    @property
    def on_demand(self) -> bool:
        """True when frames are made as they are read (an unpaced simulator or replay):
        a slow reader loses nothing by waiting. False for boards, whose frames arrive
        whether read or not."""
        return False

    @property
    def realtime(self) -> bool:
        """True when frames reach the host at the board's own pace (boards, a simulator at
        speed 1), so host receive times measure the board's clock; False for a simulator
        paced faster or slower, an unpaced one or a replay."""
        return not self.on_demand and self.playback is None

    def scale(self) -> tuple[Any, Any] | None:
        """``(uv_per_count, offset_counts)`` when the source knows its own counts-to-µV
        scale (simulated board, replay, ``lsl://``); None when the front-end decides it."""
        return None

    @property
    def face(self) -> Any:
        """The simulated face behind a simulated board, which an autopilot patient can
        steer (``face.set_drive``); None for real boards and recordings."""
        return None

    @property
    def playback(self) -> Playback | None:
        """Seek, speed and position control of a recorded source; None for live boards."""
        return None

    @abc.abstractmethod
    def start(self) -> None:
        """Open the device or file and begin delivering frames."""

    @abc.abstractmethod
    def read(self, timeout: float | None = 0.1) -> Chunk | None:
        """Return the frames received since the last call, waiting up to ``timeout`` s.

        Returns ``None`` when nothing arrived in time (or the source is finished).
        """

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop streaming (idempotent)."""

    def close(self) -> None:
        """Release the device or file (idempotent). Default: :meth:`stop`."""
        self.stop()

    def __enter__(self) -> Source:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.close()

    def chunks(self, timeout: float = 0.1) -> Iterator[Chunk]:
        """Iterate over chunks until the source is finished (forever for live sources)."""
        while not self.finished:
            chunk = self.read(timeout)
            if chunk is not None and len(chunk):
                yield chunk


SourceFactory = Callable[[str, dict[str, str]], Source]
_SCHEMES: dict[str, SourceFactory] = {}


def register_scheme(scheme: str, factory: SourceFactory) -> None:
    """Make ``scheme://...`` URLs open with ``factory(url_path, query_params)``."""
    _SCHEMES[scheme] = factory


def parse_source_url(url: str) -> tuple[str, str, dict[str, str]]:
    """Split ``scheme://path?k=v`` into scheme, path and query dict.

    A bare device path (``/dev/ttyACM0``, ``COM3``) means ``serial://``.
    """
    if "://" not in url:
        return "serial", url, {}
    parts = urlsplit(url)
    path = parts.netloc + parts.path
    try:
        query = dict(parse_qsl(parts.query, keep_blank_values=True,
                               strict_parsing=bool(parts.query)))
    except ValueError:
        raise ConfigError(f"source URL {url!r}: malformed query {parts.query!r}") from None
    return parts.scheme, path, query


#: Built-in schemes and the module that implements (and registers) each, imported on first
#: use so that opening a ``sim://`` source never loads pyserial or pylsl. ``file://`` replay
#: lives in the recording room, above this one; naming it by string keeps this room free of
#: imports from above.
BUILTIN_SCHEMES = {
    "serial": "emgfb.acquisition.serial_source",
    "pyserial": "emgfb.acquisition.serial_source",
    "sim": "emgfb.acquisition.sim_source",
    "lsl": "emgfb.acquisition.lsl",
    "file": "emgfb.recording.replay",
}


def open_source(url: str) -> Source:
    """Create (but do not start) the source a URL names.

    Any scheme that is not built in or registered goes to pyserial's ``serial_for_url``
    (``socket://host:port``, ``rfc2217://``, ``loop://``).

    Raises
    ------
    ConfigError
        If the scheme is unknown or a parameter is invalid.
    """
    import importlib

    scheme, path, query = parse_source_url(url)
    if scheme not in _SCHEMES and scheme in BUILTIN_SCHEMES:
        importlib.import_module(BUILTIN_SCHEMES[scheme])
    factory = _SCHEMES.get(scheme)
    if factory is None:
        importlib.import_module(BUILTIN_SCHEMES["pyserial"])
        factory = _SCHEMES["pyserial"]
        query = {**query, "_url": url}
    src = factory(path, query)
    src.url = url
    return src


def query_param(
    query: dict[str, str], name: str, kind: type | Limit, default: object,
    url_hint: str = "source URL",
) -> Any:
    """Typed look-up of a URL query parameter with a one-line error on bad values.

    ``kind`` may be a :class:`~emgfb.limits.Limit`: the value is then also range-checked.
    """
    if name not in query:
        return default
    raw = query[name]
    if isinstance(kind, Limit):
        return kind.check(raw, name, url_hint)
    try:
        if kind is bool:
            if raw.lower() in ("1", "true", "yes", "on", ""):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        return kind(raw)
    except ValueError:
        raise ConfigError(
            f"{url_hint}: {name}={raw!r}: expected {getattr(kind, '__name__', kind)}"
        ) from None
