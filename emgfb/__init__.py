"""emgfb: surface-EMG biofeedback for facial neuromuscular retraining.

The package is organised in rooms, each a module or subpackage that imports only rooms
below it:

1. ``errors`` - the exception hierarchy.
2. ``protocol`` (wire protocol v1), ``config`` (TOML loading and validation), ``montage``
   (which muscle and side each channel records).
3. ``acquisition`` (sources, serial driver, simulated board, ring buffer), ``dsp``
   (stages, pipeline, metrics, signal quality) and ``recording`` (HDF5 sessions, replay,
   import/export).
4. ``cli`` - thin subcommands over the library.

The library never imports the GUI.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("emgfb")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.1.0"
