"""A streaming EDF+/BDF+ (continuous, ``EDF+C``/``BDF+C``) writer.

This module owns the EDF+ file layout: the 256-byte header plus 256 bytes per signal, data
records holding every signal's samples of one record duration (16-bit little-endian for
EDF, 24-bit for BDF) followed by the ``EDF Annotations`` signal (time-stamped annotation
lists, TALs), the per-channel mapping between values and digital numbers
(:class:`ChannelScale`), and the 8-character number fields. Data are written record block
by record block (:meth:`EdfWriter.write`), so memory does not grow with the file.

Why not a library: edfio (which reads these files back in the tests, sub-second start
included) builds the whole file in memory before writing (every signal's digital array
plus one array of all data records), and pyedflib's release cannot write a sub-second
start. The layout follows the EDF+ specification (edfplus.info):

* the start time's sub-second part is the onset of the first data record's timekeeping
  TAL (``+0.367``), every later record's onset adds the record duration, and annotation
  onsets count from the start time *including* that fraction;
* the recording field reads ``Startdate dd-MMM-yyyy <admin> <technician> <equipment>``
  (``Startdate X`` when the date is unknown), the patient field ``<code> <sex> <birthdate>
  <name>`` with ``X`` for what is not given.

Imports numpy and ``errors`` only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np

from emgfb.errors import RecordingError

#: Digital range of a signal sample.
DIGITAL = {"edf": (-32768, 32767), "bdf": (-8388608, 8388607)}
_BYTES = {"edf": 2, "bdf": 3}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV",
           "DEC")
#: Annotation text for samples that were not acquired (gaps, padding): MNE, EDFbrowser and
#: BIDS tools exclude spans so annotated.
SKIP = "BAD_ACQ_SKIP"


def field8(x: float) -> str:
    """``x`` as EDF's 8-character number field (shortest exact text, else rounded).

    Raises
    ------
    RecordingError
        If the integer part alone needs more than 8 characters.
    """
    x = fmt8(x)
    for digits in range(0, 8):
        text = f"{x:.{digits}f}"
        if len(text) > 8:
            break
        if float(text) == x:
            return text
    text = f"{x:.8f}"[:8].rstrip(".")
    return text


def fmt8(x: float, outward: int = 0) -> float:
    """``x`` as EDF stores it in 8 characters (rounded away from the data if ``outward``:
    -1 for a minimum, +1 for a maximum)."""
    s = f"{x:.8g}"
    if len(s) <= 8 and "e" not in s:
        return float(s)
    int_len = len(f"{int(abs(x))}") + (1 if x < 0 else 0)
    if int_len > 8:
        raise RecordingError(f"physical value {x!r} does not fit EDF's 8-character field")
    digits = 8 - int_len - 1
    if digits <= 0:
        return float(math.floor(x) if outward < 0 else math.ceil(x) if outward > 0
                     else round(x))
    q = 10.0**-digits
    v = x / q
    v = math.floor(v) if outward < 0 else math.ceil(v) if outward > 0 else round(v)
    return round(v * q, digits)


def _short(x: float) -> str | None:
    """The shortest decimal text (<= 8 characters) equal to ``x``, or None."""
    for digits in range(0, 8):
        text = f"{x:.{digits}f}"
        if len(text) > 8:
            return None
        if abs(float(text) - x) <= 1e-9 * max(1.0, abs(x)):
            return text
    return None


@dataclass
class ChannelScale:
    """How one channel's values become digital numbers.

    Exact (``step is None``): integer counts ``c`` are stored as ``c - shift`` and the
    header's physical range makes a reader compute ``a * c + b``. Rescaled: finite values
    are spread over the whole digital range with ``step`` per digital unit.

    Attributes
    ----------
    a, b
        Physical value of a count: ``a * counts + b`` (exact path).
    shift
        Subtracted from counts to fit the digital range (exact path).
    pmin, pmax, dmin, dmax
        Header fields (physical values already as the 8-character fields hold them).
    step
        Physical units per digital unit of a rescaled channel, None when exact.
    fill
        Digital number of 0 (the value written where nothing was acquired).
    error
        Largest difference a reader sees from the header's 8-character rounding.
    """

    a: float
    b: float
    shift: int
    pmin: float
    pmax: float
    dmin: int
    dmax: int
    step: float | None
    fill: int
    error: float = 0.0

    @classmethod
    def exact(cls, a: float, b: float, lo: int, hi: int, dig: tuple[int, int]
              ) -> ChannelScale | None:
        """Counts in ``[lo, hi]`` stored exactly, or None when they cannot be (the span
        with 0 included does not fit, or 0 is not a whole count)."""
        if a == 0:
            return None
        zero = -b / a
        if not float(zero).is_integer():
            return None
        lo, hi = min(lo, int(zero)), max(hi, int(zero))
        if hi == lo:
            hi = lo + 1
        if hi - lo > dig[1] - dig[0]:
            return None
        room = dig[1] - dig[0] - (hi - lo)
        reach = min(room // 2, 10_000)
        lo = next((lo - k for k in range(reach + 1) if _short(a * (lo - k) + b)), lo)
        hi = next((hi + k for k in range(reach + 1) if _short(a * (hi + k) + b)), hi)
        shift = 0 if (lo >= dig[0] and hi <= dig[1]) else lo - dig[0]
        pmin, pmax = a * lo + b, a * hi + b
        spmin, spmax = fmt8(pmin), fmt8(pmax)
        error = max(abs(spmin - pmin), abs(spmax - pmax))
        return cls(a, b, shift, spmin, spmax, lo - shift, hi - shift, None,
                   int(zero) - shift, error)

    @classmethod
    def rescaled(cls, lo_v: float, hi_v: float, dig: tuple[int, int]) -> ChannelScale:
        """Values in ``[lo_v, hi_v]`` (0 included) over the whole digital range."""
        lo_v, hi_v = min(lo_v, 0.0), max(hi_v, 0.0)
        if hi_v == lo_v:
            hi_v = lo_v + 1.0
        pmin, pmax = fmt8(lo_v, -1), fmt8(hi_v, +1)
        step = (pmax - pmin) / (dig[1] - dig[0])
        return cls(1.0, 0.0, 0, pmin, pmax, dig[0], dig[1], step,
                   int(round(-pmin / step)) + dig[0])

    def digital(self, values: np.ndarray) -> np.ndarray:
        """Digital numbers (int64) of counts (exact) or values (rescaled; NaN -> 0)."""
        if self.step is None:
            return np.asarray(values, np.int64) - self.shift
        v = np.where(np.isfinite(values), values, 0.0)
        return np.clip(np.round((v - self.pmin) / self.step) + self.dmin, self.dmin,
                       self.dmax).astype(np.int64)


@dataclass(frozen=True)
class Signal:
    """Header fields of one signal."""

    label: str
    dimension: str
    scale: ChannelScale
    transducer: str = ""
    prefilter: str = ""


def _ascii(text: str, width: int) -> bytes:
    """``text`` as a space-padded ASCII header field (other characters become ``_``)."""
    clean = "".join(c if 32 <= ord(c) < 127 else "_" for c in str(text))
    return clean[:width].ljust(width).encode("ascii")


def _tal(onset: float, duration: float | None, texts: Sequence[str]) -> bytes:
    """One time-stamped annotation list (``+onset[\x15duration]\x14text\x14...\x00``)."""
    head = f"{onset:+.6f}".rstrip("0").rstrip(".")
    if duration is not None and duration > 0:
        head += "\x15" + f"{duration:.6f}".rstrip("0").rstrip(".")
    body = "".join(t.translate(_TAL_SAFE) + "\x14" for t in texts) or "\x14"
    return (head + "\x14" + body + "\x00").encode("utf-8")


_TAL_SAFE = str.maketrans({"\x14": " ", "\x15": " ", "\x00": " "})


class EdfWriter:
    """Write an EDF+C or BDF+C file record block by record block.

    Lifecycle: construct with every header field and all annotations (they are few and
    must be laid out per record before the first record is written), call :meth:`write`
    with consecutive blocks of whole data records, then :meth:`close` (or use ``with``).
    :meth:`close` checks that exactly ``n_records`` records were written.

    Parameters
    ----------
    path
        The file to create (the caller owns temporary names and renaming).
    kind
        ``"edf"`` or ``"bdf"``.
    signals
        One :class:`Signal` per channel, all at ``samples_per_record`` per record.
    samples_per_record, record_duration
        Samples of each signal in one data record and its duration in seconds.
    n_records
        Data records the file will hold.
    start
        Start date and time (naive, microseconds kept), or None when unknown.
    patient, recording_equipment
        Pseudonymous patient code (``X`` for none) and equipment code.
    annotations
        ``(onset_s, duration_s or None, text)`` from the start time.
    """

    def __init__(self, path: Path, kind: str, signals: Sequence[Signal],
                 samples_per_record: int, record_duration: float, n_records: int,
                 start: datetime | None, patient: str = "X", recording_equipment: str = "emgfb",
                 annotations: Iterable[tuple[float, float | None, str]] = ()) -> None:
        if kind not in DIGITAL:
            raise ValueError(f"kind = {kind!r}: expected 'edf' or 'bdf'")
        self.kind, self.signals = kind, list(signals)
        self.spr, self.duration, self.n_records = samples_per_record, record_duration, n_records
        self.start = start
        self._bytes = _BYTES[kind]
        self._sub = (start.microsecond / 1e6) if start is not None else 0.0
        self._layout_annotations(list(annotations))
        self._written = 0
        self._fh: BinaryIO = path.open("wb")
        try:
            self._fh.write(self._header(patient, recording_equipment))
        except BaseException:
            self._fh.close()
            raise

    # -- layout ----------------------------------------------------------------------------
    def _layout_annotations(self, annotations: list[tuple[float, float | None, str]]
                            ) -> None:
        """Put each annotation in the record its onset falls in; size the annotation
        signal for the fullest record."""
        self._per_record: dict[int, list[bytes]] = {}
        for onset, dur, text in sorted(annotations, key=lambda a: a[0]):
            r = min(self.n_records - 1, max(0, int(onset // self.duration)))
            self._per_record.setdefault(r, []).append(_tal(onset + self._sub, dur, [text]))
        longest = max([len(self._timekeeping(self.n_records - 1))]
                      + [len(self._timekeeping(r)) + sum(map(len, v))
                         for r, v in self._per_record.items()])
        self._ann_samples = -(-longest // self._bytes)

    def _timekeeping(self, r: int) -> bytes:
        return _tal(r * self.duration + self._sub, None, [])

    def _annotation_bytes(self, r: int) -> bytes:
        raw = self._timekeeping(r) + b"".join(self._per_record.get(r, []))
        return raw.ljust(self._ann_samples * self._bytes, b"\x00")

    def _header(self, patient: str, equipment: str) -> bytes:
        n = len(self.signals) + 1
        if self.start is not None:
            s = self.start
            date = f"{s.day:02d}-{_MONTHS[s.month - 1]}-{s.year:04d}"
            hdate, htime = f"{s.day:02d}.{s.month:02d}.{s.year % 100:02d}", s.strftime(
                "%H.%M.%S")
        else:
            date, hdate, htime = "X", "01.01.85", "00.00.00"
        version = b"0       " if self.kind == "edf" else b"\xffBIOSEMI"
        head = [
            version,
            _ascii(f"{patient or 'X'} X X X", 80),
            _ascii(f"Startdate {date} X X {equipment}", 80),
            _ascii(hdate, 8), _ascii(htime, 8),
            _ascii(str(256 * (n + 1)), 8),
            _ascii("EDF+C" if self.kind == "edf" else "BDF+C", 44),
            _ascii(str(self.n_records), 8),
            _ascii(field8(self.duration), 8),
            _ascii(str(n), 4),
        ]
        dig_ann = DIGITAL[self.kind]
        ann = "EDF Annotations" if self.kind == "edf" else "BDF Annotations"
        rows: list[list[bytes]] = [
            [_ascii(s.label, 16) for s in self.signals] + [_ascii(ann, 16)],
            [_ascii(s.transducer, 80) for s in self.signals] + [_ascii("", 80)],
            [_ascii(s.dimension, 8) for s in self.signals] + [_ascii("", 8)],
            [_ascii(field8(s.scale.pmin), 8) for s in self.signals] + [_ascii("-1", 8)],
            [_ascii(field8(s.scale.pmax), 8) for s in self.signals] + [_ascii("1", 8)],
            [_ascii(str(s.scale.dmin), 8) for s in self.signals]
            + [_ascii(str(dig_ann[0]), 8)],
            [_ascii(str(s.scale.dmax), 8) for s in self.signals]
            + [_ascii(str(dig_ann[1]), 8)],
            [_ascii(s.prefilter, 80) for s in self.signals] + [_ascii("", 80)],
            [_ascii(str(self.spr), 8) for _ in self.signals]
            + [_ascii(str(self._ann_samples), 8)],
            [_ascii("", 32) for _ in range(n)],
        ]
        out = b"".join(head) + b"".join(b"".join(r) for r in rows)
        assert len(out) == 256 * (n + 1)
        return out

    # -- data --------------------------------------------------------------------------------
    def write(self, digital: np.ndarray) -> None:
        """Append whole data records: ``digital`` is ``(k * samples_per_record,
        n_signals)`` digital numbers (within each signal's range)."""
        n_ch = len(self.signals)
        k = len(digital) // self.spr
        if len(digital) != k * self.spr or digital.shape[1] != n_ch:
            raise ValueError(f"block of shape {digital.shape}: expected whole records of "
                             f"{self.spr} x {n_ch}")
        if self._written + k > self.n_records:
            raise ValueError(f"{self._written + k} records written, the header says "
                             f"{self.n_records}")
        rec = np.ascontiguousarray(
            np.asarray(digital).reshape(k, self.spr, n_ch).transpose(0, 2, 1))
        if self.kind == "edf":
            data = rec.astype("<i2").view(np.uint8).reshape(k, -1)
        else:
            data = rec.astype("<i4").view(np.uint8).reshape(k, -1, 4)[:, :, :3].reshape(k, -1)
        ann = np.frombuffer(b"".join(self._annotation_bytes(self._written + r)
                                     for r in range(k)), np.uint8).reshape(k, -1)
        np.concatenate((data, ann), axis=1).tofile(self._fh)
        self._written += k

    def close(self) -> None:
        """Close the file; raises if fewer records were written than the header says."""
        if self._fh.closed:
            return
        self._fh.close()
        if self._written != self.n_records:
            raise RecordingError(f"{self._fh.name}: {self._written} data records written, "
                                 f"the header says {self.n_records}")

    def __enter__(self) -> EdfWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None:
            self._fh.close()
        else:
            self.close()
