"""The labelled ROS 2 bag (sceneparse/sinks/rosbag.py): ``sceneparse label BAG --out DIR`` on
bags written by the test from real 7-Scenes frames (ROS 2 and ROS 1, Image and
CompressedImage) writes DIR/segmentation/, read back: one mask per input frame with its stamp
and frame_id, mono8 of the input's size, confidences, overlays and the class list once; a bag
that breaks off leaves a readable bag of the frames before."""

import json
import sqlite3

import numpy as np
import pytest
from optional import require

require("rosbags", "pip install 'sceneparse[ros]'")

from rosbag_files import START_NS, STEP_NS, write_bag  # noqa: E402

from sceneparse.cli import main  # noqa: E402
from sceneparse.sources import SevenScenesSource  # noqa: E402

CLASSES = ["floor", "support", "vertical", "other"]


@pytest.fixture(scope="module")
def frames(sevenscenes_path):
    return list(SevenScenesSource(sevenscenes_path))[100:104]


def read_bag(path):
    from rosbags.highlevel import AnyReader

    out = {}
    with AnyReader([path]) as reader:
        for conn, t, raw in reader.messages():
            out.setdefault(conn.topic, []).append((t, conn.msgtype, reader.deserialize(raw, conn.msgtype)))
    return out


@pytest.mark.parametrize(("ros", "compressed"), [(2, False), (2, True), (1, False), (1, True)])
def test_feature_label_a_bag_into_a_segmentation_bag(frames, tmp_path, ros, compressed):
    bag = write_bag(tmp_path / ("in.bag" if ros == 1 else "in"), frames, ros, compressed)
    out = tmp_path / "out"
    assert main(["label", str(bag), "--model", "indoor-geometry", "--out", str(out), "--no-progress"]) == 0
    assert (out / "segmentation" / "metadata.yaml").is_file()
    msgs = read_bag(out / "segmentation")
    masks = msgs["/segmentation/mask"]
    assert len(masks) == len(frames)
    stamps = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for _, _, m in masks]
    assert stamps == [START_NS + i * STEP_NS for i in range(len(frames))]
    for (t, msgtype, m), f in zip(masks, frames):
        assert msgtype == "sensor_msgs/msg/Image" and m.encoding == "mono8"
        assert (m.height, m.width) == f.image.shape[:2] and m.step == m.width
        assert m.header.frame_id == "camera_color_optical_frame"
        assert t == stamps[masks.index((t, msgtype, m))]  # the bag's time: the input's
        mask = np.asarray(m.data).reshape(m.height, m.width)
        assert set(np.unique(mask)) <= {0, 1, 2, 3, 255} and (mask == 1).mean() > 0.05  # a kitchen's worktops
    conf = msgs["/segmentation/confidence"]
    assert len(conf) == len(frames) and all(m.encoding == "mono8" for _, _, m in conf)
    assert np.asarray(conf[0][2].data).mean() > 100  # mostly confident
    overlay = msgs["/segmentation/overlay"]
    assert len(overlay) == len(frames) and overlay[0][2].encoding == "rgb8"
    assert len(overlay[0][2].data) == frames[0].image.size
    (labels,) = msgs["/segmentation/labels"]
    assert labels[1] == "std_msgs/msg/String"  # no vision_msgs/LabelInfo in rosbags' type stores
    assert json.loads(labels[2].data)["class_names"] == CLASSES
    # the overlay video of every stream is written too
    assert (out / "overlay.mp4").is_file()
    # labelling again into the same folder: refused, the bag kept; with --overwrite, replaced
    first = (out / "segmentation" / "segmentation.mcap").stat().st_mtime_ns
    assert main(["label", str(bag), "--model", "indoor-geometry", "--out", str(out), "--no-progress"]) == 1
    assert (out / "segmentation" / "segmentation.mcap").stat().st_mtime_ns == first
    assert main(["label", str(bag), "--model", "indoor-geometry", "--out", str(out), "--no-progress",
                 "--overwrite"]) == 0  # fmt: skip
    assert (out / "segmentation" / "segmentation.mcap").stat().st_mtime_ns != first
    assert len(read_bag(out / "segmentation")["/segmentation/mask"]) == len(frames)


def test_feature_a_bag_that_breaks_off_leaves_a_readable_bag(frames, tmp_path):
    bag = write_bag(tmp_path / "in", frames, compressed=True)
    db = next(bag.glob("*.db3"))
    con = sqlite3.connect(db)
    rows = con.execute("select m.id, m.data from messages m join topics t on m.topic_id = t.id "
                       "where t.name like '%compressed' order by m.timestamp").fetchall()  # fmt: skip
    con.execute("update messages set data = ? where id = ?", (rows[3][1][:60] + b"\0" * 500, rows[3][0]))
    con.commit()
    con.close()
    out = tmp_path / "out"
    main(["label", str(bag), "--model", "indoor-geometry", "--out", str(out), "--no-progress"])
    masks = read_bag(out / "segmentation")["/segmentation/mask"]
    assert len(masks) == 3


def test_smoke_sink_on_frames_without_a_bag(frames, tmp_path):
    from sceneparse import SceneParser, run
    from sceneparse.sinks import build_sink

    sink = build_sink("rosbag", out=tmp_path, overlay=False)
    run(SceneParser.from_pretrained("indoor-geometry"), frames[:2], [sink], progress=False)
    assert sink.summary()["frames"] == 2
    msgs = read_bag(tmp_path / "segmentation")
    assert "/segmentation/overlay" not in msgs
    m = msgs["/segmentation/mask"][1][2]
    assert m.header.frame_id == "camera"
    assert m.header.stamp.sec + m.header.stamp.nanosec / 1e9 == pytest.approx(frames[1].timestamp)


def test_feature_label_topic_flag_chooses_the_image_topic(frames, tmp_path, caplog):
    bag = write_bag(tmp_path / "in", frames[:2], 2, False)
    out = tmp_path / "out"
    assert main(["label", str(bag), "--topic", "/camera/color/image_raw", "--model", "indoor-geometry",
                 "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    assert len(read_bag(out / "segmentation")["/segmentation/mask"]) == 2
    assert main(["label", str(bag), "--topic", "/no/such/topic", "--out", str(tmp_path / "o2"), "--no-progress"]) == 1
    assert "/no/such/topic" in caplog.text


@pytest.mark.parametrize(("name", "ros", "storage"), [("in_mcap", 2, "mcap"), ("in.bag", 1, "")])
def test_exception_truncated_bag_leaves_a_readable_bag_of_the_frames_read(sevenscenes_path, tmp_path, caplog, name,
                                                                         ros, storage):  # fmt: skip
    """A bag cut off mid-file (60% of its bytes): the frames that are there are labelled into
    a closed, readable bag; the command exits 1 and the log names the bag and the frame count."""
    frames = list(SevenScenesSource(sevenscenes_path))[100:108]
    bag = write_bag(tmp_path / name, frames, ros, True, storage)
    f = bag if bag.is_file() else next(bag.glob("*.mcap"))
    f.write_bytes(f.read_bytes()[: int(f.stat().st_size * 0.6)])
    out = tmp_path / "out"
    assert main(["label", str(bag), "--model", "indoor-geometry", "--out", str(out), "--no-progress"]) == 1
    masks = read_bag(out / "segmentation")["/segmentation/mask"]
    assert 2 <= len(masks) < len(frames)
    stamps = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for _, _, m in masks]
    assert stamps == [START_NS + i * STEP_NS for i in range(len(masks))]
    assert f"{name}: the bag breaks off after {len(masks)} frames" in caplog.text


def test_exception_a_label_run_failing_on_its_first_frame_leaves_no_bag_to_block_the_next(frames, tmp_path, caplog):
    """An RGB-D model on a bag labelled without its depth topic fails on frame 0: no labelled bag
    is left (none is created before the first frame), so the run with the depth topic needs no
    --overwrite."""
    bag = write_bag(tmp_path / "in", frames[:2])
    out = tmp_path / "out"
    args = ["label", str(bag), "--model", "indoor-geometry-rgbd", "--out", str(out), "--no-progress"]
    assert main([*args, "--depth-topic", ""]) == 1
    assert "RGB-D model" in caplog.text
    assert not (out / "segmentation").exists()
    assert main(args) == 0
    assert len(read_bag(out / "segmentation")["/segmentation/mask"]) == 2


def test_exception_sink_that_writes_no_frame_leaves_no_bag_and_keeps_the_one_it_would_replace(frames, tmp_path):
    """A RosbagSink opened and closed without a frame creates nothing; with overwrite, a labelled
    bag already there is replaced only at the first frame; a first frame that fails half-way
    (after the class list was written) leaves no bag."""
    from types import SimpleNamespace

    from sceneparse import SceneParser, run
    from sceneparse.sinks import build_sink

    info = SimpleNamespace(class_names=CLASSES, palette=np.zeros((4, 3), np.uint8))
    sink = build_sink("rosbag", out=tmp_path)
    sink.open(info)
    sink.close()
    assert not (tmp_path / "segmentation").exists() and sink.summary()["frames"] == 0
    run(SceneParser.from_pretrained("indoor-geometry"), frames[:1], [build_sink("rosbag", out=tmp_path)],
        progress=False)  # fmt: skip
    before = (tmp_path / "segmentation" / "segmentation.mcap").read_bytes()
    sink = build_sink("rosbag", out=tmp_path, overwrite=True)
    sink.open(info)
    sink.close()
    assert (tmp_path / "segmentation" / "segmentation.mcap").read_bytes() == before
    assert len(read_bag(tmp_path / "segmentation")["/segmentation/mask"]) == 1

    class Broken:  # a result whose labels cannot be read: the first write fails after the class list
        @property
        def labels(self):
            raise RuntimeError("no labels")

    sink = build_sink("rosbag", out=tmp_path / "b")
    sink.open(info)
    with pytest.raises(RuntimeError, match="no labels"):
        sink.write(frames[0], Broken())
    assert (tmp_path / "b" / "segmentation").is_dir()
    sink.close()
    assert not (tmp_path / "b" / "segmentation").exists()


def test_feature_the_class_list_is_recorded_latched(frames, tmp_path):
    """ros2 bag play offers each topic with the QoS recorded in metadata.yaml: the one class-list
    message must be transient local (latched), or a subscriber that joins after it never gets it."""
    import yaml
    from rosbags.highlevel import AnyReader
    from rosbags.interfaces import QosDurability, QosReliability

    from sceneparse import SceneParser, run
    from sceneparse.sinks import build_sink

    sink = build_sink("rosbag", out=tmp_path, overlay=False)
    run(SceneParser.from_pretrained("indoor-geometry"), frames[:2], [sink], progress=False)
    bag = tmp_path / "segmentation"
    topics = {t["topic_metadata"]["name"]: t["topic_metadata"]
              for t in yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
              ["topics_with_message_count"]}  # fmt: skip
    (profile,) = yaml.safe_load(topics["/segmentation/labels"]["offered_qos_profiles"])
    assert profile["durability"] == 1 and profile["reliability"] == 1 and profile["depth"] == 1  # transient local
    with AnyReader([bag]) as reader:
        (conn,) = [c for c in reader.connections if c.topic == "/segmentation/labels"]
        (qos,) = conn.ext.offered_qos_profiles
        assert qos.durability == QosDurability.TRANSIENT_LOCAL and qos.reliability == QosReliability.RELIABLE
        assert sum(1 for _ in reader.messages([conn])) == 1
