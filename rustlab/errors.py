"""Errors that reach the user as one line, never as a traceback."""


class RustlabError(Exception):
    """A problem the user can fix (bad path, bad flag, bad checkpoint). Printed as one line."""

    exit_code = 1


class ImageError(RustlabError):
    """A file that is not a readable image."""

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class CheckpointError(RustlabError):
    """A checkpoint that is missing, truncated, foreign or does not match its config."""


class DataError(RustlabError):
    """A data source that cannot be read or has the wrong shape."""
