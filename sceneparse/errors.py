"""The errors sceneparse raises: each names the problem and, where there is one, the fix.

They subclass the built-in error a caller would expect (a missing file is a
``FileNotFoundError``, bad input a ``ValueError``), so ``except ValueError`` keeps working, and
:class:`SceneparseError` catches all of them. The command line prints their message without a
traceback.
"""

from __future__ import annotations

__all__ = ["SceneparseError", "InputError", "NotFoundError", "ConfigError", "OutputError"]


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
