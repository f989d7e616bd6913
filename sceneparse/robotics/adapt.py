"""Online adaptation: the robot keeps learning where it is (Hadsell, Sermanet, LeCun et al., J.
Field Robotics 2009).

On a live RGB-D stream, each frame's geometry labels from its depth (:mod:`.geometry`) fine-tune
the classifier of an RGB geometry model (``indoor-geometry``) right after the frame was labelled,
so the labels of the frames that follow (and of what the depth sensor misses) fit the room the
robot is in. Only the last layers learn (the per-pixel classifier on the frozen multiscale
features), with a bounded number of steps and a time budget per frame.

It plugs into the frame loop as a hook: ``run(parser, source, sinks, hooks=[OnlineAdapter(parser)])``,
or ``sceneparse label SEQUENCE --adapt``.
"""

from __future__ import annotations

import logging
import time

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from sceneparse.errors import ConfigError
from sceneparse.refine.base import positive

__all__ = ["OnlineAdapter", "classifier_steps"]

log = logging.getLogger(__name__)


def classifier_steps(model, feats: torch.Tensor, target: np.ndarray, optimizer, max_steps: int, stop=None) -> int:
    """Up to ``max_steps`` steps of ``optimizer`` on the cross-entropy of ``model.classifier`` on
    the fixed features ``feats`` against ``target`` (HxW class ids at the features' size, 255
    ignored); batch norm keeps its statistics and dropout is off. ``stop()``, asked before every
    step after the first, ends the loop early. Returns the steps taken; the model is left in
    eval mode."""
    target_t = torch.from_numpy(target).to(feats.device)[None]
    model.classifier.eval()
    taken = 0
    for step in range(max_steps):
        if step and stop is not None and stop():
            break
        with torch.enable_grad():
            loss = F.cross_entropy(model.classifier(feats), target_t, ignore_index=255)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        optimizer.step()
        taken += 1
    model.eval()
    return taken


class OnlineAdapter:
    """Fine-tune a geometry model's classifier on each frame's labels from depth.

    Call it with ``(frame, result)`` after each frame of a stream is labelled (a frame-loop hook).
    Frames without depth or intrinsics are passed over. With camera poses, the ground (up axis
    and floor) is found once from the first ``ground_frames`` frames in world coordinates, and
    no step is taken before that; without poses each frame finds its own.

    Args:
        parser: a :class:`~sceneparse.pipeline.SceneParser` whose classes are ``floor, support,
            vertical, other`` and whose model has ``features`` and a ``classifier`` (the
            multiscale networks).
        lr: learning rate of the classifier's SGD (momentum 0.9).
        max_steps: at most this many gradient steps per frame.
        budget_ms: after the first step, no further step starts once this much time went to the
            frame (labels, features and steps together; the one-time ground fit apart).
        scale: the frame is shrunk by this factor for the features and the steps (speed).
        stride: geometry labels on every ``stride``-th pixel (speed; see
            :class:`~sceneparse.robotics.geometry.GeometryConfig`).
        ground_frames: frames with poses gathered before the ground is fitted.
    """

    def __init__(self, parser, lr: float = 0.01, max_steps: int = 3, budget_ms: float = 100.0, scale: float = 0.5,
                 stride: int = 4, ground_frames: int = 8) -> None:  # fmt: skip
        from sceneparse.robotics.geometry import GEOMETRY_CLASSES, GeometryConfig

        if tuple(parser.class_names) != GEOMETRY_CLASSES:
            raise ConfigError(f"online adaptation needs a geometry model (classes {', '.join(GEOMETRY_CLASSES)}), "
                              f"not {', '.join(parser.class_names)}: use --model indoor-geometry")  # fmt: skip
        model = parser.model
        if not (hasattr(model, "features") and isinstance(getattr(model, "classifier", None), torch.nn.Module)):
            raise ConfigError(f"{type(model).__name__} has no features/classifier to adapt (a multiscale model has)")
        if parser.in_channels != 3:
            raise ConfigError("online adaptation teaches an RGB model to see geometry without depth; this model "
                              "takes depth as input")  # fmt: skip
        self.parser, self.model = parser, model
        self.lr = positive("lr", lr)
        self.max_steps = positive("max_steps", max_steps, integer=True)
        self.budget_ms = positive("budget_ms", budget_ms)
        self.scale = positive("scale", scale)
        self.cfg = GeometryConfig(stride=positive("stride", stride, integer=True))
        self.ground_frames = positive("ground_frames", ground_frames, integer=True)
        self.params = list(model.classifier.parameters())
        self.optimizer = torch.optim.SGD(self.params, lr=self.lr, momentum=0.9)
        self.ground = None
        self._buffer: list[tuple] = []
        self.frames = self.steps = self.skipped = self.without_depth = 0
        self.seconds: list[float] = []
        self.labels_seconds: list[float] = []

    def __call__(self, frame, result=None) -> None:
        """Learn from ``frame`` (its image, depth, intrinsics and pose)."""
        if frame.depth is None or frame.intrinsics is None:
            self.skipped += 1
            self.without_depth += 1
            return
        ground = self._ground(frame)
        if ground is False:
            return  # still gathering the frames the ground is fitted on
        from sceneparse.robotics.geometry import geometry_labels

        t0 = time.perf_counter()
        labels = geometry_labels(frame.depth, frame.intrinsics, frame.pose, ground, self.cfg)
        self.labels_seconds.append(time.perf_counter() - t0)
        if (labels != 255).sum() < 100:
            self.skipped += 1
            return
        self._learn(frame.image, labels, t0)
        self.frames += 1
        self.seconds.append(time.perf_counter() - t0)

    def _ground(self, frame):
        """The ground for ``frame``: None (found per frame, no poses), the sequence's, or False
        while the first frames with poses are gathered."""
        if frame.pose is None:
            return None
        if self.ground is None:
            from sceneparse.robotics.geometry import find_ground_in_sequence

            self._buffer.append((frame.depth, frame.intrinsics, frame.pose))
            if len(self._buffer) < self.ground_frames:
                self.skipped += 1
                return False
            self.ground = find_ground_in_sequence(self._buffer, max_frames=self.ground_frames)
            self._buffer = []
        return self.ground

    def _learn(self, rgb: np.ndarray, labels: np.ndarray, t0: float) -> None:
        from sceneparse.models.pyramid import pad_to_multiple

        model, device = self.model, self.parser.device
        h, w = labels.shape
        size = (max(16, round(w * self.scale)), max(16, round(h * self.scale)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        x = torch.from_numpy(small).to(device).permute(2, 0, 1)[None].float().div_(255)
        x, (hs, ws) = pad_to_multiple(x, model.size_divisor)
        with torch.no_grad():
            feats = model.features(x)  # the frozen multiscale features, once per frame
        fh, fw = feats.shape[-2:]
        # labels at the features' resolution (nearest: class ids), padding ignored
        target = np.full((fh, fw), 255, np.int64)
        vh, vw = round(hs * fh / x.shape[-2]), round(ws * fw / x.shape[-1])
        target[:vh, :vw] = cv2.resize(labels, (vw, vh), interpolation=cv2.INTER_NEAREST)
        over_budget = lambda: 1000 * (time.perf_counter() - t0) > self.budget_ms  # noqa: E731
        self.steps += classifier_steps(model, feats, target, self.optimizer, self.max_steps, over_budget)

    def summary(self) -> dict:
        """Frames learnt from, steps taken, and the milliseconds per frame (median and 95th
        percentile; the labels from depth apart)."""
        ms = 1000 * np.asarray(self.seconds) if self.seconds else np.asarray([np.nan])
        return {
            "frames": self.frames,
            "skipped": self.skipped,
            "without_depth": self.without_depth,  # frames without depth or intrinsics
            "gathering_ground": len(self._buffer),  # frames with poses waiting for ground_frames of them
            "ground_frames": self.ground_frames,
            "steps": self.steps,
            "ms_per_frame_median": float(np.median(ms)),
            "ms_per_frame_p95": float(np.percentile(ms, 95)),
            "labels_ms_median": float(1000 * np.median(self.labels_seconds)) if self.labels_seconds else float("nan"),
        }
