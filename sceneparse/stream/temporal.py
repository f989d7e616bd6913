"""Causal temporal smoothing of per-frame class probabilities, so that labels do not flicker.

Every smoother sees frames in order and uses only the past: ``update(rgb, probs)`` returns the
smoothed probabilities of the current frame. State is one previous frame's worth (bounded, however
long the stream), and it resets on a scene cut (a sharp change of the grey-level histogram) or
a change of frame size.

* :class:`FlowSmoother` (``temporal="flow"``): the previous output is warped into the current
  frame by dense optical flow (OpenCV DIS), and fused with the current probabilities where the
  flow is reliable: pixels that fail the forward-backward check (occlusions, flow errors) or
  land outside the image keep the current frame's own.
* :class:`SuperpixelSmoother` (``temporal="superpixels"``, after Couprie, Farabet, Najman and
  LeCun, ICIP 2013): the current frame's superpixels are matched to the previous frame's
  segments by overlap after motion compensation; a matched superpixel's class distribution is
  a running vote carried over time, an unmatched one starts afresh.
"""

from __future__ import annotations

import cv2
import numpy as np

from sceneparse.refine.base import positive
from sceneparse.refine.superpixels import oversegment, region_mean

__all__ = ["TemporalSmoother", "FlowSmoother", "SuperpixelSmoother", "build_smoother", "dense_flow", "warp"]


def _grey(rgb: np.ndarray, scale: float) -> np.ndarray:
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if scale != 1:
        g = cv2.resize(g, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return g


_DIS = {}


def dense_flow(src: np.ndarray, dst: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """HxWx2 flow (in full-resolution pixels) from grey ``src`` to ``dst`` by DIS, at their size
    ``scale`` times the frame's; ``src + flow`` is where each pixel of ``src`` went."""
    dis = _DIS.get("fast")
    if dis is None:
        dis = _DIS["fast"] = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    return dis.calc(src, dst, None) / scale


def warp(values: np.ndarray, flow: np.ndarray, interpolation=cv2.INTER_LINEAR) -> tuple[np.ndarray, np.ndarray]:
    """Sample HxWxC ``values`` at ``x + flow``: (warped values, mask of samples inside the image)."""
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    mx, my = xs + flow[..., 0], ys + flow[..., 1]
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    out = cv2.remap(values, mx, my, interpolation, borderMode=cv2.BORDER_REPLICATE)
    return out, inside


def _resize_flow(flow: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if flow.shape[:2] == shape:
        return flow
    return cv2.resize(flow, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


class TemporalSmoother:
    """Base: scene-cut detection and the previous frame's grey image, flows both ways."""

    name = "none"

    def __init__(self, flow_scale: float = 0.5, cut_threshold: float = 0.5, fb_threshold: float = 2.0) -> None:
        self.flow_scale = positive("flow_scale", flow_scale)
        self.cut_threshold = positive("cut_threshold", cut_threshold, zero=True)
        self.fb_threshold = positive("fb_threshold", fb_threshold)
        self.resets = 0
        self.reset()

    def reset(self) -> None:
        self._grey = None
        self._hist = None

    def _scene_cut(self, grey: np.ndarray) -> bool:
        hist = cv2.calcHist([grey], [0], None, [32], [0, 256])
        cv2.normalize(hist, hist)
        cut = self._hist is not None and cv2.compareHist(self._hist, hist, cv2.HISTCMP_CORREL) < self.cut_threshold
        self._hist = hist
        return cut

    def _flows(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(backward flow current -> previous, reliable mask), or None at a stream start or cut."""
        grey = _grey(rgb, self.flow_scale)
        prev, self._grey = self._grey, grey
        if self._scene_cut(grey) or prev is None or prev.shape != grey.shape:
            if prev is not None:
                self.resets += 1
            return None
        h, w = rgb.shape[:2]
        back = _resize_flow(dense_flow(grey, prev, self.flow_scale), (h, w))
        fwd = _resize_flow(dense_flow(prev, grey, self.flow_scale), (h, w))
        fwd_at, inside = warp(fwd, back)
        error = np.hypot(*(back + fwd_at).transpose(2, 0, 1))
        return back, inside & (error < self.fb_threshold)

    def update(self, rgb: np.ndarray, probs: np.ndarray, depth: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError


class FlowSmoother(TemporalSmoother):
    """Optical-flow propagation of the previous output, fused where the flow is reliable.

    Args:
        alpha: weight of the warped past in the log-linear fusion ``log p = log p_now + alpha *
            log p_past`` (renormalised): 0 is per-frame parsing; below 1 the past fades
            geometrically, so evidence is carried over a few frames, not forever.
        flow_scale: flow is computed at this fraction of the frame size (speed).
        fb_threshold: forward-backward disagreement (pixels) above which a pixel keeps its own.
        cut_threshold: histogram correlation below which the frame is a scene cut (reset).
        stickiness: probability added to the previous (warped) label of a reliable pixel before
            renormalising: a label changes only when the new class wins by this margin
            (hysteresis), which stops flicker between near-equal classes.
    """

    name = "flow"

    def __init__(self, alpha: float = 0.8, flow_scale: float = 0.5, fb_threshold: float = 2.0,
                 cut_threshold: float = 0.5, stickiness: float = 0.0) -> None:  # fmt: skip
        super().__init__(flow_scale, cut_threshold, fb_threshold)
        self.alpha = positive("alpha", alpha, zero=True)
        self.stickiness = positive("stickiness", stickiness, zero=True)

    def reset(self) -> None:
        super().reset()
        self._out = None

    def update(self, rgb: np.ndarray, probs: np.ndarray, depth: np.ndarray | None = None) -> np.ndarray:
        probs = np.asarray(probs, np.float32)
        flows = self._flows(rgb)
        if flows is None or self._out is None or self._out.shape != probs.shape:
            self._out = probs
            return probs
        back, reliable = flows
        past, _ = warp(np.ascontiguousarray(self._out.transpose(1, 2, 0)), back)
        past = past.reshape(*past.shape[:2], -1).transpose(2, 0, 1)
        logp = np.log(np.clip(probs, 1e-6, 1)) + self.alpha * reliable * np.log(np.clip(past, 1e-6, 1))
        logp -= logp.max(0, keepdims=True)
        out = np.exp(logp)
        out /= out.sum(0, keepdims=True)
        if self.stickiness:
            prev_label = past.argmax(0)
            bonus = np.zeros_like(out)
            np.put_along_axis(bonus, prev_label[None], self.stickiness * reliable[None], axis=0)
            out += bonus
            out /= out.sum(0, keepdims=True)
        self._out = out.astype(np.float32)
        return self._out


class SuperpixelSmoother(TemporalSmoother):
    """Couprie et al.'s causal method: superpixels matched to the previous frame's segments by
    overlap after motion compensation; matched ones carry their class vote over time.

    Args:
        memory: share of a matched superpixel's distribution that comes from its past segment.
        min_overlap: share of a superpixel that must fall on one past segment to match it.
        scale, min_size: Felzenszwalb parameters of the superpixels.
    """

    name = "superpixels"

    def __init__(self, memory: float = 0.7, min_overlap: float = 0.5, scale: float = 100.0, min_size: int = 50,
                 flow_scale: float = 0.5, fb_threshold: float = 2.0, cut_threshold: float = 0.5) -> None:  # fmt: skip
        super().__init__(flow_scale, cut_threshold, fb_threshold)
        self.memory = positive("memory", memory, zero=True)
        self.min_overlap = positive("min_overlap", min_overlap)
        self.scale = positive("scale", scale)
        self.min_size = positive("min_size", min_size, integer=True)
        if self.memory >= 1 or self.min_overlap > 1:
            raise ValueError("memory must be in [0, 1) and min_overlap in (0, 1]")

    def reset(self) -> None:
        super().reset()
        self._segments = None
        self._dist = None

    def update(self, rgb: np.ndarray, probs: np.ndarray, depth: np.ndarray | None = None) -> np.ndarray:
        probs = np.asarray(probs, np.float32)
        flows = self._flows(rgb)
        seg = oversegment(rgb, "felzenszwalb", self.scale, 0.5, self.min_size)
        n = int(seg.max()) + 1
        current = region_mean(probs, seg)  # C x n
        dist = current
        if flows is not None and self._segments is not None and self._segments.shape == seg.shape:
            back, reliable = flows
            past_seg, _ = warp(self._segments.astype(np.float32), back, cv2.INTER_NEAREST)
            past_seg = past_seg.astype(np.int64)
            m = self._dist.shape[1]
            keep = reliable.ravel()
            pairs = seg.ravel()[keep] * m + past_seg.ravel()[keep]
            counts = np.bincount(pairs, minlength=n * m).reshape(n, m)
            match = counts.argmax(1)
            size = np.bincount(seg.ravel(), minlength=n)
            matched = counts[np.arange(n), match] >= self.min_overlap * np.maximum(size, 1)
            dist = current.copy()
            dist[:, matched] = (1 - self.memory) * current[:, matched] + self.memory * self._dist[:, match[matched]]
        self._segments, self._dist = seg, dist
        out = dist[:, seg]
        # pixel detail where the frame is sure, the carried vote where it is not
        conf = probs.max(0, keepdims=True)
        out = conf * probs + (1 - conf) * out
        return (out / out.sum(0, keepdims=True)).astype(np.float32)


_SMOOTHERS = {"flow": FlowSmoother, "superpixels": SuperpixelSmoother}


def build_smoother(temporal, **params) -> TemporalSmoother | None:
    """None for per-frame parsing (False/None/"none"); True means "flow"."""
    if temporal in (False, None, "none"):
        return None
    if isinstance(temporal, TemporalSmoother):
        return temporal
    name = "flow" if temporal is True else temporal
    if name not in _SMOOTHERS:
        raise ValueError(f"unknown temporal method {temporal!r}; available: {', '.join(_SMOOTHERS)}, or False")
    return _SMOOTHERS[name](**params)
