"""Export of an emgfb session to CSV or EDF+/BDF+ for other tools, block by block.

This module owns turning an open :class:`~emgfb.recording.reader.Recording` into the
values to export (raw counts, µV, or envelopes computed with :mod:`emgfb.dsp`) and
writing them as CSV or, through :mod:`emgfb.recording.edf_writer`, EDF+/BDF+. The session
is read in blocks (:meth:`~emgfb.recording.reader.Recording.iter_blocks`), so memory does
not grow with its length (a second pass computes value ranges first). It imports
``errors``, ``outputs``, ``delimited``, ``recording.reader`` (via
:func:`export_recording`), ``recording.edf_writer``, ``dsp`` (envelopes and filter
descriptions) and numpy; never the GUI. An existing output file is never replaced unless
``force`` is given, and never the session read nor any HDF5 file (:mod:`emgfb.outputs`,
the output rule of every command): the output is written to a temporary file next to it
and moved into place at the end, so a failed export leaves nothing half-written.

CSV layout (UTF-8, comma-separated, ``\\n`` line ends)::

    # emgfb export: format_version=1 what=uv unit=uV fs=2000 fs_time=2000 time_base=nominal
    # ... source=session.h5 (one line)
    # channels: label,muscle,side,uv_per_count,offset_counts (one '# channel:' line each)
    # channel: ZYG_L,zygomaticus_major,left,2.0,512.0
    time_s,tick,ZYG_L,ZYG_R,...,marker
    0.0000000,0,12.5,-3.75,...,
    0.0005000,1,10.0,-1.25,...,"rep:rep 1 start"

* Lines starting with ``#`` are metadata; the first line without ``#`` is the header
  (:mod:`emgfb.delimited` reads it; ``emgfb import`` and ``emgfb process`` read it back).
* ``time_s`` = (tick - first tick) / fs_time; ``tick`` is the absolute sample tick. Lost
  samples are *not* filled: a gap shows as a tick (and time) step larger than one.
  ``fs_time`` (first line, with ``time_base``) is the board's **measured** rate when the
  recording's ``clock`` document holds one that differs from nominal by more than three
  times its uncertainty (``time_base=measured``, plus ``clock_ppm``), else the nominal
  ``fs`` (``time_base=nominal``): so ``time_s`` is true (host) time; sample values and
  ticks are never changed (:func:`time_base`).
* Channel values: ``raw`` = the stored integer counts; ``uv`` = (counts - offset) ×
  uv_per_count, printed with 10 significant digits; ``envelope`` = µV envelope of the
  DSP pipeline, empty cells where it is undefined (filter settling, after gaps).
* ``marker``: the markers placed at that sample as ``kind:label``, several separated by
  `` | ``; the cell is CSV-quoted when needed. Markers inside a gap go to the next sample.

EDF+/BDF+ (``--format edf`` / ``bdf``): one signal per channel labelled ``EMG <label>``
(so MNE and EDFbrowser type it as EMG), physical dimension ``uV`` (``count`` for raw),
the prefilter field from the analog front-end's band (``HP:20Hz LP:500Hz``) plus, for
envelopes, the DSP settings that made them; annotations (EDF+ TALs) for every marker
(``kind:label``) and ``BAD_ACQ_SKIP`` with its duration for every gap and for the padding
of the last data record (EDF+C is continuous: those samples are written as 0 µV, and
analysis tools exclude ``BAD_ACQ_SKIP`` spans). The start time keeps its sub-second part
(UTC, as the session). With a measured time base the record of ``round(fs)`` samples lasts
``round(fs)/fs_time`` s (EDF allows any record duration its 8-character field holds: about
1 ppm), so the EDF's rate and every annotation onset are in true seconds. Counts that fit
the digital range (16-bit EDF, 24-bit BDF) are stored exactly; otherwise, and for
envelopes, values are rescaled to the full digital range (the step is reported). The data
record holds ``round(fs)`` samples and lasts ``round(fs)/fs`` s, so non-integer rates
(imported OpenBCI 250.331 Hz) are kept to within 10 µs per record. The patient field
holds the session's pseudonymous subject code only;
``reduce_dates`` keeps the year and the time of day of the start and sets the date to
1 January (the default for anonymised exports, which also drop the subject code).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from emgfb.delimited import cell_value, quote_cell, read_table, split_lines
from emgfb.errors import RecordingError
from emgfb.outputs import atomic_output, check_output
from emgfb.recording.edf_writer import DIGITAL, SKIP, ChannelScale, EdfWriter, Signal

log = logging.getLogger(__name__)

EXPORT_FORMATS = ("csv", "edf", "bdf")
EXPORT_WHAT = ("raw", "uv", "envelope")
CSV_FORMAT_VERSION = 1
#: Samples per block read from the session (and data records per EDF write, about).
BLOCK_ROWS = 1 << 16


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
    anonymise: bool = False,
    reduce_dates: bool | None = None,
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
    anonymise
        Leave the subject code out (EDF patient field ``X``); dates are reduced unless
        ``reduce_dates`` is False.
    reduce_dates
        Keep only the year and time of day of the start (EDF+/BDF+); default: as
        ``anonymise``.

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
    reduce = anonymise if reduce_dates is None else reduce_dates
    with open_recording(src) as rec:
        source = SessionValues(rec, what, dsp_config)
        with atomic_output(out, inputs=[src], force=force) as tmp:
            if fmt == "csv":
                write_csv(source, tmp)
                notes = list(source.notes)
            else:
                notes = write_edf(source, tmp, kind=fmt, anonymise=anonymise,
                                  reduce_dates=reduce)
        result = ExportResult(out, fmt, what, rec.n_samples, rec.n_channels, len(rec.markers),
                              int(len(rec.gaps)), notes)
    log.info("exported %s to %s (%s, %s)", src, out, fmt, what)
    return result


class SessionValues:
    """The values of one export, read block by block from an open recording.

    Parameters
    ----------
    rec
        An open :class:`~emgfb.recording.reader.Recording`.
    what
        ``"raw"``, ``"uv"`` or ``"envelope"``.
    dsp_config
        For ``envelope``: DSP settings; default the session's stored config, else the
        bundled default.

    Attributes
    ----------
    unit
        ``"count"`` (raw) or ``"uV"``.
    config
        The DSP settings (envelopes only, else None).
    notes
        What a reader should know about the values.
    """

    def __init__(self, rec: Any, what: str, dsp_config: str | Path | None = None,
                 block_rows: int = BLOCK_ROWS) -> None:
        self.rec, self.what, self.block_rows = rec, what, block_rows
        self.unit = "count" if what == "raw" else "uV"
        self.notes: list[str] = []
        #: The rate that turns ticks into seconds (:func:`time_base`).
        self.time = time_base(rec)
        if self.time.measured:
            self.notes.append(
                f"time axis in true seconds: the board's measured rate {self.time.fs:.4f} Hz "
                f"({self.time.ppm:+.0f} ppm from its nominal {self.time.nominal_fs:g} Hz)")
        self.config = None
        if what == "envelope":
            from emgfb.dsp import load_dsp_config

            self.config = (load_dsp_config(dsp_config) if dsp_config is not None
                           else session_dsp_config(rec))

    def blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``(tick, counts, values)`` per block, in order (a fresh DSP state each call)."""
        rec = self.rec
        pipe = None
        if self.config is not None:  # the envelope
            from emgfb.dsp import EnvelopePipeline

            pipe = EnvelopePipeline(self.config, rec.fs, rec.n_channels, rec.uv_per_count,
                                    rec.offset_counts)
            self.notes = [n for n in self.notes if not n.startswith("envelope:")] + [
                          f"envelope: {pipe.config.envelope.method}, undefined for "
                          f"{pipe.envelope_settle} samples after the start and after each "
                          "gap"]
        for block in rec.iter_blocks(self.block_rows):
            counts = block.counts
            if self.what == "raw":
                values = counts
            elif pipe is None:
                values = rec.to_uv(counts)
            else:
                values = pipe.process(np.asarray(counts, np.float64), tick=block.tick)
            yield block.tick, counts, values


def signal_values(rec: Any, what: str, dsp_config: str | Path | None = None
                  ) -> tuple[np.ndarray, str, list[str]]:
    """Values to export for every stored sample (all in memory), their unit, and notes.

    Prefer :class:`SessionValues` for long sessions; this is its whole-session form.
    """
    src = SessionValues(rec, what, dsp_config)
    parts = [v for _, _, v in src.blocks()]
    values = np.concatenate(parts) if parts else np.zeros((0, rec.n_channels))
    return values, src.unit, src.notes


def session_dsp_config(rec: Any) -> Any:
    """The DSP config stored in the session if it loads, else the bundled default."""
    from emgfb.dsp import dsp_config_from_dict, load_dsp_config

    stored = rec.meta.get("dsp_config")
    if stored:
        return dsp_config_from_dict(stored, f"{rec.path}: dsp_config")
    return load_dsp_config()


def frontend_filter(rec: Any) -> str:
    """EDF prefilter text of the analog front-end's band (``HP:20Hz LP:500Hz``), or ``""``."""
    fe = rec.meta.get("frontend") or {}
    band = fe.get("band_hz") if isinstance(fe, dict) else None
    if not band or len(band) != 2:
        return ""
    return f"HP:{float(band[0]):g}Hz LP:{float(band[1]):g}Hz"


def dsp_filter(config: Any, fs: float) -> str:
    """EDF prefilter text of the DSP settings that made an envelope."""
    parts = []
    if config.highpass.cutoff_hz > 0:
        parts.append(f"HP:{config.highpass.cutoff_hz:g}Hz")
    bp = config.bandpass
    parts.append(f"BP:{bp.low_hz:g}-{min(bp.high_hz, 0.45 * fs):g}Hz")
    if config.notch.enabled:
        parts.append(f"N:{config.notch.mains_hz:g}Hz")
    env = config.envelope
    parts.append(f"RMS:{env.window_ms:g}ms" if env.method == "rms"
                 else f"ENV-LP:{env.lowpass_hz:g}Hz")
    return " ".join(parts)


def marker_texts(rec: Any) -> list[tuple[int, str]]:
    """``(tick, "kind:label")`` of every marker, sorted by tick."""
    return sorted(((int(m.tick), f"{m.kind}:{m.label}") for m in rec.markers),
                  key=lambda m: m[0])


@dataclass(frozen=True)
class TimeBase:
    """The rate that turns sample ticks into seconds in an export.

    Attributes
    ----------
    fs
        Samples per second used for every time in the export (``fs_time``).
    nominal_fs
        The rate the board said it samples at.
    measured
        True when ``fs`` is the board's measured rate (the ``clock`` document).
    ppm
        The measured deviation from nominal (None when not measured).
    """

    fs: float
    nominal_fs: float
    measured: bool
    ppm: float | None = None

    def header(self) -> str:
        """The CSV first-line fields (``fs_time=... time_base=... [clock_ppm=...]``)."""
        text = f"fs_time={self.fs:.10g} time_base={'measured' if self.measured else 'nominal'}"
        return text + (f" clock_ppm={self.ppm:+.1f}" if self.ppm is not None else "")


def time_base(rec: Any) -> TimeBase:
    """The board's measured rate when the recording holds one that differs from nominal
    by more than three times its uncertainty, else the nominal rate (a measurement that
    cannot be told from nominal would only add noise to the time axis)."""
    nominal = float(rec.fs)
    doc = getattr(rec, "clock", None) or {}
    try:
        fs, ppm, unc = float(doc["fs_hz"]), float(doc["ppm"]), float(doc["uncertainty_ppm"])
    except (KeyError, TypeError, ValueError):
        return TimeBase(nominal, nominal, False)
    if not (doc.get("estimated") and math.isfinite(fs) and fs > 0 and math.isfinite(unc)
            and abs(ppm) > 3 * unc):
        return TimeBase(nominal, nominal, False)
    return TimeBase(fs, nominal, True, ppm)


def edf_timing(tb: TimeBase) -> tuple[int, float, float]:
    """``(samples_per_record, record_duration_s, rate_of_the_edf)`` for a time base: a
    record holds ``round(nominal fs)`` samples; a measured rate sets its duration to the
    precision of EDF's 8-character field."""
    from emgfb.recording.edf_writer import field8

    spr = max(1, int(round(tb.nominal_fs)))
    if not tb.measured:
        duration = round(spr / tb.nominal_fs, 5)
        return spr, duration, tb.nominal_fs
    duration = float(field8(spr / tb.fs))
    return spr, duration, spr / duration


def write_csv(source: SessionValues, out: Path) -> None:
    """Write the values of ``source`` as CSV in the layout documented above, block by block."""
    rec = source.rec
    markers = marker_texts(rec)
    k = 0  # next marker to place
    integer = source.what == "raw"
    row_fmt = "%.7f,%d," + ",".join(["%d" if integer else "%.10g"] * rec.n_channels) + ","
    t0 = None
    n_written = 0
    with out.open("w", encoding="utf-8", newline="") as fh:
        fh.write(f"# emgfb export: format_version={CSV_FORMAT_VERSION} what={source.what} "
                 f"unit={source.unit} fs={rec.fs:.10g} {source.time.header()} "
                 f"source={Path(rec.path).name}\n")
        fh.write("# channels: label,muscle,side,uv_per_count,offset_counts "
                 "(one '# channel:' line each)\n")
        for ch, c in enumerate(rec.montage.channels):
            fh.write(f"# channel: {c.label},{c.muscle},{c.side},"
                     f"{rec.uv_per_count[ch]:.17g},{rec.offset_counts[ch]:.17g}\n")
        fh.write(",".join(quote_cell(c) for c in ["time_s", "tick", *rec.labels, "marker"])
                 + "\n")
        for tick, _, values in source.blocks():
            if t0 is None:
                t0 = int(tick[0])
            cells: dict[int, list[str]] = {}
            last = n_written + len(tick) == rec.n_samples
            while k < len(markers) and (markers[k][0] <= tick[-1] or last):
                row = min(int(np.searchsorted(tick, markers[k][0], side="left")),
                          len(tick) - 1)
                cells.setdefault(row, []).append(markers[k][1])
                k += 1
            rows = np.column_stack(((tick - t0) / source.time.fs, tick, values)).tolist()
            lines = [row_fmt % tuple(r) for r in rows]
            if not integer and np.isnan(values).any():
                lines = [ln.replace("nan", "") for ln in lines]
            for i, texts in cells.items():
                lines[i] += quote_cell(" | ".join(texts))
            fh.write("\n".join(lines) + "\n")
            n_written += len(tick)


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


def write_edf(source: SessionValues, out: Path, *, kind: str = "edf", anonymise: bool = False,
              reduce_dates: bool = False) -> list[str]:
    """Write the values of ``source`` as EDF+C (``kind="edf"``) or BDF+C, block by block.

    Returns notes on what was not stored exactly.
    """
    rec = source.rec
    dig = DIGITAL[kind]
    fs = float(rec.fs)
    if not 0.001 <= round(max(1, round(fs)) / fs, 5) <= 60:
        raise RecordingError(f"{rec.path}: fs = {fs} Hz cannot be written to EDF records")
    spr, duration, fs_edf = edf_timing(source.time)
    ranges = _ranges(source)
    t0, t_last = ranges.first_tick, ranges.last_tick
    n_cont = t_last - t0 + 1 if rec.n_samples else 0
    n_records = max(1, math.ceil(n_cont / spr))
    pad = n_records * spr - n_cont
    notes = list(source.notes)
    scales = _channel_scales(source, ranges, dig, kind, notes)
    prefilter = frontend_filter(rec)
    if source.what == "envelope":
        prefilter = " ".join(p for p in (prefilter, dsp_filter(source.config, fs)) if p)
    elif not prefilter:
        notes.append("the session does not say its front-end band: prefilter field empty")
    fe = rec.meta.get("frontend") or {}
    transducer = "sEMG electrodes" + (f" {fe['electrodes']}" if isinstance(fe, dict)
                                      and fe.get("electrodes") else "")
    signals = [Signal(f"EMG {label}", source.unit, scale, transducer, prefilter)
               for label, scale in zip(rec.labels, scales, strict=True)]
    start = start_datetime(rec.meta.get("start_time_utc"))
    if start is not None and reduce_dates:
        start = start.replace(month=1, day=1)
        notes.append("start date reduced to 1 January of its year (time of day kept)")
    patient = "X" if anonymise else str(rec.meta.get("subject") or "X").replace(" ", "_")
    # onsets on the EDF's own time axis (true seconds when the rate was measured)
    annotations = _edf_annotations(rec, fs_edf if source.time.measured else fs, t0, n_cont,
                                   pad)
    with EdfWriter(out, kind, signals, spr, duration, n_records, start, patient,
                   "emgfb", annotations) as writer:
        _write_records(source, writer, scales, t0, n_records * spr)
    if pad:
        notes.append(f"the last data record is padded with {pad} samples (annotated "
                     f"{SKIP})")
    if len(rec.gaps):
        notes.append(f"{len(rec.gaps)} gaps written as 0 µV and annotated {SKIP} with their "
                     "duration")
    return notes


@dataclass
class _Ranges:
    first_tick: int
    last_tick: int
    lo: np.ndarray  # per channel: min of counts (exact path) or of finite values
    hi: np.ndarray
    counts_lo: np.ndarray
    counts_hi: np.ndarray


def _ranges(source: SessionValues) -> _Ranges:
    """First pass: tick span and per-channel value ranges."""
    n_ch = source.rec.n_channels
    lo, hi = np.full(n_ch, np.inf), np.full(n_ch, -np.inf)
    clo, chi = np.full(n_ch, np.inf), np.full(n_ch, -np.inf)
    first = last = 0
    seen = False
    for tick, counts, values in source.blocks():
        if not seen:
            first, seen = int(tick[0]), True
        last = int(tick[-1])
        c = np.asarray(counts)
        clo, chi = np.minimum(clo, c.min(axis=0)), np.maximum(chi, c.max(axis=0))
        v = np.where(np.isfinite(values), values, np.nan)
        with np.errstate(invalid="ignore"):
            if np.isfinite(v).any():
                lo = np.fmin(lo, np.nanmin(np.where(np.isfinite(v), v, np.inf), axis=0))
                hi = np.fmax(hi, np.nanmax(np.where(np.isfinite(v), v, -np.inf), axis=0))
    return _Ranges(first, last, lo, hi, clo, chi)


def _channel_scales(source: SessionValues, r: _Ranges, dig: tuple[int, int], kind: str,
                    notes: list[str]) -> list[ChannelScale]:
    rec = source.rec
    scales = []
    worst, smallest_step = 0.0, math.inf
    for ch in range(rec.n_channels):
        label = rec.labels[ch]
        scale = None
        if source.what != "envelope":
            a = 1.0 if source.what == "raw" else float(rec.uv_per_count[ch])
            b = 0.0 if source.what == "raw" else -float(rec.offset_counts[ch]) * a
            if np.isfinite(r.counts_lo[ch]):
                scale = ChannelScale.exact(a, b, int(r.counts_lo[ch]), int(r.counts_hi[ch]),
                                           dig)
            else:  # no samples
                scale = ChannelScale.exact(a, b, 0, 1, dig)
            if scale is None and source.what == "raw":
                raise RecordingError(
                    f"{rec.path}: channel {label!r}: counts span more than the "
                    f"{kind.upper()} digital range; export --what uv (rescaled) or use "
                    "--format bdf/csv for exact counts")
            if scale is None:
                notes.append(f"{label}: counts exceed the {kind.upper()} digital range; "
                             "rescaled" + (" (--format bdf has 24 bits)" if kind == "edf"
                                           else ""))
            else:
                worst = max(worst, scale.error)
                smallest_step = min(smallest_step, abs(a))
        if scale is None:
            lo = float(r.lo[ch]) if np.isfinite(r.lo[ch]) else 0.0
            hi = float(r.hi[ch]) if np.isfinite(r.hi[ch]) else 1.0
            scale = ChannelScale.rescaled(lo, hi, dig)
            if source.what != "envelope":
                notes[-1] += f" with a step of {scale.step:.4g} {source.unit}"
        scales.append(scale)
    if worst > 0.01 * smallest_step:
        notes.append(f"EDF's 8-character physical range fields: values read back within "
                     f"{worst:.3g} {source.unit}")
    return scales


def _write_records(source: SessionValues, writer: EdfWriter, scales: list[ChannelScale],
                   t0: int, n_total: int) -> None:
    """Second pass: place each block's samples on the continuous timeline (gaps get the
    digital 0) and write whole records as they fill."""
    spr = writer.spr
    n_ch = len(scales)
    span = max(spr, (BLOCK_ROWS // spr) * spr)
    fill = np.array([s.fill for s in scales], np.int64)
    buf = np.empty((span, n_ch), np.int64)
    buf[:] = fill
    buf_start = 0  # continuous sample index of buf[0]
    for tick, counts, values in source.blocks():
        rel = np.asarray(tick, np.int64) - t0
        d = np.column_stack([
            s.digital((counts if s.step is None else values)[:, ch])
            for ch, s in enumerate(scales)]) if len(rel) else np.zeros((0, n_ch), np.int64)
        pos = 0
        while pos < len(rel):
            if rel[pos] >= buf_start + span:
                writer.write(buf)
                buf[:] = fill
                buf_start += span
                continue
            end = int(np.searchsorted(rel, buf_start + span, side="left"))
            buf[rel[pos:end] - buf_start] = d[pos:end]
            pos = end
    while buf_start < n_total:
        take = min(span, n_total - buf_start)
        writer.write(buf[:take])
        buf[:] = fill
        buf_start += take


def _edf_annotations(rec: Any, fs: float, t0: int, n_cont: int, pad: int
                     ) -> list[tuple[float, float | None, str]]:
    ann: list[tuple[float, float | None, str]] = []
    for tick, text in marker_texts(rec):
        ann.append((max(0.0, (tick - t0) / fs), None, text))
    n = rec.n_samples
    for g in rec.gaps:
        start_sample, lost = int(g["start_sample"]), int(g["lost_ticks"])
        if start_sample == 0 or start_sample > n:
            continue  # before the first sample: outside the exported timeline
        if start_sample < n:
            after = int(rec.read_ticks(start_sample, start_sample + 1)[0])
        else:
            after = t0 + n_cont + lost
        ann.append(((after - lost - t0) / fs, lost / fs, SKIP))
    if pad:
        ann.append((n_cont / fs, pad / fs, SKIP))
    ann.sort(key=lambda a: a[0])
    return ann


def start_datetime(text: Any) -> datetime | None:
    """A stored ISO 8601 start time as a naive UTC datetime, or None."""
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
    """Read an EDF+/BDF+ file back with edfio (for tests and scripts).

    Returns
    -------
    dict
        ``labels``, ``fs`` (of the first signal), ``physical`` (float64 ``(n, ch)``),
        ``digital`` (int ``(n, ch)``), ``annotations`` (list of ``(onset_s, duration_s,
        text)``, onsets from the start time with its sub-second part), ``dimension`` (per
        channel), ``prefilter`` (per channel) and ``start`` (datetime).
    """
    import edfio

    path = Path(path)
    with path.open("rb") as fh:
        bdf = fh.read(1) == b"\xff"
    f = edfio.read_bdf(path) if bdf else edfio.read_edf(path)
    sig = [s for s in f.signals]
    return {
        "labels": [s.label for s in sig], "fs": sig[0].sampling_frequency,
        "physical": np.column_stack([s.data for s in sig]),
        "digital": np.column_stack([s.digital for s in sig]),
        "annotations": [(a.onset, a.duration if a.duration is not None else -1.0, a.text)
                        for a in f.annotations],
        "dimension": [s.physical_dimension for s in sig],
        "prefilter": [s.prefiltering for s in sig],
        "start": f.startdatetime,
    }
