"""Conversion of an :class:`~emgfb.recording.importers.base.ImportedRecording` to an emgfb
session: the quantisation to int32 counts (:func:`choose_quantum`), the montage of
imported channels and the ``import`` metadata block. Imports numpy, ``montage``,
``records`` (:class:`Marker`) and the session writer.

Resolution when quantising to the session's int32 counts: ADC counts stay exact counts;
decimal text keeps its printed resolution (``61379.36`` µV -> 0.01 µV per count),
coarsened by powers of ten only if int32 would overflow; binary floats (XDF float32) get
a power-of-two step with ``max|x| / step <= 2**30`` (finer than float32 for every value
above 1/64 of the maximum); a source that knows its own step (EDF, an emgfb export) keeps
it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emgfb.montage import MUSCLES, SIDES, Channel, Montage
from emgfb.recording.importers.base import ImportedRecording, jsonable
from emgfb.records import Marker

_INT32_LIMIT = 2**31 - 1


def choose_quantum(values: np.ndarray, known: float | None = None) -> tuple[float, str]:
    """Step (in the data's unit) for quantising ``values`` to int32 without losing resolution.

    Parameters
    ----------
    values
        One channel, finite values.
    known
        The source's own resolution if the parser knows it (1 for ADC counts).

    Returns
    -------
    step, how
        The step and a short phrase saying how it was chosen.
    """
    v = values[np.isfinite(values)]
    peak = float(np.max(np.abs(v))) if len(v) else 0.0
    if known is not None:
        step, how = float(known), "source resolution"
    else:
        decimal, how = _decimal_step(v)
        if decimal is None:
            # binary floats: power-of-two step, max|x| maps to at most 2**30
            exp = math.ceil(math.log2(peak / 2**30)) if peak > 0 else 0
            step, how = 2.0**exp, "power-of-two step for binary floats"
        else:
            step = decimal
    while peak / step > _INT32_LIMIT:
        step *= 10
        how = "coarsened to fit int32"
    return step, how


def _decimal_step(v: np.ndarray) -> tuple[float | None, str]:
    """10**-d for the fewest decimals d (0..9) that reproduce every value, else None."""
    sample = v[:: max(1, len(v) // 20000)]
    for d in range(10):
        scaled = sample * 10.0**d
        # text parsed to float64 is exact to ~1e-16 relative: anything larger is a digit
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-13 * np.abs(scaled) + 1e-6):
            return 10.0**-d, f"{d} decimals in the source text"
    return None, ""


@dataclass
class SessionArrays:
    """What :func:`to_session` hands to the session writer.

    Attributes
    ----------
    counts
        int32 ``(n_samples, n_channels)``; µV = (counts - offset_counts) * uv_per_count.
    fs, tick, montage, markers, meta
        Sample rate, tick of every row, montage (original names as labels, muscle
        ``"other"``), markers (kind ``"import"``) and the ``import`` metadata block.
    uv_per_count, offset_counts
        Per channel scale and offset.
    max_error
        Per channel, the largest difference between the source value and its quantised
        copy, in the source's units.
    """

    counts: np.ndarray
    fs: float
    tick: np.ndarray
    montage: Montage
    uv_per_count: np.ndarray
    offset_counts: np.ndarray
    markers: list[Marker]
    meta: dict[str, Any]
    max_error: np.ndarray


def import_montage(names: Sequence[str], muscles: Sequence[str] | None = None,
                   sides: Sequence[str] | None = None) -> Montage:
    """Montage for imported channels: labels = original names (made unique), muscle
    ``"other"`` and sides alternating left/right unless the source names known muscles
    and sides (emgfb's own exports do), no affected side."""
    labels: list[str] = []
    for i, name in enumerate(names):
        label = str(name).strip() or f"CH{i + 1}"
        while label in labels:
            label = f"{label}_{i + 1}"
        labels.append(label)
    if (muscles is not None and sides is not None and len(muscles) == len(labels)
            and len(sides) == len(labels) and all(m in MUSCLES for m in muscles)
            and all(s in SIDES for s in sides)):
        roles = list(zip(muscles, sides, strict=True))
    else:
        roles = [("other", SIDES[i % 2]) for i in range(len(labels))]
    chans = tuple(Channel(lab, m, s) for lab, (m, s) in zip(labels, roles, strict=True))
    return Montage("imported", chans, "none")


def session_arrays(rec: ImportedRecording) -> SessionArrays:
    """Quantise an import to int32 counts and build the session's metadata.

    Each channel gets the step from :func:`choose_quantum` (ADC counts stay exact, decimal
    text keeps its printed resolution, binary floats a power-of-two step); the step times
    the channel's µV-per-unit is the session's ``uv_per_count``. Channels without a known
    µV scale keep their unit numerically (noted in the metadata).
    """
    n_ch = rec.n_channels
    counts = np.empty((rec.n_samples, n_ch), dtype=np.int32)
    uv_per_count = np.empty(n_ch)
    offset = np.empty(n_ch)
    max_err = np.zeros(n_ch)
    how: list[str] = []
    for ch in range(n_ch):
        x = rec.data[:, ch]
        step, why = choose_quantum(x, rec.quantum[ch])
        q = np.round(x / step)
        counts[:, ch] = q.astype(np.int32)
        if len(x):
            max_err[ch] = float(np.max(np.abs(q * step - x)))
        k = rec.uv_per_unit[ch]
        uv_per_count[ch] = step * (1.0 if k is None else k)
        offset[ch] = rec.offset[ch] / step
        how.append(f"{rec.channel_names[ch]}: {step:.6g} {rec.units[ch]} per count ({why})")
    montage = import_montage(rec.channel_names, rec.header.get("muscles"),
                             rec.header.get("sides"))
    markers = [Marker(int(t), str(label), "import") for t, label in rec.markers]
    meta: dict[str, Any] = {
        "notes": f"Imported from {rec.source_path.name if rec.source_path else '?'} "
                 f"({rec.source_format}). " + " ".join(n.rstrip(".") + "." for n in rec.notes),
        "import": {
            "source_format": rec.source_format,
            "source_file": rec.source_path.name if rec.source_path else "",
            "channel_names": list(rec.channel_names),
            "units": list(rec.units),
            "uv_scale_known": [k is not None for k in rec.uv_per_unit],
            "quantisation": how,
            "max_quantisation_error": max_err.tolist(),
            "nominal_fs": rec.nominal_fs,
            "detected_fs": rec.fs,
            "start_time": rec.start_time,
            "notes": list(rec.notes),
            "source_header": _json_safe(rec.header),
        }
    }
    if rec.start_time and rec.start_time.endswith("Z"):
        meta["start_time_utc"] = rec.start_time
    else:
        meta["notes"] += (" The source gives no UTC start time"
                          + (f" (local time {rec.start_time})" if rec.start_time else "")
                          + ": start_time_utc is the time of the import.")
    return SessionArrays(counts, rec.fs, rec.tick.astype(np.int64), montage, uv_per_count,
                         offset, markers, meta, max_err)


def _json_safe(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=lambda o: jsonable(o) if not isinstance(
        o, (set, tuple)) else list(o)))


def to_session(rec: ImportedRecording, path: str | Path) -> Path:
    """Write ``rec`` as an emgfb HDF5 session at ``path`` (never overwrites).

    Returns
    -------
    Path
        The file written.
    """
    from emgfb.recording import write_arrays

    arr = session_arrays(rec)
    return write_arrays(
        path, arr.counts, arr.fs, arr.montage, arr.uv_per_count, arr.offset_counts,
        tick=arr.tick, markers=arr.markers, meta=arr.meta,
    )
