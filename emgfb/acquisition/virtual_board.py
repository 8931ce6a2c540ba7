"""A virtual emgfb board on a pseudo-terminal: the firmware emulator behind a real port.

This module owns :class:`VirtualBoard`, the pty transport of a
:class:`~emgfb.acquisition.board_emulator.BoardEmulator`: a thread paces the emulator in
real time (or as fast as the reader takes bytes), moves its bytes to and from a pty (so
any tool, and the real serial driver, can open it like a port) and carries out the faults
that need a transport (the port disappearing for ``outage_ms``; coming back with another
channel count). The firmware's behaviour, the faults and the board's own count of them
live in :mod:`.board_emulator` and :mod:`.board_faults` (:class:`FaultPlan` and
:class:`InjectedFaults` are re-exported here). POSIX only (``os.openpty``). Imports
``board_emulator``, ``board_faults``, ``simulator``, ``protocol``, ``errors``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import select
import sys
import tempfile
import termios
import threading
import time
import tty
from pathlib import Path

from emgfb.acquisition.board_emulator import BoardEmulator
from emgfb.acquisition.board_faults import FaultPlan, InjectedFaults
from emgfb.acquisition.simulator import FacialEmgModel
from emgfb.errors import ConfigError, DeviceError
from emgfb.limits import SPEED
from emgfb.protocol import BoardInfo
from emgfb.worker import Worker

__all__ = ["FaultPlan", "InjectedFaults", "VirtualBoard"]

log = logging.getLogger(__name__)

_BATCH_S = 0.01  # paced boards send in batches of 10 ms of board time (CPU vs latency)
_UNPACED_BATCH = 256  # frames per batch at speed 0
_HIGH_WATER = 1 << 16  # bytes queued before the board waits for the reader
_MAX_BACKLOG_S = 0.5  # a reader further behind slows the board (back-pressure)
_POLL_S = 0.05
_DRAIN_S = 1.0  # longest wait for sent frames to be read before a disconnect
_SETTLE_S = 0.03


class VirtualBoard:
    """An emgfb board emulated on a pseudo-terminal, optionally with faults.

    Lifecycle: construct (no I/O) -> :meth:`start` (creates the pty, boots, starts the
    thread) -> open :attr:`port` with any serial tool -> :meth:`stop` (joins the thread,
    closes the pty, removes the link). ``with VirtualBoard(...) as board:`` does the same.

    Parameters
    ----------
    model, n_channels, fs, seed, faults, pattern, board
        Passed to :class:`~emgfb.acquisition.board_emulator.BoardEmulator`.
    speed
        1 = real time, N = N x, 0 = as fast as the reader accepts the bytes.
    link_path
        Stable symlink to the current pty slave, re-pointed after a disconnect. Without it
        a private link is made when the plan has disconnects.
    """

    def __init__(
        self,
        model: FacialEmgModel | None = None,
        *,
        n_channels: int = 6,
        fs: float = 1000,
        seed: int = 1,
        speed: float = 1.0,
        faults: FaultPlan | None = None,
        link_path: str | None = None,
        pattern: str = "emg",
        board: str = "virtual",
    ):
        SPEED.check(speed, "speed", "virtual board")
        self.emulator = BoardEmulator(
            model, n_channels=n_channels, fs=fs, seed=seed, faults=faults, pattern=pattern,
            board=board,
        )
        self.speed = float(speed)
        self.faults = self.emulator.faults
        self._link = Path(link_path) if link_path else None
        self._own_link_dir: str | None = None
        self._lock = threading.Lock()  # guards the emulator between thread and callers
        self._port_changed = threading.Condition()
        self._connections = 0
        self._thread: Worker | None = None
        self._stop_evt = threading.Event()
        self._error: BaseException | None = None
        self._master = self._slave = -1
        self._slave_name = ""
        self._out = bytearray()
        self._was_streaming = False
        self._t0 = 0.0
        self._clock_ticks = 0  # board ticks advanced in this run
        self._event_deadline: float | None = None
        self._drained_since: float | None = None

    # -- public ------------------------------------------------------------------------

    @property
    def port(self) -> str:
        """Path to open: the link if there is one, else the current pty slave."""
        return str(self._link) if self._link else self._slave_name

    @property
    def info(self) -> BoardInfo:
        """What the board currently says to ``?``."""
        with self._lock:
            return self.emulator.info

    @property
    def injected(self) -> InjectedFaults:
        """A consistent snapshot of the board's fault counters."""
        with self._lock:
            return self.emulator.injected

    @property
    def connections(self) -> int:
        """How many ptys the board has opened (1 after start, +1 per disconnect)."""
        with self._port_changed:
            return self._connections

    def wait_connections(self, n: int, timeout: float) -> bool:
        """Wait until the board has opened its ``n``-th pty (e.g. after a disconnect)."""
        with self._port_changed:
            return self._port_changed.wait_for(lambda: self._connections >= n, timeout)

    @property
    def streaming(self) -> bool:
        """True between ``start`` and ``stop`` commands."""
        return self.emulator.streaming

    def start(self) -> None:
        """Create the pty, boot (print the EMGFB line) and serve it from a thread."""
        if self._thread is not None:
            return
        plan = self.faults
        if self._link is None and (plan.disconnect_every > 0 or plan.change_after > 0):
            self._own_link_dir = tempfile.mkdtemp(prefix="emgfb-vboard-")
            self._link = Path(self._own_link_dir) / "tty"
        if self._link is not None and self._link.exists() and not self._link.is_symlink():
            raise ConfigError(f"virtual board: link {self._link} exists and is not a symlink")
        self._stop_evt.clear()
        self._open_pty()
        self._thread = Worker("virtual-board", lambda _stop: self._run())
        self._thread.start()
        log.info("virtual board on %s (%s)", self.port, self.info.line)

    def stop(self) -> None:
        """Stop the thread, close the pty and remove the link; re-raise a thread failure."""
        if self._thread is None:
            return
        self._stop_evt.set()
        self._thread.join()
        self._thread = None
        self._close_pty()
        if self._link is not None and self._link.is_symlink():
            self._link.unlink()
        if self._own_link_dir:
            os.rmdir(self._own_link_dir)
            self._own_link_dir, self._link = None, None
        if self._error is not None:
            error, self._error = self._error, None
            raise DeviceError(f"virtual board failed: {error}") from error

    def __enter__(self) -> VirtualBoard:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- pty -----------------------------------------------------------------------------

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._slave_name = os.ttyname(slave)
        if self._link is not None:
            tmp = self._link.with_name(self._link.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            os.symlink(self._slave_name, tmp)
            os.replace(tmp, self._link)
        with self._lock:
            self._collect()  # the boot line
        with self._port_changed:
            self._connections += 1
            self._port_changed.notify_all()

    def _close_pty(self) -> None:
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1
        self._out.clear()

    # -- thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop_evt.is_set():
                self._step()
        except BaseException as exc:  # surfaced by stop(); the port just goes quiet
            log.exception("virtual board thread failed")
            self._error = exc

    def _step(self) -> None:
        emu = self.emulator
        timeout = _POLL_S
        if emu.due_event is not None:
            timeout = 0.005
        elif emu.active and len(self._out) < _HIGH_WATER:
            timeout = 0.0 if self.speed == 0 else min(self._time_to_due(), _POLL_S)
        wlist = [self._master] if self._out else []
        readable, writable, _ = select.select([self._master], wlist, [], timeout)
        if readable:
            self._read_commands()
        if writable and self._out:
            self._write_out()
        if emu.due_event is not None:
            self._maybe_carry_out_event()
        elif emu.active and len(self._out) < _HIGH_WATER:
            self._produce()

    def _time_to_due(self) -> float:
        rate = self.emulator.true_fs * self.speed
        batch = max(1, round(_BATCH_S * rate))
        return max((self._clock_ticks + batch) / rate - (time.monotonic() - self._t0), 0.0)

    def _unread(self) -> int:
        """Bytes written to the pty that its reader has not read yet."""
        raw = fcntl.ioctl(self._slave, termios.FIONREAD, b"\0\0\0\0")
        return int.from_bytes(raw, sys.byteorder)

    def _write_out(self) -> None:
        try:
            n = os.write(self._master, self._out)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EIO:  # no slave side: keep the bytes
                return
            raise
        del self._out[:n]

    def _read_commands(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EIO:
                return
            raise
        with self._lock:
            self.emulator.receive(data)
            self._collect()

    def _collect(self) -> None:
        """Move the emulator's output to the pty queue; notice the start of a run."""
        emu = self.emulator
        self._out += emu.read()
        if emu.streaming and not self._was_streaming:
            self._t0, self._clock_ticks = time.monotonic(), 0
        self._was_streaming = emu.streaming

    def _produce(self) -> None:
        if self.speed == 0:
            n = _UNPACED_BATCH
        else:
            rate = self.emulator.true_fs * self.speed
            due = int((time.monotonic() - self._t0) * rate) - self._clock_ticks
            if due > _MAX_BACKLOG_S * rate:  # the reader is behind: pause the board clock
                self._t0 += (due - _MAX_BACKLOG_S * rate) / rate
                due = int(_MAX_BACKLOG_S * rate)
            if due < max(1, round(_BATCH_S * rate)):
                return
            n = min(due, _UNPACED_BATCH)
        with self._lock:
            self._clock_ticks += self.emulator.advance(n)
            self._collect()

    def _maybe_carry_out_event(self) -> None:
        """Let sent frames be read first (at most ``_DRAIN_S``), then take the port away."""
        now = time.monotonic()
        if self._event_deadline is None:
            self._event_deadline = now + _DRAIN_S
        if self._out or self._unread():
            self._drained_since = None
        elif self._drained_since is None:
            self._drained_since = now
        # the kernel moves pty bytes to the reader's queue asynchronously: only trust
        # "all read" once it has held for a moment
        drained = self._drained_since is not None and now - self._drained_since > _SETTLE_S
        if not (drained or now > self._event_deadline):
            return
        self._event_deadline = self._drained_since = None
        with self._lock:
            event = self.emulator.take_event()
        log.info("virtual board: %s (port gone for %g ms)", event, self.faults.outage_ms)
        self._close_pty()
        if self._link is not None and self._link.is_symlink():
            self._link.unlink()
        if self._stop_evt.wait(self.faults.outage_ms / 1000.0):
            return
        with self._lock:
            self.emulator.reboot(self.faults.change_channels if event == "change" else None)
        self._open_pty()
