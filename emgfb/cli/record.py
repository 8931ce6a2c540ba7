"""``emgfb record``: headless recording of any source to a new HDF5 session file."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from pathlib import Path

from emgfb.acquisition.source import open_source
from emgfb.errors import ConfigError
from emgfb.limits import RECORD_SECONDS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``record`` subcommand."""
    p = subparsers.add_parser("record", help="record a source to a new .h5 session (headless)")
    p.add_argument("--source", required=True, metavar="URL", help="e.g. sim://?seed=1")
    p.add_argument("--seconds", type=RECORD_SECONDS.arg,
                   help="session time to record (default: Ctrl-C)")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="FILE.h5")
    p.add_argument("--montage", help="montage name or TOML (default: the source's)")
    p.add_argument("--frontend", default="bioamp", help="front-end name or TOML")
    p.add_argument("--electrodes", default="", help="electrode type, size, spacing (ISEK)")
    p.add_argument("--dsp", help="DSP settings stored with the session (default: bundled)")
    p.add_argument("--subject", default="", help="pseudonymous code such as P007, never a name")
    p.add_argument("--notes", default="", help="free-text session notes")
    add_lsl_args(p, markers=True)
    p.set_defaults(func=run)


def add_lsl_args(p: argparse.ArgumentParser, markers: bool) -> None:
    """``--lsl [NAME]`` (and ``--markers-from lsl://NAME``), shared by live, record, stream."""
    p.add_argument("--lsl", nargs="?", const="emgfb", default=None, metavar="NAME",
                   help="publish the µV, envelope and marker streams on Lab Streaming Layer "
                        "as NAME, NAME-envelope, NAME-markers (default NAME: emgfb)")
    if markers:
        p.add_argument("--markers-from", metavar="lsl://NAME",
                       help="record another program's LSL markers (clock-corrected)")


def run(args: argparse.Namespace) -> int:
    """Record until ``--seconds`` of data, the end of the source, Ctrl-C or SIGTERM.

    ``--seconds N`` is a promise: the command ends by N s of wall time plus
    :data:`~emgfb.live.pump.GRACE_S` whatever the board does, with a complete file; a
    source that fails or falls silent ends it with exit 1 and one line saying why.
    """
    from emgfb.dsp import load_dsp_config
    from emgfb.live.channels import resolve_channels
    from emgfb.live.pump import SourcePump
    from emgfb.live.sinks import LslSink
    from emgfb.outputs import check_output, new_output
    from emgfb.recording.schema import check_subject
    from emgfb.recording.writer import SessionWriter

    if args.seconds is not None and not (math.isfinite(args.seconds) and args.seconds > 0):
        raise ConfigError(f"--seconds {args.seconds}: expected a positive number of seconds")
    check_subject(args.subject)  # refuse early, before opening a board
    check_output(args.output, force=None, what="recording")
    dsp = load_dsp_config(args.dsp)
    source = open_source(args.source)
    with source:
        setup = resolve_channels(source, args.montage, args.frontend)
        stopped, interrupted = "", None
        # a start that fails (or ends before a sample was written) leaves no file behind
        with new_output(args.output) as claim:
            writer = SessionWriter(
                args.output, info=setup.info, montage=setup.montage,
                uv_per_count=setup.uv_per_count, offset_counts=setup.offset_counts,
                subject=args.subject, notes=args.notes, dsp_config=dsp.as_dict(),
                frontend=setup.frontend_meta(args.electrodes),
                extra_meta={"source_url": args.source},
            )
            claim.keep_when(lambda: writer.samples_written > 0)
            with writer, contextlib.ExitStack() as stack:
                sinks = [writer.write]
                name = getattr(args, "lsl", None)
                markers_from = getattr(args, "markers_from", None)
                if name or markers_from:
                    lsl = LslSink(setup, name, markers_from, writer.add_marker, dsp_config=dsp)
                    stack.callback(lsl.close)
                    sinks.append(lsl.push_chunk)
                pump = SourcePump(source, sinks, seconds=args.seconds,
                                  on_rate=lambda doc: writer.set_document("clock", doc))
                try:
                    next_progress = 1.0
                    while not pump.done and not writer.failed:
                        pump.step(0.1)
                        if pump.elapsed_s >= next_progress or pump.done:
                            _progress(pump.elapsed_s, writer.samples_received,
                                      writer.lost_ticks_received)
                            next_progress = pump.elapsed_s + 1.0
                except KeyboardInterrupt as exc:
                    stopped, interrupted = " (stopped by signal)", exc
                writer.set_document("link", source.stats.as_dict())
                writer.set_document("clock", pump.clock_document())
            if writer.error is not None and not writer.samples_written:
                raise writer.error
    print(f"emgfb record: {writer.samples_written} samples, {writer.lost_ticks} lost ticks "
          f"-> {args.output}{stopped}", file=sys.stderr)
    if writer.failed:
        print(f"emgfb record: error: {writer.error}", file=sys.stderr)
        return 1
    if interrupted is not None:
        raise interrupted  # the file is complete; main() exits with 130 or 143
    if pump.problem:
        print(f"emgfb record: error: {pump.problem}", file=sys.stderr)
        return 1
    return 0


def _progress(elapsed: float, samples: int, lost: int) -> None:
    print(f"emgfb record: elapsed {elapsed:.1f} s, samples {samples}, lost ticks {lost}",
          file=sys.stderr, flush=True)
