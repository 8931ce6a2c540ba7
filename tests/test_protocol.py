"""Wire protocol v1: CRC, encoder and the incremental decoder's accounting."""

import numpy as np
import pytest

from emgfb.errors import ProtocolError
from emgfb.protocol import FrameDecoder, crc8, encode_frames, frame_length, parse_board_line


def test_crc8_smbus_check_value():
    assert crc8(b"123456789") == 0xF4


def test_split_feeds_reassemble_every_frame(rng):
    counts = rng.integers(0, 1024, size=(70_000, 6))  # crosses the 16-bit seq wrap
    data = encode_frames(0, counts)
    dec = FrameDecoder(6)
    parts, i = [], 0
    while i < len(data):
        n = int(rng.integers(1, 400))
        parts.append(dec.feed(data[i : i + n]))
        i += n
    tick = np.concatenate([p.tick for p in parts])
    got = np.concatenate([p.counts for p in parts])
    assert np.array_equal(tick, np.arange(70_000))
    assert np.array_equal(got, counts)
    assert dec.stats.lost_ticks == dec.stats.crc_errors == dec.stats.bytes_skipped == 0


def test_corrupted_frame_is_never_delivered_and_is_counted(rng):
    counts = rng.integers(0, 1024, size=(100, 6))
    data = bytearray(encode_frames(0, counts))
    L = frame_length(6)
    data[10 * L + 7] ^= 0x04  # a flipped bit in frame 10's samples
    dec = FrameDecoder(6)
    out = dec.feed(bytes(data))
    assert 10 not in out.tick
    assert len(out) == 99
    assert (dec.stats.crc_errors, dec.stats.lost_ticks, dec.stats.bytes_skipped) == (1, 1, L)


def test_board_line_parses_and_rejects_garbage():
    info = parse_board_line(b"EMGFB fw=1.0.0 board=uno ch=6 fs=2000 bits=10 vref_mv=5000\n")
    assert (info.board, info.n_channels, info.fs, info.bits) == ("uno", 6, 2000.0, 10)
    assert parse_board_line(info.format_line()) .fs == 2000.0
    with pytest.raises(ProtocolError, match="EMGFB"):
        parse_board_line("\x00\xff garbage")
