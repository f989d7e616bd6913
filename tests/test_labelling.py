"""Labelling files and streams into a folder (sceneparse/labelling.py): which inputs are
streams, where each output goes."""

import cv2
import numpy as np
import pytest
from synthetic import moving_scene, write_clip

from sceneparse import SceneParser, label
from sceneparse.labelling import is_stream


@pytest.fixture(scope="module")
def parser():
    return SceneParser.from_pretrained("stanford-background")


def test_feature_is_stream_recognises_videos_cameras_and_sequences(tmp_path, sevenscenes_path):
    (tmp_path / "photos").mkdir()
    assert is_stream("clip.MP4") and is_stream("0") and is_stream(2) and is_stream("rtsp://cam/1")
    assert is_stream(sevenscenes_path)  # an RGB-D sequence layout, without --stream
    assert not is_stream(tmp_path / "photos") and is_stream(tmp_path / "photos", force=True)
    assert not is_stream("photo.jpg")


def test_feature_mixed_inputs_each_get_their_outputs(parser, tmp_path):
    frames, _ = moving_scene(5)
    write_clip(tmp_path / "a.avi", frames)
    write_clip(tmp_path / "b.avi", frames[:3])
    cv2.imwrite(str(tmp_path / "still.png"), frames[0])
    out = tmp_path / "out"
    report = label(parser, [tmp_path / "a.avi", tmp_path / "b.avi", tmp_path / "still.png"], out, labels=True,
                   temporal="flow", progress=False)  # fmt: skip
    assert {k.rsplit("/", 1)[-1]: v["frames"] for k, v in report["streams"].items()} == {"a.avi": 5, "b.avi": 3}
    assert (out / "a" / "overlay.mp4").is_file() and len(list((out / "a" / "labels").iterdir())) == 5
    assert (out / "b" / "overlay.mp4").is_file() and len(list((out / "b" / "labels").iterdir())) == 3
    assert report["images"]["labels"] == [str(out / "still_labels.png")]
    assert (out / "still_overlay.jpg").is_file()


def test_exception_nothing_to_label(parser, tmp_path):
    with pytest.raises(ValueError, match="nothing to label"):
        label(parser, [], tmp_path)
    with pytest.raises(ValueError, match=r"got an array: parser.parse\(rgb\) labels an image in memory"):
        label(parser, np.zeros((32, 32, 3), np.uint8), tmp_path / "o")  # its rows were taken for inputs
    with pytest.raises(FileNotFoundError, match="input not found: .*missing.mp4"):  # before any work
        label(parser, [tmp_path / "missing.mp4"], tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()


def test_exception_unknown_refiner_or_temporal_method_before_any_work(parser, tmp_path):
    """A mistyped refiner or temporal method fails the call before any output, not once per
    stream with the call returning (and the still images labelled without the refiner's fix)."""
    from sceneparse.errors import ConfigError

    frames, _ = moving_scene(3)
    write_clip(tmp_path / "a.avi", frames)
    cv2.imwrite(str(tmp_path / "still.png"), frames[0])
    inputs = [tmp_path / "a.avi", tmp_path / "still.png"]
    with pytest.raises(ConfigError, match=r"unknown refiner 'crff' \(did you mean 'crf'\?\)"):
        label(parser, inputs, tmp_path / "o1", refine="crff", progress=False)
    with pytest.raises(ConfigError, match=r"refiner 'crf': iterations must be a positive integer"):
        label(parser, inputs, tmp_path / "o1", refine=[{"name": "crf", "iterations": 0}], progress=False)
    with pytest.raises(ConfigError, match=r"unknown temporal method 'flw' \(did you mean 'flow'\?\)"):
        label(parser, inputs, tmp_path / "o2", temporal="flw", progress=False)
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_feature_overwrite_leaves_no_scores_of_the_earlier_run(parser, tmp_path):
    from sceneparse.errors import OutputError

    # an earlier run's metrics.json (--sink metrics) stayed beside the new overlay of a run without
    # them, and passed for its scores
    frames, _ = moving_scene(3)
    write_clip(tmp_path / "a.avi", frames)
    out = tmp_path / "out"
    label(parser, tmp_path / "a.avi", out, labels=True, sinks=["metrics"], progress=False)
    assert (out / "metrics.json").is_file() and len(list((out / "labels").iterdir())) == 3
    with pytest.raises(OutputError, match="already exist"):
        label(parser, tmp_path / "a.avi", out, progress=False)
    label(parser, tmp_path / "a.avi", out, max_frames=2, overwrite=True, progress=False)
    assert (out / "overlay.mp4").is_file() and not (out / "metrics.json").exists() and not (out / "labels").exists()


def test_feature_stream_overlay_images_go_beside_the_label_pngs_with_the_video_colours(parser, tmp_path):
    # --sink overlay on a video wrote 000000_overlay.jpg ... into the output folder itself, not
    # overlays/ beside labels/000000.png, and with the default opacity whatever --alpha said
    from sceneparse.labelling import existing_outputs

    frames, _ = moving_scene(3)
    write_clip(tmp_path / "a.avi", frames)
    out = tmp_path / "out"
    label(parser, tmp_path / "a.avi", out, labels=True, sinks=["overlay"], alpha=1.0, legend="off", progress=False)
    names = sorted(p.stem for p in (out / "labels").iterdir())
    assert names == ["000000", "000001", "000002"] and sorted(p.stem for p in (out / "overlays").iterdir()) == names
    assert not list(out.glob("*.jpg"))
    from PIL import Image

    labels = np.asarray(Image.open(out / "labels" / "000001.png"))
    shown = cv2.cvtColor(cv2.imread(str(out / "overlays" / "000001.jpg")), cv2.COLOR_BGR2RGB).astype(int)
    # alpha 1: the class colour only, inside a region of one class (JPEG's error aside)
    inside = cv2.erode((labels == np.bincount(labels.ravel()).argmax()).astype(np.uint8), np.ones((9, 9))) > 0
    assert inside.any() and np.abs(shown[inside] - parser.palette[labels[inside][0]].astype(int)).mean() < 8
    assert out / "overlays" in existing_outputs(out)
    label(parser, tmp_path / "a.avi", out, max_frames=1, overwrite=True, progress=False)
    assert not (out / "overlays").exists()


def test_feature_a_named_pipe_is_a_live_stream(parser, tmp_path):
    # ffmpeg ... -f mpegts PIPE (or | sceneparse label /dev/stdin): 'no source reads it' for a FIFO,
    # 'input not found' for /dev/stdin
    import os
    import threading

    frames, _ = moving_scene(6)
    data = write_clip(tmp_path / "a.avi", frames).read_bytes()
    pipe = tmp_path / "camera"  # no video suffix: known by being a pipe
    os.mkfifo(pipe)
    assert is_stream(pipe) and is_stream(str(pipe))

    def feed():
        with open(pipe, "wb") as f:
            f.write(data)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    report = label(parser, [pipe], tmp_path / "out", labels=True, progress=False)
    writer.join(timeout=10)
    stats = report["streams"][str(pipe)]
    assert stats["frames"] == 6 and stats["input_error"] is None
    assert len(list((tmp_path / "out" / "labels").iterdir())) == 6
