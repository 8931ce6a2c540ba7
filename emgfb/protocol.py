"""Wire protocol v1 between an emgfb board and the host: the contract, in code.

This module owns the byte layout (see ``firmware/PROTOCOL.md``), the CRC-8/SMBUS checksum,
a vectorised frame encoder (used by the simulated board and the test-vector checks), the
incremental :class:`FrameDecoder` (sync search, CRC, resync, sequence accounting) and the
parser of the board's ``EMGFB ...`` identification line (the :class:`BoardInfo` record itself
lives in ``records``). It does no I/O and imports nothing from emgfb but ``errors`` and
``records``.

Frame layout (little-endian), ``n`` channels, length ``6 + 2n``::

    0      1      2..3   4      5 .. 4+2n        5+2n
    0xA5   0x5A   seq    info   n x u16 counts   CRC-8/SMBUS over bytes 2 .. 4+2n

``info`` bits 0-4 hold ``n`` (1-16), bit 7 says the board dropped ticks since its previous
frame, bits 5-6 are zero. ``seq`` counts sample ticks (also ticks the board could not send)
and wraps at 65536.

Frame acceptance: CRC-8 passes about one random frame in 256, so a frame whose ``seq`` does
not continue the last delivered one is held back until the next frame confirms it
(``seq`` one higher). Unconfirmed frames are counted as ``suspect_frames`` and never
delivered. A confirmed step of more than :data:`MAX_LINK_GAP` ticks without the overrun
flag is a restart of the board's counter (``seq_restarts``), not a gap: no tick is booked
as lost for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from emgfb.errors import ProtocolError
from emgfb.records import BoardInfo  # re-exported: the record lives on the ground floor

SYNC0 = 0xA5
SYNC1 = 0x5A
HEADER_LEN = 5
DEFAULT_BAUD = 1_000_000
MAX_CHANNELS = 16
SEQ_MODULUS = 1 << 16
INFO_CHANNELS_MASK = 0x1F
INFO_RESERVED_MASK = 0x60
INFO_OVERRUN = 0x80
#: Longest seq step (ticks) a link can cause without the board's overrun flag; a longer
#: confirmed step is a restart of the counter (the board rebooted), not lost ticks.
MAX_LINK_GAP = 4096


def frame_length(n_channels: int) -> int:
    """Return the length in bytes of one data frame with ``n_channels`` samples."""
    return HEADER_LEN + 2 * n_channels + 1


def _crc8_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint8)
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table[i] = crc
    return table


CRC8_TABLE = _crc8_table()
_CRC8_LIST = CRC8_TABLE.tolist()


def crc8(data: bytes) -> int:
    """CRC-8/SMBUS (poly 0x07, init 0, no reflection, no xorout) of ``data``.

    >>> hex(crc8(b"123456789"))
    '0xf4'
    """
    crc = 0
    for byte in data:
        crc = _CRC8_LIST[crc ^ byte]
    return crc


_POS_TABLES: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _crc8_position_table(width: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-position CRC contributions for messages of ``width`` bytes.

    With init 0 and no xorout the CRC is linear over GF(2): the CRC of a message is the
    XOR of the CRCs of each byte alone at its position (zeros elsewhere). Returns the
    flattened ``(width, 256)`` table and the row offsets ``256 * position``.
    """
    if width not in _POS_TABLES:
        table = np.empty((width, 256), dtype=np.uint8)
        crc = CRC8_TABLE.copy()  # a byte in the last position
        for pos in range(width - 1, -1, -1):
            table[pos] = crc
            crc = CRC8_TABLE[crc]  # one more zero byte after it
        _POS_TABLES[width] = (table.ravel(), np.arange(width, dtype=np.intp) * 256)
    return _POS_TABLES[width]


def _crc8_rows(rows: np.ndarray) -> np.ndarray:
    """CRC-8 of every row of a 2-D uint8 array, vectorised over rows."""
    if rows.shape[0] <= 256:
        # few rows (live reads): a handful of numpy calls whatever the width
        flat, offsets = _crc8_position_table(rows.shape[1])
        return np.bitwise_xor.reduce(flat[rows + offsets], axis=1)
    crc = np.zeros(rows.shape[0], dtype=np.uint8)
    for col in range(rows.shape[1]):  # many rows: one table look-up per column is faster
        crc = CRC8_TABLE[crc ^ rows[:, col]]
    return crc


def encode_frames(
    seq: np.ndarray | int,
    counts: np.ndarray,
    overrun: np.ndarray | bool = False,
) -> bytes:
    """Encode samples as consecutive protocol-v1 frames.

    Parameters
    ----------
    seq
        Tick counter of each frame (taken modulo 65536), or the counter of the first frame
        (later frames count up by one).
    counts
        ADC counts, shape ``(n_frames, n_channels)``; values must fit in 16 bits.
    overrun
        Per frame (or for all frames): set the "board dropped ticks" flag.

    Returns
    -------
    bytes
        ``n_frames * frame_length(n_channels)`` bytes.
    """
    counts = np.asarray(counts)
    if counts.ndim != 2 or not 1 <= counts.shape[1] <= MAX_CHANNELS:
        raise ValueError(f"counts must be (n_frames, 1..16), got shape {counts.shape}")
    n_frames, n_ch = counts.shape
    if np.ndim(seq) == 0:
        seq = int(seq) + np.arange(n_frames)
    seq = np.asarray(seq, dtype=np.int64) % SEQ_MODULUS
    frames = np.empty((n_frames, frame_length(n_ch)), dtype=np.uint8)
    frames[:, 0] = SYNC0
    frames[:, 1] = SYNC1
    frames[:, 2] = seq & 0xFF
    frames[:, 3] = seq >> 8
    info = np.full(n_frames, n_ch, dtype=np.uint8)
    info[np.broadcast_to(np.asarray(overrun, dtype=bool), (n_frames,))] |= INFO_OVERRUN
    frames[:, 4] = info
    frames[:, 5:-1] = counts.astype("<u2").view(np.uint8).reshape(n_frames, 2 * n_ch)
    frames[:, -1] = _crc8_rows(frames[:, 2:-1])
    return frames.tobytes()


@dataclass
class DecodedFrames:
    """Frames accepted by one :meth:`FrameDecoder.feed` call.

    Attributes
    ----------
    tick
        Absolute tick index of each frame (int64), unwrapped from ``seq`` and strictly
        increasing. A step larger than one is a gap of lost ticks.
    counts
        ADC counts, shape ``(n_frames, n_channels)``, uint16.
    overrun
        The board's "dropped ticks before this frame" flag, per frame.
    """

    tick: np.ndarray
    counts: np.ndarray
    overrun: np.ndarray

    def __len__(self) -> int:
        return len(self.tick)


@dataclass
class DecoderStats:
    """Running counters of a :class:`FrameDecoder` (all since construction)."""

    frames: int = 0
    bytes_in: int = 0
    bytes_skipped: int = 0
    crc_errors: int = 0
    bad_info: int = 0
    lost_ticks: int = 0
    overrun_flags: int = 0
    duplicates: int = 0
    suspect_frames: int = 0
    seq_restarts: int = 0

    def as_dict(self) -> dict[str, int]:
        """Return the counters as a plain dict."""
        return dict(self.__dict__)


class FrameDecoder:
    """Incremental, vectorised decoder of protocol-v1 byte streams.

    Feed it bytes in pieces of any size; it returns the complete, CRC-checked frames found
    so far and keeps partial frames for the next call. It never delivers a frame whose CRC
    fails, resynchronises on the next ``A5 5A`` after garbage, holds back a frame whose
    ``seq`` breaks the sequence until the next frame confirms it (so one false frame that
    passes the CRC cannot invent lost ticks or data), and turns ``seq`` steps into
    absolute tick indices so lost ticks are explicit.

    Parameters
    ----------
    n_channels
        Channel count announced by the board; frames with another count are rejected.
    first_tick
        Absolute tick index that ``seq == 0`` of the first frame maps to (the board restarts
        ``seq`` at 0 on ``start``). A source that reconnects passes the tick where the new
        run begins.
    expect_seq_zero
        If true (after a ``start`` command), ticks before the first received frame count as
        lost; if false (joining a running stream) the first frame defines the origin.
    """

    def __init__(self, n_channels: int, first_tick: int = 0, expect_seq_zero: bool = True):
        if not 1 <= n_channels <= MAX_CHANNELS:
            raise ValueError(f"n_channels must be 1..{MAX_CHANNELS}, got {n_channels}")
        self.n_channels = n_channels
        self.frame_len = frame_length(n_channels)
        self.stats = DecoderStats()
        self._buf = b""
        self._buf_pos = 0  # stream offset of self._buf[0]
        self._crc_fail_end = 0  # stream offset before which a counted CRC failure spans
        self._next_tick = first_tick
        self._hdr_mask = np.array(
            [0xFF, 0xFF, 0, 0, INFO_CHANNELS_MASK | INFO_RESERVED_MASK], dtype=np.uint8
        )
        self._hdr_want = np.array([SYNC0, SYNC1, 0, 0, n_channels], dtype=np.uint8)
        # seq the frame before the next one had; after ``start`` the board counts from 0,
        # so the frame "before" it had 65535 and seq k means k lost ticks.
        self._prev_seq: int | None = SEQ_MODULUS - 1 if expect_seq_zero else None
        self._held = np.zeros((0, self.frame_len), dtype=np.uint8)  # awaiting confirmation

    @property
    def next_tick(self) -> int:
        """Tick index the next in-order frame will get (one past the last frame seen)."""
        return self._next_tick

    def shift(self, ticks: int) -> None:
        """Move the timeline on by ``ticks`` (counted as lost): frames already returned
        are not changed, later ones are. Used to place a run after a reconnect gap."""
        self._next_tick += ticks
        self.stats.lost_ticks += ticks

    def feed(self, data: bytes) -> DecodedFrames:
        """Consume ``data`` and return every complete valid frame now available."""
        self.stats.bytes_in += len(data)
        buf = self._buf + bytes(data)
        L = self.frame_len
        arr = np.frombuffer(buf, dtype=np.uint8)
        n_scan = len(arr) - L + 1  # positions where a whole frame fits
        if n_scan <= 0:
            self._buf = buf
            return self._empty()

        fast = self._feed_aligned(buf, arr)
        if fast is not None:
            return fast
        cand = np.flatnonzero((arr[: n_scan] == SYNC0) & (arr[1 : n_scan + 1] == SYNC1))
        if len(cand):
            rows = arr[cand[:, None] + np.arange(L)]
            crc_ok = _crc8_rows(rows[:, 2:-1]) == rows[:, -1]
            info = rows[:, 4]
            info_ok = ((info & INFO_CHANNELS_MASK) == self.n_channels) & (
                (info & INFO_RESERVED_MASK) == 0
            )
            valid = crc_ok & info_ok
        else:
            rows = np.empty((0, L), dtype=np.uint8)
            crc_ok = valid = info_ok = np.zeros(0, dtype=bool)

        accept = self._select_non_overlapping(cand[valid])
        accepted_pos = cand[valid][accept]
        acc_rows = rows[valid][accept]

        # Failed candidates that do not lie inside an accepted frame are real errors.
        self._count_failures(cand, crc_ok, info_ok, accepted_pos)

        consumed = n_scan
        if len(accepted_pos):
            consumed = max(consumed, int(accepted_pos[-1]) + L)
        self.stats.bytes_skipped += consumed - len(accepted_pos) * L
        self._buf = buf[consumed:]
        self._buf_pos += consumed
        return self._frames_from_rows(acc_rows)

    def flush(self) -> int:
        """Discard the partial frame and any unconfirmed frame held back (e.g. before a
        reconnect).

        Returns the number of bytes discarded; they count as skipped (an unconfirmed frame
        also as suspect).
        """
        n = len(self._buf)
        if len(self._held):
            self.stats.suspect_frames += len(self._held)
            self.stats.bytes_skipped += self._held.size
            self._held = self._held[:0]
        self.stats.bytes_skipped += n
        self._buf_pos += n
        self._buf = b""
        return n

    # -- internals -----------------------------------------------------------------------

    def _feed_aligned(self, buf: bytes, arr: np.ndarray) -> DecodedFrames | None:
        """Fast path of the normal case: whole valid frames back to back from offset 0.

        Gives exactly what the general path gives for such input (every aligned frame is
        accepted, any sync pattern inside them is covered by an accepted frame, the tail
        is shorter than a frame) and returns None for anything else.
        """
        L = self.frame_len
        k = len(arr) // L
        if arr[0] != SYNC0:
            return None
        rows = arr[: k * L].reshape(k, L)
        # sync bytes, channel count and zero reserved bits of every header in one compare
        if not (
            ((rows[:, :HEADER_LEN] & self._hdr_mask) == self._hdr_want).all()
            and (_crc8_rows(rows[:, 2:-1]) == rows[:, -1]).all()
        ):
            return None
        self._buf = buf[k * L :]
        self._buf_pos += k * L
        return self._frames_from_rows(rows)

    def _empty(self) -> DecodedFrames:
        return DecodedFrames(
            np.zeros(0, dtype=np.int64),
            np.zeros((0, self.n_channels), dtype=np.uint16),
            np.zeros(0, dtype=bool),
        )

    def _select_non_overlapping(self, pos: np.ndarray) -> np.ndarray:
        """Greedy left-to-right choice of valid frames that do not overlap."""
        L = self.frame_len
        keep = np.ones(len(pos), dtype=bool)
        if len(pos) < 2 or np.all(np.diff(pos) >= L):
            return keep
        end = -1
        for i, p in enumerate(pos.tolist()):  # rare: only when valid frames overlap
            if p < end:
                keep[i] = False
            else:
                end = p + L
        return keep

    def _count_failures(
        self, cand: np.ndarray, crc_ok: np.ndarray, info_ok: np.ndarray, accepted: np.ndarray
    ) -> None:
        bad = ~(crc_ok & info_ok)
        if not bad.any():
            return
        L = self.frame_len
        bad_pos = cand[bad]
        bad_crc = ~crc_ok[bad]
        if len(accepted):
            # index of the last accepted frame starting at or before each failed candidate
            k = np.searchsorted(accepted, bad_pos, side="right") - 1
            inside = (k >= 0) & (bad_pos < accepted[np.maximum(k, 0)] + L)
            bad_pos, bad_crc = bad_pos[~inside], bad_crc[~inside]
        for p, is_crc in zip((bad_pos + self._buf_pos).tolist(), bad_crc.tolist(), strict=True):
            if p < self._crc_fail_end:  # a false sync inside a frame already counted
                continue
            self._crc_fail_end = p + L
            if is_crc:
                self.stats.crc_errors += 1
            else:
                self.stats.bad_info += 1

    def _frames_from_rows(self, rows: np.ndarray) -> DecodedFrames:
        if len(self._held):
            rows = np.concatenate([self._held, rows])
            self._held = self._held[:0]
        n = len(rows)
        if n == 0:
            return self._empty()
        seq = rows[:, 3].astype(np.int64)
        seq <<= 8
        seq |= rows[:, 2]
        step = np.empty(n, dtype=np.int64)
        step[0] = int(seq[0]) - (self._prev_seq if self._prev_seq is not None else -1)
        np.subtract(seq[1:], seq[:-1], out=step[1:])
        step %= SEQ_MODULUS
        if self._prev_seq is None or not (step == 1).all():
            rows, seq, step = self._confirm(rows, seq, step)
            n = len(rows)
            if n == 0:
                return self._empty()
        overrun = (rows[:, 4] & INFO_OVERRUN) != 0
        restart = (step > MAX_LINK_GAP) & ~overrun
        if restart.any():  # a restarted counter: the timeline goes on with no loss
            self.stats.seq_restarts += int(np.count_nonzero(restart))
            step[restart] = 1
        tick = np.cumsum(step)
        tick += self._next_tick - 1
        last = int(tick[-1])
        self.stats.lost_ticks += last - (self._next_tick - 1) - n
        self._next_tick = last + 1
        self._prev_seq = int(seq[-1])
        counts = rows[:, 5:-1].copy().view("<u2").reshape(n, self.n_channels)
        self.stats.frames += n
        self.stats.overrun_flags += int(np.count_nonzero(overrun))
        return DecodedFrames(tick, counts.astype(np.uint16, copy=False), overrun)

    def _confirm(
        self, rows: np.ndarray, seq: np.ndarray, step: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Keep the frames whose seq continues the sequence or is confirmed by the next.

        ``step[i]`` is the seq step of frame ``i`` from the last kept frame before it; a
        step of 1 is kept at once, 0 (a repeat) is dropped as a duplicate, any other step
        is kept only if the next frame continues from it, or carries the overrun flag and
        lies less than :data:`MAX_LINK_GAP` ticks after the last kept frame with this one
        in between (a board that drops ticks back to back). An unconfirmed frame is a suspect
        (dropped, its bytes skipped); the last frame, if it breaks the sequence, waits for
        the next :meth:`feed`. Returns the kept rows, their seq and their steps.
        """
        n = len(rows)
        keep = np.zeros(n, dtype=bool)
        out_step = step.copy()
        prev = self._prev_seq
        i = 0
        while i < n:
            if prev is not None:
                s = (int(seq[i]) - prev) % SEQ_MODULUS
                if s == 1:  # in sequence: take the run up to the next break in one go
                    j = i + 1
                    while j < n and step[j] == 1:
                        j += 1
                    keep[i:j] = True
                    out_step[i] = 1
                    prev, i = int(seq[j - 1]), j
                    continue
                if s == 0:
                    self.stats.duplicates += 1
                    i += 1
                    continue
            else:
                s = 1  # joining a running stream: the first confirmed frame is the origin
            if i == n - 1:
                self._held = rows[i:].copy()
                break
            nxt = (int(seq[i + 1]) - int(seq[i])) % SEQ_MODULUS
            # confirmed by a successor that continues from it, or (a board dropping ticks
            # back to back) by a flagged successor with this frame between it and the last
            if nxt == 1 or (rows[i + 1, 4] & INFO_OVERRUN and 1 < nxt
                            and (s if prev is not None else 0) + nxt <= MAX_LINK_GAP):
                keep[i] = True
                out_step[i] = s
                prev = int(seq[i])
            else:
                self.stats.suspect_frames += 1
                self.stats.bytes_skipped += self.frame_len
            i += 1
        return rows[keep], seq[keep], out_step[keep]


_KV = re.compile(r"(\w+)=(\S+)")
_REQUIRED = ("fw", "board", "ch", "fs", "bits", "vref_mv")


def parse_board_line(line: str | bytes) -> BoardInfo:
    """Parse ``EMGFB fw=<semver> board=<name> ch=<n> fs=<Hz> bits=<b> vref_mv=<mV>``.

    Raises
    ------
    ProtocolError
        If the line is not an EMGFB line or a field is missing or out of range.
    """
    if isinstance(line, bytes):
        line = line.decode("ascii", errors="replace")
    line = line.strip()
    if not line.startswith("EMGFB "):
        raise ProtocolError(f"expected a board line starting with 'EMGFB ', got {line!r}")
    fields = dict(_KV.findall(line))
    missing = [k for k in _REQUIRED if k not in fields]
    if missing:
        raise ProtocolError(f"board line {line!r} lacks {', '.join(missing)}")
    try:
        n_ch, fs = int(fields["ch"]), float(fields["fs"])
        bits, vref = int(fields["bits"]), float(fields["vref_mv"])
    except ValueError as exc:
        raise ProtocolError(f"board line {line!r} has a non-numeric field: {exc}") from None
    if not 1 <= n_ch <= MAX_CHANNELS:
        raise ProtocolError(f"board line {line!r}: ch={n_ch}, expected 1..{MAX_CHANNELS}")
    if not fs > 0 or not 1 <= bits <= 16 or not vref > 0:
        raise ProtocolError(f"board line {line!r}: fs, bits or vref_mv out of range")
    extra = {k: v for k, v in fields.items() if k not in _REQUIRED}
    return BoardInfo(fields["fw"], fields["board"], n_ch, fs, bits, vref, line, extra)
