"""emgfb: surface-EMG biofeedback for facial neuromuscular retraining.

The package is organised in rooms, each a module or subpackage that imports only rooms
below it:

1. ``errors`` - the exception hierarchy.
2. ``protocol`` (wire protocol v1), ``config`` (TOML loading and validation), ``montage``
   (which muscle and side each channel records), ``hardware`` (boards and front-ends),
   ``delimited`` (the one CSV/TSV tokenizer every text reader uses).
3. ``acquisition`` (sources, serial driver, simulated boards, LSL inlet, ring buffer) and
   ``dsp`` (stages, pipeline, calibration, metrics, signal quality).
4. ``recording`` (HDF5 sessions, ``file://`` replay, import/export) and ``lsl_out``.
5. ``live`` - one live run wired together on a worker thread.
6. ``exercises`` - protocols, the runner, scoring, autopilot patient, reports.
7. ``gui`` (PyQt5 + pyqtgraph) and ``cli`` (thin subcommands).

The library never imports the GUI.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("emgfb")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.1.0"
