"""Fully connected CRF (Krähenbühl & Koltun, NIPS 2011) over the convnet's probabilities.

Unary terms are the negative log probabilities. Pairwise terms, each a Gaussian kernel with a
Potts compatibility: a smoothness kernel on position (``gaussian_*``), an appearance kernel on
position and colour (``bilateral_*``), and for RGB-D input a kernel on position and depth
(``depth_*``) so that labels do not bleed across depth edges. Mean-field inference by
pydensecrf2 (the maintained build of pydensecrf).
"""

from __future__ import annotations

import numpy as np

from sceneparse.refine.base import Refiner, check_probs, positive, register_refiner

__all__ = ["DenseCRF"]


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

    The defaults were tuned on the tuning half of the Stanford Background model's held-out fold
    (``tools/tune_refiners.py``; docs/BENCHMARKS.md): a wide, colour-sharp appearance kernel.
    """

    name = "crf"

    def __init__(self, iterations: int = 5, gaussian_sxy: float = 3.0, gaussian_compat: float = 3.0,
                 bilateral_sxy: float = 90.0, bilateral_srgb: float = 5.0, bilateral_compat: float = 5.0,
                 depth_sxy: float = 30.0, depth_sd: float = 0.1, depth_compat: float = 5.0) -> None:  # fmt: skip
        self.iterations = positive("iterations", iterations, integer=True)
        self.gaussian_sxy = positive("gaussian_sxy", gaussian_sxy)
        self.gaussian_compat = positive("gaussian_compat", gaussian_compat, zero=True)
        self.bilateral_sxy = positive("bilateral_sxy", bilateral_sxy)
        self.bilateral_srgb = positive("bilateral_srgb", bilateral_srgb)
        self.bilateral_compat = positive("bilateral_compat", bilateral_compat, zero=True)
        self.depth_sxy = positive("depth_sxy", depth_sxy)
        self.depth_sd = positive("depth_sd", depth_sd)
        self.depth_compat = positive("depth_compat", depth_compat, zero=True)

    def __call__(self, rgb: np.ndarray, probs: np.ndarray, depth: np.ndarray | None = None) -> np.ndarray:
        dcrf = _densecrf()
        probs = check_probs(probs, rgb)
        c, h, w = probs.shape
        crf = dcrf.DenseCRF2D(w, h, c)
        unary = -np.log(np.clip(probs, 1e-8, 1.0)).reshape(c, -1)
        crf.setUnaryEnergy(_own(unary, np.float32))
        if self.gaussian_compat:
            crf.addPairwiseGaussian(sxy=self.gaussian_sxy, compat=self.gaussian_compat)
        if self.bilateral_compat:
            crf.addPairwiseBilateral(sxy=self.bilateral_sxy, srgb=self.bilateral_srgb,
                                     rgbim=_own(rgb, np.uint8), compat=self.bilateral_compat)  # fmt: skip
        if depth is not None and self.depth_compat:
            ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
            feats = np.stack([xs / self.depth_sxy, ys / self.depth_sxy, np.asarray(depth, np.float32) / self.depth_sd])
            crf.addPairwiseEnergy(_own(feats.reshape(3, -1), np.float32), compat=self.depth_compat)
        q = np.asarray(crf.inference(self.iterations), dtype=np.float32).reshape(c, h, w)
        return q / q.sum(0, keepdims=True)
