"""``emgfb import``: convert a file written by a peer tool into an emgfb HDF5 session.

Thin wrapper over :mod:`emgfb.recording.importers`; prints the import summary and every
note on what could not be carried over.
"""

from __future__ import annotations

import argparse

from emgfb.limits import SAMPLE_RATE_HZ
from emgfb.outputs import check_output, new_output
from emgfb.recording.importers import FORMATS, read_any, session_arrays, to_session


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``import`` subcommand."""
    p = subparsers.add_parser(
        "import",
        help="convert an OpenBCI/BrainFlow/Chords/OpenSignals/XDF/WAV/EDF/BDF/CSV file to a "
        "session",
        description="Read a recording written by another tool and write it as an emgfb "
        "HDF5 session (never overwrites). The sample rate is detected from timestamps "
        "where the file has them; lost samples (and EDF BAD_ACQ_SKIP spans) stay gaps; "
        "markers and EDF annotations become markers of kind 'import'; emgfb's own CSV and "
        "EDF/BDF exports come back with their samples. "
        "Formats: " + ", ".join(FORMATS) + ".",
    )
    p.add_argument("input", metavar="INPUT", help="file written by the peer tool")
    p.add_argument("-o", "--output", required=True, metavar="FILE.h5", help="new session file")
    p.add_argument("--format", default="auto", choices=("auto", *FORMATS),
                   help="input format (default: sniff the content)")
    p.add_argument("--fs", type=SAMPLE_RATE_HZ.arg, default=None, metavar="HZ",
                   help="sample rate, for files without timestamps (new Chords layout, CSV "
                   "without a time column); overrides the detected rate")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Import ``args.input`` into ``args.output``; return the exit code."""
    check_output(args.output, inputs=[args.input], force=None, what="session")  # before parsing
    rec = read_any(args.input, args.format, args.fs)
    arrays = session_arrays(rec)
    with new_output(args.output, inputs=[args.input], what="session"):  # removed on failure
        path = to_session(rec, args.output)
    print(rec.summary())
    for line in arrays.meta["import"]["quantisation"]:
        print(f"  stored as int32: {line}")
    print(f"wrote {path}")
    if rec.notes:
        print("not carried over / assumed:")
        for note in rec.notes:
            print(f"  - {note}")
    return 0
