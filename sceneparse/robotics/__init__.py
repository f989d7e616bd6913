"""Robotics on top of the scene parser: geometry labels from depth (:mod:`.geometry`).

open3d, which these modules use, is optional: ``pip install sceneparse[3d]``.
"""

from sceneparse.robotics.geometry import (
    FLOOR,
    GEOMETRY_CLASSES,
    IGNORE,
    OTHER,
    SUPPORT,
    VERTICAL,
    GeometryConfig,
    GroundPlane,
    Plane,
    find_ground,
    find_ground_in_sequence,
    geometry_labels,
    label_sequence,
)

__all__ = [
    "FLOOR",
    "GEOMETRY_CLASSES",
    "IGNORE",
    "OTHER",
    "SUPPORT",
    "VERTICAL",
    "GeometryConfig",
    "GroundPlane",
    "Plane",
    "find_ground",
    "find_ground_in_sequence",
    "geometry_labels",
    "label_sequence",
]
