"""Depth maps: reading 16-bit millimetre PNGs into metres, and filling missing readings."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import scipy.ndimage

from sceneparse.errors import InputError, NotFoundError

__all__ = ["read_depth_png", "fill_depth"]


def read_depth_png(path: str | Path, scale: float = 1000.0) -> np.ndarray:
    """HxW float32 metres from a 16-bit depth PNG in units of 1/``scale`` m (0 = no reading).

    Raises:
        NotFoundError: no file at ``path``.
        InputError: not a readable image (corrupt or truncated), or not single-channel 16-bit.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"{path}: depth image not found")
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise InputError(f"{path}: not a readable depth image (corrupt or truncated file)")
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise InputError(f"{path}: depth must be a single-channel 16-bit PNG in millimetres, got {raw.dtype} "
                         f"with shape {raw.shape}")  # fmt: skip
    return raw.astype(np.float32) / scale


def fill_depth(depth: np.ndarray, method: str = "nearest") -> np.ndarray:
    """Fill missing readings (0 or non-finite) of ``depth``; valid readings are kept as they are.

    "nearest" copies the closest valid reading (fast, keeps depth edges sharp); "inpaint" uses
    OpenCV's Navier-Stokes inpainting (smoother, slower). An image without any valid reading
    stays all zero.

    >>> fill_depth(np.array([[1.0, 0.0, 0.0, 2.0]], np.float32)).tolist()
    [[1.0, 1.0, 2.0, 2.0]]
    """
    depth = np.asarray(depth, dtype=np.float32)
    missing = ~np.isfinite(depth) | (depth <= 0)
    if not missing.any() or missing.all():
        return np.where(missing, 0, depth).astype(np.float32)
    if method == "nearest":
        idx = scipy.ndimage.distance_transform_edt(missing, return_distances=False, return_indices=True)
        return depth[tuple(idx)]
    if method == "inpaint":
        src = np.where(missing, 0, depth).astype(np.float32)
        return cv2.inpaint(src, missing.astype(np.uint8), 5, cv2.INPAINT_NS)
    raise ValueError(f"depth fill method must be 'nearest' or 'inpaint', got {method!r}")
