"""HDF5 session format v1: every name, dtype and rule of the on-disk layout, in one place.

This module owns the vocabulary shared by the writer, the reader, replay and the importers:
group/dataset/attribute names, the compound dtypes of the small tables, the pseudonymous
subject-code rule, JSON (de)serialisation of metadata attributes and the gap/marker
arithmetic that maps absolute ticks to sample indices. ``docs/file-format.md`` documents
the same names for people. Imports ``errors``, ``montage``, ``protocol`` and numpy only
(no h5py, so it is cheap to import).
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from emgfb.errors import ConfigError
from emgfb.montage import Channel, Montage
from emgfb.protocol import BoardInfo

FORMAT_NAME = "emgfb-session"
FORMAT_VERSION = 1
#: HDF5 file-format bounds: the 1.10 format (superblock v3, SWMR) so that every HDF5
#: library since 1.10 reads the files. ``"latest"`` would follow the library h5py bundles
#: (HDF5 2.0's formats are unreadable by 1.10 and 1.14).
LIBVER = ("v110", "v110")

# Paths inside the file
RAW = "raw"
COUNTS = "raw/counts"
TICK = "raw/tick"
HOST_TIME = "raw/host_time"
GAPS = "raw/gaps"
OVERRUN = "raw/overrun"
#: The rows of the chunk a live recording is filling (see docs/file-format.md): only a
#: crashed file needs them.
TAIL_COUNTS = "raw/tail_counts"
TAIL_TICK = "raw/tail_tick"
CHANNELS = "channels"
MARKERS = "markers"
CALIBRATION = "calibration"
CALIBRATION_JSON = "calibration/json"
EXERCISES = "exercises"
#: JSON documents a session can hold: name -> byte dataset. All are created with the file
#: (nothing can be created once it is in SWMR mode) and may stay empty.
DOCUMENTS = {
    "calibration": CALIBRATION_JSON,
    "protocol": "exercises/protocol",
    "scores": "exercises/scores",
    # the source's integrity counters at the end (frames, lost ticks, CRC errors, suspect
    # frames, reconnects, ...: emgfb.records.SourceStats)
    "link": "acquisition/link",
    # the board's true sample rate measured from host receive times (emgfb.dsp.clock:
    # nominal_fs, estimated, fs_hz, ppm, uncertainty_ppm, span_s, ... or reason)
    "clock": "acquisition/clock",
}
ENVELOPES = "envelopes"
ENVELOPE_DATA = "envelopes/data"

#: Fill value of ``raw/tick``: rows still holding it were never written (crash tail).
TICK_FILL = -1

#: Raw count dtypes a session may hold: boards send uint16, importers may need int32.
COUNT_DTYPES = (np.dtype("uint16"), np.dtype("int32"))

MARKER_KIND_BYTES = 32
MARKER_LABEL_BYTES = 256

HOST_TIME_DTYPE = np.dtype([("sample", "<i8"), ("time", "<f8")])
GAP_DTYPE = np.dtype([("start_sample", "<i8"), ("lost_ticks", "<i8")])
MARKER_DTYPE = np.dtype(
    [
        ("tick", "<i8"),
        ("sample", "<i8"),
        ("kind", f"S{MARKER_KIND_BYTES}"),
        ("label", f"S{MARKER_LABEL_BYTES}"),
    ]
)

#: Root attributes stored as JSON strings (decoded by the reader).
JSON_ATTRS = ("montage", "board", "frontend", "dsp_config", "extra")

_SUBJECT_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def check_subject(subject: str) -> str:
    """Validate a pseudonymous subject code and return it.

    A code is 1-32 letters, digits, ``-`` or ``_`` and contains at least one digit
    (``P007``, ``S-12``, ``pt_03``); the empty string means "not given". Anything that
    looks like a person's name (spaces, letters only) is refused, because recordings are
    personal health data and must stay pseudonymous (DOMAIN.md §7).

    Raises
    ------
    ConfigError
        If ``subject`` is not such a code.
    """
    if subject == "":
        return subject
    if not _SUBJECT_RE.match(subject) or not any(c.isdigit() for c in subject):
        raise ConfigError(
            f"subject = {subject!r}: expected a pseudonymous code of 1-32 letters, digits, "
            "'-' or '_' with at least one digit (e.g. P007), never a name"
        )
    return subject


def to_json(value: Any, what: str) -> str:
    """Serialise metadata to a JSON string; numpy scalars/arrays become plain numbers/lists.

    Raises
    ------
    ConfigError
        If ``value`` cannot be represented as JSON (names ``what``).
    """

    def default(obj: Any) -> Any:
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        if isinstance(obj, set | frozenset | tuple):
            return list(obj)
        raise TypeError(f"{type(obj).__name__} is not JSON serialisable")

    try:
        return json.dumps(value, default=default, allow_nan=True, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what}: cannot be stored as JSON ({exc})") from None


def per_channel(value: Any, n_channels: int, what: str) -> np.ndarray:
    """Broadcast a scalar or per-channel sequence to a float64 array of ``n_channels``.

    Raises
    ------
    ConfigError
        If the value has the wrong length or is not finite.
    """
    try:
        arr = np.broadcast_to(np.asarray(value, dtype=np.float64), (n_channels,)).copy()
    except ValueError:
        raise ConfigError(
            f"{what} = {value!r}: expected one number or {n_channels} (one per channel)"
        ) from None
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"{what} = {value!r}: expected finite numbers")
    return arr


def montage_from_dict(d: dict) -> Montage:
    """Rebuild a :class:`Montage` from :meth:`Montage.as_dict` output."""
    chans = tuple(Channel(c["label"], c["muscle"], c["side"]) for c in d["channels"])
    return Montage(d.get("name", "recorded"), chans, d.get("affected_side", "none"))


def board_from_dict(d: dict | None) -> BoardInfo | None:
    """Rebuild a :class:`BoardInfo` from :meth:`BoardInfo.as_dict` output (``None`` stays)."""
    if not d:
        return None
    return BoardInfo(
        firmware=str(d["firmware"]),
        board=str(d["board"]),
        n_channels=int(d["n_channels"]),
        fs=float(d["fs"]),
        bits=int(d["bits"]),
        vref_mv=float(d["vref_mv"]),
        line=str(d.get("line", "")),
        extra=dict(d.get("extra", {})),
    )


def encode_text(text: str, n_bytes: int) -> bytes:
    """UTF-8 encode ``text`` cut to at most ``n_bytes`` without splitting a character."""
    raw = text.encode("utf-8")
    if len(raw) <= n_bytes:
        return raw
    return raw[:n_bytes].decode("utf-8", errors="ignore").encode("utf-8")


def gap_rows(tick: np.ndarray, first_sample: int, prev_tick: int | None) -> np.ndarray:
    """Gap-table rows for consecutive ticks appended at sample ``first_sample``.

    Parameters
    ----------
    tick
        Absolute ticks of the new samples (strictly increasing).
    first_sample
        Sample index of ``tick[0]`` in the whole session.
    prev_tick
        Tick of the sample just before (``None`` at the start of the session).

    Returns
    -------
    numpy.ndarray
        Rows of :data:`GAP_DTYPE`: the sample index after each jump and the ticks lost.
    """
    tick = np.asarray(tick, dtype=np.int64)
    if len(tick) == 0:
        return np.zeros(0, GAP_DTYPE)
    full = tick if prev_tick is None else np.concatenate(([prev_tick], tick))
    steps = np.diff(full)
    idx = np.flatnonzero(steps > 1)
    rows = np.zeros(len(idx), GAP_DTYPE)
    offset = 0 if prev_tick is None else -1
    rows["start_sample"] = first_sample + idx + 1 + offset
    rows["lost_ticks"] = steps[idx] - 1
    return rows


def tick_to_sample(tick: int | np.ndarray, first_tick: int, gaps: np.ndarray) -> np.ndarray:
    """Map absolute ticks to sample indices using only the first tick and the gap table.

    A tick inside a gap (lost) maps to the first sample after the gap; a tick before the
    session maps to 0.
    """
    tick = np.asarray(tick, dtype=np.int64)
    seg_sample = np.concatenate(([0], gaps["start_sample"])).astype(np.int64)
    lost_before = np.concatenate(([0], np.cumsum(gaps["lost_ticks"]))).astype(np.int64)
    seg_tick = first_tick + seg_sample + lost_before
    k = np.searchsorted(seg_tick, tick, side="right") - 1
    k = np.clip(k, 0, len(seg_tick) - 1)
    sample = seg_sample[k] + (tick - seg_tick[k])
    # inside the gap that precedes segment k+1: clamp to that segment's first sample
    nxt = np.minimum(k + 1, len(seg_sample) - 1)
    end_of_seg = np.where(k + 1 < len(seg_sample), seg_sample[nxt], np.iinfo(np.int64).max)
    sample = np.minimum(sample, end_of_seg)
    return np.maximum(sample, 0)
