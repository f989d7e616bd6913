"""Video files, stream URLs and cameras (sceneparse/sources/video.py)."""

import functools
import http.server
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest
from synthetic import moving_scene, write_clip

from sceneparse.sources import VideoSource, open_source


def test_feature_video_file_written_then_read(tmp_path):
    frames, _ = moving_scene()
    path = write_clip(tmp_path / "clip.avi", frames)
    with open_source(str(path)) as src:
        assert isinstance(src, VideoSource) and src.fps == pytest.approx(15)
        out = list(src)
    assert [f.index for f in out] == list(range(8))
    assert np.allclose([f.timestamp for f in out], np.arange(8) / 15, atol=1e-3)
    assert out[3].image.shape == (96, 128, 3) and np.abs(out[3].image.astype(int) - frames[3]).mean() < 8
    assert [f.name for f in out[:2]] == ["000000", "000001"]


def test_exception_corrupt_and_missing_video(tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    with pytest.raises(ValueError, match="not a readable video|no frame"):
        list(open_source(str(corrupt)))
    with pytest.raises(FileNotFoundError):
        open_source(str(tmp_path / "none.mp4"))


def test_feature_http_stream_from_a_local_server(tmp_path):
    frames, _ = moving_scene(6)
    write_clip(tmp_path / "clip.avi", frames)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with open_source(f"{url}/clip.avi") as src:
            assert isinstance(src, VideoSource) and src.live
            out = list(src)
        assert [f.index for f in out] == list(range(6))
        assert np.allclose([f.timestamp for f in out], np.arange(6) / 15, atol=1e-3)  # live: index / fps
        assert np.abs(out[2].image.astype(int) - frames[2]).mean() < 8
        with pytest.raises(ValueError, match="not a readable stream"):
            open_source(f"{url}/missing.avi")
    finally:
        server.shutdown()
    with pytest.raises(ValueError, match="not a readable camera"):
        open_source(97)


def test_feature_truncated_video_is_read_up_to_the_break(tmp_path):
    frames, _ = moving_scene(30, step=2)
    data = write_clip(tmp_path / "clip.avi", frames).read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    src = open_source(tmp_path / "cut.avi")
    n = sum(1 for _ in src)
    assert 0 < n < 30 and src.truncated
    cv2.setNumThreads(cv2.getNumThreads())  # OpenCV still usable after the broken file


def test_exception_unopenable_inputs_print_only_their_error(tmp_path):
    """OpenCV's and FFmpeg's own warnings (a camera index it cannot open, a cut MP4's missing
    moov atom) do not reach stderr: the one message is sceneparse's, naming the input."""
    frames, _ = moving_scene(8)
    writer = cv2.VideoWriter(str(tmp_path / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 15, (128, 96))
    for frame in frames:
        writer.write(frame)
    writer.release()
    data = (tmp_path / "clip.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])  # the moov atom is at the end
    code = (
        "import sys\n"
        "from sceneparse.sources import open_source\n"
        "for spec in sys.argv[1:]:\n"
        "    try:\n"
        "        open_source(spec)\n"
        "    except ValueError as exc:\n"
        "        print(exc, file=sys.stderr)\n"
    )
    run = subprocess.run([sys.executable, "-c", code, "97", str(tmp_path / "cut.mp4")],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    lines = run.stderr.strip().splitlines()
    assert lines == ["97: not a readable camera", f"{tmp_path / 'cut.mp4'}: not a readable video"], run.stderr


def test_exception_a_folder_given_as_a_video(tmp_path):
    """A folder named like a video was reported as 'video not found', though it is there."""
    (tmp_path / "clip.mp4").mkdir()
    with pytest.raises(ValueError, match="clip.mp4: a folder, not a video file"):
        VideoSource(str(tmp_path / "clip.mp4"))


class _VariableRate:
    """OpenCV's capture of a real variable frame rate VP8 WebM (25 frames, 10 at 15 Hz then 15 at
    5 Hz): the frames of a clip, the times and the frame count it reports for that file; ``cut``:
    the decoding stops after that many frames."""

    TIMES = [i / 15 for i in range(10)] + [2.0 + i / 5 for i in range(15)]

    def __init__(self, capture, spec, cut=25):
        self.cap, self.n, self.cut = capture(spec), 0, cut

    def read(self):
        ok, bgr = self.cap.read() if self.n < self.cut else (False, None)
        self.n += ok
        return ok, bgr

    def get(self, prop):
        if prop == cv2.CAP_PROP_POS_MSEC:
            return 1000 * self.TIMES[self.n - 1]
        if prop == cv2.CAP_PROP_FRAME_COUNT:
            return 73.0  # FFmpeg's estimate: duration 4.87 s x 15 Hz
        return self.cap.get(prop)

    def __getattr__(self, name):
        return getattr(self.cap, name)


@pytest.mark.parametrize("cut", [25, 15])
def test_feature_variable_frame_rate_video_read_to_its_end_is_not_called_truncated(tmp_path, monkeypatch, cut):
    """FFmpeg counts the frames of a WebM or MKV as its duration x its nominal frame rate, which a
    variable frame rate video (a phone's, a screen recording's) does not have: the WebM read to
    its end was reported as 'decoding stopped at frame 25 of 73 (truncated or corrupt video)' and
    ``sceneparse label`` exited 1. Cut after 15 frames (at 2.8 s of 4.87), it is still reported."""
    frames, _ = moving_scene(25, step=1)
    path = write_clip(tmp_path / "clip.avi", frames)
    capture = cv2.VideoCapture
    monkeypatch.setattr(cv2, "VideoCapture", lambda spec: _VariableRate(capture, spec, cut))
    src = VideoSource(str(path))
    got = list(src)
    assert len(got) == cut and got[-1].timestamp == pytest.approx(_VariableRate.TIMES[cut - 1])
    if cut == 25:
        assert not src.truncated
    else:
        assert src.truncated == "decoding stopped at frame 15 of 73 (truncated or corrupt video)"
