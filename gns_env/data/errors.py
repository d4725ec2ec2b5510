"""The one exception every loader raises for a missing or unreadable dataset."""


class DatasetError(RuntimeError):
    """A dataset could not be found or read; the message says how to get it."""
