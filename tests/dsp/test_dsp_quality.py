"""Channel state: each case of issue 12 gets the verdict a clinician would give it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from emgfb.dsp import ChannelStateTracker, EnvelopePipeline, load_dsp_config
from emgfb.dsp.quality import BAD, CHECK, GOOD, NO_SIGNAL, summarise

FS = 2000.0
UV_PER_COUNT = 2.0  # Muscle BioAmp on a 5 V 10-bit board


def _counts(uv: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(uv / UV_PER_COUNT + 512), 0, 1023)


def _feed(uv: np.ndarray, counts: np.ndarray | None = None, with_filtered: bool = True,
          chunk: int = 20) -> list:
    cfg = load_dsp_config()
    n_ch = uv.shape[1]
    pipe = EnvelopePipeline(cfg, FS, n_ch)
    tr = ChannelStateTracker(cfg, FS, n_ch, adc_max=1023, uv_per_count=UV_PER_COUNT)
    out = tr.latest
    for i in range(0, len(uv), chunk):
        part = uv[i:i + chunk]
        pipe.process(part)
        out = tr.update(part, None if counts is None else counts[i:i + chunk],
                        pipe.last_filtered if with_filtered else None)
    return out


@pytest.fixture
def t() -> np.ndarray:
    return np.arange(int(6 * FS)) / FS


def test_rest_is_good_and_nothing_is_judged_before_data(rng, t) -> None:
    uv = rng.standard_normal((len(t), 1)) * 2.0
    tr = ChannelStateTracker(load_dsp_config(), FS, 1)
    assert tr.latest[0].state == NO_SIGNAL and not tr.latest[0].usable
    assert tr.current(float("inf"))[0].reason == "waiting for data from the board"
    out = _feed(uv, _counts(uv))
    assert out[0].state == GOOD and out[0].usable and 1.0 < out[0].rest_rms_uv < 1.6


def test_hum_the_mains_removal_takes_out_is_not_a_fault(rng, t) -> None:
    uv = rng.standard_normal((len(t), 1)) * 2.0 + 300 * np.sin(2 * np.pi * 50 * t)[:, None]
    out = _feed(uv, _counts(uv))
    assert out[0].raw_mains_db > 40  # lots of hum in the raw signal ...
    assert out[0].state == GOOD and out[0].indicators["mains"] == GOOD  # ... none left


def test_hum_left_in_the_envelope_is_named(rng, t) -> None:
    # hum 0.25 Hz off nominal leaks through the old fixed Q=30 notch: the envelope is wrong
    uv = rng.standard_normal((len(t), 1)) * 2.0 + 300 * np.sin(2 * np.pi * 50.25 * t)[:, None]
    tr = ChannelStateTracker(load_dsp_config(), FS, 1)
    sos = np.vstack([np.concatenate(signal.iirnotch(50.0, 30.0, fs=FS)).reshape(1, 6),
                     signal.butter(4, [20, 450], "bandpass", fs=FS, output="sos")])
    filt = signal.sosfilt(sos, uv, axis=0)
    filt[: int(FS)] = np.nan
    for i in range(0, len(t), 50):
        out = tr.update(uv[i:i + 50], None, filt[i:i + 50])
    assert out[0].indicators["mains"] == BAD and "mains hum" in out[0].reason
    assert out[0].mains_db > 1.0


def test_a_contraction_is_activity_not_a_fault(rng, t) -> None:
    level = np.where((t > 2) & (t < 4), 100.0, 2.0)
    uv = rng.standard_normal((len(t), 1)) * level[:, None]
    out = _feed(uv, _counts(uv))
    assert out[0].state == GOOD, out[0].reason
    assert out[0].rest_rms_uv < 2.0


def test_a_reference_repeated_at_once_is_activity_not_a_high_rest_level(rng) -> None:
    # 10 s rest, then two 5 s efforts 1.5 s apart (a refused reference and its repeat):
    # the rest level must stay the rest level at every assessment, not only at the end
    t = np.arange(int(22 * FS)) / FS
    effort = ((t > 10) & (t < 15)) | ((t > 16.5) & (t < 21.5))
    uv = rng.standard_normal((len(t), 1)) * np.where(effort, 60.0, 2.0)[:, None]
    cfg = load_dsp_config()
    tr = ChannelStateTracker(cfg, FS, 1, adc_max=1023, uv_per_count=UV_PER_COUNT)
    counts = _counts(uv)
    for i in range(0, len(uv), 100):
        state = tr.update(uv[i:i + 100], counts[i:i + 100])[0]
        assert state.indicators.get("rest_rms", GOOD) in (GOOD, "unknown"), (i / FS, state)


def test_a_high_rest_level_held_throughout_is_a_check_not_bad(rng, t) -> None:
    uv = rng.standard_normal((len(t), 1)) * 40.0
    out = _feed(uv, _counts(uv))
    assert out[0].state == CHECK and "re-prepare the skin" in out[0].reason


def test_linear_drift_the_filters_remove_is_not_movement(rng, t) -> None:
    uv = rng.standard_normal((len(t), 1)) * 2.0 + 37.0 * t[:, None]  # not a count per 20 ms
    out = _feed(uv, _counts(uv))
    assert out[0].indicators["motion"] == GOOD and out[0].state == GOOD


def test_cable_swing_is_movement(rng, t) -> None:
    uv = rng.standard_normal((len(t), 1)) * 2.0 + 200 * np.sin(2 * np.pi * 3 * t)[:, None]
    out = _feed(uv, _counts(uv))
    assert out[0].indicators["motion"] == BAD and "movement" in out[0].reason


@pytest.mark.parametrize("level", [512, 0, 1023])
def test_one_count_dither_or_a_rail_is_a_flat_line(rng, t, level) -> None:
    counts = np.full((len(t), 1), float(level))
    counts[:, 0] += (rng.random(len(t)) < 0.5) * (1 if level < 1023 else -1)
    uv = (counts - 512) * UV_PER_COUNT
    out = _feed(uv, counts)
    assert out[0].state == BAD and out[0].reason.startswith("flat line")
    assert out[0].raw_sd_uv > 0.5  # the old SD test alone would pass it


def test_clipping_is_named_before_the_rest_level_it_inflates(rng, t) -> None:
    uv = rng.standard_normal((len(t), 1)) * 10.0
    counts = _counts(uv)
    counts[::40, 0] = 1023
    uv = (counts - 512) * UV_PER_COUNT
    out = _feed(uv, counts)
    assert out[0].indicators["rest_rms"] == CHECK
    assert out[0].state == BAD and "ADC limits" in out[0].reason
    assert out[0].clipping_pct == pytest.approx(2.5, abs=0.1)


def test_front_end_saturation_below_the_adc_rails_is_seen(rng, t) -> None:
    uv = rng.standard_normal((len(t), 1)) * 2.0 + 600 * np.sin(2 * np.pi * 7 * t)[:, None]
    uv = np.clip(uv, -400.0, 300.0)  # the amplifier's output swings less than the ADC
    counts = _counts(uv)
    assert counts.min() > 0 and counts.max() < 1023
    out = _feed(uv, counts)
    assert out[0].indicators["clipping"] == GOOD
    assert out[0].indicators["saturation"] == BAD and "saturates" in out[0].reason


def test_a_big_clean_contraction_is_not_saturation(rng, t) -> None:
    uv = rng.standard_normal((len(t), 1)) * np.where((t > 2) & (t < 4), 300.0, 2.0)[:, None]
    out = _feed(uv, _counts(uv))
    assert out[0].indicators["saturation"] == GOOD and out[0].state == GOOD


def test_null_cells_silence_only_their_own_channel(rng, t) -> None:
    uv = rng.standard_normal((len(t), 2)) * 2.0
    uv[int(3 * FS):, 1] = np.nan  # channel 1 stops delivering
    uv[int(2 * FS):int(2 * FS) + 10, 0] = np.nan  # channel 0 loses a few cells
    out = _feed(uv, with_filtered=False)
    assert out[0].state == GOOD
    assert out[1].state == NO_SIGNAL and "no samples" in out[1].reason


def test_a_stalled_stream_has_no_signal(rng, t) -> None:
    uv = rng.standard_normal((len(t), 1)) * 2.0
    cfg = load_dsp_config()
    tr = ChannelStateTracker(cfg, FS, 1)
    tr.update(uv)
    assert tr.current(0.1)[0].state == GOOD
    late = tr.current(2.0)[0]
    assert late.state == NO_SIGNAL and "2.0 s" in late.reason
    assert "USB cable" in late.reason
    # a replayed recording that has ended is not a board to check
    ended = tr.current(2.0, ended=True)[0]
    assert ended.state == NO_SIGNAL and ended.reason == "the recording has ended"


def test_summarise_names_causes_before_symptoms() -> None:
    assert summarise({"rest_rms": BAD, "clipping": CHECK})[1].startswith("signal hits")
    assert summarise({"flat": GOOD, "mains": GOOD}) == (GOOD, "signal looks good")


def test_state_log_keeps_the_start_and_each_change_that_holds():
    from emgfb.dsp import ChannelState, StateLog

    log = StateLog(["A", "B"], hold_ticks=100)

    def states(a, b):
        return [ChannelState(0, a, f"why {a}", {"flat": a}),
                ChannelState(1, b, f"why {b}", {"flat": b})]

    assert log.feed([ChannelState(0), ChannelState(1)], 5) == []  # not assessed yet
    first = log.feed(states("good", "check"), 10)
    assert [(m.tick, m.label, m.kind) for m in first] == [
        (10, "A: good — why good", "channel"), (10, "B: check — why check", "channel")]
    # B flickers to good for less than the hold: nothing stored
    assert log.feed(states("good", "good"), 60) == []
    assert log.feed(states("good", "check"), 120) == []
    # A goes bad and stays: stored once the hold has passed, at the tick it changed
    assert log.feed(states("bad", "check"), 200) == []
    assert log.feed(states("bad", "check"), 260) == []
    held = log.feed(states("bad", "check"), 300)
    assert [(m.tick, m.label) for m in held] == [(200, "A: bad — why bad")]
    assert log.feed(states("bad", "check"), 900) == []
    no = log.feed(states("no_signal", "check"), 1000) + log.feed(states("no_signal", "check"),
                                                                  1100)
    assert [(m.tick, m.label) for m in no] == [(1000, "A: no signal — why no_signal")]


def test_stored_states_give_each_channels_shares_and_worst_reason():
    from emgfb.dsp import ChannelState, StateLog
    from emgfb.dsp.quality import stored_states
    from emgfb.records import Marker

    log = StateLog(["A", "B"], hold_ticks=0)
    marks = []
    for tick, a in ((100, "good"), (400, "no_signal"), (600, "good")):
        marks += log.feed([ChannelState(0, a, f"why {a}", {"x": a}),
                           ChannelState(1, "good", "fine", {"x": "good"})], tick)
    marks.append(Marker(500, "a note: not a state", "note"))
    got = stored_states(marks, 0, 1100)
    assert got["A"]["shares"] == {"good": 0.8, "no_signal": 0.2}
    assert got["A"]["worst"] == "no_signal" and got["A"]["worst_reason"] == "why no_signal"
    assert got["B"] == {"shares": {"good": 1.0}, "worst": "good", "worst_reason": "fine"}
    assert stored_states([Marker(5, "x", "phase")], 0, 10) == {}


def test_a_label_holding_a_colon_reads_whole_given_the_recordings_labels():
    from emgfb.dsp import ChannelState, StateLog
    from emgfb.dsp.quality import stored_states

    labels = ["Zyg: L", "Zyg"]  # montage labels are free text
    log = StateLog(labels, hold_ticks=0)
    marks = log.feed([ChannelState(0, "bad", "flat line: electrode off", {"flat": "bad"}),
                      ChannelState(1, "good", "fine", {"flat": "good"})], 10)
    assert [StateLog.parse(m, labels) for m in marks] == [
        ("Zyg: L", "bad", "flat line: electrode off"), ("Zyg", "good", "fine")]
    got = stored_states(marks, 0, 100, labels)
    assert got["Zyg: L"]["worst"] == "bad" and got["Zyg"]["worst"] == "good"
    assert StateLog.parse(marks[0]) is None  # without the labels it cannot be told
