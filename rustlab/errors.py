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


class Interrupted(RustlabError):
    """Training stopped by SIGINT/SIGTERM after its resumable state was saved.

    Printed as is (no ``error:``), with the shell's exit code for the signal (130, 143)."""

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code
