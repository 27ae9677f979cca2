"""The one exception type users see."""
from __future__ import annotations


class ScaleSearchError(Exception):
    """A problem with the user's input (options, files, data, storage).

    The CLI prints its message as one line on stderr and exits with code 2.
    Anything else that goes wrong is a bug and keeps its traceback.
    """
