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


def _ffmpeg() -> str:
    """The ffmpeg program with libx264 (CI installs Debian's ffmpeg), or a skip off CI."""
    from optional import require_program

    from sceneparse.sinks.ffmpeg import ffmpeg_h264

    return require_program(ffmpeg_h264(), "no ffmpeg with libx264: apt-get install ffmpeg")


def _probe(path) -> dict:
    import json
    import subprocess

    ffprobe = _ffmpeg().replace("ffmpeg", "ffprobe")
    fields = "codec_name,width,height,pix_fmt,nb_read_frames,r_frame_rate"
    cmd = [ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", f"stream={fields}",
           "-of", "json", str(path)]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(run.stdout)["streams"][0]


def _camvid_run(camvid_path, n: int, size: tuple[int, int]):
    names = sorted((camvid_path / "val").glob("0016E5_0*.jpg"))[:n]
    assert len(names) == n
    frames = [cv2.resize(cv2.imread(str(p))[:, :, ::-1], size, interpolation=cv2.INTER_AREA) for p in names]
    masks = [f[:, :, 2] > 128 for f in frames]  # bright blue parts as one class: something to draw
    return frames, masks


def test_feature_overlay_video_is_h264_with_ffmpeg_on_path(camvid_path, tmp_path, monkeypatch):
    """OpenCV's wheels write no H.264, and browsers (the service's page) do not play the MPEG-4
    part 2 they write instead: with an ffmpeg program on PATH the video is H.264, 4:2:0, its odd
    sides padded by one pixel; SCENEPARSE_FFMPEG=0 keeps OpenCV's writer."""
    _ffmpeg()
    frames, masks = _camvid_run(camvid_path, 6, (241, 181))
    sink = VideoSink(tmp_path / "h264")
    sink.open(StreamInfo(("bg", "square"), PALETTE, fps=15.0))
    _write(sink, frames, masks, range(6))
    sink.close()
    probe = _probe(tmp_path / "h264" / "overlay.mp4")
    assert sink.summary()["codec"] == "avc1" and probe["codec_name"] == "h264" and probe["pix_fmt"] == "yuv420p"
    assert (probe["width"], probe["height"], int(probe["nb_read_frames"])) == (242, 182, 6)
    assert probe["r_frame_rate"] == "15/1"
    cap = cv2.VideoCapture(str(tmp_path / "h264" / "overlay.mp4"))
    ok, first = cap.read()
    expected = cv2.cvtColor(overlay_of(frames[0], masks[0]), cv2.COLOR_RGB2BGR)
    assert ok and np.abs(first[:181, :241].astype(int) - expected).mean() < 6  # the overlay, not a blank or shifted one
    monkeypatch.setenv("SCENEPARSE_FFMPEG", "0")
    sink = VideoSink(tmp_path / "opencv")
    sink.open(StreamInfo(("bg", "square"), PALETTE, fps=15.0))
    _write(sink, frames, masks, range(6))
    sink.close()
    assert sink.summary()["codec"] in ("mp4v", "avc1") and _count(tmp_path / "opencv" / "overlay.mp4") == 6
    assert (
        _probe(tmp_path / "opencv" / "overlay.mp4")["codec_name"]
        == {"mp4v": "mpeg4", "avc1": "h264"}[sink.summary()["codec"]]
    )


def overlay_of(rgb, mask):
    from sceneparse.visualize import overlay

    return overlay(rgb, mask.astype(np.int64), PALETTE, ("bg", "square"), 0.55, True)


_INTERRUPTED = """
import os, signal, sys, time
import numpy as np
from sceneparse.pipeline import ParseResult
from sceneparse.sinks import StreamInfo, VideoSink
from sceneparse.sources import Frame
palette = np.array([[255, 0, 0], [0, 0, 255]], np.uint8)
sink = VideoSink(sys.argv[1])
sink.open(StreamInfo(("a", "b"), palette, fps=10.0))
labels = np.zeros((96, 128), np.int64)
try:
    for i in range(1000):
        image = np.full((96, 128, 3), i % 255, np.uint8)
        sink.write(Frame(image, i, i / 10), ParseResult(labels, np.stack([1.0 - labels, labels]), ("a", "b"), palette))
        if i == 4:
            print("ready", flush=True)
        time.sleep(0.05)
except KeyboardInterrupt:
    sink.close()
    print("closed", sink.summary()["frames"], flush=True)
"""


def test_exception_ctrl_c_in_the_terminal_leaves_a_playable_h264_video(tmp_path):
    """Ctrl-C goes to the terminal's whole process group: the ffmpeg encoder runs in a session of
    its own, so it is not stopped under the sink, which closes the video with the frames so far."""
    import os
    import signal
    import subprocess
    import sys

    _ffmpeg()
    child = subprocess.Popen([sys.executable, "-c", _INTERRUPTED, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                             start_new_session=True)  # fmt: skip
    assert child.stdout.readline().strip() == "ready"
    os.killpg(child.pid, signal.SIGINT)  # as the terminal does: to every process of the group
    out, _ = child.communicate(timeout=60)
    frames = int(out.split()[-1])
    assert out.startswith("closed") and frames >= 5
    probe = _probe(tmp_path / "overlay.mp4")
    assert probe["codec_name"] == "h264" and int(probe["nb_read_frames"]) == frames
