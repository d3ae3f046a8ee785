"""Exceptions users can catch.  The CLI prints their message in one line and exits non-zero."""


class StreamposeError(Exception):
    """Base class of every error streampose raises on purpose."""


class InputError(StreamposeError):
    """The input cannot be used: missing, unreadable, not a video, no video stream, bad codec."""


class OutputError(StreamposeError):
    """An output path cannot be written."""


class ModelError(StreamposeError):
    """Model weights are missing, corrupt, or cannot be fetched."""


class StageError(StreamposeError):
    """A pipeline stage failed; ``stage`` names it and the original exception is chained."""

    def __init__(self, stage: str, cause: BaseException):
        super().__init__(f"{stage} stage failed: {type(cause).__name__}: {cause}")
        self.stage = stage
        self.cause = cause
