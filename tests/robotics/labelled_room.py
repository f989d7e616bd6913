"""The synthetic room of :mod:`robotics.synthetic_room` (floor at z = 0, a table top at
z = 0.75, a wall at y = 4; world z up) rendered without noise and with the pixel-centre
convention of open3d's back-projection (pixel u at x = (u - cx) / fx; the ray caster's rays go
through u + 0.5), so back-projected points lie exactly on the planes."""

from __future__ import annotations

import numpy as np
from robotics.synthetic_room import FLOOR_ID, SIZE, TABLE_HEIGHT, TABLE_ID, WALL_ID, K, camera_pose  # noqa: F401

#: The classes of the synthetic room: those of the geometry models.
CLASSES = ("floor", "support", "vertical", "other")


def render_exact(pose: np.ndarray, size=SIZE, intrinsics=K) -> tuple[np.ndarray, np.ndarray]:
    """(depth in metres, true labels 0 floor, 1 support, 2 vertical, 3 other, 255 no hit)."""
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    boxes = [((10, 10, 0.1), (-5, -5, -0.1)), ((1.0, 1.0, 0.04), (-0.5, 1.0, TABLE_HEIGHT - 0.04)),
             ((10, 0.1, 3), (-5, 4, 0))]  # fmt: skip
    for box_size, corner in boxes:
        box = o3d.t.geometry.TriangleMesh.create_box(*box_size)
        box.translate(corner)
        scene.add_triangles(box)
    h, w = size
    shifted = np.asarray(intrinsics, np.float64).copy()
    shifted[:2, 2] += 0.5  # the ray caster adds half a pixel: take it back
    rays = scene.create_rays_pinhole(o3d.core.Tensor(shifted), o3d.core.Tensor(np.linalg.inv(pose)), w, h)
    hit = scene.cast_rays(rays)
    depth = hit["t_hit"].numpy()
    ids = hit["geometry_ids"].numpy()
    nz = hit["primitive_normals"].numpy()[..., 2]
    truth = np.full((h, w), 3, np.uint8)
    truth[(ids == FLOOR_ID) & (nz > 0.9)] = 0
    truth[(ids == TABLE_ID) & (nz > 0.9)] = 1
    truth[np.abs(nz) < 0.1] = 2
    missing = ~np.isfinite(depth)
    truth[missing] = 255
    return np.where(missing, 0, depth).astype(np.float32), truth


def probs_from_labels(truth: np.ndarray, confidence: float = 0.7, num_classes: int = 4) -> np.ndarray:
    """CxHxW probabilities: ``confidence`` on the true class, the rest shared by the others."""
    probs = np.full((num_classes, *truth.shape), (1 - confidence) / (num_classes - 1), np.float32)
    valid = truth < num_classes
    rows, cols = np.nonzero(valid)
    probs[truth[valid].astype(int), rows, cols] = confidence
    return probs
