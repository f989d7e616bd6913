"""Geometry labels from depth: floor, support, vertical and other, as a robot sees its ground.

After Hadsell, Sermanet, LeCun et al. (J. Field Robotics 2009): near-range geometry from a
depth sensor labels the ground and the obstacles, and those labels teach a convnet to see the
same from the image alone. Here, for indoor RGB-D frames:

* ``floor``: the ground plane, the lowest large upward-facing plane;
* ``support``: other upward-facing horizontal planes clearly above the floor (tables, shelves,
  worktops, seats);
* ``vertical``: surfaces whose normal is nearly perpendicular to the up axis (walls, cabinet
  fronts, doors);
* ``other``: everything else with a depth reading; pixels without one are ignored (255).

The steps, all through open3d's tensor API: back-projection
(``PointCloud.create_from_depth_image``), normals (``estimate_normals``, oriented towards the
camera) and planes (``segment_plane``, RANSAC). The up axis comes from the camera poses where a
sequence has them (the mean of the cameras' image-up axes, refined by the horizontal planes
found in the fused points of several frames), else per frame from the camera's image-up axis
refined by the frame's own horizontal planes. Labels are computed on a grid of every
``stride``-th pixel and spread to the pixels of each grid cell.

open3d is optional: it is imported when a function here first needs it
(``pip install sceneparse[3d]``; on Linux it needs libusb, ``apt-get install libusb-1.0-0``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from sceneparse.errors import InputError

__all__ = [
    "GEOMETRY_CLASSES",
    "FLOOR",
    "SUPPORT",
    "VERTICAL",
    "OTHER",
    "IGNORE",
    "GeometryConfig",
    "Plane",
    "GroundPlane",
    "require_open3d",
    "backproject",
    "project_points",
    "horizontal_planes",
    "find_ground",
    "find_ground_in_sequence",
    "geometry_labels",
    "label_sequence",
]

log = logging.getLogger(__name__)

#: Class names of the geometry labels, in label order.
GEOMETRY_CLASSES = ("floor", "support", "vertical", "other")
FLOOR, SUPPORT, VERTICAL, OTHER = range(4)
#: Label of pixels without a depth reading.
IGNORE = 255

#: The camera's image-up axis in its own frame (x right, y down, z forward).
CAMERA_UP = np.array([0.0, -1.0, 0.0])


def require_open3d():
    """The ``open3d`` module, or an ImportError that says how to install it."""
    try:
        import open3d
    except ImportError as err:  # also OSError-like ImportErrors for a missing libusb
        raise ImportError(
            f"sceneparse.robotics needs open3d ({err}): pip install 'sceneparse[3d]' "
            "(on Linux open3d also needs libusb: apt-get install libusb-1.0-0)"
        ) from err
    return open3d


@dataclass(frozen=True)
class GeometryConfig:
    """Parameters of the geometry labels (lengths in metres, angles in degrees).

    Attributes:
        stride: labels are computed on every ``stride``-th pixel (4 at 640x480: 160x120 points).
        max_depth: readings beyond this are ignored (Kinect depth is poor past ~4 m).
        normal_neighbours: nearest neighbours of each point's normal.
        horizontal_angle: a normal within this of up faces upwards (and a plane is horizontal).
        vertical_angle: a normal within this of the horizontal belongs to a vertical surface.
        member_angle: a point within ``floor_tolerance`` of the floor, or ``plane_distance`` of a
            support plane, belongs to it if its normal lies within this of up (normals of
            noisy readings scatter more than the plane's points do).
        guess_angle: how far the up guess (camera axes) may be from the true up axis.
        floor_tolerance: upward-facing points within this of the floor plane are floor.
        support_min_height: support surfaces lie at least this far above the floor.
        plane_distance: RANSAC inlier distance.
        min_plane_points: fewest inliers of a support plane (on the stride grid).
        min_floor_fraction: the floor plane has at least this share of the upward-facing points
            (of the largest horizontal plane, when fitted on fused frames).
        max_planes: most planes RANSAC looks for in one cloud.
        ransac_iterations: RANSAC iterations per plane.
        voxel_size: voxel size of the fused cloud the sequence's floor is fitted on.
        seed: RANSAC seed, so labels are repeatable.
    """

    stride: int = 4
    max_depth: float = 5.0
    normal_neighbours: int = 30
    horizontal_angle: float = 20.0
    vertical_angle: float = 20.0
    member_angle: float = 50.0
    guess_angle: float = 40.0
    floor_tolerance: float = 0.06
    support_min_height: float = 0.15
    plane_distance: float = 0.025
    min_plane_points: int = 120
    min_floor_fraction: float = 0.1
    max_planes: int = 8
    ransac_iterations: int = 300
    voxel_size: float = 0.03
    seed: int = 0

    def __post_init__(self) -> None:
        if self.stride < 1:
            raise ValueError(f"stride must be at least 1, got {self.stride}")
        if not 0 < self.horizontal_angle < 90 or not 0 < self.vertical_angle < 90:
            raise ValueError("horizontal_angle and vertical_angle must lie between 0 and 90 degrees")


@dataclass(frozen=True)
class Plane:
    """A plane ``normal . p + offset = 0`` (unit normal), with its RANSAC inlier count."""

    normal: np.ndarray
    offset: float
    inliers: int = 0

    def distance(self, points: np.ndarray) -> np.ndarray:
        """Signed distances of Nx3 ``points`` along the normal."""
        return np.asarray(points, np.float64) @ self.normal + self.offset

    @property
    def height(self) -> float:
        """Position of the plane along its normal (the signed distance of the origin, negated)."""
        return -self.offset

    def transformed(self, transform: np.ndarray) -> Plane:
        """The plane in the frame ``x' = R x + t`` (``transform`` 4x4)."""
        rot, t = transform[:3, :3], transform[:3, 3]
        normal = rot @ self.normal
        return Plane(normal, float(self.offset - normal @ t), self.inliers)


@dataclass(frozen=True)
class GroundPlane:
    """The floor and the up axis, in one frame (the world's, or one camera's without poses).

    Attributes:
        up: unit up vector.
        floor: the floor plane with its normal along ``up``; None where no floor was found
            (then no pixel is labelled floor and every upward plane is support).
        frame: "world" (poses known: apply to every frame through its pose) or "camera".
    """

    up: np.ndarray
    floor: Plane | None
    frame: str = "world"

    def in_camera(self, pose: np.ndarray | None) -> GroundPlane:
        """This ground in the frame of a camera with camera-to-world ``pose``."""
        if self.frame == "camera":
            return self
        if pose is None:
            raise InputError("a ground plane found in world coordinates needs each frame's pose")
        world_to_cam = np.linalg.inv(pose)
        up = world_to_cam[:3, :3] @ self.up
        floor = self.floor.transformed(world_to_cam) if self.floor is not None else None
        return GroundPlane(up, floor, "camera")


# ----------------------------------------------------------------------------- point clouds


def _check_depth(depth: np.ndarray, intrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    depth = np.asarray(depth)
    if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.floating):
        raise InputError(f"depth must be an HxW float array in metres, got {depth.dtype} with shape {depth.shape}")
    if np.nanmax(depth, initial=0) > 100:
        raise InputError(f"depth reaches {np.nanmax(depth):.0f}: it must be in metres, not millimetres")
    intrinsics = np.asarray(intrinsics, np.float64)
    if intrinsics.shape != (3, 3):
        raise InputError(f"intrinsics must be a 3x3 camera matrix, got shape {intrinsics.shape}")
    depth = np.where(np.isfinite(depth), depth, 0).astype(np.float32)
    return depth, intrinsics


def backproject(depth: np.ndarray, intrinsics: np.ndarray, stride: int = 1, max_depth: float = 5.0, normals_k: int = 0):
    """Points of the valid readings of every ``stride``-th pixel, in the camera frame.

    Args:
        depth: HxW float metres, 0 = no reading.
        intrinsics: 3x3 camera matrix.
        stride: pixel step.
        max_depth: readings beyond this are left out.
        normals_k: if positive, also estimate normals from this many neighbours, oriented
            towards the camera.

    Returns:
        (open3d ``t.geometry.PointCloud``, rows, cols): the pixel of each point.
    """
    o3d = require_open3d()
    depth, intrinsics = _check_depth(depth, intrinsics)
    image = o3d.t.geometry.Image(o3d.core.Tensor(np.ascontiguousarray(depth)))
    cloud = o3d.t.geometry.PointCloud.create_from_depth_image(
        image, o3d.core.Tensor(intrinsics), depth_scale=1.0, depth_max=float(max_depth), stride=int(stride)
    )
    if cloud.is_empty():
        return cloud, np.zeros(0, np.int64), np.zeros(0, np.int64)
    points = cloud.point.positions.numpy()
    # open3d drops pixels without a reading; its points project back onto their pixels exactly.
    cols = np.rint(points[:, 0] / points[:, 2] * intrinsics[0, 0] + intrinsics[0, 2]).astype(np.int64)
    rows = np.rint(points[:, 1] / points[:, 2] * intrinsics[1, 1] + intrinsics[1, 2]).astype(np.int64)
    # open3d back-projects in parallel and returns the points in no fixed order; RANSAC's seeded
    # samples and the normals' neighbours depend on the order, so put them in pixel order.
    order = np.lexsort((cols, rows))
    cloud = cloud.select_by_index(o3d.core.Tensor(order))
    rows, cols = rows[order], cols[order]
    if normals_k and len(points) >= 3:
        cloud.estimate_normals(max_nn=int(normals_k))
        cloud.orient_normals_towards_camera_location(o3d.core.Tensor(np.zeros(3, np.float32)))
    return cloud, rows, cols


def project_points(points: np.ndarray, pose: np.ndarray, intrinsics: np.ndarray, depth: np.ndarray | None = None,
                   tol: float = 0.03):  # fmt: skip
    """Where a camera sees Nx3 world ``points``: their pixel columns ``u`` and rows ``v``
    (float), their depth ``z`` in the camera, and whether it sees each one: in front of it, on a
    pixel of the image (``depth``'s size) and, with ``depth`` (HxW metres, 0 = no reading), not
    hidden: the reading of its nearest pixel within ``tol`` of ``z``.

    ``pose`` is camera-to-world (4x4), as the sources give it. Without ``depth`` nothing is
    hidden and every pixel is in the image."""
    w2c = np.linalg.inv(np.asarray(pose, np.float64))
    cam = np.asarray(points, np.float64) @ w2c[:3, :3].T + w2c[:3, 3]
    z = cam[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = cam[..., 0] / z * intrinsics[0, 0] + intrinsics[0, 2]
        v = cam[..., 1] / z * intrinsics[1, 1] + intrinsics[1, 2]
    seen = z > 0
    if depth is not None:
        h, w = depth.shape
        ui, vi = np.where(seen, np.rint(u), -1), np.where(seen, np.rint(v), -1)
        seen &= (ui >= 0) & (ui < w) & (vi >= 0) & (vi < h)
        ui, vi = np.where(seen, ui, 0).astype(np.int64), np.where(seen, vi, 0).astype(np.int64)
        seen &= np.abs(depth[vi, ui] - z) < tol
    return u, v, z, seen


def horizontal_planes(cloud, up: np.ndarray, cfg: GeometryConfig, max_angle: float | None = None) -> list[Plane]:
    """Planes of ``cloud`` (open3d tensor cloud) whose normal lies within ``max_angle`` of ``up``.

    RANSAC (``segment_plane``) finds up to ``cfg.max_planes`` planes one after another, each
    taken out of the cloud before the next; the normals returned point along ``up``.
    """
    o3d = require_open3d()
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    cos_max = np.cos(np.radians(cfg.horizontal_angle if max_angle is None else max_angle))
    o3d.utility.random.seed(cfg.seed)
    planes: list[Plane] = []
    rest = cloud
    for _ in range(cfg.max_planes):
        n = len(rest.point.positions)
        if n < max(cfg.min_plane_points, 3):
            break
        # probability 1: every iteration runs. open3d's parallel RANSAC otherwise stops when the
        # first thread's best plane looks good enough, and which plane that is varies run to run.
        model, inliers = rest.segment_plane(cfg.plane_distance, 3, cfg.ransac_iterations, 1.0)
        inliers = inliers.numpy()
        if len(inliers) < cfg.min_plane_points:
            break
        normal, offset, inliers = _refit(rest.point.positions.numpy(), model.numpy(), cfg.plane_distance)
        if normal @ up < 0:
            normal, offset = -normal, -offset
        if normal @ up >= cos_max:
            planes.append(Plane(normal, float(offset), len(inliers)))
        keep = np.ones(n, bool)
        keep[inliers] = False
        rest = rest.select_by_mask(o3d.core.Tensor(keep))
    return planes


def _refit(points: np.ndarray, model: np.ndarray, distance: float) -> tuple[np.ndarray, float, np.ndarray]:
    """RANSAC's plane ``model`` (a, b, c, d) fitted again by least squares to its inliers within
    ``distance``: (unit normal, offset, the inliers of the fitted plane). RANSAC's plane passes
    through three sample points; over noisy readings the one with the most inliers can sit
    tilted across a thick band of them."""
    points = points.astype(np.float64)
    scale = np.linalg.norm(model[:3])
    normal, offset = model[:3].astype(np.float64) / scale, float(model[3]) / scale
    inliers = np.flatnonzero(np.abs(points @ normal + offset) <= distance)
    for _ in range(2):
        if len(inliers) < 3:
            break
        centre = points[inliers].mean(axis=0)
        fitted = np.linalg.svd(points[inliers] - centre, full_matrices=False)[2][2]
        fitted = fitted if fitted @ normal >= 0 else -fitted
        normal, offset = fitted, float(-fitted @ centre)
        inliers = np.flatnonzero(np.abs(points @ normal + offset) <= distance)
    return normal, offset, inliers


def _upward_subset(cloud, up: np.ndarray, angle: float):
    o3d = require_open3d()
    normals = cloud.point.normals.numpy()
    mask = normals @ np.asarray(up, np.float32) > np.cos(np.radians(angle))
    return cloud.select_by_mask(o3d.core.Tensor(mask))


def _ground_from_cloud(
    cloud, guess: np.ndarray, cfg: GeometryConfig, frame: str, relative_to_largest: bool
) -> GroundPlane:
    """Up axis and floor from a cloud with normals, starting from the up ``guess``."""
    guess = np.asarray(guess, np.float64) / np.linalg.norm(guess)
    candidates = _upward_subset(cloud, guess, cfg.guess_angle)
    planes = horizontal_planes(candidates, guess, cfg, max_angle=cfg.guess_angle)
    if not planes:
        return GroundPlane(guess, None, frame)
    # Gravity is the normal of the horizontal planes: the largest one's, which is better fitted
    # than the guess from how the camera was held.
    up = max(planes, key=lambda p: p.inliers).normal
    cos_h = np.cos(np.radians(cfg.horizontal_angle))
    level = [p for p in planes if p.normal @ up >= cos_h]
    total = max(p.inliers for p in level) if relative_to_largest else len(candidates.point.positions)
    large = [p for p in level if p.inliers >= cfg.min_floor_fraction * total]
    floor = min(large, key=lambda p: p.height) if large else None
    if floor is not None:
        up = floor.normal  # the ground plane's normal is the best estimate of up
    return GroundPlane(up, floor, frame)


def find_ground(depth: np.ndarray, intrinsics: np.ndarray, cfg: GeometryConfig | None = None) -> GroundPlane:
    """Up axis and floor of one frame without a pose, in its camera frame.

    The up guess is the camera's image-up axis; the frame's largest horizontal plane refines it,
    and the floor is the lowest large horizontal plane the frame sees. A frame that sees no
    floor (a close view of a table) has its lowest large plane taken for the floor: give poses,
    or use :func:`find_ground_in_sequence`, where that matters.
    """
    cfg = cfg or GeometryConfig()
    cloud, _, _ = backproject(depth, intrinsics, cfg.stride, cfg.max_depth, cfg.normal_neighbours)
    if len(cloud.point.positions) < 3:
        return GroundPlane(CAMERA_UP.copy(), None, "camera")
    return _ground_from_cloud(cloud, CAMERA_UP, cfg, "camera", relative_to_largest=False)


def find_ground_in_sequence(
    frames: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]], cfg: GeometryConfig | None = None, max_frames: int = 40
) -> GroundPlane:
    """Up axis and floor of a sequence with poses, in world coordinates.

    Args:
        frames: ``(depth, intrinsics, pose)`` per frame (pose 4x4 camera-to-world).
        cfg: parameters.
        max_frames: the floor is fitted on the fused points of at most this many frames, spread
            evenly over the sequence.

    The up guess is the mean image-up axis of the cameras in the world (people and robots hold
    cameras roughly level); RANSAC on the fused upward-facing points refines it, and the floor
    is the lowest horizontal plane with at least ``min_floor_fraction`` of the largest one's
    inliers.
    """
    o3d = require_open3d()
    cfg = cfg or GeometryConfig()
    frames = list(frames)
    if not frames:
        raise InputError("no frames to find the ground in")
    step = max(1, int(np.ceil(len(frames) / max_frames)))
    clouds, ups = [], []
    for depth, intrinsics, pose in frames[::step]:
        if pose is None or not np.all(np.isfinite(pose)):
            raise InputError("find_ground_in_sequence needs a finite pose for every frame")
        pose = np.asarray(pose, np.float64)
        cloud, _, _ = backproject(depth, intrinsics, 2 * cfg.stride, cfg.max_depth)
        if len(cloud.point.positions):
            clouds.append(cloud.transform(o3d.core.Tensor(pose)).point.positions.numpy())
        ups.append(pose[:3, :3] @ CAMERA_UP)
    guess = np.mean(ups, axis=0)
    if not clouds or np.linalg.norm(guess) < 1e-6:
        return GroundPlane(guess if np.linalg.norm(guess) > 1e-6 else CAMERA_UP.copy(), None, "world")
    fused = o3d.t.geometry.PointCloud(o3d.core.Tensor(np.concatenate(clouds).astype(np.float32)))
    fused = fused.voxel_down_sample(cfg.voxel_size)
    # Its points come out of a parallel hash map in no fixed order: sort them by voxel, as above.
    cells = np.floor(fused.point.positions.numpy() / cfg.voxel_size).astype(np.int64)
    fused = fused.select_by_index(o3d.core.Tensor(np.lexsort(cells.T[::-1])))
    fused.estimate_normals(max_nn=cfg.normal_neighbours)
    # Orient along the guess: every camera looks at the upward surfaces from above.
    normals = fused.point.normals.numpy()
    flip = normals @ guess.astype(np.float32) < 0
    normals[flip] *= -1
    fused.point.normals = o3d.core.Tensor(normals)
    # The fused cloud is voxelised: fewer points per plane than a frame's grid.
    ground = _ground_from_cloud(fused, guess, replace(cfg, max_planes=max(cfg.max_planes, 10)), "world", True)
    log.info("ground: up %s, floor %s", np.round(ground.up, 3),
             None if ground.floor is None else round(ground.floor.height, 3))  # fmt: skip
    return ground


# ----------------------------------------------------------------------------- labels


def geometry_labels(
    depth: np.ndarray,
    intrinsics: np.ndarray,
    pose: np.ndarray | None = None,
    ground: GroundPlane | None = None,
    cfg: GeometryConfig | None = None,
) -> np.ndarray:
    """HxW uint8 labels (:data:`GEOMETRY_CLASSES`, 255 = no depth reading) of one frame.

    Args:
        depth: HxW float metres, 0 = no reading.
        intrinsics: 3x3 camera matrix.
        pose: 4x4 camera-to-world, needed with a ground found in world coordinates.
        ground: the sequence's ground (:func:`find_ground_in_sequence`); None: found in this
            frame alone (:func:`find_ground`).
        cfg: parameters.
    """
    cfg = cfg or GeometryConfig()
    o3d = require_open3d()
    depth, intrinsics = _check_depth(depth, intrinsics)
    h, w = depth.shape
    s = cfg.stride
    cloud, rows, cols = backproject(depth, intrinsics, s, cfg.max_depth, cfg.normal_neighbours)
    grid = np.full(((h + s - 1) // s, (w + s - 1) // s), IGNORE, np.uint8)
    if len(rows) >= 3:
        if ground is None:
            ground = _ground_from_cloud(cloud, CAMERA_UP, cfg, "camera", relative_to_largest=False)
        ground = ground.in_camera(pose)
        up = ground.up / np.linalg.norm(ground.up)
        points = cloud.point.positions.numpy().astype(np.float64)
        cos_up = cloud.point.normals.numpy() @ up
        upward = cos_up >= np.cos(np.radians(cfg.horizontal_angle))
        member = cos_up >= np.cos(np.radians(cfg.member_angle))
        labels = np.full(len(points), OTHER, np.uint8)
        labels[np.abs(cos_up) <= np.sin(np.radians(cfg.vertical_angle))] = VERTICAL
        if ground.floor is not None:
            above = ground.floor.distance(points)
            labels[member & (np.abs(above) <= cfg.floor_tolerance)] = FLOOR
            raised = upward & (above >= cfg.support_min_height)
        else:
            raised = upward
        # Support: upward-facing points on a horizontal plane above the floor (not the top of a
        # mug or the seat of a slatted chair's single slat).
        idx = np.flatnonzero(raised)
        if len(idx) >= cfg.min_plane_points:
            sub = o3d.t.geometry.PointCloud(o3d.core.Tensor(points[idx].astype(np.float32)))
            above_floor = np.flatnonzero(member & (above >= cfg.support_min_height) if ground.floor else member)
            for plane in horizontal_planes(sub, up, cfg):
                on_plane = np.abs(plane.distance(points[above_floor])) <= cfg.plane_distance
                labels[above_floor[on_plane]] = SUPPORT
        keep = (rows % s == 0) & (cols % s == 0)
        grid[rows[keep] // s, cols[keep] // s] = labels[keep]
    out = np.repeat(np.repeat(grid, s, axis=0), s, axis=1)[:h, :w]
    out[(depth <= 0) | (depth > cfg.max_depth)] = IGNORE
    return out


def label_sequence(
    frames: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray | None]], cfg: GeometryConfig | None = None
) -> tuple[list[np.ndarray], GroundPlane | None]:
    """Geometry labels of every frame of a sequence, and the ground they share.

    ``frames`` holds ``(depth, intrinsics, pose or None)``. With a pose for every frame the
    floor is fitted once for the whole sequence in world coordinates; otherwise each frame finds
    its own (the ground returned is then None).
    """
    cfg = cfg or GeometryConfig()
    posed = len(frames) > 0 and all(p is not None and np.all(np.isfinite(p)) for _, _, p in frames)
    ground = find_ground_in_sequence(frames, cfg) if posed else None
    labels = [geometry_labels(d, k, p if posed else None, ground, cfg) for d, k, p in frames]
    return labels, ground
