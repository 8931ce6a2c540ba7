"""PLUX OpenSignals files: text (JSON header between ``#`` lines, tab-separated rows) and
HDF5 (one group per device with ``raw/nSeq`` and ``raw/channel_N``).

Analog channels are imported; EMG sensors are converted with PLUX's EMG transfer function,
other sensors stay in ADC counts; ``nSeq`` gaps are lost samples; the rate is the
device's (the files have no timestamps to check it against).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from emgfb.delimited import fail, read_table
from emgfb.recording.importers.base import (
    HDF5_MAGIC,
    Format,
    ImportedRecording,
    check_file,
    check_rate_arg,
    first_line,
    jsonable,
    ticks_from_counter,
)

#: µV per ADC count for PLUX EMG sensors: (ADC/2**n - 1/2) * VCC / gain, in volts.
_PLUX_EMG = {"bitalino": (3.3, 1009.0), "biosignalsplux": (3.0, 1000.0)}


def _plux_emg_scale(device: str, bits: int) -> tuple[float, float, str]:
    vcc, gain = _PLUX_EMG["bitalino" if "bitalino" in device.lower() else "biosignalsplux"]
    return vcc / gain / 2**bits * 1e6, float(2 ** (bits - 1)), f"VCC {vcc} V, gain {gain:g}"


def read_txt(path: str | Path, fs: float | None = None) -> ImportedRecording:
    """Read an OpenSignals text file (JSON header between ``#`` lines, tab-separated data).

    Analog ``A*``/``CH*`` columns are imported; EMG sensors are converted with PLUX's EMG
    transfer function, other sensors stay in ADC counts. ``nSeq`` gaps are lost samples.
    """
    path = check_file(path)
    check_rate_arg(fs)
    table = read_table(path)
    head = table.comments
    if not head or "opensignals" not in head[0].lower():
        shown = (head[0] if head else table.lines[0] if table.lines else "")[:40]
        raise fail(path, f"first line {shown!r}: expected '# OpenSignals Text File Format'")
    try:
        meta = json.loads(head[1]) if len(head) > 1 else None
    except json.JSONDecodeError as exc:
        raise fail(path, f"line 2: header is not valid JSON ({exc.msg})") from None
    if not isinstance(meta, dict) or not meta:
        raise fail(path, "line 2: expected a JSON object describing the device(s)")
    if not any(h.lower().startswith("endofheader") for h in head):
        raise fail(path, "no '# EndOfHeader' line, expected one after the JSON header")
    devices = list(meta.items())
    cols: list[str] = []
    for _, dev in devices:
        cols += list(dev.get("column", []))
    raw = table.numeric(0, "\t", n_cols=len(cols), trailing_delimiter=True)
    notes: list[str] = []
    if len(devices) > 1:
        notes.append(f"{len(devices)} devices in the file: only the first one is imported")
    name, dev = devices[0]
    dcols = list(dev.get("column", []))
    return _opensignals_result(
        path, "opensignals", name, dev, {c: raw[:, i] for i, c in enumerate(dcols)}, fs, notes)


def read_h5(path: str | Path, fs: float | None = None) -> ImportedRecording:
    """Read an OpenSignals HDF5 file (one group per device with ``raw/nSeq``, ``raw/channel_N``)."""
    import h5py

    path = check_file(path)
    check_rate_arg(fs)
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise fail(path, f"cannot open as HDF5 ({exc})") from None
    with fh:
        groups = [k for k, g in fh.items() if isinstance(g, h5py.Group) and "raw" in g]
        if not groups:
            raise fail(path, "no device group with a 'raw' subgroup, expected an OpenSignals HDF5 "
                        "file")
        notes: list[str] = []
        if len(groups) > 1:
            notes.append(f"{len(groups)} devices in the file: only {groups[0]} is imported")
        g = fh[groups[0]]
        dev = {k: jsonable(v) for k, v in g.attrs.items()}
        raw = g["raw"]
        columns: dict[str, np.ndarray] = {}
        labels, sensors, res = [], [], []
        for key in sorted(raw, key=_natural):
            if key == "nSeq" or key.startswith("channel_"):
                columns[key] = np.asarray(raw[key][:]).reshape(-1).astype(np.float64)
            if key.startswith("channel_"):
                labels.append(str(raw[key].attrs.get("label", key)))
                sensors.append(str(raw[key].attrs.get("sensor", "")))
        res = list(np.atleast_1d(dev.get("resolution", [16] * len(labels))))
        if "nsamples" in dev and columns.get("nSeq") is not None and \
                len(columns["nSeq"]) != int(dev["nsamples"]):
            notes.append(f"attribute nsamples = {dev['nsamples']} but {len(columns['nSeq'])} "
                         "rows are stored")
        if "digital" in g:
            notes.append("digital channels not imported")
        ev = g.get("events")
        if ev is not None and any(len(ev[k]) for k in ev):
            notes.append("OpenSignals events present but not imported")
    dev = {**dev, "sensor": sensors, "label": labels, "resolution": res}
    chan_keys = [k for k in columns if k != "nSeq"]
    dev["column"] = ["nSeq", *chan_keys]
    return _opensignals_result(path, "opensignals", groups[0], dev, columns, fs, notes,
                               names=labels)


def _natural(key: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key)]


def _opensignals_result(
    path: Path, fmt: str, dev_name: str, dev: dict[str, Any], columns: dict[str, np.ndarray],
    fs: float | None, notes: list[str], names: list[str] | None = None,
) -> ImportedRecording:
    if "nSeq" not in columns:
        raise fail(path, f"device {dev_name}: no nSeq column, expected one (OpenSignals)")
    analog = [c for c in dev["column"] if c not in ("nSeq",) and not c.startswith("D")]
    if not analog:
        raise fail(path, f"device {dev_name}: no analog channels in columns {dev['column']}")
    sensors = list(dev.get("sensor", [""] * len(analog)))
    res = [int(r) for r in dev.get("resolution", [16] * len(analog))]
    if len(sensors) != len(analog) or len(res) != len(analog):
        raise fail(path, f"device {dev_name}: {len(analog)} analog columns but "
                    f"{len(sensors)} sensors and {len(res)} resolutions in the header")
    nseq = columns["nSeq"]
    modulus = 16 if "bitalino" in str(dev.get("device", "")).lower() else None
    tick, dups = ticks_from_counter(np.nan_to_num(nseq).astype(np.int64), modulus, path, "nSeq")
    keep = tick >= 0
    if dups:
        notes.append(f"{dups} rows repeating the previous nSeq were dropped")
    data = np.column_stack([columns[c] for c in analog])[keep]
    tick = tick[keep]
    try:
        nominal = float(dev["sampling rate"])
    except (KeyError, TypeError, ValueError):
        raise fail(path, f"device {dev_name}: header lacks a numeric 'sampling rate'") from None
    rate = nominal if fs is None else float(fs)  # the device clock: no timestamps to check
    units: list[str] = []
    k: list[float | None] = []  # µV per count; None: not an EMG sensor
    off: list[float] = []
    how: set[str] = set()
    for s, bits in zip(sensors, res, strict=True):
        if s.upper() == "EMG":
            a, b, h = _plux_emg_scale(str(dev.get("device", "")), bits)
            units.append("counts")
            k.append(a)
            off.append(b)
            how.add(h)
        else:
            units.append("counts")
            k.append(None)
            off.append(0.0)
    if how:
        notes.append(f"EMG channels converted with PLUX's EMG transfer function "
                     f"({', '.join(sorted(how))})")
    other = [f"{n} ({s})" for n, s in zip(names or analog, sensors, strict=True)
             if s.upper() != "EMG"]
    if other:
        notes.append(f"non-EMG channels kept in ADC counts, not µV: {', '.join(other)}")
    lost = int(tick[-1] + 1 - len(tick)) if len(tick) else 0
    if lost:
        notes.append(f"{lost} samples lost (nSeq gaps)")
    start = None
    if dev.get("date") and dev.get("time"):
        start = _opensignals_start(str(dev["date"]), str(dev["time"]))
        if start:
            notes.append("start time is the recording computer's local time (no time zone)")
    if any(c.startswith("D") for c in dev["column"]):
        notes.append("OpenSignals digital inputs not imported")
    comments = dev.get("comments")
    header: dict[str, Any] = {"device": dev_name}
    header.update({kk: dev[kk] for kk in ("device", "firmware version", "comments", "sensor",
                                          "label") if kk in dev})
    if comments:
        notes.append(f"OpenSignals comment kept in metadata: {comments!r}")
    return ImportedRecording(
        data=data, fs=rate, channel_names=list(names or analog), units=units, tick=tick,
        source_format=fmt, source_path=path, start_time=start, notes=notes, uv_per_unit=k,
        offset=off, quantum=[1.0] * len(analog), nominal_fs=nominal, header=header,
    )


def _opensignals_start(date: str, time: str) -> str | None:
    try:
        y, mo, d = (int(p) for p in date.split("-"))
        hms = time.split(":")
        h, mi = int(hms[0]), int(hms[1])
        sec = float(hms[2]) if len(hms) > 2 else 0.0
    except (ValueError, IndexError):
        return None
    return datetime(y, mo, d, h, mi, int(sec), int(round((sec % 1) * 1e6)) % 1000000
                    ).isoformat(timespec="milliseconds")


# ---------------------------------------------------------------------------------------


def sniff(head: bytes) -> bool:
    """True for an OpenSignals text header or an HDF5 signature (the reader checks the
    device groups)."""
    return head.startswith(HDF5_MAGIC) or first_line(head).lower().startswith(
        "# opensignals")


def read(path: str | Path, fs: float | None = None) -> ImportedRecording:
    """Read OpenSignals HDF5 or text, whichever ``path`` holds."""
    path = check_file(path)
    with path.open("rb") as fh:
        is_h5 = fh.read(8) == HDF5_MAGIC
    return (read_h5 if is_h5 else read_txt)(path, fs)


FORMAT = Format("opensignals", sniff, read)
