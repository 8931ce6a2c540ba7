"""DSP settings: the :class:`DspConfig` dataclass and its validated TOML loader.

This module owns every tunable of the DSP room (filters, envelope, gap handling,
calibration, onset detection, signal-quality thresholds), their defaults in
``emgfb/configs/dsp/default.toml`` and their validation: errors name the file, the key, the value
given and what was allowed. :meth:`DspConfig.as_dict` is what recordings store.
Imports ``emgfb.config`` and ``emgfb.errors`` only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emgfb.config import ConfigPath, Table, bundled_dir, load_toml, resolve_config
from emgfb.errors import ConfigError
from emgfb.limits import SAMPLE_RATE_HZ

#: Moving-RMS window presets in milliseconds (DOMAIN.md §4).
RMS_PRESETS_MS: dict[str, float] = {"fast": 50.0, "standard": 100.0, "smooth": 250.0}
#: The bundled defaults.
DEFAULT_DSP_CONFIG = bundled_dir("dsp") / "default.toml"


@dataclass(frozen=True)
class HighpassConfig:
    """Optional DC blocker: Butterworth high-pass at ``cutoff_hz`` (0 = off)."""

    cutoff_hz: float = 0.0
    order: int = 2


@dataclass(frozen=True)
class NotchConfig:
    """Mains removal at ``mains_hz`` and harmonics: ``method = "track"`` follows the line
    frequency (:class:`~emgfb.dsp.mains.MainsCanceller`, memory ``tau_s``, within
    ``track_hz`` of the expected line); ``"iir"`` is the fixed notch bank of quality ``q``
    (``harmonics`` 0 = all below Nyquist)."""

    enabled: bool = True
    mains_hz: int = 50
    method: str = "track"
    tau_s: float = 0.5
    track_hz: float = 0.6
    q: float = 30.0
    harmonics: int = 0


@dataclass(frozen=True)
class BandpassConfig:
    """Butterworth band-pass; ``high_hz`` is clipped to 0.45·fs at design time."""

    low_hz: float = 20.0
    high_hz: float = 450.0
    order: int = 4


@dataclass(frozen=True)
class EnvelopeConfig:
    """Envelope method (``"rms"`` or ``"lowpass"``) and its parameters."""

    method: str = "rms"
    window_ms: float = 100.0
    lowpass_hz: float = 10.0
    lowpass_order: int = 2


@dataclass(frozen=True)
class GapConfig:
    """Lost samples: gaps up to ``fill_max_s`` are bridged (filters and mains tracking run
    on, the lost samples and the band-pass transient after them are left out of the
    envelope); longer gaps restart the filters, and after a restart (and at the start)
    output stays NaN until the fixed notches' transient has decayed by ``settle_db``."""

    settle_db: float = 60.0
    fill_max_s: float = 2.0


@dataclass(frozen=True)
class CalibrationConfig:
    """Minimum rest duration and the reference-contraction RMS window."""

    rest_min_s: float = 10.0
    reference_window_ms: float = 500.0


@dataclass(frozen=True)
class OnsetConfig:
    """Onset/offset thresholds (baseline mean + k·SD) and hold times."""

    k_on: float = 3.0
    hold_on_ms: float = 50.0
    k_off: float = 2.0
    hold_off_ms: float = 100.0
    tkeo: bool = False


@dataclass(frozen=True)
class QualityConfig:
    """Channel-state window, update interval and good/check/bad thresholds
    (:class:`~emgfb.dsp.quality.ChannelStateTracker`; reasons in ``docs/metrics.md``)."""

    window_s: float = 1.0
    update_s: float = 0.25
    history_s: float = 30.0
    rest_percentile: float = 20.0
    rest_rms_warn_uv: float = 5.0
    rest_rms_bad_uv: float = 15.0
    mains_db_warn: float = -3.6
    mains_db_bad: float = 1.0
    clipping_warn_pct: float = 0.1
    clipping_bad_pct: float = 1.0
    saturation_min_uv: float = 150.0
    flat_sd_uv: float = 0.5
    motion_ratio_warn: float = 0.5
    motion_ratio_bad: float = 0.8
    missing_pct: float = 50.0
    stale_s: float = 1.0


@dataclass(frozen=True)
class DspConfig:
    """All DSP settings, one frozen section per concern.

    Attributes
    ----------
    highpass, notch, bandpass, envelope, gaps, calibration, onset, quality
        The sections of ``emgfb/configs/dsp/default.toml`` of the same names.
    source
        File the settings were loaded from (``""`` for built-in defaults).
    """

    highpass: HighpassConfig = field(default_factory=HighpassConfig)
    notch: NotchConfig = field(default_factory=NotchConfig)
    bandpass: BandpassConfig = field(default_factory=BandpassConfig)
    envelope: EnvelopeConfig = field(default_factory=EnvelopeConfig)
    gaps: GapConfig = field(default_factory=GapConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    onset: OnsetConfig = field(default_factory=OnsetConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain nested dict of every setting (JSON/HDF5-attribute friendly)."""
        return dataclasses.asdict(self)

    def replace(self, **sections: Any) -> DspConfig:
        """Copy with some sections replaced, e.g. ``cfg.replace(notch=NotchConfig(False))``."""
        return dataclasses.replace(self, **sections)


_SECTIONS = ("highpass", "notch", "bandpass", "envelope", "gaps", "calibration", "onset",
             "quality")


def load_dsp_config(path: str | Path | None = None) -> DspConfig:
    """Load and validate DSP settings.

    Parameters
    ----------
    path
        A TOML file, or a bare name in ``emgfb/configs/dsp/``; ``None`` loads the bundled
        ``emgfb/configs/dsp/default.toml``. Missing sections or keys take the defaults.

    Returns
    -------
    DspConfig

    Raises
    ------
    ConfigError
        On an unreadable file, unknown section or key, wrong type or out-of-range value;
        the message names the file, the key, the value given and what was expected.
    """
    source: ConfigPath = DEFAULT_DSP_CONFIG if path is None else resolve_config(path, "dsp")
    return dsp_config_from_dict(load_toml(source), source)


def dsp_config_from_dict(data: dict[str, Any], source: str | ConfigPath = "stored DSP config"
                         ) -> DspConfig:
    """Validate a nested dict of settings (a parsed TOML file, or :meth:`DspConfig.as_dict`
    as stored in a recording) and return the :class:`DspConfig`.

    ``source`` names the origin in error messages; a ``source`` key in ``data`` (as written
    by :meth:`DspConfig.as_dict`) is kept as the config's source.
    """
    data = dict(data)
    path = data.pop("source", None) or source
    top = Table(data, source)
    top.reject_unknown(_SECTIONS)
    d = DspConfig()

    t = top.table("highpass", {})
    t.reject_unknown(_fields(HighpassConfig))
    highpass = HighpassConfig(
        cutoff_hz=t.get("cutoff_hz", float, d.highpass.cutoff_hz, min=0.0),
        order=t.get("order", int, d.highpass.order, min=1, max=8),
    )

    t = top.table("notch", {})
    t.reject_unknown(_fields(NotchConfig))
    notch = NotchConfig(
        enabled=t.get("enabled", bool, d.notch.enabled),
        mains_hz=t.get("mains_hz", int, d.notch.mains_hz, choices=(50, 60)),
        method=t.get("method", str, d.notch.method, choices=("track", "iir")),
        tau_s=t.get("tau_s", float, d.notch.tau_s, min=0.05, max=10.0),
        track_hz=t.get("track_hz", float, d.notch.track_hz, min=0.0, max=2.0),
        q=t.get("q", float, d.notch.q, min=1.0, max=1000.0),
        harmonics=t.get("harmonics", int, d.notch.harmonics, min=0, max=100),
    )

    t = top.table("bandpass", {})
    t.reject_unknown(_fields(BandpassConfig))
    low = t.get("low_hz", float, d.bandpass.low_hz, min=0.1)
    high = t.get("high_hz", float, d.bandpass.high_hz, min=1.0)
    if high <= low:
        raise t.fail("high_hz", high, f"a value above low_hz = {low}")
    bandpass = BandpassConfig(low, high, t.get("order", int, d.bandpass.order, min=1, max=8))

    t = top.table("envelope", {})
    t.reject_unknown(_fields(EnvelopeConfig))
    window = t.get("window_ms", (float, str), d.envelope.window_ms)
    if isinstance(window, str):
        if window not in RMS_PRESETS_MS:
            raise t.fail("window_ms", window,
                         "milliseconds or one of " + ", ".join(map(repr, RMS_PRESETS_MS)))
        window = RMS_PRESETS_MS[window]
    elif not 5.0 <= window <= 5000.0:
        raise t.fail("window_ms", window, "5 to 5000 ms (presets: fast, standard, smooth)")
    envelope = EnvelopeConfig(
        method=t.get("method", str, d.envelope.method, choices=("rms", "lowpass")),
        window_ms=float(window),
        lowpass_hz=t.get("lowpass_hz", float, d.envelope.lowpass_hz, min=0.1, max=100.0),
        lowpass_order=t.get("lowpass_order", int, d.envelope.lowpass_order, min=1, max=8),
    )

    t = top.table("gaps", {})
    t.reject_unknown(_fields(GapConfig))
    gaps = GapConfig(settle_db=t.get("settle_db", float, d.gaps.settle_db, min=0.0, max=200.0),
                     fill_max_s=t.get("fill_max_s", float, d.gaps.fill_max_s, min=0.0,
                                      max=60.0))

    t = top.table("calibration", {})
    t.reject_unknown(_fields(CalibrationConfig))
    calibration = CalibrationConfig(
        rest_min_s=t.get("rest_min_s", float, d.calibration.rest_min_s, min=0.0),
        reference_window_ms=t.get("reference_window_ms", float,
                                  d.calibration.reference_window_ms, min=10.0, max=10000.0),
    )

    t = top.table("onset", {})
    t.reject_unknown(_fields(OnsetConfig))
    onset = OnsetConfig(
        k_on=t.get("k_on", float, d.onset.k_on, min=0.0),
        hold_on_ms=t.get("hold_on_ms", float, d.onset.hold_on_ms, min=0.0),
        k_off=t.get("k_off", float, d.onset.k_off, min=0.0),
        hold_off_ms=t.get("hold_off_ms", float, d.onset.hold_off_ms, min=0.0),
        tkeo=t.get("tkeo", bool, d.onset.tkeo),
    )
    if onset.k_off > onset.k_on:
        raise t.fail("k_off", onset.k_off, f"a value <= k_on = {onset.k_on} (hysteresis)")

    t = top.table("quality", {})
    t.reject_unknown(_fields(QualityConfig))
    q = {name: t.get(name, float, getattr(d.quality, name),
                     min=None if name.startswith("mains_db") else 0.0)
         for name in _fields(QualityConfig)}
    if q["window_s"] < 0.1:
        raise t.fail("window_s", q["window_s"], "a value >= 0.1 s")
    if not 0.0 <= q["rest_percentile"] <= 100.0:
        raise t.fail("rest_percentile", q["rest_percentile"], "0 to 100")
    if q["missing_pct"] > 100.0:
        raise t.fail("missing_pct", q["missing_pct"], "0 to 100")
    for stem, suffix in (("rest_rms", "_uv"), ("mains_db", ""), ("clipping", "_pct"),
                         ("motion_ratio", "")):
        warn, bad = f"{stem}_warn{suffix}", f"{stem}_bad{suffix}"
        if q[bad] < q[warn]:
            raise t.fail(bad, q[bad], f"a value >= {warn} = {q[warn]}")
    quality = QualityConfig(**q)

    return DspConfig(highpass, notch, bandpass, envelope, gaps, calibration, onset, quality,
                     source=str(path))


def _fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def check_sample_rate(fs: float, what: str = "sample rate") -> float:
    """Return ``fs`` as float if it is a usable EMG rate (250 Hz up to
    :data:`emgfb.limits.SAMPLE_RATE_HZ`), else raise ConfigError."""
    top = SAMPLE_RATE_HZ.high if SAMPLE_RATE_HZ.high is not None else float("inf")
    try:
        fs = float(fs)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} = {fs!r}: expected a number of Hz in 250..{top:g}") from None
    if not 250.0 <= fs <= top:
        raise ConfigError(f"{what} = {fs!r}: expected a number of Hz in 250..{top:g}")
    return fs
