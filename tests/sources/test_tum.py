"""TUM RGB-D sequences (sceneparse/sources/tum.py)."""

import cv2
import numpy as np
import pytest

from sceneparse.sources import TUMSource, open_source


def test_feature_tum_layout_associates_by_time(tmp_path):
    (tmp_path / "rgb").mkdir()
    (tmp_path / "depth").mkdir()
    rgb_lines, depth_lines = ["# timestamp filename"], ["# timestamp filename"]
    for i in range(3):
        t = 100 + i / 30
        cv2.imwrite(str(tmp_path / "rgb" / f"{t:.6f}.png"), np.full((8, 10, 3), 40 * i, np.uint8))
        cv2.imwrite(str(tmp_path / "depth" / f"{t + 0.005:.6f}.png"), np.full((8, 10), 5000 * (i + 1), np.uint16))
        rgb_lines.append(f"{t:.6f} rgb/{t:.6f}.png")
        depth_lines.append(f"{t + 0.005:.6f} depth/{t + 0.005:.6f}.png")
    (tmp_path / "rgb.txt").write_text("\n".join(rgb_lines))
    (tmp_path / "depth.txt").write_text("\n".join(depth_lines))
    src = open_source(tmp_path)
    assert isinstance(src, TUMSource)
    frames = list(src)
    assert [round(f.timestamp, 3) for f in frames] == [100.0, 100.033, 100.067]
    assert [float(f.depth[0, 0]) for f in frames] == [1.0, 2.0, 3.0]  # 1/5000 m units


def test_exception_bad_tum_list(tmp_path):
    (tmp_path / "rgb.txt").write_text("not-a-number rgb/x.png\n")
    with pytest.raises(ValueError, match="rgb.txt:1: expected 'TIMESTAMP PATH'"):
        TUMSource(tmp_path)


def test_exception_corrupt_or_missing_depth_frame_does_not_end_the_sequence(sevenscenes_path, tmp_path):
    """Real 7-Scenes frames in the TUM layout: a corrupt depth PNG ended the iteration; now that
    frame and one whose depth file is gone come without depth, with the reason."""
    (tmp_path / "rgb").mkdir()
    (tmp_path / "depth").mkdir()
    colors = sorted(sevenscenes_path.glob("frame-*.color.jpg"))[:3]
    rgb_lines, depth_lines = [], []
    for i, color in enumerate(colors):
        t = 100 + i / 30
        (tmp_path / "rgb" / f"{t:.6f}.jpg").write_bytes(color.read_bytes())
        depth = color.with_name(color.name.replace("color.jpg", "depth.png")).read_bytes()
        (tmp_path / "depth" / f"{t:.6f}.png").write_bytes(depth[: len(depth) // 2] if i == 1 else depth)
        rgb_lines.append(f"{t:.6f} rgb/{t:.6f}.jpg")
        depth_lines.append(f"{t:.6f} depth/{t:.6f}.png")
    (tmp_path / "rgb.txt").write_text("\n".join(rgb_lines))
    (tmp_path / "depth.txt").write_text("\n".join(depth_lines))
    (tmp_path / "depth" / f"{100 + 2 / 30:.6f}.png").unlink()
    frames = list(TUMSource(tmp_path))
    assert len(frames) == 3 and frames[0].depth is not None and "depth_error" not in frames[0].extra
    assert frames[1].depth is None and "not a readable depth image" in frames[1].extra["depth_error"]
    assert frames[2].depth is None and "not found" in frames[2].extra["depth_error"]


def _tum_from_7scenes(src_folder, out, n=6):
    """The first ``n`` frames of the 7-Scenes sequence written in TUM's layout (depth in 1/5000 m,
    poses as quaternions in groundtruth.txt, 7-Scenes' intrinsics in camera-intrinsics.txt)."""
    from scipy.spatial.transform import Rotation

    (out / "rgb").mkdir(parents=True)
    (out / "depth").mkdir()
    rgb, depth, gt, poses = ["# timestamp filename"], ["# timestamp filename"], ["# timestamp tx ty tz qx qy qz qw"], []
    for i, frame in enumerate(open_source(src_folder)):
        if i == n:
            break
        t = 1000 + i / 15
        cv2.imwrite(str(out / "rgb" / f"{t:.6f}.png"), cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(out / "depth" / f"{t:.6f}.png"), np.round(frame.depth * 5000).astype(np.uint16))
        q = Rotation.from_matrix(frame.pose[:3, :3]).as_quat()
        rgb.append(f"{t:.6f} rgb/{t:.6f}.png")
        depth.append(f"{t:.6f} depth/{t:.6f}.png")
        gt.append(f"{t + 0.004:.6f} " + " ".join(f"{v:.9f}" for v in (*frame.pose[:3, 3], *q)))
        poses.append(frame.pose)
    for name, lines in (("rgb.txt", rgb), ("depth.txt", depth), ("groundtruth.txt", gt)):
        (out / name).write_text("\n".join(lines) + "\n")
    np.savetxt(out / "camera-intrinsics.txt", frame.intrinsics)
    return poses


def test_feature_groundtruth_poses_and_intrinsics(sevenscenes_path, tmp_path):
    poses = _tum_from_7scenes(sevenscenes_path, tmp_path / "tum")
    frames = list(TUMSource(tmp_path / "tum"))
    assert len(frames) == 6 and all(f.intrinsics[0, 0] == 585 for f in frames)
    for f, pose in zip(frames, poses):  # 7-Scenes' rotations are orthonormal to 1e-4 only
        assert np.allclose(f.pose, pose, atol=2e-4)
    (tmp_path / "tum" / "camera-intrinsics.txt").unlink()
    assert next(iter(TUMSource(tmp_path / "tum"))).intrinsics[0, 0] == 525  # TUM's documented default
    (tmp_path / "tum" / "groundtruth.txt").write_text("1000.0 1 2 3\n")
    with pytest.raises(ValueError, match="groundtruth.txt:1: expected 'TIMESTAMP TX TY TZ QX QY QZ QW'"):
        TUMSource(tmp_path / "tum")


def test_feature_a_tum_sequence_is_mapped(sevenscenes_path, tmp_path):
    from optional import require

    require("open3d", "pip install 'sceneparse[3d]'")
    import json

    from sceneparse.cli import main

    _tum_from_7scenes(sevenscenes_path, tmp_path / "tum")
    out = tmp_path / "map"
    assert main(["map", str(tmp_path / "tum"), "--model", "indoor-geometry", "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 6 and not summary.get("skipped"), summary  # every frame had its pose
    assert (out / "map.ply").stat().st_size > 1000


def test_exception_unreadable_colour_frame_is_left_out_and_named(sevenscenes_path, tmp_path):
    _tum_from_7scenes(sevenscenes_path, tmp_path, n=4)
    rgb = sorted((tmp_path / "rgb").iterdir())
    rgb[1].write_bytes(b"not a png")
    rgb[2].unlink()
    src = TUMSource(tmp_path)
    frames = list(src)
    assert [f.name for f in frames] == [rgb[0].stem, rgb[3].stem]
    assert set(src.failed) == {str(rgb[1]), str(rgb[2])}


def test_exception_rgb_list_without_frames(tmp_path):
    """An rgb.txt of comments only opened as a sequence of no frames: ``sceneparse label`` said
    'no frame labelled' and exited 0."""
    (tmp_path / "rgb.txt").write_text("# color images\n# timestamp filename\n")
    with pytest.raises(ValueError, match="rgb.txt: lists no frames"):
        TUMSource(tmp_path)
    from sceneparse.cli import main

    assert main(["label", str(tmp_path), "--out", str(tmp_path / "out"), "--no-progress", "--threads", "1"]) == 1


def test_feature_lists_out_of_time_order_are_read_in_time_order(sevenscenes_path, tmp_path):
    """Lines of rgb.txt out of time order (lists concatenated, edited by hand) gave frames out of
    time order: the temporal smoothing ran backwards between them. A byte-order mark is read too."""
    _tum_from_7scenes(sevenscenes_path, tmp_path, n=4)
    lines = (tmp_path / "rgb.txt").read_text().splitlines()
    (tmp_path / "rgb.txt").write_text("\ufeff" + "\n".join([lines[0], *lines[3:], *lines[1:3]]), encoding="utf-8")
    frames = list(TUMSource(tmp_path))
    assert [round(f.timestamp, 3) for f in frames] == [1000.0, 1000.067, 1000.133, 1000.2]
    assert all(f.depth is not None and f.pose is not None for f in frames)


def test_exception_groundtruth_with_a_quaternion_that_is_not_a_unit_one(sevenscenes_path, tmp_path):
    """TUM's quaternions are unit ones; a line whose last four numbers are not (the columns of
    another layout: w first and the translation last, say) became a rotation without a word."""
    _tum_from_7scenes(sevenscenes_path, tmp_path, n=2)
    lines = (tmp_path / "groundtruth.txt").read_text().splitlines()
    t, *values = lines[2].split()
    (tmp_path / "groundtruth.txt").write_text("\n".join([*lines[:2], " ".join([t, *values[3:], *values[:3]])]) + "\n")
    with pytest.raises(ValueError, match=r"groundtruth.txt:3: the quaternion QX QY QZ QW has norm .*, not 1"):
        TUMSource(tmp_path)


def test_feature_depth_scale_of_a_sequence_in_tums_layout(sevenscenes_path, tmp_path, caplog):
    """Sequences in TUM's layout from elsewhere may hold depth in millimetres: ``--depth-scale``
    was 'not used' for them ('does not apply to a tum source') and their depth came 5 times too near."""
    import logging

    _tum_from_7scenes(sevenscenes_path, tmp_path, n=2)
    reference = [f.depth for f in TUMSource(tmp_path)]
    for p in (tmp_path / "depth").iterdir():  # the same depth in millimetres
        cv2.imwrite(str(p), np.round(cv2.imread(str(p), cv2.IMREAD_UNCHANGED) / 5).astype(np.uint16))
    with caplog.at_level(logging.WARNING, logger="sceneparse"):
        frames = list(open_source(tmp_path, options={"depth_scale": 1000.0}))
    assert "not used" not in caplog.text
    assert all(np.abs(f.depth - d).max() <= 1e-3 for f, d in zip(frames, reference))
    with pytest.raises(ValueError, match="depth_scale must be positive"):
        TUMSource(tmp_path, depth_scale=0)


def test_feature_max_time_difference_pairs_depth_recorded_later(sevenscenes_path, tmp_path, caplog):
    """Depth stamped 30 ms after its colour (a camera whose streams are not synchronised) found no
    depth within TUM's 20 ms and no flag could widen it: ``--max-time-difference`` does, for
    ``label`` and ``map``; it is named in the warning where it does not apply, and a bad value
    is a usage error."""
    import logging

    from sceneparse.cli import main

    _tum_from_7scenes(sevenscenes_path, tmp_path / "tum", n=3)
    lines = (tmp_path / "tum" / "depth.txt").read_text().splitlines()
    (tmp_path / "tum" / "depth.txt").write_text(
        "\n".join([lines[0]] + [f"{float(t) + 0.03:.6f} {name}" for t, name in (ln.split() for ln in lines[1:])]) + "\n"
    )
    assert all(f.depth is None for f in open_source(tmp_path / "tum"))
    cmd = ["label", str(tmp_path / "tum"), "--stream", "--model", "indoor-geometry-rgbd", "--no-progress",
           "--threads", "1"]  # fmt: skip
    assert main([*cmd, "--out", str(tmp_path / "a")]) == 1  # every frame: the RGB-D model has no depth
    assert main([*cmd, "--out", str(tmp_path / "b"), "--max-time-difference", "0.04"]) == 0
    with caplog.at_level(logging.WARNING, logger="sceneparse"):
        open_source(sevenscenes_path, options={"max_difference": 0.04})
    assert "--max-time-difference does not apply to a 7scenes source" in caplog.text
    for value in ("0", "-1", "inf"):
        with pytest.raises(SystemExit):
            main(["map", str(tmp_path / "tum"), "--out", str(tmp_path / "m"), "--max-time-difference", value])
