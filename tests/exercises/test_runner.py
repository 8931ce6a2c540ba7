"""SessionRunner on a synthetic envelope: phases, markers, calibration, scores, cue."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emgfb.exercises.autopilot import AutopilotPatient
from emgfb.exercises.protocol import load_protocol
from emgfb.exercises.runner import SessionRunner
from emgfb.montage import load_montage

FS = 100.0
PROTO = """
name = "mini"
[[step]]
kind = "rest"
duration_s = 2
[[step]]
kind = "reference"
muscle = "zygomaticus_major"
prepare_s = 1
effort_s = 2
relax_s = 1
[[step]]
kind = "exercise"
target = ["zygomaticus_major"]
suppress = ["orbicularis_oculi"]
level_pct = 50
ramp_up_s = 1
hold_s = 2
ramp_down_s = 1
reps = 2
rest_s = 1
prepare_s = 0
"""


@pytest.fixture
def runner(tmp_path: Path) -> SessionRunner:
    p = tmp_path / "mini.toml"
    p.write_text(PROTO)
    return SessionRunner(load_protocol(p), load_montage("face6"), FS)


def _synthetic(runner: SessionRunner, n: int) -> np.ndarray:
    """Rest at 2 uV (ZYG-L at 4), reference effort 102 uV on ZYG-R (52 on ZYG-L), then the
    affected ZYG-L exactly on target and ZYG-R at twice the target (rest added in power)."""
    env = np.full((n, 6), 2.0)
    env[:, 4] = 4.0
    env[:, 3] = 2.0 + (np.arange(n) % 2)  # OOC-R: rest SD > 0
    env[:, 2] = 2.0 + 0.5 * (np.arange(n) % 2)
    off = np.arange(n)
    ref = (off >= 300) & (off < 500)
    env[ref, 5] = 102.0
    env[ref, 4] = 52.0
    target = runner.targets_at(off)
    ex = np.isfinite(target) & (off >= 600)
    # activity adds to rest in power: env = hypot(rest, pct/100 * span of the healthy side)
    span = np.sqrt(102.0 ** 2 - 2.0 ** 2)
    env[ex, 4] = np.hypot(4.0, target[ex] / 100 * span)
    env[ex, 5] = np.hypot(2.0, 2 * target[ex] / 100 * span)
    return env


def test_timeline_markers_calibration_and_scores(runner: SessionRunner) -> None:
    n = runner.total_ticks
    assert n == round((2 + 4 + 4 + 1 + 4) * FS)
    env = _synthetic(runner, n)
    env[:10] = np.nan  # settling filters
    events = []
    start = 1000  # ticks need not start at 0
    for lo in range(0, n, 7):  # odd chunk size: boundaries fall inside chunks
        hi = min(n, lo + 7)
        events += runner.feed(np.arange(start + lo, start + hi), env[lo:hi])
    assert runner.finished and runner.cue.finished
    markers = [(e.marker.tick - start, e.marker.kind, e.marker.label)
               for e in events if e.kind == "marker"]
    assert markers[:4] == [(0, "phase", "Rest baseline: baseline"),
                           (200, "phase", "Rest baseline: end"),
                           (200, "phase", "Reference smile: prepare"),
                           (300, "phase", "Reference smile: effort")]
    reps = [m for m in markers if m[1] == "rep"]
    assert reps == [(600, "rep", "Smile rep 1/2 start"), (1000, "rep", "Smile rep 1/2 end"),
                    (1100, "rep", "Smile rep 2/2 start"), (1500, "rep", "Smile rep 2/2 end")]
    assert markers[-1] == (1500, "phase", "Smile: end")
    assert [e.kind for e in events].count("finished") == 1

    cal = runner.calibration_document()
    np.testing.assert_allclose(cal["rest"]["mean_uv"][5], 2.0)
    assert cal["rest"]["n_samples"][0] == 190
    assert cal["reference_uv"][4:] == pytest.approx([52.0, 102.0])
    assert cal["reference_uv"][0] is None and cal["reference_side"] == "right"

    assert len(runner.scores) == 2
    s = runner.scores[0]
    assert (s["rep"], s["start_tick"], s["end_tick"]) == (1, start + 600, start + 1000)
    assert (s["target_channel"], s["healthy_channel"], s["suppression_channels"]) == (4, 5, [2])
    assert s["pct_in_band"] == pytest.approx(100.0)
    assert s["nrmse"] == pytest.approx(0.0, abs=1e-9)
    assert s["lag_ms"] == 0.0 and s["overshoot_pct"] == pytest.approx(0.0, abs=1e-9)
    assert s["pct_below_ceiling"] == 100.0  # OOC-L stays at 2-2.5, ceiling 2.25 + 3 SD
    assert s["symmetry_ratio"] == pytest.approx(0.5)
    assert s["asymmetry_index"] == pytest.approx(1 / 3)
    assert s["oral_ocular_index"] is None  # no eye-closure reference in this protocol

    doc = runner.protocol_document()
    assert [(st["start_tick"], st["end_tick"]) for st in doc["steps"]] == [
        (start, start + 200), (start + 200, start + 600), (start + 600, start + 1500)]


def test_cue_texts_countdown_and_target_ahead(runner: SessionRunner) -> None:
    env = _synthetic(runner, runner.total_ticks)
    cue = runner.cue
    assert (cue.step_kind, cue.phase, cue.countdown_s) == ("rest", "baseline", 2.0)
    runner.feed(np.arange(0, 650), env[:650])
    cue = runner.cue
    assert (cue.step_kind, cue.phase, cue.rep, cue.n_reps) == ("exercise", "ramp_up", 1, 2)
    assert cue.text == "Slowly smile..."
    assert cue.countdown_s == pytest.approx(0.5)
    assert cue.target_pct == pytest.approx(25.0) and cue.band_pct == 10.0
    assert cue.target_ahead_pct[5] == pytest.approx(50.0)  # 0.5 s later: holding
    assert cue.level_pct == pytest.approx(cue.target_pct - 0.5, abs=1.0)
    assert cue.ceiling_pct == (None,) and len(cue.ceiling_uv) == 1
    runner.feed(np.arange(650, 800), env[650:800])
    assert runner.cue.text.startswith("Hold... - keep your eye soft")
    assert runner.cue.suppression_over is False


def test_autopilot_is_deterministic(runner: SessionRunner) -> None:
    class Model:
        def __init__(self) -> None:
            self.drives: list[dict[str, float]] = []

        def set_drive(self, levels: dict[str, float] | None) -> None:
            self.drives.append(dict(levels or {}))

    env = _synthetic(runner, runner.total_ticks)
    runs = []
    for _ in range(2):
        r = SessionRunner(runner.protocol, runner.montage, FS)
        model = Model()
        pilot = AutopilotPatient(model, FS, seed=3)
        for lo in range(0, r.total_ticks, 5):
            pilot.update(r.cue)
            r.feed(np.arange(lo, lo + 5), env[lo:lo + 5])
        runs.append(model.drives)
    assert runs[0] == runs[1]
    levels = [d.get("zygomaticus_major", 0.0) for d in runs[0]]
    assert max(levels[60:100]) > 0.5  # reference effort (after the 0.3 s lag)
    assert max(levels[:40]) == 0.0  # rest
    # overshoot: the second-order response passes the 0.8 effort level
    assert max(levels) > 0.8
