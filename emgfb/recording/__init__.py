"""Recording: HDF5 sessions (format v1), replay as a source, import from and export to peers.

Owns the on-disk session format (:mod:`~emgfb.recording.schema`, documented in
``docs/file-format.md``), the threaded crash-safe :class:`SessionWriter` and the one-shot
:func:`write_arrays`, the read-only :func:`open_recording`, and the ``file://`` replay
:class:`~emgfb.recording.replay.ReplaySource`. Importers and exporters live in their own
modules. Imports ``errors``, ``protocol``, ``config``, ``montage`` and the ``Chunk`` /
``Marker`` records of ``acquisition.source``; never the GUI.
"""

from emgfb.recording.reader import Recording, open_recording
from emgfb.recording.schema import FORMAT_NAME, FORMAT_VERSION, check_subject
from emgfb.recording.writer import SessionWriter, write_arrays

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Recording",
    "SessionWriter",
    "check_subject",
    "open_recording",
    "write_arrays",
]
