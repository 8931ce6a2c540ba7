"""Acquisition: getting frames from a board (real, simulated or replayed) to the host.

Owns the :class:`~emgfb.acquisition.source.Source` interface and its implementations
(serial driver, simulated board, virtual board on a pseudo-terminal), port discovery and
the ring buffer between acquisition and its readers. Imports ``protocol``, ``config``,
``montage`` and ``errors``; never DSP or the GUI.
"""

from emgfb.acquisition.source import Chunk, Marker, Source, SourceStats, open_source

__all__ = ["Chunk", "Marker", "Source", "SourceStats", "open_source"]
