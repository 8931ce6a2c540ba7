"""PCM WAV as written by the Backyard Brains apps: int16 samples, rate from ``fmt``."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from emgfb.delimited import fail
from emgfb.recording.importers.base import Format, ImportedRecording, check_file, check_rate_arg


def sniff(head: bytes) -> bool:
    """True for a ``RIFF....WAVE`` header."""
    return head[:4] == b"RIFF" and head[8:12] == b"WAVE"


def read(path: str | Path, fs: float | None = None) -> ImportedRecording:
    """Read a PCM WAV (Backyard Brains apps): int16 samples, rate from the ``fmt`` chunk.

    Tolerates a RIFF size that claims more bytes than the file holds (the BYB app writes
    one) and a data chunk cut short; both are noted.
    """
    path = check_file(path)
    check_rate_arg(fs)
    b = path.read_bytes()
    if len(b) < 12 or b[:4] != b"RIFF" or b[8:12] != b"WAVE":
        raise fail(path, "does not start with 'RIFF....WAVE', expected a WAV file")
    notes: list[str] = []
    riff = struct.unpack("<I", b[4:8])[0]
    if riff + 8 != len(b):
        notes.append(f"RIFF header claims {riff + 8} bytes, the file has {len(b)}")
    pos, fmt, data = 12, None, None
    while pos + 8 <= len(b):
        cid, size = b[pos:pos + 4], struct.unpack("<I", b[pos + 4:pos + 8])[0]
        body = b[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif cid == b"data":
            if len(body) < size:
                notes.append(f"data chunk claims {size} bytes, only {len(body)} present")
            data = body
        pos += 8 + size + (size & 1)
    if fmt is None or data is None:
        raise fail(path, "missing 'fmt ' or 'data' chunk")
    tag, n_ch, rate, _, _, bits = fmt
    if tag != 1 or bits != 16:
        raise fail(path, f"format tag {tag}, {bits} bits: expected PCM 16-bit")
    n = len(data) // (2 * n_ch)
    arr = np.frombuffer(data[: n * 2 * n_ch], dtype="<i2").reshape(n, n_ch).astype(np.float64)
    notes.append("WAV samples are ADC counts without a µV scale")
    rate_used = float(rate) if fs is None else float(fs)
    return ImportedRecording(
        data=arr, fs=rate_used, channel_names=[f"CH{i + 1}" for i in range(n_ch)],
        units=["counts"] * n_ch, tick=np.arange(n, dtype=np.int64), source_format="wav",
        source_path=path, notes=notes, uv_per_unit=[None] * n_ch, quantum=[1.0] * n_ch,
        nominal_fs=float(rate),
    )


# ---------------------------------------------------------------------------------------


FORMAT = Format("wav", sniff, read)
