"""The ``emgfb`` command line: one console script, thin subcommands over the library.

Each subcommand lives in its own module in this package and defines
``register(subparsers)``, which adds its parser and sets ``func`` (a callable taking the
parsed ``argparse.Namespace`` and returning an exit code). Modules are discovered, so a new
subcommand is a new file; they import heavy parts of the library (scipy, the GUI) inside
``func``, so ``emgfb --help`` stays fast.

Every user mistake leaves as ONE line on stderr and exit code 2: a bad option (the parser's
message, numbers checked against their :mod:`emgfb.limits` as the option's ``type``) or an
:class:`~emgfb.errors.EmgfbError` raised by the command. Ctrl-C exits with 130 and SIGTERM
with 143, after the command's clean-up (:mod:`emgfb.interrupts`); a closed pipe
(``emgfb info s.h5 | head``) ends the command quietly with 141 (128 + SIGPIPE), as when a
shell tool is killed by SIGPIPE. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import re
import sys

from emgfb import __version__, interrupts
from emgfb.errors import EmgfbError

EXIT_USER_ERROR = 2
EXIT_BROKEN_PIPE = 141

# "argument --seconds: 'nan': expected ..." (a limits.Limit type) -> "--seconds = 'nan': ..."
_LIMIT_MESSAGE = re.compile(r"argument ([^:/\s]+)(?:/\S+)?: ('.*': expected .*)", re.S)


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``emgfb CMD: error: ...``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        """Print one line and exit with :data:`EXIT_USER_ERROR`."""
        m = _LIMIT_MESSAGE.fullmatch(message)
        if m:
            message = f"{m[1]} = {m[2]}"
        message = " ".join(message.split())
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every discovered subcommand."""
    parser = Parser(
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
    """Entry point of the ``emgfb`` console script; returns the exit code (never raises
    :class:`SystemExit` for a bad option)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, a bad option (already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USER_ERROR
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    interrupts.install()  # Ctrl-C and SIGTERM unwind cleanly: files complete, exit 130/143
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except EmgfbError as exc:
        print(f"emgfb {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as exc:
        print(f"emgfb {args.command}: interrupted", file=sys.stderr)
        return interrupts.exit_code(exc)
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (captured in tests)
        pass
