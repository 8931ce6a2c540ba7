"""Export of an emgfb session to CSV or EDF+/BDF+ for other tools.

This module owns turning an open :class:`~emgfb.recording.reader.Recording` into the
values to export (raw counts, µV, or envelopes computed with :mod:`emgfb.dsp`) and
writing them. It imports ``errors``, ``recording.reader`` (via :func:`export_recording`),
``dsp`` (envelopes only), numpy and pyedflib; never the GUI. An existing output file is
never replaced unless ``force`` is given, and never the session read nor any HDF5 file
(:mod:`emgfb.outputs`, the output rule of every command): the output is written to a
temporary file next to it and moved into place at the end, so a failed export leaves
nothing half-written.

CSV layout (UTF-8, comma-separated, ``\\n`` line ends)::

    # emgfb export: format_version=1 what=uv unit=uV fs=2000 source=session.h5
    # channels: label,muscle,side,uv_per_count,offset_counts (one '# channel:' line each)
    # channel: ZYG_L,zygomaticus_major,left,2.0,512.0
    time_s,tick,ZYG_L,ZYG_R,...,marker
    0.0000000,0,12.5,-3.75,...,
    0.0005000,1,10.0,-1.25,...,"rep:rep 1 start"

* Lines starting with ``#`` are metadata; the first line without ``#`` is the header.
* ``time_s`` = (tick - first tick) / fs; ``tick`` is the absolute sample tick. Lost
  samples are *not* filled: a gap shows as a tick (and time) step larger than one.
* Channel values: ``raw`` = the stored integer counts; ``uv`` = (counts - offset) ×
  uv_per_count, printed with 10 significant digits; ``envelope`` = µV envelope of the
  DSP pipeline, empty cells where it is undefined (filter settling, after gaps).
* ``marker``: the markers placed at that sample as ``kind:label``, several separated by
  `` | ``; the cell is CSV-quoted when needed. Markers inside a gap go to the next sample.

EDF+/BDF+ (``--format edf`` / ``bdf``): one signal per channel, physical dimension ``uV``
(``count`` for raw), annotations (EDF+ TAL) for every marker (``kind:label``), for every
gap (``gap: N lost samples``, with its duration; the gap's samples are written as 0 µV
because EDF+C is continuous) and for the padding of the last data record. Counts that fit
the digital range (16-bit EDF, 24-bit BDF) are stored exactly; otherwise, and for
envelopes, values are rescaled to the full digital range (the quantisation step is
reported). The data record holds ``round(fs)`` samples and lasts ``round(fs)/fs`` s, so
non-integer rates (imported OpenBCI 250.331 Hz) are kept to within 10 µs per record.
The patient field holds the session's pseudonymous subject code only.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from emgfb.delimited import cell_value, quote_cell, read_table, split_lines
from emgfb.errors import RecordingError
from emgfb.outputs import atomic_output, check_output

log = logging.getLogger(__name__)

EXPORT_FORMATS = ("csv", "edf", "bdf")
EXPORT_WHAT = ("raw", "uv", "envelope")
CSV_FORMAT_VERSION = 1
_EDF_DIGITAL = {"edf": (-32768, 32767), "bdf": (-8388608, 8388607)}
_CSV_ROWS_PER_BLOCK = 50_000


@dataclass
class ExportResult:
    """What :func:`export_recording` wrote.

    Attributes
    ----------
    path, fmt, what
        Output file, format (``csv``/``edf``/``bdf``) and content (``raw``/``uv``/
        ``envelope``).
    n_samples, n_channels, n_markers, n_gaps
        Sizes of what was written.
    notes
        What the format could not hold exactly (rescaling, gap filling, padding).
    """

    path: Path
    fmt: str
    what: str
    n_samples: int
    n_channels: int
    n_markers: int
    n_gaps: int
    notes: list[str] = field(default_factory=list)


def export_recording(
    src: str | Path,
    out: str | Path,
    fmt: str = "csv",
    what: str = "uv",
    *,
    force: bool = False,
    dsp_config: str | Path | None = None,
) -> ExportResult:
    """Export the session ``src`` to ``out``.

    Parameters
    ----------
    src
        An emgfb ``.h5`` session.
    out
        The file to write; refused if it exists unless ``force``.
    fmt
        ``"csv"``, ``"edf"`` (EDF+, 16 bit) or ``"bdf"`` (BDF+, 24 bit).
    what
        ``"raw"`` counts, ``"uv"`` microvolts or ``"envelope"`` (µV, :mod:`emgfb.dsp`).
    force
        Replace an existing output file.
    dsp_config
        DSP settings for ``envelope`` (a TOML path or bundled name); default: the
        configuration stored in the session, else the bundled default.

    Raises
    ------
    RecordingError
        Bad input file, existing output, unknown format or content.
    """
    from emgfb.recording import open_recording

    if fmt not in EXPORT_FORMATS:
        raise RecordingError(f"--format {fmt!r}: expected one of {', '.join(EXPORT_FORMATS)}")
    if what not in EXPORT_WHAT:
        raise RecordingError(f"--what {what!r}: expected one of {', '.join(EXPORT_WHAT)}")
    out = check_output(out, inputs=[src], force=force)
    with open_recording(src) as rec:
        values, unit, notes = signal_values(rec, what, dsp_config)
        with atomic_output(out, inputs=[src], force=force) as tmp:
            if fmt == "csv":
                write_csv(rec, tmp, values, unit, what)
            else:
                notes += write_edf(rec, tmp, values, unit, what, bdf=fmt == "bdf")
        result = ExportResult(out, fmt, what, rec.n_samples, rec.n_channels, len(rec.markers),
                              int(len(rec.gaps)), notes)
    log.info("exported %s to %s (%s, %s)", src, out, fmt, what)
    return result


def signal_values(rec: Any, what: str, dsp_config: str | Path | None = None
                  ) -> tuple[np.ndarray, str, list[str]]:
    """Values to export for every stored sample, their unit, and notes.

    Parameters
    ----------
    rec
        An open :class:`~emgfb.recording.reader.Recording`.
    what
        ``"raw"``, ``"uv"`` or ``"envelope"``.
    dsp_config
        For ``envelope``: DSP settings; default the session's stored config, else the
        bundled default.
    """
    notes: list[str] = []
    if what == "raw":
        return np.asarray(rec.counts), "count", notes
    if what == "uv":
        return rec.uv(), "uV", notes
    from emgfb.dsp import EnvelopePipeline, load_dsp_config

    cfg = load_dsp_config(dsp_config) if dsp_config is not None else _session_dsp_config(rec)
    pipe = EnvelopePipeline(cfg, rec.fs, rec.n_channels, rec.uv_per_count, rec.offset_counts)
    env = pipe.process(np.asarray(rec.counts, dtype=np.float64), tick=rec.tick)
    notes.append(f"envelope: {pipe.config.envelope.method}, undefined for "
                 f"{pipe.envelope_settle} samples after the start and after each gap")
    return env, "uV", notes


def _session_dsp_config(rec: Any) -> Any:
    """The DSP config stored in the session if it loads, else the bundled default."""
    from emgfb.dsp import dsp_config_from_dict, load_dsp_config

    stored = rec.meta.get("dsp_config")
    if stored:
        return dsp_config_from_dict(stored, f"{rec.path}: dsp_config")
    return load_dsp_config()


def _marker_cells(rec: Any) -> dict[int, str]:
    """Row index -> 'kind:label | ...' for every marker (markers in gaps go to the next row)."""
    rows = _marker_rows(rec)
    cells: dict[int, list[str]] = {}
    for row, m in zip(rows.tolist(), rec.markers, strict=True):
        cells.setdefault(row, []).append(f"{m.kind}:{m.label}")
    return {k: " | ".join(v) for k, v in cells.items()}


def _marker_rows(rec: Any) -> np.ndarray:
    ticks = np.array([m.tick for m in rec.markers], dtype=np.int64)
    if len(ticks) == 0 or rec.n_samples == 0:
        return np.zeros(len(ticks), dtype=np.int64)
    return np.minimum(np.searchsorted(rec.tick, ticks, side="left"), rec.n_samples - 1)


def write_csv(rec: Any, out: Path, values: np.ndarray, unit: str, what: str) -> None:
    """Write ``values`` (one row per stored sample) as CSV in the layout documented above."""
    tick = np.asarray(rec.tick, dtype=np.int64)
    t0 = int(tick[0]) if len(tick) else 0
    cells = _marker_cells(rec)
    integer = np.issubdtype(values.dtype, np.integer)
    fmt = "%d" if integer else "%.10g"
    with out.open("w", encoding="utf-8", newline="") as fh:
        fh.write(f"# emgfb export: format_version={CSV_FORMAT_VERSION} what={what} "
                 f"unit={unit} fs={rec.fs:.10g} source={Path(rec.path).name}\n")
        fh.write("# channels: label,muscle,side,uv_per_count,offset_counts "
                 "(one '# channel:' line each)\n")
        for ch, c in enumerate(rec.montage.channels):
            fh.write(f"# channel: {c.label},{c.muscle},{c.side},"
                     f"{rec.uv_per_count[ch]:.17g},{rec.offset_counts[ch]:.17g}\n")
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["time_s", "tick", *rec.labels, "marker"])
        for lo in range(0, len(tick), _CSV_ROWS_PER_BLOCK):
            hi = min(lo + _CSV_ROWS_PER_BLOCK, len(tick))
            buf = io.StringIO()
            block = np.column_stack([
                ((tick[lo:hi] - t0) / rec.fs),
                tick[lo:hi],
            ])
            body = io.StringIO()
            np.savetxt(body, values[lo:hi], fmt=fmt, delimiter=",")
            np.savetxt(buf, block, fmt=["%.7f", "%d"], delimiter=",")
            lines_v = body.getvalue().replace("nan", "").splitlines()
            lines_t = buf.getvalue().splitlines()
            out_lines = []
            for i, (a, b) in enumerate(zip(lines_t, lines_v, strict=True)):
                mark = cells.get(lo + i)
                out_lines.append(f"{a},{b},{quote_cell(mark) if mark else ''}\n")
            fh.write("".join(out_lines))


def read_csv_export(path: str | Path) -> dict[str, Any]:
    """Read a CSV written by :func:`write_csv` back (for tests and scripts).

    Returns
    -------
    dict
        ``meta`` (the ``key=value`` pairs of the first line), ``labels``, ``tick``
        (int64), ``time_s``, ``values`` (float64, NaN for empty cells) and ``markers``
        (list of ``(row, "kind:label")``).
    """
    path = Path(path)
    table = read_table(path)
    first = table.comments[0] if table.comments else ""
    if not first.startswith("emgfb export:"):
        raise RecordingError(f"{path}: first line {first[:40]!r}: expected '# emgfb export:'")
    meta = dict(kv.split("=", 1) for kv in first.split(":", 1)[1].split() if "=" in kv)
    header = table.cells(0, ",")
    rows = split_lines(table.lines[1:], ",")
    labels = header[2:-1]
    tick = np.array([int(r[1]) for r in rows], dtype=np.int64)
    time_s = np.array([float(r[0]) for r in rows])
    values = np.array([[cell_value(v) for v in r[2:-1]] for r in rows])
    markers = [(i, r[-1]) for i, r in enumerate(rows) if r[-1]]
    return {"meta": meta, "labels": labels, "tick": tick, "time_s": time_s,
            "values": values.reshape(len(rows), len(labels)), "markers": markers}


def _fmt8(x: float, outward: int = 0) -> float:
    """``x`` as EDF stores it in 8 characters (rounded away from the data if ``outward``:
    -1 for a minimum, +1 for a maximum)."""
    s = f"{x:.8g}"
    if len(s) <= 8 and "e" not in s:
        return float(s)
    int_len = len(f"{int(abs(x))}") + (1 if x < 0 else 0)
    digits = 8 - int_len - 1
    if int_len > 8:
        raise RecordingError(f"physical value {x!r} does not fit EDF's 8-character field")
    if digits <= 0:
        return float(math.floor(x) if outward < 0 else math.ceil(x) if outward > 0
                     else round(x))
    q = 10.0**-digits
    v = x / q
    v = math.floor(v) if outward < 0 else math.ceil(v) if outward > 0 else round(v)
    return round(v * q, digits)


def _edf_num(x: float) -> float | int:
    """The number to hand pyedflib so that the 8-character header field reads ``x``.

    edflib *truncates* the decimal expansion to 8 characters (65682.84, stored as
    65682.8399999..., would become "65682.83"), so a non-integer is nudged away from zero
    by a tenth of the last digit that still fits; integers go as ``int``
    (``str(6568284.0)`` is 9 characters).
    """
    x = _fmt8(x)
    if float(x).is_integer():
        return int(x)
    int_len = len(f"{int(abs(x))}") + (1 if x < 0 else 0)
    fits = max(0, 8 - int_len - 1)
    return x + math.copysign(10.0 ** -fits / 10, x)


def _short(x: float) -> str | None:
    """The shortest decimal text (<= 8 characters) equal to ``x``, or None."""
    for digits in range(0, 8):
        text = f"{x:.{digits}f}"
        if len(text) > 8:
            return None
        if abs(float(text) - x) <= 1e-9 * max(1.0, abs(x)):
            return text
    return None


def _exact_bounds(a: float, b: float, lo: int, hi: int, room: int) -> tuple[int, int]:
    """Widen the digital range [lo, hi] (by at most ``room`` in total) so that both
    physical ends ``a * d + b`` are exact in EDF's 8-character fields, if possible.

    Then a reader's physical value equals ``a * counts + b`` to rounding; when no such
    bounds exist nearby the ends are kept and the 8-character rounding is reported.
    """
    reach = min(room // 2, 10_000)
    new_lo = next((lo - k for k in range(reach + 1) if _short(a * (lo - k) + b)), lo)
    new_hi = next((hi + k for k in range(reach + 1) if _short(a * (hi + k) + b)), hi)
    return new_lo, new_hi


def _channel_digital(
    counts: np.ndarray | None, values: np.ndarray, a: float, b: float,
    rows: np.ndarray, n_total: int, dig: tuple[int, int],
) -> tuple[np.ndarray, float, float, int, int, float | None]:
    """Digital samples and header ranges of one channel.

    With integer ``counts`` whose span (0 µV included, it fills gaps) fits the digital
    range, digital = counts - shift exactly and physical = a * counts + b. Otherwise the
    finite ``values`` are spread over the whole digital range.

    Returns digital, physical min/max, digital min/max and the step of a rescale (None
    when stored exactly).
    """
    if counts is not None and a != 0:
        zero = -b / a
        c = counts.astype(np.int64)
        lo = int(min(c.min(), math.floor(zero))) if len(c) else 0
        hi = int(max(c.max(), math.ceil(zero))) if len(c) else 1
        if hi == lo:
            hi = lo + 1
        if float(zero).is_integer() and hi - lo <= dig[1] - dig[0]:
            room = dig[1] - dig[0] - (hi - lo)
            lo, hi = _exact_bounds(a, b, lo, hi, room)
            shift = 0 if (lo >= dig[0] and hi <= dig[1]) else lo - dig[0]
            d = np.full(n_total, int(zero) - shift, dtype=np.int64)
            d[rows] = c - shift
            return (d, a * lo + b, a * hi + b, lo - shift, hi - shift, None)
    finite = values[np.isfinite(values)]
    lo_v = min(float(finite.min()), 0.0) if len(finite) else 0.0
    hi_v = max(float(finite.max()), 0.0) if len(finite) else 1.0
    if hi_v == lo_v:
        hi_v = lo_v + 1.0
    pmin, pmax = _fmt8(lo_v, -1), _fmt8(hi_v, +1)
    step = (pmax - pmin) / (dig[1] - dig[0])
    d = np.full(n_total, int(round(-pmin / step)) + dig[0], dtype=np.int64)
    filled = np.where(np.isfinite(values), values, 0.0)
    d[rows] = np.clip(np.round((filled - pmin) / step) + dig[0], dig[0], dig[1])
    return d, pmin, pmax, dig[0], dig[1], step


def write_edf(rec: Any, out: Path, values: np.ndarray, unit: str, what: str, *,
              bdf: bool = False) -> list[str]:
    """Write ``values`` as EDF+ (or BDF+) with marker, gap and padding annotations.

    Returns notes on what was not stored exactly.
    """
    import pyedflib

    notes: list[str] = []
    kind = "bdf" if bdf else "edf"
    dig = _EDF_DIGITAL[kind]
    n_ch, fs = rec.n_channels, float(rec.fs)
    tick = np.asarray(rec.tick, dtype=np.int64)
    t0 = int(tick[0]) if len(tick) else 0
    n_cont = int(tick[-1] - t0 + 1) if len(tick) else 0
    spr = max(1, int(round(fs)))
    duration = round(spr / fs, 5)
    if not 0.001 <= duration <= 60:
        raise RecordingError(f"{rec.path}: fs = {fs} Hz cannot be written to EDF records")
    n_records = max(1, math.ceil(n_cont / spr))
    pad = n_records * spr - n_cont
    rows = tick - t0
    counts = np.asarray(rec.counts) if what != "envelope" else None
    headers, digital = [], []
    worst, smallest_step = 0.0, math.inf
    for ch in range(n_ch):
        a = 1.0 if what == "raw" else float(rec.uv_per_count[ch])
        b = 0.0 if what == "raw" else -float(rec.offset_counts[ch]) * a
        if what == "raw" and len(counts) and int(counts[:, ch].max()) - min(
                int(counts[:, ch].min()), 0) > dig[1] - dig[0]:
            raise RecordingError(f"{rec.path}: channel {rec.labels[ch]!r}: counts span more "
                                 f"than the {kind.upper()} digital range; export --what uv "
                                 "(rescaled) or use --format bdf/csv for exact counts")
        d, pmin, pmax, dmin, dmax, step = _channel_digital(
            None if counts is None else counts[:, ch], values[:, ch], a, b, rows,
            n_records * spr, dig)
        if step is not None and counts is not None:
            notes.append(f"{rec.labels[ch]}: counts exceed the {kind.upper()} digital range; "
                         f"rescaled with a step of {step:.4g} {unit}"
                         + (" (--format bdf has 24 bits)" if kind == "edf" else ""))
        if step is None:
            smallest_step = min(smallest_step, abs(a))
            spmin, spmax = _fmt8(pmin), _fmt8(pmax)
            if (spmin, spmax) != (pmin, pmax):
                # what a reader will compute from the 8-character header fields
                back = spmin + (d[rows] - dmin) * (spmax - spmin) / (dmax - dmin)
                worst = max(worst, float(np.max(np.abs(back - values[:, ch]))) if len(rows)
                            else 0.0)
            pmin, pmax = spmin, spmax
        digital.append(np.ascontiguousarray(d.astype(np.int32)))
        headers.append({
            "label": rec.labels[ch][:16], "dimension": unit,
            "sample_frequency": fs, "physical_min": _edf_num(pmin),
            "physical_max": _edf_num(pmax),
            "digital_min": dmin, "digital_max": dmax, "transducer": "sEMG electrodes",
            "prefilter": "emgfb envelope" if what == "envelope" else "",
        })
    if worst > 0.01 * smallest_step:
        notes.append(f"EDF's 8-character physical range fields: values read back within "
                     f"{worst:.3g} {unit}")
    file_type = pyedflib.FILETYPE_BDFPLUS if bdf else pyedflib.FILETYPE_EDFPLUS
    annotations = _edf_annotations(rec, fs, t0, n_cont, pad)
    writer = pyedflib.EdfWriter(str(out), n_ch, file_type=file_type)
    try:
        with warnings.catch_warnings():
            # deliberate choices pyedflib warns about on every header update: nudged
            # physical ranges longer than 8 characters (see _edf_num), an explicit record
            # duration for non-integer rates
            warnings.filterwarnings("ignore", message="Physical m.* chars")
            warnings.filterwarnings("ignore", message="Forcing a specific record_duration")
            warnings.filterwarnings("ignore", message="Sample frequency .* can not be")
            writer.setSignalHeaders(headers)
            subject = str(rec.meta.get("subject") or "X")
            writer.setPatientCode(subject.replace(" ", "_")[:40])
            writer.setEquipment("emgfb")
            start = _start_datetime(rec.meta.get("start_time_utc"))
            if start is not None:
                writer.setStartdatetime(start)
            writer.setDatarecordDuration(duration)
            writer.set_number_of_annotation_signals(
                max(1, min(64, math.ceil(len(annotations) / n_records) + 1)))
            for onset, dur, text in annotations:
                writer.writeAnnotation(onset, dur, text)
            writer.writeSamples(digital, digital=True)
    finally:
        writer.close()
    if pad:
        notes.append(f"the last data record is padded with {pad} samples (annotated)")
    if len(rec.gaps):
        notes.append(f"{len(rec.gaps)} gaps written as 0 µV and annotated 'gap: N lost "
                     "samples'")
    return notes


def _edf_annotations(rec: Any, fs: float, t0: int, n_cont: int, pad: int
                     ) -> list[tuple[float, float, str]]:
    ann: list[tuple[float, float, str]] = []
    for m in rec.markers:
        ann.append((max(0.0, (m.tick - t0) / fs), -1, f"{m.kind}:{m.label}"))
    tick = np.asarray(rec.tick, dtype=np.int64)
    for g in rec.gaps:
        start_sample, lost = int(g["start_sample"]), int(g["lost_ticks"])
        if start_sample == 0:
            continue  # before the first sample: outside the exported timeline
        after = int(tick[start_sample]) if start_sample < len(tick) else int(tick[-1]) + 1 + lost
        ann.append(((after - lost - t0) / fs, lost / fs, f"gap: {lost} lost samples"))
    if pad:
        ann.append((n_cont / fs, pad / fs, f"padding: {pad} samples after the end"))
    ann.sort(key=lambda a: a[0])
    return ann


def _start_datetime(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when


def read_edf_export(path: str | Path) -> dict[str, Any]:
    """Read an EDF+/BDF+ file back with pyedflib (for tests and scripts).

    Returns
    -------
    dict
        ``labels``, ``fs`` (per file), ``physical`` (float64 ``(n, ch)``), ``digital``
        (int ``(n, ch)``), ``annotations`` (list of ``(onset_s, duration_s, text)``),
        ``dimension`` (per channel).
    """
    import pyedflib

    with pyedflib.EdfReader(str(path)) as r:
        n_ch = r.signals_in_file
        phys = np.column_stack([r.readSignal(i) for i in range(n_ch)])
        digi = np.column_stack([r.readSignal(i, digital=True) for i in range(n_ch)])
        onsets, durs, texts = r.readAnnotations()
        return {
            "labels": r.getSignalLabels(), "fs": r.getSampleFrequency(0),
            "physical": phys, "digital": digi,
            "annotations": list(zip(onsets.tolist(), durs.tolist(), list(texts),
                                    strict=True)),
            "dimension": [r.getPhysicalDimension(i) for i in range(n_ch)],
        }
