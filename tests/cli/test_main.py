"""The ``sceneparse`` command (sceneparse/cli/__init__.py, models.py)."""

import subprocess
import sys


def test_smoke_console_entry_and_models():
    proc = subprocess.run([sys.executable, "-m", "sceneparse", "models"], capture_output=True, text=True)
    assert proc.returncode == 0 and "msconvnet_paper" in proc.stdout and "stanford-background" in proc.stdout
    # what the shipped models bring for their refiners, from the files in the package
    assert "  stanford-background: region classifier, boundary-offset head, crf parameters\n" in proc.stdout
    assert "  camvid: boundary-offset head, crf parameters\n" in proc.stdout and "  siftflow:" not in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "sceneparse", "frobnicate"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown command" in proc.stderr
