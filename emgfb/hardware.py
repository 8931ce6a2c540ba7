"""Supported boards and EMG front-ends, and whether a combination can work for facial sEMG.

This module owns the board descriptors (``emgfb/configs/boards/<name>.toml`` ->
:class:`BoardSpec`, :func:`load_board`), the listing of bundled boards and front-ends, and
the compatibility rules (:func:`check_frontend`, :meth:`BoardSpec.check_rate`): the counts
-> µV scale ``vref / 2**bits / gain`` of a board and front-end, a refusal when the
combination cannot show facial EMG at all, and warnings when it works poorly. The
front-end descriptor itself (:class:`~emgfb.config.FrontendSpec`,
:func:`~emgfb.config.load_frontend`) lives in :mod:`emgfb.config` and is re-exported here.
Imports ``config``, ``errors`` and ``protocol`` only; never Qt.

Rules (DOMAIN.md §3; facial sEMG spans ~20-500 Hz, rest tone is 1-3 µV RMS):

- refused (:class:`~emgfb.errors.ConfigError`): the front-end's upper band edge is below
  50 Hz (it removes the facial EMG band, e.g. an ECG shield's 40 Hz low-pass), or the
  sample rate's Nyquist frequency does not clear both 50 Hz and the front-end's lower edge
  (nothing of the band would be sampled);
- warned: one ADC count is more than 3 µV at the electrode (rest tone below one count:
  invisible), or the front-end passes frequencies above Nyquist (they alias; DOMAIN.md
  asks for 2 kHz where a front-end passes more than 500 Hz).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from emgfb.config import (
    FrontendSpec,
    Table,
    bundled_names,
    load_frontend,
    load_toml,
    resolve_config,
)
from emgfb.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = [
    "MIN_UPPER_EDGE_HZ",
    "REST_TONE_UV",
    "BoardSpec",
    "FrontendCheck",
    "FrontendSpec",
    "board_names",
    "check_frontend",
    "frontend_names",
    "load_board",
    "load_frontend",
]

#: A front-end must pass at least up to here for facial sEMG (Hz).
MIN_UPPER_EDGE_HZ = 50.0
#: Relaxed facial muscle, µV RMS at the electrode: one count must not exceed the top of it.
REST_TONE_UV = (1.0, 3.0)


@dataclass(frozen=True)
class BoardSpec:
    """An acquisition board as described by ``emgfb/configs/boards/<name>.toml``.

    Attributes
    ----------
    name, description
        Identifier (as in the firmware's ``board=`` field) and one line for listings.
    mcu
        Microcontroller (``atmega328p``, ``atmega2560``); also the simavr core.
    adc_bits, vref_mv
        ADC resolution and reference voltage.
    analog_inputs, default_channels
        Analog inputs A0... the firmware can sample, and how many it samples at boot.
    default_fs, baud
        Sample rate at boot (Hz) and serial speed.
    fs_max_hz
        Highest rate the firmware accepts for 1, 2, ... ``analog_inputs`` channels.
    simulated
        The firmware runs in CI in simavr for this board.
    source
        The descriptor file.
    """

    name: str
    description: str
    mcu: str
    adc_bits: int
    vref_mv: float
    analog_inputs: int
    default_channels: int
    default_fs: int
    baud: int
    fs_max_hz: tuple[int, ...]
    simulated: bool = False
    source: str = ""

    def fs_max(self, n_channels: int) -> int:
        """Highest sample rate (Hz) the firmware accepts for ``n_channels`` channels."""
        if not 1 <= n_channels <= self.analog_inputs:
            raise ConfigError(
                f"{self.source or self.name}: {n_channels} channels: the {self.name} has "
                f"analog inputs for 1..{self.analog_inputs}"
            )
        return self.fs_max_hz[n_channels - 1]

    def check_rate(self, fs: float, n_channels: int) -> None:
        """Refuse a rate the firmware would answer with ``ERR`` (one-line ConfigError)."""
        top = self.fs_max(n_channels)
        if not 1 <= fs <= top:
            raise ConfigError(
                f"{self.source or self.name}: fs = {fs:g} Hz with {n_channels} channels: "
                f"the {self.name} firmware accepts 1..{top} Hz at that channel count"
            )

    def uv_per_count(self, frontend: FrontendSpec) -> float:
        """Microvolts at the electrode per count of this board behind ``frontend``."""
        return frontend.uv_per_count(self.adc_bits, self.vref_mv)

    @property
    def pins(self) -> tuple[str, ...]:
        """Analog pin names the firmware samples, channel 0 first."""
        return tuple(f"A{i}" for i in range(self.analog_inputs))


def load_board(name_or_path: str | Path) -> BoardSpec:
    """Load ``emgfb/configs/boards/<name>.toml`` (or a path) as a :class:`BoardSpec`.

    Raises
    ------
    ConfigError
        Unknown name, unreadable file, or a key of the wrong type or range (the message
        names the file, key, value and what was expected).
    """
    path = resolve_config(name_or_path, "boards")
    t = Table(load_toml(path), path)
    t.reject_unknown({
        "name", "description", "mcu", "adc_bits", "vref_mv", "analog_inputs",
        "default_channels", "default_fs", "baud", "fs_max_hz", "simulated",
    })
    inputs = t.get("analog_inputs", int, min=1, max=16)
    fs_max = t.get("fs_max_hz", list)
    if len(fs_max) != inputs or not all(isinstance(v, int) and v >= 1 for v in fs_max):
        raise t.fail("fs_max_hz", fs_max, f"{inputs} positive integers (one per channel count)")
    if any(b > a for a, b in zip(fs_max, fs_max[1:], strict=False)):
        raise t.fail("fs_max_hz", fs_max, "non-increasing rates (more channels, lower rate)")
    channels = t.get("default_channels", int, min=1, max=inputs)
    default_fs = t.get("default_fs", int, min=1)
    if default_fs > fs_max[channels - 1]:
        raise t.fail("default_fs", default_fs,
                     f"at most {fs_max[channels - 1]} Hz for default_channels = {channels}")
    return BoardSpec(
        name=t.get("name", str, Path(path.name).stem),
        description=t.get("description", str, ""),
        mcu=t.get("mcu", str),
        adc_bits=t.get("adc_bits", int, min=8, max=24),
        vref_mv=t.get("vref_mv", float, min=1.0),
        analog_inputs=inputs,
        default_channels=channels,
        default_fs=default_fs,
        baud=t.get("baud", int, min=1),
        fs_max_hz=tuple(fs_max),
        simulated=t.get("simulated", bool, False),
        source=str(path),
    )


def board_names() -> list[str]:
    """Names of the bundled board descriptors."""
    return bundled_names("boards")


def frontend_names() -> list[str]:
    """Names of the bundled front-end descriptors."""
    return bundled_names("frontends")


@dataclass(frozen=True)
class FrontendCheck:
    """Outcome of :func:`check_frontend` for a combination that can work.

    Attributes
    ----------
    uv_per_count
        Microvolts at the electrode per ADC count.
    warnings
        One-line explanations of what works poorly (empty if nothing).
    """

    uv_per_count: float
    warnings: tuple[str, ...] = ()


def check_frontend(
    frontend: FrontendSpec,
    *,
    bits: int,
    vref_mv: float,
    fs: float,
    board: str = "",
    log_warnings: bool = True,
) -> FrontendCheck:
    """Check that ``frontend`` on a board with ``bits``/``vref_mv`` at ``fs`` suits facial sEMG.

    Parameters
    ----------
    frontend
        The front-end descriptor (its ``source`` file is named in messages).
    bits, vref_mv
        The board's ADC resolution and reference (from its ``EMGFB`` line or descriptor).
    fs
        Sample rate per channel, Hz.
    board
        Board name for messages (optional).
    log_warnings
        Also log each warning (``logging.WARNING``).

    Returns
    -------
    FrontendCheck
        The scale and the warnings.

    Raises
    ------
    ConfigError
        The combination cannot show facial EMG (see the module docstring).
    """
    where = frontend.source or f"front-end {frontend.name!r}"
    low, high = frontend.band_hz
    band = f"[{low:g}, {high:g}]"
    if high < MIN_UPPER_EDGE_HZ:
        raise ConfigError(
            f"{where}: band_hz = {band}: upper edge {high:g} Hz is below "
            f"{MIN_UPPER_EDGE_HZ:g} Hz; facial sEMG (20-500 Hz) needs a front-end that "
            f"passes at least 50-400 Hz, e.g. --frontend bioamp"
        )
    nyquist = fs / 2.0
    floor_hz = max(low, MIN_UPPER_EDGE_HZ)
    if nyquist <= floor_hz:
        raise ConfigError(
            f"{where}: fs = {fs:g} Hz is too low for band_hz = {band}: Nyquist "
            f"{nyquist:g} Hz must exceed {floor_hz:g} Hz; sample at >= 1000 Hz per channel"
        )
    upc = frontend.uv_per_count(bits, vref_mv)
    on = f" on the {board}" if board else ""
    warnings: list[str] = []
    if upc > REST_TONE_UV[1]:
        warnings.append(
            f"{where}: gain = {frontend.gain:g} gives {upc:.1f} uV per count{on} "
            f"({bits}-bit, {vref_mv:g} mV): resting tone ({REST_TONE_UV[0]:g}-"
            f"{REST_TONE_UV[1]:g} uV) is below one count and invisible; only contractions "
            f"will show (need gain >= {vref_mv * 1000 / (1 << bits) / REST_TONE_UV[1]:.0f})"
        )
    if high > nyquist:
        warnings.append(
            f"{where}: band_hz = {band} passes up to {high:g} Hz, above Nyquist "
            f"{nyquist:g} Hz at fs = {fs:g} Hz: that power aliases into the band; sample "
            f"at >= {2 * min(high, 1000):g} Hz where the board allows (DOMAIN.md: 2 kHz)"
        )
    if log_warnings:
        for w in warnings:
            log.warning("%s", w)
    return FrontendCheck(upc, tuple(warnings))


def describe(boards: Iterable[BoardSpec], frontends: Iterable[FrontendSpec]) -> list[str]:
    """Lines for ``emgfb boards``: each board, each front-end, and µV/count per pair."""
    boards, frontends = list(boards), list(frontends)
    lines = ["boards:"]
    for b in boards:
        lines.append(
            f"  {b.name:<6} {b.description}; {b.adc_bits}-bit, {b.vref_mv:g} mV, "
            f"default {b.default_channels} ch @ {b.default_fs} Hz, max "
            f"{b.fs_max(b.analog_inputs)} Hz @ {b.analog_inputs} ch"
            f"{', simulated in CI' if b.simulated else ''}"
        )
    lines.append("front-ends (uV per count on " + ", ".join(b.name for b in boards) + "):")
    for fe in frontends:
        upc = " / ".join(f"{b.uv_per_count(fe):.2f}" for b in boards)
        ref = boards[0] if boards else None
        try:
            check = check_frontend(
                fe, bits=ref.adc_bits if ref else 10, vref_mv=ref.vref_mv if ref else 5000.0,
                fs=2000.0, log_warnings=False,
            )
            coarse = check.uv_per_count > REST_TONE_UV[1]
            verdict = "coarse: rest tone invisible (warned)" if coarse else "ok"
        except ConfigError:
            verdict = "refused for facial sEMG (band below 50 Hz)"
        lines.append(f"  {fe.name:<15} {fe.description}; {upc} uV/count; {verdict}")
    return lines
