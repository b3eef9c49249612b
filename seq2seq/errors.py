"""Errors a user can fix. The CLI prints them as one line and exits non-zero (no traceback)."""


class Seq2SeqError(Exception):
    """Base class: a problem with the user's input, files, config or checkpoint."""


class ConfigError(Seq2SeqError):
    """A config file or ``--set`` override is invalid (unknown key, wrong type, bad value)."""


class DataError(Seq2SeqError):
    """A data file is missing, unreadable, malformed or inconsistent."""


class CheckpointError(Seq2SeqError):
    """A checkpoint directory is missing files, corrupted or from an incompatible version."""
