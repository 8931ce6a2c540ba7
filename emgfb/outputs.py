"""The one output rule of every emgfb command that writes a file.

1. Never write onto an input file (the same file by any name: hard links, symlinks,
   ``./x`` and ``x``) nor onto an HDF5 file (every emgfb session is one; it is recognised by
   the HDF5 signature, not by its extension), not even with ``--force``.
2. Refuse an existing output unless ``force``; refuse a directory, a missing folder and a
   folder that cannot be written, before any work is done.
3. Write a temporary file in the target folder and rename it into place at the end
   (:func:`atomic_output`); the temporary file is removed on every failure path, read-only
   folders included, and a failure is one line (:class:`~emgfb.errors.RecordingError`).
4. A file that must be written in place (a live recording, readable after ``kill -9``) is
   claimed with :func:`new_output` and removed again if the command fails before it holds
   anything worth keeping: a failed start leaves no file behind.

Imports only ``errors`` and the standard library, so every room may use it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from emgfb.errors import RecordingError

#: The 8 bytes that open an HDF5 superblock (at offset 0, or 512, 1024, ... after a user block).
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MAX_USER_BLOCK = 1 << 30
#: Errors that mean "the output cannot be written" (rather than a bug or a bad input).
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES,
                 errno.EPERM, errno.EIO}

PathLike = str | os.PathLike


def is_hdf5(path: PathLike) -> bool:
    """True if ``path`` is a regular file holding an HDF5 signature where HDF5 looks for one.

    Unreadable or missing files are not HDF5 (``False``).
    """
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            offset = 0
            while offset + len(HDF5_SIGNATURE) <= size and offset <= _MAX_USER_BLOCK:
                fh.seek(offset)
                if fh.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                    return True
                offset = 512 if offset == 0 else offset * 2
    except OSError:
        return False
    return False


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (or cannot be looked at)
        return os.path.abspath(a) == os.path.abspath(b)


def check_output(out: PathLike, *, inputs: Iterable[PathLike] = (),
                 force: bool | None = False, what: str = "output") -> Path:
    """Apply the output rule to ``out`` before any work; return it as a :class:`Path`.

    Parameters
    ----------
    out
        The file the command is going to write.
    inputs
        Files the command reads; ``out`` may never be one of them.
    force
        Allow replacing an existing file (never an input, never an HDF5 session);
        ``None`` for a command that never replaces anything (it has no ``--force``).
    what
        Word for ``out`` in messages (``output``, ``recording``, ``screenshot``).

    Raises
    ------
    RecordingError
        One line naming ``out`` and what is wrong.
    """
    out = Path(out)
    for src in inputs:
        if src is not None and _same_file(out, Path(src)):
            raise RecordingError(f"{out}: is also the input; emgfb never writes over what it "
                                 f"reads, choose another {what} name")
    if out.is_dir():
        raise RecordingError(f"{out}: is a directory, expected a new {what} file name")
    if out.exists() or out.is_symlink():
        if force is None:
            raise RecordingError(f"{out}: already exists; emgfb never overwrites a {what}, "
                                 f"choose another name")
        if is_hdf5(out):
            raise RecordingError(f"{out}: is an HDF5 file (an emgfb session?); emgfb never "
                                 f"writes over a recording, even with --force")
        if not force:
            raise RecordingError(f"{out}: already exists; choose another name or pass --force")
        if not out.is_file():
            raise RecordingError(f"{out}: is not a regular file; choose another {what} name")
    folder = out.parent
    if not folder.is_dir():
        raise RecordingError(f"{out}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RecordingError(f"{out}: folder {folder} is not writable")
    return out


def temporary_name(out: Path) -> Path:
    """The hidden temporary file next to ``out`` (``.NAME.PID.part``)."""
    return out.with_name(f".{out.name}.{os.getpid()}.part")


def _remove(path: Path) -> None:
    """Remove ``path`` if it is there; never raises (a read-only folder keeps it: nothing
    could have been created there in the first place)."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def write_error(out: Path, exc: OSError) -> RecordingError:
    """The one-line error for an OS error while writing ``out``."""
    return RecordingError(f"{out}: cannot write ({exc.strerror or exc})")


def _is_write_error(exc: OSError, tmp: Path) -> bool:
    return exc.errno in _WRITE_ERRNOS or (exc.filename is not None
                                          and Path(exc.filename) == tmp)


def _move_into_place(tmp: Path, out: Path, force: bool) -> None:
    if force:
        if is_hdf5(out):  # appeared while we were working
            raise RecordingError(f"{out}: is an HDF5 file (an emgfb session?); emgfb never "
                                 f"writes over a recording, even with --force")
        os.replace(tmp, out)
        return
    try:
        os.link(tmp, out)  # atomic, and fails if someone created ``out`` meanwhile
    except FileExistsError:
        raise RecordingError(f"{out}: already exists; choose another name or pass --force"
                             ) from None
    except OSError:  # file systems without hard links
        if out.exists() or out.is_symlink():
            raise RecordingError(f"{out}: already exists; choose another name or pass --force"
                                 ) from None
        os.replace(tmp, out)


@contextlib.contextmanager
def atomic_output(out: PathLike, *, inputs: Iterable[PathLike] = (), force: bool = False,
                  what: str = "output") -> Iterator[Path]:
    """Check ``out`` (:func:`check_output`), yield a temporary path to write, then move it
    into place.

    The body writes the whole file to the yielded path. If the body raises, nothing is moved
    and the temporary file is removed; an :class:`OSError` of writing (disk full, read-only,
    permission) becomes one-line :class:`RecordingError` naming ``out``.

    Examples
    --------
    >>> with atomic_output("report.html", force=True) as tmp:  # doctest: +SKIP
    ...     tmp.write_text(html)
    """
    out = check_output(out, inputs=inputs, force=force, what=what)
    tmp = temporary_name(out)
    try:
        yield tmp
        if not tmp.exists():
            raise RecordingError(f"{out}: nothing was written")
        _move_into_place(tmp, out, force)
    except OSError as exc:
        if _is_write_error(exc, tmp):
            raise write_error(out, exc) from None
        raise
    finally:
        _remove(tmp)


class NewOutput:
    """A file claimed by :func:`new_output`; see :meth:`keep_when`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._keep: Callable[[], bool] = lambda: False

    def keep_when(self, predicate: Callable[[], bool]) -> None:
        """Keep the file after a failure if ``predicate()`` is then true (for example: the
        recording holds samples). Without it a failure removes the file."""
        self._keep = predicate

    def keep(self) -> None:
        """Keep the file whatever happens from now on."""
        self._keep = lambda: True

    def should_keep(self) -> bool:
        """Whether a failure now would keep the file (``False`` if the predicate fails)."""
        try:
            return bool(self._keep())
        except Exception:  # noqa: BLE001 - a broken predicate must not hide the real error
            return False


@contextlib.contextmanager
def new_output(out: PathLike, *, inputs: Iterable[PathLike] = (),
               what: str = "recording") -> Iterator[NewOutput]:
    """Claim a new file that the body creates and writes in place (never replacing one).

    The output rule is applied first (an existing file is always refused). If the body
    raises (Ctrl-C included) and the claim was not kept (:meth:`NewOutput.keep_when`), the
    file the body created is removed, so a failed start leaves nothing behind and the retry
    is not refused.
    """
    out = check_output(out, inputs=inputs, force=None, what=what)
    claim = NewOutput(out)
    claimed_at = time.time() - 1.0  # coarse file-system time stamps
    try:
        yield claim
    except BaseException:
        if not claim.should_keep() and _created_since(out, claimed_at):
            _remove(out)
        raise


def _created_since(path: Path, when: float) -> bool:
    """True if ``path`` is a file changed at or after ``when`` (so the body made it, not
    someone before the claim)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return st.st_mtime >= when or st.st_ctime >= when
