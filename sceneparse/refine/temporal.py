"""Causal temporal smoothing of per-frame class probabilities, so that labels do not flicker.

Every smoother sees frames in order and uses only the past: ``update(rgb, probs)`` returns the
smoothed probabilities of the current frame. State is one previous frame's worth (bounded, however
long the stream), and it resets on a scene cut (a sharp change of the grey-level histogram) or
a change of frame size.

* :class:`FlowSmoother` (``temporal="flow"``): the previous output is warped into the current
  frame by dense optical flow (OpenCV DIS), and fused with the current probabilities where the
  flow is reliable: pixels that fail the forward-backward check (occlusions, flow errors) or
  land outside the image keep the current frame's own. The fusion and its memory are at a
  reduced size (an eighth by default: the convnet's probabilities are smooth), which keeps the
  cost to a few milliseconds per frame.
* :class:`SuperpixelSmoother` (``temporal="superpixels"``, after Couprie, Farabet, Najman and
  LeCun, ICIP 2013): the current frame's superpixels are matched to the previous frame's
  segments by overlap after motion compensation; a matched superpixel's class distribution is
  a running vote carried over time, an unmatched one starts afresh.
* :class:`FlowSuperpixelSmoother` (``temporal="flow-superpixels"``): per-frame superpixel
  voting where the convnet is unsure, then :class:`FlowSmoother`.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import threading

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from sceneparse.errors import ConfigError, did_you_mean
from sceneparse.refine.base import class_argmax, positive, resize_chw
from sceneparse.refine.superpixels import oversegment_at, region_mean, superpixel_vote, votes_to_pixels

__all__ = [
    "TemporalSmoother",
    "FlowSmoother",
    "SuperpixelSmoother",
    "FlowSuperpixelSmoother",
    "MotionTracker",
    "SMOOTHERS",
    "register_smoother",
    "list_smoothers",
    "build_smoother",
    "smoother_params",
    "method_name",
    "DEFAULT_METHOD",
    "dense_flow",
    "warp",
]


def _grey(rgb: np.ndarray, scale: float) -> np.ndarray:
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if scale != 1:
        g = _shrink(g, scale)
    return g


def _shrink(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` resized by ``scale`` (area), at least a pixel a side: OpenCV refuses an empty size
    (a tiny frame at a small scale)."""
    if min(image.shape[:2]) * scale >= 0.5:
        return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


_DIS = threading.local()  # one DIS object per thread: OpenCV's is not safe to share between threads


def dense_flow(src: np.ndarray, dst: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """HxWx2 flow (in full-resolution pixels) from grey ``src`` to ``dst`` by DIS, at their size
    ``scale`` times the frame's; ``src + flow`` is where each pixel of ``src`` went."""
    dis = getattr(_DIS, "fast", None)
    if dis is None:
        dis = _DIS.fast = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    return dis.calc(src, dst, None) / scale


def flow_fits(shape: tuple[int, int]) -> bool:
    """DIS (its 8-pixel patches) can measure the flow of an image of ``shape``; OpenCV raises on
    smaller ones: 8 pixels a side at least, 12 along one of them."""
    return min(shape[:2]) >= 8 and max(shape[:2]) >= 12


_GRIDS: dict = {}


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    # pixel coordinates, cached by size: allocating them every frame cost more than the remap
    grid = _GRIDS.get((h, w))
    if grid is None:
        if len(_GRIDS) > 8:
            _GRIDS.clear()
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        grid = _GRIDS[(h, w)] = (xs, ys)
    return grid


def warp(values: np.ndarray, flow: np.ndarray, interpolation=cv2.INTER_LINEAR) -> tuple[np.ndarray, np.ndarray]:
    """Sample HxWxC ``values`` at ``x + flow``: (warped values, mask of samples inside the image)."""
    h, w = flow.shape[:2]
    xs, ys = _grid(h, w)
    mx, my = xs + flow[..., 0], ys + flow[..., 1]
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    out = cv2.remap(values, mx, my, interpolation, borderMode=cv2.BORDER_REPLICATE)
    return out, inside


def _resize_flow(flow: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if flow.shape[:2] == shape:
        return flow
    return cv2.resize(flow, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def _own(probs: np.ndarray) -> np.ndarray:
    """``probs`` as C-contiguous, writeable float32, copied only if it is not (a read-only,
    reversed or strided array): torch cannot view negative strides and warns on read-only ones."""
    return np.require(probs, np.float32, ["C", "W"])


class MotionTracker:
    """Dense optical flow from each frame back to the one before it, checked both ways, and
    scene cuts: what the smoothers and the flow-compensated metrics share.

    Call it on the frames of a stream in order; it keeps one previous grey image.

    Args:
        flow_scale: the flow is computed at this fraction of the frame size (speed).
        cut_threshold: grey-level histogram correlation below which a frame is a scene cut.
        fb_threshold: forward-backward disagreement (frame pixels) above which a pixel's flow is
            unreliable (occlusions, flow errors).
    """

    def __init__(self, flow_scale: float = 0.5, cut_threshold: float = 0.5, fb_threshold: float = 2.0) -> None:
        self.flow_scale = positive("flow_scale", flow_scale)
        if self.flow_scale > 1:  # above the frame's size: the same flow for many times the work and memory
            raise ConfigError(f"flow_scale must be in (0, 1], got {flow_scale!r}")
        self.cut_threshold = positive("cut_threshold", cut_threshold, zero=True)
        self.fb_threshold = positive("fb_threshold", fb_threshold)
        #: scene cuts and size changes seen (each starts the memory afresh)
        self.cuts = 0
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame (a new sequence starts)."""
        self._grey = None
        self._hist = None

    def _scene_cut(self, grey: np.ndarray) -> bool:
        hist = cv2.calcHist([grey], [0], None, [32], [0, 256])
        cv2.normalize(hist, hist)
        cut = self._hist is not None and cv2.compareHist(self._hist, hist, cv2.HISTCMP_CORREL) < self.cut_threshold
        self._hist = hist
        return cut

    def small(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """At the flow's own resolution (``flow_scale`` of the frame): (backward flow current ->
        previous in those pixels, reliable mask), or None at a stream start or a cut, and for
        frames too small for DIS at that scale (under about 16x24 pixels at 0.5): no motion is
        known there, so each such frame is its own."""
        grey = _grey(rgb, self.flow_scale)
        prev, self._grey = self._grey, grey
        if self._scene_cut(grey) or prev is None or prev.shape != grey.shape:
            if prev is not None:
                self.cuts += 1
            return None
        if not flow_fits(grey.shape):
            return None
        back = dense_flow(grey, prev)
        fwd = dense_flow(prev, grey)
        fwd_at, inside = warp(fwd, back)
        error = cv2.magnitude(back[..., 0] + fwd_at[..., 0], back[..., 1] + fwd_at[..., 1])
        return back, inside & (error < self.fb_threshold * self.flow_scale)

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(backward flow current -> previous in frame pixels, reliable mask) at the frame's size,
        or None at a stream start or a cut."""
        flows = self.small(rgb)
        if flows is None:
            return None
        back, reliable = flows
        h, w = rgb.shape[:2]
        back = _resize_flow(back, (h, w)) * np.float32(1 / self.flow_scale)
        reliable = cv2.resize(reliable.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
        return back, reliable


class TemporalSmoother:
    """Base of the smoothers: ``update(rgb, probs, depth=None) -> probs`` on the frames of one
    stream in order, :meth:`reset` between sequences. A :class:`MotionTracker` gives the flow
    to the previous frame and the scene cuts.

    A new smoother is one subclass with a ``name``, registered with :func:`register_smoother`.
    """

    name = "none"

    def __init__(self, flow_scale: float = 0.5, cut_threshold: float = 0.5, fb_threshold: float = 2.0) -> None:
        self.motion = MotionTracker(flow_scale, cut_threshold, fb_threshold)
        self.flow_scale = self.motion.flow_scale
        self._executor = None  # the thread of the work done ahead (prepare)
        self._ahead: dict = {}  # id(rgb) -> (rgb, future of that frame's work)
        self._current = None  # (rgb, its work) of the frame being updated
        self.reset()

    @property
    def resets(self) -> int:
        """Scene cuts and frame-size changes seen, each of which started the memory afresh."""
        return self.motion.cuts

    def reset(self) -> None:
        """Forget the past: the next frame starts a new sequence."""
        if self._executor is None:
            # Frames prepared ahead had their motion measured in stream order already: a
            # reset there forgets only the smoothed past (the first frame after it ignores
            # its flow to the frame before).
            self.motion.reset()

    def prepare(self, rgb: np.ndarray) -> None:
        """Start the work that needs only the image of the frame that :meth:`update` will get
        next (its optical flow to the frame prepared before it, its superpixels) in a
        background thread, so that it overlaps the convnet and the smoothing of earlier
        frames: call it on every frame of the stream, in order, before its :meth:`update`.
        Optional: without it, :meth:`update` does that work itself. The results are the same."""
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="smoother-ahead")
        if len(self._ahead) > 64:  # frames prepared but never updated: forget the oldest
            self._ahead.pop(next(iter(self._ahead)))
        self._ahead[id(rgb)] = (rgb, self._executor.submit(self._work_ahead, rgb))

    def _work_ahead(self, rgb: np.ndarray) -> dict:
        """What :meth:`prepare` computes for a frame: its flow (the motion tracker sees the
        frames in stream order, in the one background thread)."""
        return {"flows": self.motion.small(rgb)}

    def _prepared(self, rgb: np.ndarray) -> dict | None:
        """The work :meth:`prepare` did for this very array (None if it saw none)."""
        if self._current is not None and self._current[0] is rgb:
            return self._current[1]
        ahead = self._ahead.pop(id(rgb), None)
        if ahead is None or ahead[0] is not rgb:
            return None
        self._current = (rgb, ahead[1].result())
        return self._current[1]

    def _flows_small(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        prepared = self._prepared(rgb)
        if prepared is not None:
            return prepared["flows"]
        if self._executor is not None:  # the motion tracker is the background thread's: queue there
            return self._executor.submit(self.motion.small, rgb).result()
        return self.motion.small(rgb)

    def update(self, rgb: np.ndarray, probs: np.ndarray, depth: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """End the smoother's background work and join its thread (the frame loop calls it at
        the end of a stream). Safe to call twice; a later :meth:`prepare` starts it again."""
        # Join the thread: one left running in scikit-image or OpenCV when the interpreter
        # shuts down can abort the process ("terminate called without an active exception",
        # exit code 134).
        executor, self._executor = self._executor, None
        self._ahead.clear()
        self._current = None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _SuperpixelsAhead:
    """Superpixels of each frame, computed ahead with its flow by :meth:`prepare` (scikit-image's
    Felzenszwalb releases the GIL), for smoothers that need them."""

    def _init_superpixels(self, scale: float, min_size: int, seg_scale: float) -> None:
        self.scale = positive("scale", scale)
        self.min_size = positive("min_size", min_size, integer=True)
        self.seg_scale = positive("seg_scale", seg_scale)
        if self.seg_scale > 1:  # the superpixels are at most the frame's size: the votes' scale would be wrong
            raise ConfigError(f"seg_scale must be in (0, 1], got {seg_scale!r}")

    def _work_ahead(self, rgb: np.ndarray) -> dict:
        return {**super()._work_ahead(rgb), "segments": self._superpixels(rgb)}

    def _superpixels(self, rgb: np.ndarray) -> np.ndarray:
        return oversegment_at(rgb, self.seg_scale, "felzenszwalb", self.scale, 0.5, self.min_size)

    def _segments_of(self, rgb: np.ndarray, needed: bool = True) -> np.ndarray | None:
        """The superpixels of ``rgb``: prepared ones if :meth:`prepare` saw this very array
        (None if not ``needed``)."""
        if not needed:
            return None
        prepared = self._prepared(rgb)
        return prepared["segments"] if prepared is not None else self._superpixels(rgb)


class FlowSmoother(TemporalSmoother):
    """Optical-flow propagation of the previous output, fused where the flow is reliable.

    The fusion runs at ``fuse_scale`` of the frame (the convnet's probabilities are smooth):
    the previous output, kept at that size, is warped by the backward flow and turned into a
    prior ``p_past ** alpha`` (1 where the flow is unreliable), which multiplies the current
    frame's full-resolution probabilities after bilinear upsampling. Cost: two DIS flows at
    ``flow_scale``, one small remap, one upsampling and one normalisation at full size.

    Args:
        alpha: weight of the warped past in the log-linear fusion ``log p = log p_now + alpha *
            log p_past`` (renormalised): 0 is per-frame parsing; below 1 the past fades
            geometrically, so evidence is carried over a few frames; at 1 the evidence along a
            flow track accumulates until the flow fails the check or the scene cuts.
        flow_scale: flow is computed at this fraction of the frame size (speed).
        fuse_scale: the fusion (and the memory) is at this fraction of the frame size.
        floor: the warped past is mixed with this share of the uniform distribution before the
            fusion (an HMM's switching probability), so the past never rules a class out.
        fb_threshold: forward-backward disagreement (pixels) above which a pixel keeps its own.
        cut_threshold: histogram correlation below which the frame is a scene cut (reset).
        stickiness: probability added to the previous (warped) label of a reliable pixel before
            renormalising: a label changes only when the new class wins by this margin
            (hysteresis), which stops flicker between near-equal classes.

    Defaults tuned on the first half of the CamVid val run (``docs/BENCHMARKS.md``, "Video:
    temporal consistency"; per-frame parsing: flicker 3.96%, mean IoU 62.55): these give 1.77%
    and 61.39 there (stickiness 0: 1.89%, 61.45; alpha 1.3: 1.55%, 60.95); alpha 0.8 with
    fuse_scale 0.25 and fb_threshold 2 keeps mean IoU closer (2.32%, 62.06).
    """

    name = "flow"

    def __init__(self, alpha: float = 1.0, flow_scale: float = 0.5, fb_threshold: float = 4.0,
                 cut_threshold: float = 0.5, stickiness: float = 0.3, fuse_scale: float = 0.125,
                 floor: float = 0.0) -> None:  # fmt: skip
        super().__init__(flow_scale, cut_threshold, fb_threshold)
        self.alpha = positive("alpha", alpha, zero=True)
        self.floor = positive("floor", floor, zero=True)
        if self.floor > 1:
            raise ConfigError(f"floor must be in [0, 1], got {floor!r}")
        self.stickiness = positive("stickiness", stickiness, zero=True)
        self.fuse_scale = positive("fuse_scale", fuse_scale)
        if self.fuse_scale > 1:
            raise ConfigError(f"fuse_scale must be in (0, 1], got {fuse_scale!r}")

    def reset(self) -> None:
        super().reset()
        self._out = None  # h x w x C at the fusion size
        self._labels = None  # the previous full-size labels (stickiness only)

    def _small(self, shape: tuple[int, int]) -> tuple[int, int]:
        return max(1, round(shape[0] * self.fuse_scale)), max(1, round(shape[1] * self.fuse_scale))

    def update(self, rgb: np.ndarray, probs: np.ndarray, depth: np.ndarray | None = None) -> np.ndarray:
        probs = _own(probs)
        c, h, w = probs.shape  # the frame's size, or the network's output stride (coarser)
        hs, ws = self._small(rgb.shape[:2])
        flows = self._flows_small(rgb)
        now = resize_chw(probs, (hs, ws), "area").transpose(1, 2, 0)  # hs x ws x C
        if flows is None or self._out is None or self._out.shape != now.shape:
            self._out = np.ascontiguousarray(now)
            self._labels = class_argmax(probs) if self.stickiness else None
            return probs
        back, reliable = flows
        # the flow and its reliability at the fusion size (flow in fusion-size pixels)
        back = _resize_flow(back, (hs, ws)) * np.float32(self.fuse_scale / self.flow_scale)
        weight = cv2.resize(reliable.astype(np.float32), (ws, hs), interpolation=cv2.INTER_AREA)
        past, inside = warp(self._out, back)
        weight *= inside
        if self.floor:  # a class the past ruled out can still come back on strong evidence
            past = (1 - self.floor) * past + self.floor / c
        logp = np.log(np.maximum(past, 1e-6))
        logp *= (self.alpha * weight)[..., None]
        logp -= logp.max(-1, keepdims=True)
        prior = np.exp(logp)  # hs x ws x C, 1 at each pixel's most likely past class
        fused = now * prior
        fused /= fused.sum(-1, keepdims=True)
        self._out = fused
        # the full-size work in torch, in place (its element-wise operations use every thread,
        # numpy's one): the upsampled prior times the current probabilities
        prior_t = torch.from_numpy(np.ascontiguousarray(prior.transpose(2, 0, 1)))[None]
        out = F.interpolate(prior_t, size=(h, w), mode="bilinear", align_corners=False)[0]
        out.mul_(torch.from_numpy(probs))
        total = out.sum(0)
        if self.stickiness:
            # hysteresis at full size: the previous labels, warped, get a bonus where the flow
            # holds (of stickiness after normalisation: scaled by the unnormalised total here)
            flow_full = _resize_flow(back, (h, w)) * np.float32(1 / self.fuse_scale * (w / rgb.shape[1]))
            prev, _ = warp(self._labels, flow_full, cv2.INTER_NEAREST)
            bonus = torch.from_numpy(cv2.resize(weight, (w, h), interpolation=cv2.INTER_LINEAR))
            bonus.mul_(total).mul_(self.stickiness)
            out.scatter_add_(0, torch.from_numpy(prev.astype(np.int64))[None], bonus[None])
            total.add_(bonus)
            self._labels = class_argmax(out.numpy())
        return out.div_(total).numpy()


class SuperpixelSmoother(_SuperpixelsAhead, TemporalSmoother):
    """Couprie et al.'s causal method: superpixels matched to the previous frame's segments by
    overlap after motion compensation; matched ones carry their class vote over time.

    Args:
        memory: share of a matched superpixel's distribution that comes from its past segment.
        min_overlap: share of a superpixel that must fall on one past segment to match it.
        scale, min_size: Felzenszwalb parameters of the superpixels (in frame pixels).
        seg_scale: the superpixels, their votes and the matching are computed at this fraction
            of the frame size (speed); the votes are upsampled (nearest neighbour). On the first
            half of the CamVid val run, 0.25 gives flicker 3.38% and mean IoU 62.86 against 3.42%
            and 63.08 at 0.5, for less than half the cost.
    """

    name = "superpixels"

    def __init__(self, memory: float = 0.7, min_overlap: float = 0.5, scale: float = 100.0, min_size: int = 50,
                 flow_scale: float = 0.5, fb_threshold: float = 2.0, cut_threshold: float = 0.5,
                 seg_scale: float = 0.25) -> None:  # fmt: skip
        super().__init__(flow_scale, cut_threshold, fb_threshold)
        self._init_superpixels(scale, min_size, seg_scale)
        self.memory = positive("memory", memory, zero=True)
        self.min_overlap = positive("min_overlap", min_overlap)
        if self.memory >= 1 or self.min_overlap > 1:
            raise ConfigError(f"memory must be in [0, 1) and min_overlap in (0, 1], got {memory!r} and {min_overlap!r}")

    def reset(self) -> None:
        super().reset()
        self._segments = None
        self._dist = None

    def update(self, rgb: np.ndarray, probs: np.ndarray, depth: np.ndarray | None = None) -> np.ndarray:
        probs = _own(probs)
        h, w = probs.shape[1:]
        # superpixels, their votes and the matching at seg_scale of the frame (the cost); the
        # votes are written back at the probabilities' size
        seg = self._segments_of(rgb)
        hs, ws = seg.shape
        n = int(seg.max()) + 1
        dist = region_mean(resize_chw(probs, (hs, ws), "area"), seg)  # C x n
        flows = self._flows_small(rgb)
        if flows is not None and self._segments is not None and self._segments.shape == seg.shape:
            back, reliable = flows
            back = _resize_flow(back, (hs, ws)) * np.float32(self.seg_scale / self.flow_scale)
            reliable = cv2.resize(reliable.astype(np.uint8), (ws, hs), interpolation=cv2.INTER_NEAREST).astype(bool)
            past_seg, inside = warp(self._segments.astype(np.float32), back, cv2.INTER_NEAREST)
            keep = (reliable & inside).ravel()
            m = self._dist.shape[1]
            pairs = seg.ravel()[keep] * m + past_seg.astype(np.int64).ravel()[keep]
            counts = np.bincount(pairs, minlength=n * m).reshape(n, m)
            match = counts.argmax(1)
            size = np.bincount(seg.ravel(), minlength=n)
            matched = counts[np.arange(n), match] >= self.min_overlap * np.maximum(size, 1)
            dist[:, matched] = (1 - self.memory) * dist[:, matched] + self.memory * self._dist[:, match[matched]]
        self._segments, self._dist = seg, dist
        # pixel detail where the frame is sure, the carried vote where it is not:
        # conf * p + (1 - conf) * vote
        probs_t = torch.from_numpy(probs)
        out = torch.empty_like(probs_t)  # CxHxW in memory, as the probabilities
        torch.lerp(votes_to_pixels(dist, seg, (h, w)), probs_t, probs_t.amax(0, keepdim=True), out=out)
        return out.div_(out.sum(0, keepdim=True)).numpy()


class FlowSuperpixelSmoother(_SuperpixelsAhead, FlowSmoother):
    """``temporal="flow-superpixels"``: each frame's probabilities are first averaged inside its
    superpixels where the convnet is unsure (Couprie et al.'s superpixel voting, per frame,
    which aligns the class boundaries with image edges), then propagated and fused by
    :class:`FlowSmoother`. Slower (the superpixels), with mean IoU closer to per-frame parsing.

    Args:
        confidence: pixels whose top probability reaches this keep their own (no vote).
        scale, min_size, seg_scale: superpixels, as in :class:`SuperpixelSmoother`.
        alpha: as in :class:`FlowSmoother`. Above 1 the past outweighs the present frame: the
            labels of a flow track settle and change only on strong evidence (tracks end where the
            flow fails its check, and at scene cuts).
        stickiness: as in :class:`FlowSmoother`.
        flow_params: the other parameters of :class:`FlowSmoother`.

    Defaults chosen on the first half of the CamVid val run only (per-frame parsing: flicker
    3.96%, mean IoU 62.55), by the rule "least flicker with mean IoU at most 0.5 below per-frame
    parsing" over alpha 1.0-2.0, stickiness 0.2-0.5 and confidence 0.6-0.8: alpha 1.3,
    stickiness 0.5, confidence 0.7 give 1.25% and 62.13 there (stickiness 0.3: 1.31%, 62.28;
    alpha 1.6: 1.21%, 61.60; alpha 1.0: 1.58%, 62.13).
    """

    name = "flow-superpixels"

    def __init__(self, confidence: float = 0.7, scale: float = 150.0, min_size: int = 60, seg_scale: float = 0.25,
                 alpha: float = 1.3, stickiness: float = 0.5, **flow_params) -> None:  # fmt: skip
        super().__init__(alpha=alpha, stickiness=stickiness, **flow_params)
        self._init_superpixels(scale, min_size, seg_scale)
        self.confidence = positive("confidence", confidence)

    def update(self, rgb: np.ndarray, probs: np.ndarray, depth: np.ndarray | None = None) -> np.ndarray:
        probs = _own(probs)
        probs_t = torch.from_numpy(probs)
        unsure = probs_t.amax(0) < self.confidence  # amax: many times faster than max with indices
        seg = self._segments_of(rgb, needed=bool(unsure.any()))
        if seg is not None:
            # superpixels and their mean distributions at seg_scale of the frame (the cost), the
            # vote written back at full size only where the convnet is unsure (a new array: the
            # caller's probabilities stay as they were)
            probs = superpixel_vote(probs, seg, self.confidence, unsure=unsure)
        return super().update(rgb, probs, depth)


#: Smoother classes by name; :func:`register_smoother` adds one.
SMOOTHERS: dict[str, type[TemporalSmoother]] = {}


def register_smoother(cls: type[TemporalSmoother]) -> type[TemporalSmoother]:
    """Register a :class:`TemporalSmoother` subclass under its ``name``; use as a decorator."""
    if not cls.name or cls.name == "none":
        raise ConfigError(f"{cls.__name__}: a smoother needs a name of its own, not {cls.name!r}")
    SMOOTHERS[cls.name] = cls
    return cls


for _cls in (FlowSmoother, SuperpixelSmoother, FlowSuperpixelSmoother):
    register_smoother(_cls)

#: What ``temporal=True`` and the commands' ``--temporal`` default mean, everywhere: the method
#: that keeps labels most consistent within the cost budget (``docs/BENCHMARKS.md``).
DEFAULT_METHOD = "flow-superpixels"


def list_smoothers() -> list[str]:
    """The ``temporal`` choices: "none" (per-frame parsing) and every registered smoother."""
    return ["none", *SMOOTHERS]


def build_smoother(temporal=True, **params) -> TemporalSmoother | None:
    """The smoother ``temporal`` names, built with ``params``: None for per-frame parsing
    (False, None or "none"); True means :data:`DEFAULT_METHOD`; an instance is used as it is."""
    if temporal in (False, None, "none"):
        return None
    if isinstance(temporal, TemporalSmoother):
        return temporal
    name = DEFAULT_METHOD if temporal is True else temporal
    if not isinstance(name, str) or name not in SMOOTHERS:
        hint = did_you_mean(name, SMOOTHERS) if isinstance(name, str) else ""
        raise ConfigError(f"unknown temporal method {temporal!r}{hint}; available: {', '.join(list_smoothers())}")
    known = smoother_params(SMOOTHERS[name])
    unknown = sorted(set(params) - set(known))
    if unknown:
        hint = did_you_mean(unknown[0], known) if len(unknown) == 1 else ""
        raise ConfigError(f"temporal method {name!r} has no parameter(s) {', '.join(unknown)}{hint}; "
                          f"known: {', '.join(sorted(known))}")  # fmt: skip
    return SMOOTHERS[name](**params)


def smoother_params(cls: type[TemporalSmoother]) -> list[str]:
    """The keyword parameters a smoother class takes, those its ``**kwargs`` passes to the class
    it extends included (``FlowSuperpixelSmoother``'s ``flow_params``)."""
    names: list[str] = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        more = False
        for param in inspect.signature(vars(klass)["__init__"]).parameters.values():
            if param.kind == param.VAR_KEYWORD:
                more = True
            elif param.name != "self" and param.kind != param.VAR_POSITIONAL and param.name not in names:
                names.append(param.name)
        if not more:
            break
    return names


def method_name(temporal) -> str:
    """The name of a ``temporal`` argument as reports give it ("none" for per-frame parsing)."""
    if isinstance(temporal, TemporalSmoother):
        return temporal.name
    if temporal is True:
        return DEFAULT_METHOD
    return str(temporal if temporal not in (None, False) else "none")
