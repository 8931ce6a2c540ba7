"""Montages: which muscle and which side of the face each hardware channel records.

This module owns the muscle vocabulary (DOMAIN.md §2), the :class:`Montage` of a session
(channels in hardware order, the affected side) and its TOML loader. Homologous left/right
pairs are derived here so DSP metrics, exercises and the GUI agree on them. Imports
``config`` and ``errors`` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from emgfb.config import Table, load_toml, resolve_config
from emgfb.errors import ConfigError

#: Muscles emgfb knows, with the action (Sunnybrook item where there is one) they serve.
MUSCLES: dict[str, str] = {
    "frontalis": "brow lift",
    "corrugator": "frown",
    "orbicularis_oculi": "gentle eye closure",
    "levator_labii": "snarl",
    "zygomaticus_major": "open-mouth smile",
    "orbicularis_oris": "lip pucker",
    "depressor_anguli_oris": "smile antagonist",
    "platysma": "smile antagonist",
    "masseter": "clench (artefact reference)",
    "other": "not a facial muscle",
}
SIDES = ("left", "right")


@dataclass(frozen=True)
class Channel:
    """One hardware channel: its label, the muscle under the electrodes and the side."""

    label: str
    muscle: str
    side: str


@dataclass(frozen=True)
class Montage:
    """The channels of a session in hardware order plus the patient's affected side.

    Attributes
    ----------
    name
        Montage identifier.
    channels
        Channels in the order the board sends them (A0, A1, ...).
    affected_side
        ``"left"``, ``"right"`` or ``"none"`` (healthy volunteer, or not yet known).
    """

    name: str
    channels: tuple[Channel, ...]
    affected_side: str = "left"

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return len(self.channels)

    @property
    def labels(self) -> list[str]:
        """Channel labels in hardware order."""
        return [c.label for c in self.channels]

    def pairs(self) -> list[tuple[str, int, int]]:
        """Homologous pairs as ``(muscle, affected_index, healthy_index)``.

        With no affected side the left channel is reported first.
        """
        first = self.affected_side if self.affected_side in SIDES else "left"
        out = []
        for muscle in dict.fromkeys(c.muscle for c in self.channels):
            idx = {c.side: i for i, c in enumerate(self.channels) if c.muscle == muscle}
            if set(idx) == set(SIDES):
                other = "right" if first == "left" else "left"
                out.append((muscle, idx[first], idx[other]))
        return out

    def with_affected_side(self, side: str) -> Montage:
        """Copy of this montage with another affected side."""
        _check_side(side, "affected_side", "command line")
        return Montage(self.name, self.channels, side)

    def as_dict(self) -> dict:
        """JSON/HDF5-friendly description."""
        return {
            "name": self.name,
            "affected_side": self.affected_side,
            "channels": [c.__dict__.copy() for c in self.channels],
        }


def _check_side(side: str, key: str, source: str, allow_none: bool = True) -> None:
    allowed = SIDES + (("none",) if allow_none else ())
    if side not in allowed:
        raise ConfigError(f"{source}: {key} = {side!r}: expected one of {', '.join(allowed)}")


def load_montage(name_or_path: str | Path) -> Montage:
    """Load ``emgfb/configs/montages/<name>.toml`` or a path, validating every channel."""
    path = resolve_config(name_or_path, "montages")
    t = Table(load_toml(path), path)
    t.reject_unknown({"name", "description", "affected_side", "channel"})
    affected = t.get("affected_side", str, "left")
    _check_side(affected, "affected_side", str(path))
    channels = []
    for ct in t.tables("channel"):
        ct.reject_unknown({"label", "muscle", "side"})
        channels.append(
            Channel(
                label=ct.get("label", str),
                muscle=ct.get("muscle", str, choices=MUSCLES),
                side=ct.get("side", str, choices=SIDES),
            )
        )
    if not 1 <= len(channels) <= 16:
        raise ConfigError(f"{path}: has {len(channels)} [[channel]] tables, expected 1..16")
    labels = [c.label for c in channels]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{path}: channel labels must be unique, got {labels}")
    return Montage(t.get("name", str, Path(path.name).stem), tuple(channels), affected)


def default_montage(n_channels: int) -> Montage:
    """The bundled montage for ``n_channels`` (6: face6, 8: face8), else generic labels."""
    if n_channels in (6, 8):
        return load_montage(f"face{n_channels}")
    chans = tuple(
        Channel(f"CH{i + 1}", "other", SIDES[i % 2]) for i in range(n_channels)
    )
    return Montage(f"generic{n_channels}", chans, "none")
