"""Playback control of a replayed run: pause, seek and speed, asked from any thread.

This module owns :class:`PlaybackControl`. Requests are queued and carried out on the
acquisition worker (the only thread that touches the source), between two reads; a seek
also tells the processing side to start over (:attr:`PlaybackControl.on_restart`). Live
boards have no :attr:`~emgfb.acquisition.source.Source.playback`: they can only pause
(reading stops; the board keeps streaming into its driver). Imports
``acquisition.source`` and ``live.sinks`` (for :class:`SessionError`).
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable

from emgfb.acquisition.source import Source
from emgfb.live.sinks import SessionError

log = logging.getLogger(__name__)


class PlaybackControl:
    """Pause, seek and speed requests for one source, carried out on its reading thread.

    Parameters
    ----------
    source
        The started source.
    on_restart
        Called on the reading thread right after a seek (the processing side restarts).
    """

    def __init__(self, source: Source, on_restart: Callable[[], None]) -> None:
        self.source = source
        self.on_restart = on_restart
        self.paused = threading.Event()
        self._commands: collections.deque[tuple[str, float | None]] = collections.deque()

    @property
    def seekable(self) -> bool:
        """True for a source that can seek and change speed (a replay)."""
        return self.source.playback is not None

    @property
    def position_s(self) -> float | None:
        """Seconds into the recording of the next sample; None for live sources."""
        pb = self.source.playback
        return None if pb is None else float(pb.position_s)

    @property
    def speed(self) -> float:
        """Playback speed (x real time); 1 for live sources."""
        pb = self.source.playback
        return 1.0 if pb is None else float(pb.speed)

    def pause(self) -> None:
        """Stop reading (a replay halts where it is)."""
        self.paused.set()

    def resume(self) -> None:
        """Continue reading (a replay continues where it halted, without a burst)."""
        if self.paused.is_set() and self.seekable:
            self._commands.append(("rebase", None))
        self.paused.clear()

    def seek(self, seconds: float) -> None:
        """Continue from ``seconds`` into the recording (replay only)."""
        if not self.seekable:
            raise SessionError(f"{self.source.url}: this source cannot seek")
        self._commands.append(("seek", float(seconds)))

    def set_speed(self, speed: float) -> None:
        """Playback speed (x real time) from the current position on (replay only)."""
        if not self.seekable:
            raise SessionError(f"{self.source.url}: this source has no playback speed")
        if not speed > 0:
            raise SessionError(f"speed {speed!r}: expected > 0")
        self._commands.append(("speed", float(speed)))

    def apply(self) -> None:
        """Carry out queued requests (on the thread that reads the source)."""
        pb = self.source.playback
        while self._commands:
            cmd, arg = self._commands.popleft()
            if pb is None:
                continue
            if cmd == "seek" and arg is not None:
                pb.seek(arg)
                self.on_restart()
                log.info("replay: seek to %.2f s", arg)
            else:
                # re-anchor the replay clock at the current position (no burst, no jump)
                if cmd == "speed" and arg is not None:
                    pb.speed = arg
                pos = pb.position_s
                if not self.source.finished:
                    pb.seek(pos)
