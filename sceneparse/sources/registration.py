"""Registering a colour image to its depth image, for RGB-D cameras that do not do it themselves.

A Kinect-style camera has two cameras a few centimetres apart: the depth image is seen from the
infrared camera, with its own focal length, and the colour image from the colour camera. Where a
dataset stores both raw (7-Scenes: "the RGB and depth camera have not been calibrated"), pixel
(u, v) of the colour image is not pixel (u, v) of the depth image: on the 7-Scenes frames here the
colour camera's focal length is about 527 pixels against the depth camera's 585, so near the
image's edges the two are some 30 pixels apart. Everything that pairs a pixel's colour with its
depth (labels from depth as training targets, class labels fused into a 3D map at the depth's
3D points) then pairs the wrong ones.

:class:`ColorRegistration` resamples the colour image on the depth camera's pixel grid: each
depth pixel is back-projected with its reading (missing readings take the nearest one's),
moved into the colour camera and projected with the colour camera's intrinsics, and the colour
there is read (bilinear; about 4 ms a 640x480 frame). The depth, its intrinsics and the poses stay as they are.
:data:`KINECT_7SCENES` is the registration of the 7-Scenes sequences, estimated from the
training frames of the shared sequence by ``tools/estimate_registration.py`` (depth edges against
colour edges).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from sceneparse.data.depth import fill_depth
from sceneparse.errors import InputError

__all__ = ["ColorRegistration", "KINECT_7SCENES", "edge_alignment", "estimate_registration"]

#: Depth assumed where a frame has no reading at all (metres).
_DEFAULT_DEPTH = 2.0


@dataclass(frozen=True)
class ColorRegistration:
    """The colour camera of an RGB-D pair, relative to its depth camera.

    Args:
        intrinsics: 3x3 matrix of the colour camera (pixels of the colour image).
        translation: where a point in the depth camera's frame lies in the colour camera's
            frame, minus the point (metres; the cameras' axes are taken as parallel).
    """

    intrinsics: np.ndarray
    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        k = np.asarray(self.intrinsics, dtype=np.float64)
        if k.shape != (3, 3) or k[0, 0] <= 0 or k[1, 1] <= 0:
            raise InputError(f"colour intrinsics must be a 3x3 camera matrix, got {k.tolist()}")
        object.__setattr__(self, "intrinsics", k)
        object.__setattr__(self, "translation", tuple(float(t) for t in self.translation))

    def color_pixels(self, depth: np.ndarray, depth_intrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Colour-image columns and rows (float32, HxW each) of every pixel of ``depth`` (metres,
        0 = no reading; those take the depth of the nearest reading, found at a quarter of the size)."""
        depth = np.asarray(depth, dtype=np.float32)
        h, w = depth.shape
        z = depth
        if not (depth > 0).all():
            small = fill_depth(cv2.resize(depth, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_NEAREST))
            if not (small > 0).any():
                small = np.full_like(small, _DEFAULT_DEPTH)
            z = np.where(depth > 0, depth, cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST))
        cols, rows = np.arange(w, dtype=np.float32)[None], np.arange(h, dtype=np.float32)[:, None]
        u, v = self.project(cols, rows, z, depth_intrinsics)
        return u.astype(np.float32), v.astype(np.float32)

    def project(self, cols, rows, z, depth_intrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Colour-image columns and rows of depth pixels (``cols``, ``rows``, arrays that broadcast
        together) with depth ``z`` (metres, > 0): ``kc (ray * z + t) / (z + tz)``."""
        # Python floats keep float32 arrays in float32 (numpy scalars would promote them to float64)
        fx, fy, cx, cy = (float(x) for x in np.asarray(depth_intrinsics)[[0, 1, 0, 1], [0, 1, 2, 2]])
        fcx, fcy, ccx, ccy = (float(x) for x in self.intrinsics[[0, 1, 0, 1], [0, 1, 2, 2]])
        tx, ty, tz = self.translation
        zc = np.maximum(z + tz, 1e-3) if tz else np.maximum(z, 1e-3)
        u = fcx * ((cols - cx) / fx * z + tx) / zc + ccx
        v = fcy * ((rows - cy) / fy * z + ty) / zc + ccy
        return u, v

    def color_to_depth(self, image: np.ndarray, depth: np.ndarray, depth_intrinsics: np.ndarray) -> np.ndarray:
        """``image`` (the colour camera's) resampled on the depth camera's pixel grid: an image of
        ``depth``'s size whose pixel (u, v) shows what the depth reading (u, v) measured."""
        cols, rows = self.color_pixels(depth, depth_intrinsics)
        return cv2.remap(image, cols, rows, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _color_edges(image: np.ndarray, blur: float) -> np.ndarray:
    """Gradient magnitude of the image's grey levels, blurred by ``blur`` pixels (float32)."""
    grey = cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1.5)
    magnitude = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    return cv2.GaussianBlur(magnitude, (0, 0), blur)


def _depth_edges(depth: np.ndarray) -> np.ndarray:
    """Pixels on the near side of the depth image's jumps (a step of more than about 10 % of the
    depth between neighbours), away from missing readings."""
    valid = depth > 0
    step = cv2.magnitude(cv2.Sobel(depth, cv2.CV_32F, 1, 0), cv2.Sobel(depth, cv2.CV_32F, 0, 1))
    inner = cv2.erode(valid.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    nearest = cv2.erode(np.where(valid, depth, np.float32(1e3)), np.ones((5, 5), np.uint8))
    return (step > 0.4 * np.maximum(depth, 0.3)) & inner & (depth <= nearest + 0.02)


def edge_alignment(frames, depth_intrinsics: np.ndarray, registration: ColorRegistration, blur: float = 1.0) -> float:
    """How well ``registration`` lines up colour with depth: the mean colour-gradient magnitude
    (grey levels per pixel, blurred by ``blur`` pixels) at the colour-image positions of the depth
    images' jumps, over ``frames`` (pairs of an RGB uint8 colour image and its depth in metres).
    Higher is better; unrelated positions give the image's mean gradient."""
    total = 0.0
    for image, depth in frames:
        cols, rows, z = _edge_points(depth)
        if len(rows):
            total += _score_points(_color_edges(image, blur), cols, rows, z, depth_intrinsics, registration)
    return total / max(len(frames), 1)


def _edge_points(depth) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns, rows and depths (float64 metres) of the pixels on the near side of ``depth``'s jumps."""
    depth = np.asarray(depth, dtype=np.float32)
    rows, cols = np.nonzero(_depth_edges(depth))
    return cols, rows, depth[rows, cols].astype(np.float64)


def _score_points(edges, cols, rows, z, k, reg: ColorRegistration) -> float:
    u, v = reg.project(cols, rows, z, k)
    h, w = edges.shape
    inside = (u >= 0) & (u <= w - 1) & (v >= 0) & (v <= h - 1)
    if not inside.any():
        return 0.0
    sampled = cv2.remap(edges, u[inside].astype(np.float32)[None], v[inside].astype(np.float32)[None], cv2.INTER_LINEAR)
    return float(sampled.mean())


def estimate_registration(
    frames, depth_intrinsics: np.ndarray, start: ColorRegistration | None = None
) -> ColorRegistration:
    """The colour camera (focal length, centre, x and y offset from the depth camera) that best
    lines up the colour images' edges with the depth images' jumps (:func:`edge_alignment`) over
    ``frames`` (pairs of RGB uint8 colour image and depth in metres, a few dozen from a sequence):
    Nelder-Mead from ``start`` (default: a Kinect's colour camera, focal 525, no offset), first on
    blurred edges, then on sharper ones."""
    from scipy.optimize import minimize

    k = np.asarray(depth_intrinsics, dtype=np.float64)
    if start is None:
        start = ColorRegistration(np.array([[525.0, 0, k[0, 2]], [0, 525.0, k[1, 2]], [0, 0, 1]]))
    points = [(image, *_edge_points(depth)) for image, depth in frames]

    def registration(p) -> ColorRegistration:
        f, cx, cy, tx, ty = p
        return ColorRegistration(np.array([[f, 0, cx], [0, f, cy], [0, 0, 1]]), (tx, ty, 0.0))

    s = start
    p = np.array([s.intrinsics[0, 0], s.intrinsics[0, 2], s.intrinsics[1, 2], s.translation[0], s.translation[1]])
    for blur in (4.0, 2.0, 1.0):
        edges = [_color_edges(image, blur) for image, *_ in points]

        def loss(q, edges=edges) -> float:
            reg = registration(q)
            return -np.mean([_score_points(e, c, r, z, k, reg) for e, (_, c, r, z) in zip(edges, points)])

        p = minimize(loss, p, method="Nelder-Mead", options={"xatol": 1e-3, "fatol": 1e-3, "maxiter": 800}).x
    return registration(p)


#: The colour camera of the 7-Scenes Kinect relative to its depth camera (whose intrinsics the
#: sequences give: fx = fy = 585, centre (320, 240)), estimated on frames 0-298 of the shared
#: redkitchen sequence: ``python tools/estimate_registration.py --frames 0:150``.
KINECT_7SCENES = ColorRegistration(
    intrinsics=np.array([[526.7, 0.0, 319.6], [0.0, 526.7, 237.1], [0.0, 0.0, 1.0]]),
    translation=(-0.0219, 0.0041, 0.0),
    source="estimated from the 7-Scenes redkitchen frames 0-298 (tools/estimate_registration.py)",
)
