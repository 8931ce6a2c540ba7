"""``emgfb record``: headless recording of any source to a new HDF5 session file."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emgfb.acquisition.source import open_source
from emgfb.config import load_frontend
from emgfb.montage import load_montage


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``record`` subcommand."""
    p = subparsers.add_parser("record", help="record a source to a new .h5 session (headless)")
    p.add_argument("--source", required=True, metavar="URL", help="e.g. sim://?seed=1")
    p.add_argument("--seconds", type=float, help="session time to record (default: Ctrl-C)")
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


def start_lsl(args: argparse.Namespace, info: Any, montage: Any, uv_per_count: Any,
              offset_counts: Any, dsp_config: Any, add_marker: Callable[[Any], None],
              stack: contextlib.ExitStack) -> Callable[[Any], None] | None:
    """Start what ``--lsl`` / ``--markers-from`` ask for (closed by ``stack``).

    Returns the per-chunk hook (anchors the sample clock, publishes), or None if neither
    option was given.
    """
    name, markers_from = getattr(args, "lsl", None), getattr(args, "markers_from", None)
    if not (name or markers_from):
        return None
    from emgfb.acquisition.lsl import LslMarkerInlet, SampleClock

    clock = SampleClock(info.fs)
    hooks: list[Callable[[Any], None]] = [clock.observe]
    if name:
        from emgfb.lsl_out import LslPublisher

        pub = stack.enter_context(LslPublisher(info, montage, uv_per_count, offset_counts,
                                               name=name, dsp_config=dsp_config, clock=clock))
        hooks.append(pub.push_chunk)
    if markers_from:
        stack.enter_context(LslMarkerInlet(markers_from, clock, add_marker))

    def on_chunk(chunk: Any) -> None:
        for hook in hooks:
            hook(chunk)

    return on_chunk


def run(args: argparse.Namespace) -> int:
    """Record until ``--seconds`` of data, the end of the source, Ctrl-C or SIGTERM."""
    from emgfb.dsp import load_dsp_config
    from emgfb.outputs import check_output, new_output
    from emgfb.recording.schema import check_subject
    from emgfb.recording.writer import SessionWriter, record_source

    signal.signal(signal.SIGTERM, signal.default_int_handler)
    check_subject(args.subject)  # refuse early, before opening a board
    check_output(args.output, what="recording")
    dsp = load_dsp_config(args.dsp)
    dsp_config = dsp.as_dict()
    source = open_source(args.source)
    with source:
        info = source.info
        montage = load_montage(args.montage) if args.montage else getattr(source, "montage", None)
        fe = load_frontend(args.frontend)
        uv = getattr(source, "uv_per_count", None)  # a replayed session knows its own scale
        if uv is None:  # the front-end sets the scale: refuse what cannot work, warn
            from emgfb.hardware import check_frontend

            check_frontend(fe, bits=info.bits, vref_mv=info.vref_mv, fs=info.fs, board=info.board)
        uv = fe.uv_per_count(info.bits, info.vref_mv) if uv is None else uv
        off = getattr(source, "offset_counts", None)
        off = fe.offset_counts(info.bits, info.vref_mv) if off is None else off
        frontend = {"name": fe.name, "gain": fe.gain, "band_hz": list(fe.band_hz),
                    "offset_mv": fe.offset_mv, "electrodes": args.electrodes}
        stopped = ""
        # a start that fails (or ends before a sample was written) leaves no file behind
        with new_output(args.output) as claim:
            writer = SessionWriter(
                args.output, info=info, montage=montage or _default(info.n_channels),
                uv_per_count=uv, offset_counts=off, subject=args.subject, notes=args.notes,
                dsp_config=dsp_config, frontend=frontend,
                extra_meta={"source_url": args.source},
            )
            claim.keep_when(lambda: writer.samples_written > 0)
            with writer, contextlib.ExitStack() as lsl:
                on_chunk = start_lsl(args, info, writer.montage, uv, off, dsp,
                                     writer.add_marker, lsl)
                try:
                    record_source(source, writer, seconds=args.seconds, on_progress=_progress,
                                  on_chunk=on_chunk)
                except KeyboardInterrupt:
                    stopped = " (stopped by signal)"
            if writer.failed and not writer.samples_written:
                raise writer.error
    print(f"emgfb record: {writer.samples_written} samples, {writer.lost_ticks} lost ticks "
          f"-> {args.output}{stopped}", file=sys.stderr)
    if writer.failed:
        print(f"emgfb record: error: {writer.error}", file=sys.stderr)
        return 1
    return 0


def _default(n_channels: int):  # noqa: ANN202 - Montage
    from emgfb.montage import default_montage

    return default_montage(n_channels)


def _progress(elapsed: float, samples: int, lost: int) -> None:
    print(f"emgfb record: elapsed {elapsed:.1f} s, samples {samples}, lost ticks {lost}",
          file=sys.stderr, flush=True)
