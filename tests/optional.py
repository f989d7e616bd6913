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


def require_program(path: str | None, reason: str) -> str:
    """``path``, a program found on this machine, or the test skipped with ``reason`` (how to
    install it); a failure in CI, which must run every test."""
    if path:
        return path
    if os.environ.get("SCENEPARSE_REQUIRE_DATA", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{reason} (SCENEPARSE_REQUIRE_DATA is set: CI must run this test)", pytrace=False)
    pytest.skip(reason)
