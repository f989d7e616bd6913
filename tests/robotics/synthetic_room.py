"""A synthetic room with known planes, rendered to depth with open3d's ray caster: a floor at
z = 0 (world z up), a table top at z = 0.75 and a wall at y = 4, seen by a Kinect-like camera
held 1.4 m high and pitched down."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

K = np.array([[150.0, 0, 80], [0, 150.0, 60], [0, 0, 1]])  # 160x120
SIZE = (120, 160)
TABLE_HEIGHT = 0.75
FLOOR_ID, TABLE_ID, WALL_ID = 0, 1, 2


def camera_pose(yaw_deg: float = 0.0, pitch_deg: float = 30.0, position=(0.0, -0.5, 1.4)) -> np.ndarray:
    """Camera-to-world pose of a camera (x right, y down, z forward) at ``position``."""
    p, y = np.radians(pitch_deg), np.radians(yaw_deg)
    forward = np.array([np.sin(y) * np.cos(p), np.cos(y) * np.cos(p), -np.sin(p)])
    right = np.array([np.cos(y), -np.sin(y), 0.0])
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([right, down, forward], axis=1)
    pose[:3, 3] = position
    return pose


def render(pose: np.ndarray, noise: float = 0.003, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(depth in metres, true labels: 0 floor, 1 support, 2 vertical, 3 other, 255 no hit)."""
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    boxes = [((10, 10, 0.1), (-5, -5, -0.1)), ((1.0, 1.0, 0.04), (-0.5, 1.0, TABLE_HEIGHT - 0.04)),
             ((10, 0.1, 3), (-5, 4, 0))]  # fmt: skip
    for size, corner in boxes:
        box = o3d.t.geometry.TriangleMesh.create_box(*size)
        box.translate(corner)
        scene.add_triangles(box)
    h, w = SIZE
    rays = scene.create_rays_pinhole(o3d.core.Tensor(K), o3d.core.Tensor(np.linalg.inv(pose)), w, h)
    hit = scene.cast_rays(rays)
    depth = hit["t_hit"].numpy()  # the rays' directions have unit depth: t is the depth
    ids = hit["geometry_ids"].numpy()
    nz = hit["primitive_normals"].numpy()[..., 2]
    truth = np.full(SIZE, 3, np.uint8)
    truth[(ids == FLOOR_ID) & (nz > 0.9)] = 0
    truth[(ids == TABLE_ID) & (nz > 0.9)] = 1
    truth[np.abs(nz) < 0.1] = 2
    missing = ~np.isfinite(depth)
    depth = np.where(missing, 0, depth + np.random.default_rng(seed).normal(0, noise, depth.shape))
    truth[missing] = 255
    return depth.astype(np.float32), truth


def write_sequence(folder: Path, n: int = 8) -> Path:
    """A 7-Scenes style sequence of ``n`` frames, the camera turning and moving, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    np.savetxt(folder / "camera-intrinsics.txt", K)
    rng = np.random.default_rng(1)
    for i in range(n):
        yaw, pitch = -20 + 40 * i / max(n - 1, 1), 25 + 10 * (i % 2)
        pose = camera_pose(yaw, pitch, position=(0.1 * i, -0.5, 1.4))
        depth, truth = render(pose, seed=i)
        # colour from the true classes, with noise, so a network can learn them in a few steps
        palette = np.array([[60, 160, 60], [200, 150, 60], [90, 90, 200], [120, 120, 120], [0, 0, 0]], np.uint8)
        rgb = palette[np.minimum(truth, 4)].astype(np.int16) + rng.integers(-20, 20, (*SIZE, 3))
        stem = folder / f"frame-{2 * i:06d}"
        cv2.imwrite(f"{stem}.color.png", cv2.cvtColor(np.clip(rgb, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
        cv2.imwrite(f"{stem}.depth.png", np.rint(depth * 1000).astype(np.uint16))
        np.savetxt(f"{stem}.pose.txt", pose)
    return folder
