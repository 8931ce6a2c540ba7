"""LSL clocks without a network: ticks from incoming timestamps, drift-corrected outgoing ones.

:class:`~emgfb.acquisition.lsl.StreamClock` turns another program's timestamps into ticks.
Senders stamp in different ways, and each pattern here is one met in practice: one exact
stamp per sample with a little jitter (pylsl's ``push_sample`` loop), several samples with
one stamp taken at push time (BrainFlow's LSL streamer, which made the old per-step rule
invent 13 lost ticks), and clocks that run a few per mille fast or slow. Pulls split pushes
at random places, as a real inlet does.

:class:`~emgfb.acquisition.lsl.SampleClock` stamps emgfb's own outgoing samples: a board
whose crystal runs 0.5 % fast must not drift 0.6 s away from ``local_clock()`` in two
minutes.
"""

from __future__ import annotations

import numpy as np
import pytest

from emgfb.acquisition.lsl import SampleClock, StreamClock

FS = 1000.0
N = 120_000  # two minutes


def _per_sample(k: np.ndarray, rng: np.random.Generator, rate: float = 1.0) -> np.ndarray:
    return 100.0 + k / (FS * rate) + rng.normal(0.0, 0.0002, len(k))


def _batched(k: np.ndarray, rng: np.random.Generator, rate: float = 1.0) -> np.ndarray:
    """10-30 samples per push, all stamped when the push happens (last sample + 0-3 ms)."""
    t = np.empty(len(k))
    i = 0
    while i < len(k):
        j = min(i + int(rng.integers(10, 31)), len(k))
        t[i:j] = 100.0 + k[j - 1] / (FS * rate) + rng.uniform(0.0, 0.003)
        i = j
    return t


def _ticks(stamps: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, StreamClock]:
    """Pull 1-200 samples at a time, holding back a cut batch as LslSource does."""
    clock = StreamClock(FS, jitter_s=0.005)
    out, i, held = [], 0, 0
    while i < len(stamps):
        n = int(rng.integers(1, 200))
        pulled = stamps[i - held:i + n]
        ready = clock.ready(pulled, 500) if i + n < len(stamps) else len(pulled)
        out.append(clock.ticks(pulled[:ready]))
        held = len(pulled) - ready
        i += n
    return np.concatenate(out), clock


@pytest.mark.parametrize("stamping", [_per_sample, _batched])
@pytest.mark.parametrize("rate", [1.0, 0.995, 1.005])
def test_no_invented_gaps(stamping, rate, rng):
    k = np.arange(N)
    tick, clock = _ticks(stamping(k, rng, rate), rng)
    assert clock.lost_ticks == 0
    assert np.array_equal(tick, k)
    assert clock.slope * FS == pytest.approx(1 / rate, rel=5e-4)


@pytest.mark.parametrize("seed", range(4))
def test_a_real_gap_is_found_where_and_as_long_as_it_is(seed):
    rng = np.random.default_rng(seed)
    k = np.r_[0:30_000, 30_050:60_000, 60_012:N]  # 50 lost, then 12
    tick, clock = _ticks(_per_sample(k, rng), rng)
    assert clock.lost_ticks == 62
    assert np.array_equal(tick, k)


def test_a_gap_between_batches_is_found_to_within_a_batch(rng):
    k = np.r_[0:30_000, 30_200:N]
    tick, clock = _ticks(_batched(k, rng), rng)
    assert abs(clock.lost_ticks - 200) <= 30  # the stamps cannot place it finer
    assert np.array_equal(tick[:29_970], k[:29_970])
    assert abs(int(tick[-1]) - int(k[-1])) <= 30


def test_first_pull_sets_the_line():
    clock = StreamClock(FS)
    assert np.array_equal(clock.ticks(np.full(20, 5.0)), np.arange(20))  # one batch
    assert np.array_equal(clock.ticks(5.0 + np.arange(1, 21) / FS), np.arange(20, 40))
    assert clock.lost_ticks == 0
    assert clock.time_of(19) == pytest.approx(5.0, abs=1e-3)


def _drifting_board(clock: SampleClock, rng: np.random.Generator, seconds: float,
                    rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Chunks of 16 ticks from a board whose clock runs ``rate`` times the nominal rate,
    each arriving 1-16 ms after its last sample (serial batching); returns the true
    sampling times and the stamps the clock gives every tick."""
    ticks = np.arange(int(seconds * FS))
    true = 50.0 + ticks / (FS * rate)
    stamps = np.empty(len(ticks))
    for a in range(0, len(ticks), 16):
        b = min(a + 16, len(ticks))
        clock.observe_arrival(int(ticks[b - 1]), float(true[b - 1]) + rng.uniform(0.001, 0.016))
        stamps[a:b] = clock.time_of(ticks[a:b])
    return true, stamps


@pytest.mark.parametrize("rate", [1.005, 0.995])
def test_outgoing_stamps_follow_a_drifting_board(rate, rng):
    clock = SampleClock(FS)
    true, stamps = _drifting_board(clock, rng, 120.0, rate)
    error = stamps - true
    # uncorrected, tick / fs would be 0.6 s off after two minutes
    assert abs(error[-1]) < 0.02
    assert np.all(np.abs(error[60_000:]) < 0.02)
    step = np.diff(stamps) * FS
    assert np.all(np.abs(step - 1 / rate) < 0.01)  # smooth and monotonic


def test_outgoing_stamps_keep_the_nominal_rate_until_the_drift_is_known(rng):
    clock = SampleClock(FS)
    _true, stamps = _drifting_board(clock, rng, 5.0, 1.005)
    np.testing.assert_allclose(np.diff(stamps), 1 / FS, atol=1e-9)


def test_outgoing_stamps_ignore_a_source_that_is_not_real_time():
    clock = SampleClock(FS)
    for k in range(16, 200_000, 16):  # an unpaced source: 200 s of ticks in 0.2 s
        clock.observe_arrival(k, 10.0 + k * 1e-6)
    stamps = clock.time_of(np.arange(1000, 1100))
    np.testing.assert_allclose(np.diff(stamps), 1 / FS, atol=1e-9)
