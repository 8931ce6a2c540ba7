"""Link faults of an emgfb board: what to inject (a seeded plan) and what was injected.

This module owns :class:`FaultPlan` (rates and schedules, parsed from a ``--faults``
spec), :class:`InjectedFaults` (the board's own count of every fault it injected, and the
counters a correct driver must then report) and :class:`FrameFaults`, which corrupts one
batch of encoded frames and books each corruption. It does no I/O and keeps no clock: the
emulator (:mod:`emgfb.acquisition.board_emulator`) calls it per batch. Imports
``protocol`` and ``errors`` only.

Per-frame faults (``L`` is the frame length; effects for a reader that decodes the run
with :class:`~emgfb.protocol.FrameDecoder`). Faults are at least three clean frames apart
and never on the last two frames of a batch, so every frame after a gap is confirmed by
the frame after it and the effects never overlap:

- ``flip``: one bit of bytes 2..L-1 flipped. crc_errors +1, lost_ticks +1,
  bytes_skipped +L.
- ``drop_byte``: one of bytes 2..L-1 removed. crc_errors +1, lost_ticks +1,
  bytes_skipped +L-1.
- ``hiccup``: a USB hiccup, a burst of 2..hiccup_max consecutive bytes lost from inside
  a frame on. crc_errors +1, lost_ticks +(frames touched), bytes_skipped +(bytes left of
  them).
- ``drop_frame``: a frame not sent. lost_ticks +1.
- ``garbage``: 1..garbage_max bytes (never 0xA5 or 0x5A) after a frame. bytes_skipped +k.
- ``false_frame``: after a frame, a well-formed frame that the board never sampled
  (``A5 5A``, a random seq, the right info byte, random data, a CRC that passes): it
  passes any CRC check and only its seq betrays it. suspect_frames +1, bytes_skipped +L.
- ``stall``: the board stops sending for ``stall_ms`` (ticks lost on the board); the next
  frame carries the overrun flag. lost_ticks +s, overrun_flags +1.

A corruption that could, by CRC-8 coincidence, form a valid frame is re-drawn, so the
table holds exactly (``false_frame`` is the fault that plants such frames on purpose).
Scheduled events (``*_every`` / ``*_after``: seconds of streaming, board time) are carried
out by the emulator and its transports; see :class:`FaultPlan`. One fault is on the host's
side: ``lose_stop``, a ``stop`` line lost on the link while the board streams (it
streams on; the driver must notice and say it again).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from emgfb.errors import ConfigError
from emgfb.limits import CLOCK_PPM
from emgfb.protocol import (
    INFO_CHANNELS_MASK,
    INFO_RESERVED_MASK,
    SEQ_MODULUS,
    SYNC0,
    SYNC1,
    crc8,
    encode_frames,
)

GARBAGE_VALUES = np.array([v for v in range(256) if v not in (SYNC0, SYNC1)], dtype=np.uint8)

#: Per-frame fault kinds, in the order their rates are cumulated.
FRAME_FAULTS = ("flip", "drop_byte", "drop_frame", "garbage", "stall", "false_frame", "hiccup")
#: Scheduled events, in the order they are checked at a schedule boundary.
EVENTS = ("disconnect", "reset", "restart", "freeze", "blackout", "change", "vanish")
_FAULT_GAP = 3  # clean frames between two faults (the first after a gap confirms it)


@dataclass(frozen=True)
class FaultPlan:
    """What a virtual board injects. Rates are probabilities per frame.

    Attributes
    ----------
    flip, drop_byte, drop_frame, garbage, stall, false_frame, hiccup
        Per-frame probability of each fault (see the module docstring).
    disconnect_every
        The port disappears for ``outage_ms`` (wall time); the board reboots.
    reset_every
        The board reboots in place (EMGFB line, stopped until ``start``).
    restart_every
        The firmware restarts its run mid-stream: ``seq`` starts again at 0, no tick lost.
    freeze_every
        The board hangs for ``freeze_ms`` (wall time): no byte out, commands wait; then it
        resumes where it was (its sample clock stopped too: no tick lost).
    blackout_every
        The host side of the link loses every byte both ways for ``blackout_ms`` (wall
        time) while the board streams on: the ticks sent meanwhile are lost.
    change_after
        Once: the port disappears and the board comes back with ``change_channels``.
    vanish_after
        Once: the board stops sending frames for good (it still answers ``?``).
    garbage_max, hiccup_max
        Longest garbage burst / lost burst in bytes.
    stall_ms, outage_ms, freeze_ms, blackout_ms
        Lengths of stalls (board time), outages, freezes and blackouts (wall time).
    change_channels
        Channel count of the board that comes back after ``change_after``.
    lose_stop
        Probability that a ``stop`` line sent while streaming is lost on the link (a USB
        hiccup or blackout eats it): the board streams on. Drawn from its own generator,
        so it leaves the other faults' draws as they were.
    clock_ppm
        The board's sample clock error in parts per million (+ = fast): a ceramic
        resonator is off by up to ±5000. The board samples at ``fs·(1 + clock_ppm·1e-6)``
        per wall second (its transport paces it so) while it says ``fs``.
    seed
        Seed of the fault draws (independent of the signal's seed).
    """

    flip: float = 0.0
    drop_byte: float = 0.0
    drop_frame: float = 0.0
    garbage: float = 0.0
    stall: float = 0.0
    false_frame: float = 0.0
    hiccup: float = 0.0
    disconnect_every: float = 0.0
    reset_every: float = 0.0
    restart_every: float = 0.0
    freeze_every: float = 0.0
    blackout_every: float = 0.0
    change_after: float = 0.0
    vanish_after: float = 0.0
    garbage_max: int = 32
    hiccup_max: int = 256
    stall_ms: float = 100.0
    outage_ms: float = 200.0
    freeze_ms: float = 500.0
    blackout_ms: float = 500.0
    change_channels: int = 2
    lose_stop: float = 0.0
    clock_ppm: float = 0.0
    seed: int = 1

    def __post_init__(self) -> None:
        for name in FRAME_FAULTS:
            value = getattr(self, name)
            if not 0.0 <= value <= 0.2:
                raise ConfigError(f"fault plan: {name}={value!r}: expected a rate 0..0.2")
        for name in (*(f"{e}_every" for e in EVENTS[:5]), "change_after", "vanish_after",
                     "stall_ms", "outage_ms", "freeze_ms", "blackout_ms"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"fault plan: {name}={getattr(self, name)!r}: expected >= 0")
        if not 0.0 <= self.lose_stop <= 0.9:
            raise ConfigError(f"fault plan: lose_stop={self.lose_stop!r}: expected a "
                              "probability 0..0.9 (a board that never hears 'stop' would "
                              "stream for ever)")
        CLOCK_PPM.check(self.clock_ppm, "clock_ppm", "fault plan")
        if not 1 <= self.garbage_max <= 4096:
            raise ConfigError(f"fault plan: garbage_max={self.garbage_max!r}: expected 1..4096")
        if not 2 <= self.hiccup_max <= 65536:
            raise ConfigError(f"fault plan: hiccup_max={self.hiccup_max!r}: expected 2..65536")
        if not 1 <= self.change_channels <= 16:
            raise ConfigError(
                f"fault plan: change_channels={self.change_channels!r}: expected 1..16"
            )

    @classmethod
    def from_spec(cls, spec: str) -> FaultPlan:
        """Parse ``"flip=0.001,false_frame=0.001,disconnect_every=5"``.

        Keys are the attribute names; an empty spec means no faults.
        """
        fields = [f.name for f in dataclasses.fields(cls)]
        values: dict[str, Any] = {}  # keyword arguments: int or float by field
        for item in filter(None, (s.strip() for s in spec.split(","))):
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or key not in fields:
                raise ConfigError(
                    f"--faults: {item!r}: expected key=value with key one of "
                    f"{', '.join(fields)}"
                )
            kind = int if key in ("garbage_max", "hiccup_max", "change_channels", "seed") \
                else float
            try:
                values[key] = kind(raw)
            except ValueError:
                expected = "an integer" if kind is int else "a number"
                raise ConfigError(f"--faults: {key}={raw!r}: expected {expected}") from None
        return cls(**values)

    @property
    def any_frame_faults(self) -> bool:
        """True if any per-frame fault has a non-zero rate."""
        return any(getattr(self, name) > 0 for name in FRAME_FAULTS)

    def schedule(self) -> list[tuple[str, float, bool]]:
        """Scheduled events as ``(kind, seconds, repeats)``, skipping those that are off."""
        out = [(kind, getattr(self, f"{kind}_every"), True) for kind in EVENTS[:5]]
        out += [("change", self.change_after, False), ("vanish", self.vanish_after, False)]
        return [e for e in out if e[1] > 0]


@dataclass
class InjectedFaults:
    """What a virtual board injected, and what a correct decoder must count.

    ``expected_*`` hold for a reader that decoded every run from ``start`` to ``stop``.
    Tick losses are booked into ``expected_*`` only when a later frame of the same run
    confirms them (only then can a decoder see the gap); losses no later frame reveals
    go to ``unsettled_lost_ticks``, and a last frame that nothing confirmed to
    ``expected_suspect_frames`` instead of ``expected_frames``; the overrun flag of a
    stall that no frame carries (the run stopped or restarted first) goes to
    ``unsettled_overrun_flags``, so ``expected_overrun_flags + unsettled_overrun_flags
    == stalls``. Ticks lost in outages,
    freezes and blackouts are measured by the driver's clock, not booked here;
    ``outage_s`` sums the time from each link event to the next ``start``.
    """

    frames_sent: int = 0
    bit_flips: int = 0
    dropped_bytes: int = 0
    dropped_frames: int = 0
    garbage_bursts: int = 0
    garbage_bytes: int = 0
    false_frames: int = 0
    hiccups: int = 0
    hiccup_bytes: int = 0
    stalls: int = 0
    stalled_ticks: int = 0
    disconnects: int = 0
    resets: int = 0
    restarts: int = 0
    freezes: int = 0
    blackouts: int = 0
    blackout_frames: int = 0
    changes: int = 0
    vanished: int = 0
    lost_stops: int = 0
    expected_frames: int = 0
    expected_crc_errors: int = 0
    expected_lost_ticks: int = 0
    expected_bytes_skipped: int = 0
    expected_overrun_flags: int = 0
    expected_suspect_frames: int = 0
    expected_seq_restarts: int = 0
    unsettled_lost_ticks: int = 0
    unsettled_overrun_flags: int = 0
    outage_s: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """The counters as a plain dict."""
        return dataclasses.asdict(self)

    def add(self, other: InjectedFaults) -> None:
        """Add every counter of ``other`` to this one."""
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


class FrameFaults:
    """Seeded per-frame fault draws and corruptions for one board (no state but the RNG).

    Parameters
    ----------
    plan
        Rates and sizes.
    """

    def __init__(self, plan: FaultPlan):
        self.plan = plan
        self.rng = np.random.default_rng(plan.seed)
        self._cum = np.cumsum([getattr(plan, k) for k in FRAME_FAULTS])

    def stall_ticks(self, fs: float) -> int:
        """Ticks a stall swallows at ``fs``."""
        return max(1, round(self.plan.stall_ms * fs / 1000.0))

    def draw(self, n: int, cooldown: bool, fs: float) -> list[tuple[int, str]]:
        """Fault positions in a batch of ``n`` frames: ``(frame index, kind)``.

        ``cooldown``: the batch begins right after a gap, so its first frames stay clean.
        """
        if not self.plan.any_frame_faults or n < _FAULT_GAP:
            return []
        u = self.rng.random(n)
        hit = np.flatnonzero(u < self._cum[-1])
        out: list[tuple[int, str]] = []
        last = 0 if cooldown else -_FAULT_GAP
        for idx in hit.tolist():
            kind = FRAME_FAULTS[int(np.searchsorted(self._cum, u[idx], side="right"))]
            if idx >= n - 2 or idx < last + _FAULT_GAP:
                continue  # keep faults apart; the frame after a gap needs a confirmation
            out.append((idx, kind))
            last = idx
            if kind == "stall":  # the frame after the stall carries the flag: keep it clean
                last = idx + self.stall_ticks(fs) - 1
            elif kind == "hiccup":
                break  # a hiccup may swallow the rest of the batch: one per batch
        return out

    def garbage(self) -> bytes:
        """1..garbage_max bytes that never hold a sync byte."""
        k = int(self.rng.integers(1, self.plan.garbage_max + 1))
        return GARBAGE_VALUES[self.rng.integers(0, len(GARBAGE_VALUES), k)].tobytes()

    def false_frame(self, n_ch: int, prev_seq: int) -> bytes:
        """A frame that passes the CRC but was never sampled.

        Its seq is neither ``prev_seq`` nor ``prev_seq + 1`` (so a decoder cannot take it
        for the next frame or a repeat) and none of its bytes after the sync pair is a sync
        byte but the CRC (so it hides no further candidate).
        """
        while True:
            seq = int(self.rng.integers(0, SEQ_MODULUS))
            if (seq - prev_seq) % SEQ_MODULUS in (0, 1):
                continue
            data = GARBAGE_VALUES[self.rng.integers(0, len(GARBAGE_VALUES), 2 * n_ch)]
            frame = encode_frames(seq, data.view("<u2").reshape(1, n_ch))
            if not any(b in (SYNC0, SYNC1) for b in frame[2:4]):
                return frame

    def corrupt(self, kind: str, rows: np.ndarray, idx: int) -> tuple[bytes, int] | None:
        """Corrupt frame ``idx`` of ``rows`` (``flip``, ``drop_byte`` or ``hiccup``).

        Returns the bytes that replace frames ``idx .. idx + k - 1`` and ``k``, or None if
        no draw counts as exactly one CRC error before frame ``idx + k``.
        """
        n, L = rows.shape
        n_ch = (L - 6) // 2
        for _ in range(32):
            pos = int(self.rng.integers(2, L))
            if kind == "flip":
                bad = bytearray(rows[idx].tobytes())
                bad[pos] ^= 1 << int(self.rng.integers(0, 8))
                k = 1
            elif kind == "drop_byte":
                frame = rows[idx].tobytes()
                bad, k = bytearray(frame[:pos] + frame[pos + 1:]), 1
            else:
                lost = int(self.rng.integers(2, self.plan.hiccup_max + 1))
                # stop short of the last two frames: the frame after the burst needs one
                # more to confirm it
                lost = min(lost, (n - 2 - idx) * L - pos - 1)
                if lost < 2:
                    return None
                flat = rows[idx:].tobytes()
                end = pos + lost
                k = end // L + 1
                bad = bytearray(flat[:pos] + flat[end:k * L])
            if _counts_as_one_crc_error(bytes(bad), rows[idx + k].tobytes(), n_ch):
                return bytes(bad), k
        return None


def _counts_as_one_crc_error(bad: bytes, following: bytes, n_ch: int) -> bool:
    """True if ``bad`` followed by a clean frame fails CRC at its start and hides no frame
    that could pass (a sync pair inside it whose L bytes happen to check out)."""
    L = 6 + 2 * n_ch
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
        if k > 0 and k < len(bad) and k < L:
            # a failed candidate within one frame of the first counts only once (decoder)
            continue
        if k >= L:
            return False  # a second failed candidate would be a second CRC error
    return True
