"""ROS bags as a source (sceneparse/sources/rosbag.py): bags written by the test from real
7-Scenes frames, ROS 2 (sqlite3 and MCAP) and ROS 1, Image and CompressedImage, with aligned
depth and camera_info; topic choice; truncated bags (read up to the cut, then a clear error) and
corrupt ones."""

import json

import cv2
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
    # a single .db3 file is read as its bag, and so is the bag's metadata.yaml (it was 'not a readable video')
    assert len(list(RosbagSource(next(path.glob("*.db3"))))) == len(frames)
    assert is_bag(path / "metadata.yaml") and not is_bag(tmp_path / "metadata.yaml")
    src = open_source(path / "metadata.yaml")
    assert isinstance(src, RosbagSource) and src.path == path and len(list(src)) == len(frames)


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


# bags of other layouts than rosbag_files.write_bag's: the topics, types and timing of each message given


def _info_msg(t, header, k, h, w, binning=0):
    k = np.asarray(k, np.float64)
    roi = t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return t["sensor_msgs/msg/CameraInfo"](header=header, height=h, width=w, distortion_model="plumb_bob",
                                           binning_x=binning, binning_y=binning, roi=roi, d=np.zeros(5),
                                           k=k.reshape(-1), r=np.eye(3).reshape(-1),
                                           p=np.c_[k, np.zeros(3)].reshape(-1))  # fmt: skip


def _pose_msg(t, header, kind, pose, child):
    from scipy.spatial.transform import Rotation

    quat = t["geometry_msgs/msg/Quaternion"](*Rotation.from_matrix(pose[:3, :3]).as_quat())
    if kind == "TransformStamped":
        tf = t["geometry_msgs/msg/Transform"](translation=t["geometry_msgs/msg/Vector3"](*pose[:3, 3]), rotation=quat)
        return t["geometry_msgs/msg/TransformStamped"](header=header, child_frame_id=child, transform=tf)
    p = t["geometry_msgs/msg/Pose"](position=t["geometry_msgs/msg/Point"](*pose[:3, 3]), orientation=quat)
    if kind == "PoseStamped":
        return t["geometry_msgs/msg/PoseStamped"](header=header, pose=p)
    cov, zero = np.zeros(36), t["geometry_msgs/msg/Vector3"](0, 0, 0)
    twist = t["geometry_msgs/msg/TwistWithCovariance"](twist=t["geometry_msgs/msg/Twist"](linear=zero, angular=zero),
                                                       covariance=cov)  # fmt: skip
    pose = t["geometry_msgs/msg/PoseWithCovariance"](pose=p, covariance=cov)
    return t["nav_msgs/msg/Odometry"](header=header, child_frame_id=child, pose=pose, twist=twist)


def _depth_msg(t, header, depth, kind):
    """Depth as 16UC1 millimetres, or as compressed_depth_image_transport publishes it: a 12-byte
    header (int32 format, float32 depthQuantA, depthQuantB), then a PNG: of the millimetres
    (``16UC1; compressedDepth``) or of quantised inverse depth, ``A / d + B`` (``32FC1``; its
    codec's A and B for depth_quantization 100 and depth_max 10 m)."""
    import struct

    h, w = depth.shape
    mm = np.rint(depth * 1000).astype(np.uint16)
    if kind == "16UC1":
        return t["sensor_msgs/msg/Image"](header=header, height=h, width=w, encoding="16UC1", is_bigendian=0,
                                          step=w * 2, data=mm.view(np.uint8).reshape(-1))  # fmt: skip
    qa = 100.0 * (100.0 + 1.0)
    qb = 1.0 - qa / 10.0
    if kind.startswith("32FC1"):
        inv = np.where(depth > 0, qa / np.maximum(depth, 1e-6) + qb, 0)
        png = cv2.imencode(".png", np.clip(np.rint(inv), 0, 65535).astype(np.uint16))[1]
    else:
        png = cv2.imencode(".png", mm)[1]
    head = np.frombuffer(struct.pack("<iff", 0, qa, qb), np.uint8)
    return t["sensor_msgs/msg/CompressedImage"](header=header, format=kind,
                                                data=np.concatenate([head, png.reshape(-1)]))  # fmt: skip


def write_custom_bag(path, frames, colour="/camera/color/image_raw", jpeg=False, depth=None, depth_kind="16UC1",
                     depth_lag_ns=1_000_000, depth_size=None, infos=None, poses=None, empty=(),
                     encoding="rgb8", extra=None):  # fmt: skip
    """A ROS 2 bag of ``frames``: colour on ``colour`` (rgb8, or JPEG CompressedImage), depth on
    ``depth`` (``depth_kind``: 16UC1, or a compressedDepth format), recorded ``depth_lag_ns``
    after its colour image with the same header stamp (``depth_size``: (h, w) it is resized to,
    nearest neighbour); ``infos``: {camera_info topic: (K (None: the frame's), (h, w)[, binning])}; ``poses``:
    {topic: (PoseStamped, Odometry or TransformStamped, child_frame_id, None: the frame's pose, or a 4x4)}.
    ``empty``: (topic, type) recorded without a message; ``encoding``: the colour images' (rgb8,
    mono16 of their grey, bgra16, bgra8); ``extra(t, i, ns, frame)``: more (ns, topic, message) of a
    frame. Messages are written in the order of their bag times."""
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    t = ts.types
    infos, poses = infos or {}, poses or {}
    msgs = []
    for i, f in enumerate(frames):
        ns = START_NS + i * STEP_NS
        sec, nanosec = divmod(ns, 1_000_000_000)
        stamp = t["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)
        header = t["std_msgs/msg/Header"](stamp=stamp, frame_id="camera_color_optical_frame")
        h, w = f.image.shape[:2]
        for topic, (k, size, *binning) in infos.items():
            k = f.intrinsics if k is None else k
            msgs.append((ns, topic, _info_msg(t, header, k, *(size or (h, w)), *binning)))
        for topic, (kind, child, pose) in poses.items():
            msgs.append((ns, topic, _pose_msg(t, header, kind, f.pose if pose is None else pose, child)))
        if jpeg:
            data = cv2.imencode(".jpg", cv2.cvtColor(f.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])[1]
            msg = t["sensor_msgs/msg/CompressedImage"](header=header, format="rgb8; jpeg compressed bgr8",
                                                       data=data.reshape(-1))  # fmt: skip
        else:
            image = {"rgb8": f.image, "mono16": cv2.cvtColor(f.image, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257,
                     "bgra16": cv2.cvtColor(f.image, cv2.COLOR_RGB2BGRA).astype(np.uint16) * 257,
                     "bgra8": cv2.cvtColor(f.image, cv2.COLOR_RGB2BGRA)}[encoding]  # fmt: skip
            msg = t["sensor_msgs/msg/Image"](header=header, height=h, width=w, encoding=encoding, is_bigendian=0,
                                             step=image[0].nbytes, data=image.view(np.uint8).reshape(-1))  # fmt: skip
        msgs.append((ns, colour, msg))
        msgs += extra(t, i, ns, f) if extra else []
        if depth:
            d = f.depth
            if depth_size is not None:
                d = cv2.resize(d, depth_size[::-1], interpolation=cv2.INTER_NEAREST)
            msgs.append((ns + depth_lag_ns, depth, _depth_msg(t, header, d, depth_kind)))
    msgs.sort(key=lambda m: m[0])
    with Writer(path, version=8) as writer:
        conns = {topic: writer.add_connection(topic, msgtype, typestore=ts) for topic, msgtype in empty}
        for _, topic, msg in msgs:
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msg.__msgtype__, typestore=ts)
        for ns, topic, msg in msgs:
            writer.write(conns[topic], ns, ts.serialize_cdr(msg, conns[topic].msgtype))
    return path


ALIGNED = "/camera/aligned_depth_to_color/image_raw"
COLOUR_INFO = {"/camera/color/camera_info": (None, None)}


def test_exception_bag_without_camera_info_has_no_intrinsics(frames, tmp_path, caplog):
    """No sensor_msgs/CameraInfo topic: frames (with depth and poses) without intrinsics, which
    the source says (``intrinsics`` None), not another topic's message read as one."""
    path = write_custom_bag(tmp_path / "in", frames, depth=ALIGNED, poses={"/camera/pose": ("PoseStamped", "", None)})
    with caplog.at_level("INFO", logger="sceneparse.sources.rosbag"):
        src = RosbagSource(path)
    assert src.intrinsics is None and src.info_conns == [] and "no camera_info (no intrinsics)" in caplog.text
    got = list(src)
    assert len(got) == len(frames) and all(f.intrinsics is None for f in got)
    for f, ref in zip(got, frames):
        assert np.array_equal(f.image, ref.image) and np.abs(f.depth - ref.depth).max() < 1e-3
        assert np.allclose(f.pose, ref.pose, atol=1e-3)
    # colour alone: nothing but images
    plain = write_custom_bag(tmp_path / "plain", frames[:2])
    src = RosbagSource(plain)
    assert (src.intrinsics, src.depth_topic, src.pose_topic, src.poses) == (None, "", "", None)
    assert [np.array_equal(f.image, ref.image) for f, ref in zip(src, frames)] == [True, True]


def test_feature_compressed_colour_topic_takes_its_own_cameras_camera_info(frames, tmp_path, caplog):
    """A RealSense-like bag: colour on ``/camera/color/image_raw/compressed``, and the depth
    camera's camera_info (another camera) recorded before the colour camera's: the colour
    camera's intrinsics; camera_info topics of which none is the colour camera's: a warning."""
    from sceneparse.sources.rosbag import _camera_namespace

    assert _camera_namespace("/camera/color/image_raw/compressed") == "/camera/color"
    assert _camera_namespace("/cam/depth/image_rect_raw/compressedDepth") == "/cam/depth"
    assert _camera_namespace("/kinect/rgb/image_rect_color/theora") == "/kinect/rgb"
    k_depth = np.array([[385.0, 0, 321.0], [0, 385.0, 238.0], [0, 0, 1]])
    infos = {"/camera/depth/camera_info": (k_depth, None), **COLOUR_INFO}
    path = write_custom_bag(tmp_path / "rs", frames, colour="/camera/color/image_raw/compressed", jpeg=True,
                            depth=ALIGNED, infos=infos)  # fmt: skip
    with caplog.at_level("WARNING", logger="sceneparse.sources.rosbag"):
        src = RosbagSource(path)
    assert [c.topic for c in src.info_conns] == ["/camera/color/camera_info"] and caplog.text == ""
    assert all(np.allclose(f.intrinsics, ref.intrinsics) for f, ref in zip(src, frames))
    # two camera_infos, neither beside the colour topic: the nearer in the topic tree, and a warning
    other = {"/camera/depth/camera_info": (k_depth, None), "/camera/rgb/camera_info": (None, None)}
    path = write_custom_bag(tmp_path / "odd", frames[:1], colour="/camera/color/image_raw", infos=other)
    with caplog.at_level("WARNING", logger="sceneparse.sources.rosbag"):
        src = RosbagSource(path)
    assert [c.topic for c in src.info_conns] == ["/camera/rgb/camera_info"]
    assert "none of the camera_info topics (/camera/depth/camera_info, /camera/rgb/camera_info)" in caplog.text


def test_feature_pose_topic_is_the_cameras_and_a_robots_pose_is_warned_of(frames, tmp_path, caplog):
    """A robot's odometry (of base_link) beside the camera's pose: the camera's is taken by
    default, and logged; the robot's, when chosen, with a warning naming both frames; a pose
    topic that is not there is an error listing those that are."""
    base = np.eye(4)
    poses = {"/a/odom": ("Odometry", "base_link", base), "/camera/pose": ("PoseStamped", "", None)}
    path = write_custom_bag(tmp_path / "in", frames, depth=ALIGNED, infos=COLOUR_INFO, poses=poses)
    with caplog.at_level("INFO", logger="sceneparse.sources.rosbag"):
        src = RosbagSource(path)
    assert src.pose_topic == "/camera/pose" and "poses from /camera/pose" in caplog.text
    assert "WARNING" not in caplog.text
    assert all(np.allclose(f.pose, ref.pose, atol=1e-3) for f, ref in zip(src, frames))
    caplog.clear()
    with caplog.at_level("WARNING", logger="sceneparse.sources.rosbag"):
        src = RosbagSource(path, pose_topic="/a/odom")
    assert "the pose topic /a/odom gives the pose of frame 'base_link'" in caplog.text
    assert "'camera_color_optical_frame'" in caplog.text and "--pose-topic" in caplog.text
    assert all(np.allclose(f.pose, base) for f in src)
    with pytest.raises(InputError, match=r"in: no pose topic '/odom' .*--pose-topic.*: /a/odom, /camera/pose$"):
        RosbagSource(path, pose_topic="/odom")
    from sceneparse.cli import main

    caplog.clear()
    assert main(["map", str(path), "--pose-topic", "/odom", "--out", str(tmp_path / "map"), "--no-progress"]) == 1
    assert "no pose topic '/odom'" in caplog.text and not (tmp_path / "map").exists()
    # an odometry of the images' own frame (or a frame naming the camera): taken, no warning
    caplog.clear()
    poses = {"/a/odom": ("Odometry", "base_link", base), "/slam/odom": ("Odometry", "camera_color_optical_frame", None),
             "/tf_cam": ("TransformStamped", "camera_link", None)}  # fmt: skip
    path = write_custom_bag(tmp_path / "odom", frames[:2], depth=ALIGNED, infos=COLOUR_INFO, poses=poses)
    with caplog.at_level("WARNING", logger="sceneparse.sources.rosbag"):
        assert RosbagSource(path).pose_topic == "/slam/odom"
        assert RosbagSource(path, pose_topic="/tf_cam").pose_topic == "/tf_cam"
    assert caplog.text == ""


def test_feature_depth_topic_alone_leaves_the_colour_topic_and_same_topics_are_refused(frames, tmp_path, caplog):
    """Topics whose names say neither colour nor depth (/cam/rgb, /cam/range): the depth topic
    found by its encoding (16UC1), and giving it (--depth-topic) keeps /cam/rgb the colour topic;
    one topic as both is an error listing the image topics with their encodings."""
    path = write_custom_bag(tmp_path / "in", frames[:2], colour="/cam/rgb", depth="/cam/range",
                            infos={"/cam/camera_info": (None, None)})  # fmt: skip
    for depth_topic in (None, "/cam/range"):
        src = RosbagSource(path, depth_topic=depth_topic)
        assert (src.topic, src.depth_topic) == ("/cam/rgb", "/cam/range")
        assert src.image_topics_text == "/cam/range (16UC1), /cam/rgb (rgb8)"
        got = list(src)
        assert all(np.abs(f.depth - ref.depth).max() < 1e-3 for f, ref in zip(got, frames))
    with pytest.raises(InputError, match=r"/cam/range is given as both the colour topic and the depth topic.*"
                                         r"image topics: /cam/range \(16UC1\), /cam/rgb \(rgb8\)"):  # fmt: skip
        RosbagSource(path, topic="/cam/range", depth_topic="/cam/range")
    with pytest.raises(InputError, match=r"no depth topic '/cam/depth' \(image topics: /cam/range \(16UC1\)"):
        RosbagSource(path, depth_topic="/cam/depth")
    # no depth topic at all: said, with the image topics and their encodings
    colour_only = write_custom_bag(tmp_path / "rgb", frames[:1], colour="/cam/rgb")
    with caplog.at_level("INFO", logger="sceneparse.sources.rosbag"):
        assert RosbagSource(colour_only).depth_topic == ""
    assert "no depth topic (image topics: /cam/rgb (rgb8))" in caplog.text


@pytest.mark.parametrize("lag_frames", [2, 8])
def test_feature_depth_recorded_frames_later_is_paired_by_its_stamp(frames, sevenscenes_path, tmp_path, lag_frames):
    """Depth with its colour image's header stamp, recorded 2 or 8 frames later (an alignment
    node lagging): every frame gets its own depth image."""
    more = list(SevenScenesSource(sevenscenes_path))[:10]
    path = write_custom_bag(tmp_path / "in", more, depth=ALIGNED, infos=COLOUR_INFO,
                            depth_lag_ns=lag_frames * STEP_NS + 3_000_000)  # fmt: skip
    got = list(RosbagSource(path))
    assert [f.index for f in got] == list(range(len(more)))
    for f, ref in zip(got, more):
        assert f.depth is not None and np.abs(f.depth - ref.depth).max() < 1e-3, f.extra.get("depth_error")


def test_exception_depth_later_than_the_wait_leaves_the_first_frames_without_depth(sevenscenes_path, tmp_path):
    """Depth recorded 12 frames after its colour image: a colour frame waits for at most 10
    others (memory stays bounded), so the first two come without depth, saying why, and the
    rest with theirs."""
    more = list(SevenScenesSource(sevenscenes_path))[:12]
    path = write_custom_bag(tmp_path / "in", more, depth=ALIGNED, infos=COLOUR_INFO, depth_lag_ns=12 * STEP_NS)
    got = list(RosbagSource(path))
    assert [f.depth is None for f in got] == [True, True] + [False] * 10
    assert all("no depth image on /camera/aligned_depth_to_color/image_raw within 20 ms" in f.extra["depth_error"]
               for f in got[:2])  # fmt: skip
    assert all(np.abs(f.depth - ref.depth).max() < 1e-3 for f, ref in zip(got[2:], more[2:]))


def test_feature_compressed_depth_32fc1_is_read_as_metres(frames, tmp_path):
    """compressedDepth images as compressed_depth_image_transport writes them: ``32FC1`` as
    quantised inverse depth (to its quantisation step, d^2 / A: 1.6 mm at 4 m), ``16UC1`` as
    millimetres (exact); RVL, which OpenCV cannot decode, is a clear error."""
    topic = ALIGNED + "/compressedDepth"
    for kind, tol in (("32FC1; compressedDepth png", 3e-3), ("16UC1; compressedDepth png", 1e-3)):
        path = write_custom_bag(tmp_path / kind[:5], frames, depth=topic, depth_kind=kind, infos=COLOUR_INFO)
        src = RosbagSource(path)
        assert src.depth_topic == topic
        for f, ref in zip(src, frames):
            assert f.depth.dtype == np.float32 and np.array_equal(f.depth > 0, ref.depth > 0)
            assert np.abs(f.depth - ref.depth).max() < tol
    path = write_custom_bag(tmp_path / "rvl", frames[:1], depth=topic, depth_kind="16UC1; compressedDepth rvl")
    with pytest.raises(InputError, match=r"rvl: /camera/aligned_depth_to_color/image_raw/compressedDepth: "
                                         "compressedDepth images in RVL"):  # fmt: skip
        list(RosbagSource(path))


def test_exception_depth_of_another_size_is_resized_only_with_its_cameras_intrinsics(frames, tmp_path, caplog):
    """Depth at half the colour resolution: with a depth camera_info that is the colour camera
    at that size, resized (nearest neighbour) to the colour image's; without one, frames without
    depth and the reason, naming the bag, both topics and sizes."""
    k = np.asarray(frames[0].intrinsics, np.float64)
    half = k.copy()
    half[:2] *= 0.5
    half[:2, 2] = (k[:2, 2] + 0.5) * 0.5 - 0.5
    infos = {**COLOUR_INFO, "/camera/aligned_depth_to_color/camera_info": (half, (240, 320))}
    path = write_custom_bag(tmp_path / "scaled", frames, depth=ALIGNED, depth_size=(240, 320), infos=infos)
    with caplog.at_level("WARNING", logger="sceneparse.sources.rosbag"):
        src = RosbagSource(path)
        got = list(src)
    assert "not aligned" not in caplog.text
    for f, ref in zip(got, frames):
        small = cv2.resize(ref.depth, (320, 240), interpolation=cv2.INTER_NEAREST)
        assert f.depth.shape == (480, 640)
        assert np.abs(f.depth - cv2.resize(small, (640, 480), interpolation=cv2.INTER_NEAREST)).max() < 1e-3
    path = write_custom_bag(tmp_path / "half", frames, depth=ALIGNED, depth_size=(240, 320), infos=COLOUR_INFO)
    got = list(RosbagSource(path))
    assert all(f.depth is None for f in got)
    assert (f"{path}: the depth images of {ALIGNED} are 320x240 and the colour images of /camera/color/image_raw "
            "640x480") in got[0].extra["depth_error"]  # fmt: skip


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_feature_bayer_images_are_demosaiced(sevenscenes_path, pattern):
    """Camera drivers publish image_raw as a Bayer mosaic (``bayer_rggb8``, ...), and many bags hold
    only that: it was 'image encoding 'bayer_rggb8' is not read'. A real frame mosaicked in each
    pattern comes back close to the frame (demosaicing loses a little at edges), in RGB order."""
    from types import SimpleNamespace

    from sceneparse.sources.rosbag import decode_image

    rgb = cv2.cvtColor(cv2.imread(str(sevenscenes_path / "frame-000000.color.jpg")), cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    mosaic = np.zeros((h, w + 8), np.uint8)  # a row step longer than the row, as drivers may pad
    for (i, j), colour in zip([(0, 0), (0, 1), (1, 0), (1, 1)], pattern):
        mosaic[i::2, j:w:2] = rgb[i::2, j::2, "rgb".index(colour)]
    msg = SimpleNamespace(encoding=f"bayer_{pattern}8", height=h, width=w, step=w + 8, is_bigendian=0,
                          data=mosaic.tobytes())  # fmt: skip
    image = decode_image(msg, "sensor_msgs/msg/Image")
    assert image.shape == (h, w, 3) and image.dtype == np.uint8
    assert np.abs(image.astype(int) - rgb).mean() < 3  # a wrong pattern gives 18 or more


@pytest.mark.parametrize("encoding", ["yuv422", "yuv422_yuy2"])
def test_feature_packed_yuv_images_are_converted(sevenscenes_path, encoding):
    """Webcam drivers (usb_cam) publish yuv422 (UYVY) or YUY2 images: 'image encoding is not read'.
    A real frame packed as a camera packs it (BT.601 video range, chroma shared by two pixels)
    comes back close to the frame."""
    from types import SimpleNamespace

    from sceneparse.sources.rosbag import decode_image

    rgb = cv2.cvtColor(cv2.imread(str(sevenscenes_path / "frame-000000.color.jpg")), cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb).astype(int)
    y = ycc[..., 0] * 219 // 255 + 16
    u, v = (((ycc[:, 0::2, c] + ycc[:, 1::2, c]) // 2 - 128) * 224 // 255 + 128 for c in (2, 1))
    packed = np.zeros((h, 2 * w), np.uint8)
    order = (u, y[:, 0::2], v, y[:, 1::2]) if encoding == "yuv422" else (y[:, 0::2], u, y[:, 1::2], v)
    for k, plane in enumerate(order):
        packed[:, k::4] = plane
    msg = SimpleNamespace(encoding=encoding, height=h, width=w, step=2 * w, is_bigendian=0, data=packed.tobytes())
    image = decode_image(msg, "sensor_msgs/msg/Image")
    assert image.shape == (h, w, 3) and image.dtype == np.uint8
    assert np.abs(image.astype(int) - rgb).mean() < 2.5


def test_feature_image_topics_without_messages_are_passed_over(frames, tmp_path):
    """``ros2 bag record -a`` of a RealSense records every image_transport topic, those that got no
    message too (the colour image's compressedDepth, a raw topic whose QoS did not match). The
    colour image's compressedDepth was taken as the depth topic (every frame without depth), and
    an empty colour topic gave no frame; an empty topic given is an error naming it."""
    depth = "/camera/depth/image_rect_raw/compressedDepth"
    empty = [("/camera/color/image_raw/compressedDepth", "sensor_msgs/msg/CompressedImage"),
             ("/camera/color/image_raw/compressed", "sensor_msgs/msg/CompressedImage")]  # fmt: skip
    path = write_custom_bag(tmp_path / "all", frames, depth=depth, depth_kind="16UC1; compressedDepth",
                            infos=COLOUR_INFO, empty=empty)  # fmt: skip
    src = RosbagSource(path)
    assert (src.topic, src.depth_topic) == ("/camera/color/image_raw", depth)
    got = list(src)
    assert len(got) == len(frames) and all(np.abs(f.depth - ref.depth).max() < 1e-3 for f, ref in zip(got, frames))
    # the colour topic without messages, an infrared one with: the infrared one
    empty = [("/camera/color/image_raw", "sensor_msgs/msg/Image")]
    path = write_custom_bag(tmp_path / "ir", frames[:2], colour="/camera/infra1/image_rect_raw", empty=empty)
    src = RosbagSource(path)
    assert src.topic == "/camera/infra1/image_rect_raw" and len(list(src)) == 2
    with pytest.raises(InputError, match=r"ir: the image topic /camera/color/image_raw holds no message.*"
                                         r"/camera/color/image_raw \(no message\), /camera/infra1/image_rect_raw "
                                         r"\(rgb8\); give another with topic=, --topic"):  # fmt: skip
        RosbagSource(path, topic="/camera/color/image_raw")


@pytest.mark.parametrize("encoding", ["mono16", "bgra16"])
def test_feature_16_bit_camera_images_are_converted_to_8_bits(frames, tmp_path, encoding):
    """16-bit camera images (mono16 infrared or machine-vision cameras, bgra16) were refused as 'uint16
    images are not colour images'; they are converted as cv_bridge converts them (255 / 65535)."""
    path = write_custom_bag(tmp_path / "in", frames[:2], encoding=encoding)
    got = list(RosbagSource(path))
    for f, ref in zip(got, frames):
        want = (
            np.repeat(cv2.cvtColor(ref.image, cv2.COLOR_RGB2GRAY)[..., None], 3, 2)
            if encoding == "mono16"
            else ref.image
        )
        assert f.image.dtype == np.uint8 and np.array_equal(f.image, want)


def test_feature_intrinsics_fit_images_of_another_size_than_their_camera_info(frames, tmp_path, caplog):
    """A camera_info of the calibrated resolution (1280x960) with images of 640x480: its camera
    matrix was given to the frames as it was (fx 1170 for 585, a map twice too wide). With binning
    2 (as image_geometry reads it) it is the images' exactly; without, it is scaled to the images,
    with a warning; a camera_info of another aspect ratio gives no intrinsics, saying why."""
    k = np.asarray(frames[0].intrinsics, np.float64)
    full = k * [[2], [2], [1]]  # as ROS scales them (image_proc's resize, image_geometry's binning)
    for name, info, warned in (("binned", (full, (960, 1280), 2), False), ("scaled", (full, (960, 1280)), True)):
        path = write_custom_bag(tmp_path / name, frames[:2], infos={"/camera/color/camera_info": info})
        caplog.clear()
        with caplog.at_level("WARNING", logger="sceneparse.sources.rosbag"):
            got = list(RosbagSource(path))
        assert all(np.allclose(f.intrinsics, k) for f in got)
        assert ("camera_info is of 1280x960 images and they are 640x480: intrinsics scaled" in caplog.text) == warned
    path = write_custom_bag(tmp_path / "wide", frames[:2], infos={"/camera/color/camera_info": (k, (360, 640))})
    caplog.clear()
    with caplog.at_level("WARNING", logger="sceneparse.sources.rosbag"):
        got = list(RosbagSource(path))
    assert all(f.intrinsics is None for f in got) and caplog.text.count("another aspect ratio") == 1


def _tf(t, ns, parent, child, pose):
    header = t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](*divmod(ns, 10**9)), frame_id=parent)
    return _pose_msg(t, header, "TransformStamped", pose, child)


def test_feature_camera_poses_from_the_tf_tree(frames, tmp_path, caplog):
    """Robots record the camera's pose only in /tf: map -> odom (a SLAM node's correction, a few
    times a second), odom -> base_link (odometry), and /tf_static base_link -> camera_link ->
    camera_color_optical_frame. Such a bag had no poses ('the bag has no camera pose topic'); the
    tree is followed from the images' frame to its root, moving links interpolated in time."""
    from scipy.spatial.transform import Rotation

    mount = np.eye(4)
    mount[:3, :3], mount[:3, 3] = Rotation.from_euler("xyz", [0.1, -0.2, 0.3]).as_matrix(), [0.2, 0.0, 0.5]
    optical = np.eye(4)
    optical[:3, :3] = Rotation.from_euler("zyx", [-90, 0, -90], degrees=True).as_matrix()  # REP 103's optical frame

    def drift(i):  # map -> odom: a SLAM correction moving steadily
        out = np.eye(4)
        out[:3, 3] = [0.3 + 0.02 * i, -0.1, 0.01 * i]
        return out

    def tf(t, i, ns, f):
        out = []
        if i == 0:
            statics = [_tf(t, ns, "base_link", "camera_link", mount),
                       _tf(t, ns, "camera_link", "camera_color_optical_frame", optical)]  # fmt: skip
            out.append((ns - 5_000_000, "/tf_static", t["tf2_msgs/msg/TFMessage"](transforms=statics)))
        base = np.linalg.inv(drift(i)) @ f.pose @ np.linalg.inv(mount @ optical)
        moving = [_tf(t, ns, "odom", "base_link", base), _tf(t, ns, "base_link", "arm_link", np.eye(4))]
        if i % 3 == 0:  # the SLAM correction, less often: interpolated between
            moving.append(_tf(t, ns, "map", "odom", drift(i)))
        return out + [(ns + 2_000_000, "/tf", t["tf2_msgs/msg/TFMessage"](transforms=moving))]

    more = frames + frames[:3]  # 7 frames: map -> odom at 0, 3 and 6
    path = write_custom_bag(tmp_path / "tf", more, depth=ALIGNED, infos=COLOUR_INFO, extra=tf)
    with caplog.at_level("INFO", logger="sceneparse.sources.rosbag"):
        src = RosbagSource(path)
    assert src.pose_topic == "/tf" and set(src.poses.moving) == {"odom", "base_link"}
    assert "arm_link" not in src.poses.moving  # a link off the camera's chain: not kept
    assert "camera_color_optical_frame in map <- odom <- base_link <- camera_link <- camera_color" in caplog.text
    got = list(src)
    assert len(got) == len(more) and all(np.allclose(f.pose, ref.pose, atol=1e-3) for f, ref in zip(got, more))
    from sceneparse.cli import main

    assert main(["map", str(path), "--out", str(tmp_path / "map"), "--threads", "1", "--no-progress"]) == 0
    summary = json.loads((tmp_path / "map" / "summary.json").read_text())
    assert summary["frames"] == len(more) and summary["skipped"] == {} and summary["points"] > 1000
    # no /tf_static recorded (ros2 bag record started after it was published): said, and no poses
    path = write_custom_bag(tmp_path / "nostatic", frames[:2], depth=ALIGNED, infos=COLOUR_INFO,
                            extra=lambda *a: [m for m in tf(*a) if m[1] == "/tf"])  # fmt: skip
    caplog.clear()
    with caplog.at_level("WARNING", logger="sceneparse.sources.rosbag"):
        src = RosbagSource(path)
    assert src.pose_topic == "" and all(f.pose is None for f in src)
    assert "does not link the images' frame 'camera_color_optical_frame'" in caplog.text
    assert "/tf_static holds no transform" in caplog.text
    with pytest.raises(InputError, match="no camera poses from /tf"):
        RosbagSource(path, pose_topic="/tf")
    # a robot's odometry (of base_link) beside the tree: the tree, which reaches the camera (the odometry
    # was taken, with a warning, and the map put the camera where base_link is)

    def odometry(t, i, ns, f):
        header = t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](*divmod(ns, 10**9)), frame_id="odom")
        base = np.linalg.inv(drift(i)) @ f.pose @ np.linalg.inv(mount @ optical)
        return tf(t, i, ns, f) + [(ns, "/odom", _pose_msg(t, header, "Odometry", base, "base_link"))]

    path = write_custom_bag(tmp_path / "odom", more, depth=ALIGNED, infos=COLOUR_INFO, extra=odometry)
    caplog.clear()
    with caplog.at_level("WARNING", logger="sceneparse.sources.rosbag"):
        src = RosbagSource(path)
    assert src.pose_topic == "/tf" and caplog.text == ""
    assert all(np.allclose(f.pose, ref.pose, atol=1e-3) for f, ref in zip(src, more))
    assert RosbagSource(path, pose_topic="/odom").pose_topic == "/odom"


def test_exception_image_whose_sizes_do_not_add_up_is_a_clear_error(frames):
    """An Image whose data is shorter than height x step, whose step is shorter than a row, or
    with no pixels (a damaged message, a driver's bug) gave numpy's 'cannot reshape array of size
    921500 into shape (480,1920)'; each is an InputError naming the sizes. Row padding is read."""
    from types import SimpleNamespace

    from sceneparse.sources.rosbag import decode_image

    rgb = frames[0].image
    data = rgb.tobytes()

    def image(**kw):
        fields = {"encoding": "rgb8", "height": 480, "width": 640, "step": 1920, "is_bigendian": 0, "data": data}
        return decode_image(SimpleNamespace(**{**fields, **kw}), "sensor_msgs/msg/Image")

    with pytest.raises(InputError, match=r"rgb8 image of 640x480 pixels with rows of 1920 bytes \(1920 needed\) "
                                         r"and 921500 bytes of data \(921600 needed\): a damaged message"):  # fmt: skip
        image(data=data[:-100])
    with pytest.raises(InputError, match=r"rows of 640 bytes \(1920 needed\)"):
        image(step=640)
    with pytest.raises(InputError, match="rgb8 image of 0x0 pixels: nothing to read"):
        image(height=0, width=0, step=0, data=b"")
    with pytest.raises(InputError, match="bayer_rggb8 image of 640x480 pixels with rows of 600 bytes"):
        image(encoding="bayer_rggb8", step=600)
    padded = np.concatenate([rgb.reshape(480, -1), np.zeros((480, 64), np.uint8)], 1)
    assert np.array_equal(image(step=1984, data=padded.tobytes()), rgb)
    # big-endian 16UC1 depth with padded rows
    mm = np.rint(frames[0].depth * 1000).astype(">u2")
    raw = np.concatenate([mm.view(np.uint8), np.zeros((480, 6), np.uint8)], 1)
    depth = image(encoding="16UC1", step=1286, is_bigendian=1, data=raw.tobytes())
    assert depth.dtype == np.uint16 and np.array_equal(depth, mm.astype(np.uint16))


def test_feature_azure_kinect_topics_give_colour_and_depth_registered_to_it(frames, tmp_path, caplog):
    """The Azure Kinect driver records /depth/image_raw (the depth camera's own), /depth_to_rgb
    (registered to colour), /ir/image_raw (mono16 infrared), /rgb/image_raw (bgra8) and
    /rgb_to_depth: the first image topics by name were the infrared one as colour and the
    unregistered depth. Colour is the colour camera's and depth the one registered to it."""
    k_depth = np.array([[504.0, 0, 320], [0, 504.0, 288], [0, 0, 1]])

    def more(t, i, ns, f):
        header = t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](*divmod(ns, 10**9)),
                                          frame_id="depth_camera_link")  # fmt: skip
        ir = np.full((480, 640), 3000, np.uint16)
        mono = t["sensor_msgs/msg/Image"](header=header, height=480, width=640, encoding="mono16", is_bigendian=0,
                                          step=1280, data=ir.view(np.uint8).reshape(-1))  # fmt: skip
        raw = _depth_msg(t, header, np.roll(f.depth, 40, axis=1), "16UC1")
        return [(ns, "/ir/image_raw", mono), (ns, "/depth/image_raw", raw), (ns, "/depth/camera_info",
                _info_msg(t, header, k_depth, 480, 640)), (ns, "/rgb_to_depth/image_raw", raw)]  # fmt: skip

    infos = {"/rgb/camera_info": (None, None), "/depth_to_rgb/camera_info": (None, None)}
    path = write_custom_bag(tmp_path / "k4a", frames[:2], colour="/rgb/image_raw", depth="/depth_to_rgb/image_raw",
                            infos=infos, encoding="bgra8", extra=more)  # fmt: skip
    with caplog.at_level("WARNING", logger="sceneparse.sources.rosbag"):
        src = RosbagSource(path)
        got = list(src)
    assert (src.topic, src.depth_topic) == ("/rgb/image_raw", "/depth_to_rgb/image_raw") and caplog.text == ""
    for f, ref in zip(got, frames):
        assert np.array_equal(f.image, ref.image) and np.abs(f.depth - ref.depth).max() < 1e-3


def test_feature_poses_of_a_slower_pose_topic_are_interpolated(sevenscenes_path, tmp_path):
    """A SLAM node's PoseStamped at 10 Hz and a camera at 30 Hz: only the frames within 20 ms of a
    pose had one (two in three were skipped by sceneparse map). Between two poses less than
    MAX_POSE_GAP_S apart the pose is interpolated (here exactly: the poses move linearly); across a
    longer gap (tracking lost) there is none."""
    from scipy.spatial.transform import Rotation

    more = list(SevenScenesSource(sevenscenes_path))[:10]

    def pose(i):  # a camera turning and moving steadily
        out = np.eye(4)
        out[:3, :3], out[:3, 3] = Rotation.from_rotvec([0, 0.05 * i, 0]).as_matrix(), [0.1 * i, 0, 0.02 * i]
        return out

    def poses(t, i, ns, f):
        if i % 3 or i == 6:  # at 10 Hz, and none at frame 6: a gap of 200 ms, then of 3 frames
            return []
        header = t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](*divmod(ns, 10**9)), frame_id="map")
        return [(ns, "/slam/pose", _pose_msg(t, header, "PoseStamped", pose(i), ""))]

    path = write_custom_bag(tmp_path / "in", more, extra=poses)
    got = list(RosbagSource(path))
    assert all(np.allclose(f.pose, pose(f.index), atol=1e-9) for f in got)
    import sceneparse.sources.rosbag as rosbag

    rosbag.MAX_POSE_GAP_S, gap = 0.15, rosbag.MAX_POSE_GAP_S
    try:
        got = list(RosbagSource(path))
    finally:
        rosbag.MAX_POSE_GAP_S = gap
    assert [f.pose is not None for f in got] == [True] * 4 + [False] * 5 + [True]


def test_feature_a_split_recording_cut_short_is_read_through_all_its_files(sevenscenes_path, tmp_path):
    """A recording split by size (ros2 bag record --max-bag-size: in_0.db3, in_1.db3, ...) that was
    killed has no metadata.yaml: only its first file was read, and the frames of the others were
    lost without a word. Its files are read one after the other, by the numbers in their names."""
    import shutil
    import sqlite3

    more = list(SevenScenesSource(sevenscenes_path))[:6]
    path = write_bag(tmp_path / "in", more, poses=True)
    (path / "metadata.yaml").unlink()
    db = next(path.glob("*.db3"))
    first, second = path / "in_9.db3", path / "in_10.db3"  # (in_10 after in_9: not by the names' letters)
    shutil.copy(db, first)
    db.rename(second)
    (last,) = sqlite3.connect(first).execute("select max(id) from messages").fetchone()
    for f, keep in ((first, "id <= ?"), (second, "id > ?")):
        con = sqlite3.connect(f)
        con.execute(f"delete from messages where not ({keep})", (last // 2,))
        con.commit()
        con.close()
    src = open_source(path)
    assert len(src) == len(more)
    got = list(src)
    assert [f.extra["stamp_ns"] for f in got] == [START_NS + i * STEP_NS for i in range(len(more))]
    assert all(f.depth is not None and f.pose is not None for f in got)
    assert all(np.array_equal(f.image, ref.image) for f, ref in zip(got, more))


def test_feature_a_split_mcap_recording_cut_short_is_read_through_its_files(sevenscenes_path, tmp_path):
    """A recording split into MCAP files (in_0.mcap, in_1.mcap) killed while writing the second:
    no metadata.yaml, and rosbags cannot open the cut file, so the bag was 'not a readable ROS
    bag'. The files are read one after the other, up to the cut, then the InputError names it."""
    import shutil

    more = list(SevenScenesSource(sevenscenes_path))[:8]
    first = write_bag(tmp_path / "a", more[:4], storage="mcap", poses=True)
    second = write_bag(tmp_path / "b", more[4:], storage="mcap", poses=True, start_ns=START_NS + 4 * STEP_NS)
    path = tmp_path / "in"
    path.mkdir()
    shutil.copy(next(first.glob("*.mcap")), path / "in_0.mcap")
    shutil.copy(next(second.glob("*.mcap")), path / "in_1.mcap")
    _cut(path / "in_1.mcap", 0.6)
    src = open_source(path)
    got = []
    with pytest.raises(InputError, match=r"in: the bag breaks off after (\d+) frames"):
        for f in src:
            got.append(f)
    assert 5 <= len(got) < len(more)
    assert [f.extra["stamp_ns"] for f in got] == [START_NS + i * STEP_NS for i in range(len(got))]
    for f, ref in zip(got, more):
        assert np.array_equal(f.image, ref.image) and np.abs(f.depth - ref.depth).max() < 1e-3
        assert np.allclose(f.pose, ref.pose, atol=1e-3)


def test_feature_tf_of_a_ros1_bag_as_tum_recorded_them(frames, tmp_path):
    """TUM RGB-D's ROS 1 bags: tf/tfMessage on /tf, frame names with a leading slash, and the
    motion capture's /world -> /kinect before /kinect -> /openni_rgb_optical_frame in one message:
    that first /world -> /kinect was dropped (its link was not yet known to reach the camera), and
    the first frame had no pose."""
    from rosbags.rosbag1 import Writer
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    ts = get_typestore(Stores.ROS1_NOETIC)
    ts.register(get_types_from_msg("geometry_msgs/TransformStamped[] transforms", "tf/msg/tfMessage"))
    t = ts.types
    optical = np.eye(4)
    optical[:3, 3] = [0.0, 0.02, 0.0]
    path = tmp_path / "tum.bag"
    with Writer(path) as writer:
        conns = {name: writer.add_connection(name, kind, typestore=ts) for name, kind in (
            ("/camera/rgb/image_color", "sensor_msgs/msg/Image"), ("/tf", "tf/msg/tfMessage"))}  # fmt: skip
        for i, f in enumerate(frames):
            ns = START_NS + i * STEP_NS
            stamp = t["builtin_interfaces/msg/Time"](*divmod(ns, 10**9))
            header = t["std_msgs/msg/Header"](seq=i, stamp=stamp, frame_id="/openni_rgb_optical_frame")
            image = t["sensor_msgs/msg/Image"](header=header, height=480, width=640, encoding="rgb8", is_bigendian=0,
                                               step=1920, data=f.image.reshape(-1))  # fmt: skip
            links = [_pose_msg(t, t["std_msgs/msg/Header"](seq=i, stamp=stamp, frame_id=parent), "TransformStamped",
                               pose, child)
                     for parent, child, pose in (("/world", "/kinect", f.pose @ np.linalg.inv(optical)),
                                                 ("/kinect", "/openni_rgb_optical_frame", optical))]  # fmt: skip
            writer.write(conns["/camera/rgb/image_color"], ns, ts.serialize_ros1(image, "sensor_msgs/msg/Image"))
            tf = t["tf/msg/tfMessage"](transforms=links)
            writer.write(conns["/tf"], ns + 3_000_000, ts.serialize_ros1(tf, "tf/msg/tfMessage"))
    src = RosbagSource(path)
    assert src.pose_topic == "/tf"
    got = list(src)
    assert len(got) == len(frames) and all(np.allclose(f.pose, ref.pose, atol=1e-3) for f, ref in zip(got, frames))
