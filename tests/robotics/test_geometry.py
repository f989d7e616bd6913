"""Geometry labels from depth: plane and floor finding on a synthetic room with known planes,
and labels on real 7-Scenes frames."""

import sys

import numpy as np
import pytest
from optional import require

require("open3d", "pip install 'sceneparse[3d]' (and libusb-1.0-0 on Linux)")

from robotics.synthetic_room import TABLE_HEIGHT, K, camera_pose, render  # noqa: E402

from sceneparse.errors import InputError  # noqa: E402
from sceneparse.robotics import (  # noqa: E402
    FLOOR,
    IGNORE,
    OTHER,
    SUPPORT,
    VERTICAL,
    GeometryConfig,
    find_ground,
    find_ground_in_sequence,
    geometry_labels,
    label_sequence,
)
from sceneparse.robotics.geometry import backproject, horizontal_planes, project_points  # noqa: E402

CFG = GeometryConfig(stride=1)


def iou(pred, truth, c):
    valid = (truth != IGNORE) & (pred != IGNORE)  # pred ignores readings past max_depth (checked apart)
    return ((pred == c) & (truth == c)).sum() / (((pred == c) | (truth == c)) & valid).sum()


def angle_deg(a, b):
    return np.degrees(np.arccos(np.clip(abs(np.dot(a, b)) / np.linalg.norm(a) / np.linalg.norm(b), -1, 1)))


def test_feature_horizontal_planes_of_the_synthetic_room():
    pose = camera_pose()
    depth, _ = render(pose)
    cloud, rows, cols = backproject(depth, K, 1, 5.0)
    assert len(rows) == (depth > 0).sum() and np.all(depth[rows, cols] > 0)
    up = pose[:3, :3].T @ [0, 0, 1]  # world up in the camera frame
    planes = horizontal_planes(cloud, up, CFG)
    heights = sorted(p.height for p in planes)  # along up, from the camera
    assert len(planes) == 2
    assert heights[0] == pytest.approx(-1.4, abs=0.02)  # the floor, 1.4 m below the camera
    assert heights[1] == pytest.approx(-1.4 + TABLE_HEIGHT, abs=0.02)  # the table top
    assert all(angle_deg(p.normal, up) < 1.5 for p in planes)


def test_feature_floor_and_up_of_one_frame_without_pose():
    pose = camera_pose(yaw_deg=10, pitch_deg=35)
    depth, _ = render(pose)
    ground = find_ground(depth, K, CFG)
    assert ground.frame == "camera"
    assert angle_deg(ground.up, pose[:3, :3].T @ [0, 0, 1]) < 1.5  # refined from the 35 degree guess
    assert ground.floor.height == pytest.approx(-1.4, abs=0.02)


def test_feature_floor_of_a_posed_sequence_in_world_coordinates():
    poses = [camera_pose(yaw, pitch) for yaw, pitch in ((-30, 25), (0, 35), (30, 30))]
    ground = find_ground_in_sequence([(render(p, seed=i)[0], K, p) for i, p in enumerate(poses)], CFG)
    assert ground.frame == "world"
    assert angle_deg(ground.up, [0, 0, 1]) < 1.0
    assert ground.floor.height == pytest.approx(0.0, abs=0.02)
    assert ground.up @ [0, 0, 1] > 0  # pointing up, not down


@pytest.mark.parametrize("posed", [False, True])
def test_feature_labels_match_the_known_planes(posed):
    poses = [camera_pose(yaw, 30) for yaw in (-15, 0, 15)]
    frames = [(render(p, seed=i)[0], K, p if posed else None) for i, p in enumerate(poses)]
    labels, ground = label_sequence(frames, CFG)
    assert (ground is not None) == posed
    for (depth, _, _), pred, pose in zip(frames, labels, poses):
        _, truth = render(pose)
        assert pred.dtype == np.uint8 and pred.shape == depth.shape
        assert np.array_equal(pred == IGNORE, (depth <= 0) | (depth > CFG.max_depth))
        assert iou(pred, truth, FLOOR) > 0.97
        assert iou(pred, truth, SUPPORT) > 0.9
        assert iou(pred, truth, VERTICAL) > 0.9
        assert (pred == OTHER).mean() < 0.03


def test_feature_stride_spreads_labels_over_each_cell():
    pose = camera_pose()
    depth, truth = render(pose)
    depth[50:60, 70:90] = 0  # a hole: ignored, whatever its cell says
    pred = geometry_labels(depth, K, cfg=GeometryConfig(stride=2))
    assert np.all(pred[50:60, 70:90] == IGNORE)
    assert np.all(pred[::2, ::2] == pred[1::2, 1::2])  # one label per 2x2 cell
    assert iou(pred, truth, FLOOR) > 0.9 and iou(pred, truth, SUPPORT) > 0.8


def test_feature_project_points_inverts_backproject_and_finds_what_is_hidden():
    """Points of one view land back on their pixels; a second view sees the table top, not the
    floor under it, and nothing behind the camera."""
    pose = camera_pose(pitch_deg=35)
    depth, _ = render(pose, noise=0.0)
    cloud, rows, cols = backproject(depth, K, stride=7)
    world = cloud.point.positions.numpy().astype(np.float64) @ pose[:3, :3].T + pose[:3, 3]
    u, v, z, seen = project_points(world, pose, K, depth)
    assert seen.all()
    np.testing.assert_allclose(u, cols, atol=1e-3)
    np.testing.assert_allclose(v, rows, atol=1e-3)
    np.testing.assert_allclose(z, depth[rows, cols], atol=1e-5)
    above = camera_pose(pitch_deg=89, position=(0.0, 1.5, 2.5))  # looking down at the table
    under_table = np.array([[0.0, 1.5, 0.0]])  # the floor under the table's middle
    on_table = np.array([[0.0, 1.5, TABLE_HEIGHT]])
    behind = np.array([[0.0, 1.5, 3.5]])
    depth_above, _ = render(above, noise=0.0)
    _, _, _, seen = project_points(np.concatenate([under_table, on_table, behind]), above, K, depth_above)
    assert seen.tolist() == [False, True, False]
    _, _, _, seen = project_points(np.concatenate([under_table, behind]), above, K)  # without depth: nothing hidden
    assert seen.tolist() == [True, False]


def test_exception_bad_depth():
    depth, _ = render(camera_pose())
    with pytest.raises(InputError, match="metres"):
        geometry_labels(depth * 1000, K)
    with pytest.raises(InputError, match="HxW float"):
        geometry_labels(depth.astype(np.uint16), K)
    with pytest.raises(InputError, match="3x3"):
        geometry_labels(depth, K[:2])
    ground = find_ground_in_sequence([(depth, K, camera_pose())], CFG)
    with pytest.raises(InputError, match="pose"):
        geometry_labels(depth, K, None, ground, CFG)


def test_smoke_empty_depth_is_all_ignored():
    pred = geometry_labels(np.zeros((40, 50), np.float32), K)
    assert pred.shape == (40, 50) and np.all(pred == IGNORE)


def test_exception_missing_open3d_names_the_extra(monkeypatch):
    from sceneparse.robotics.geometry import require_open3d

    monkeypatch.setitem(sys.modules, "open3d", None)
    with pytest.raises(ImportError, match=r"sceneparse\[3d\].*libusb"):
        require_open3d()


# ----------------------------------------------------------------------------- real frames


@pytest.fixture(scope="module")
def kitchen(sevenscenes_path):
    """Every 10th frame of the 7-Scenes sequence: depth, intrinsics, pose; the sequence's ground."""
    from sceneparse.sources import SevenScenesSource

    frames = [(f.depth, f.intrinsics, f.pose) for f in SevenScenesSource(sevenscenes_path)][::10]
    labels, ground = label_sequence(frames, GeometryConfig(stride=4))
    return frames, labels, ground


def _world_points(depth, intrinsics, pose, labels, cls, stride=4):
    cloud, rows, cols = backproject(depth, intrinsics, stride, 5.0)
    pts = cloud.point.positions.numpy()
    pts = pts[labels[rows, cols] == cls]
    return pts @ pose[:3, :3].T + pose[:3, 3]


def test_feature_real_frames_floor_below_support(kitchen):
    frames, labels, ground = kitchen
    assert ground.floor is not None
    assert sum((lab == FLOOR).mean() for lab in labels) / len(labels) > 0.03
    assert sum((lab == SUPPORT).mean() for lab in labels) / len(labels) > 0.1
    floor_h, support_h = [], []
    for (depth, k, pose), lab in zip(frames, labels):
        floor_h.append(ground.floor.distance(_world_points(depth, k, pose, lab, FLOOR)))
        support_h.append(ground.floor.distance(_world_points(depth, k, pose, lab, SUPPORT)))
    floor_h, support_h = np.concatenate(floor_h), np.concatenate(support_h)
    assert np.all(np.abs(floor_h) <= 0.07)
    assert np.all(support_h >= 0.14)
    assert 0.5 < np.median(support_h) < 1.1  # tables and worktops: 0.7-0.95 m in a kitchen
    # the cameras look down at the floor: it lies below every camera
    assert all(ground.floor.distance(pose[None, :3, 3])[0] > 0.8 for _, _, pose in frames)


def test_feature_real_frames_vertical_is_near_vertical(kitchen):
    import open3d as o3d

    frames, labels, ground = kitchen
    pts = np.concatenate([_world_points(*f, lab, VERTICAL) for f, lab in zip(frames[:6], labels[:6])])
    cloud = o3d.t.geometry.PointCloud(o3d.core.Tensor(pts.astype(np.float32)))
    normals = []
    for _ in range(3):  # the three largest planes among the points labelled vertical
        model, inliers = cloud.segment_plane(0.03, 3, 500)
        normals.append(model.numpy()[:3] / np.linalg.norm(model.numpy()[:3]))
        keep = np.ones(len(cloud.point.positions), bool)
        keep[inliers.numpy()] = False
        cloud = cloud.select_by_mask(o3d.core.Tensor(keep))
    assert all(abs(n @ ground.up) < 0.2 for n in normals)  # within ~12 degrees of vertical


def test_feature_real_labels_are_repeatable(kitchen):
    """The same frames give the same labels, bit for bit: open3d returns back-projected and
    voxelised points in no fixed order and its parallel RANSAC may stop early on a plane that
    varies run to run; the labels must not depend on either."""
    frames, labels, ground = kitchen
    again, ground2 = label_sequence(frames, GeometryConfig(stride=4))
    assert np.array_equal(ground.up, ground2.up) and ground.floor.offset == ground2.floor.offset
    assert all(np.array_equal(a, b) for a, b in zip(labels, again))
    depth, k, _ = frames[5]
    unposed = [geometry_labels(depth, k, cfg=GeometryConfig(stride=2)) for _ in range(3)]
    assert all(np.array_equal(unposed[0], u) for u in unposed[1:])
    cloud, rows, cols = backproject(depth, k, 2, 5.0, normals_k=30)
    assert np.all(np.diff(rows * depth.shape[1] + cols) > 0)  # the points in pixel order
