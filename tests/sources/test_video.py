"""Video files, stream URLs and cameras (sceneparse/sources/video.py)."""

import functools
import http.server
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
