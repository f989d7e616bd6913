"""Superpixel voting (Farabet et al., PAMI 2013, section 4.1): labels agree with image regions.

The image is over-segmented (Felzenszwalb-Huttenlocher graph segmentation, as in the paper, or
SLIC), and every superpixel takes the class distribution averaged over its pixels ("mean"), or
the histogram of its pixels' winning classes, whose top is the majority vote ("majority").
With ``confidence`` < 1, pixels on which the convnet is at least that sure keep their own
distribution: voting then only mends the uncertain ones.
"""

from __future__ import annotations

import cv2
import numpy as np
import skimage.segmentation
import torch

from sceneparse.errors import ConfigError
from sceneparse.refine.base import Refiner, check_probs, check_sigma, positive, register_refiner, resize_chw

__all__ = ["SuperpixelVoting", "superpixel_vote", "votes_to_pixels", "oversegment", "oversegment_at", "region_mean"]

_METHODS = ("felzenszwalb", "slic")


def oversegment(rgb: np.ndarray, method: str = "felzenszwalb", scale: float = 50.0, sigma: float = 0.5,
                min_size: int = 20, n_segments: int = 600, compactness: float = 10.0) -> np.ndarray:  # fmt: skip
    """HxW int64 superpixel ids 0..N-1 of ``rgb`` by graph segmentation or SLIC."""
    if method == "felzenszwalb":
        seg = skimage.segmentation.felzenszwalb(rgb, scale=scale, sigma=sigma, min_size=min_size)
    elif method == "slic":
        seg = skimage.segmentation.slic(rgb, n_segments=n_segments, compactness=compactness, start_label=0)
    else:
        raise ConfigError(f"superpixel method must be one of {', '.join(_METHODS)}, got {method!r}")
    return seg.astype(np.int64)


def oversegment_at(rgb: np.ndarray, seg_scale: float, method: str = "felzenszwalb", scale: float = 50.0,
                   sigma: float = 0.5, min_size: int = 20, n_segments: int = 600,
                   compactness: float = 10.0) -> np.ndarray:  # fmt: skip
    """:func:`oversegment` of ``rgb`` shrunk to ``seg_scale`` of its size (speed), the ids at that
    size; Felzenszwalb's ``scale`` and ``min_size`` are given in full-size pixels."""
    if seg_scale >= 1:
        return oversegment(rgb, method, scale, sigma, min_size, n_segments, compactness)
    if min(rgb.shape[:2]) * seg_scale >= 0.5:
        small = cv2.resize(rgb, None, fx=seg_scale, fy=seg_scale, interpolation=cv2.INTER_AREA)
    else:  # at least a pixel a side: OpenCV refuses an empty size (a tiny image at a small scale)
        size = (max(1, round(rgb.shape[1] * seg_scale)), max(1, round(rgb.shape[0] * seg_scale)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return oversegment(small, method, scale * seg_scale, sigma, max(1, round(min_size * seg_scale**2)),
                       n_segments, compactness)  # fmt: skip


def upsample_segments(seg: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Superpixel ids resized to ``shape`` (H, W) by nearest neighbour."""
    if seg.shape == tuple(shape):
        return seg
    return cv2.resize(seg.astype(np.int32), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST).astype(np.int64)


def region_mean(values: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """CxN mean of CxHxW ``values`` over each of the N regions of ``seg`` (ids 0..N-1)."""
    n = int(seg.max()) + 1
    flat = seg.ravel()
    counts = np.bincount(flat, minlength=n).astype(np.float64)
    sums = np.stack([np.bincount(flat, weights=v.ravel(), minlength=n) for v in values])
    return (sums / np.maximum(counts, 1)).astype(np.float32)


def votes_to_pixels(votes: np.ndarray, seg: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    """CxHxW view of the CxN ``votes`` of the superpixels ``seg`` at ``shape``: looked up at the
    superpixels' size, then upsampled by OpenCV's nearest neighbour, channels last (several times
    faster than torch's nearest or a full-size lookup)."""
    up = cv2.resize(np.ascontiguousarray(votes.T[seg]), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    if up.ndim == 2:  # OpenCV drops a single channel
        up = up[..., None]
    return torch.from_numpy(up).permute(2, 0, 1)


def superpixel_vote(probs: np.ndarray, seg: np.ndarray, confidence: float = 1.0, mode: str = "mean",
                    unsure: torch.Tensor | None = None) -> np.ndarray:  # fmt: skip
    """The vote of Farabet et al. (section 4.1) inside the superpixels ``seg`` of CxHxW ``probs``:
    each pixel whose top probability is below ``confidence`` takes its superpixel's mean
    distribution ("mean") or histogram of winning classes ("majority"); the others keep theirs.

    ``seg`` at the probabilities' size gives the exact vote. A smaller ``seg`` (superpixels of
    the image shrunk, as the temporal smoother computes them) votes over the probabilities
    shrunk to its size (area) and writes the votes back by nearest neighbour: several times
    cheaper, for a stream's every frame; ``unsure`` is then the HxW mask of pixels below
    ``confidence`` if the caller has it already.
    """
    if mode == "mean":
        votes = probs
    else:
        votes = np.zeros_like(probs)
        np.put_along_axis(votes, probs.argmax(0)[None], 1.0, axis=0)
    if seg.shape == probs.shape[1:]:
        out = region_mean(votes, seg)[:, seg]
        if confidence < 1:
            keep = probs.max(0) >= confidence
            out[:, keep] = probs[:, keep]
        return out
    probs_t = torch.from_numpy(probs)
    if unsure is None:
        unsure = probs_t.amax(0) < confidence  # amax: many times faster than max with indices
    means = region_mean(resize_chw(votes, seg.shape, "area"), seg)
    out = torch.empty_like(probs_t)  # CxHxW in memory, as the probabilities (a new array)
    return torch.where(unsure, votes_to_pixels(means, seg, probs.shape[1:]), probs_t, out=out).numpy()


@register_refiner
class SuperpixelVoting(Refiner):
    """``refine="superpixels"``: vote inside superpixels.

    Args:
        method: "felzenszwalb" (graph segmentation) or "slic".
        scale, sigma, min_size: Felzenszwalb-Huttenlocher parameters (larger scale, larger regions).
        n_segments, compactness: SLIC parameters.
        mode: "mean" (average distribution) or "majority" (histogram of winning classes).
        confidence: pixels whose top probability reaches this keep their own (1: vote everywhere).
        seg_scale: the superpixels are computed at this fraction of the image size (speed; Felzenszwalb's
            ``scale`` and ``min_size`` stay in image pixels) and upsampled; the vote is at full size.

    Defaults tuned on the tuning half of the Stanford Background model's held-out fold
    (``tools/tune_refiners.py``): fairly large regions, voting only where the convnet is unsure.
    """

    name = "superpixels"

    def __init__(self, method: str = "felzenszwalb", scale: float = 150.0, sigma: float = 0.5, min_size: int = 60,
                 n_segments: int = 600, compactness: float = 10.0, mode: str = "mean",
                 confidence: float = 0.7, seg_scale: float = 0.5) -> None:  # fmt: skip
        if method not in _METHODS:
            raise ConfigError(f"superpixel method must be one of {', '.join(_METHODS)}, got {method!r}")
        if mode not in ("mean", "majority"):
            raise ConfigError(f"superpixel mode must be 'mean' or 'majority', got {mode!r}")
        self.method, self.mode = method, mode
        self.scale, self.sigma = positive("scale", scale), check_sigma(sigma)
        self.min_size = positive("min_size", min_size, integer=True)
        self.n_segments = positive("n_segments", n_segments, integer=True)
        self.compactness = positive("compactness", compactness)
        self.confidence = positive("confidence", confidence)
        if self.confidence > 1:
            raise ConfigError(f"confidence must be in (0, 1], got {confidence}")
        self.seg_scale = positive("seg_scale", seg_scale)
        if self.seg_scale > 1:
            raise ConfigError(f"seg_scale must be in (0, 1], got {seg_scale}")

    def segments(self, rgb: np.ndarray) -> np.ndarray:
        seg = oversegment_at(rgb, self.seg_scale, self.method, self.scale, self.sigma, self.min_size,
                             self.n_segments, self.compactness)  # fmt: skip
        return upsample_segments(seg, rgb.shape[:2])

    def __call__(self, rgb: np.ndarray, probs: np.ndarray, depth: np.ndarray | None = None) -> np.ndarray:
        probs = check_probs(probs, rgb)
        return superpixel_vote(probs, self.segments(rgb), self.confidence, self.mode)
