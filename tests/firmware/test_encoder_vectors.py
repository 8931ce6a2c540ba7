"""The firmware's own frame encoder, compiled for the host, against emgfb.protocol."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from emgfb.acquisition.avrsim import FirmwareBuild
from emgfb.protocol import FrameDecoder, crc8, encode_frames, frame_length

pytestmark = pytest.mark.firmware


@pytest.fixture(scope="module")
def vectors(fw_build: FirmwareBuild) -> list[dict]:
    out = subprocess.run([str(fw_build.vectors)], capture_output=True, text=True, check=True)
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_crc_check_value_matches(vectors: list[dict]) -> None:
    check = vectors[0]
    assert check["crc"] == 0xF4 == crc8(check["check"].encode())


def test_vectors_cover_wrap_overrun_and_channel_counts(vectors: list[dict]) -> None:
    frames = vectors[1:]
    assert {f["n"] for f in frames} == {1, 6, 8, 16}
    assert {0, 65535} <= {f["seq"] for f in frames}
    assert any(f["overrun"] for f in frames) and not all(f["overrun"] for f in frames)
    counts = np.concatenate([f["counts"] for f in frames])
    assert {0, 1023, 0xFFFF, 0xA55A} <= set(counts.tolist())


def test_python_encoder_is_byte_identical(vectors: list[dict]) -> None:
    for f in vectors[1:]:
        expected = bytes.fromhex(f["frame"])
        assert len(expected) == frame_length(f["n"])
        got = encode_frames(f["seq"], np.array([f["counts"]]), bool(f["overrun"]))
        assert got == expected, f


@pytest.mark.parametrize("n", [1, 6, 8, 16])
def test_decoder_reads_firmware_frames_back(vectors: list[dict], n: int) -> None:
    frames = [f for f in vectors[1:] if f["n"] == n]
    stream = b"".join(bytes.fromhex(f["frame"]) for f in frames)
    dec = FrameDecoder(n, expect_seq_zero=False)
    out = [dec.feed(stream[i : i + 7]) for i in range(0, len(stream), 7)]  # split frames
    ticks = np.concatenate([o.tick for o in out])
    assert np.array_equal(np.diff(ticks), np.ones(len(frames) - 1))  # across the wrap
    assert np.array_equal(np.concatenate([o.counts for o in out]), [f["counts"] for f in frames])
    assert np.array_equal(np.concatenate([o.overrun for o in out]), [f["overrun"] for f in frames])
    assert dec.stats.crc_errors == dec.stats.bytes_skipped == dec.stats.lost_ticks == 0
