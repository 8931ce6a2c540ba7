"""Test kit: a scripted protocol-v1 board on a real pty, and reading a source until done.

:class:`PtyTestBoard` is a tiny board for driver tests (it answers ``?``, ``start`` and
``stop``, and its frames encode their own seq), deliberately simpler than the firmware
emulator behind ``emgfb virtual-board``: a test can script its replies (garbage, silence,
a boot line) and mutate its bytes. It serves a pty behind a stable symlink, so "unplugging"
closes the pty and "replugging" creates a new one behind the same path, as udev does for a
real board. Used by tests/acquisition, tests/test_cli_stream.py and tests/test_cli_record.py.
"""

from __future__ import annotations

import errno
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

import numpy as np

from emgfb.protocol import encode_frames

BOARD_LINE = "EMGFB fw=1.0.0 board=emu ch={ch} fs={fs} bits=10 vref_mv=5000"

# Driver option for an unpaced (speed 0) board read to exact counts: at full speed the
# default 30 s queue fills in tens of milliseconds, and a test process descheduled that
# long on a loaded machine would meet the overflow rule (oldest frames dropped, counted)
# instead of the link under test.
UNPACED_QUEUE = "queue_s=3600"


def ramp_counts(seq: np.ndarray, n_channels: int) -> np.ndarray:
    """Frame content that encodes its own ``seq``: ch0 = seq & 1023, ch1 = seq >> 10."""
    seq = np.asarray(seq, dtype=np.int64) % 65536
    counts = np.empty((len(seq), n_channels), dtype=np.uint16)
    counts[:, 0] = seq & 1023
    if n_channels > 1:
        counts[:, 1] = seq >> 10
    for c in range(2, n_channels):
        counts[:, c] = (seq * (c + 1)) % 1024
    return counts


def seq_of(counts: np.ndarray) -> np.ndarray:
    """Inverse of :func:`ramp_counts` (checks the other channels too; -1 where corrupt)."""
    seq = counts[:, 0].astype(np.int64) | (counts[:, 1].astype(np.int64) << 10)
    ok = np.all(ramp_counts(seq, counts.shape[1]) == counts, axis=1)
    return np.where(ok, seq, -1)


class PtyTestBoard:
    """A tiny protocol-v1 board on a pty: answers ``?``, ``start``, ``stop``; paced frames.

    Parameters
    ----------
    link
        Symlink path the driver opens; re-pointed at a fresh pty on every :meth:`plug`.
    n_channels, fs
        What the board announces and streams.
    reply
        ``"ok"`` (answer ``?``), ``"garbage"`` (wrong-baud noise) or ``"silent"``.
    boot_line
        Print the EMGFB line as a freshly reset board does (repeated every 50 ms until the
        first command, since opening a pty cannot reset the emulator the way DTR resets
        an Uno, and pyserial flushes input received before it opened the port).
    mutate
        Optional ``f(seq_of_first_frame, frame_bytes) -> bytes`` applied to every batch of
        frames before writing (fault injection).
    lose_stops
        The link loses this many ``stop`` lines sent while streaming (a USB blackout eats
        bytes both ways); each is counted in :attr:`lost_stops`.
    """

    def __init__(
        self,
        link: Path,
        n_channels: int = 6,
        fs: float = 1000.0,
        reply: str = "ok",
        boot_line: bool = False,
        mutate: Callable[[int, bytes], bytes] | None = None,
        batch: float = 0.005,
        lose_stops: int = 0,
    ):
        self.link = Path(link)
        self.n_channels, self.fs, self.reply = n_channels, fs, reply
        self.boot_line, self.mutate, self.batch = boot_line, mutate, batch
        self.lose_stops, self.lost_stops = lose_stops, 0
        self.stopped_at: float | None = None  # monotonic time a stop ended a run
        self.commands: list[str] = []
        self.started = threading.Event()
        self.stopped = threading.Event()
        self.sent_seq = 0  # frames (ticks) emitted in the current run
        self.paused = threading.Event()  # while set, no frames are emitted (a stall)
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._quit = threading.Event()
        self._rng = np.random.default_rng(7)

    @property
    def line(self) -> str:
        return BOARD_LINE.format(ch=self.n_channels, fs=int(self.fs))

    def plug(self) -> PtyTestBoard:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        tmp = self.link.with_suffix(".tmp")
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(os.ttyname(slave))
        os.replace(tmp, self.link)
        self._quit.clear()
        self._streaming = False
        self._out = b""
        self._next_boot = time.monotonic() if self.boot_line else float("inf")
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def unplug(self) -> None:
        self._quit.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            os.close(self._master)
            os.close(self._slave)

    close = unplug

    def wait_command(self, cmd: str, count: int = 1, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.commands.count(cmd) >= count, timeout)

    def __enter__(self) -> PtyTestBoard:
        return self.plug()

    def __exit__(self, *exc: object) -> None:
        self.unplug()

    def _handle(self, cmd: str) -> None:
        self._next_boot = float("inf")
        with self._cond:
            self.commands.append(cmd)
            self._cond.notify_all()
        if cmd == "start":
            self._streaming, self._t0, self.sent_seq = True, time.monotonic(), 0
            self.started.set()
        elif cmd == "stop" and self._streaming and self.lost_stops < self.lose_stops:
            self.lost_stops += 1  # lost on the link: the board streams on
        elif cmd == "stop":
            if self._streaming:
                self.stopped_at = time.monotonic()
            self._streaming = False
            self.stopped.set()
        elif cmd == "?" and not self._streaming:
            if self.reply == "ok":
                self._out += (self.line + "\n").encode()
            elif self.reply == "garbage":
                self._out += bytes(self._rng.integers(128, 256, 40, dtype=np.uint8))

    def _serve(self) -> None:
        buf = b""
        while not self._quit.is_set():
            want_w = [self._master] if self._out else []
            r, w, _ = select.select([self._master], want_w, [], self.batch)
            if r:
                try:
                    buf += os.read(self._master, 4096)
                except OSError as exc:  # EIO: no slave open at the moment
                    if exc.errno != errno.EIO:
                        raise
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    self._handle(line.strip().decode("ascii", "replace"))
            if time.monotonic() >= self._next_boot:
                self._out += (self.line + "\n").encode()
                self._next_boot += 0.05
            if self._streaming and not self.paused.is_set():
                due = int((time.monotonic() - self._t0) * self.fs)
                if due > self.sent_seq and len(self._out) < 8192:
                    seq = np.arange(self.sent_seq, due)
                    data = encode_frames(seq, ramp_counts(seq, self.n_channels))
                    if self.mutate is not None:
                        data = self.mutate(self.sent_seq, data)
                    self._out += data
                    self.sent_seq = due
            if self._out:
                try:
                    n = os.write(self._master, self._out)
                except BlockingIOError:
                    n = 0
                self._out = self._out[n:]


def read_until(src, pred: Callable[[list], bool], timeout: float = 60.0) -> list:
    """Read chunks until ``pred(chunks)`` holds; fail after ``timeout`` seconds (a bound for
    a loaded machine, not a measurement)."""
    chunks: list = []
    deadline = time.monotonic() + timeout
    while not pred(chunks):
        assert time.monotonic() < deadline, f"timed out; status={src.status}, stats={src.stats}"
        chunk = src.read(0.05)
        if chunk is not None:
            chunks.append(chunk)
    return chunks


def n_frames(chunks) -> int:
    return sum(len(c) for c in chunks)


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("SerialSource(")]




def drain(src, chunks: list) -> tuple[np.ndarray, np.ndarray]:
    """After stop(): collect what is still queued; return all ticks and counts."""
    while (chunk := src.read(0)) is not None:
        chunks.append(chunk)
    return np.concatenate([c.tick for c in chunks]), np.concatenate([c.counts for c in chunks])
