"""``emgfb progress``: trends of one subject's sessions as a self-contained HTML page.

Thin wrapper over :func:`emgfb.exercises.progress.write_progress`; progress lines go to
stderr (``-q`` silences them), the path written to stdout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``progress`` subcommand."""
    p = subparsers.add_parser(
        "progress", help="write an HTML page of score trends across a subject's sessions",
        description="Scan DIR (recursively) for emgfb sessions, skip other files with a "
        "note, and plot every score per exercise against the session date, with a table. "
        "The folder must hold one subject code, or choose one with --subject.")
    p.add_argument("directory", type=Path, metavar="DIR", help="folder of .h5 sessions")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="PROGRESS.html",
                   help="page to write")
    p.add_argument("--subject", default=None, metavar="CODE",
                   help="subject code (needed when DIR holds several)")
    p.add_argument("--force", action="store_true", help="replace the output if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the progress page; return the exit code."""
    from emgfb.exercises.progress import write_progress

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    out = write_progress(args.directory, args.output, args.subject, force=args.force,
                         progress=None if args.quiet else progress)
    print(f"wrote {out}")
    return 0
