"""DSP room: turns raw EMG into filtered µV, activation envelopes, metrics and quality flags.

It owns the streaming stages and the :class:`EnvelopePipeline` (causal, stateful, identical
online and offline, explicit about lost samples), calibration and normalisation, clinical
metrics (symmetry, co-contraction, synkinesis, onsets), the live channel state and
its settings (``emgfb/configs/dsp/default.toml``). It works on numpy arrays only: it may import
``emgfb.config``, ``emgfb.montage`` and ``emgfb.errors``, never acquisition, recording or
any GUI toolkit.
"""

from emgfb.dsp.calibration import (
    Baseline,
    baseline_subtracted,
    percent_of_healthy,
    percent_of_reference,
    reference_contraction,
    rest_baseline,
)
from emgfb.dsp.metrics import (
    asymmetry_index,
    cocon,
    detect_onsets,
    is_symmetric,
    oral_ocular_index,
    symmetry_ratio,
    tkeo,
    tkeo_activation,
)
from emgfb.dsp.pipeline import EnvelopePipeline
from emgfb.dsp.quality import (
    ChannelQuality,
    ChannelState,
    ChannelStateTracker,
    SignalQuality,
    StateLog,
)
from emgfb.dsp.settings import RMS_PRESETS_MS, DspConfig, dsp_config_from_dict, load_dsp_config

__all__ = [
    "RMS_PRESETS_MS", "Baseline", "ChannelQuality", "ChannelState", "ChannelStateTracker",
    "DspConfig", "EnvelopePipeline",
    "SignalQuality", "StateLog", "asymmetry_index", "baseline_subtracted", "cocon", "detect_onsets",
    "dsp_config_from_dict", "is_symmetric", "load_dsp_config", "oral_ocular_index",
    "percent_of_healthy",
    "percent_of_reference", "reference_contraction", "rest_baseline", "symmetry_ratio",
    "tkeo", "tkeo_activation",
]
