"""``emgfb report``: a self-contained HTML report of one session (issue 6).

Thin wrapper over :func:`emgfb.exercises.report.write_report`; progress lines go to
stderr (``-q`` silences them), the path written to stdout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    p = subparsers.add_parser(
        "report", help="write a self-contained HTML report of a session",
        description="Session details, calibration, per-exercise and per-repetition scores, "
        "envelope plots with targets and markers, symmetry and synkinesis, signal quality "
        "and data gaps, as one HTML page with embedded plots (printable, no network).")
    p.add_argument("file", type=Path, metavar="FILE.h5", help="emgfb session")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="REPORT.html",
                   help="page to write")
    p.add_argument("--force", action="store_true", help="replace the output if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the report; return the exit code."""
    from emgfb.exercises.report import write_report

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    out = write_report(args.file, args.output, force=args.force,
                       progress=None if args.quiet else progress)
    print(f"wrote {out}")
    return 0
