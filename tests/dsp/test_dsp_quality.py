"""Live signal quality: each indicator trips on the artefact it is meant for, cheaply."""

from __future__ import annotations

import numpy as np
import pytest

from emgfb.dsp import SignalQuality, load_dsp_config

FS = 2000.0


@pytest.fixture
def channels(rng) -> tuple[np.ndarray, np.ndarray]:
    n = int(2 * FS)
    t = np.arange(n) / FS
    rest = rng.standard_normal((n, 6)) * 2.0
    uv = rest.copy()
    uv[:, 0] += 15 * np.sin(2 * np.pi * 50 * t)  # the usual hum of an Arduino front-end
    uv[:, 1] += 300 * np.sin(2 * np.pi * 50 * t)  # loose electrode: hum 45 dB over the floor
    uv[:, 2] = 0.0  # flat: electrode off / shorted
    uv[:, 3] += 200 * np.sin(2 * np.pi * 3 * t)  # cable swing
    uv[:, 4] *= 20.0  # tense at rest
    counts = np.clip(np.rint(uv / 2.0 + 512), 0, 1023)
    counts[::40, 5] = 1023  # 2.5 % of samples at the rail
    return uv, counts


def test_each_indicator_flags_its_own_artefact(channels) -> None:
    uv, counts = channels
    sq = SignalQuality(load_dsp_config(), FS, 6, adc_max=1023)
    assert sq.update(uv[:10], counts[:10])[0].state == "unknown"  # nothing assessed yet
    for i in range(10, len(uv), 10):
        out = sq.update(uv[i:i + 10], counts[i:i + 10])
    by = {q.channel: q for q in out}
    assert by[0].state == "good" and 1.0 < by[0].rest_rms_uv < 3.0
    assert by[0].states["mains"] == "good" and 15 < by[0].mains_db < 20
    assert by[1].states["mains"] == "bad" and "mains hum" in by[1].hint
    assert by[1].states["rest_rms"] == "good"  # the mains bins are left out of rest RMS
    assert by[2].states["flat"] == "bad" and by[2].hint.startswith("flat line")
    assert by[3].states["motion"] == "bad" and "movement" in by[3].hint
    assert by[4].states["rest_rms"] == "bad" and "relax" in by[4].hint
    assert by[5].clipping_pct == pytest.approx(2.5, abs=0.1) and by[5].states["clipping"] == "bad"
    assert by[0].clipping_pct == 0.0 and by[0].states["clipping"] == "good"


def test_without_counts_clipping_is_unknown_and_lost_rows_are_skipped(channels) -> None:
    uv, _ = channels
    uv = uv.copy()
    uv[100:300] = np.nan
    sq = SignalQuality(load_dsp_config(), FS, 6)
    out = sq.update(uv)
    assert out[0].states["clipping"] == "unknown" and out[0].state == "good"
    assert np.isfinite(out[0].rest_rms_uv)
    assert sq.latest is out
