"""The overlay video sink (sceneparse/sinks/video.py)."""

import cv2
import numpy as np
import pytest
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


def _write(sink, frames, masks, indices, sequences=None):
    for k, (i, f, m) in enumerate(zip(indices, frames, masks)):
        labels = m.astype(np.int64)
        frame = Frame(f, i, i / 10, sequence=None if sequences is None else sequences[k])
        sink.write(frame, ParseResult(labels, np.stack([1.0 - labels, labels]), ("bg", "square"), PALETTE))


def _count(path):
    cap = cv2.VideoCapture(str(path))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    cap.release()
    return n


def test_feature_dropped_frames_hold_the_last_overlay_so_the_video_keeps_the_source_timing(tmp_path):
    # real-time mode drops frames (their numbers are skipped): a video of the labelled ones only
    # played 101 frames of a 15 Hz run as 37, three times too fast
    frames, masks = moving_scene(5)
    sink = VideoSink(tmp_path)
    sink.open(StreamInfo(("bg", "square"), PALETTE, fps=10.0))
    _write(sink, frames, masks, [0, 3, 4, 9, 0], sequences=["a", "a", "a", "a", "b"])
    sink.close()
    # 0, (1, 2 held), 3, 4, (5..8 held), 9; a new sequence starting at 0 adds no frame
    assert _count(tmp_path / "overlay.mp4") == 11
    assert sink.summary()["repeated"] == 6 and sink.summary()["frames"] == 11


def test_exception_a_nearly_full_disk_stops_the_video_while_it_still_plays(tmp_path, monkeypatch):
    # OpenCV's writer reports no failed write: a disk that filled up left an MP4 without its index
    # (no player opened it) and the command said it had written every frame
    import os
    import types

    from sceneparse.errors import OutputError

    frames, masks = moving_scene(8)
    sink = VideoSink(tmp_path)
    sink.open(StreamInfo(("bg", "square"), PALETTE, fps=10.0))
    _write(sink, frames[:3], masks[:3], range(3))
    real = os.statvfs(tmp_path)
    monkeypatch.setattr(
        "sceneparse.sinks.video.os.statvfs",
        lambda _: types.SimpleNamespace(f_bavail=100 << 10, f_frsize=1, f_bsize=real.f_bsize),
    )
    with pytest.raises(OutputError, match="disk is almost full.*closed at 3 frames"):
        _write(sink, frames[3:], masks[3:], range(3, 8))
    sink.close()
    assert _count(tmp_path / "overlay.mp4") == 3


_FILE_SIZE_LIMITED = """
import resource, signal, sys
import numpy as np
from sceneparse.errors import OutputError
from sceneparse.pipeline import ParseResult
from sceneparse.sinks import StreamInfo, VideoSink
from sceneparse.sources import Frame
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))
palette = np.array([[255, 0, 0], [0, 0, 255]], np.uint8)
sink = VideoSink(sys.argv[1])
sink.open(StreamInfo(("a", "b"), palette, fps=10.0))
rng = np.random.default_rng(0)
labels = np.zeros((96, 128), np.int64)
probs = np.stack([1.0 - labels, labels])
for i in range(40):
    sink.write(Frame(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8), i, i / 10),
               ParseResult(labels, probs, ("a", "b"), palette))
try:
    sink.close()
except OutputError as err:
    print("OutputError:", err)
"""


def test_exception_a_video_the_writer_could_not_finish_is_an_error(tmp_path):
    # a write that fails where free space cannot be seen (a file size limit, a quota): the closed
    # file is checked, and an unplayable one is not given the video's name
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _FILE_SIZE_LIMITED, str(tmp_path)], capture_output=True, text=True,
                          check=True)  # fmt: skip
    assert "OutputError:" in done.stdout and "writing the video failed" in done.stdout
    assert not (tmp_path / "overlay.mp4").exists() and (tmp_path / ".overlay.part.mp4").exists()
