"""``emgfb export``: write a session as CSV or EDF+/BDF+ for other tools.

Thin wrapper over :mod:`emgfb.recording.export`, whose module docstring documents the CSV
layout (``#`` metadata lines, then ``time_s,tick,<channels>,marker``) and the EDF+
annotations (markers ``kind:label``, gaps, end padding).
"""

from __future__ import annotations

import argparse

from emgfb.recording.export import EXPORT_FORMATS, EXPORT_WHAT, export_recording


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    p = subparsers.add_parser(
        "export",
        help="export a session to CSV or EDF+/BDF+",
        description="Export raw counts, µV or envelopes of a session. CSV: '#' metadata "
        "lines (fs, unit, per-channel scale), then the header time_s,tick,<channels>,marker; "
        "lost samples show as tick steps > 1 (never filled); the marker column holds "
        "'kind:label' entries of markers at that sample, joined by ' | '. EDF+/BDF+: "
        "channels labelled 'EMG <label>', the front-end band in the prefilter field, "
        "markers as annotations, gaps (written as 0 µV) and end padding annotated "
        "BAD_ACQ_SKIP with their duration, the start time to the microsecond. The session "
        "is read block by block: memory does not grow with its length.",
    )
    p.add_argument("session", metavar="FILE.h5", help="emgfb session to export")
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS,
                   help="csv, edf (EDF+, 16 bit) or bdf (BDF+, 24 bit)")
    p.add_argument("--what", default="uv", choices=EXPORT_WHAT,
                   help="raw counts, uv (default) or envelope (emgfb.dsp pipeline)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="file to write")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--dsp", default=None, metavar="TOML",
                   help="DSP settings for --what envelope (default: the bundled default)")
    p.add_argument("--anonymise", action="store_true",
                   help="leave the subject code out and reduce dates (EDF/BDF)")
    p.add_argument("--reduce-dates", action=argparse.BooleanOptionalAction, default=None,
                   help="EDF/BDF start date set to 1 January of its year, time of day kept "
                   "(default: on with --anonymise, else off)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export ``args.session``; return the exit code."""
    res = export_recording(args.session, args.output, args.format, args.what,
                           force=args.force, dsp_config=args.dsp, anonymise=args.anonymise,
                           reduce_dates=args.reduce_dates)
    print(f"wrote {res.path} ({res.fmt}, {res.what}): {res.n_samples} samples x "
          f"{res.n_channels} channels, {res.n_markers} markers, {res.n_gaps} gaps")
    for note in res.notes:
        print(f"  - {note}")
    return 0
