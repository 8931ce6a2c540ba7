"""A virtual emgfb board on a pseudo-terminal, with seeded, exactly counted link faults.

This module owns :class:`VirtualBoard`, which emulates the firmware's side of wire
protocol v1 on a pty (so any tool, and the real serial driver, can open it like a port),
:class:`FaultPlan` (what to inject, parsed from a ``--faults`` spec) and
:class:`InjectedFaults` (what was injected, and the counters a correct driver must then
report). The board runs in its own thread; the data come from a
:class:`~emgfb.acquisition.simulator.FacialEmgModel` or a counting ramp. POSIX only
(``os.openpty``). Imports ``simulator``, ``protocol``, ``montage``, ``errors``.

Firmware behaviour emulated (issue 2): at boot the board prints its ``EMGFB ...`` line
once and waits, stopped. Commands are ASCII lines ending in ``\\n`` (a ``\\r`` is ignored):
``?`` answers the ``EMGFB`` line; ``start`` begins streaming with ``seq`` at 0; ``stop``
ends it; ``fs <Hz>`` (1..20000) and ``ch <n>`` (1..16) change the rate and channel count
silently (ask ``?`` to confirm); anything else is answered ``ERR <reason>``. Text is only
ever sent while stopped: while streaming, every command except ``stop`` is ignored (and
logged). Frames already queued when ``stop`` arrives are still sent, then any reply.

Fault accounting (``board.injected``; see :class:`InjectedFaults`). ``L`` is the frame
length. Faults are drawn per frame from the plan's own seeded generator, at most one per
frame, never on the last frame of a write batch, and the frame after a fault is always
sent clean, so the effects never overlap. For a reader that decodes the stream of one
run (``start`` .. ``stop``) with :class:`~emgfb.protocol.FrameDecoder`:

- bit flip: one bit of bytes 2..L-1 of a frame flipped. Decoder: crc_errors +1,
  lost_ticks +1, bytes_skipped +L.
- dropped byte: one of bytes 2..L-1 of a frame removed. crc_errors +1, lost_ticks +1,
  bytes_skipped +L-1.
- dropped frame: a frame not sent. lost_ticks +1.
- garbage burst: 1..garbage_max bytes (never 0xA5 or 0x5A) between two frames.
  bytes_skipped +k.
- stall: the board stops sending for ``stall_ms`` (s ticks, lost on the board; at speed 0
  there is no pause, only the loss); the next frame carries the overrun flag.
  lost_ticks +s, overrun_flags +1.
- disconnect: the pty is closed and the link removed for ``outage_ms``, then a new pty is
  linked and the board reboots (EMGFB line, stopped). The driver must reconnect and
  estimate the gap from its clock.
- reset: the board reboots in place (EMGFB line, stopped until ``start``).

A draw whose corruption could, by CRC-8 coincidence, form a valid frame (or a frame that
fails on ``info`` rather than CRC) is re-drawn, so the table holds exactly. Tick losses
are booked into ``expected_*`` only when a later frame of the same run is sent (only then
can a decoder see the gap); losses that no later frame reveals (the run stopped, the board
reset or was unplugged first) go to ``unsettled_lost_ticks``. Skipped bytes become visible
to a decoder once a further frame's worth of bytes has followed. Boot lines, replies and
a driver's own re-synchronisation after disconnects and resets are not in ``expected_*``;
``outage_s`` sums the time from each disconnect/reset to the next ``start``.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emgfb import __version__
from emgfb.acquisition.simulator import FacialEmgModel
from emgfb.errors import ConfigError, DeviceError
from emgfb.montage import default_montage
from emgfb.protocol import (
    INFO_CHANNELS_MASK,
    INFO_RESERVED_MASK,
    SYNC0,
    SYNC1,
    BoardInfo,
    crc8,
    encode_frames,
    frame_length,
)

log = logging.getLogger(__name__)

_BATCH_S = 0.01  # paced boards send in batches of 10 ms of board time (CPU vs latency)
_UNPACED_BATCH = 256  # frames per batch at speed 0
_HIGH_WATER = 1 << 16  # bytes queued before the board waits for the reader
_MAX_BACKLOG_S = 0.5  # a reader further behind slows the board (back-pressure)
_POLL_S = 0.05
_DRAIN_S = 1.0  # longest wait for sent frames to be read before a disconnect/reset
_SETTLE_S = 0.03
_GARBAGE_VALUES = np.array([v for v in range(256) if v not in (SYNC0, SYNC1)], dtype=np.uint8)


@dataclass(frozen=True)
class FaultPlan:
    """What a :class:`VirtualBoard` injects. Rates are probabilities per frame.

    Attributes
    ----------
    flip, drop_byte, drop_frame, garbage, stall
        Per-frame probability of a bit flip, a dropped byte, a dropped frame, a garbage
        burst after the frame, a stall before it.
    disconnect_every, reset_every
        Seconds of streaming (board time) between disconnects / board resets; 0 = never.
    garbage_max
        Longest garbage burst in bytes (lengths are uniform in 1..garbage_max).
    stall_ms
        Length of a stall in milliseconds of board time (ticks lost on the board).
    outage_ms
        Wall-clock time the port is gone during a disconnect.
    seed
        Seed of the fault draws (independent of the signal's seed).
    """

    flip: float = 0.0
    drop_byte: float = 0.0
    drop_frame: float = 0.0
    garbage: float = 0.0
    stall: float = 0.0
    disconnect_every: float = 0.0
    reset_every: float = 0.0
    garbage_max: int = 32
    stall_ms: float = 100.0
    outage_ms: float = 200.0
    seed: int = 1

    _RATES = ("flip", "drop_byte", "drop_frame", "garbage", "stall")

    def __post_init__(self) -> None:
        for name in self._RATES:
            value = getattr(self, name)
            if not 0.0 <= value <= 0.2:
                raise ConfigError(f"fault plan: {name}={value!r}: expected a rate 0..0.2")
        for name in ("disconnect_every", "reset_every", "stall_ms", "outage_ms"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"fault plan: {name}={getattr(self, name)!r}: expected >= 0")
        if not 1 <= self.garbage_max <= 4096:
            raise ConfigError(f"fault plan: garbage_max={self.garbage_max!r}: expected 1..4096")

    @classmethod
    def from_spec(cls, spec: str) -> FaultPlan:
        """Parse ``"flip=0.001,drop_frame=0.001,garbage=0.0005,disconnect_every=5"``.

        Keys are the attribute names; an empty spec means no faults.
        """
        fields = {f.name: f.type for f in dataclasses.fields(cls)}
        values: dict[str, float | int] = {}
        for item in filter(None, (s.strip() for s in spec.split(","))):
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or key not in fields:
                raise ConfigError(
                    f"--faults: {item!r}: expected key=value with key one of "
                    f"{', '.join(fields)}"
                )
            kind = int if key in ("garbage_max", "seed") else float
            try:
                values[key] = kind(raw)
            except ValueError:
                expected = "an integer" if kind is int else "a number"
                raise ConfigError(f"--faults: {key}={raw!r}: expected {expected}") from None
        return cls(**values)

    @property
    def any_frame_faults(self) -> bool:
        """True if any per-frame fault has a non-zero rate."""
        return any(getattr(self, name) > 0 for name in self._RATES)


@dataclass
class InjectedFaults:
    """What a :class:`VirtualBoard` injected, and what a correct decoder must count.

    ``expected_*`` hold for a reader that decoded every run from ``start`` to ``stop``
    (see the module docstring for the exact mapping and its limits).
    """

    frames_sent: int = 0
    bit_flips: int = 0
    dropped_bytes: int = 0
    dropped_frames: int = 0
    garbage_bursts: int = 0
    garbage_bytes: int = 0
    stalls: int = 0
    stalled_ticks: int = 0
    disconnects: int = 0
    resets: int = 0
    expected_frames: int = 0
    expected_crc_errors: int = 0
    expected_lost_ticks: int = 0
    expected_bytes_skipped: int = 0
    expected_overrun_flags: int = 0
    unsettled_lost_ticks: int = 0
    outage_s: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """The counters as a plain dict."""
        return dataclasses.asdict(self)


class VirtualBoard:
    """An emgfb board emulated on a pseudo-terminal, optionally with faults.

    Lifecycle: construct (no I/O) -> :meth:`start` (creates the pty, prints the boot line,
    starts the thread) -> open :attr:`port` with any serial tool -> :meth:`stop` (joins the
    thread, closes the pty, removes the link). ``with VirtualBoard(...) as board:`` does the
    same.

    Parameters
    ----------
    model
        Signal source; ``None`` builds a :class:`FacialEmgModel` on the default montage for
        ``n_channels`` (a ``fs``/``ch`` command rebuilds it that way with the same seed).
    n_channels, fs, seed
        Channel count, sample rate and signal seed when ``model`` is ``None``.
    speed
        1 = real time, N = N x, 0 = as fast as the reader accepts the bytes.
    faults
        What to inject (default: nothing).
    link_path
        Stable symlink to the current pty slave, re-pointed after a disconnect. Without it
        a private link is made when the plan has disconnects.
    pattern
        ``"emg"`` (the model) or ``"ramp"``: sample ``c`` of the frame at tick ``t`` since
        ``start`` is ``(t + c) mod 2**bits``, so dropped, duplicated or corrupted samples
        show.
    board
        Board name in the ``EMGFB`` line.
    """

    bits = 10
    vref_mv = 5000.0

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
        if pattern not in ("emg", "ramp"):
            raise ConfigError(f"virtual board: pattern={pattern!r}: expected emg or ramp")
        if not speed >= 0:
            raise ConfigError(f"virtual board: speed={speed!r}: expected >= 0 (0 = unpaced)")
        if model is not None:
            n_channels, fs = model.n_channels, model.fs
        if not 1 <= n_channels <= 16:
            raise ConfigError(f"virtual board: n_channels={n_channels!r}: expected 1..16")
        if not 1 <= fs <= 20000:
            raise ConfigError(f"virtual board: fs={fs!r}: expected 1..20000 Hz")
        self.seed = int(seed)
        self.speed = float(speed)
        self.faults = faults or FaultPlan()
        self.pattern = pattern
        self.board_name = board
        self._model = model
        self._n_ch = int(n_channels)
        self._fs = float(fs)
        self._link = Path(link_path) if link_path else None
        self._own_link_dir: str | None = None
        self._fault_rng = np.random.default_rng(self.faults.seed)

        self._lock = threading.Lock()
        self._port_changed = threading.Condition()
        self._connections = 0
        self._counters = InjectedFaults()
        self._thread: threading.Thread | None = None
        self._stop_evt = threading.Event()
        self._error: BaseException | None = None
        self._master = self._slave = -1
        self._slave_name = ""
        self._inbuf = b""
        self._out = bytearray()

        self._streaming = False
        self._tick = 0  # next tick (since start) to generate
        self._t0 = 0.0
        self._skip = 0  # ticks still to swallow for a stall
        self._overrun_next = False
        self._cooldown = False  # the next frame must be clean
        self._pending_lost = 0
        self._pending_overrun = 0
        self._run_ticks = 0  # streamed ticks since start (for disconnect/reset schedules)
        self._outage_since: float | None = None
        self._event_due: tuple[Callable[[], None], float] | None = None
        self._drained_since: float | None = None

    # -- public ------------------------------------------------------------------------

    @property
    def port(self) -> str:
        """Path to open: the link if there is one, else the current pty slave."""
        return str(self._link) if self._link else self._slave_name

    @property
    def info(self) -> BoardInfo:
        """What the board currently says to ``?``."""
        info = BoardInfo(
            __version__, self.board_name, self._n_ch, self._fs, self.bits, self.vref_mv, ""
        )
        return dataclasses.replace(info, line=info.format_line())

    @property
    def injected(self) -> InjectedFaults:
        """A consistent snapshot of the fault counters."""
        with self._lock:
            return dataclasses.replace(self._counters)

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
        return self._streaming

    def start(self) -> None:
        """Create the pty, boot (print the EMGFB line) and serve it from a thread."""
        if self._thread is not None:
            return
        if self._link is None and self.faults.disconnect_every > 0:
            self._own_link_dir = tempfile.mkdtemp(prefix="emgfb-vboard-")
            self._link = Path(self._own_link_dir) / "tty"
        if self._link is not None and self._link.exists() and not self._link.is_symlink():
            raise ConfigError(f"virtual board: link {self._link} exists and is not a symlink")
        self._stop_evt.clear()
        self._open_pty()
        self._boot()
        self._thread = threading.Thread(target=self._run, name="virtual-board", daemon=True)
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
        with self._port_changed:
            self._connections += 1
            self._port_changed.notify_all()

    def _close_pty(self) -> None:
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1
        self._inbuf = b""
        self._out.clear()

    def _boot(self) -> None:
        self._end_run()
        self._out += (self.info.line + "\n").encode()

    def _end_run(self) -> None:
        """Stop streaming; tick losses no later frame can reveal become unsettled."""
        self._streaming = False
        with self._lock:
            self._counters.unsettled_lost_ticks += self._pending_lost + self._skip
        self._pending_lost = self._pending_overrun = self._skip = 0
        self._overrun_next = self._cooldown = False

    # -- thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop_evt.is_set():
                self._step()
        except BaseException as exc:  # surfaced by stop(); the port just goes quiet
            log.exception("virtual board thread failed")
            self._error = exc

    def _step(self) -> None:
        timeout = _POLL_S
        if self._event_due is not None:
            timeout = 0.005
        elif self._streaming and len(self._out) < _HIGH_WATER:
            timeout = 0.0 if self.speed == 0 else min(self._time_to_due(), _POLL_S)
        wlist = [self._master] if self._out else []
        readable, writable, _ = select.select([self._master], wlist, [], timeout)
        if readable:
            self._read_commands()
        if writable and self._out:
            self._write_out()
        if self._event_due is not None:
            action, deadline = self._event_due
            now = time.monotonic()
            if self._out or self._unread():
                self._drained_since = None
            elif self._drained_since is None:
                self._drained_since = now
            # the kernel moves pty bytes to the reader's queue asynchronously: only trust
            # "all read" once it has held for a moment
            drained = self._drained_since is not None and now - self._drained_since > _SETTLE_S
            if drained or now > deadline:
                self._event_due = self._drained_since = None
                action()
        elif self._streaming and len(self._out) < _HIGH_WATER:
            self._produce()

    def _time_to_due(self) -> float:
        rate = self._fs * self.speed
        batch = max(1, round(_BATCH_S * rate))
        return max((self._tick + batch) / rate - (time.monotonic() - self._t0), 0.0)

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
        self._inbuf += data
        while b"\n" in self._inbuf:
            raw, self._inbuf = self._inbuf.split(b"\n", 1)
            self._command(raw.decode("ascii", errors="replace").strip())

    def _command(self, line: str) -> None:
        word, _, arg = line.partition(" ")
        if self._streaming:
            if line == "stop":
                self._end_run()
                log.debug("stop after %d ticks", self._tick)
            elif line:
                log.debug("command %r ignored while streaming", line)
            return
        if line == "":
            return
        if line == "?":
            self._reply(self.info.line)
        elif line == "start":
            self._begin_run()
        elif line == "stop":
            pass
        elif word in ("fs", "ch") and arg:
            self._set(word, arg.strip())
        else:
            self._reply(f"ERR unknown command {line[:40]!r}")

    def _set(self, what: str, arg: str) -> None:
        low, high = (1, 20000) if what == "fs" else (1, 16)
        try:
            value = int(arg)
        except ValueError:
            self._reply(f"ERR {what} {arg[:20]!r}: expected an integer {low}..{high}")
            return
        if not low <= value <= high:
            self._reply(f"ERR {what} {value}: expected {low}..{high}")
            return
        if what == "fs":
            self._fs = float(value)
        else:
            self._n_ch = value
        self._model = None  # rebuilt for the new shape on the next start

    def _reply(self, text: str) -> None:
        self._out += (text + "\n").encode()

    def _begin_run(self) -> None:
        if self._model is None and self.pattern == "emg":
            self._model = FacialEmgModel(default_montage(self._n_ch), self._fs, self.seed)
        self._streaming = True
        self._tick = 0
        self._run_ticks = 0
        self._t0 = time.monotonic()
        if self._outage_since is not None:
            with self._lock:
                self._counters.outage_s += time.monotonic() - self._outage_since
            self._outage_since = None

    # -- frames ----------------------------------------------------------------------------

    def _produce(self) -> None:
        if self.speed == 0:
            n = _UNPACED_BATCH
        else:
            rate = self._fs * self.speed
            elapsed = time.monotonic() - self._t0
            due = int(elapsed * rate) - self._tick
            if due > _MAX_BACKLOG_S * rate:  # the reader is behind: pause the board clock
                self._t0 += (due - _MAX_BACKLOG_S * rate) / rate
                due = int(_MAX_BACKLOG_S * rate)
            if due < max(1, round(_BATCH_S * rate)):
                return
            n = min(due, _UNPACED_BATCH)
        n = self._limit_to_schedule(n)
        if n > 0:
            self._emit(n)
        self._scheduled_faults()

    def _limit_to_schedule(self, n: int) -> int:
        for every in (self.faults.disconnect_every, self.faults.reset_every):
            if every > 0:
                period = max(1, round(every * self._fs))
                n = min(n, period - self._run_ticks % period)
        return n

    def _scheduled_faults(self) -> None:
        if self._run_ticks == 0:
            return
        plan = self.faults
        for every, action in ((plan.disconnect_every, self._disconnect),
                              (plan.reset_every, self._reset)):
            if every > 0 and self._run_ticks % max(1, round(every * self._fs)) == 0:
                # frames already queued were sent before the event: let them drain first
                self._event_due = (action, time.monotonic() + _DRAIN_S)
                return

    def _reset(self) -> None:
        log.info("virtual board: simulated reset at tick %d", self._tick)
        with self._lock:
            self._counters.resets += 1
        self._outage_since = time.monotonic()
        self._boot()

    def _disconnect(self) -> None:
        log.info("virtual board: simulated disconnect at tick %d", self._tick)
        with self._lock:
            self._counters.disconnects += 1
        self._outage_since = time.monotonic()
        self._end_run()
        self._close_pty()
        if self._link is not None and self._link.is_symlink():
            self._link.unlink()
        if self._stop_evt.wait(self.faults.outage_ms / 1000.0):
            return
        self._open_pty()
        self._boot()

    def _counts(self, n: int) -> np.ndarray:
        if self.pattern == "ramp":
            t = self._tick + np.arange(n)[:, None] + np.arange(self._n_ch)[None, :]
            return (t % (1 << self.bits)).astype(np.uint16)
        assert self._model is not None
        return self._model.generate(n)

    def _emit(self, n: int) -> None:
        """Generate ``n`` ticks, apply faults, queue the bytes and book the counters."""
        counts = self._counts(n)
        start = self._tick
        self._tick += n
        self._run_ticks += n
        skip = min(self._skip, n)
        self._skip -= skip
        if skip == n:
            return
        counts = counts[skip:]
        overrun = np.zeros(len(counts), dtype=bool)
        overrun[0] = self._overrun_next
        self._overrun_next = False
        data = encode_frames(start + skip, counts, overrun)
        L = frame_length(self._n_ch)
        rows = np.frombuffer(data, dtype=np.uint8).reshape(len(counts), L).copy()
        faults = self._draw_faults(len(rows))
        c = InjectedFaults()
        out = bytearray()
        i = 0
        for idx, kind in faults:
            out += rows[i:idx].tobytes()
            c.frames_sent += idx - i
            self._settle(c, idx - i)
            i = idx + 1
            if kind == "drop_frame":
                c.dropped_frames += 1
                self._pending_lost += 1
            elif kind == "stall":
                ticks = self._stall_ticks()
                c.stalls += 1
                c.stalled_ticks += ticks
                self._pending_lost += ticks
                self._pending_overrun += 1
                if idx + ticks < len(rows):  # the stall ends in this batch: flag that frame
                    j = idx + ticks
                    rows[j] = np.frombuffer(
                        encode_frames(start + skip + j, counts[j : j + 1], True), np.uint8
                    )
                    i = j
                else:  # swallow the rest of the stall in later batches
                    self._skip = idx + ticks - len(rows)
                    self._overrun_next = self._cooldown = True
                    i = len(rows)
                    break
            elif kind == "garbage":
                out += rows[idx].tobytes()
                c.frames_sent += 1
                self._settle(c, 1)
                k = int(self._fault_rng.integers(1, self.faults.garbage_max + 1))
                pick = self._fault_rng.integers(0, len(_GARBAGE_VALUES), k)
                out += _GARBAGE_VALUES[pick].tobytes()
                c.garbage_bursts += 1
                c.garbage_bytes += k
                c.expected_bytes_skipped += k
            else:
                bad = self._corrupt(kind, rows[idx].tobytes(), rows[idx + 1].tobytes())
                if bad is None:  # no safe corruption found: send it clean
                    out += rows[idx].tobytes()
                    c.frames_sent += 1
                    self._settle(c, 1)
                    continue
                out += bad
                c.frames_sent += 1
                c.expected_crc_errors += 1
                c.expected_bytes_skipped += len(bad)
                self._pending_lost += 1
                if kind == "flip":
                    c.bit_flips += 1
                else:
                    c.dropped_bytes += 1
        out += rows[i:].tobytes()
        c.frames_sent += len(rows) - i
        self._settle(c, len(rows) - i)
        self._out += out
        with self._lock:
            for f in dataclasses.fields(c):
                setattr(self._counters, f.name,
                        getattr(self._counters, f.name) + getattr(c, f.name))

    def _settle(self, c: InjectedFaults, n_clean: int) -> None:
        """``n_clean`` valid frames were queued: earlier tick losses are now visible."""
        if n_clean <= 0:
            return
        c.expected_frames += n_clean
        c.expected_lost_ticks += self._pending_lost
        c.expected_overrun_flags += self._pending_overrun
        self._pending_lost = self._pending_overrun = 0
        self._cooldown = False

    def _stall_ticks(self) -> int:
        return max(1, round(self.faults.stall_ms * self._fs / 1000.0))

    def _draw_faults(self, n: int) -> list[tuple[int, str]]:
        """Fault positions in this batch: (frame index, kind), apart by >= 1 clean frame."""
        plan = self.faults
        if not plan.any_frame_faults or n < 2:
            return []
        rates = np.array([getattr(plan, k) for k in FaultPlan._RATES])
        u = self._fault_rng.random(n)
        cum = np.cumsum(rates)
        hit = np.flatnonzero(u < cum[-1])
        out: list[tuple[int, str]] = []
        last = -2
        for idx in hit.tolist():
            kind = FaultPlan._RATES[int(np.searchsorted(cum, u[idx], side="right"))]
            if idx == n - 1 or idx <= last + 1 or (idx == 0 and self._cooldown):
                continue  # keep faults apart; never on a batch's last frame
            out.append((idx, kind))
            last = idx
            if kind == "stall":  # the frame after the stall carries the flag: keep it clean
                last = idx + self._stall_ticks() - 1
                if last + 1 >= n - 1:
                    break
        return out

    def _corrupt(self, kind: str, frame: bytes, following: bytes) -> bytes | None:
        """A corrupted copy of ``frame`` that a decoder must count as one CRC error."""
        L = len(frame)
        for _ in range(32):
            pos = int(self._fault_rng.integers(2, L))
            if kind == "flip":
                bad = bytearray(frame)
                bad[pos] ^= 1 << int(self._fault_rng.integers(0, 8))
                bad = bytes(bad)
            else:
                bad = frame[:pos] + frame[pos + 1 :]
            if _counts_as_one_crc_error(bad, following, self._n_ch):
                return bad
        return None


def _counts_as_one_crc_error(bad: bytes, following: bytes, n_ch: int) -> bool:
    """True if ``bad`` followed by a clean frame fails CRC at its start and hides no frame
    that could pass (a sync pair inside it whose L bytes happen to check out)."""
    L = frame_length(n_ch)
    stream = bad + following
    for k in range(len(bad)):
        if stream[k] != SYNC0 or stream[k + 1] != SYNC1:
            if k == 0:
                return False
            continue
        cand = stream[k : k + L]
        crc_ok = crc8(cand[2:-1]) == cand[-1]
        info_ok = (cand[4] & INFO_CHANNELS_MASK) == n_ch and not cand[4] & INFO_RESERVED_MASK
        if k == 0 and crc_ok:
            return False  # would be accepted, or counted as bad info instead
        if k > 0 and crc_ok and info_ok:
            return False
    return True
