"""Errors a user can cause: each carries one clear sentence to show them."""


class PhotofindError(Exception):
    """A problem the user can fix (missing folder, offline model, busy library).

    The CLI prints ``str(error)`` on stderr and exits 1; the GUI shows it in a
    message. Bugs are any other exception and keep their traceback.
    """


class LibraryBusyError(PhotofindError):
    """Another photofind process is writing to the same library."""


class ModelUnavailableError(PhotofindError):
    """The model's weights are neither cached nor downloadable."""
