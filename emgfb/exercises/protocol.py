"""Session scripts: the TOML schema of ``emgfb/configs/protocols/*.toml`` and its validation.

This module owns :class:`Protocol` (a named list of :class:`Step`), its loader
:func:`load_protocol` and :meth:`Protocol.check_montage`. Everything a session needs is
checked before it starts: unknown keys, unknown step kinds, unknown muscles, muscles the
montage does not record on both sides, negative or zero durations, exercises that come
before the rest baseline or the reference of their muscles. Every error is one line
naming the file, the key, the value given and what was expected
(:class:`emgfb.config.Table`). Imports ``config``, ``montage``, ``errors`` and
``exercises.targets`` only.

Schema (all durations in seconds)::

    name = "smile"                 # protocol name (default: file stem)
    description = "..."            # free text
    montage = "face6"              # montage the protocol is written for (default face6)

    [[step]]
    kind = "signal-check"          # signal-check | rest | reference | exercise | post-rest
    label = "Signal check"         # unique; used in markers (default from the kind)
    duration_s = 5                 # signal-check, rest, post-rest
    text = "..."                   # optional cue text for the patient

    [[step]]
    kind = "reference"             # one muscle, both sides at once
    muscle = "zygomaticus_major"
    prepare_s = 2                  # defaults: 2, 4, 3
    effort_s = 4
    relax_s = 3
    retries = 2                    # repeats allowed when the reference does not clear rest

    [[step]]
    kind = "exercise"
    name = "smile"                 # exercise name in scores (default from the muscle)
    sunnybrook = "open-mouth smile"  # Sunnybrook item (default from the muscle)
    target = ["zygomaticus_major"] # target muscle(s); the first one is scored
    suppress = ["orbicularis_oculi"]  # suppression (synkinetic) muscle(s), affected side
    shape = "hold"                 # hold | mirror | relax
    level_pct = 30                 # % of the healthy reference (hold, mirror)
    ramp_up_s = 2                  # defaults 2, 5, 2
    hold_s = 5
    ramp_down_s = 2
    reps = 10
    rest_s = 10                    # rest between repetitions
    prepare_s = 3
    band_pct = 10                  # tolerance band, +- % points
    ceiling = { mode = "baseline_sd", value = 3 }   # or mode = "reference_pct"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emgfb.config import Table, load_toml, resolve_config
from emgfb.errors import ConfigError
from emgfb.exercises.targets import SHAPES, Target
from emgfb.limits import REPS, STEP_SECONDS
from emgfb.montage import MUSCLES, Montage

STEP_KINDS = ("signal-check", "rest", "reference", "exercise", "post-rest")
CEILING_MODES = ("baseline_sd", "reference_pct")

#: Short exercise names and patient verbs per muscle (default ``name`` / cue wording).
EXERCISE_NAMES: dict[str, str] = {
    "frontalis": "brow lift",
    "corrugator": "frown",
    "orbicularis_oculi": "eye closure",
    "levator_labii": "snarl",
    "zygomaticus_major": "smile",
    "orbicularis_oris": "lip pucker",
    "depressor_anguli_oris": "lip depression",
    "platysma": "neck tension",
    "masseter": "clench",
    "other": "contraction",
}
VERBS: dict[str, str] = {
    "frontalis": "lift your eyebrows",
    "corrugator": "frown",
    "orbicularis_oculi": "close your eyes gently",
    "levator_labii": "lift your upper lip",
    "zygomaticus_major": "smile",
    "orbicularis_oris": "pucker your lips",
    "depressor_anguli_oris": "pull your mouth corners down",
    "platysma": "tense your neck",
    "masseter": "clench your teeth",
    "other": "contract",
}

_COMMON = {"kind", "label", "text"}
_KEYS = {
    "signal-check": _COMMON | {"duration_s"},
    "rest": _COMMON | {"duration_s"},
    "post-rest": _COMMON | {"duration_s"},
    "reference": _COMMON | {"muscle", "prepare_s", "effort_s", "relax_s", "retries"},
    "exercise": _COMMON | {
        "name", "sunnybrook", "target", "suppress", "shape", "level_pct", "ramp_up_s",
        "hold_s", "ramp_down_s", "reps", "rest_s", "prepare_s", "band_pct", "ceiling",
    },
}
_DEFAULT_LABEL = {"signal-check": "Signal check", "rest": "Rest baseline",
                  "post-rest": "Post-rest baseline"}


@dataclass(frozen=True)
class Ceiling:
    """Suppression ceiling on a synkinetic channel.

    Attributes
    ----------
    mode
        ``"baseline_sd"``: rest mean + ``value`` x rest SD of the channel (DOMAIN.md §4,
        value 3); ``"reference_pct"``: ``value`` % of the healthy homologous reference.
    value
        k (SDs) or a percentage.
    """

    mode: str = "baseline_sd"
    value: float = 3.0


@dataclass(frozen=True)
class Step:
    """One step of a session script (see the module docstring for the keys).

    Attributes
    ----------
    kind, label, key
        Step kind, unique label and its position in the file (``step[3]``) for messages.
    text
        Cue text override ("" = generated).
    duration_s
        Length of a signal-check / rest / post-rest step.
    muscle, prepare_s, effort_s, relax_s
        Reference step: muscle and phase lengths (``prepare_s`` also for exercises).
    retries
        Reference step: how often it is repeated when the contraction does not clear rest
        (:func:`emgfb.dsp.calibration.check_reference`) before the session stops.
    name, sunnybrook, target, suppress, shape_target, reps, rest_s, band_pct, ceiling
        Exercise step.
    """

    kind: str
    label: str
    key: str
    text: str = ""
    duration_s: float = 0.0
    muscle: str = ""
    prepare_s: float = 0.0
    effort_s: float = 0.0
    relax_s: float = 0.0
    name: str = ""
    sunnybrook: str = ""
    target: tuple[str, ...] = ()
    suppress: tuple[str, ...] = ()
    shape_target: Target | None = None
    reps: int = 0
    rest_s: float = 0.0
    band_pct: float = 0.0
    ceiling: Ceiling | None = None
    retries: int = 2

    def phases(self) -> list[tuple[str, float, int]]:
        """The step's timeline: ``(phase, duration_s, rep)`` in order (rep 0 = no rep)."""
        if self.kind == "signal-check":
            return [("check", self.duration_s, 0)]
        if self.kind in ("rest", "post-rest"):
            return [("baseline", self.duration_s, 0)]
        if self.kind == "reference":
            out = [("prepare", self.prepare_s, 0), ("effort", self.effort_s, 0),
                   ("relax", self.relax_s, 0)]
            return [p for p in out if p[1] > 0]
        assert self.shape_target is not None
        out = [("prepare", self.prepare_s, 0)] if self.prepare_s > 0 else []
        for rep in range(1, self.reps + 1):
            out += [(name, d, rep) for name, d in self.shape_target.phases()]
            if rep < self.reps and self.rest_s > 0:
                out.append(("rest", self.rest_s, 0))
        return out

    @property
    def duration_total_s(self) -> float:
        """Length of the whole step."""
        return sum(d for _, d, _ in self.phases())

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly description (the ``protocol`` document of a recording)."""
        d: dict[str, Any] = {"kind": self.kind, "label": self.label, "text": self.text,
                             "duration_s": self.duration_total_s}
        if self.kind == "reference":
            d.update(muscle=self.muscle, prepare_s=self.prepare_s, effort_s=self.effort_s,
                     relax_s=self.relax_s, retries=self.retries,
                     sunnybrook=MUSCLES[self.muscle])
        elif self.kind == "exercise":
            t = self.shape_target
            assert t is not None and self.ceiling is not None
            d.update(
                name=self.name, sunnybrook=self.sunnybrook, target=list(self.target),
                suppress=list(self.suppress), shape=t.shape, level_pct=t.level_pct,
                ramp_up_s=t.ramp_up_s, hold_s=t.hold_s, ramp_down_s=t.ramp_down_s,
                reps=self.reps, rest_s=self.rest_s, prepare_s=self.prepare_s,
                band_pct=self.band_pct,
                ceiling={"mode": self.ceiling.mode, "value": self.ceiling.value},
            )
        return d


@dataclass(frozen=True)
class Protocol:
    """A validated session script.

    Attributes
    ----------
    name, description
        Identification.
    montage
        Name of the montage the script is written for.
    steps
        Steps in order.
    source
        File it was loaded from (for messages).
    """

    name: str
    description: str
    montage: str
    steps: tuple[Step, ...]
    source: str = ""
    muscles: tuple[str, ...] = field(default=())

    @property
    def duration_s(self) -> float:
        """Planned length of the whole session."""
        return sum(s.duration_total_s for s in self.steps)

    def check_montage(self, montage: Montage) -> None:
        """Fail if a muscle the script uses is not recorded on both sides by ``montage``.

        Raises
        ------
        ConfigError
            ``FILE: step[i].KEY = 'muscle': expected a muscle montage NAME records on both
            sides (...)``.
        """
        paired = [m for m, _, _ in montage.pairs()]
        expected = (f"a muscle montage {montage.name!r} records on both sides "
                    f"({', '.join(paired) or 'none'})")
        for step in self.steps:
            uses = [("muscle", step.muscle)] if step.muscle else []
            uses += [("target", m) for m in step.target]
            uses += [("suppress", m) for m in step.suppress]
            for key, muscle in uses:
                if muscle not in paired:
                    raise ConfigError(f"{self.source}: {step.key}.{key} = {muscle!r}: "
                                      f"expected {expected}")

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly description (without run ticks; the runner adds those)."""
        return {"name": self.name, "description": self.description, "montage": self.montage,
                "source": self.source, "duration_s": self.duration_s,
                "steps": [s.as_dict() for s in self.steps]}


def load_protocol(name_or_path: str | Path, montage: Montage | None = None) -> Protocol:
    """Load and validate ``emgfb/configs/protocols/<name>.toml`` (or a path).

    Parameters
    ----------
    name_or_path
        Bundled protocol name (``demo``, ``smile`` ...) or a TOML path.
    montage
        If given, also check that every muscle is recorded on both sides
        (:meth:`Protocol.check_montage`).

    Raises
    ------
    ConfigError
        On the first problem, as one line naming file, key, value and what was expected.
    """
    path = resolve_config(name_or_path, "protocols")
    t = Table(load_toml(path), path)
    t.reject_unknown({"name", "description", "montage", "step"})
    step_tables = t.tables("step")
    if not step_tables:
        raise ConfigError(f"{path}: no [[step]] tables; expected at least one step")
    steps: list[Step] = []
    for st in step_tables:
        steps.append(_load_step(st, steps))
    labels = [s.label for s in steps]
    for i, label in enumerate(labels):
        if label in labels[:i]:
            raise ConfigError(f"{path}: step[{i}].label = {label!r}: expected a label not "
                              f"used by an earlier step (set label = \"...\")")
    muscles = tuple(dict.fromkeys(
        m for s in steps for m in ((s.muscle,) if s.muscle else ()) + s.target + s.suppress))
    protocol = Protocol(
        name=t.get("name", str, Path(path.name).stem), description=t.get("description", str, ""),
        montage=t.get("montage", str, "face6"), steps=tuple(steps), source=str(path),
        muscles=muscles,
    )
    if montage is not None:
        protocol.check_montage(montage)
    return protocol


def _duration(t: Table, name: str, default: float, *, positive: bool) -> float:
    value = t.get(name, float, default, limit=STEP_SECONDS)
    if positive and value == 0:
        raise t.fail(name, value, f"a duration > 0 s ({STEP_SECONDS.expected})")
    return value


def _muscle_list(t: Table, name: str, required: bool) -> tuple[str, ...]:
    raw = t.get(name, (str, list)) if required else t.get(name, (str, list), None)
    if raw is None:
        return ()
    items = [raw] if isinstance(raw, str) else raw
    if required and not items:
        raise t.fail(name, raw, "at least one muscle")
    for m in items:
        if not isinstance(m, str) or m not in MUSCLES:
            raise t.fail(name, m, "a muscle name, one of " + ", ".join(MUSCLES))
    if len(set(items)) != len(items):
        raise t.fail(name, raw, "each muscle once")
    return tuple(items)


def _load_step(t: Table, earlier: list[Step]) -> Step:
    kind = t.get("kind", str, choices=STEP_KINDS)
    t.reject_unknown(_KEYS[kind])
    key = t.prefix
    text = t.get("text", str, "")
    if kind in ("signal-check", "rest", "post-rest"):
        default = {"signal-check": 5.0, "rest": 15.0, "post-rest": 15.0}[kind]
        return Step(kind, t.get("label", str, _DEFAULT_LABEL[kind]), key, text,
                    duration_s=_duration(t, "duration_s", default, positive=True))
    if kind == "reference":
        muscle = t.get("muscle", str)
        if muscle not in MUSCLES:
            raise t.fail("muscle", muscle, "a muscle name, one of " + ", ".join(MUSCLES))
        effort = _duration(t, "effort_s", 4.0, positive=True)
        if effort < 1.0:
            raise t.fail("effort_s", effort, "at least 1 s (the reference is a 500 ms RMS "
                         "peak of a 3-5 s effort)")
        return Step(kind, t.get("label", str, f"Reference {EXERCISE_NAMES[muscle]}"), key, text,
                    muscle=muscle, prepare_s=_duration(t, "prepare_s", 2.0, positive=False),
                    effort_s=effort, relax_s=_duration(t, "relax_s", 3.0, positive=False),
                    retries=t.get("retries", int, 2, min=0))
    # exercise
    target = _muscle_list(t, "target", required=True)
    suppress = _muscle_list(t, "suppress", required=False)
    for m in suppress:
        if m in target:
            raise t.fail("suppress", m, "a muscle that is not also a target")
    shape = t.get("shape", str, "hold", choices=SHAPES)
    if shape == "relax":
        if "level_pct" in t.data:
            raise t.fail("level_pct", t.data["level_pct"], "no level_pct for shape 'relax' "
                         "(the target is the rest baseline)")
        level = 0.0
    else:
        level = t.get("level_pct", float, 30.0)
        if not 0 < level <= 100:
            raise t.fail("level_pct", level, "a percentage of the healthy reference in (0, 100]")
    target_shape = Target(
        shape, level,
        _duration(t, "ramp_up_s", 0.0 if shape == "relax" else 2.0, positive=False),
        _duration(t, "hold_s", 5.0, positive=True),
        _duration(t, "ramp_down_s", 0.0 if shape == "relax" else 2.0, positive=False),
    )
    ct = t.table("ceiling", {})
    ct.reject_unknown({"mode", "value"})
    mode = ct.get("mode", str, "baseline_sd", choices=CEILING_MODES)
    cvalue = ct.get("value", float, 3.0 if mode == "baseline_sd" else 20.0, min=0.0)
    name = t.get("name", str, EXERCISE_NAMES[target[0]])
    step = Step(
        kind, t.get("label", str, name.capitalize()), key, text,
        prepare_s=_duration(t, "prepare_s", 3.0, positive=False),
        name=name, sunnybrook=t.get("sunnybrook", str, MUSCLES[target[0]]),
        target=target, suppress=suppress, shape_target=target_shape,
        reps=t.get("reps", int, 1, limit=REPS), rest_s=_duration(t, "rest_s", 10.0, positive=False),
        band_pct=t.get("band_pct", float, 10.0, min=0.0), ceiling=Ceiling(mode, cvalue),
    )
    _check_calibrated(t, step, earlier)
    return step


def _check_calibrated(t: Table, step: Step, earlier: list[Step]) -> None:
    """An exercise needs a rest baseline and the references of the muscles it scores."""
    if not any(s.kind == "rest" for s in earlier):
        raise t.fail("kind", step.kind, "a rest step before the first exercise "
                     "(targets and ceilings need the rest baseline)")
    referenced = {s.muscle for s in earlier if s.kind == "reference"}
    needs = [("target", m) for m in step.target]
    if step.ceiling is not None and step.ceiling.mode == "reference_pct":
        needs += [("suppress", m) for m in step.suppress]
    for key, muscle in needs:
        if muscle not in referenced:
            raise t.fail(key, muscle, "a muscle with a reference step before this exercise")
