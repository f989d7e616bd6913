"""Segmentation metrics, all from one confusion matrix.

Rows of the matrix are true classes, columns predicted ones. Pixel accuracy is the trace over
the total; class accuracy is each row's diagonal over the row's total (recall), averaged over
the classes present in the ground truth; IoU is the diagonal over row + column - diagonal.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

__all__ = ["ConfusionMatrix", "scores_from_confusion", "boundary_band"]


class ConfusionMatrix:
    """Accumulates a KxK confusion matrix of integer labels, skipping ``ignore_index``.

    Example:
        >>> cm = ConfusionMatrix(2)
        >>> cm.update(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]))
        >>> cm.matrix.tolist()
        [[1, 1], [0, 1]]
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, pred, target) -> None:
        """Add predictions ``pred`` against ground truth ``target`` (same shape, any layout)."""
        pred = torch.as_tensor(pred).reshape(-1).long()
        target = torch.as_tensor(target).reshape(-1).long()
        if pred.shape != target.shape:
            raise ValueError(f"pred has {pred.numel()} elements, target {target.numel()}")
        keep = (target != self.ignore_index) & (target >= 0) & (target < self.num_classes)
        k = self.num_classes
        counts = torch.bincount(target[keep] * k + pred[keep].clamp(0, k - 1), minlength=k * k)
        self.matrix += counts.cpu().numpy().reshape(k, k)

    def scores(self, class_names=None) -> dict:
        return scores_from_confusion(self.matrix, class_names)


def scores_from_confusion(matrix: np.ndarray, class_names=None) -> dict:
    """Pixel accuracy, mean class accuracy, mean IoU and per-class figures (fractions).

    Classes absent from the ground truth get NaN per-class figures and are left out of the
    means, as is usual.

    Example:
        >>> s = scores_from_confusion(np.array([[3, 1], [0, 4]]))
        >>> round(s["pixel_accuracy"], 3), round(s["mean_class_accuracy"], 3), round(s["mean_iou"], 3)
        (0.875, 0.875, 0.775)
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {m.shape}")
    k = m.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for a {k}x{k} confusion matrix")
    tp = np.diag(m)
    gt = m.sum(axis=1)
    pred = m.sum(axis=0)
    total = m.sum()
    present = gt > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(present, tp / gt, np.nan)
        iou = np.where(present, tp / (gt + pred - tp), np.nan)
    return {
        "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
        "mean_class_accuracy": float(np.nanmean(acc)) if present.any() else float("nan"),
        "mean_iou": float(np.nanmean(iou)) if present.any() else float("nan"),
        "per_class": {
            n: {"accuracy": float(a), "iou": float(u), "pixels": int(g)} for n, a, u, g in zip(names, acc, iou, gt)
        },
        "pixels": int(total),
    }


def boundary_band(label: np.ndarray, width: int = 4, ignore_index: int = 255) -> np.ndarray:
    """HxW bool mask of labelled pixels within ``width`` pixels of a true class boundary.

    A boundary runs between two 4-neighbours of different classes (both labelled), half-way
    between their centres; the band is every labelled pixel whose centre is at most ``width``
    pixels from it (``width`` pixels on each side).

    Example:
        >>> lab = np.zeros((1, 10), np.uint8); lab[0, 5:] = 1
        >>> boundary_band(lab, 2).astype(int).tolist()
        [[0, 0, 0, 1, 1, 1, 1, 0, 0, 0]]
    """
    label = np.asarray(label)
    valid = label != ignore_index
    edge = np.zeros(label.shape, bool)
    dh = (label[:, 1:] != label[:, :-1]) & valid[:, 1:] & valid[:, :-1]
    dv = (label[1:] != label[:-1]) & valid[1:] & valid[:-1]
    edge[:, 1:] |= dh
    edge[:, :-1] |= dh
    edge[1:] |= dv
    edge[:-1] |= dv
    if not edge.any():
        return np.zeros(label.shape, bool)
    dist = cv2.distanceTransform((~edge).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return (dist <= width - 1 + 1e-6) & valid
