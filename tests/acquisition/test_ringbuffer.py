"""RingBuffer: absolute indices, explicit gaps, wrap-around, copies, one writer + readers."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from emgfb.acquisition.ringbuffer import RingBuffer


def test_latest_and_since_return_absolute_ticks_across_the_wrap(rng):
    rb = RingBuffer(100, 3)
    data = rng.normal(size=(250, 3))
    for lo in range(0, 250, 7):
        rb.write(1000 + lo, data[lo : lo + 7])
    assert (rb.start, rb.end, len(rb)) == (1150, 1250, 100)
    last = rb.latest(30)
    assert np.array_equal(last.tick, np.arange(1220, 1250))
    assert np.array_equal(last.data, data[220:])
    assert last.valid.all()
    old = rb.since(1010)  # overwritten: the slice starts at the oldest row held
    assert old.tick[0] == 1150 and np.array_equal(old.data, data[150:])
    assert len(rb.since(1250).tick) == 0
    assert len(rb.latest(1000).tick) == 100


def test_gaps_are_nan_and_invalid_never_joined():
    rb = RingBuffer(50, 2)
    rb.write(0, np.ones((5, 2)))
    rb.write(np.array([8, 9, 12]), np.full((3, 2), 2.0))  # gaps 5-7 and 10-11
    s = rb.since(0)
    assert np.array_equal(s.tick, np.arange(13))
    assert np.array_equal(s.valid, [1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 1])
    assert np.isnan(s.data[~s.valid]).all() and not np.isnan(s.data[s.valid]).any()


def test_integer_buffer_uses_fill_and_valid_mask():
    rb = RingBuffer(8, 1, dtype=np.uint16, fill=0)
    rb.write(0, np.full((6, 1), 7))
    rb.write(10, np.full((2, 1), 9))  # gap 6..9 wraps around the ring
    s = rb.latest(8)
    assert s.data.dtype == np.uint16
    assert np.array_equal(s.tick, np.arange(4, 12))
    assert np.array_equal(s.data[:, 0], [7, 7, 0, 0, 0, 0, 9, 9])
    assert np.array_equal(s.valid, [1, 1, 0, 0, 0, 0, 1, 1])


def test_gap_longer_than_capacity_clears_everything():
    rb = RingBuffer(10, 1)
    rb.write(0, np.ones((10, 1)))
    rb.write(100, np.ones((1, 1)))
    s = rb.latest(10)
    assert np.array_equal(s.tick, np.arange(91, 101))
    assert s.valid.sum() == 1 and s.valid[-1]


def test_reads_are_copies_and_bad_writes_raise():
    rb = RingBuffer(10, 2)
    rb.write(0, np.zeros((4, 2)))
    s = rb.latest(4)
    s.data[:] = 5
    assert (rb.latest(4).data == 0).all()
    with pytest.raises(ValueError, match="before the buffer end 4"):
        rb.write(2, np.zeros((1, 2)))
    with pytest.raises(ValueError, match="strictly increasing"):
        rb.write(np.array([5, 5]), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        rb.write(4, np.zeros((1, 3)))


def test_concurrent_reader_sees_only_consistent_rows():
    rb = RingBuffer(64, 4)
    done = threading.Event()
    bad: list[str] = []

    def reader() -> None:
        while not done.is_set():
            s = rb.latest(64)
            ok = s.valid
            # every row written holds its own tick in all channels: a torn write would not
            if not np.all(s.data[ok] == s.tick[ok, None]):
                bad.append(f"torn rows at {s.tick[ok][0]}")

    t = threading.Thread(target=reader)
    t.start()
    for lo in range(0, 20_000, 13):
        ticks = np.arange(lo, lo + 13)
        rb.write(lo, np.repeat(ticks[:, None], 4, axis=1).astype(float))
    done.set()
    t.join()
    assert not bad and rb.end == 20_007
