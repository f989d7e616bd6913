"""Folders of frames (sceneparse/sources/folder.py): plain image folders, and folders of real
7-Scenes frames written in the documented RGB-D layout (depth, poses, intrinsics), mapped."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from optional import require
from synthetic import moving_scene

from sceneparse.sources import FolderSource, SevenScenesSource, open_source


def test_feature_frame_folder_ordered_by_number(tmp_path):
    frames, _ = moving_scene(4)
    for i, name in zip(range(4), ["f_10.png", "f_9.png", "f_100.png", "f_2.png"]):
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(frames[i], cv2.COLOR_RGB2BGR))
    src = open_source(tmp_path)
    assert isinstance(src, FolderSource) and len(src) == 4
    assert [f.name for f in src] == ["f_2", "f_9", "f_10", "f_100"]
    assert [f.timestamp for f in FolderSource(tmp_path, fps=10)] == [0.2, 0.9, 1.0, 10.0]


def test_exception_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="no images"):
        FolderSource(tmp_path)


def _folder_from_7scenes(src_folder, out, n=6, trajectory=False, depth_dir=False, scale=1000, fps=None):
    """The first ``n`` frames of the 7-Scenes sequence written as a plain frame folder:
    ``000000.jpg``, ``000002.jpg``, ... (the same JPEG bytes), depth as ``000000.depth.png`` (or
    ``depth/000000.png``) in units of 1/``scale`` m, poses as ``000000.pose.txt`` (or TUM lines in
    ``poses.txt`` stamped with the frame number, over ``fps`` where given), intrinsics as
    ``fx fy cx cy`` in ``intrinsics.txt``; the frames returned are the unregistered ones, as copied."""
    from scipy.spatial.transform import Rotation

    out.mkdir(parents=True)
    if depth_dir:
        (out / "depth").mkdir()
    lines, frames = ["# timestamp tx ty tz qx qy qz qw"], []
    for i, frame in enumerate(SevenScenesSource(src_folder, register_color=False)):  # the JPEG bytes as stored
        if i == n:
            break
        stem = f"{2 * i:06d}"  # every second frame: numbers 0, 2, 4, ...
        (out / f"{stem}.jpg").write_bytes(Path(frame.extra["path"]).read_bytes())
        depth_path = out / "depth" / f"{stem}.png" if depth_dir else out / f"{stem}.depth.png"
        cv2.imwrite(str(depth_path), np.round(frame.depth * scale).astype(np.uint16))
        if trajectory:
            q = Rotation.from_matrix(frame.pose[:3, :3]).as_quat()
            lines.append(f"{2 * i / (fps or 1) + 0.001:.6f} " + " ".join(f"{v:.9f}" for v in (*frame.pose[:3, 3], *q)))
        else:
            np.savetxt(out / f"{stem}.pose.txt", frame.pose)
        frames.append(frame)
    if trajectory:
        (out / "poses.txt").write_text("\n".join(lines) + "\n")
    k = frames[0].intrinsics
    (out / "intrinsics.txt").write_text(f"{k[0, 0]} {k[1, 1]} {k[0, 2]} {k[1, 2]}\n")
    return frames


def test_feature_frame_folder_with_depth_poses_and_intrinsics(sevenscenes_path, tmp_path):
    """Real 7-Scenes frames in the plain folder layout: per-frame depth and 4x4 poses."""
    refs = _folder_from_7scenes(sevenscenes_path, tmp_path / "f")
    src = open_source(tmp_path / "f")
    assert isinstance(src, FolderSource) and len(src) == len(refs)  # depth PNGs are not frames
    got = list(src)
    assert [f.name for f in got] == [f"{2 * i:06d}" for i in range(len(refs))]
    for f, ref in zip(got, refs):
        assert np.array_equal(f.image, ref.image) and np.array_equal(f.depth, ref.depth)
        assert np.array_equal(f.pose, ref.pose) and np.allclose(f.intrinsics, ref.intrinsics)
        assert "depth_error" not in f.extra
    # a frame whose depth file is gone comes without depth, with the reason
    (tmp_path / "f" / "000004.depth.png").unlink()
    third = list(FolderSource(tmp_path / "f"))[2]
    assert third.depth is None and "no depth image" in third.extra["depth_error"]


def test_feature_frame_folder_with_a_trajectory_file_and_depth_folder(sevenscenes_path, tmp_path):
    refs = _folder_from_7scenes(sevenscenes_path, tmp_path / "f", trajectory=True, depth_dir=True, scale=5000, fps=15)
    got = list(FolderSource(tmp_path / "f", fps=15, depth_scale=5000))
    assert len(got) == len(refs)
    for f, ref in zip(got, refs):  # 7-Scenes' rotations are orthonormal to 1e-4 only
        assert np.allclose(f.pose, ref.pose, atol=2e-4) and np.abs(f.depth - ref.depth).max() < 2e-4
    # without fps the timestamps are the frame numbers 0, 2, 4, ...: only frame 0 has a line near it
    assert [f.pose is not None for f in FolderSource(tmp_path / "f", depth_scale=5000)] == [True] + [False] * 5


def test_edge_frames_named_by_their_time_in_seconds(sevenscenes_path, tmp_path):
    """Bag extractors and TUM name frames by their time (``1305031102.066667.jpg``): each frame gets
    its own depth and pose, its time from its name, in time order."""
    refs = _folder_from_7scenes(sevenscenes_path, tmp_path / "f", n=4)
    for i in range(len(refs)):
        stamp = f"{1305031102 + i / 15:.6f}"
        for old, new in ((f"{2 * i:06d}.jpg", f"{stamp}.jpg"), (f"{2 * i:06d}.depth.png", f"{stamp}.depth.png"),
                         (f"{2 * i:06d}.pose.txt", f"{stamp}.pose.txt")):  # fmt: skip
            (tmp_path / "f" / old).rename(tmp_path / "f" / new)
    got = list(FolderSource(tmp_path / "f"))
    assert np.allclose([f.timestamp for f in got], [1305031102 + i / 15 for i in range(4)])
    for f, ref in zip(got, refs):
        assert np.array_equal(f.depth, ref.depth) and np.array_equal(f.pose, ref.pose)


def test_exception_bad_pose_and_intrinsics_files_are_named(tmp_path):
    frames, _ = moving_scene(2)
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"{i}.png"), frames[i])
    (tmp_path / "1.pose.txt").write_text("1 0 0\n0 1 0\n")
    src = FolderSource(tmp_path)  # the frame is left out, the reason named; the others come
    assert [f.name for f in src] == ["0"]
    assert "1.pose.txt: expected a 4x4 camera-to-world matrix" in src.failed[str(tmp_path / "1.png")]
    (tmp_path / "intrinsics.txt").write_text("585 585 320\n")
    with pytest.raises(ValueError, match="intrinsics.txt: expected fx fy cx cy"):
        FolderSource(tmp_path)
    (tmp_path / "intrinsics.txt").unlink()
    (tmp_path / "poses.txt").write_text("0 1 2 3\n")
    with pytest.raises(ValueError, match="poses.txt:1: expected 'TIMESTAMP TX TY TZ QX QY QZ QW'"):
        FolderSource(tmp_path)


def test_exception_a_lost_pose_leaves_the_frame_without_its_pose(sevenscenes_path, tmp_path, caplog, capsys):
    """ScanNet writes -inf into the pose of a frame where tracking was lost: the frame was left
    out as unreadable and ``sceneparse label`` exited 1; it is labelled now, without a pose (a
    map skips it and counts it)."""
    from sceneparse.cli import main

    folder = tmp_path / "scan"
    _folder_from_7scenes(sevenscenes_path, folder, n=3)
    (folder / "000002.pose.txt").write_text("\n".join(["-inf -inf -inf -inf"] * 4) + "\n")
    frames = list(FolderSource(folder))
    assert [f.pose is None for f in frames] == [False, True, False]
    assert "tracking lost" in frames[1].extra["pose_error"] and "tracking lost" in caplog.text
    out = tmp_path / "out"
    assert main(["label", str(folder), "--stream", "--out", str(out), "--no-progress", "--threads", "1"]) == 0
    assert "scan: 3 frames ->" in capsys.readouterr().out


def test_feature_a_frame_folder_with_poses_is_mapped(sevenscenes_path, tmp_path):
    require("open3d", "pip install 'sceneparse[3d]'")
    from sceneparse.cli import main

    _folder_from_7scenes(sevenscenes_path, tmp_path / "f", trajectory=True, depth_dir=True, scale=5000)
    out = tmp_path / "map"
    assert main(["map", str(tmp_path / "f"), "--depth-scale", "5000", "--model", "indoor-geometry", "--out",
                 str(out), "--no-progress"]) == 0  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 6 and not summary.get("skipped"), summary  # every frame had its pose and depth
    assert summary["points"] > 1000 and summary["class_shares"]["support"] > 0.05


def test_exception_unreadable_image_is_left_out_and_named(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i:06d}.png"), np.full((32, 48, 3), 50 * i, np.uint8))
    (tmp_path / "000001.png").write_bytes(b"cut")
    src = FolderSource(tmp_path)
    assert [f.name for f in src] == ["000000", "000002"]
    assert list(src.failed) == [str(tmp_path / "000001.png")]


@pytest.mark.parametrize(
    "text, why",
    [("nan 585 320 240", "nan"), ("0 0 320 240", "zero focal length"), ("585 0 320 0 585 240 0 0 0", "last row 0 0 0")],
)
def test_exception_intrinsics_that_are_not_a_camera_matrix(tmp_path, text, why):
    """A camera matrix with nan, a zero focal length or a last row other than 0 0 1 was taken as
    it was, and every 3D point of a map came out nan or at one pixel."""
    cv2.imwrite(str(tmp_path / "000000.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "intrinsics.txt").write_text(text)
    with pytest.raises(ValueError, match=r"intrinsics.txt: not a camera matrix \(fx and fy positive, last row"):
        FolderSource(tmp_path)


@pytest.mark.parametrize(
    "matrix, message",
    [
        (np.diag([2.0, 2.0, 2.0, 1.0]), "not a rotation"),  # scaled
        (np.diag([1.0, 1.0, -1.0, 1.0]), "a reflection"),  # mirrored
        (np.diag([1.0, 1.0, 1.0, 0.0]), "its last row is"),
        (np.array([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0.5, 1, 2, 1]]), "written column by column?"),
    ],
)
def test_exception_pose_that_is_not_a_rigid_transform_is_named(sevenscenes_path, tmp_path, matrix, message):
    """A pose file holding a scaled, mirrored or projective matrix was taken as a camera pose and
    put the frame's points in the wrong place; now that frame is left out with the reason, as a
    pose with nan is. The real poses (orthonormal to 2e-4 only) are still read."""
    _folder_from_7scenes(sevenscenes_path, tmp_path / "f", n=3)
    np.savetxt(tmp_path / "f" / "000002.pose.txt", matrix)
    src = FolderSource(tmp_path / "f")
    assert [f.name for f in src] == ["000000", "000004"]
    assert "000002.pose.txt: not a camera-to-world matrix" in src.failed[str(tmp_path / "f" / "000002.jpg")]
    assert message in src.failed[str(tmp_path / "f" / "000002.jpg")]


def test_feature_depth_folder_with_depth_suffixed_names(sevenscenes_path, tmp_path):
    """``depth/000000.depth.png`` beside ``000000.jpg``: the depth images were looked up as
    ``000000.depth`` and every frame came without depth."""
    refs = _folder_from_7scenes(sevenscenes_path, tmp_path / "f", n=3, depth_dir=True)
    for p in (tmp_path / "f" / "depth").iterdir():
        p.rename(p.with_name(f"{p.stem}.depth.png"))
    got = list(FolderSource(tmp_path / "f"))
    assert [f.extra.get("depth_error") for f in got] == [None] * 3
    assert all(np.array_equal(f.depth, ref.depth) for f, ref in zip(got, refs))


def test_exception_two_files_of_one_frame(tmp_path):
    """``000001.jpg`` and ``000001.png`` were two frames named 000001: the second's outputs
    (labels/000001.png) replaced the first's. Mixed extensions of different frames are fine."""
    for name in ("000000.jpg", "000001.png", "000002.jpg"):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, 8, 3), np.uint8))
    assert [f.name for f in FolderSource(tmp_path)] == ["000000", "000001", "000002"]
    cv2.imwrite(str(tmp_path / "000001.jpg"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="000001.jpg and 000001.png are both frame 000001"):
        FolderSource(tmp_path)


def test_exception_a_trajectory_that_matches_no_frame_is_warned_of(sevenscenes_path, tmp_path, caplog):
    """Frames numbered 000000, 000002, ... with a poses.txt stamped in seconds since 1970: no
    frame got a pose, without a word until a map skipped them all."""
    import logging

    _folder_from_7scenes(sevenscenes_path, tmp_path / "f", n=3, trajectory=True)
    lines = (tmp_path / "f" / "poses.txt").read_text().splitlines()
    (tmp_path / "f" / "poses.txt").write_text(
        "\n".join([lines[0]] + [f"{1305031102 + float(ln.split()[0]):.6f} {ln.split(None, 1)[1]}" for ln in lines[1:]])
    )
    with caplog.at_level(logging.WARNING, logger="sceneparse"):
        frames = list(FolderSource(tmp_path / "f"))
    assert [f.pose for f in frames] == [None] * 3
    assert "poses.txt: no line within 0.02 of any frame's time" in caplog.text and "1305031102" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sceneparse"):  # the frames named by their time: matched, quiet
        for i in range(3):
            for suffix in (".jpg", ".depth.png"):
                (tmp_path / "f" / f"{2 * i:06d}{suffix}").rename(tmp_path / "f" / f"{1305031102 + 2 * i:.6f}{suffix}")
        frames = list(FolderSource(tmp_path / "f"))
    assert all(f.pose is not None for f in frames) and "no line within" not in caplog.text


def test_edge_text_files_with_a_byte_order_mark(tmp_path):
    """Intrinsics and poses saved by a Windows editor start with a byte-order mark, which was read
    as part of the first number ('could not convert string to float')."""
    cv2.imwrite(str(tmp_path / "000000.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "intrinsics.txt").write_text("\ufeff585 585 320 240\n", encoding="utf-8")
    (tmp_path / "poses.txt").write_text("\ufeff0.0 1 2 3 0 0 0 1\n", encoding="utf-8")
    frame = next(iter(FolderSource(tmp_path)))
    assert frame.intrinsics[0, 0] == 585 and frame.pose[:3, 3].tolist() == [1, 2, 3]


def test_edge_hidden_files_beside_the_frames_are_not_frames(sevenscenes_path, tmp_path):
    """macOS writes ``._NAME`` beside each file it copies to a FAT or exFAT drive: each
    ``._000002.jpg`` was a frame that could not be read, and ``sceneparse label`` exited 1."""
    _folder_from_7scenes(sevenscenes_path, tmp_path / "f", n=3)
    for name in ("000000.jpg", "000002.jpg", "000002.depth.png"):
        (tmp_path / "f" / f"._{name}").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
    src = FolderSource(tmp_path / "f")
    frames = list(src)
    assert [f.name for f in frames] == ["000000", "000002", "000004"] and not src.failed
    assert all(f.depth is not None for f in frames)


def test_edge_names_that_all_end_with_the_same_number(camvid_path, tmp_path):
    """Cityscapes' sequences (``stuttgart_00_000000_000042_leftImg8bit.png``): every name ends with
    the 8 of leftImg8bit, and every frame had the number 8, so one timestamp (and, with poses.txt,
    one pose). The frame number is the last number that differs between the names."""
    val = sorted((camvid_path / "val").glob("*.jpg"))[:3]
    for i, p in zip((10, 2, 1), val):  # frame 10 before frame 2 in name order: the number decides
        (tmp_path / f"stuttgart_00_000000_{i:02d}_leftImg8bit.jpg").write_bytes(p.read_bytes())
    frames = list(FolderSource(tmp_path, fps=17))
    assert [f.name.split("_")[3] for f in frames] == ["01", "02", "10"]
    assert [f.timestamp for f in frames] == [1 / 17, 2 / 17, 10 / 17]


def test_feature_depth_folder_of_floating_point_tiffs_in_metres(sevenscenes_path, tmp_path):
    """``depth/000000.tiff`` (32-bit float, metres): a depth folder's TIFFs were not depth images."""
    refs = _folder_from_7scenes(sevenscenes_path, tmp_path / "f", n=2, depth_dir=True)
    for p, ref in zip(sorted((tmp_path / "f" / "depth").iterdir()), refs):
        p.unlink()
        cv2.imwrite(str(p.with_suffix(".tiff")), ref.depth.astype(np.float32))
    got = list(FolderSource(tmp_path / "f"))
    assert all(np.array_equal(f.depth, ref.depth) for f, ref in zip(got, refs))


def test_feature_a_folder_of_several_videos_gives_each_as_a_sequence(camvid_path, tmp_path):
    """CamVid's training images as a stream: two videos whose frame numbers overlap
    (``0006R0_f00930``, ``0016E5_00930``) came in the order of the number alone, alternating
    between the videos frame by frame, with the temporal smoothing running across each cut. Each
    video now comes whole, as a sequence of its own (the smoothing restarts at it)."""
    names = ["0006R0_f00930", "0006R0_f00960", "0006R0_f00990", "0016E5_00930", "0016E5_00960", "0016E5_00990"]
    for name in names:
        (tmp_path / f"{name}.jpg").write_bytes((camvid_path / "train" / f"{name}.jpg").read_bytes())
    frames = list(FolderSource(tmp_path))
    assert [f.name for f in frames] == names
    assert [f.sequence for f in frames] == ["0006R0_f00930"] * 3 + ["0016E5_00930"] * 3
    assert [f.timestamp for f in frames] == [930, 960, 990] * 2
    assert [f.sequence for f in FolderSource(camvid_path / "val")] == [None] * 101  # one video: as before


def test_edge_frames_named_by_their_time_in_nanoseconds(sevenscenes_path, tmp_path):
    """EuRoC and ROS image extractors name frames by their stamp in nanoseconds
    (``1403636579763555584.png``): that was a frame number, the frame's time 1.4e18 s, and no line
    of a poses.txt in seconds was near it."""
    _folder_from_7scenes(sevenscenes_path, tmp_path / "f", n=3)
    lines = []
    for i in range(3):
        ns = 1403636579763555584 + i * 66_666_667
        for suffix in (".jpg", ".depth.png"):
            (tmp_path / "f" / f"{2 * i:06d}{suffix}").rename(tmp_path / "f" / f"{ns}{suffix}")
        (tmp_path / "f" / f"{2 * i:06d}.pose.txt").unlink()
        lines.append(f"{ns / 1e9:.6f} {i} 0 0 0 0 0 1")
    (tmp_path / "f" / "poses.txt").write_text("\n".join(lines) + "\n")
    got = list(FolderSource(tmp_path / "f"))
    assert np.allclose([f.timestamp for f in got], [1403636579.763555584 + i / 15 for i in range(3)], atol=1e-6)
    assert [f.pose[0, 3] for f in got] == [0, 1, 2] and all(f.depth is not None for f in got)


def test_edge_frames_ordered_by_every_number_that_differs(tmp_path):
    """Names with two numbers that differ were ordered by the last alone: ``1305031103_000000000``
    (seconds, nanoseconds) came before ``1305031102_900000000``, and two cameras' frames
    alternated. Now by each number that differs, first to last."""
    names = ["1305031103_100000000", "1305031102_900000000", "1305031103_000000000", "1305031102_950000000"]
    for name in names:
        cv2.imwrite(str(tmp_path / f"{name}.png"), np.zeros((8, 8, 3), np.uint8))
    assert [f.name for f in FolderSource(tmp_path)] == sorted(names)
    for p in tmp_path.iterdir():
        p.unlink()
    for cam in (0, 1):
        for i in (1, 2, 10):
            cv2.imwrite(str(tmp_path / f"cam{cam}_{i}.png"), np.zeros((8, 8, 3), np.uint8))
    names = [f.name for f in FolderSource(tmp_path)]
    assert names == ["cam0_1", "cam0_2", "cam0_10", "cam1_1", "cam1_2", "cam1_10"]


def test_feature_poses_in_kittis_layout(sevenscenes_path, tmp_path):
    """A poses.txt of one 3x4 matrix a line (KITTI odometry, KISS-ICP, ORB-SLAM's KITTI output)
    was refused as a bad TUM trajectory ('expected TIMESTAMP TX TY TZ QX QY QZ QW'), and the folder
    could not even be labelled. Line k is now the pose of the k-th frame."""
    refs = _folder_from_7scenes(sevenscenes_path, tmp_path / "f", n=3)
    for p in (tmp_path / "f").glob("*.pose.txt"):
        p.unlink()
    rows = [" ".join(f"{v:.12e}" for v in ref.pose[:3].ravel()) for ref in refs]
    (tmp_path / "f" / "poses.txt").write_text("\n".join(rows) + "\n")
    src = FolderSource(tmp_path / "f")
    assert src.has_poses and all(np.allclose(f.pose, ref.pose) for f, ref in zip(src, refs))
    (tmp_path / "f" / "poses.txt").write_text("\n".join(rows[:2]) + "\n")
    with pytest.raises(ValueError, match="2 poses in KITTI's layout .* for 3 frames"):
        FolderSource(tmp_path / "f")
    (tmp_path / "f" / "poses.txt").write_text("\n".join([*rows[:2], "1 0 0 0 0 1 0 0 0 0 1"]) + "\n")
    with pytest.raises(ValueError, match=r"poses.txt:3: expected the 12 numbers of a 3x4 camera-to-world matrix"):
        FolderSource(tmp_path / "f")
