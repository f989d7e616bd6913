"""Labelled point clouds: an RGB-D frame and its parse result as labelled space.

A robot wants labelled space, not labelled pixels. :func:`labelled_cloud` back-projects a
frame's depth readings (open3d's ``PointCloud.create_from_depth_image``, through
:func:`~sceneparse.robotics.geometry.backproject`) into its camera frame, or the world frame
where its camera-to-world pose is known, and gives every point the colour of its pixel, its
class label and the network's confidence in it. The result is an open3d tensor
``t.geometry.PointCloud`` with the attributes

* ``positions`` (Nx3 float32, metres), ``colors`` (Nx3 float32 in [0, 1]),
* ``label`` (Nx1 int32 class index, 255 = unlabelled), ``confidence`` (Nx1 float32 in [0, 1]).

:func:`write_cloud` writes it as PLY (binary or ASCII) or PCD with the label and confidence as
per-point fields, which open3d (``o3d.t.io.read_point_cloud``) and CloudCompare (scalar fields
``label`` and ``confidence``) read back; :func:`read_cloud` reads it. The PCD fields are those PCL
reads into ``pcl::PointXYZRGBL``: ``x y z`` (F 4), ``rgb`` (U 4, packed 0x00RRGGBB, which PCL 1.8
and later take for its ``rgb`` as for a float one) and ``label`` (U 4, PCL's ``std::uint32_t``;
a signed ``I`` label, open3d's default, is one PCL leaves at 0 with "Failed to find match for
field 'label'"), plus ``confidence`` (F 4, the name of ``pcl::PointSurfel``'s).
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from sceneparse.errors import InputError, OutputError
from sceneparse.robotics.geometry import IGNORE, backproject, require_open3d

__all__ = ["labelled_cloud", "make_cloud", "write_cloud", "read_cloud", "cloud_arrays", "CLOUD_SUFFIXES"]

log = logging.getLogger(__name__)

#: The formats :func:`write_cloud` writes with labels and confidences.
CLOUD_SUFFIXES = (".ply", ".pcd")


def _per_pixel(values, shape: tuple[int, int], what: str, interpolation: int) -> np.ndarray:
    """``values`` resized to the depth image's ``shape`` (a colour camera of another size)."""
    values = np.asarray(values)
    if values.shape[:2] == shape:
        return values
    if values.ndim < 2:
        raise InputError(f"{what} must be an image, got shape {values.shape}")
    log.debug("resizing %s from %s to the depth's %s", what, values.shape[:2], shape)
    return cv2.resize(values, (shape[1], shape[0]), interpolation=interpolation)


def make_cloud(positions: np.ndarray, colors=None, labels=None, confidence=None, device=None):
    """An open3d tensor point cloud from Nx3 ``positions`` and optional N colours (float in
    [0, 1] or uint8), labels and confidences."""
    o3d = require_open3d()
    device = device or o3d.core.Device("CPU:0")
    cloud = o3d.t.geometry.PointCloud(device)
    cloud.point.positions = o3d.core.Tensor(np.ascontiguousarray(positions, np.float32), device=device)
    if colors is not None:
        colors = np.asarray(colors)
        colors = colors / 255.0 if colors.dtype == np.uint8 else colors
        cloud.point.colors = o3d.core.Tensor(np.ascontiguousarray(colors, np.float32), device=device)
    if labels is not None:
        labels = np.ascontiguousarray(np.asarray(labels).reshape(-1, 1), np.int32)
        cloud.point.label = o3d.core.Tensor(labels, device=device)
    if confidence is not None:
        confidence = np.ascontiguousarray(np.asarray(confidence).reshape(-1, 1), np.float32)
        cloud.point.confidence = o3d.core.Tensor(confidence, device=device)
    return cloud


def labelled_cloud(depth: np.ndarray, intrinsics: np.ndarray, result=None, *, image: np.ndarray | None = None,
                   pose: np.ndarray | None = None, labels: np.ndarray | None = None,
                   confidence: np.ndarray | None = None, stride: int = 1, max_depth: float = 5.0):  # fmt: skip
    """The labelled point cloud of one RGB-D frame.

    Args:
        depth: HxW float metres (0 = no reading).
        intrinsics: 3x3 camera matrix of the depth image.
        result: the frame's :class:`~sceneparse.pipeline.ParseResult` (labels, and the
            confidence as the probability of the chosen class); or give ``labels`` (HxW class
            indices) and optionally ``confidence`` (HxW in [0, 1]) instead.
        image: HxWx3 uint8 RGB for the colours (grey where not given).
        pose: 4x4 camera-to-world; the points are then in the world frame, else the camera's.
        stride: every ``stride``-th pixel.
        max_depth: readings beyond this (metres) are left out.

    Labels and colours of another size than the depth are resized to it (nearest neighbour
    for labels). Returns an open3d ``t.geometry.PointCloud`` (see the module).
    """
    o3d = require_open3d()
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise InputError(f"depth must be an HxW array in metres, got shape {depth.shape}")
    shape = depth.shape
    if result is not None:
        labels = result.labels
        if confidence is None and getattr(result, "probs", None) is not None:
            confidence = np.take_along_axis(result.probs, result.labels[None].astype(np.int64), 0)[0]
    if labels is None:
        raise InputError("labelled_cloud needs the frame's parse result or its labels")
    labels = _per_pixel(np.asarray(labels).astype(np.int32), shape, "labels", cv2.INTER_NEAREST_EXACT)
    if confidence is not None:
        confidence = _per_pixel(np.asarray(confidence, np.float32), shape, "confidence", cv2.INTER_NEAREST_EXACT)
    if image is not None:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(f"image must be HxWx3 uint8 RGB, got {image.dtype} with shape {image.shape}")
        image = _per_pixel(image, shape, "image", cv2.INTER_LINEAR)
    if intrinsics is None or np.asarray(intrinsics).shape != (3, 3):
        raise InputError("labelled_cloud needs the depth camera's 3x3 intrinsics")
    intrinsics = np.asarray(intrinsics).astype(np.float64)  # a native copy: open3d refuses '=d' arrays
    cloud, rows, cols = backproject(depth, intrinsics, stride, max_depth)
    if pose is not None:
        pose = np.asarray(pose, np.float64)
        if pose.shape != (4, 4) or not np.all(np.isfinite(pose)):
            raise InputError(f"pose must be a finite 4x4 camera-to-world matrix, got shape {pose.shape}")
        if len(rows):
            cloud = cloud.transform(o3d.core.Tensor(pose))
    positions = cloud.point.positions.numpy() if len(rows) else np.zeros((0, 3), np.float32)
    colors = image[rows, cols] if image is not None else np.full((len(rows), 3), 128, np.uint8)
    conf = confidence[rows, cols] if confidence is not None else np.ones(len(rows), np.float32)
    point_labels = labels[rows, cols]
    point_labels = np.where((point_labels < 0) | (point_labels > IGNORE), IGNORE, point_labels)
    return make_cloud(positions, colors, point_labels, conf)


def cloud_arrays(cloud) -> dict[str, np.ndarray]:
    """The attributes of an open3d tensor point cloud as numpy arrays (N or NxC)."""
    out = {}
    for key in cloud.point:
        value = cloud.point[key].cpu().numpy()
        out[key] = value[:, 0] if value.ndim == 2 and value.shape[1] == 1 and key not in ("positions",) else value
    return out


def write_cloud(path: str | Path, cloud, ascii: bool = False) -> Path:
    """Write a (labelled) point cloud as ``.ply`` or ``.pcd`` with every per-point field
    (colours as 8-bit RGB, read back as uint8); atomically (a temporary file renamed), so a
    reader never sees half a file."""
    o3d = require_open3d()
    path = Path(path)
    if path.suffix.lower() not in CLOUD_SUFFIXES:
        raise OutputError(f"{path}: a point cloud is written as {' or '.join(CLOUD_SUFFIXES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    cloud = cloud.cpu().clone()
    if "label" in cloud.point:
        # PLY: int (open3d's PLY writer has no uint); PCD: U 4, PCL's label type (see the module)
        labels = cloud.point.label.numpy().astype(np.int64).reshape(-1, 1)
        if path.suffix.lower() == ".pcd":  # a negative label has no uint32: unlabelled
            labels = np.where(labels < 0, IGNORE, labels).astype(np.uint32)
        else:
            labels = labels.astype(np.int32)
        cloud.point.label = o3d.core.Tensor(np.ascontiguousarray(labels))
    if "colors" in cloud.point and cloud.point.colors.dtype != o3d.core.uint8:
        # 8-bit colours: what CloudCompare, MeshLab and PCL take for RGB (floats become scalar fields)
        colors = np.clip(np.rint(cloud.point.colors.numpy() * 255), 0, 255).astype(np.uint8)
        cloud.point.colors = o3d.core.Tensor(colors)
    if "positions" not in cloud.point or not len(cloud.point.positions):
        tmp.write_text(_empty_cloud_header(path.suffix.lower()))  # open3d writes no file without points
    elif not o3d.t.io.write_point_cloud(str(tmp), cloud, write_ascii=ascii):
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{path}: open3d could not write the point cloud")
    tmp.replace(path)
    return path


def _empty_cloud_header(suffix: str) -> str:
    """A valid file of no points, with the fields of a labelled cloud."""
    if suffix == ".ply":
        return ("ply\nformat ascii 1.0\nelement vertex 0\nproperty float x\nproperty float y\nproperty float z\n"
                "property uchar red\nproperty uchar green\nproperty uchar blue\nproperty int label\n"
                "property float confidence\nend_header\n")  # fmt: skip
    # the fields (rgb packed in 4 bytes, as open3d writes it) of a cloud of points: as the PLY's, a
    # consumer that reads the fields of every frame's cloud finds the same ones in an empty one
    return ("VERSION 0.7\nFIELDS x y z rgb label confidence\nSIZE 4 4 4 4 4 4\nTYPE F F F U U F\n"
            "COUNT 1 1 1 1 1 1\nWIDTH 0\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 0\nDATA ascii\n")  # fmt: skip


def _pcd_points(path: Path) -> int | None:
    """The ``POINTS`` count of a PCD file's header (None where the header does not give it)."""
    with open(path, "rb") as f:
        for line in f.read(4096).split(b"\n")[:12]:
            if line.startswith(b"POINTS"):
                try:
                    return int(line.split()[1])
                except (IndexError, ValueError):
                    return None
    return None


def read_cloud(path: str | Path):
    """An open3d tensor point cloud from a ``.ply`` or ``.pcd`` file, with its per-point fields."""
    o3d = require_open3d()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such point cloud file")
    if path.suffix.lower() == ".pcd" and _pcd_points(path) == 0:
        return o3d.t.geometry.PointCloud()  # open3d refuses a PCD header of no points ('unable to parse header')
    cloud = o3d.t.io.read_point_cloud(str(path))
    if cloud.is_empty() and path.stat().st_size > 400:
        raise InputError(f"{path}: open3d read no points from it")
    if "label" in cloud.point and cloud.point.label.dtype != o3d.core.int32:  # a PCD's U 4 (PCL's), as labelled_cloud's
        cloud.point.label = cloud.point.label.to(o3d.core.int32)
    return cloud
