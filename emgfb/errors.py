"""The emgfb exception hierarchy.

Every error a user can cause or fix (a bad file, a missing port, a wrong setting) is an
``EmgfbError``; the CLI prints its message as one line and exits non-zero, without a
traceback. Anything else is a bug and keeps its traceback.
"""


class EmgfbError(Exception):
    """Base class of all errors that are reported to the user as one line."""


class ConfigError(EmgfbError):
    """A configuration file or option is missing, malformed or out of range."""


class DeviceError(EmgfbError):
    """A board or port cannot be opened, answered wrongly, or went away for good."""


class ProtocolError(EmgfbError):
    """Bytes from a board do not follow wire protocol v1 (for example a bad board line)."""


class RecordingError(EmgfbError):
    """A recording cannot be written, read or converted."""


class DataFormatError(RecordingError):
    """An input file is not in the expected format (names the file, field and value)."""


class CalibrationError(EmgfbError):
    """A calibration (rest baseline, reference contraction) is too short, empty or unusable."""
