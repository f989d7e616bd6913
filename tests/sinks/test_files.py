"""File sinks: label PNGs, overlays and probabilities (sceneparse/sinks/labels.py, overlay.py,
probs.py) and the sink registry (sceneparse/sinks/base.py)."""

import numpy as np
import pytest
from PIL import Image

from sceneparse.pipeline import ParseResult
from sceneparse.sinks import LabelSink, OverlaySink, ProbsSink, StreamInfo, build_sink, list_sinks
from sceneparse.sources import Frame

PALETTE = np.array([[255, 0, 0], [0, 0, 255], [0, 255, 0]], np.uint8)
INFO = StreamInfo(("a", "b", "c"), PALETTE)


def _frame_and_result(index=3, name="sub/img"):
    labels = np.zeros((6, 8), np.int64)
    labels[:, 4:] = 2
    probs = np.stack([labels == 0, labels == 1, labels == 2]).astype(np.float32)
    image = np.full((6, 8, 3), 128, np.uint8)
    return Frame(image, index, 0.5, name=name), ParseResult(labels, probs, INFO.class_names, PALETTE)


def test_feature_label_png_holds_class_indices_and_the_palette(tmp_path):
    sink = LabelSink(tmp_path)
    sink.open(INFO)
    frame, result = _frame_and_result()
    sink.write(frame, result)
    img = Image.open(tmp_path / "sub" / "img_labels.png")
    assert img.mode == "P" and np.array_equal(np.asarray(img), result.labels)
    assert img.getpalette()[6:9] == [0, 255, 0]  # class 2's colour
    stream = LabelSink(tmp_path, pattern="labels/{index:06d}.png")
    stream.open(INFO)
    stream.write(frame, result)
    assert (tmp_path / "labels" / "000003.png").is_file() and stream.summary()["files"] == 1


def test_feature_overlay_and_probs(tmp_path):
    frame, result = _frame_and_result(name="x")
    overlay, probs = OverlaySink(tmp_path, alpha=1.0, legend=False), ProbsSink(tmp_path)
    for s in (overlay, probs):
        s.open(INFO)
        s.write(frame, result)
    from sceneparse.io import read_image

    img = read_image(tmp_path / "x_overlay.jpg")
    assert img.shape == (6, 8, 3) and img[3, 6, 1] > 200 and img[3, 6, 0] < 60  # green where class 2 (JPEG)
    data = np.load(tmp_path / "x_probs.npz")
    assert data["probs"].dtype == np.float16 and np.array_equal(data["probs"], result.probs)
    assert list(data["class_names"]) == ["a", "b", "c"] and float(data["timestamp"]) == 0.5


def test_exception_sink_registry_names_the_problem(tmp_path):
    assert {"labels", "overlay", "probs", "video", "metrics"} <= set(list_sinks())
    with pytest.raises(ValueError, match="unknown sink 'nope'; available: labels, metrics"):
        build_sink("nope", out=tmp_path)
    with pytest.raises(ValueError, match=r"unknown sink 'overlays' \(did you mean 'overlay'\?\); available"):
        build_sink("overlays", out=tmp_path)
    with pytest.raises(ValueError, match="writes files: give it an output folder"):
        build_sink("labels")
    with pytest.raises(ValueError, match="no parameter.*colour"):
        build_sink("overlay", out=tmp_path, colour=1)
    assert build_sink({"name": "overlay", "alpha": 0.3}, out=tmp_path).alpha == 0.3


def test_edge_interrupts_wait_until_the_outputs_are_written():
    import os
    import signal

    from sceneparse.sinks.base import interrupts_deferred

    before = signal.getsignal(signal.SIGINT)
    done = False
    with interrupts_deferred("writing"):
        os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C while the outputs close
        os.kill(os.getpid(), signal.SIGTERM)
        done = True
    assert done and signal.getsignal(signal.SIGINT) is before  # held off, then the handlers are back
