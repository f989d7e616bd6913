"""The demos (demos/*.py): a bad input or model is one clear line, never a traceback, and the
other inputs are still labelled."""

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import require_data, shared_data

ROOT = Path(__file__).resolve().parents[2]


def _demo(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "demos" / name), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})  # fmt: skip


def test_exception_label_samples_reports_a_corrupt_input_and_labels_the_others(tmp_path):
    sequence = require_data("rgbd-sequence-7scenes", shared_data() / "rgbd-sequence-7scenes")
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(sequence / "frame-000000.color.jpg", photos / "kitchen.jpg")
    (photos / "broken.jpg").write_bytes(b"not a JPEG")
    done = _demo("label_samples.py", "--inputs", str(photos), "--out", str(tmp_path / "out"))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"not labelled: {photos / 'broken.jpg'}: not a readable image" in done.stderr
    assert (tmp_path / "out" / "kitchen_overlay.jpg").is_file() and (tmp_path / "out" / "kitchen_labels.png").is_file()


def test_exception_missing_inputs_and_unknown_models_are_one_line(tmp_path):
    done = _demo("label_samples.py", "--inputs", str(tmp_path / "nothing.jpg"), "--out", str(tmp_path / "out"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().endswith(f"label_samples.py: error: input not found: {tmp_path / 'nothing.jpg'}")
    done = _demo("label_video.py", str(tmp_path / "drive.mp4"), "--model", "nosuch", "--out", str(tmp_path / "v"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "label_video.py: error: unknown pretrained model 'nosuch'" in done.stderr
    assert not (tmp_path / "v").exists()


def _load(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"demo_{name}", ROOT / "demos" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_exception_ctrl_c_ends_the_demos_with_exit_code_130(monkeypatch, tmp_path, capsys):
    # the frame loop catches Ctrl-C, closes the outputs and reports it in its statistics
    video = _load("label_video")
    stats = {"frames": 3, "video": tmp_path / "overlay.mp4", "codec": "mp4v", "fps": 1.0, "latency_ms_mean": 1.0,
             "latency_ms_p95": 1.0, "written": 3, "interrupted": True}  # fmt: skip
    monkeypatch.setattr(video, "label_stream", lambda *a, **k: stats)
    assert video.main([str(tmp_path / "drive.mp4"), "--out", str(tmp_path), "--threads", "1"]) == 130
    samples = _load("label_samples")
    monkeypatch.setattr(samples, "label_images", lambda *a, **k: {"overlays": [], "failed": {}, "interrupted": True})
    assert samples.main(["--inputs", str(tmp_path), "--out", str(tmp_path / "out")]) == 130
    assert capsys.readouterr().err.count("interrupted") == 2
