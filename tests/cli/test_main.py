"""The ``sceneparse`` command (sceneparse/cli/__init__.py, models.py)."""

import subprocess
import sys


def test_smoke_console_entry_and_models():
    proc = subprocess.run([sys.executable, "-m", "sceneparse", "models"], capture_output=True, text=True)
    assert proc.returncode == 0 and "msconvnet_paper" in proc.stdout and "stanford-background" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "sceneparse", "frobnicate"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown command" in proc.stderr
