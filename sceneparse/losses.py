"""Losses and class weights; they live outside the models, which return logits."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["class_frequencies", "balanced_class_weights", "scaled_class_weights", "build_loss"]


def class_frequencies(dataset, num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """Fraction of labelled pixels of each class over the (untransformed) samples."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for i in range(len(dataset)):
        label = np.asarray(dataset[i]["label"]).ravel()
        label = label[(label != ignore_index) & (label < num_classes)]
        counts += np.bincount(label, minlength=num_classes)[:num_classes]
    total = counts.sum()
    if total == 0:
        raise ValueError("the dataset has no labelled pixels")
    return counts / total


def balanced_class_weights(freqs, power: float = 1.0, max_weight: float = 10.0) -> torch.Tensor:
    """Per-class loss weights ``(median(f) / f) ** power``, clipped to ``max_weight``.

    ``power`` 1 is median-frequency balancing (each class counts as much as the others, the
    spirit of Farabet et al.'s "balanced" setting), 0 the natural frequencies, and values in
    between trade pixel accuracy for class accuracy. Absent classes get weight 0.

    Example:
        >>> balanced_class_weights([0.5, 0.25, 0.25]).tolist()
        [0.5, 1.0, 1.0]
    """
    f = np.asarray(freqs, dtype=np.float64)
    w = np.zeros_like(f)
    present = f > 0
    w[present] = np.minimum((np.median(f[present]) / f[present]) ** power, max_weight)
    return torch.tensor(w, dtype=torch.float32)


def scaled_class_weights(weights: torch.Tensor | None, class_names, scale: dict) -> torch.Tensor:
    """``weights`` (None: all 1) with the weight of each class named in ``scale`` multiplied by its factor.

    Example:
        >>> scaled_class_weights(torch.tensor([1.0, 2.0]), ("a", "b"), {"b": 0.5}).tolist()
        [1.0, 1.0]

    Raises:
        ConfigError: a name that is not one of ``class_names``.
    """
    from sceneparse.errors import ConfigError

    names = list(class_names)
    unknown = sorted(set(scale) - set(names))
    if unknown:
        raise ConfigError(
            f"option class_weight_scale: unknown class(es) {', '.join(unknown)}; known: {', '.join(names)}"
        )
    w = torch.ones(len(names)) if weights is None else weights.clone().float()
    for name, factor in scale.items():
        w[names.index(name)] *= float(factor)
    return w


def build_loss(weights: torch.Tensor | None = None, ignore_index: int = 255, label_smoothing: float = 0.0):
    """Pixel-wise cross-entropy with ignore index and optional class weights."""
    return nn.CrossEntropyLoss(weight=weights, ignore_index=ignore_index, label_smoothing=label_smoothing)
