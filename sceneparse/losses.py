"""Losses and class weights; they live outside the models, which return logits."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "class_frequencies",
    "balanced_class_weights",
    "scaled_class_weights",
    "loss_class_weights",
    "build_loss",
    "SegmentationCrossEntropy",
    "distillation_loss",
    "DistillationLoss",
]


def class_frequencies(dataset, num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """Fraction of labelled pixels of each class over the (untransformed) samples."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for i in range(len(dataset)):
        label = np.asarray(dataset[i]["label"]).ravel()
        label = label[(label != ignore_index) & (label >= 0) & (label < num_classes)].astype(np.int64)
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


def loss_class_weights(freqs, class_names, balance_power: float, scale: dict | None = None) -> torch.Tensor | None:
    """The loss weights of a training run: :func:`balanced_class_weights` at ``balance_power``
    (0: none, natural frequencies), then the classes named in ``scale`` scaled by
    :func:`scaled_class_weights`; None when neither applies.

    Example:
        >>> loss_class_weights([0.5, 0.25, 0.25], ("a", "b", "c"), 1.0, {"a": 2}).tolist()
        [1.0, 1.0, 1.0]
        >>> loss_class_weights([0.5, 0.5], ("a", "b"), 0.0) is None
        True
    """
    weights = balanced_class_weights(freqs, balance_power) if balance_power else None
    if scale:
        weights = scaled_class_weights(weights, class_names, scale)
    return weights


class SegmentationCrossEntropy(nn.CrossEntropyLoss):
    """PyTorch's mean cross-entropy (the weighted sum over the labelled pixels divided by their
    total weight), but 0, with zero gradients, for a batch with no labelled pixel of non-zero
    weight, where PyTorch's is NaN (0 / 0): a random crop of void only (Stanford's unknown, SIFT
    Flow's unlabelled regions) or of a class weighted 0 then aborted a run as a diverged loss.

    Example:
        >>> loss = SegmentationCrossEntropy(ignore_index=255)
        >>> loss(torch.zeros(1, 3, 2, 2, requires_grad=True), torch.full((1, 2, 2), 255)).item()
        0.0
    """

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = F.cross_entropy(logits, target, weight=self.weight, ignore_index=self.ignore_index,
                                reduction="sum", label_smoothing=self.label_smoothing)  # fmt: skip
        labelled = target[target != self.ignore_index]
        if self.weight is not None:
            mass = self.weight.to(logits.dtype)[labelled].sum()
        else:
            mass = torch.tensor(float(labelled.numel()), dtype=logits.dtype, device=logits.device)
        # no host sync: both branches are computed; the safe denominator keeps the gradient finite
        some = mass > 0
        return torch.where(some, total / torch.where(some, mass, torch.ones_like(mass)), total * 0)


def build_loss(weights: torch.Tensor | None = None, ignore_index: int = 255, label_smoothing: float = 0.0):
    """Pixel-wise cross-entropy with ignore index and optional class weights
    (:class:`SegmentationCrossEntropy`: 0 for a batch without labelled pixels)."""
    return SegmentationCrossEntropy(weight=weights, ignore_index=ignore_index, label_smoothing=label_smoothing)


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Knowledge distillation (Hinton et al. 2015): ``T**2 * KL(softmax(teacher / T) || softmax(student / T))``
    over the class dimension (1), averaged over every pixel, labelled or not.

    The teacher's logits are taken as fixed (detached): the gradient flows to the student alone.
    ``T**2`` keeps the gradient's scale independent of the temperature.

    Example:
        >>> x = torch.randn(2, 4, 3, 3)
        >>> distillation_loss(x, x, temperature=2.0).item()
        0.0
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ in shape")  # fmt: skip
    t = float(temperature)
    log_student = F.log_softmax(student_logits / t, dim=1)
    log_teacher = F.log_softmax(teacher_logits.detach() / t, dim=1)
    kl = F.kl_div(log_student, log_teacher, reduction="none", log_target=True).sum(1)
    return kl.mean() * t * t


class DistillationLoss(nn.Module):
    """``loss(student, labels) + weight * distillation_loss(student, teacher, temperature)``.

    Its input is the student's and the teacher's logits stacked along the channels (what
    :class:`sceneparse.distill.TeacherStudent` returns), so that a training loop that calls
    ``loss_fn(net(x), labels)`` trains with it unchanged.

    Args:
        loss: the supervised loss on the labels, e.g. :func:`build_loss`'s cross-entropy.
        num_classes: classes of the student (and of the teacher).
        weight: lambda, the factor on the distillation term.
        temperature: T of the softened distributions.
    """

    def __init__(self, loss: nn.Module, num_classes: int, weight: float = 1.0, temperature: float = 1.0) -> None:
        super().__init__()
        self.loss, self.num_classes = loss, num_classes
        self.weight, self.temperature = float(weight), float(temperature)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        c = self.num_classes
        if logits.shape[1] != 2 * c:
            raise ValueError(f"expected the student's and the teacher's logits stacked ({2 * c} channels), "
                             f"got {logits.shape[1]}")  # fmt: skip
        student, teacher = logits[:, :c], logits[:, c:]
        return self.loss(student, target) + self.weight * distillation_loss(student, teacher, self.temperature)
