"""DSP room: turns raw EMG into filtered µV, activation envelopes, metrics and quality flags.

It owns the streaming stages and the :class:`EnvelopePipeline` (causal, stateful, identical
online and offline, explicit about lost samples), calibration and normalisation, clinical
metrics (symmetry, co-contraction, synkinesis, onsets), live signal-quality indicators and
its settings (``configs/dsp/default.toml``). It works on numpy arrays only: it may import
``emgfb.config``, ``emgfb.montage`` and ``emgfb.errors``, never acquisition, recording or
any GUI toolkit.
"""

from emgfb.dsp.pipeline import EnvelopePipeline
from emgfb.dsp.settings import RMS_PRESETS_MS, DspConfig, load_dsp_config

__all__ = ["RMS_PRESETS_MS", "DspConfig", "EnvelopePipeline", "load_dsp_config"]
