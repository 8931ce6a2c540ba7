"""Keeping a recording file writable, and unharmed when writing fails anyway.

This module owns two file-level safeguards of the session writer, apart from HDF5:

* :class:`SpaceReservation` reserves disk space just beyond the end of a file
  (``fallocate(FALLOC_FL_KEEP_SIZE)``), so that another program filling the disk cannot
  take the space the writer needs for its next appends and for closing the file. When the
  reservation can no longer be renewed the writer still has room to stop cleanly. It also
  honours the process's file-size limit (``RLIMIT_FSIZE``), which a reservation cannot.
* :func:`freeze` swaps a read-only descriptor in under a library that holds a file open,
  so that after an I/O error the library can no longer write a half-finished state: the
  file stays as it was after the last successful flush (with HDF5's SWMR write order that
  is a consistent file, as after ``kill -9``).

Linux-first: where ``fallocate`` is missing (other systems, some filesystems) the
reservation falls back to checking the free space before each append. Imports nothing
from emgfb but ``errors``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import resource
from pathlib import Path

log = logging.getLogger(__name__)

_FALLOC_FL_KEEP_SIZE = 1
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _libc_fallocate():
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        fn = ctypes.CDLL(name, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    fn.restype = ctypes.c_int
    return fn


_fallocate = _libc_fallocate()


def mb(n_bytes: float) -> str:
    """Bytes as megabytes for messages (``1.40 MB``)."""
    return f"{n_bytes / 1e6:.2f} MB"


class SpaceReservation:
    """Disk space kept allocated beyond the end of a growing file.

    Lifecycle: construct on a file that exists (opens its own descriptor) ->
    :meth:`renew` after each append -> :meth:`room` before the next one -> :meth:`close`.

    Parameters
    ----------
    path
        The file (already created by its writer).
    nbytes
        How far beyond the current end to keep allocated.
    headroom
        Bytes kept free on the disk when the reservation is not available (fallback).
    """

    def __init__(self, path: str | Path, nbytes: int, headroom: int) -> None:
        self.path = Path(path)
        self.nbytes = int(nbytes)
        self.headroom = int(headroom)
        self._fd = os.open(self.path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
        self.supported = _fallocate is not None and self.nbytes > 0
        self.reserved_end = 0
        #: Why the space ran out (words for the user), once it did; None before.
        self.exhausted: str | None = None

    def size(self) -> int:
        """The file's current size in bytes."""
        return os.fstat(self._fd).st_size

    def renew(self, at_least: int = 0) -> bool:
        """Reserve ``nbytes`` (or ``at_least``, if more) beyond the current end again.

        Returns
        -------
        bool
            False once the disk (or quota) cannot give the space; :attr:`exhausted` says
            why. The space reserved before stays reserved.
        """
        if not self.supported or self.exhausted:
            return self.exhausted is None
        size = self.size()
        nbytes = max(self.nbytes, int(at_least))
        if _fallocate(self._fd, _FALLOC_FL_KEEP_SIZE, size, nbytes) == 0:
            self.reserved_end = size + nbytes
            # the reservation suffices until the file grows past it, but a disk that is
            # full now is better reported now than at the next chunk
            st = os.statvfs(self.path.parent)
            if st.f_bavail * st.f_frsize >= self.headroom:
                return True
            self.exhausted = f"disk full ({self._free_words()})"
            return False
        err = ctypes.get_errno()
        if err == errno.EFBIG:
            self.exhausted = self._limit_words(size)
            return False
        if err in _NO_SPACE:
            self.exhausted = f"disk full ({self._free_words()})"
            return False
        # EOPNOTSUPP (tmpfs before 3.5, NFS v3, FAT...), ENOSYS: check free space instead
        log.info("%s: cannot reserve disk space (%s); checking free space instead",
                 self.path, os.strerror(err))
        self.supported = False
        return True

    def room(self) -> tuple[int, str]:
        """Bytes the file may still grow by, and what limits it (words for the user).

        Within the reservation when there is one; else the free disk space less
        ``headroom``; never beyond the file-size limit less ``headroom``.
        """
        size = self.size()
        if self.supported:
            room = self.reserved_end - size
            reason = self.exhausted or f"disk full ({self._free_words()})"
        else:
            st = os.statvfs(self.path.parent)
            free = st.f_bavail * st.f_frsize
            room, reason = free - self.headroom, f"disk full ({mb(free)} free)"
        soft, _hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        if soft != resource.RLIM_INFINITY and soft - size - self.headroom < room:
            room = soft - size - self.headroom
            reason = self._limit_words(size)
        return room, reason

    @staticmethod
    def _limit_words(size: int) -> str:
        soft, _hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        limit = "unlimited" if soft == resource.RLIM_INFINITY else mb(soft)
        return f"file size limit reached (ulimit -f: {limit}; the file has {mb(size)})"

    def _free_words(self) -> str:
        try:
            st = os.statvfs(self.path.parent)
        except OSError:
            return "free space unknown"
        return f"{mb(st.f_bavail * st.f_frsize)} free on the disk of {self.path.parent}"

    def close(self) -> None:
        """Close the descriptor (idempotent). Space reserved beyond the end is given back
        when the file is closed (or truncated) by its writer."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def freeze(fd: int, path: str | Path) -> bool:
    """Point descriptor ``fd`` at ``/dev/null``, so nothing more reaches the file.

    Used after an I/O error: the library that owns ``fd`` (HDF5) would otherwise try to
    write its half-updated state on close and could leave the file unreadable. Its later
    writes succeed into nothing, so it can close without crashing; the file itself stays
    as it was.

    Returns
    -------
    bool
        True if the descriptor no longer reaches the file.
    """
    sink = os.open(os.devnull, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    try:
        os.dup2(sink, fd)
    except OSError as exc:
        log.warning("%s: cannot stop further writes (%s)", path, exc)
        return False
    finally:
        os.close(sink)
    return True
