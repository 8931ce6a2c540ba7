"""The serial driver: protocol-v1 boards on a serial port, a pty or any pyserial URL.

This module owns :class:`SerialSource` (the ``serial://`` and ``pyserial`` URL schemes),
the board handshake (:func:`handshake`, also used by port probing) and the reader thread
with automatic reconnect. Transport stays apart from framing: the thread owns the port and
feeds bytes to a pure :class:`~emgfb.protocol.FrameDecoder`. Imports ``protocol``,
``errors``, ``acquisition.source`` and pyserial; never DSP or the GUI.

Lifecycle (see :class:`~emgfb.acquisition.source.Source`): construct (parse options, no
I/O) -> :meth:`SerialSource.start` (open, wait out the Uno's DTR auto-reset, ``stop``,
drain, ``?`` handshake, ``start``, spawn the reader thread) -> :meth:`SerialSource.read`
-> :meth:`SerialSource.stop` (``stop`` to the board, join the thread, close the port).

URL options (query parameters)::

    baud=1000000          serial speed (protocol.DEFAULT_BAUD)
    reset_wait=2.0        seconds to wait after opening for a DTR-reset board to boot;
                          ends early when its EMGFB boot line arrives (default 0 on ptys
                          and network URLs, 2 s on real ports)
    handshake_timeout=2   seconds to wait for the answer to ``?``
    silence=2.0           seconds without a valid frame before the link counts as lost
    reconnect=1           reconnect automatically after an unplug or silence
    backoff_max=2.0       longest wait between reconnect attempts
    poll=0.016            reader batching interval (s): after a short read the thread waits
                          this long so bytes accumulate; fewer, larger reads cost less CPU
                          (8 ch @ 2 kHz: ~3x less than reading as bytes come) at up to
                          this much extra latency (feedback budget: ~100 ms, DOMAIN.md).
                          The default matches a 60 Hz display, so every frame can show
                          new data; 0.02 saves a little CPU when nothing is displayed
    queue_s=30.0          most data (seconds at the board's rate) held for a consumer that
                          stops reading; beyond it the oldest frames are dropped and
                          counted in ``stats.overflow_frames``
    give_up=30.0          seconds without a valid frame (unplugged, or a board that answers
                          but sends nothing) after which the source fails for good with a
                          one-line reason; 0 = keep retrying forever
"""

from __future__ import annotations

import collections
import errno
import importlib.util
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import serial

from emgfb.acquisition.source import (
    Chunk,
    Source,
    SourceStats,
    query_param,
    register_scheme,
    steady_clock,
)
from emgfb.errors import ConfigError, DeviceError, ProtocolError
from emgfb.protocol import (
    DEFAULT_BAUD,
    SYNC0,
    SYNC1,
    BoardInfo,
    DecodedFrames,
    FrameDecoder,
    parse_board_line,
)
from emgfb.worker import Worker

log = logging.getLogger(__name__)

#: Query parameters this driver consumes (stripped before a URL goes to pyserial).
OPTION_NAMES = (
    "baud",
    "reset_wait",
    "handshake_timeout",
    "silence",
    "reconnect",
    "backoff_max",
    "poll",
    "queue_s",
    "give_up",
)
_PORT_TIMEOUT = 0.05  # blocking read granularity of the reader thread
_DRAIN_QUIET = 0.05  # the board counts as quiet after this long without a byte
_DRAIN_MAX = 1.0
#: While draining, a board still sending this long after the last 'stop' gets it again: the
#: first may have been lost on the link (a USB blackout eats bytes both ways).
_STOP_RESEND = 0.2


@dataclass(frozen=True)
class SerialOptions:
    """Validated options of a :class:`SerialSource` (see the module docstring)."""

    baud: int = DEFAULT_BAUD
    reset_wait: float = 2.0
    handshake_timeout: float = 2.0
    silence: float = 2.0
    reconnect: bool = True
    backoff_max: float = 2.0
    poll: float = 0.016
    queue_s: float = 30.0
    give_up: float = 30.0


def _is_pty(path: str) -> bool:
    return os.path.realpath(path).startswith("/dev/pts/")


def parse_options(query: dict[str, str], default_reset_wait: float, where: str) -> SerialOptions:
    """Build :class:`SerialOptions` from URL query parameters (one-line ConfigError)."""
    kw: dict[str, object] = {}
    d = SerialOptions()
    for name, kind, default in (
        ("baud", int, DEFAULT_BAUD),
        ("reset_wait", float, default_reset_wait),
        ("handshake_timeout", float, d.handshake_timeout),
        ("silence", float, d.silence),
        ("reconnect", bool, d.reconnect),
        ("backoff_max", float, d.backoff_max),
        ("poll", float, d.poll),
        ("queue_s", float, d.queue_s),
        ("give_up", float, d.give_up),
    ):
        kw[name] = query_param(query, name, kind, default, url_hint=where)
    opts = SerialOptions(**kw)  # type: ignore[arg-type]
    if opts.baud <= 0:
        raise ConfigError(f"{where}: baud={opts.baud}: expected a positive integer")
    for name in ("reset_wait", "handshake_timeout", "silence", "backoff_max", "poll",
                 "queue_s", "give_up"):
        value = getattr(opts, name)
        if not value >= 0 or (name in ("handshake_timeout", "silence", "queue_s")
                              and value == 0):
            raise ConfigError(f"{where}: {name}={value}: expected a positive number of seconds")
    return opts


def open_port(target: str, baud: int, *, is_url: bool = False) -> serial.SerialBase:
    """Open a serial device or pyserial URL, turning failures into one-line DeviceErrors.

    Parameters
    ----------
    target
        A device path (``/dev/ttyACM0``) or, with ``is_url``, a pyserial URL.
    baud
        Baud rate.
    is_url
        ``target`` is a URL for :func:`serial.serial_for_url`.
    """
    try:
        if is_url:
            port = serial.serial_for_url(target, baudrate=baud, timeout=_PORT_TIMEOUT)
        else:
            port = serial.Serial(target, baudrate=baud, timeout=_PORT_TIMEOUT, exclusive=True)
    except serial.SerialException as exc:
        code = getattr(exc, "errno", None)
        if code == errno.ENOENT:
            raise DeviceError(f"{target}: no such port (is the board plugged in?)") from None
        if code == errno.EACCES:
            raise DeviceError(
                f"{target}: permission denied (add your user to the 'dialout' group: "
                f"sudo usermod -aG dialout $USER, then log in again)"
            ) from None
        if code == errno.EBUSY or "lock" in str(exc).lower():
            raise DeviceError(f"{target}: port is in use by another program") from None
        raise DeviceError(f"{target}: cannot open port: {_reason(exc, target)}") from None
    except (OSError, ValueError) as exc:
        raise DeviceError(f"{target}: cannot open port: {_reason(exc, target)}") from None
    return port


def _reason(exc: BaseException, target: str) -> str:
    """What went wrong, in words, without pyserial's ``Could not open port X:`` wrapper."""
    text = str(exc)
    prefix = f"Could not open port {target}: "
    if text.startswith(prefix):
        text = text[len(prefix):]
    low = text.lower()
    if "connection refused" in low:
        return "connection refused (expected a board or 'emgfb virtual-board --tcp' " \
               "listening on that port)"
    if "name or service not known" in low or "nodename nor servname" in low or \
            "temporary failure in name resolution" in low:
        return "unknown host (expected a host name or IP address that resolves)"
    if "timed out" in low:
        return "no answer from the host (timed out; is it on this network?)"
    if "no route to host" in low or "network is unreachable" in low:
        return "host unreachable (is it on this network?)"
    return text


def _read_some(port: serial.SerialBase) -> bytes:
    waiting = port.in_waiting
    if waiting == 1 and type(port).__module__.endswith("protocol_socket"):
        # pyserial's socket:// in_waiting only says "readable" (0/1): take all it holds now
        port.timeout = 0
        try:
            return port.read(1 << 16)
        finally:
            port.timeout = _PORT_TIMEOUT
    return port.read(waiting or 1)


def _describe_reply(name: str, raw: bytes, waited: float) -> str:
    """One-line explanation of why ``raw`` (everything received after ``?``) is no board."""
    if not raw:
        return (
            f"{name}: no answer to the '?' handshake within {waited:g} s "
            f"(wrong board or firmware, or wrong baud rate?)"
        )
    sample = raw[:24]
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in raw) / len(raw)
    if bytes((SYNC0, SYNC1)) in raw and printable < 0.9:
        return (
            f"{name}: the board keeps streaming frames and ignores 'stop' "
            f"({len(raw)} bytes after '?'); expected an EMGFB line (old firmware?)"
        )
    if printable < 0.9:
        return (
            f"{name}: garbage instead of a board line ({len(raw)} bytes, e.g. {sample!r}); "
            f"wrong baud rate? expected an EMGFB line"
        )
    text = raw.decode("ascii", errors="replace").strip().splitlines()
    first = text[0] if text else ""
    return (
        f"{name}: answered {first[:60]!r} instead of an EMGFB line "
        f"(not an emgfb firmware, or wrong baud rate?)"
    )


def handshake(
    port: serial.SerialBase,
    name: str,
    *,
    reset_wait: float = 0.0,
    timeout: float = 2.0,
    on_bytes: Callable[[bytes], None] | None = None,
) -> BoardInfo:
    """Identify the board on an open port and leave it stopped with empty buffers.

    Waits up to ``reset_wait`` s for a board that resets on open (ending early when its
    ``EMGFB`` boot line arrives), sends ``stop``, drains whatever is still arriving, sends
    ``?`` and parses the ``EMGFB`` line.

    Parameters
    ----------
    port
        An open pyserial port with a short read timeout.
    name
        Port name for error messages.
    reset_wait, timeout
        Seconds to wait for the boot, and for the answer to ``?``.
    on_bytes
        Receives every byte read before ``?`` is sent (boot text, and frames a board that
        was still streaming sent before ``stop`` reached it: real samples when
        re-handshaking after a link loss).

    Raises
    ------
    DeviceError
        No answer, garbage (wrong baud rate) or a line that is not a board line.
    """
    if reset_wait > 0:
        deadline = time.monotonic() + reset_wait
        boot = b""
        while time.monotonic() < deadline:
            data = _read_some(port)
            boot += data
            if on_bytes is not None and data:
                on_bytes(data)
            if b"EMGFB " in boot and boot.endswith(b"\n"):
                log.debug("%s: board booted: %r", name, boot[-100:])
                break
    port.write(b"stop\n")
    port.flush()
    quiet_since = time.monotonic()
    drain_end = quiet_since + _DRAIN_MAX
    while (now := time.monotonic()) < drain_end and now - quiet_since < _DRAIN_QUIET:
        if data := _read_some(port):
            quiet_since = time.monotonic()
            if on_bytes is not None:
                on_bytes(data)
    if on_bytes is None:
        port.reset_input_buffer()
    port.write(b"?\n")
    port.flush()
    raw = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw += _read_some(port)
        at = 0
        for line in raw.split(b"\n")[:-1]:
            start = line.find(b"EMGFB ")
            if start < 0:
                at += len(line) + 1
                continue
            if on_bytes is not None and at + start:
                on_bytes(raw[: at + start])  # frames still in flight before the answer
            try:
                info = parse_board_line(line[start:])
            except ProtocolError as exc:
                raise DeviceError(f"{name}: {exc}") from None
            log.info("%s: %s", name, info.line)
            return info
    if on_bytes is not None and raw:
        on_bytes(raw)
    raise DeviceError(_describe_reply(name, raw, timeout))


class SerialSource(Source):
    """A protocol-v1 board on a serial port (or any pyserial URL), with auto-reconnect.

    Parameters
    ----------
    target
        Device path (``/dev/ttyACM0``) or, with ``is_url``, a pyserial URL such as
        ``socket://192.168.4.1:5000`` (without emgfb's own query parameters).
    options
        Driver options (see the module docstring).
    is_url
        Open ``target`` with :func:`serial.serial_for_url`.

    Notes
    -----
    A reader thread reads everything waiting (never byte by byte), decodes it and queues
    the frames with their host receive time; :meth:`read` returns all queued frames as one
    :class:`~emgfb.acquisition.source.Chunk`. When the port disappears or stays silent for
    ``options.silence`` s the thread logs it, sets ``status.state = "reconnecting"`` and
    retries with exponential backoff. Frames that arrive while it re-handshakes (the
    link came back before ``stop`` reached the board) are decoded and kept. The gap across
    a reconnect is booked when the first frame after it arrives, from the host times of
    the last frame before and that frame: the timeline resumes there, the gap counts in
    ``stats.lost_ticks`` and ``stats.reconnects`` goes up; a board that answers but never
    sends a frame again books nothing. After ``options.give_up`` s without a frame, or when
    the board comes back with another channel count or rate, the source ends in
    ``status.state == "failed"`` with a one-line ``status.detail``. ``stats.crc_errors``
    counts every rejected frame (CRC failure or an impossible header). The queue holds at
    most ``options.queue_s`` s of frames; beyond that the oldest are dropped and counted
    in ``stats.overflow_frames`` (the consumer then sees a tick jump).
    """

    def __init__(self, target: str, options: SerialOptions | None = None, is_url: bool = False):
        super().__init__()
        self.target = target
        self.options = options or SerialOptions()
        self.is_url = is_url
        self._port: serial.SerialBase | None = None
        self._decoder: FrameDecoder | None = None
        self._base = SourceStats()  # counters of retired decoders and reconnect gaps
        # decoded frames with the wall and steady host times their last byte arrived
        self._queue: collections.deque[tuple[DecodedFrames, float, float]] = \
            collections.deque()
        self._cond = threading.Condition()
        self._stop_evt = threading.Event()
        self._drain_evt = threading.Event()  # stop() sent 'stop': read until quiet, then end
        self._thread: Worker | None = None
        self._last_frame_mono = 0.0  # host time of the last frame delivered
        self._run_started = 0.0  # host time of the last 'start' (silence is timed from it)
        self._queued = 0  # frames in the queue
        self._overflowing = False
        self._queue_limit = 1
        self._resume: tuple[int, float] | None = None  # (next tick, time) before a reconnect

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Open the port, handshake, send ``start`` and spawn the reader thread.

        Raises
        ------
        DeviceError
            The port cannot be opened or the board does not identify itself.
        """
        if self._thread is not None:
            return
        try:
            port, info = self._connect()
        except DeviceError as exc:
            self.status.state, self.status.detail = "failed", str(exc)
            raise
        self._info = info
        self._queue_limit = max(1, round(self.options.queue_s * info.fs))
        self._stop_evt.clear()
        self._drain_evt.clear()
        self._begin_run(port, first_tick=0)
        self._set_status("streaming", info.line)
        self._thread = Worker(f"SerialSource({self.target})", lambda _stop: self._run())
        self._thread.start()

    def read(self, timeout: float | None = 0.1) -> Chunk | None:
        """Return every frame queued since the last call, waiting up to ``timeout`` s."""
        with self._cond:
            if not self._queue and timeout != 0:
                self._cond.wait(timeout)
            items = list(self._queue)
            self._queue.clear()
            self._queued = 0
            self._overflowing = False
        if not items:
            return None
        if len(items) == 1:
            frames, host_time, host_clock = items[0]
            return Chunk(frames.tick, frames.counts, frames.overrun, host_time,
                         host_clock=host_clock)
        return Chunk(
            np.concatenate([f.tick for f, _, _ in items]),
            np.concatenate([f.counts for f, _, _ in items]),
            np.concatenate([f.overrun for f, _, _ in items]),
            items[-1][1], host_clock=items[-1][2],
        )

    def stop(self) -> None:
        """Send ``stop``, deliver what the board still sends, join the thread, close.

        While streaming, the reader keeps decoding after ``stop`` until the board has been
        quiet for 50 ms (at most 1 s), so every frame the board sent is counted and can
        still be :meth:`read`; a board still sending 0.2 s after a ``stop`` gets it again
        (the link may have lost it). Idempotent.
        """
        thread, self._thread = self._thread, None
        if thread is not None and self.status.state == "streaming":
            self._drain_evt.set()
            self._send_stop(self._port)
            thread.join(_DRAIN_MAX + 2 * _PORT_TIMEOUT)
        self._stop_evt.set()
        if thread is not None:
            thread.join()
        port, self._port = self._port, None
        if port is not None:
            self._send_stop(port)
            port.close()
        self._refresh_stats()
        if self.status.state not in ("failed",):
            self._set_status("stopped", "")
        with self._cond:
            self._cond.notify_all()

    # -- internals -----------------------------------------------------------------------

    def _send_stop(self, port: serial.SerialBase | None) -> None:
        if port is None:
            return
        try:
            port.write(b"stop\n")
            port.flush()
        except (serial.SerialException, OSError) as exc:
            log.info("%s: could not send 'stop' (port gone?): %s", self.target, exc)

    def _set_status(self, state: str, detail: str) -> None:
        self.status.state, self.status.detail = state, detail

    def _connect(
        self,
        on_bytes: Callable[[bytes], None] | None = None,
        port: serial.SerialBase | None = None,
    ) -> tuple[serial.SerialBase, BoardInfo]:
        """Open the port (or reuse ``port``, still open) and identify the board.

        A reused port stays open when the board does not answer (the caller retries on
        it, so nothing the board sends meanwhile is lost); a port that fails is closed.
        """
        reused = port is not None
        if port is None:
            port = open_port(self.target, self.options.baud, is_url=self.is_url)
        try:
            info = handshake(
                port,
                self.target,
                reset_wait=self.options.reset_wait,
                timeout=self.options.handshake_timeout,
                on_bytes=on_bytes,
            )
        except DeviceError:
            if not reused:
                port.close()
            raise
        except (serial.SerialException, OSError) as exc:
            port.close()
            raise DeviceError(f"{self.target}: port lost during the handshake: {exc}") from None
        except BaseException:
            port.close()
            raise
        return port, info

    def _begin_run(self, port: serial.SerialBase, first_tick: int) -> None:
        port.reset_input_buffer()
        port.write(b"start\n")
        port.flush()
        self._port = port
        self._decoder = FrameDecoder(self.info.n_channels, first_tick=first_tick)
        self._run_started = time.monotonic()

    def _refresh_stats(self) -> None:
        b, s = self._base, self.stats
        d = self._decoder.stats if self._decoder is not None else None
        s.frames = b.frames + (d.frames if d else 0)
        s.lost_ticks = b.lost_ticks + (d.lost_ticks if d else 0)
        s.crc_errors = b.crc_errors + (d.crc_errors + d.bad_info if d else 0)
        s.bytes_skipped = b.bytes_skipped + (d.bytes_skipped if d else 0)
        s.overrun_flags = b.overrun_flags + (d.overrun_flags if d else 0)
        s.suspect_frames = b.suspect_frames + (d.suspect_frames if d else 0)
        s.seq_restarts = b.seq_restarts + (d.seq_restarts if d else 0)
        s.reconnects = b.reconnects
        s.overflow_frames = b.overflow_frames

    def _retire_decoder(self) -> int:
        """Fold the current decoder's counters into the base; return its next tick."""
        dec = self._decoder
        assert dec is not None
        dec.flush()
        b, d = self._base, dec.stats
        b.frames += d.frames
        b.lost_ticks += d.lost_ticks
        b.crc_errors += d.crc_errors + d.bad_info
        b.bytes_skipped += d.bytes_skipped
        b.overrun_flags += d.overrun_flags
        b.suspect_frames += d.suspect_frames
        b.seq_restarts += d.seq_restarts
        self._decoder = None
        return dec.next_tick

    def _run(self) -> None:
        try:
            while not self._stop_evt.is_set():
                reason = self._pump()
                if reason is None or self._drain_evt.is_set():
                    break
                log.warning("%s: %s", self.target, reason)
                self.status.errors.append(reason)
                if not self.options.reconnect:
                    self._close_port()
                    self._set_status("failed", reason)
                    break
                if not self._reconnect(reason):
                    break
        except Exception as exc:  # a bug: keep it visible, but never kill the consumer
            log.exception("%s: reader thread failed", self.target)
            self.status.errors.append(repr(exc))
            self._set_status("failed", f"reader thread failed: {exc!r}")
        finally:
            with self._cond:
                self._cond.notify_all()

    def _pump(self) -> str | None:
        """Read and decode until stop (returns None) or the link is lost (returns why)."""
        port, dec = self._port, self._decoder
        assert port is not None and dec is not None
        silence, poll = self.options.silence, self.options.poll
        big = dec.frame_len * 64
        last_data = time.monotonic()
        stop_sent: float | None = None  # when 'stop' last went out, while draining
        while not self._stop_evt.is_set():
            try:
                data = _read_some(port)
            except (serial.SerialException, OSError) as exc:
                return f"port lost: {exc}"
            now = time.monotonic()
            if data:
                last_data = now
            elif self._drain_evt.is_set() and now - last_data > _DRAIN_QUIET:
                return None  # stop() was sent and the board has gone quiet
            if self._drain_evt.is_set():
                if stop_sent is None:
                    stop_sent = now  # stop() sent the first one
                elif data and now - stop_sent >= _STOP_RESEND:
                    self._send_stop(port)  # still streaming: the first was lost
                    stop_sent = now
            if data:
                self._deliver(dec.feed(data), now)
            quiet = now - max(self._last_frame_mono, self._run_started)
            if quiet > silence:
                return f"no valid frame for {quiet:.1f} s"
            if data and poll > 0 and len(data) < big:
                self._stop_evt.wait(poll)  # let bytes accumulate: fewer, larger reads
        return None

    def _deliver(self, frames: DecodedFrames, now: float) -> None:
        """Queue decoded frames (booking a pending reconnect gap first); bound the queue."""
        if len(frames):
            if self._resume is not None:
                self._book_reconnect_gap(frames, now)
            self._last_frame_mono = now
            with self._cond:
                self._queue.append((frames, time.time(), steady_clock()))
                self._queued += len(frames)
                if self._queued > self._queue_limit:
                    self._drop_oldest(self._queued - self._queue_limit)
                self._cond.notify_all()
        self._refresh_stats()

    def _drop_oldest(self, n: int) -> None:
        """Drop the ``n`` oldest queued frames (the consumer stopped reading); count them."""
        self._base.overflow_frames += n
        self._queued -= n
        while n > 0:
            frames, host_time, host_clock = self._queue[0]
            if len(frames) <= n:
                self._queue.popleft()
                n -= len(frames)
            else:
                self._queue[0] = (
                    DecodedFrames(frames.tick[n:], frames.counts[n:], frames.overrun[n:]),
                    host_time, host_clock,
                )
                n = 0
        if not self._overflowing:  # say it once per episode, not per batch
            self._overflowing = True
            msg = (f"queue full ({self._queue_limit} frames): the consumer stopped reading; "
                   f"dropping the oldest frames")
            log.warning("%s: %s", self.target, msg)
            self.status.errors.append(msg)

    def _book_reconnect_gap(self, frames: DecodedFrames, now: float) -> None:
        """First frames after a reconnect: the timeline resumes where the host clock says.

        The gap is the time from the last frame before the loss to the first frame of this
        batch (``now`` less the batch's own span), in ticks, less one.
        """
        assert self._resume is not None and self._decoder is not None
        next_tick, last_mono = self._resume
        self._resume = None
        fs = self.info.fs
        span = int(frames.tick[-1] - frames.tick[0])
        first_at = max(1, round((now - last_mono) * fs) - span)  # ticks after the last one
        shift = next_tick - 1 + first_at - int(frames.tick[0])
        if shift > 0:
            frames.tick += shift
            self._decoder.shift(shift)
        self._base.reconnects += 1
        log.warning(
            "%s: first frame %.2f s after the last one; %d ticks lost across the reconnect",
            self.target, now - last_mono, max(shift, 0),
        )
        self._set_status("streaming", f"reconnected ({self._base.reconnects})")

    def _close_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError) as exc:
                log.debug("%s: close failed: %s", self.target, exc)

    def _reconnect(self, reason: str) -> bool:
        """Reopen and re-handshake until it works (True), stop() is called or the source
        gives up (False). Frames read while re-handshaking go to the old run's decoder."""
        self._set_status("reconnecting", reason)
        # a silent link keeps its port: bytes the board sends meanwhile stay readable
        keep = None if reason.startswith("port lost") else self._port
        if keep is None:
            self._close_port()
        self._port = None
        delay = 0.05
        while not self._stop_evt.is_set():
            if self._gave_up(reason):
                break
            try:
                reuse, keep = keep, None
                port, info = self._connect(on_bytes=self._feed_old_run, port=reuse)
            except DeviceError as exc:
                if reuse is not None and reuse.is_open:
                    keep = reuse  # no answer yet on a live port: ask again on it
                self._set_status("reconnecting", f"{reason}; retrying: {exc}")
                log.info("%s: reconnect failed: %s", self.target, exc)
                if self._stop_evt.wait(delay):
                    break
                delay = min(2 * delay, self.options.backoff_max)
                continue
            if (info.n_channels, info.fs) != (self.info.n_channels, self.info.fs):
                port.close()
                self._fail(
                    f"board came back with ch={info.n_channels} fs={info.fs:g}, expected "
                    f"ch={self.info.n_channels} fs={self.info.fs:g}; not resuming"
                )
                break
            if self._stop_evt.is_set():
                port.close()
                break
            next_tick = self._retire_decoder()
            self._refresh_stats()
            if self._resume is None:  # else: no frame since the last reconnect; keep its gap
                self._resume = (next_tick, self._last_frame_mono)
            self._begin_run(port, next_tick)
            self._set_status("streaming", f"handshake done ({reason}); waiting for frames")
            return True
        if keep is not None:
            keep.close()
        if self._decoder is not None:
            self._retire_decoder()
            self._refresh_stats()
        return False

    def _feed_old_run(self, data: bytes) -> None:
        if self._decoder is not None:
            self._deliver(self._decoder.feed(data), time.monotonic())

    def _gave_up(self, reason: str) -> bool:
        give_up = self.options.give_up
        quiet = time.monotonic() - self._last_frame_mono
        if give_up > 0 and quiet > give_up:
            self._fail(f"no valid frame for {quiet:.1f} s (last problem: {reason}); giving up")
            return True
        return False

    def _fail(self, msg: str) -> None:
        log.error("%s: %s", self.target, msg)
        self.status.errors.append(msg)
        self._set_status("failed", msg)


def _serial_factory(path: str, query: dict[str, str]) -> SerialSource:
    where = f"serial://{path}"
    if not path:
        raise ConfigError(
            "serial://: no device given; expected a port such as serial:///dev/ttyACM0 "
            "(see 'emgfb ports')"
        )
    unknown = sorted(set(query) - set(OPTION_NAMES))
    if unknown:
        raise ConfigError(
            f"{where}: unknown option {unknown[0]!r}; expected one of {', '.join(OPTION_NAMES)}"
        )
    opts = parse_options(query, 0.0 if _is_pty(path) else 2.0, where)
    return SerialSource(path, opts)


#: Query parameters pyserial's network handlers take besides emgfb's own.
_NETWORK_PARAMS: dict[str, dict[str, tuple[str, ...]]] = {
    "socket": {"logging": ("debug", "info", "warning", "error")},
    "rfc2217": {"logging": ("debug", "info", "warning", "error"), "ign_set_control": (),
                "poll_modem": (), "timeout": ()},
}


def _check_network_url(url: str, parts: SplitResult, pairs: list[tuple[str, str]]) -> None:
    """One-line ConfigErrors for ``socket://`` and ``rfc2217://`` URLs pyserial would
    reject with its internals (``'<=' not supported ...``)."""
    scheme = parts.scheme
    example = f"{scheme}://192.168.4.1:5000"
    if not parts.hostname:
        raise ConfigError(f"{url}: no host; expected {scheme}://HOST:PORT, e.g. {example}")
    try:
        port = parts.port
    except ValueError:
        port_text = parts.netloc.rpartition(":")[2]
        raise ConfigError(
            f"{url}: port {port_text!r} is not a TCP port; expected 1..65535, e.g. {example}"
        ) from None
    if port is None:
        raise ConfigError(f"{url}: no port; expected {scheme}://HOST:PORT, e.g. {example}")
    if port == 0:
        raise ConfigError(f"{url}: port 0; expected a TCP port 1..65535")
    allowed = _NETWORK_PARAMS[scheme]
    for key, value in pairs:
        if key in OPTION_NAMES:
            continue
        if key not in allowed:
            raise ConfigError(
                f"{url}: unknown option {key!r}; expected one of "
                f"{', '.join((*OPTION_NAMES, *allowed))}"
            )
        if allowed[key] and value not in allowed[key]:
            raise ConfigError(
                f"{url}: {key}={value!r}; expected one of {', '.join(allowed[key])}"
            )


def _pyserial_factory(path: str, query: dict[str, str]) -> SerialSource:
    url = query.get("_url", path)
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if not parts.scheme.isidentifier() or importlib.util.find_spec(
        f"serial.urlhandler.protocol_{parts.scheme}"
    ) is None:
        raise ConfigError(
            f"{url}: unknown source scheme {parts.scheme!r}; expected serial, sim, file, lsl "
            f"or a pyserial URL (socket, rfc2217, loop)"
        )
    if parts.scheme in _NETWORK_PARAMS:
        _check_network_url(url, parts, pairs)
    opts = parse_options(query, 0.0, url)
    rest = [(k, v) for k, v in pairs if k not in OPTION_NAMES]
    clean = urlunsplit(parts._replace(query=urlencode(rest)))
    return SerialSource(clean, opts, is_url=True)


register_scheme("serial", _serial_factory)
register_scheme("pyserial", _pyserial_factory)
