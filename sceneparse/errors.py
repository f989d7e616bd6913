"""The errors sceneparse raises: each names the problem and, where there is one, the fix.

They subclass the built-in error a caller would expect (a missing file is a
``FileNotFoundError``, bad input a ``ValueError``), so ``except ValueError`` keeps working, and
:class:`SceneparseError` catches all of them. The command line prints their message without a
traceback.
"""

from __future__ import annotations

import difflib

__all__ = ["SceneparseError", "InputError", "NotFoundError", "ConfigError", "OutputError", "did_you_mean"]


def did_you_mean(name, known) -> str:
    """`` (did you mean 'epochs'?)`` for the known name closest to a mistyped ``name``, or ``""``
    where none is close; for the messages that list the known names."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


class SceneparseError(Exception):
    """Base of the errors that sceneparse raises on purpose."""


class InputError(SceneparseError, ValueError):
    """Input of the wrong shape, type, scale or format: an image, depth, a video, a checkpoint."""


class NotFoundError(SceneparseError, FileNotFoundError):
    """A file, folder, dataset or model that is not where it was looked for."""


class ConfigError(SceneparseError, ValueError):
    """An unknown or out-of-range option: a model, refiner, smoother, sink or dataset name."""


class OutputError(SceneparseError, RuntimeError):
    """Writing an output failed (no encoder, an unwritable folder, a full disk)."""
