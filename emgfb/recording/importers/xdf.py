"""LabRecorder XDF, read with pyxdf.

The numeric stream with the highest nominal rate (most samples on a tie) is imported;
string streams become markers at the first sample at or after their time stamp.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from emgfb.delimited import fail
from emgfb.recording.importers.base import (
    Format,
    ImportedRecording,
    check_file,
    check_rate_arg,
    norm_unit,
    rate_from_timestamps,
    settle_rate,
)


def sniff(head: bytes) -> bool:
    """True for the ``XDF:`` magic."""
    return head.startswith(b"XDF:")


def read(path: str | Path, fs: float | None = None) -> ImportedRecording:
    """Read a LabRecorder XDF file with pyxdf.

    The numeric stream with the highest nominal rate (most samples on a tie) is imported;
    string streams become markers at the first sample at or after their time stamp.
    """
    import pyxdf

    path = check_file(path)
    check_rate_arg(fs)
    with path.open("rb") as fh:
        if fh.read(4) != b"XDF:":
            raise fail(path, "does not start with 'XDF:', expected an XDF file")
    try:
        streams, file_header = pyxdf.load_xdf(str(path))
    except Exception as exc:  # pyxdf raises bare Exceptions on corrupt chunks
        raise fail(path, f"pyxdf cannot read it ({type(exc).__name__}: {exc})") from exc
    unfinished = [str(_xdf_info(s, "name")) for s in streams if not s.get("footer")]
    if unfinished:
        raise fail(path, f"stream {unfinished[0]!r} has no StreamFooter: the file is "
                    "truncated, expected a file LabRecorder closed")
    numeric = [s for s in streams if _xdf_info(s, "channel_format") != "string"
               and len(s["time_stamps"])]
    strings = [s for s in streams if _xdf_info(s, "channel_format") == "string"]
    if not numeric:
        raise fail(path, "no numeric stream with samples, expected at least one signal stream")
    numeric.sort(key=lambda s: (float(_xdf_info(s, "nominal_srate") or 0),
                                len(s["time_stamps"])), reverse=True)
    main = numeric[0]
    notes: list[str] = []
    for s in numeric[1:]:
        notes.append(f"stream {_xdf_info(s, 'name')!r} ({_xdf_info(s, 'type')}) not imported: "
                     "one signal stream per session")
    ts = np.asarray(main["time_stamps"], dtype=np.float64)
    data = np.asarray(main["time_series"], dtype=np.float64)
    n_ch = int(_xdf_info(main, "channel_count") or data.shape[1])
    if data.ndim != 2 or data.shape[1] != n_ch:
        raise fail(path, f"stream {_xdf_info(main, 'name')!r}: data shape {data.shape}, "
                    f"expected (n, {n_ch})")
    names, units = _xdf_channels(main, n_ch, notes)
    nominal = float(_xdf_info(main, "nominal_srate") or 0) or None
    effective = float(main["info"].get("effective_srate") or 0) or None
    detected = effective or rate_from_timestamps(np.arange(len(ts)), ts)
    rate = settle_rate(detected, nominal, fs, notes, path)
    tick = np.arange(len(ts), dtype=np.int64)
    markers: list[tuple[int, str]] = []
    outside = 0
    for s in strings:
        for t, value in zip(s["time_stamps"], s["time_series"], strict=True):
            label = str(value[0] if len(value) else "")
            j = int(np.searchsorted(ts, t, side="left"))
            if t < ts[0] - 1 / rate or j >= len(ts):
                outside += 1
                continue
            markers.append((int(tick[j]), label))
    if outside:
        notes.append(f"{outside} markers outside the signal stream's time span were dropped")
    if strings:
        notes.append(f"markers from {len(strings)} string stream(s) placed at the first sample "
                     "at or after their LSL time stamp")
    dt = str((file_header.get("info", {}).get("datetime") or [""])[0])
    start = _xdf_start(dt)
    if np.ptp(ts) > 0:
        notes.append("XDF stores LSL clock time stamps; they were dejittered by pyxdf and "
                     "replaced by the sample index")
    quantum: list[float | None] = [None] * n_ch
    if _xdf_info(main, "channel_format") in ("float32", "double64"):
        notes.append("samples were binary floats: quantised with a power-of-two step "
                     "(see the session's uv_per_count)")
    else:
        quantum = [1.0] * n_ch
    return ImportedRecording(
        data=data, fs=rate, channel_names=names, units=units, tick=tick, markers=markers,
        source_format="xdf", source_path=path, start_time=start, notes=notes,
        quantum=quantum, nominal_fs=nominal,
        header={"stream": _xdf_info(main, "name"), "type": _xdf_info(main, "type"),
                "source_id": _xdf_info(main, "source_id"),
                "channel_format": _xdf_info(main, "channel_format")},
    )


def _xdf_info(stream: dict[str, Any], key: str) -> Any:
    v = stream["info"].get(key)
    if isinstance(v, list):
        return v[0] if v else None
    return v


def _xdf_channels(stream: dict[str, Any], n_ch: int, notes: list[str]) -> tuple[list[str],
                                                                                 list[str]]:
    names = [f"CH{i + 1}" for i in range(n_ch)]
    units = ["uV"] * n_ch
    desc = (stream["info"].get("desc") or [None])[0]
    chans = None
    if isinstance(desc, dict):
        try:
            chans = desc["channels"][0]["channel"]
        except (KeyError, IndexError, TypeError):
            chans = None
    if chans and len(chans) == n_ch:
        for i, c in enumerate(chans):
            label = (c.get("label") or [None])[0]
            unit = (c.get("unit") or [None])[0]
            if label:
                names[i] = str(label)
            if unit:
                units[i] = norm_unit(str(unit))
        if not all((c.get("unit") or [None])[0] for c in chans):
            notes.append("some channels declare no unit: µV assumed")
    else:
        notes.append("the stream declares no channel labels or units: CH1..CHn and µV assumed")
    return names, units


def _xdf_start(dt: str) -> str | None:
    if not dt:
        return None
    try:
        when = datetime.strptime(dt, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


FORMAT = Format("xdf", sniff, read)
