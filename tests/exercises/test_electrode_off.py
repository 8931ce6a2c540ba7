"""Headless guided sessions with an electrode off (issue 12, "Done when").

The simulated board flattens one channel at the ADC rail (``electrode_off``). With the
affected eye electrode off (the smile's suppression channel) no score that uses it is
valid and the report says why; with the healthy smile electrode off the signal check
waits and, headless, ends the session; overridden, the reference is refused, repeated
as the protocol allows and the session ends with one line naming the channel. The file is
kept every time. Flat at mid-scale with a one-count dither, or floating and picking up hum,
the eye's scores are invalid with the channel state's own reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from emgfb.cli import main
from emgfb.dsp.quality import HINTS
from emgfb.exercises.report import build_report
from emgfb.recording import open_recording

URL = "sim://?speed=0&chunk=50&seed=4&electrode_off={ch}"
OOC_L, ZYG_R = 2, 5  # face6: FRO-L FRO-R OOC-L OOC-R ZYG-L ZYG-R, affected side left


def _session(tmp: Path, ch: int, *extra: str, query: str = "") -> tuple[int, Path]:
    out = tmp / f"off{ch}.h5"
    code = main(["session", "--protocol", "demo", "--source", URL.format(ch=ch) + query, "-o",
                 str(out), "--subject", "P001", "--headless", *extra])
    return code, out


@pytest.fixture(scope="module")
def eye_off(tmp_path_factory: pytest.TempPathFactory) -> Path:
    code, out = _session(tmp_path_factory.mktemp("eye"), OOC_L, "--override-check")
    assert code == 0
    return out


def test_eye_electrode_off_leaves_no_valid_score_using_it(eye_off: Path) -> None:
    with open_recording(eye_off) as rec:
        scores = rec.document("scores")
        markers = [m.label for m in rec.markers]
        cal = rec.document("calibration")
    uses = [s for s in scores if OOC_L in s["suppression_channels"]
            or s["ocular_channel"] == OOC_L]
    others = [s for s in scores if s not in uses]
    assert len(uses) == 3 and len(others) == 2  # 3 smiles with eye suppression, 2 brow lifts
    for s in uses:
        assert s["valid"] is False
        assert s["invalid_reason"].startswith("OOC-L: bad: flat line: electrode off")
    assert all(s["valid"] is True and s["invalid_reason"] is None for s in others)
    # the clinician's override is a marker, naming what was wrong
    assert any(m.startswith("signal check overridden by the clinician") and "OOC-L" in m
               for m in markers)
    assert cal["signal_check"]["overridden"] is True


def test_the_recording_keeps_each_channels_state(eye_off: Path) -> None:
    with open_recording(eye_off) as rec:
        states = [m for m in rec.markers if m.kind == "channel"]
        first_tick = rec.first_tick
    # the state each channel starts in, at the first assessment, once per channel
    start = states[0].tick
    at_start = [m.label for m in states if m.tick == start]
    assert len(at_start) == 6 and start - first_tick < 4000, states[:8]
    eye = [m.label for m in states if m.label.startswith("OOC-L: ")]
    assert eye and all(m.startswith("OOC-L: bad — flat line: electrode off") for m in eye), eye


def test_info_says_which_channel_was_not_good_and_why(eye_off: Path, capsys) -> None:
    import json

    assert main(["info", str(eye_off)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "channel states:" in x)
    assert line.strip() == ("channel states: OOC-L bad 100 % of the time (flat line: electrode"
                            " off or lead broken; check contact and cable)"), line
    assert main(["info", "--json", str(eye_off)]) == 0
    states = json.loads(capsys.readouterr().out)["channel_states"]
    assert states["OOC-L"]["shares"] == {"bad": 1.0}
    assert all(v["worst"] == "good" for k, v in states.items() if k != "OOC-L")


def test_report_shows_why_the_eye_scores_are_missing(eye_off: Path) -> None:
    page = build_report(eye_off)
    assert "3 of 3 reps not valid (left out of every mean): OOC-L: bad: flat line" in page
    assert "no: OOC-L: bad: flat line" in page  # beside each rep
    assert "Signal check overridden by the clinician: OOC-L bad: flat line" in page
    # the quality table says what the live screen showed of each channel, from the file
    quality = page.split('id="quality"')[1].split("</table>")[0]
    assert "During the session" in quality
    assert quality.count("good throughout") == 5
    assert "bad 100 % of the time (flat line: electrode off" in quality


def test_healthy_electrode_off_stops_the_headless_check(tmp_path: Path, capsys) -> None:
    code, out = _session(tmp_path, ZYG_R)
    assert code == 2 and out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("emgfb session: error: signal check: ZYG-R bad: flat line")
    with open_recording(out) as rec:
        assert rec.document("scores") == []
        assert rec.document("calibration")["signal_check"]["passed"] is False


def test_flat_healthy_reference_is_refused_repeated_then_ends_the_session(
        tmp_path: Path, capsys) -> None:
    code, out = _session(tmp_path, ZYG_R, "--override-check")
    assert code == 2 and out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    last = err[-1]
    assert last.startswith("emgfb session: error: step 'Reference smile': ZYG-R bad: flat "
                           "line") and last.endswith("3 attempt(s), none usable")
    with open_recording(out) as rec:
        cal = rec.document("calibration")
        markers = [m.label for m in rec.markers if m.kind == "calibration"]
        assert rec.document("scores") == []  # no score from an unusable reference
    assert [f["attempt"] for f in cal["reference_failures"]] == [1, 2, 3]
    assert all(f["channel"] == "ZYG-R" for f in cal["reference_failures"])
    assert markers[:2] == [m for m in markers if "refused, repeat" in m][:2]
    assert len(markers) == 2  # two repeats allowed by default, the third failure ends it
    page = build_report(out)
    assert "Reference smile: attempt 3 refused: ZYG-R bad: flat line" in page
    assert "e+" not in page.split('id="calibration"')[1].split("</table>")[0]


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "state", "hint"), [
    ("dither", "bad", "flat"),  # a one-count dither is a flat line, not a signal
    ("float", "bad", "mains"),  # a floating electrode picks up hum the notch cannot hide
])
def test_every_way_off_leaves_no_valid_score_using_it_with_the_trackers_reason(
        tmp_path: Path, mode: str, state: str, hint: str) -> None:
    code, out = _session(tmp_path, OOC_L, "--override-check", query=f"&off_mode={mode}")
    assert code == 0
    with open_recording(out) as rec:
        scores = rec.document("scores")
    uses = [s for s in scores if OOC_L in s["suppression_channels"]]
    assert len(uses) == 3 and not any(s["valid"] for s in uses)
    # the reason is the channel state's, word for word: "<label>: <state>: <reason>"
    first = uses[0]["invalid_reason"]
    assert first == f"OOC-L: {state}: {HINTS[hint]}"
    for s in uses:
        label, st, reason = s["invalid_reason"].split(": ", 2)
        assert label == "OOC-L" and st in ("check", "bad") and reason in HINTS.values()
    assert all(s["valid"] for s in scores if s not in uses)
