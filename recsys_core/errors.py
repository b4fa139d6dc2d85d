"""Errors a user can act on. Each message names the file or field and says what to do."""


class RecsysError(Exception):
    """Base class: the CLI prints these as one paragraph, without a traceback."""


class ConfigError(RecsysError):
    """An option or setting is invalid; found before anything runs (the CLI exits 2)."""


class StorageError(RecsysError):
    """The disk is full, read-only or not writable where the run needs to write."""


class DownloadError(RecsysError):
    """The release archive could not be fetched or failed verification."""


class ArchiveError(RecsysError):
    """The archive is not a usable MovieLens release (not a zip, unsafe, missing files)."""


class DataContractError(RecsysError):
    """The data breaks its contract (missing columns, wrong types, empty, too many rejects)."""


class ModelError(RecsysError):
    """Unknown model name, or a saved model that cannot be loaded."""


class PublishError(RecsysError):
    """The recommendation table failed its checks or could not be made visible."""


class ManifestError(PublishError):
    """``_latest.json`` exists but cannot be read; the next run replaces it."""


class QualityGateError(RecsysError):
    """The new model is not good enough to replace the published table."""
