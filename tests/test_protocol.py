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


def test_row_crc_matches_bytewise_crc_on_both_paths(rng):
    from emgfb.protocol import _crc8_rows

    for n_rows in (1, 7, 256, 257, 2000):  # the small-read and large-read implementations
        rows = rng.integers(0, 256, size=(n_rows, 19), dtype=np.uint8)
        want = [crc8(bytes(r)) for r in rows[:50]]
        assert _crc8_rows(rows)[:50].tolist() == want


def _faulty_stream(rng, n_frames=3000, n_ch=8):
    """Frames with random bit flips, dropped bytes, garbage and dropped frames."""
    counts = rng.integers(0, 1024, size=(n_frames, n_ch))
    L = frame_length(n_ch)
    frames = encode_frames(0, counts)
    out = bytearray()
    for i in range(n_frames):
        f = bytearray(frames[i * L : (i + 1) * L])
        r = rng.random()
        if r < 0.02:
            f[int(rng.integers(2, L))] ^= 1 << int(rng.integers(8))
        elif r < 0.04:
            del f[int(rng.integers(2, L))]
        elif r < 0.06:
            f = bytearray()
        elif r < 0.08:
            out += bytes(rng.integers(0, 256, int(rng.integers(1, 30)), dtype=np.uint8))
        out += f
    return bytes(out), counts


def test_chunking_never_changes_the_result_and_no_corrupt_frame_passes(rng):
    data, counts = _faulty_stream(rng)
    whole = FrameDecoder(8)
    ref = whole.feed(data)
    pieces = FrameDecoder(8)
    parts, i = [], 0
    while i < len(data):
        n = int(rng.choice([1, 5, 220, 221, 4000]))  # aligned and misaligned reads
        parts.append(pieces.feed(data[i : i + n]))
        i += n
    tick = np.concatenate([p.tick for p in parts])
    got = np.concatenate([p.counts for p in parts])
    assert np.array_equal(tick, ref.tick) and np.array_equal(got, ref.counts)
    assert pieces.stats.as_dict() == whole.stats.as_dict()
    assert np.array_equal(ref.counts, counts[ref.tick])  # every delivered frame is genuine
    assert whole.stats.frames + whole.stats.lost_ticks == ref.tick[-1] + 1
    assert whole.stats.crc_errors > 50 and whole.stats.bytes_skipped > 0


def test_seq_wrap_duplicates_overrun_and_joining_a_running_stream(rng):
    counts = rng.integers(0, 1024, size=(6, 2))
    seq = np.array([65533, 65534, 65534, 65535, 2, 3])  # a repeat, then 2 lost over the wrap
    data = encode_frames(seq, counts, overrun=np.array([0, 0, 0, 0, 1, 0], bool))
    dec = FrameDecoder(2, first_tick=100, expect_seq_zero=False)
    out = dec.feed(data)
    assert out.tick.tolist() == [100, 101, 102, 105, 106]
    assert out.overrun.tolist() == [False, False, False, True, False]
    assert (dec.stats.duplicates, dec.stats.lost_ticks, dec.stats.overrun_flags) == (1, 2, 1)
    assert dec.next_tick == 107


def test_after_start_missing_first_ticks_are_lost_and_flush_counts_partial(rng):
    counts = rng.integers(0, 1024, size=(3, 4))
    data = encode_frames(5, counts)
    dec = FrameDecoder(4, first_tick=1000)
    out = dec.feed(data[:-3])
    assert out.tick.tolist() == [1005, 1006] and dec.stats.lost_ticks == 5
    assert dec.flush() == frame_length(4) - 3 and dec.stats.bytes_skipped == frame_length(4) - 3


def test_wrong_channel_count_is_rejected(rng):
    data = encode_frames(0, rng.integers(0, 1024, size=(10, 6)))
    dec = FrameDecoder(8)
    assert len(dec.feed(data)) == 0 and dec.stats.frames == 0


def test_a_false_frame_that_passes_the_crc_is_suspect_not_a_gap(rng):
    """A well-formed frame with a foreign seq between two real ones: no lost ticks, no data."""
    counts = rng.integers(0, 1024, size=(10, 4))
    real = encode_frames(0, counts)
    L = frame_length(4)
    false = encode_frames(40_000, rng.integers(0, 1024, size=(1, 4)))
    dec = FrameDecoder(4)
    got = dec.feed(real[: 5 * L] + false + real[5 * L :])
    assert np.array_equal(got.tick, np.arange(10)) and np.array_equal(got.counts, counts)
    assert (dec.stats.suspect_frames, dec.stats.lost_ticks, dec.stats.bytes_skipped) == (1, 0, L)


def test_a_frame_after_a_gap_waits_for_its_confirmation(rng):
    counts = rng.integers(0, 1024, size=(6, 2))
    L = frame_length(2)
    data = encode_frames([0, 1, 5, 6, 7, 9], counts)  # gaps before seq 5 and seq 9
    dec = FrameDecoder(2)
    first = dec.feed(data[: 3 * L])
    assert list(first.tick) == [0, 1]  # seq 5 is held back ...
    second = dec.feed(data[3 * L :])
    assert list(second.tick) == [5, 6, 7]  # ... until seq 6 confirms it; seq 9 waits
    assert dec.stats.lost_ticks == 3
    assert dec.flush() == 0 and dec.stats.suspect_frames == 1  # nothing confirmed seq 9
    assert dec.stats.bytes_skipped == L


def test_a_confirmed_long_unflagged_step_is_a_counter_restart(rng):
    counts = rng.integers(0, 1024, size=(8, 2))
    dec = FrameDecoder(2)
    got = dec.feed(encode_frames([0, 1, 2, 0, 1, 2, 3, 4], counts))
    assert list(got.tick) == list(range(8))  # the timeline goes on
    assert (dec.stats.seq_restarts, dec.stats.lost_ticks) == (1, 0)
    flagged = FrameDecoder(2)
    got = flagged.feed(encode_frames([0, 1, 9_000, 9_001], counts[:4], [0, 0, 1, 0]))
    assert list(got.tick) == [0, 1, 9_000, 9_001]  # the board says it dropped them
    assert (flagged.stats.seq_restarts, flagged.stats.lost_ticks) == (0, 8_998)
