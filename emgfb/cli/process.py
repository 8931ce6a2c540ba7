"""``emgfb process``: envelopes of a CSV table or an emgfb recording, written as CSV.

Thin layer over :class:`emgfb.dsp.EnvelopePipeline` (causal, as live; ``--zero-phase`` for
the offline variant) and :mod:`emgfb.dsp.signalfile`. An emgfb HDF5 session is processed
block by block (:meth:`emgfb.recording.reader.Recording.iter_blocks`), so memory does not
grow with its length, with progress on stderr; ``--zero-phase`` needs whole gap-free
stretches and reads the recording at once. The output follows :mod:`emgfb.outputs`.
Imports ``dsp``, ``recording``, ``outputs`` and ``errors``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from emgfb.errors import ConfigError
from emgfb.limits import SAMPLE_RATE_HZ
from emgfb.meter import ProgressMeter
from emgfb.outputs import atomic_output, check_output, is_hdf5

if TYPE_CHECKING:
    from emgfb.dsp import DspConfig
    from emgfb.dsp.signalfile import SignalTable

log = logging.getLogger(__name__)
UNITS = {"uv": 1.0, "µv": 1.0, "mv": 1000.0}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``process`` subcommand."""
    p = subparsers.add_parser("process", help="compute activation envelopes of a file",
                              description=__doc__.splitlines()[0])
    p.add_argument("input", type=Path, help="CSV (time column + one column per channel) "
                   "or emgfb recording (.h5)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output CSV")
    p.add_argument("--force", action="store_true", help="replace the output if it exists "
                   "(never the input, never a session)")
    p.add_argument("--config", help="DSP settings name or TOML (default: bundled)")
    p.add_argument("--fs", type=SAMPLE_RATE_HZ.arg,
                   help="sampling rate in Hz (CSV without time column)")
    p.add_argument("--unit", default="uV", help="unit of CSV values: uV (default) or mV")
    p.add_argument("--zero-phase", action="store_true",
                   help="forward-backward filtering (analysis only; not what was shown live)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read, process, write; return the exit code.

    A recording is processed with the DSP settings stored in it unless ``--config`` is given.
    """
    from emgfb.dsp import EnvelopePipeline, dsp_config_from_dict, load_dsp_config
    from emgfb.dsp.settings import check_sample_rate
    from emgfb.dsp.signalfile import read_signal_csv, write_envelope_csv

    scale: float | np.ndarray | None = UNITS.get(args.unit.lower())
    if scale is None:
        raise ConfigError(f"--unit = {args.unit!r}: expected uV or mV")
    check_output(args.output, inputs=[args.input], force=args.force)  # before any work
    stored = None
    offset: float | np.ndarray = 0.0
    if is_hdf5(args.input) and not args.zero_phase:
        return _stream_recording(args)
    if is_hdf5(args.input):
        table, scale, offset, stored = _read_recording(args.input)
    else:
        table = read_signal_csv(args.input, args.fs)
    if args.config is None and stored:  # re-process a recording as it was shown live
        config = dsp_config_from_dict(stored, f"{args.input}: dsp_config")
    else:
        config = load_dsp_config(args.config)
    check_sample_rate(table.fs, f"{args.input}: sampling rate")
    pipe = EnvelopePipeline(config, table.fs, len(table.names), scale, offset)
    env = pipe.process_offline(table.data, zero_phase=args.zero_phase, tick=table.tick)
    with atomic_output(args.output, inputs=[args.input], force=args.force) as tmp:
        write_envelope_csv(tmp, table, env, provenance=_provenance(args, config, table.fs))
    log.info("%s: %d rows x %d channels at %g Hz -> %s", args.input, len(env),
             len(table.names), table.fs, args.output)
    return 0


def _provenance(args: argparse.Namespace, config: DspConfig, fs: float
                ) -> list[tuple[str, str]]:
    """What made this CSV: written as ``#`` lines at its top."""
    import json

    from emgfb import __version__

    settings = config.as_dict()
    return [
        ("emgfb process", f"emgfb_version={__version__} source={Path(args.input).name} "
                          f"fs={fs:.10g}"),
        ("filtering", "zero-phase (forward-backward, offline analysis only)"
         if args.zero_phase else "causal (as shown live)"),
        ("dsp", json.dumps(settings, sort_keys=True, default=str)),
    ]


def _stream_recording(args: argparse.Namespace) -> int:
    """Causal envelopes of a session, one block at a time, straight into the CSV."""
    from emgfb.delimited import comment_lines
    from emgfb.dsp import EnvelopePipeline, dsp_config_from_dict, load_dsp_config
    from emgfb.dsp.settings import check_sample_rate
    from emgfb.recording.reader import open_recording

    with open_recording(args.input) as rec:
        stored = rec.meta.get("dsp_config")
        if args.config is None and stored:  # re-process a recording as it was shown live
            config = dsp_config_from_dict(stored, f"{args.input}: dsp_config")
        else:
            config = load_dsp_config(args.config)
        check_sample_rate(rec.fs, f"{args.input}: sampling rate")
        pipe = EnvelopePipeline(config, rec.fs, rec.n_channels, rec.uv_per_count,
                                rec.offset_counts)
        header = ",".join(["time_s"] + [f"{n}_envelope_uV" for n in rec.labels])
        progress = ProgressMeter(None if args.quiet else _stderr, f"emgfb process: {args.input}",
                                 rec.n_samples)
        with atomic_output(args.output, inputs=[args.input], force=args.force) as tmp:
            with tmp.open("w", encoding="utf-8") as fh:
                fh.write(comment_lines(_provenance(args, config, rec.fs)) + header + "\n")
                for block in rec.iter_blocks():
                    assert block.counts is not None  # iter_blocks(counts=True)
                    env = pipe.process(block.counts.astype(np.float64), tick=block.tick)
                    seconds = (block.tick - rec.first_tick) / rec.fs
                    fh.write(_csv_rows(seconds, env))
                    progress.update(block.start + len(block.tick))
        progress.done()
        log.info("%s: %d rows x %d channels at %g Hz -> %s", args.input, rec.n_samples,
                 rec.n_channels, rec.fs, args.output)
    return 0


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _csv_rows(seconds: np.ndarray, values: np.ndarray) -> str:
    """Rows ``time,v1,v2...`` as written by ``write_envelope_csv`` (%.10g, NaN empty)."""
    row = ",".join(["%.10g"] * (values.shape[1] + 1)) + "\n"
    table = np.column_stack((seconds, values))
    text = "".join(row % tuple(r) for r in table.tolist())
    if np.isnan(values).any():
        text = text.replace("nan", "")
    return text


def _read_recording(path: Path) -> tuple[SignalTable, np.ndarray, np.ndarray, dict | None]:
    from emgfb.dsp.signalfile import SignalTable
    from emgfb.recording.reader import open_recording

    with open_recording(path) as rec:
        tick = rec.tick
        table = SignalTable(rec.counts.astype(float), list(rec.labels), rec.fs, tick,
                            (tick - tick[0]) / rec.fs)
        return table, rec.uv_per_count, rec.offset_counts, rec.meta.get("dsp_config")
