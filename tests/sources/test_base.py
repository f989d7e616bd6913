"""The source registry and open_source (sceneparse/sources/base.py): a source written here,
outside the package, plugs into open_source and the frame loop."""

import numpy as np
import pytest

from sceneparse.sources import SOURCES, Frame, Source, list_sources, open_source, register_source


class CountingSource(Source):
    """Frames of one grey level per frame, for specs like ``grey:3``."""

    kind = "grey-test"
    priority = 1

    @classmethod
    def accepts(cls, spec) -> bool:
        return str(spec).startswith("grey:")

    def __init__(self, spec) -> None:
        super().__init__()
        self.n = int(str(spec).split(":")[1])
        self.fps = 5.0

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        for i in range(self.n):
            yield Frame(np.full((32, 40, 3), 30 * i, np.uint8), i, i / self.fps, name=f"g{i}")


@pytest.fixture
def grey_source():
    register_source(CountingSource)
    yield CountingSource
    SOURCES.pop(CountingSource.kind)


def test_feature_a_source_from_outside_the_package_is_opened_by_spec(grey_source, tmp_path):
    assert "grey-test" in list_sources()
    src = open_source("grey:3")
    assert isinstance(src, CountingSource) and [f.name for f in src] == ["g0", "g1", "g2"]


def test_exception_open_source_names_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="source not found"):
        open_source(tmp_path / "nothing-here")
    with pytest.raises(ValueError, match="unknown source kind 'nope'; known: "):
        open_source(tmp_path, kind="nope")


def test_feature_nearest_pose_takes_the_nearer_neighbour_within_the_tolerance():
    from sceneparse.sources.base import nearest_pose

    times = np.array([0.0, 1.0, 2.0, 4.0])
    poses = np.stack([np.eye(4) * (i + 1) for i in range(4)])
    pick = [nearest_pose((times, poses), t, 0.6) for t in (-0.5, 0.4, 1.5, 2.5, 3.0, 3.5, 4.5, 5.0)]
    # before the first, nearer the first, a tie (the earlier), nearer 2.0, beyond the tolerance of
    # both neighbours, nearer 4.0, after the last, too far after it
    assert [None if p is None else int(p[0, 0]) for p in pick] == [1, 1, 2, 3, None, 4, 4, None]
    assert nearest_pose(None, 1.0, 1.0) is None and nearest_pose((times[:0], poses[:0]), 1.0, 1.0) is None
    stamps = np.array([10**18, 10**18 + 5 * 10**7], np.int64)  # a bag's nanoseconds
    assert int(nearest_pose((stamps, poses[:2]), 10**18 + 3 * 10**7, 3e7)[0, 0]) == 2
    nearest_pose((times, poses), 1.0, 0.1)[0, 0] = 99
    assert poses[1, 0, 0] == 2  # a copy


def test_feature_floating_point_depth_images_hold_metres(sevenscenes_path, tmp_path):
    """A 32-bit floating-point depth TIFF in metres (as renderers and stereo pipelines write) was
    refused ('depth must be a single-channel 16-bit PNG'), so every frame came without depth."""
    import cv2

    from sceneparse.sources.base import read_frame_depth

    mm = cv2.imread(str(sevenscenes_path / "frame-000000.depth.png"), cv2.IMREAD_UNCHANGED)
    metres = (mm / 1000).astype(np.float32)
    metres[0, :10] = np.nan  # no reading, as renderers write it
    cv2.imwrite(str(tmp_path / "m.tiff"), metres)
    depth, extra = read_frame_depth(tmp_path / "m.tiff", 1000.0)
    assert extra == {} and depth.dtype == np.float32 and np.array_equal(depth[1:], mm[1:] / np.float32(1000))
    assert (depth[0, :10] == 0).all()
    cv2.imwrite(str(tmp_path / "mm.tiff"), mm.astype(np.float32))  # floats in millimetres: named, not taken
    depth, extra = read_frame_depth(tmp_path / "mm.tiff", 1000.0)
    assert depth is None and "read as metres, and its median reading is" in extra["depth_error"]
    cv2.imwrite(str(tmp_path / "8bit.png"), (mm // 20).astype(np.uint8))  # 8-bit: still refused, the reason kept
    depth, extra = read_frame_depth(tmp_path / "8bit.png", 1000.0)
    assert depth is None and "single-channel 16-bit" in extra["depth_error"]


def test_exception_file_names_that_are_not_utf8_are_named_not_a_crash(tmp_path):
    """A file whose name holds bytes of another encoding (``caf\\xe9.jpg`` from a Latin-1 archive):
    OpenCV's Python bindings crashed the whole process on it (a segmentation fault, nothing
    written, no message). Each source now names it and goes on (run apart: a crash would end
    the test run)."""
    import os
    import subprocess
    import sys

    import cv2

    folder = tmp_path / "frames"
    folder.mkdir()
    for name in (b"0001.jpg", b"caf\xe9_0002.jpg", b"0003.jpg"):
        cv2.imencode(".jpg", np.full((16, 16, 3), 99, np.uint8))[1].tofile(os.fsdecode(bytes(folder) + b"/" + name))
    bad_folder = tmp_path / os.fsdecode(b"s\xe9q")
    bad_folder.mkdir()
    (bad_folder / "0001.jpg").write_bytes((folder / "0001.jpg").read_bytes())
    (bad_folder / "clip.mp4").write_bytes(b"not a video")
    code = (
        "import sys\n"
        "from sceneparse.sources import FolderSource, ImageFiles, VideoSource\n"
        "folder, bad = sys.argv[1], sys.argv[2]\n"
        "for cls in (FolderSource, ImageFiles):\n"
        "    src = cls(folder)\n"
        "    print(cls.__name__, [f.name for f in src], *src.failed.values())\n"
        "for make in (lambda: FolderSource(bad), lambda: VideoSource(bad + '/clip.mp4')):\n"
        "    try:\n"
        "        make()\n"
        "    except ValueError as err:\n"
        "        print(err)\n"
    )
    run = subprocess.run([sys.executable, "-c", code, str(folder), str(bad_folder)], capture_output=True,
                         text=True, errors="backslashreplace", timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    reason = "the name is not valid UTF-8 (bytes of another encoding), which OpenCV cannot open: rename it"
    assert lines[0].startswith("FolderSource ['0001', '0003'] ") and lines[0].endswith("caf\\udce9_0002.jpg: " + reason)
    assert lines[1].startswith("ImageFiles ['0001', '0003'] ") and lines[1].endswith("caf\\udce9_0002.jpg: " + reason)
    assert lines[2].endswith("s\\udce9q: " + reason) and lines[3].endswith("s\\udce9q/clip.mp4: " + reason)
