"""Errors a user can cause: each carries one clear sentence to show them."""

import errno
import sqlite3


class PhotofindError(Exception):
    """A problem the user can fix (missing folder, offline model, busy library).

    The CLI prints ``str(error)`` on stderr and exits 1; the GUI shows it in a
    message. Bugs are any other exception and keep their traceback.
    """


class UsageError(PhotofindError):
    """Something the user wrote cannot be understood (a bad date, a folder
    outside the library): the CLI exits 2, as for any usage error."""


class LibraryBusyError(PhotofindError):
    """Another photofind process is writing to the same library."""


class ModelUnavailableError(PhotofindError):
    """The model's weights are neither cached nor downloadable."""


class DiskFullError(PhotofindError):
    """The disk holding the library is full (nothing was corrupted)."""


def is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(exc, sqlite3.OperationalError) and "full" in str(exc).lower()


def is_not_writable(exc: BaseException) -> bool:
    """A write refused by file permissions (or a read-only file)."""
    if isinstance(exc, PermissionError):
        return True
    return isinstance(exc, sqlite3.OperationalError) and "readonly" in str(exc).lower()
