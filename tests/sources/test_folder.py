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
