"""EDF/EDF+ and BDF/BDF+ (continuous), read with edfio: emgfb's own exports and others'.

The signals sharing the most common sampling rate (EMG-labelled ones first) are imported
as their digital values with each signal's own scale, so nothing is requantised: a
voltage dimension (``uV``, ``mV``, ``V``) gives the µV scale, anything else is kept in
its unit (noted). ``BAD_ACQ_SKIP`` annotations mark samples that were never acquired
(emgfb writes its gaps and the padding of the last data record so): those rows are
dropped, so they become gaps of lost samples again. Every other annotation becomes a
marker at the first sample at or after its onset. The start time keeps its sub-second
part; it is UTC when emgfb wrote the file (equipment code ``emgfb``), else the
recording's local time. Discontinuous EDF+D/BDF+D files are refused with one line.
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from emgfb.delimited import fail
from emgfb.recording.importers.base import (
    UV_PER_UNIT,
    Format,
    ImportedRecording,
    check_file,
    check_rate_arg,
)

#: Annotation text of samples that were not acquired (MNE, EDFbrowser, BIDS use it).
SKIP = "BAD_ACQ_SKIP"
_EDF_MAGIC = b"0       "
_BDF_MAGIC = b"\xffBIOSEMI"


def sniff(head: bytes) -> bool:
    """True for an EDF (``0`` and 7 blanks) or BDF (``\\xffBIOSEMI``) header."""
    return head.startswith(_EDF_MAGIC) or head.startswith(_BDF_MAGIC)


def read(path: str | Path, fs: float | None = None) -> ImportedRecording:
    """Read an EDF(+)/BDF(+) file (see the module docstring)."""
    import edfio

    path = check_file(path)
    check_rate_arg(fs)
    with path.open("rb") as fh:
        head = fh.read(256)
    if not sniff(head):
        raise fail(path, f"header starts {head[:8]!r}: expected an EDF ('0       ') or BDF "
                   "('\\xffBIOSEMI') file")
    bdf = head.startswith(_BDF_MAGIC)
    _check_size(path, bdf)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # edfio warns about non-standard header fields
            rec = edfio.read_bdf(path) if bdf else edfio.read_edf(path)
            continuous = rec.is_continuous
            annotations = rec.annotations
    except Exception as exc:  # noqa: BLE001 - edfio raises ValueError/IndexError/... on bad input
        raise fail(path, f"not a readable {'BDF' if bdf else 'EDF'} file "
                   f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
                   ) from None
    kind = "BDF" if bdf else "EDF"
    if not continuous:
        raise fail(path, f"{kind}+D (discontinuous) file; only continuous {kind}/{kind}+C "
                   "files can be imported")
    signals = [s for s in rec.signals if s.sampling_frequency > 0]
    if not signals:
        raise fail(path, f"no signals in the {kind} file")
    rates = Counter(s.sampling_frequency for s in signals)
    emg_rates = Counter(s.sampling_frequency for s in signals
                        if s.label.upper().startswith("EMG"))
    rate = (emg_rates or rates).most_common(1)[0][0]
    chosen = [s for s in signals if s.sampling_frequency == rate]
    notes: list[str] = []
    if len(chosen) < len(signals):
        other = ", ".join(f"{s.label} ({s.sampling_frequency:g} Hz)" for s in signals
                          if s.sampling_frequency != rate)
        notes.append(f"signals at other rates not imported: {other}")
    n = min(len(s.digital) for s in chosen)
    data = np.column_stack([np.asarray(s.digital[:n], dtype=np.float64) for s in chosen])
    names, units, k, off = [], [], [], []
    for s in chosen:
        label = s.label.strip()
        names.append(label[4:].strip() if label.upper().startswith("EMG ") else label)
        gain = (s.physical_max - s.physical_min) / (s.digital_max - s.digital_min)
        unit = UV_PER_UNIT.get(s.physical_dimension.strip().lower())
        units.append("counts")
        k.append(gain * unit if unit is not None else None)
        off.append(s.digital_min - s.physical_min / gain)
        if unit is None:
            notes.append(f"{label}: unit {s.physical_dimension!r} is not a voltage: values "
                         f"kept in {s.physical_dimension or 'its unit'}")
    keep = np.ones(n, dtype=bool)
    markers: list[tuple[int, str]] = []
    skipped = 0
    for ann in annotations:
        start = int(np.ceil(ann.onset * rate - 1e-6))
        if ann.text == SKIP:
            stop = int(np.ceil((ann.onset + (ann.duration or 0)) * rate - 1e-6))
            keep[max(0, start):max(0, stop)] = False
            skipped += 1
        elif ann.text:
            markers.append((min(max(0, start), n - 1), ann.text))
    tick = np.flatnonzero(keep).astype(np.int64)
    if skipped:
        notes.append(f"{skipped} {SKIP} annotations: their samples are gaps of lost samples")
    equipment = ""
    try:
        equipment = rec.recording.equipment_code
    except Exception:  # noqa: BLE001 - plain EDF has a free-text recording field
        equipment = ""
    start_time = None
    try:
        when = rec.startdatetime
        start_time = when.isoformat(timespec="microseconds")
        if equipment == "emgfb":
            start_time += "Z"
        else:
            notes.append(f"{kind} start time is local time (the format has no time zone)")
    except Exception:  # noqa: BLE001 - anonymised dates ("X") or invalid fields
        notes.append(f"{kind} start date is not given (anonymised)")
    if fs is not None and abs(fs / rate - 1) > 0.005:
        notes.append(f"--fs {fs:g} Hz used although the file says {rate:g} Hz")
    return ImportedRecording(
        data=data[tick], fs=float(fs or rate), channel_names=names, units=units, tick=tick,
        markers=markers, source_format="edf", source_path=path, start_time=start_time,
        notes=notes, uv_per_unit=k, offset=off, quantum=[1.0] * len(chosen),
        nominal_fs=float(rate), header={"kind": kind, "equipment": equipment,
                                        "labels": [s.label for s in chosen]},
    )


def _check_size(path: Path, bdf: bool) -> None:
    """Refuse a file shorter (or longer) than its header says, with one line."""
    kind = "BDF" if bdf else "EDF"
    with path.open("rb") as fh:
        head = fh.read(256)
        try:
            n_header = int(head[184:192])
            n_records = int(head[236:244])
            n_signals = int(head[252:256])
            fh.seek(256 + 216 * n_signals)
            spr = [int(fh.read(8)) for _ in range(n_signals)]
        except ValueError:
            raise fail(path, f"{kind} header fields are not numbers; expected an {kind} "
                       "header") from None
    record = sum(spr) * (3 if bdf else 2)
    size = path.stat().st_size
    if n_records >= 0 and size != n_header + n_records * record:
        held = (size - n_header) / record if record else 0
        raise fail(path, f"header says {n_records} data records, the file holds {held:.2f}: "
                   f"truncated or not a complete {kind} file")


FORMAT = Format("edf", sniff, read)
