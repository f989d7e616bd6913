"""Bad and awkward inputs end to end, through the command as a user runs it: name clashes,
frames of changing size, unwritable outputs, Ctrl-C (a signal sent to a subprocess), RGB-D
sequences given without --stream. Each case once lost output or reported success wrongly."""

import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from synthetic import moving_scene, write_clip

from sceneparse.cli import main


def _frames_in(video) -> int:
    cap = cv2.VideoCapture(str(video))
    n = 0
    while cap.read()[0]:
        n += 1
    return n


@pytest.mark.slow
def test_feature_same_named_videos_get_their_own_folders(tmp_path):
    frames, _ = moving_scene(4)
    for d, n in (("x", 4), ("y", 3)):
        (tmp_path / "vid" / d).mkdir(parents=True)
        write_clip(tmp_path / "vid" / d / "clip.avi", frames[:n])
    out = tmp_path / "o"
    args = ["label", str(tmp_path / "vid/x/clip.avi"), str(tmp_path / "vid/y/clip.avi"), "--out", str(out),
            "--labels", "--temporal", "flow", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    assert _frames_in(out / "x" / "clip" / "overlay.mp4") == 4 and _frames_in(out / "y" / "clip" / "overlay.mp4") == 3
    assert len(list((out / "x" / "clip" / "labels").iterdir())) == 4
    assert len(list((out / "y" / "clip" / "labels").iterdir())) == 3
    # a second run into the same folder refuses, naming what it would overwrite, and leaves it as it was
    before = (out / "x" / "clip" / "overlay.mp4").stat().st_mtime_ns
    assert main(args) == 1
    assert (out / "x" / "clip" / "overlay.mp4").stat().st_mtime_ns == before
    assert main([*args, "--overwrite"]) == 0


def test_feature_same_named_images_all_written(tmp_path, capsys):
    img = np.full((40, 50, 3), 90, np.uint8)
    for p in ("a/same.jpg", "b/same.jpg", "c/same_1.jpg"):
        (tmp_path / p).parent.mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / p), img)
    out = tmp_path / "o"
    assert main(["label", *(str(tmp_path / p) for p in ("a/same.jpg", "b/same.jpg", "c/same_1.jpg")),
                 "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    assert "labelled 3 image(s)" in capsys.readouterr().out
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*_labels.png"))
    assert written == ["a/same_labels.png", "b/same_labels.png", "same_1_labels.png"]


def test_feature_frames_of_changing_size_all_reach_the_video(tmp_path):
    frames, _ = moving_scene(9)
    seq = tmp_path / "mixed"
    seq.mkdir()
    for i, f in enumerate(frames):
        f = cv2.resize(f, (64, 48)) if i % 3 == 1 else f
        cv2.imwrite(str(seq / f"{i:04d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    out = tmp_path / "o"
    assert main(["label", str(seq), "--stream", "--out", str(out), "--labels", "--no-progress"]) == 0
    assert _frames_in(out / "overlay.mp4") == 9 and len(list((out / "labels").iterdir())) == 9


def test_exception_unwritable_output_fails_before_the_model_loads(tmp_path, caplog):
    frames, _ = moving_scene(2)
    write_clip(tmp_path / "clip.avi", frames)
    cv2.imwrite(str(tmp_path / "a.png"), frames[0])
    (tmp_path / "taken").write_text("a file where the output folder should go")
    for target in (tmp_path / "taken", "/sys/sceneparse-out"):  # a file in the way; refused even to root
        for inp in ("clip.avi", "a.png"):
            caplog.clear()
            assert main(["label", str(tmp_path / inp), "--out", str(target), "--no-progress"]) == 1
            assert "cannot write to" in caplog.text and "Traceback" not in caplog.text
            assert "no video encoder" not in caplog.text


def test_feature_rgbd_sequence_is_a_stream_without_the_flag(sevenscenes_path, tmp_path):
    out = tmp_path / "o"
    assert main(["label", str(sevenscenes_path), "--out", str(out), "--max-frames", "2", "--no-progress"]) == 0
    assert _frames_in(out / "overlay.mp4") == 2
    assert not list(out.glob("*_overlay.jpg"))  # the depth PNGs were not labelled as photos


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["video", "images"])
def test_exception_ctrl_c_exits_130_with_readable_outputs(tmp_path, kind):
    frames, _ = moving_scene(50, step=1)
    frames = (frames + frames[::-1]) * 2  # 200 frames, moving back and forth
    if kind == "video":
        inp = write_clip(tmp_path / "long.avi", frames)
        extra = ["--labels"]
    else:
        inp = tmp_path / "photos"
        inp.mkdir()
        for i, f in enumerate(frames):
            cv2.imwrite(str(inp / f"{i:04d}.png"), f)
        extra = []
    out = tmp_path / "o"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "sceneparse", "label", str(inp), "--out", str(out), "--no-progress", "--threads", "1"]
    # SIGINT as a terminal sends it, also when the tests run in a background job (whose children
    # inherit SIGINT ignored, and Python then installs no KeyboardInterrupt handler)
    proc = subprocess.Popen([*cmd, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            preexec_fn=_default_sigint)  # fmt: skip
    labels = out / "labels" if kind == "video" else out
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(labels.glob("*.png"))) < 3:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()[-2000:]
    assert b"interrupted" in err
    if kind == "video":
        n = _frames_in(out / "overlay.mp4")
        assert 3 <= n < 200 and n == len(list(labels.glob("*.png")))  # every frame written is in the video
    else:
        assert 3 <= len(list(out.glob("*_labels.png"))) < 200
    assert not list(out.rglob(".*tmp*"))  # no half-written file


def test_feature_corrupt_depth_frame_is_reported_and_the_stream_goes_on(sevenscenes_path, tmp_path, capsys):
    import shutil

    seq = tmp_path / "seq"
    seq.mkdir()
    shutil.copy(sevenscenes_path / "camera-intrinsics.txt", seq)
    stems = [p.name.split(".")[0] for p in sorted(sevenscenes_path.glob("frame-*.color.jpg"))[:3]]
    for stem in stems:
        for part in ("color.jpg", "depth.png", "pose.txt"):
            shutil.copy(sevenscenes_path / f"{stem}.{part}", seq)
    data = (seq / f"{stems[1]}.depth.png").read_bytes()
    (seq / f"{stems[1]}.depth.png").write_bytes(data[: len(data) // 3])
    out = tmp_path / "o"
    assert main(["label", str(seq), "--out", str(out), "--no-progress"]) == 0  # an RGB model does not need depth
    assert "1 without depth" in capsys.readouterr().out
    assert _frames_in(out / "overlay.mp4") == 3


@pytest.mark.parametrize("bad", [["--max-frames", "-5"], ["--alpha", "7"], ["--batch", "0"], ["--legend", "middle"],
                                 ["--temporal", "kalman"], ["--sink", "nope"]])  # fmt: skip
def test_exception_bad_label_options_fail_before_any_work(tmp_path, bad, capsys):
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as exc:
        main(["label", str(tmp_path), "--out", str(out), *bad])
    assert exc.value.code == 2 and bad[0] in capsys.readouterr().err
    assert not out.exists()  # nothing written, not even the folder
