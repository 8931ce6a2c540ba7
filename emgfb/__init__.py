"""emgfb: surface-EMG biofeedback for facial neuromuscular retraining.

The package is organised in rooms, each a module or subpackage that imports only rooms
below it:

1. Ground floor, importing nothing of emgfb but ``errors``: ``errors`` (the exception
   hierarchy), ``records`` (the data records every room passes around: ``Chunk``,
   ``Marker``, ``BoardInfo``, ``SourceStats``), ``worker`` (the one thread lifecycle),
   ``interrupts`` (Ctrl-C and SIGTERM as one exception), ``limits`` (every bounded number,
   declared once), ``outputs`` (the one rule for writing a file), ``delimited`` (the one
   CSV/TSV tokenizer), ``meter`` (progress of long offline work).
2. ``protocol`` (wire protocol v1 and the confirming frame decoder), ``config`` (TOML
   loading and validation; bundled configs in ``emgfb/configs``), ``montage``,
   ``hardware`` (boards and front-ends).
3. ``acquisition`` (the ``Source`` interface and its declared capabilities; serial driver;
   simulated face; board emulator, fault plan and pty/TCP transports; LSL inlet; ring
   buffer) and ``dsp`` (stages, pipeline, mains canceller, channel state, sample-rate
   estimate, calibration, metrics).
4. ``recording`` (HDF5 sessions: writer, reader, ``file://`` replay; importers, EDF/BDF,
   CSV and BIDS export) and ``lsl_out``.
5. ``live`` - one run wired together: channel set-up, the source pump, sinks (recording,
   LSL) fed before processing, the stream hub, playback control, one status snapshot.
6. ``exercises`` - protocols, the runner, scoring, autopilot patient, reports.
7. ``gui`` (PyQt5 + pyqtgraph) and ``cli`` (thin subcommands).

The library never imports the GUI.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("emgfb")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.1.0"
