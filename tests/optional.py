"""Optional dependencies of some tests: skipped with how to install them on a developer's
machine, a failure in CI (SCENEPARSE_REQUIRE_DATA=1, set by .ci/run), so CI never passes by
skipping."""

import importlib
import os

import pytest


def require(module: str, install: str):
    """``module`` imported, or the test module skipped (an import error in CI) with ``install``."""
    if os.environ.get("SCENEPARSE_REQUIRE_DATA", "") not in ("", "0"):
        return importlib.import_module(module)
    return pytest.importorskip(module, reason=f"needs {module}: {install}")
