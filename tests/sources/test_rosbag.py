"""ROS bags as a source (sceneparse/sources/rosbag.py): bags written by the test from real
7-Scenes frames, ROS 2 (sqlite3 and MCAP) and ROS 1, Image and CompressedImage, with aligned
depth and camera_info; topic choice; truncated bags (read up to the cut, then a clear error) and
corrupt ones."""

import numpy as np
import pytest
from optional import require

require("rosbags", "pip install 'sceneparse[ros]'")

from rosbag_files import START_NS, STEP_NS, write_bag  # noqa: E402

from sceneparse.errors import InputError  # noqa: E402
from sceneparse.sources import RosbagSource, SevenScenesSource, open_source  # noqa: E402
from sceneparse.sources.rosbag import is_bag  # noqa: E402


@pytest.fixture(scope="module")
def frames(sevenscenes_path):
    return list(SevenScenesSource(sevenscenes_path))[:4]


@pytest.mark.parametrize(("ros", "compressed", "storage"),
                         [(2, False, "sqlite3"), (2, True, "sqlite3"), (2, False, "mcap"), (1, False, ""),
                          (1, True, "")])  # fmt: skip
def test_feature_bag_frames_match_the_frames_written(frames, tmp_path, ros, compressed, storage):
    path = write_bag(tmp_path / ("in.bag" if ros == 1 else "in"), frames, ros, compressed, storage)
    assert is_bag(path)
    src = open_source(path)
    assert isinstance(src, RosbagSource) and len(src) == len(frames)
    assert src.depth_topic == "/camera/aligned_depth_to_color/image_raw"
    got = list(src)
    src.close()
    assert [f.index for f in got] == list(range(len(frames)))
    for f, ref in zip(got, frames):
        assert f.image.shape == ref.image.shape and f.image.dtype == np.uint8
        diff = np.abs(f.image.astype(int) - ref.image).mean()
        assert diff < 2.0 if compressed else diff == 0  # JPEG at quality 95, or exact
        assert f.depth.dtype == np.float32 and np.abs(f.depth - ref.depth).max() < 1e-3  # mm precision
        assert np.allclose(f.intrinsics, ref.intrinsics)
        assert f.extra["stamp_ns"] == START_NS + f.index * STEP_NS
        assert f.timestamp == pytest.approx(f.extra["stamp_ns"] / 1e9)
        assert f.extra["frame_id"] == "camera_color_optical_frame" and f.pose is None


def test_feature_topic_choice_and_bags_without_depth(frames, tmp_path):
    path = write_bag(tmp_path / "in", frames, depth=False)
    src = RosbagSource(path)
    assert src.depth_topic == "" and all(f.depth is None and "depth_error" not in f.extra for f in src)
    # the depth topic as the image topic: refused, it is not colour
    src = RosbagSource(write_bag(tmp_path / "in2", frames[:2]), topic="/camera/aligned_depth_to_color/image_raw",
                       depth_topic="")  # fmt: skip
    with pytest.raises(InputError, match="not colour"):
        list(src)
    with pytest.raises(InputError, match="no image topic '/nope'"):
        RosbagSource(path, topic="/nope")
    # a single .db3 file is read as its bag
    assert len(list(RosbagSource(next(path.glob("*.db3"))))) == len(frames)


def _cut(path, fraction=None, size=None):
    """Cut the bag's file (the .bag, or the folder's .db3 or .mcap) to ``fraction`` of its bytes,
    or to ``size`` bytes."""
    f = path if path.is_file() else next(p for p in path.iterdir() if p.suffix in (".db3", ".mcap"))
    data = f.read_bytes()
    f.write_bytes(data[: size if size is not None else int(len(data) * fraction)])
    return f


TRUNCATED = [("in", 2, "sqlite3", True), ("in_mcap", 2, "mcap", True), ("raw_mcap", 2, "mcap", False),
             ("in.bag", 1, "", True), ("raw.bag", 1, "", False)]  # fmt: skip


@pytest.mark.parametrize(("name", "ros", "storage", "compressed"), TRUNCATED)
def test_exception_truncated_bag_yields_its_frames_then_a_clear_error(sevenscenes_path, tmp_path, name, ros, storage,
                                                                      compressed):  # fmt: skip
    """A bag cut off at 60% of its bytes: rosbags cannot open it (no ROS 1 index, no MCAP
    summary, a database shorter than its header says); the frames of the complete messages come
    with their depth, intrinsics and poses, then an InputError names the bag and the count."""
    frames = list(SevenScenesSource(sevenscenes_path))[:8]
    path = write_bag(tmp_path / name, frames, ros, compressed, storage, poses=True)
    _cut(path, 0.6)
    src = open_source(path)
    got = []
    with pytest.raises(InputError, match=rf"{name}: the bag breaks off after (\d+) frames") as err:
        for f in src:
            got.append(f)
    src.close()
    assert 2 <= len(got) < len(frames) and f"after {len(got)} frames" in str(err.value)
    for f, ref in zip(got, frames):
        assert f.extra["stamp_ns"] == START_NS + f.index * STEP_NS
        assert np.abs(f.image.astype(int) - ref.image).mean() < (2.0 if compressed else 1e-9)
        assert np.abs(f.depth - ref.depth).max() < 1e-3 and np.allclose(f.intrinsics, ref.intrinsics)
        assert np.allclose(f.pose, ref.pose, atol=1e-3)


@pytest.mark.parametrize(("name", "ros", "storage", "compressed"), TRUNCATED[:2] + TRUNCATED[3:4])
def test_exception_bag_without_a_complete_message_is_a_clear_error_when_opened(frames, tmp_path, name, ros, storage,
                                                                                compressed):  # fmt: skip
    """Cut within its first 3000 bytes (headers, no message): nothing to read."""
    path = write_bag(tmp_path / name, frames, ros, compressed, storage)
    _cut(path, size=3000)
    with pytest.raises(InputError, match=f"{name}: not a readable ROS bag"):
        open_source(path)


def test_exception_corrupt_message_ends_the_stream_after_the_frames_before(frames, tmp_path):
    path = write_bag(tmp_path / "in", frames, compressed=True)
    # corrupt the third JPEG inside the database
    import sqlite3

    db = next(path.glob("*.db3"))
    con = sqlite3.connect(db)
    rows = con.execute("select m.id, m.data from messages m join topics t on m.topic_id = t.id "
                       "where t.name like '%compressed' order by m.timestamp").fetchall()  # fmt: skip
    data = bytearray(rows[2][1])
    data[60:] = b"\x00" * (len(data) - 60)  # the JPEG's bytes after its header: not an image
    con.execute("update messages set data = ? where id = ?", (bytes(data), rows[2][0]))
    con.commit()
    con.close()
    got = []
    with pytest.raises(InputError, match="after 2 frames"):
        for f in RosbagSource(path):
            got.append(f)
    assert len(got) == 2


@pytest.mark.parametrize("ros", [2, 1])
def test_feature_camera_poses_from_a_pose_topic(frames, tmp_path, ros):
    path = write_bag(tmp_path / ("in.bag" if ros == 1 else "in"), frames, ros, poses=True)
    src = RosbagSource(path)
    assert src.pose_topic == "/camera/pose"
    for f, ref in zip(src, frames):
        assert np.allclose(f.pose, ref.pose, atol=1e-3)  # (7-Scenes' rotations are orthonormal to 1e-4)
    assert all(f.pose is None for f in RosbagSource(path, pose_topic=""))
    with pytest.raises(InputError, match="no pose topic"):
        RosbagSource(path, pose_topic="/tf")


def test_feature_a_recording_cut_short_without_metadata_is_read(frames, tmp_path):
    """A ROS 2 recording that was killed never writes metadata.yaml: its database is read directly."""
    path = write_bag(tmp_path / "in", frames, poses=True)
    (path / "metadata.yaml").unlink()
    src = open_source(path)
    assert isinstance(src, RosbagSource) and len(src) == len(frames)
    got = list(src)
    assert [f.extra["stamp_ns"] for f in got] == [START_NS + i * STEP_NS for i in range(len(frames))]
    assert all(f.depth is not None and f.pose is not None and f.intrinsics is not None for f in got)
    assert np.array_equal(got[1].image, frames[1].image)


def test_feature_depth_from_another_camera_is_named_in_a_warning(frames, tmp_path, caplog):
    """A raw depth topic with its own camera_info (not the colour camera's) is read, with a warning
    naming both cameras and the registered topic to give instead; aligned depth gives none."""
    k_depth = np.array([[570.0, 0, 314], [0, 570.0, 242], [0, 0, 1]])  # the frames: 585, (320, 240)
    raw = write_bag(tmp_path / "raw", frames[:2], depth_topic="/camera/depth/image_raw", depth_intrinsics=k_depth)
    with caplog.at_level("WARNING", logger="sceneparse.sources.rosbag"):
        src = RosbagSource(raw)
    assert src.depth_topic == "/camera/depth/image_raw" and len(list(src)) == 2
    assert "/camera/depth/camera_info: fx 570.0" in caplog.text and "depth_registered" in caplog.text
    caplog.clear()
    same = write_bag(tmp_path / "aligned", frames[:2], depth_intrinsics=frames[0].intrinsics)
    with caplog.at_level("WARNING", logger="sceneparse.sources.rosbag"):
        RosbagSource(same).close()
    assert "not aligned" not in caplog.text


def test_feature_float_depth_in_metres_and_a_clear_error_for_millimetres(frames, tmp_path):
    got = list(RosbagSource(write_bag(tmp_path / "m", frames[:2], float_depth=1.0)))
    assert all(np.abs(f.depth - ref.depth).max() < 1e-6 for f, ref in zip(got, frames))
    src = RosbagSource(write_bag(tmp_path / "mm", frames[:2], float_depth=1000.0))
    with pytest.raises(InputError, match="aligned_depth_to_color/image_raw: float depth reaching .* millimetres"):
        list(src)
