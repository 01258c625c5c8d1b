"""Errors that the CLI reports as one line (no traceback)."""


class CvtoolsError(Exception):
    """An error the user can act on; its message is shown as one line."""


class ImageError(CvtoolsError):
    """A problem with one input or output image; names the file."""

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class WeightsError(CvtoolsError):
    """Weights that are missing, damaged or not what they claim to be."""


class UsageError(CvtoolsError):
    """Options that do not make sense together."""
