"""Protocol files: the bundled ones load, bad ones fail before a session with one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emgfb.config import bundled_names
from emgfb.errors import ConfigError
from emgfb.exercises.protocol import load_protocol
from emgfb.exercises.targets import Target
from emgfb.montage import load_montage

GOOD = """
name = "t"
[[step]]
kind = "rest"
duration_s = 2
[[step]]
kind = "reference"
muscle = "zygomaticus_major"
[[step]]
kind = "exercise"
target = ["zygomaticus_major"]
suppress = ["orbicularis_oculi"]
reps = 2
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "p.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("name", bundled_names("protocols"))
def test_bundled_protocols_load_with_their_montage(name: str) -> None:
    proto = load_protocol(name)
    proto.check_montage(load_montage(proto.montage))
    exercises = [s for s in proto.steps if s.kind == "exercise"]
    assert exercises and all(s.sunnybrook for s in exercises)


def test_demo_is_about_two_minutes() -> None:
    assert 90 <= load_protocol("demo").duration_s <= 150


def test_pucker_needs_face8() -> None:
    pattern = r"pucker.toml: step\[2\]\.muscle = 'orbicularis_oris'.*face6"
    with pytest.raises(ConfigError, match=pattern):
        load_protocol("pucker", load_montage("face6"))
    load_protocol("pucker", load_montage("face8"))


def test_good_file_and_defaults(tmp_path: Path) -> None:
    proto = load_protocol(_write(tmp_path, GOOD), load_montage("face6"))
    ex = proto.steps[2]
    assert ex.name == "smile" and ex.sunnybrook == "open-mouth smile"
    assert ex.shape_target == Target("hold", 30.0, 2.0, 5.0, 2.0)
    assert ex.ceiling.mode == "baseline_sd" and ex.ceiling.value == 3.0
    phases = [p for p, _, _ in ex.phases()]
    assert phases == ["prepare", "ramp_up", "hold", "ramp_down", "rest",
                      "ramp_up", "hold", "ramp_down"]


@pytest.mark.parametrize(
    ("old", "new", "pattern"),
    [
        ('muscle = "zygomaticus_major"', 'muscle = "zygomatic"',
         r"step\[1\]\.muscle = 'zygomatic': expected a muscle name"),
        ('suppress = ["orbicularis_oculi"]', 'suppress = ["orbicularis_oculus"]',
         r"step\[2\]\.suppress = 'orbicularis_oculus': expected a muscle name"),
        ("duration_s = 2", "duration_s = -5",
         r"step\[0\]\.duration_s = -5\.0: expected a number in 0\.\.3600 s"),
        ("reps = 2", "reps = 2\nhold_s = -1",
         r"step\[2\]\.hold_s = -1\.0: expected a number in 0\.\.3600 s"),
        ('kind = "rest"', 'kind = "warmup"',
         r"step\[0\]\.kind = 'warmup': expected one of 'signal-check', 'rest'"),
        ("reps = 2", "reps = 2\nrepetitions = 3", r"unknown key step\[2\]\.repetitions"),
        ('name = "t"', 'name = "t"\ncolour = "red"', r"unknown key colour"),
        ("reps = 2", "reps = 0", r"step\[2\]\.reps = 0: expected an integer in 1\.\.1000"),
        ("reps = 2", 'reps = 2\nshape = "wave"', r"step\[2\]\.shape = 'wave': expected one of"),
        ('kind = "reference"\nmuscle = "zygomaticus_major"',
         'kind = "reference"\nmuscle = "frontalis"',
         r"step\[2\]\.target = 'zygomaticus_major': expected a muscle with a reference step"),
    ],
)
def test_bad_files_fail_with_one_line(tmp_path: Path, old: str, new: str, pattern: str) -> None:
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError, match=pattern) as err:
        load_protocol(path, load_montage("face6"))
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_muscle_not_in_montage(tmp_path: Path) -> None:
    text = GOOD.replace('suppress = ["orbicularis_oculi"]', 'suppress = ["orbicularis_oris"]')
    path = _write(tmp_path, text)
    load_protocol(path)  # valid vocabulary
    with pytest.raises(ConfigError, match=r"step\[2\]\.suppress = 'orbicularis_oris': expected "
                                          r"a muscle montage 'face6' records on both sides"):
        load_protocol(path, load_montage("face6"))


def test_exercise_needs_rest_first(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace('kind = "rest"', 'kind = "signal-check"'))
    with pytest.raises(ConfigError, match=r"step\[2\]\.kind = 'exercise': expected a rest step"):
        load_protocol(path)


def test_missing_file_and_unknown_name() -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_protocol("/nonexistent/p.toml")
    with pytest.raises(ConfigError, match="no protocols config named 'nosuch'.*demo"):
        load_protocol("nosuch")


def test_target_shapes() -> None:
    t = Target("hold", 30.0, 2.0, 5.0, 1.0)
    assert t.duration_s == 8.0
    got = t.nominal(np.array([-1.0, 0.0, 1.0, 2.0, 4.0, 7.0, 7.5, 8.0, 9.0]))
    np.testing.assert_allclose(got, [0, 0, 15, 30, 30, 30, 15, 0, 0])
    np.testing.assert_allclose(Target("relax", 0.0, 0.0, 5.0, 0.0).nominal(np.arange(6.0)), 0)
    np.testing.assert_allclose(Target("mirror", 40.0, 0.0, 2.0, 0.0).nominal([0.0, 1.9, 2.0]),
                               [40, 40, 0])
    assert [p for p, _ in Target("hold", 30.0, 0.0, 5.0, 2.0).phases()] == ["hold", "ramp_down"]
