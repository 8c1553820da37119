"""One exception hierarchy for the whole project.

Every error a person can cause or fix (a bad file, a missing device, an unknown
name) is a ``MusicBertError`` whose message says what was wrong and what to do.
The CLI prints such errors as one line and exits non-zero; anything else is a
bug and keeps its traceback.
"""


class MusicBertError(Exception):
    """Base class: an error with a message meant for a person."""


class AudioError(MusicBertError):
    """Audio that cannot be decoded or used (corrupt, unsupported, empty, NaN)."""


class UnsupportedFormatError(AudioError):
    """A file whose format is not one we decode."""


class CheckpointError(MusicBertError):
    """Model weights missing, corrupted or of the wrong shape."""


class ConfigError(MusicBertError):
    """A setting, path or URL that cannot be used."""


class DeviceUnavailableError(MusicBertError):
    """No microphone, no output device, or no sound system."""


class NotFoundError(MusicBertError):
    """A named track, artist, album or playlist that is not in the catalog."""
