"""Fully connected CRF (Krähenbühl & Koltun, NIPS 2011) over the convnet's probabilities.

Unary terms are the negative log probabilities. Pairwise terms, each a Gaussian kernel with a
Potts compatibility: a smoothness kernel on position (``gaussian_*``), an appearance kernel on
position and colour (``bilateral_*``), and for RGB-D input a kernel on position and depth
(``depth_*``) so that labels do not bleed across depth edges. Mean-field inference by
pydensecrf2 (the maintained build of pydensecrf).

Instead of one Potts weight per kernel, the smoothness and appearance kernels can take CxC
label compatibility matrices learnt by gradient through mean-field inference (Zheng et al., "CRF
as RNN", ICCV 2015) after the convnet: ``tools/learn_crf.py`` writes them as JSON for
``DenseCRF(compat=path)``. On Stanford Background they did not beat the tuned Potts weights
(docs/BENCHMARKS.md), so Potts stays the default.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sceneparse.errors import ConfigError, InputError, NotFoundError
from sceneparse.refine.base import Refiner, check_depth, check_probs, positive, register_refiner

__all__ = ["DenseCRF", "COMPAT_FORMAT", "MIN_WIDTH", "MIN_DEPTH_WIDTH", "load_compat"]

#: ``format`` of a learnt label-compatibility file (see tools/learn_crf.py).
COMPAT_FORMAT = "sceneparse-crf-compat-v1"
#: The kernel widths a compatibility file was learnt with, which it applies to only.
_KERNEL_KEYS = ("gaussian_sxy", "bilateral_sxy", "bilateral_srgb")


def load_compat(path) -> dict:
    """A learnt compatibility file: ``class_names``, the kernel widths it was learnt with
    (``gaussian_sxy``, ``bilateral_sxy``, ``bilateral_srgb``) and the CxC matrices
    ``gaussian_compat`` and ``bilateral_compat`` (pairwise energy ``compat[a, b]`` between labels
    a and b; a Potts weight w is the matrix w (1 - I))."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"CRF compatibility file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not a sceneparse CRF compatibility file (not JSON: {err})") from None
    if not isinstance(data, dict) or data.get("format") != COMPAT_FORMAT:
        raise InputError(f"{path}: not a sceneparse CRF compatibility file (format {COMPAT_FORMAT})")
    c = len(data["class_names"])
    for key in ("gaussian_compat", "bilateral_compat"):
        m = np.asarray(data[key], np.float32)
        if m.shape != (c, c) or not np.isfinite(m).all():
            raise InputError(f"{path}: {key} must be a finite {c}x{c} matrix, got shape {m.shape}")
        data[key] = np.ascontiguousarray((m + m.T) / 2)  # pydensecrf symmetrises it too
    return data


def _densecrf():
    try:
        import pydensecrf.densecrf as dcrf
    except ImportError as err:
        raise ImportError("the dense CRF needs pydensecrf2 (a core dependency): pip install pydensecrf2") from err
    return dcrf


def _own(array: np.ndarray, dtype) -> np.ndarray:
    """``array`` as pydensecrf's typed memoryviews take it: C-contiguous and writeable (a
    read-only image, ``np.asarray(Image.open(f))``, is copied rather than refused)."""
    return np.require(array, dtype, ["C", "W"])


#: The smallest kernel widths taken (pixels and colour levels; metres for depth): features of a
#: few hundred million (a position over a tiny width) overflow pydensecrf's lattice, which
#: crashes the process (SIGSEGV) rather than raise.
MIN_WIDTH, MIN_DEPTH_WIDTH = 0.01, 1e-4
#: The largest feature value (a position, colour or depth over its kernel width) passed on.
_MAX_FEATURE = 5e7


def _width(name: str, value, least: float) -> float:
    width = positive(name, value)
    if width < least:
        raise ConfigError(f"{name} must be at least {least:g} (a kernel narrower than that is no kernel, and "
                          f"overflows pydensecrf), got {value!r}")  # fmt: skip
    return width


@register_refiner
class DenseCRF(Refiner):
    """``refine="crf"``: dense CRF with Gaussian, bilateral and (RGB-D) depth pairwise terms.

    Args:
        iterations: mean-field iterations.
        gaussian_sxy, gaussian_compat: smoothness kernel width (pixels) and weight.
        bilateral_sxy, bilateral_srgb, bilateral_compat: appearance kernel widths (pixels,
            colour levels) and weight.
        depth_sxy, depth_sd, depth_compat: depth kernel widths (pixels, metres) and weight;
            used only when depth is given (0 weight turns it off).
        compat: label compatibilities of the smoothness and appearance kernels: "potts" (the
            weights above) or the path of a file from ``tools/learn_crf.py``, whose matrices
            replace ``gaussian_compat`` and ``bilateral_compat`` (the kernel widths must be
            those it was learnt with).

    The defaults were tuned on the tuning half of the Stanford Background model's held-out fold
    (``tools/tune_refiners.py``; docs/BENCHMARKS.md): a wide, colour-sharp appearance kernel.
    """

    name = "crf"

    def __init__(self, iterations: int = 5, gaussian_sxy: float = 3.0, gaussian_compat: float = 3.0,
                 bilateral_sxy: float = 90.0, bilateral_srgb: float = 5.0, bilateral_compat: float = 5.0,
                 depth_sxy: float = 30.0, depth_sd: float = 0.1, depth_compat: float = 5.0,
                 compat: str = "potts") -> None:  # fmt: skip
        self.iterations = positive("iterations", iterations, integer=True)
        self.gaussian_sxy = _width("gaussian_sxy", gaussian_sxy, MIN_WIDTH)
        self.gaussian_compat = positive("gaussian_compat", gaussian_compat, zero=True)
        self.bilateral_sxy = _width("bilateral_sxy", bilateral_sxy, MIN_WIDTH)
        self.bilateral_srgb = _width("bilateral_srgb", bilateral_srgb, MIN_WIDTH)
        self.bilateral_compat = positive("bilateral_compat", bilateral_compat, zero=True)
        self.depth_sxy = _width("depth_sxy", depth_sxy, MIN_WIDTH)
        self.depth_sd = _width("depth_sd", depth_sd, MIN_DEPTH_WIDTH)
        self.depth_compat = positive("depth_compat", depth_compat, zero=True)
        self.compat = str(compat)
        self._learnt: dict | None = None
        if self.compat != "potts":
            learnt = load_compat(self.compat)
            widths = {k: float(learnt[k]) for k in _KERNEL_KEYS}
            if widths != {k: getattr(self, k) for k in _KERNEL_KEYS}:
                raise ConfigError(f"{self.compat} was learnt for the kernel widths {widths}, not this CRF's "
                                 f"{ {k: getattr(self, k) for k in _KERNEL_KEYS} }")  # fmt: skip
            self._learnt = learnt

    def _check_range(self, size: int, depth: np.ndarray | None) -> None:
        """The kernels' features stay in the range pydensecrf's lattice holds on an image of
        ``size`` pixels (its longer side) and ``depth``."""
        features = {"gaussian_sxy": size / self.gaussian_sxy, "bilateral_sxy": size / self.bilateral_sxy,
                    "bilateral_srgb": 255 / self.bilateral_srgb}  # fmt: skip
        if depth is not None and self.depth_compat:
            features |= {"depth_sxy": size / self.depth_sxy, "depth_sd": float(depth.max(initial=0)) / self.depth_sd}
        name, top = max(features.items(), key=lambda kv: kv[1])
        if top > _MAX_FEATURE:
            raise ConfigError(f"{name}={getattr(self, name):g} is too narrow for this image ({size} pixels): "
                              "pydensecrf would overflow; widen it or refine a smaller image")  # fmt: skip

    def __call__(self, rgb: np.ndarray, probs: np.ndarray, depth: np.ndarray | None = None) -> np.ndarray:
        dcrf = _densecrf()
        probs, depth = check_probs(probs, rgb), check_depth(depth, rgb)
        c, h, w = probs.shape
        self._check_range(max(h, w), depth)
        crf = dcrf.DenseCRF2D(w, h, c)
        unary = -np.log(np.clip(probs, 1e-8, 1.0)).reshape(c, -1)
        crf.setUnaryEnergy(_own(unary, np.float32))
        gaussian, bilateral = self.gaussian_compat, self.bilateral_compat
        if self._learnt is not None:
            gaussian, bilateral = self._learnt["gaussian_compat"], self._learnt["bilateral_compat"]
            if len(gaussian) != c:
                raise InputError(f"the learnt CRF compatibilities are for {len(gaussian)} classes, the scores have {c}")
        if np.any(gaussian):
            crf.addPairwiseGaussian(sxy=self.gaussian_sxy, compat=gaussian)
        if np.any(bilateral):
            crf.addPairwiseBilateral(sxy=self.bilateral_sxy, srgb=self.bilateral_srgb,
                                     rgbim=_own(rgb, np.uint8), compat=bilateral)  # fmt: skip
        if depth is not None and self.depth_compat:
            ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
            feats = np.stack([xs / self.depth_sxy, ys / self.depth_sxy, np.asarray(depth, np.float32) / self.depth_sd])
            crf.addPairwiseEnergy(_own(feats.reshape(3, -1), np.float32), compat=self.depth_compat)
        q = np.asarray(crf.inference(self.iterations), dtype=np.float32).reshape(c, h, w)
        return q / q.sum(0, keepdims=True)
