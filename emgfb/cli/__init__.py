"""The ``emgfb`` command line: one console script, thin subcommands over the library.

Each subcommand lives in its own module in this package and defines
``register(subparsers)``, which adds its parser and sets ``func`` (a callable taking the
parsed ``argparse.Namespace`` and returning an exit code). Modules are discovered, so a new
subcommand is a new file; they import heavy parts of the library (scipy, the GUI) inside
``func``, so ``emgfb --help`` stays fast. User mistakes raise
:class:`~emgfb.errors.EmgfbError` and leave as one line on stderr with exit code 2; Ctrl-C
exits with 130 and SIGTERM with 143, after the command's clean-up (:mod:`emgfb.interrupts`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from emgfb import __version__, interrupts
from emgfb.errors import EmgfbError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every discovered subcommand."""
    parser = argparse.ArgumentParser(
        prog="emgfb", description="Surface-EMG biofeedback for facial neuromuscular retraining."
    )
    parser.add_argument("--version", action="version", version=f"emgfb {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{mod.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``emgfb`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    interrupts.install()  # Ctrl-C and SIGTERM unwind cleanly: files complete, exit 130/143
    try:
        return int(args.func(args) or 0)
    except EmgfbError as exc:
        print(f"emgfb {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as exc:
        print(f"emgfb {args.command}: interrupted", file=sys.stderr)
        return interrupts.exit_code(exc)
