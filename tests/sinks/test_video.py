"""The overlay video sink (sceneparse/sinks/video.py)."""

import cv2
import numpy as np
from synthetic import moving_scene

from sceneparse.pipeline import ParseResult
from sceneparse.sinks import StreamInfo, VideoSink
from sceneparse.sources import Frame

PALETTE = np.array([[255, 0, 0], [0, 0, 255]], np.uint8)


def test_feature_frames_of_another_size_are_kept_not_dropped(tmp_path):
    frames, masks = moving_scene(6)
    frames[2], masks[2] = cv2.resize(frames[2], (64, 48)), cv2.resize(masks[2].astype(np.uint8), (64, 48)) > 0
    sink = VideoSink(tmp_path)
    sink.open(StreamInfo(("bg", "square"), PALETTE, fps=10.0))
    for i, (f, m) in enumerate(zip(frames, masks)):
        labels = m.astype(np.int64)
        sink.write(
            Frame(f, i, i / 10), ParseResult(labels, np.stack([1.0 - labels, labels]), ("bg", "square"), PALETTE)
        )
    sink.close()
    sink.close()  # closing twice is safe
    cap = cv2.VideoCapture(str(tmp_path / "overlay.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6 and cap.get(cv2.CAP_PROP_FPS) == 10
    assert sink.summary()["resized"] == 1 and sink.summary()["frames"] == 6
    ok, first = cap.read()
    assert ok and first.shape == (96, 128, 3)
