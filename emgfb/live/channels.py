"""The channel set-up of one run, resolved once: montage, counts-to-µV scale, front-end.

This module owns :class:`ChannelSetup` and :func:`resolve_channels`, the single place where
a started source, an optional montage and a front-end become the channels a run records
and processes. Live sessions, headless guided sessions, ``emgfb record`` and LSL output all
call it, so the front-end check (which refuses a combination that cannot work) is never
skipped. Imports ``acquisition.source``, ``config``, ``hardware``, ``montage``, ``records``
and ``errors``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emgfb.acquisition.source import Source
from emgfb.config import FrontendSpec, load_frontend
from emgfb.errors import ConfigError
from emgfb.montage import Montage, default_montage, load_montage
from emgfb.records import BoardInfo


@dataclass(frozen=True)
class ChannelSetup:
    """What one run needs to know about its channels.

    Attributes
    ----------
    info
        The board's identification.
    montage
        Which muscle and side each channel records.
    uv_per_count, offset_counts
        ``uv = (counts - offset_counts) * uv_per_count``: a float when all channels agree,
        else one per channel.
    frontend
        The front-end descriptor (its scale is used only when the source knows none).
    scale_from_source
        True when the source gave its own scale (simulated board, replay, ``lsl://``).
    """

    info: BoardInfo
    montage: Montage
    uv_per_count: Any
    offset_counts: Any
    frontend: FrontendSpec
    scale_from_source: bool

    @property
    def fs(self) -> float:
        """Nominal sample rate (Hz)."""
        return float(self.info.fs)

    @property
    def n_channels(self) -> int:
        """Channel count."""
        return int(self.info.n_channels)

    def frontend_meta(self, electrodes: str = "") -> dict[str, Any]:
        """Front-end and electrode details for a recording's ``frontend`` attribute."""
        fe = self.frontend
        return {"name": fe.name, "gain": fe.gain, "band_hz": list(fe.band_hz),
                "offset_mv": fe.offset_mv, "electrodes": electrodes}


def resolve_channels(
    source: Source,
    montage: Montage | str | Path | None = None,
    frontend: FrontendSpec | str | Path = "bioamp",
) -> ChannelSetup:
    """The channel set-up of a started source.

    Parameters
    ----------
    source
        A started source (its :attr:`~Source.info` is known).
    montage
        A montage, montage name or TOML path; default: the source's own montage, else the
        bundled montage for its channel count.
    frontend
        Front-end name, TOML path or spec. Its scale applies when the source knows none;
        then :func:`emgfb.hardware.check_frontend` refuses a combination that cannot work
        and logs warnings for doubtful ones.

    Raises
    ------
    ConfigError
        If the montage's channel count differs from the source's, or a file is bad.
    """
    info = source.info
    n = int(info.n_channels)
    if isinstance(montage, Montage):
        mont = montage
    elif montage is not None:
        mont = load_montage(montage)
    else:
        mont = source.montage or default_montage(n)
    if mont.n_channels != n:
        raise ConfigError(f"montage {mont.name!r} has {mont.n_channels} channels, the source "
                          f"{source.url or type(source).__name__} sends {n}")
    fe = frontend if isinstance(frontend, FrontendSpec) else load_frontend(frontend)
    own = source.scale()
    if own is not None:
        upc, off = own
    else:
        from emgfb.hardware import check_frontend  # refuses what cannot work, logs warnings

        check_frontend(fe, bits=info.bits, vref_mv=info.vref_mv, fs=info.fs, board=info.board)
        upc, off = fe.uv_per_count(info.bits, info.vref_mv), fe.offset_counts(info.bits,
                                                                              info.vref_mv)
    return ChannelSetup(info, mont, _scalar_or_array(upc), _scalar_or_array(off), fe,
                        own is not None)


def _scalar_or_array(value: Any) -> float | np.ndarray:
    """A per-channel scale as a float when all channels agree, else a float array."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0 or np.all(arr == arr.flat[0]):
        return float(arr.flat[0])
    return arr
