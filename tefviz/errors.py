"""Errors the app and the CLI show to people as a clear message, not a traceback."""


class TefvizError(Exception):
    """Base class: the message is written for the user; `detail` is for the folded view."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail


class CheckpointError(TefvizError):
    """A checkpoint directory is missing, incomplete or corrupt."""


class HubUnavailableError(TefvizError):
    """A Hugging Face name could not be resolved (offline, or no such model)."""


class DataError(TefvizError):
    """A corpus source or text file could not be read."""


class InputError(TefvizError):
    """User input that cannot be used as given."""
