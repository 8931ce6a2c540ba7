"""The numbers of a session report: no matplotlib, no HTML.

This module owns reading one emgfb session for its report, in one pass whose memory does
not depend on the recording's length (issue 11): the envelopes are computed block by block
with the causal pipeline (as ``emgfb process``), and only what the report shows is kept:
the repetitions' envelope windows at full resolution (for %COCON), and per plotted span
(the whole session, each exercise) the minimum and maximum of each display bin
(:class:`Trace`), which is all a figure can show. It also owns the signal-quality table
(1 s windows, streamed), the reading of the exercise documents (protocol steps, score
rows, calibration) and the per-channel helpers (rest level, healthy reference, ceiling,
nominal target) the figures and tables share. Imports ``dsp``, ``recording`` (through the
open recording), ``exercises.scoring`` and numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from emgfb.exercises.report.metrics import SCORE_METRICS
from emgfb.meter import ProgressMeter

#: A callable receiving one line of progress ("computing envelopes ...").
ProgressFn = Callable[[str], None]


def session_date(meta: dict[str, Any]) -> datetime | None:
    """The session's start as an aware UTC datetime, or None if unknown."""
    text = meta.get("start_time_utc") or ""
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def num(value: Any) -> float:
    """Float of a score value; NaN for None/missing/non-numbers."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return v


def mean_sd(values: Iterable[Any]) -> tuple[float, float, int]:
    """NaN-aware mean, SD (ddof 1) and count of defined values."""
    a = np.array([num(v) for v in values], dtype=float)
    a = a[np.isfinite(a)]
    if not len(a):
        return float("nan"), float("nan"), 0
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else float("nan"), len(a)


# ------------------------------------------------------------------------ exercise documents
def exercise_name(row: dict[str, Any]) -> str:
    """The exercise label of a score row or protocol step."""
    return str(row.get("exercise") or row.get("label") or row.get("name") or
               f"step {row.get('step', '?')}")


def group_scores(scores: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Score rows grouped by exercise, in the order exercises first appear."""
    out: dict[str, list[dict[str, Any]]] = {}
    for row in scores:
        out.setdefault(exercise_name(row), []).append(row)
    return out


def exercise_summary(rows: Sequence[dict[str, Any]]) -> dict[str, tuple[float, float, int]]:
    """Per score metric: mean, SD and count over the *valid* reps of one exercise (invalid
    reps never count: :func:`emgfb.exercises.scoring.valid_reps`)."""
    from emgfb.exercises.scoring import valid_reps

    good = valid_reps(rows)
    return {m.key: mean_sd(r.get(m.key) for r in good) for m in SCORE_METRICS}


def invalid_note(rows: Sequence[dict[str, Any]]) -> str:
    """"2 of 3 reps not valid: OOC-L: flat line ..." ("" when every rep is valid)."""
    bad = [r for r in rows if not r.get("valid", True)]
    if not bad:
        return ""
    reasons = list(dict.fromkeys(str(r.get("invalid_reason") or "not valid") for r in bad))
    return (f"{len(bad)} of {len(rows)} rep{'s' if len(rows) != 1 else ''} not valid "
            f"(left out of every mean): " + "; ".join(reasons))


def _steps(protocol: Any) -> list[dict[str, Any]]:
    if isinstance(protocol, dict):
        steps = protocol.get("steps") or protocol.get("step") or []
    elif isinstance(protocol, list):
        steps = protocol
    else:
        steps = []
    return [s for s in steps if isinstance(s, dict)]


def _per_channel(value: Any, n: int) -> np.ndarray:
    """A per-channel list (or ``{label: value}`` handled by the caller) as floats."""
    if isinstance(value, (list, tuple)) and len(value) == n:
        return np.array([num(v) for v in value], dtype=float)
    return np.full(n, np.nan)


def calibration_values(calibration: Any, labels: Sequence[str]) -> dict[str, np.ndarray]:
    """Per-channel rest mean/SD, ceiling and reference (µV) from the calibration document.

    Accepts ``{"rest": {"mean_uv", "sd_uv"}, "reference_uv": [...]}`` (also ``mean``/``sd``
    and per-label dicts); missing values are NaN. The ceiling is the document's
    ``ceiling_uv`` if present, else rest mean + 3 SD.
    """
    n = len(labels)
    cal = calibration if isinstance(calibration, dict) else {}

    def pick(obj: Any, *keys: str) -> np.ndarray:
        if not isinstance(obj, dict):
            return _per_channel(obj, n)
        for k in keys:
            if k in obj:
                v = obj[k]
                if isinstance(v, dict):
                    return np.array([num(v.get(lab)) for lab in labels], dtype=float)
                return _per_channel(v, n)
        return np.full(n, np.nan)

    rest = cal.get("rest", {})
    mean = pick(rest, "mean_uv", "mean")
    sd = pick(rest, "sd_uv", "sd")
    ref = pick(cal, "reference_uv", "reference")
    ceiling = pick(cal, "ceiling_uv")
    if np.all(np.isnan(ceiling)):
        ceiling = mean + 3.0 * sd
    return {"rest_mean_uv": mean, "rest_sd_uv": sd, "ceiling_uv": ceiling,
            "reference_uv": ref}


def channel_index(rec: Any, ref: Any) -> int | None:
    """Index of a channel named by index, label, or muscle (on the affected side)."""
    if ref is None:
        return None
    if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
        return int(ref) if 0 <= int(ref) < rec.n_channels else None
    text = str(ref)
    if text in rec.labels:
        return rec.labels.index(text)
    side = rec.montage.affected_side if rec.montage.affected_side != "none" else "left"
    hits = [i for i, c in enumerate(rec.montage.channels) if c.muscle == text]
    for i in hits:
        if rec.montage.channels[i].side == side:
            return i
    return hits[0] if hits else None


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def healthy_partner(rec: Any, ch: int) -> int | None:
    """The homologous channel on the other side, or None."""
    for _muscle, a, h in rec.montage.pairs():
        if ch == a:
            return h
        if ch == h:
            return a
    return None


# ---------------------------------------------------------------------------- signal quality
def quality_table(rec: Any, cfg: Any, rest_spans: Sequence[tuple[int, int]],
                  progress: ProgressFn | None = None) -> list[dict[str, Any]]:
    """Per-channel quality indicators over the whole recording, 1 s windows.

    Parameters
    ----------
    rec
        Open recording.
    cfg
        :class:`~emgfb.dsp.DspConfig` (quality thresholds and bands).
    rest_spans
        ``(start_sample, stop_sample)`` of rest steps; the rest RMS is their median when
        given, else the median of the quietest 20 % of windows.
    progress
        Progress callback.

    Returns
    -------
    list of dict
        One per channel: the :data:`QUALITY_METRICS` keys plus ``states`` and ``hint``.
    """
    from emgfb.dsp import SignalQuality
    from emgfb.dsp.quality import BAD, GOOD, UNKNOWN, WARN, grade, summarise

    q = cfg.quality
    adc_max = (2 ** rec.info.bits - 1) if rec.info is not None and rec.info.bits else None
    sq = SignalQuality(cfg, rec.fs, rec.n_channels, adc_max=adc_max)
    win = sq.size
    n_win = rec.n_samples // win
    rms, mains, motion, sd, starts = [], [], [], [], []
    clipped = np.zeros(rec.n_channels)
    block = max(win, (100_000 // win) * win)
    meter = ProgressMeter(progress, f"{rec.path.name}: signal quality", n_win * win)
    for lo in range(0, n_win * win, block):
        hi = min(lo + block, n_win * win)
        counts = np.asarray(rec.read_counts(lo, hi))
        uv = (counts.astype(np.float64) - rec.offset_counts) * rec.uv_per_count
        if adc_max is not None:
            clipped += ((counts <= 0) | (counts >= adc_max)).sum(axis=0)
        for w in range(0, hi - lo, win):
            sq.reset()
            res = sq.update(uv[w:w + win], counts[w:w + win])
            rms.append([c.rest_rms_uv for c in res])
            mains.append([c.mains_db for c in res])
            motion.append([c.motion_ratio for c in res])
            sd.append([c.raw_sd_uv for c in res])
            starts.append(lo + w)
        meter.update(hi)
    meter.done()
    out: list[dict[str, Any]] = []
    if not rms:
        for _c in range(rec.n_channels):
            out.append({"rest_rms_uv": float("nan"), "mains_db": float("nan"),
                        "motion_ratio": float("nan"), "clipping_pct": float("nan"),
                        "flat_pct": float("nan"), "states": {}, "state": UNKNOWN,
                        "hint": "recording shorter than one quality window"})
        return out
    rms_a, mains_a = np.array(rms), np.array(mains)
    motion_a, sd_a, starts_a = np.array(motion), np.array(sd), np.array(starts)
    in_rest = np.zeros(len(starts_a), bool)
    for a, b in rest_spans:
        in_rest |= (starts_a >= a) & (starts_a + win <= b)
    flat = sd_a < q.flat_sd_uv
    analysed = n_win * win

    for c in range(rec.n_channels):
        live = ~flat[:, c]
        if in_rest.any():
            r = rms_a[in_rest & live, c]
        else:
            r = np.sort(rms_a[live, c])[: max(1, int(math.ceil(0.2 * live.sum())))]
        rest_rms = float(np.median(r)) if len(r) else float("nan")
        mains_db = float(np.median(mains_a[live, c])) if live.any() else float("nan")
        mot = float(np.median(motion_a[live, c])) if live.any() else float("nan")
        clip = 100.0 * clipped[c] / analysed if adc_max is not None else float("nan")
        flat_pct = 100.0 * float(flat[:, c].mean())
        states = {
            "flat": BAD if flat_pct >= 50 else WARN if flat_pct > 0 else GOOD,
            "clipping": grade(clip, q.clipping_warn_pct, q.clipping_bad_pct),
            "mains": grade(mains_db, q.mains_db_warn, q.mains_db_bad),
            "motion": grade(mot, q.motion_ratio_warn, q.motion_ratio_bad),
            "rest_rms": grade(rest_rms, q.rest_rms_warn_uv, q.rest_rms_bad_uv),
        }
        worst, hint = summarise(states)
        out.append({"rest_rms_uv": rest_rms, "mains_db": mains_db, "motion_ratio": mot,
                    "clipping_pct": clip, "flat_pct": flat_pct, "states": states,
                    "state": worst, "hint": hint})
    return out



def exercises(steps: Sequence[dict[str, Any]], scores: Sequence[dict[str, Any]]
              ) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    """Exercise steps of a protocol with their score rows, in session order.

    A score row belongs to a step when its ``exercise`` equals the step's label or name,
    else when its ``step`` is the step's index; rows matching no step form groups of their
    own (by ``exercise``).

    Returns
    -------
    list of (name, step, rows)
        ``name`` is the step label (or the rows' exercise name), ``step`` ``{}`` if unknown.
    """
    out: list[tuple[str, dict[str, Any], list[dict[str, Any]]]] = []
    used: set[int] = set()
    for i, st in enumerate(steps):
        if str(st.get("kind")) != "exercise":
            continue
        names = {str(st[k]) for k in ("label", "name") if st.get(k)}
        rows = [r for r in scores if str(r.get("exercise")) in names]
        if not rows:
            rows = [r for r in scores if r.get("step") == i and not isinstance(
                r.get("step"), bool)]
        rows = [r for r in rows if id(r) not in used]
        used.update(id(r) for r in rows)
        out.append((exercise_name(st), st, rows))
    rest = [r for r in scores if id(r) not in used]
    for name, rows in group_scores(rest).items():
        out.append((name, {}, rows))
    return out


# ------------------------------------------------------------------------ one pass, bounded
@dataclass(frozen=True)
class Trace:
    """Envelopes of a span as a figure shows them.

    Attributes
    ----------
    t
        Seconds since the session's first sample.
    y
        Envelopes ``(len(t), n_channels)`` in µV: every sample when the span fits in the
        display budget, else per bin its minimum and maximum, in the order they occur.
    """

    t: np.ndarray
    y: np.ndarray


class _MinMax:
    """Reduces samples ``start .. stop-1``, fed in blocks, to at most ~2·``max_points``
    points (:class:`Trace`); keeps one partial bin between blocks."""

    def __init__(self, start: int, stop: int, max_points: int) -> None:
        self.start, self.stop = start, stop
        self.step = max(1, (stop - start) // max(1, max_points))
        self._t: list[np.ndarray] = []
        self._y: list[np.ndarray] = []
        self._pending: tuple[np.ndarray, np.ndarray] | None = None

    def feed(self, first: int, t: np.ndarray, env: np.ndarray) -> None:
        a, b = max(first, self.start), min(first + len(t), self.stop)
        if b <= a:
            return
        t, env = t[a - first:b - first], env[a - first:b - first]
        if self._pending is not None:
            t, env = np.concatenate((self._pending[0], t)), np.concatenate((self._pending[1], env))
            self._pending = None
        if self.step == 1:
            self._t.append(t)
            self._y.append(np.array(env))
            return
        full = len(t) // self.step * self.step
        if full:
            self._bins(t[:full], env[:full], self.step)
        if full < len(t):
            self._pending = (t[full:].copy(), env[full:].copy())

    def _bins(self, t: np.ndarray, env: np.ndarray, size: int) -> None:
        k = len(t) // size
        yb = env.reshape(k, size, env.shape[1])
        lo, hi = np.fmin.reduce(yb, axis=1), np.fmax.reduce(yb, axis=1)  # NaN only if all NaN
        nan = np.isnan(yb)
        min_first = (np.where(nan, np.inf, yb).argmin(axis=1)
                     <= np.where(nan, -np.inf, yb).argmax(axis=1))
        tb = t.reshape(k, size)
        self._t.append(np.column_stack((tb[:, 0], tb[:, -1])).ravel())
        self._y.append(np.stack((np.where(min_first, lo, hi), np.where(min_first, hi, lo)),
                                axis=1).reshape(2 * k, env.shape[1]))

    def finish(self, n_channels: int) -> Trace:
        if self._pending is not None:
            t, env = self._pending
            self._bins(t, env, len(t))
            self._pending = None
        if not self._t:
            return Trace(np.zeros(0), np.zeros((0, n_channels), np.float32))
        return Trace(np.concatenate(self._t), np.concatenate(self._y))


def exercise_span(step: dict[str, Any], reps: Sequence[dict[str, Any]]
                  ) -> tuple[int, int] | None:
    """Ticks ``(start, end)`` an exercise's figure spans: the step's, else its reps'."""
    if "start_tick" in step and "end_tick" in step:
        return int(step["start_tick"]), int(step["end_tick"])
    if reps and all("start_tick" in r and "end_tick" in r for r in reps):
        return (min(int(r["start_tick"]) for r in reps),
                max(int(r["end_tick"]) for r in reps))
    return None


class SessionData:
    """Everything the report's sections need from one open session, read once.

    The documents are read on construction; :meth:`scan` then reads the samples once, block
    by block, and keeps :attr:`overview` (the whole session), one :class:`Trace` per
    exercise span (:meth:`trace`) and the repetitions' envelopes (:meth:`rep_envelopes`).
    """

    def __init__(self, rec: Any, progress: ProgressFn | None = None) -> None:
        from emgfb.dsp import dsp_config_from_dict, load_dsp_config

        self.rec = rec
        self.progress: ProgressFn = progress or (lambda _line: None)
        self._say = progress
        self.protocol = rec.document("protocol")
        self.calibration = rec.document("calibration")
        scores = rec.document("scores")
        self.scores: list[dict[str, Any]] = [
            r for r in (scores if isinstance(scores, list) else
                        (scores or {}).get("reps", []) if isinstance(scores, dict) else [])
            if isinstance(r, dict)]
        self.steps = _steps(self.protocol)
        for st in self.steps:  # a step the session never reached has null ticks
            for key in ("start_tick", "end_tick"):
                if st.get(key) is None:
                    st.pop(key, None)
        stored = rec.meta.get("dsp_config")
        self.cfg = (dsp_config_from_dict(stored, f"{rec.path}: dsp_config") if stored
                    else load_dsp_config())
        self.t0 = int(rec.first_tick) if rec.n_samples else 0
        self.cal = calibration_values(self.calibration, rec.labels)
        # gap-free segments: first sample, first tick and end (sample_of without rec.tick)
        g = rec.gaps
        self._seg_start = np.concatenate(([0], np.asarray(g["start_sample"], np.int64)))
        self._seg_tick = self.t0 + self._seg_start + np.concatenate(
            ([0], np.cumsum(g["lost_ticks"], dtype=np.int64)))
        self._seg_end = np.concatenate((self._seg_start[1:], [rec.n_samples]))
        self.overview = Trace(np.zeros(0), np.zeros((0, rec.n_channels), np.float32))
        self.quality: list[dict[str, Any]] = []
        # what the screen showed of each channel, as the recording stores it (empty for
        # older files and imports)
        from emgfb.dsp.quality import stored_states

        self.channel_states = stored_states(
            rec.markers, int(rec.first_tick), int(rec.first_tick) + rec.n_samples
            + int(rec.lost_ticks), rec.labels)
        self._traces: dict[tuple[int, int], Trace] = {}
        self._reps: dict[tuple[int, int], np.ndarray] = {}

    def sample_of(self, tick: Any) -> int:
        """Index of the first sample at or after ``tick``."""
        tick = int(tick)
        k = int(np.searchsorted(self._seg_tick, tick, side="right")) - 1
        if k < 0:
            return 0
        return int(min(self._seg_start[k] + (tick - self._seg_tick[k]), self._seg_end[k]))

    def seconds(self, tick: Any) -> float:
        """Seconds since the first sample."""
        return (int(tick) - self.t0) / self.rec.fs

    def tick_at(self, sample: int) -> int:
        """Tick of sample ``sample``."""
        return int(self.rec.read_ticks(sample, sample + 1)[0])

    def trace(self, a: int, b: int) -> Trace:
        """The :class:`Trace` of samples ``a .. b-1`` (a span :meth:`scan` was asked for)."""
        return self._traces[(a, b)]

    def rep_envelopes(self, a: int, b: int) -> np.ndarray:
        """Full-resolution envelopes (float32 µV) of a repetition's samples ``a .. b-1``."""
        return self._reps[(a, b)]

    def _plot_spans(self) -> list[tuple[int, int]]:
        spans = []
        for _name, step, reps in exercises(self.steps, self.scores):
            span = exercise_span(step, reps)
            if span is not None:
                spans.append((self.sample_of(span[0]), self.sample_of(span[1])))
        return spans

    def _rep_spans(self) -> list[tuple[int, int]]:
        return [(self.sample_of(r["start_tick"]), self.sample_of(r["end_tick"]))
                for r in self.scores if r.get("valid", True) and "cocon" not in r
                and "start_tick" in r and "end_tick" in r]

    def scan(self, max_points: int = 4000, block: int | None = None) -> None:
        """Read the samples once: envelopes (causal pipeline, stateful across blocks, ticks
        mark the gaps) and signal quality, keeping only what the report shows. ``block``:
        samples per read (default: the reader's, a few HDF5 chunks, as ``emgfb process``;
        the pipeline's temporaries grow with it)."""
        from emgfb.dsp import EnvelopePipeline

        rec = self.rec
        self.progress(f"{rec.path.name}: computing envelopes "
                      f"({rec.n_samples} samples x {rec.n_channels} channels)")
        pipe = EnvelopePipeline(self.cfg, rec.fs, rec.n_channels, rec.uv_per_count,
                                rec.offset_counts)
        overview = _MinMax(0, rec.n_samples, max_points)
        plots = {span: _MinMax(*span, max_points) for span in self._plot_spans()}
        reps = {(a, b): np.full((max(0, b - a), rec.n_channels), np.nan, np.float32)
                for a, b in self._rep_spans()}
        meter = ProgressMeter(self._say, f"{rec.path.name}: envelopes", rec.n_samples)
        for blk in rec.iter_blocks(block):
            env = pipe.process(blk.counts.astype(np.float64), tick=blk.tick)
            env = env.astype(np.float32, copy=False)
            t = (blk.tick - self.t0) / rec.fs
            lo, hi = blk.start, blk.start + len(blk.tick)
            for acc in (overview, *plots.values()):
                acc.feed(lo, t, env)
            for (a, b), out in reps.items():
                x0, x1 = max(a, lo), min(b, hi)
                if x1 > x0:
                    out[x0 - a:x1 - a] = env[x0 - lo:x1 - lo]
            meter.update(hi)
        meter.done()
        self.overview = overview.finish(rec.n_channels)
        self._traces = {span: acc.finish(rec.n_channels) for span, acc in plots.items()}
        self._reps = reps
        rest_spans = [(self.sample_of(st["start_tick"]), self.sample_of(st["end_tick"]))
                      for st in self.steps if str(st.get("kind")) in ("rest", "post-rest")
                      and "start_tick" in st and "end_tick" in st]
        self.progress(f"{rec.path.name}: signal quality")
        self.quality = quality_table(rec, self.cfg, rest_spans, self._say)


def rep_cocon(s: SessionData, row: dict[str, Any]) -> float:
    """%COCON of a rep: stored with the score, else computed on envelopes normalised to
    each muscle's reference (:func:`emgfb.dsp.metrics.cocon_normalised`); NaN for an
    invalid rep or without references."""
    if not row.get("valid", True):
        return float("nan")
    if "cocon" in row:
        return num(row.get("cocon"))
    t = channel_index(s.rec, row.get("target_channel"))
    sup = [channel_index(s.rec, x) for x in as_list(row.get("suppression_channels"))]
    sup = [x for x in sup if x is not None]
    if t is None or not sup or "start_tick" not in row or "end_tick" not in row:
        return float("nan")
    from emgfb.dsp.metrics import cocon_normalised

    env = s.rep_envelopes(s.sample_of(row["start_tick"]), s.sample_of(row["end_tick"]))
    level = np.hypot(np.nan_to_num(s.cal["rest_mean_uv"]), np.nan_to_num(s.cal["rest_sd_uv"]))
    ref = s.cal["reference_uv"]
    value, _why = cocon_normalised(env[:, t], env[:, sup[0]],
                                   (float(level[t]), float(level[sup[0]])),
                                   (float(ref[t]), float(ref[sup[0]])))
    return value


def target_and_suppression(s: SessionData, step: dict[str, Any], reps: list[dict[str, Any]]
                            ) -> tuple[int | None, list[int]]:
    rec = s.rec
    first = reps[0] if reps else {}
    target = channel_index(rec, first.get("target_channel"))
    if target is None:
        target = channel_index(rec, (as_list(step.get("target")) or [None])[0])
    sup_refs = first.get("suppression_channels") if "suppression_channels" in first else (
        step.get("suppress"))
    sup = [i for i in (channel_index(rec, x) for x in as_list(sup_refs)) if i is not None]
    return target, sup


def healthy_span(s: SessionData, ch: int) -> float:
    """Healthy-side reference above its rest level in power (µV): 100 % of a target; NaN
    when that reference does not clear rest (then nothing is shown in %)."""
    from emgfb.dsp.calibration import check_reference, subtract_rest

    h = healthy_partner(s.rec, ch)
    h = ch if h is None else h
    ref = float(s.cal["reference_uv"][h])
    level = rest_level(s, h)
    if not math.isfinite(ref) or check_reference(ref, level, "healthy") is not None:
        return float("nan")
    return float(subtract_rest(ref, level))


def rest_level(s: SessionData, ch: int) -> float:
    """Rest level of ``ch`` in power terms, hypot(mean, SD) (0 when unknown)."""
    level = float(np.hypot(s.cal["rest_mean_uv"][ch], s.cal["rest_sd_uv"][ch]))
    return level if math.isfinite(level) else 0.0


def ceiling_uv(s: SessionData, step: dict[str, Any], ch: int,
                reps: Sequence[dict[str, Any]] = ()) -> float:
    """The suppression ceiling of ``ch`` in µV: as scored (``ceiling_uv`` of the rows),
    else the step's ceiling rule, else rest mean + 3 SD of the calibration."""
    for r in reps:
        chans = [channel_index(s.rec, x) for x in as_list(r.get("suppression_channels"))]
        levels = as_list(r.get("ceiling_uv"))
        if ch in chans and len(levels) == len(chans):
            v = num(levels[chans.index(ch)])
            if math.isfinite(v):
                return v
    ceiling = step.get("ceiling")
    mean, sd = s.cal["rest_mean_uv"][ch], s.cal["rest_sd_uv"][ch]
    if isinstance(ceiling, dict) and isinstance(ceiling.get("value"), (int, float)):
        if ceiling.get("mode") == "baseline_sd" and math.isfinite(mean + sd):
            return float(mean + ceiling["value"] * sd)
        if ceiling.get("mode") == "reference_pct":
            span = healthy_span(s, ch)
            return float(np.hypot(rest_level(s, ch), ceiling["value"] / 100 * span))
    return float(s.cal["ceiling_uv"][ch])


def nominal(step: dict[str, Any], t: np.ndarray) -> np.ndarray | None:
    """Nominal target (% of healthy reference) ``t`` s after a rep start, or None."""
    keys = ("level_pct", "ramp_up_s", "hold_s", "ramp_down_s")
    if step.get("shape") not in ("hold", "mirror", "relax") or not all(
            isinstance(step.get(k), (int, float)) for k in keys):
        return None
    ru, h, rd = (float(step[k]) for k in keys[1:])
    level = 0.0 if step["shape"] == "relax" else float(step["level_pct"])
    up = np.clip(t / ru, 0.0, 1.0) if ru > 0 else (t >= 0).astype(float)
    down = 1.0 - np.clip((t - ru - h) / rd, 0.0, 1.0) if rd > 0 else (
        (t - ru - h) < 0).astype(float)
    inside = (t >= 0) & (t < ru + h + rd)
    return np.where(inside, level * np.minimum(up, down), np.nan)
