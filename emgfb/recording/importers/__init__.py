"""Importers: read recordings written by peer tools into one in-memory form, then a session.

One module per format, each exposing ``sniff(head) -> bool`` (the first 4 KiB of a file)
and ``read(path, fs=None) -> ImportedRecording`` as a :class:`~.base.Format` in
:data:`REGISTRY`: OpenBCI GUI raw text (:mod:`.openbci`), BrainFlow CSV (:mod:`.brainflow`,
board-aware with the optional ``brainflow`` package), Chords-Python CSV (:mod:`.chords`),
PLUX OpenSignals text and HDF5 (:mod:`.opensignals`), LabRecorder XDF (:mod:`.xdf`),
Backyard Brains WAV (:mod:`.wav`), EDF+/BDF+ (:mod:`.edf`), emgfb's own CSV export and
generic delimited text (:mod:`.table`). Shared helpers live in :mod:`.base`; the
conversion to an emgfb HDF5 session in :mod:`.session`. Text is tokenized by
:mod:`emgfb.delimited`. Imports ``errors``, ``delimited``, ``montage``,
``records`` (:class:`Marker` only), ``recording`` (the session writer), numpy,
h5py, pyxdf and edfio; never the GUI.

Rules every reader follows:

* The sample rate is *detected* where the file has timestamps, over the whole file
  (``(last tick - first tick) / (last time - first time)``): OpenBCI and BrainFlow stamp
  samples in packet batches, so consecutive differences say nothing. A rate given in the
  file's header (or the tool's known rate) is kept when the detected one agrees within
  0.05 %; otherwise the detected one wins and a note says so.
* Sample counters (OpenBCI ``Sample Index``, BrainFlow package number, Chords ``Counter``,
  OpenSignals ``nSeq``) are unwrapped; a step larger than one is a gap of lost samples,
  kept as a gap in :attr:`ImportedRecording.tick`, never joined. Rows without values
  (``NULL``, empty, ``NaN``) are gaps too.
* Everything that could not be carried over (extra columns, unknown units, time zones)
  is listed, in plain words, in :attr:`ImportedRecording.notes`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from emgfb.errors import DataFormatError
from emgfb.recording.importers import (
    brainflow,
    chords,
    edf,
    openbci,
    opensignals,
    table,
    wav,
    xdf,
)
from emgfb.recording.importers.base import (
    HDF5_MAGIC,
    Format,
    ImportedRecording,
    check_file,
    rate_from_timestamps,
    ticks_from_counter,
)
from emgfb.recording.importers.session import (
    SessionArrays,
    choose_quantum,
    import_montage,
    session_arrays,
    to_session,
)

log = logging.getLogger(__name__)

#: Every importer, in the order :func:`detect_format` asks them.
REGISTRY: tuple[Format, ...] = (
    table.EXPORT_FORMAT,
    opensignals.FORMAT,
    openbci.FORMAT,
    xdf.FORMAT,
    wav.FORMAT,
    edf.FORMAT,
    chords.FORMAT,
    brainflow.FORMAT,
    table.FORMAT,
)
#: Format names accepted by :func:`read_any` / ``emgfb import --format``.
FORMATS = tuple(f.name for f in REGISTRY)
READERS = {f.name: f.read for f in REGISTRY}

__all__ = [
    "FORMATS",
    "READERS",
    "REGISTRY",
    "Format",
    "ImportedRecording",
    "SessionArrays",
    "choose_quantum",
    "detect_format",
    "import_montage",
    "rate_from_timestamps",
    "read_any",
    "session_arrays",
    "ticks_from_counter",
    "to_session",
]


def detect_format(path: str | Path) -> str:
    """Name the format of ``path`` from its content (not its extension).

    Raises
    ------
    DataFormatError
        When no importer recognises the content, or the file is an emgfb session.
    """
    path = check_file(path)
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head.startswith(HDF5_MAGIC):
        _refuse_emgfb_session(path)
    for fmt in REGISTRY:
        if fmt.sniff(head):
            return fmt.name
    if b"\x00" in head:
        raise DataFormatError(f"{path}: binary file of unknown format; expected text, HDF5, "
                              "XDF, WAV, EDF or BDF")
    text = head.decode("utf-8-sig", errors="replace").strip()
    shown = text.splitlines()[0][:60] if text else ""
    raise DataFormatError(f"{path}: first line {shown!r}: no importer recognises it; expected "
                          f"one of {', '.join(FORMATS)} (use --format)")


def _refuse_emgfb_session(path: Path) -> None:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if any(isinstance(g, h5py.Group) and "raw" in g for g in f.values()):
                return
            if "emgfb" in str(dict(f.attrs)).lower():
                raise DataFormatError(f"{path}: is already an emgfb session; nothing to import")
    except OSError as exc:
        raise DataFormatError(f"{path}: HDF5 signature but unreadable ({exc})") from None
    raise DataFormatError(f"{path}: HDF5 file without OpenSignals device groups; cannot "
                          "import it")


def read_any(path: str | Path, fmt: str = "auto", fs: float | None = None) -> ImportedRecording:
    """Read ``path`` with the importer for ``fmt`` (``"auto"`` sniffs the content).

    Parameters
    ----------
    path
        Input file.
    fmt
        ``"auto"`` or one of :data:`FORMATS`.
    fs
        Sample rate in Hz, overriding what the file says (required for files without
        timestamps or rate, e.g. the new Chords layout).
    """
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt not in READERS:
        raise DataFormatError(f"--format {fmt!r}: expected auto or one of {', '.join(FORMATS)}")
    rec = READERS[fmt](path, fs)
    log.info("imported %s as %s: %d x %d at %.3f Hz", path, fmt, rec.n_samples,
             rec.n_channels, rec.fs)
    return rec
