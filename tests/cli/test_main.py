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


def test_feature_ctrl_c_while_the_command_loads_exits_130_without_a_traceback():
    """The command line module loads without torch (the seconds of a command's start are spent
    inside main, where Ctrl-C is caught), and an interrupt there exits 130 with one line."""
    code = "import sys, sceneparse.cli; print('torch' in sys.modules, 'cv2' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.split() == ["False", "False"], proc.stdout + proc.stderr
    code = (
        "import importlib, sys, sceneparse.cli\n"
        "def interrupted(name, *a, **k):\n"
        "    raise KeyboardInterrupt\n"
        "importlib.import_module = interrupted\n"
        "sys.exit(sceneparse.cli.main(['label', 'x.jpg']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 130 and "interrupted" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_feature_sigterm_closes_the_outputs_and_exits_143(sevenscenes_path, tmp_path):
    """SIGTERM (docker stop, systemd, kill) takes Ctrl-C's path, the video so far closed and
    playable, but exited 130 as if Ctrl-C had been pressed; a shell, systemd and docker expect
    128 + 15 = 143 for a process ended by SIGTERM."""
    import signal
    import time

    import cv2

    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "sceneparse", "label", str(sevenscenes_path), "--model", "indoor-geometry",
           "--out", str(out), "--no-progress", "--threads", "1"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (out / ".overlay.part.mp4").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # a few frames in
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 143 and "Traceback" not in err, err[-2000:]
    cap = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert cap.isOpened() and 0 < int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) < 200
    cap.release()
