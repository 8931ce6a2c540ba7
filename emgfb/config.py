"""Loading and validating TOML configuration files.

This module owns the shared helpers every room uses to read its settings: :func:`load_toml`
(parse errors name the file and line) and :class:`Table` (typed look-ups whose errors name
the file, the key, the value given and what was expected; ranges of shared quantities come
from :mod:`emgfb.limits`). It also resolves the bundled
configs (package data in ``emgfb/configs/<kind>/``, read through :mod:`importlib.resources`
so they are found wherever the package is installed) and the board / front-end descriptors
that give the counts-to-µV scale.
Imports only ``errors`` and ``limits``.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from emgfb.errors import ConfigError
from emgfb.limits import FRONTEND_GAIN, Limit

#: A path on disk or a bundled resource (both open with ``.open("rb")``).
ConfigPath = Path | Traversable


def bundled_dir(kind: str) -> Traversable:
    """The bundled configs of one kind (``boards``, ``dsp``, ``frontends``, ``montages``, ...)."""
    return resources.files("emgfb") / "configs" / kind


def bundled_names(kind: str) -> list[str]:
    """Names (file stems) of the bundled ``<kind>`` configs, sorted.

    >>> bundled_names("boards")
    ['mega', 'nano', 'uno']
    """
    folder = bundled_dir(kind)
    if not folder.is_dir():
        return []
    return sorted(
        e.name.removesuffix(".toml")
        for e in folder.iterdir()
        if e.name.endswith(".toml") and e.is_file()
    )

_MISSING = object()


def load_toml(path: str | ConfigPath) -> dict[str, Any]:
    """Read a TOML file, turning every failure into a one-line :class:`ConfigError`."""
    if isinstance(path, str):
        path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a TOML file") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def resolve_config(name_or_path: str | Path, kind: str) -> ConfigPath:
    """Find a config by path, or by bare name among the bundled ``<kind>`` configs.

    >>> resolve_config("uno", "boards").name
    'uno.toml'
    """
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        return path
    bundled = bundled_dir(kind) / f"{name_or_path}.toml"
    if bundled.is_file():
        return bundled
    choices = bundled_names(kind)
    raise ConfigError(
        f"no {kind} config named {str(name_or_path)!r}; expected a .toml path or one of: "
        f"{', '.join(choices) or '(none)'}"
    )


class Table:
    """A TOML table with validated look-ups.

    Parameters
    ----------
    data
        The parsed table.
    source
        File name used in error messages.
    prefix
        Dotted key path of this table inside the file (``""`` for the top level).
    """

    def __init__(self, data: dict[str, Any], source: str | ConfigPath, prefix: str = ""):
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: {prefix or 'top level'} must be a table")
        self.data = data
        self.source = str(source)
        self.prefix = prefix

    def key(self, name: str) -> str:
        """Dotted name of ``name`` inside the file."""
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, value: Any, expected: str) -> ConfigError:
        """Build the standard error: file, key, value given, what was expected."""
        return ConfigError(f"{self.source}: {self.key(name)} = {value!r}: expected {expected}")

    def get(
        self,
        name: str,
        kind: type | tuple[type, ...],
        default: Any = _MISSING,
        *,
        choices: Iterable[Any] | None = None,
        min: float | None = None,  # noqa: A002 - mirrors the TOML vocabulary
        max: float | None = None,  # noqa: A002
        limit: Limit | None = None,
    ) -> Any:
        """Return ``name`` checked for type, allowed values and range.

        Integers are accepted where floats are expected. A missing key without a default
        is an error. ``limit`` is the quantity's range from :mod:`emgfb.limits` (written
        once for every room), checked with the same one-line message.
        """
        if name not in self.data:
            if default is _MISSING:
                raise ConfigError(f"{self.source}: missing key {self.key(name)}")
            return default
        value: Any = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and bool not in kinds:
            raise self.fail(name, value, _type_names(kinds))
        if not isinstance(value, kinds):
            raise self.fail(name, value, _type_names(kinds))
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(name, value, "a finite number")
        if choices is not None:
            allowed = list(choices)
            if value not in allowed:
                raise self.fail(name, value, "one of " + ", ".join(map(repr, allowed)))
        number: Any = value  # a number whenever a bound is given
        if min is not None and number < min:
            raise self.fail(name, value, f"a value >= {min}")
        if max is not None and number > max:
            raise self.fail(name, value, f"a value <= {max}")
        if limit is not None and not limit.ok(value):
            raise self.fail(name, value, limit.expected)
        return value

    def table(self, name: str, default: dict | None = None) -> Table:
        """Return the sub-table ``name`` (an empty one if absent and a default is given)."""
        if name not in self.data:
            if default is None:
                raise ConfigError(f"{self.source}: missing table [{self.key(name)}]")
            return Table(default, self.source, self.key(name))
        return Table(self.data[name], self.source, self.key(name))

    def tables(self, name: str) -> list[Table]:
        """Return the array of tables ``[[name]]``."""
        items = self.data.get(name, [])
        if not isinstance(items, list):
            raise self.fail(name, items, "an array of tables")
        return [Table(t, self.source, f"{self.key(name)}[{i}]") for i, t in enumerate(items)]

    def reject_unknown(self, known: Iterable[str]) -> None:
        """Fail on keys this table does not define (catches typos)."""
        known = set(known)
        for name in self.data:
            if name not in known:
                raise ConfigError(
                    f"{self.source}: unknown key {self.key(name)}; expected one of: "
                    f"{', '.join(sorted(known))}"
                )


def _type_names(kinds: tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
             list: "an array", dict: "a table"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


@dataclass(frozen=True)
class FrontendSpec:
    """An analog EMG front-end: its gain and pass band.

    Attributes
    ----------
    name
        Identifier, e.g. ``bioamp``.
    gain
        Voltage gain from electrode to ADC input.
    band_hz
        Low and high corner of the front-end's own pass band, in Hz.
    offset_mv
        Output level at zero input (mid-rail bias), in millivolts at the ADC.
    description
        One line for listings (``emgfb boards``).
    source
        File it was loaded from (named in error messages; ``""`` if built in code).

    Compatibility with a board and sample rate: :func:`emgfb.hardware.check_frontend`.
    """

    name: str
    gain: float
    band_hz: tuple[float, float]
    offset_mv: float
    description: str = ""
    source: str = ""

    def uv_per_count(self, bits: int, vref_mv: float) -> float:
        """Microvolts at the electrode per ADC count: ``vref / 2**bits / gain``."""
        return vref_mv * 1000.0 / (1 << bits) / self.gain

    def offset_counts(self, bits: int, vref_mv: float) -> float:
        """ADC count that corresponds to zero volts at the electrode."""
        return self.offset_mv / vref_mv * (1 << bits)


def load_frontend(name_or_path: str | Path) -> FrontendSpec:
    """Load ``emgfb/configs/frontends/<name>.toml`` (or a path) as a :class:`FrontendSpec`."""
    path = resolve_config(name_or_path, "frontends")
    t = Table(load_toml(path), path)
    t.reject_unknown({"name", "gain", "band_hz", "offset_mv", "description"})
    band = t.get("band_hz", list)
    if len(band) != 2 or not all(isinstance(b, int | float) for b in band) or band[0] >= band[1]:
        raise t.fail("band_hz", band, "[low, high] in Hz with low < high")
    return FrontendSpec(
        name=t.get("name", str, Path(path.name).stem),
        gain=t.get("gain", float, limit=FRONTEND_GAIN),
        band_hz=(float(band[0]), float(band[1])),
        offset_mv=t.get("offset_mv", float, 2500.0),
        description=t.get("description", str, ""),
        source=str(path),
    )
