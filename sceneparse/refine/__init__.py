"""Refiners: steps after the convnet that make labels agree with the image (and its depth).

``parser.parse(rgb, refine=("superpixels", "crf"))`` applies them in order; each is a name, a
``{"name": ..., **params}`` mapping, a (name, params) pair or a :class:`Refiner` instance.
"""

from sceneparse.refine.base import (
    REFINERS,
    Refiner,
    bind_refiners,
    build_refiner,
    build_refiners,
    load_refine_config,
    merge_refine_configs,
    register_refiner,
    shipped_refine_config,
)
from sceneparse.refine.crf import DenseCRF
from sceneparse.refine.offsets import BoundaryOffsets, train_offset_head
from sceneparse.refine.superpixels import SuperpixelVoting, oversegment, region_mean
from sceneparse.refine.tree import PurityTree, build_tree, optimal_cover, train_region_classifier

__all__ = [
    "REFINERS",
    "Refiner",
    "bind_refiners",
    "build_refiner",
    "build_refiners",
    "load_refine_config",
    "merge_refine_configs",
    "register_refiner",
    "shipped_refine_config",
    "DenseCRF",
    "BoundaryOffsets",
    "train_offset_head",
    "SuperpixelVoting",
    "PurityTree",
    "build_tree",
    "optimal_cover",
    "train_region_classifier",
    "oversegment",
    "region_mean",
]
