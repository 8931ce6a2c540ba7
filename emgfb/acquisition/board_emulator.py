"""The firmware of an emgfb board, emulated without any transport: bytes in, bytes out.

This module owns :class:`BoardEmulator`: the command set and streaming of wire protocol
v1, stepped by sample ticks, with the seeded faults of a
:class:`~emgfb.acquisition.board_faults.FaultPlan` injected and counted by the board
itself. It has no thread, no port and no clock of its own (pyserial's ``loop://`` handler
is the model), so a test can step it beside a :class:`~emgfb.protocol.FrameDecoder` and
compare counters exactly. The pty and TCP transports (:mod:`.virtual_board`,
:mod:`.tcp_board`) pace it in real time. Imports ``board_faults``, ``simulator``,
``protocol``, ``montage``, ``errors``.

Firmware behaviour emulated (issue 2): at boot the board prints its ``EMGFB ...`` line
once and waits, stopped. Commands are ASCII lines ending in ``\\n`` (a ``\\r`` is ignored):
``?`` answers the ``EMGFB`` line; ``start`` begins streaming with ``seq`` at 0; ``stop``
ends it; ``fs <Hz>`` (1..20000) and ``ch <n>`` (1..16) change the rate and channel count
silently (ask ``?`` to confirm); anything else is answered ``ERR <reason>``. Text is only
ever sent while stopped: while streaming, every command except ``stop`` is ignored (and
with the ``lose_stop`` fault a ``stop`` may never arrive).

Scheduled events (seconds of streaming, in board ticks): ``reset`` (reboot in place),
``restart`` (seq starts again at 0 mid-stream), ``freeze`` (no byte out, commands wait,
the sample clock stops, then everything resumes), ``blackout`` (every byte lost both ways
while the board streams on; the frames sent meanwhile are booked as lost ticks once a
later frame reveals the gap) and ``vanish`` (no frame ever again) happen here;
``disconnect`` and ``change`` need the transport: :meth:`BoardEmulator.advance` stops at
them and :attr:`BoardEmulator.due_event` names them until :meth:`take_event`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

import numpy as np

from emgfb import __version__
from emgfb.acquisition.board_faults import FaultPlan, FrameFaults, InjectedFaults
from emgfb.acquisition.simulator import FacialEmgModel
from emgfb.errors import ConfigError
from emgfb.limits import CHANNELS, SAMPLE_RATE_HZ
from emgfb.montage import default_montage
from emgfb.protocol import (
    INFO_OVERRUN,
    MAX_LINK_GAP,
    SEQ_MODULUS,
    BoardInfo,
    encode_frames,
    frame_length,
)

log = logging.getLogger(__name__)

#: Events the transport carries out (the port goes away).
TRANSPORT_EVENTS = ("disconnect", "change")


class BoardEmulator:
    """An emgfb board's firmware, stepped by ticks (see the module docstring).

    Lifecycle: construct (boots: the ``EMGFB`` line is waiting in the output) ->
    :meth:`receive` commands, :meth:`advance` ticks, :meth:`read` bytes, in any order.

    Parameters
    ----------
    model
        Signal source; ``None`` builds a :class:`FacialEmgModel` on the default montage for
        ``n_channels`` (a ``fs``/``ch`` command rebuilds it that way with the same seed).
    n_channels, fs, seed
        Channel count, sample rate and signal seed when ``model`` is ``None``.
    faults
        What to inject (default: nothing).
    pattern
        ``"emg"`` (the model) or ``"ramp"``: sample ``c`` of the frame at tick ``t`` since
        ``start`` is ``(t + c) mod 2**bits``, so dropped, duplicated or corrupted samples
        show.
    board
        Board name in the ``EMGFB`` line.
    clock
        Wall clock for ``outage_s`` only (the emulator itself runs on ticks).
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
        faults: FaultPlan | None = None,
        pattern: str = "emg",
        board: str = "virtual",
        clock: Callable[[], float] = time.monotonic,
    ):
        if pattern not in ("emg", "ramp"):
            raise ConfigError(f"virtual board: pattern={pattern!r}: expected emg or ramp")
        if model is not None:
            n_channels, fs = model.n_channels, model.fs
        CHANNELS.check(n_channels, "n_channels", "virtual board")
        SAMPLE_RATE_HZ.check(fs, "fs", "virtual board")
        self.seed = int(seed)
        self.faults = faults or FaultPlan()
        self.pattern = pattern
        self.board_name = board
        self._model = model
        self._n_ch = int(n_channels)
        self._fs = float(fs)
        self._clock = clock
        self._frame_faults = FrameFaults(self.faults)
        self._link_rng = np.random.default_rng((self.faults.seed, 1))  # lose_stop draws
        self._counters = InjectedFaults()
        self._out = bytearray()
        self._inbuf = b""
        self._held = b""  # commands that arrived during a freeze
        self.streaming = False
        self.due_event: str | None = None
        self._tick = 0  # next sample tick (since start) to generate
        self._seq_base = 0  # tick at which seq was last 0
        self._run_clock = 0  # board-time ticks since start (schedules)
        self._done_once: set[str] = set()
        self._skip = 0  # ticks still to swallow for a stall
        self._freeze = 0  # board-time ticks of freeze left
        self._blackout = 0  # ticks of blackout left
        self._vanished = False
        self._overrun_next = False
        self._pending: dict[str, int] = {}  # losses the next frame reveals
        self._unconfirmed: dict[str, int] | None = None  # a gap frame awaiting its successor
        self._prev_seq = SEQ_MODULUS - 1
        self._outage_since: float | None = None
        self._boot()

    # -- public ------------------------------------------------------------------------

    @property
    def info(self) -> BoardInfo:
        """What the board currently says to ``?``."""
        info = BoardInfo(
            __version__, self.board_name, self._n_ch, self._fs, self.bits, self.vref_mv, ""
        )
        return dataclasses.replace(info, line=info.format_line())

    @property
    def fs(self) -> float:
        """Current sample rate in Hz (what the board says)."""
        return self._fs

    @property
    def true_fs(self) -> float:
        """Samples per wall second the board really takes: ``fs`` moved by the plan's
        ``clock_ppm`` (the clock error the board declares; transports pace on it)."""
        return self._fs * (1.0 + self.faults.clock_ppm * 1e-6)

    @property
    def frame_len(self) -> int:
        """Length in bytes of one data frame at the current channel count."""
        return frame_length(self._n_ch)

    @property
    def injected(self) -> InjectedFaults:
        """A copy of the board's own fault counters."""
        return dataclasses.replace(self._counters)

    @property
    def pending_bytes(self) -> int:
        """Bytes waiting to be read."""
        return len(self._out)

    @property
    def active(self) -> bool:
        """True while advancing ticks can produce bytes or run a schedule."""
        return self.streaming and self.due_event is None

    def receive(self, data: bytes) -> None:
        """Bytes from the host (commands), handled at once unless frozen or blacked out."""
        if self._blackout:
            return  # lost on the link
        if self._freeze:
            self._held += data
            return
        self._inbuf += data
        while b"\n" in self._inbuf:
            raw, self._inbuf = self._inbuf.split(b"\n", 1)
            self._command(raw.decode("ascii", errors="replace").strip())

    def read(self, n: int = -1) -> bytes:
        """Take up to ``n`` bytes (all with -1) of what the board has sent."""
        if n < 0 or n >= len(self._out):
            data = bytes(self._out)
            self._out.clear()
        else:
            data = bytes(self._out[:n])
            del self._out[:n]
        return data

    def unread(self, data: bytes) -> None:
        """Put bytes a transport could not deliver back in front of the output."""
        self._out[:0] = data

    def ticks_to_schedule(self) -> int:
        """Board ticks until the next scheduled event (a large number if none)."""
        n = 1 << 30
        if not self.streaming:
            return n
        for kind, seconds, repeats in self.faults.schedule():
            if not repeats and kind in self._done_once:
                continue
            period = max(1, round(seconds * self._fs))
            left = period - self._run_clock % period if repeats else period - self._run_clock
            if left > 0:
                n = min(n, left)
        return n

    def advance(self, n: int) -> int:
        """Let up to ``n`` ticks of board time pass; return how many passed.

        Stops early at a scheduled event; at a transport event (:attr:`due_event`) no time
        passes until :meth:`take_event`.
        """
        done = 0
        while done < n and self.active:
            step = min(n - done, self.ticks_to_schedule())
            if self._freeze:
                step = min(step, self._freeze)
                self._freeze -= step
                if not self._freeze:
                    self._thaw()
            else:
                self._emit(step)
            done += step
            self._run_clock += step
            self._scheduled()
        return done

    def take_event(self) -> str | None:
        """Hand the due transport event to the transport (which must carry it out)."""
        event, self.due_event = self.due_event, None
        if event is not None:
            self._count(**({"disconnects": 1} if event == "disconnect" else {"changes": 1}))
            self.link_down()
        return event

    def link_down(self) -> None:
        """The port went away: the run ends (losses no frame reveals become unsettled)."""
        self._end_run()
        self._outage_since = self._clock()

    def reboot(self, n_channels: int | None = None) -> None:
        """Power-cycle: stopped, boot line in the output (optionally another channel count)."""
        if n_channels is not None and n_channels != self._n_ch:
            self._n_ch, self._model = int(n_channels), None
        self._out.clear()
        self._inbuf = self._held = b""
        self._freeze = self._blackout = 0
        self._boot()

    def count(self, **increments: float) -> None:
        """Add to the board's counters (for faults a transport carries out)."""
        self._count(**increments)

    # -- commands ----------------------------------------------------------------------

    def _boot(self) -> None:
        self._end_run()
        self._out += (self.info.line + "\n").encode()

    def _command(self, line: str) -> None:
        word, _, arg = line.partition(" ")
        if self.streaming:
            if line == "stop" and self._link_rng.random() < self.faults.lose_stop:
                self._count(lost_stops=1)  # lost on the link: the board streams on
            elif line == "stop":
                self._end_run()
            elif line:
                log.debug("command %r ignored while streaming", line)
            return
        if line in ("", "stop"):
            return
        if line == "?":
            self._reply(self.info.line)
        elif line == "start":
            self._begin_run()
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
            # a declared clock error moves the hum in sample time as it moves the pacing
            ppm = self.faults.clock_ppm or None
            self._model = FacialEmgModel(default_montage(self._n_ch), self._fs, self.seed,
                                         clock_ppm=ppm)
        self.streaming = True
        self._tick = self._seq_base = self._run_clock = 0
        self._prev_seq = SEQ_MODULUS - 1
        if self._outage_since is not None:
            self._count(outage_s=self._clock() - self._outage_since)
            self._outage_since = None

    def _end_run(self) -> None:
        """Stop streaming; tick losses no later frame can reveal become unsettled."""
        self.streaming = False
        self._abandon_losses()
        self._count(unsettled_lost_ticks=self._blackout)
        self._freeze = self._blackout = 0

    def _abandon_losses(self) -> None:
        """The run ends or restarts: what no later frame can reveal becomes unsettled.

        A stall cut short ends here: its ticks still to come are not lost (after a stop
        they are not part of the run, after a restart they are sent), and no frame will
        carry its overrun flag.
        """
        if self._unconfirmed is not None:  # a gap frame nothing confirmed: suspect
            self._count(expected_suspect_frames=1, expected_bytes_skipped=self.frame_len,
                        unsettled_lost_ticks=self._unconfirmed.get("lost", 0),
                        unsettled_overrun_flags=self._unconfirmed.get("overrun", 0))
            self._unconfirmed = None
        self._count(stalled_ticks=-self._skip,
                    unsettled_lost_ticks=self._pending.get("lost", 0) - self._skip,
                    unsettled_overrun_flags=self._pending.get("overrun", 0))
        self._pending, self._skip, self._overrun_next = {}, 0, False

    # -- schedules ---------------------------------------------------------------------

    def _scheduled(self) -> None:
        for kind, seconds, repeats in self.faults.schedule():
            period = max(1, round(seconds * self._fs))
            if repeats:
                if self._run_clock % period:
                    continue
            elif kind in self._done_once or self._run_clock != period:
                continue
            else:
                self._done_once.add(kind)
            log.info("virtual board: %s at tick %d", kind, self._tick)
            if kind in TRANSPORT_EVENTS:
                self.due_event = kind
                return
            getattr(self, f"_on_{kind}")()
            if not self.streaming:
                return

    def _on_reset(self) -> None:
        self._count(resets=1)
        self._boot()
        self._outage_since = self._clock()

    def _on_restart(self) -> None:
        """The firmware starts its run again: seq 0 at the next tick, no tick lost."""
        self._count(restarts=1)
        self._abandon_losses()  # losses in flight are hidden by the seq step
        self._seq_base = self._tick
        step = (0 - self._prev_seq) % SEQ_MODULUS
        if step > MAX_LINK_GAP:  # a decoder sees a restart
            self._pending = {"restart": 1}
        elif step > 1:  # a decoder cannot tell this step from a gap of lost ticks
            self._pending = {"lost": step - 1}

    def _on_freeze(self) -> None:
        self._count(freezes=1)
        self._freeze = max(1, round(self.faults.freeze_ms * self._fs / 1000.0))

    def _on_blackout(self) -> None:
        self._count(blackouts=1)
        self._blackout = max(1, round(self.faults.blackout_ms * self._fs / 1000.0))

    def _on_vanish(self) -> None:
        self._count(vanished=1)
        self._vanished = True

    def _thaw(self) -> None:
        held, self._held = self._held, b""
        self.receive(held)

    # -- frames ------------------------------------------------------------------------

    def _counts(self, start: int, n: int) -> np.ndarray:
        if self.pattern == "ramp":
            t = start + np.arange(n)[:, None] + np.arange(self._n_ch)[None, :]
            return (t % (1 << self.bits)).astype(np.uint16)
        assert self._model is not None
        return self._model.generate(n)

    def _emit(self, n: int) -> None:
        """Generate ``n`` ticks, apply faults, queue the bytes and book the counters."""
        start = self._tick
        counts = self._counts(start, n)
        self._tick += n
        skip = min(self._skip, n)
        self._skip -= skip
        if self._blackout:
            lost = min(self._blackout, n - skip)
            self._blackout -= lost
            skip += lost
            self._count(blackout_frames=lost)
            self._add_pending(lost=lost)
        if self._vanished:
            return
        if skip == n:
            return
        counts = counts[skip:]
        seq = (start + skip - self._seq_base + np.arange(len(counts))) % SEQ_MODULUS
        overrun = np.zeros(len(counts), dtype=bool)
        overrun[0] = self._overrun_next
        self._overrun_next = False
        data = encode_frames(seq, counts, overrun)
        rows = np.frombuffer(data, dtype=np.uint8).reshape(len(counts), -1).copy()
        cooldown = bool(self._pending) or self._unconfirmed is not None
        faults = self._frame_faults.draw(len(rows), cooldown, self._fs)
        out = bytearray()
        i = 0
        for idx, kind in faults:
            self._send(out, rows[i:idx])
            i = idx + 1
            if kind == "drop_frame":
                self._count(dropped_frames=1)
                self._add_pending(lost=1)
            elif kind == "stall":
                ticks = self._frame_faults.stall_ticks(self._fs)
                self._count(stalls=1, stalled_ticks=ticks)
                self._add_pending(lost=ticks, overrun=1)
                if idx + ticks < len(rows):  # the stall ends in this batch: flag that frame
                    rows[idx + ticks, 4] |= INFO_OVERRUN
                    rows[idx + ticks, -1] = encode_frames(
                        int(seq[idx + ticks]), counts[idx + ticks: idx + ticks + 1], True
                    )[-1]
                    i = idx + ticks
                else:  # swallow the rest of the stall in later batches
                    self._skip = idx + ticks - len(rows)
                    self._overrun_next = True
                    i = len(rows)
                    break
            elif kind in ("garbage", "false_frame"):
                self._send(out, rows[idx: idx + 1])
                if kind == "garbage":
                    junk = self._frame_faults.garbage()
                    self._count(garbage_bursts=1, garbage_bytes=len(junk),
                                expected_bytes_skipped=len(junk))
                else:
                    junk = self._frame_faults.false_frame(self._n_ch, int(seq[idx]))
                    self._count(false_frames=1, expected_suspect_frames=1,
                                expected_bytes_skipped=len(junk))
                out += junk
            else:
                got = self._frame_faults.corrupt(kind, rows, idx)
                if got is None:  # no safe corruption found: send it clean
                    self._send(out, rows[idx: idx + 1])
                    continue
                bad, k = got
                out += bad
                i = idx + k
                self._count(frames_sent=1, expected_crc_errors=1,
                            expected_bytes_skipped=len(bad))
                self._add_pending(lost=k)
                if kind == "flip":
                    self._count(bit_flips=1)
                elif kind == "drop_byte":
                    self._count(dropped_bytes=1)
                else:
                    self._count(hiccups=1, hiccup_bytes=k * len(rows[0]) - len(bad),
                                frames_sent=k - 1)
        self._send(out, rows[i:])
        self._out += out

    def _add_pending(self, **losses: int) -> None:
        for key, value in losses.items():
            self._pending[key] = self._pending.get(key, 0) + value

    def _send(self, out: bytearray, rows: np.ndarray) -> None:
        """Queue clean frames and book what a decoder can now confirm."""
        n = len(rows)
        if n == 0:
            return
        out += rows.tobytes()
        self._count(frames_sent=n)
        booked = n
        if self._unconfirmed is not None:  # the first of these confirms the gap frame
            self._settle(self._unconfirmed)
            self._unconfirmed = None
        if self._pending:  # the first of these is a gap frame
            gap, self._pending = self._pending, {}
            if n >= 2:
                self._settle(gap)
            else:
                self._unconfirmed = gap
                booked -= 1
        self._count(expected_frames=booked)
        trusted = rows[-1] if self._unconfirmed is None else rows[-2] if n >= 2 else None
        if trusted is not None:  # seq of the last frame a decoder has delivered
            self._prev_seq = int(trusted[2]) | int(trusted[3]) << 8

    def _settle(self, gap: dict[str, int]) -> None:
        lost, restart, hidden = gap.get("lost", 0), gap.get("restart", 0), 0
        if lost >= MAX_LINK_GAP and not gap.get("overrun"):
            # an unflagged step this long reads as a restart: the ticks stay unseen
            lost, restart, hidden = 0, restart + 1, lost
        self._count(expected_frames=1 if gap is self._unconfirmed else 0,
                    expected_lost_ticks=lost, unsettled_lost_ticks=hidden,
                    expected_overrun_flags=gap.get("overrun", 0),
                    expected_seq_restarts=restart)

    def _count(self, **increments: float) -> None:
        for key, value in increments.items():
            setattr(self._counters, key, getattr(self._counters, key) + value)
