"""User-facing errors: one line naming the problem and the fix.

The CLI prints ``EncoderkitError`` messages without a traceback (unless ``--debug``);
anything else is a bug and keeps its traceback.
"""


class EncoderkitError(Exception):
    """A problem with the user's input, config or files, explained in one line."""


class ConfigError(EncoderkitError):
    """An invalid or unknown configuration value."""


class DataError(EncoderkitError):
    """A missing file, missing field, empty text or undecodable bytes."""


class ModelDirectoryError(EncoderkitError):
    """A model directory that is missing files or was written by an incompatible version."""


class ExportError(EncoderkitError):
    """An export that cannot be made, or whose result does not match the model (parity check)."""
