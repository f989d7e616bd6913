"""Pictures of labellings: colour maps, overlays with a legend, confusion matrices."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

__all__ = ["colorize", "overlay", "plot_confusion"]


def colorize(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """HxW class indices -> HxWx3 uint8 colours.

    Example:
        >>> colorize(np.array([[0, 1]]), np.array([[255, 0, 0], [0, 0, 255]], np.uint8)).tolist()
        [[[255, 0, 0], [0, 0, 255]]]
    """
    palette = np.asarray(palette, dtype=np.uint8)
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= len(palette)):
        raise ValueError(f"labels outside [0, {len(palette) - 1}] for a palette of {len(palette)} colours")
    return palette[labels]


def overlay(
    image: np.ndarray,
    labels: np.ndarray,
    palette: np.ndarray,
    class_names=None,
    alpha: float = 0.55,
    legend: bool = True,
) -> np.ndarray:
    """Blend the class colours over ``image`` (HxWx3 uint8 RGB), with class boundaries drawn
    and a legend of the classes present."""
    if image.shape[:2] != labels.shape:
        raise ValueError(f"image {image.shape[:2]} and labels {labels.shape} differ in size")
    colour = colorize(labels, palette)
    out = cv2.addWeighted(image, 1 - alpha, colour, alpha, 0)
    lab = labels.astype(np.int32)
    edges = np.zeros(labels.shape, bool)
    edges[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    edges[1:, :] |= lab[1:, :] != lab[:-1, :]
    out[edges] = (255, 255, 255)
    if legend and class_names is not None:
        present, counts = np.unique(labels, return_counts=True)
        # Specks below half a percent of the image would only crowd the legend.
        keep = counts >= 0.005 * labels.size
        order = present[keep][np.argsort(-counts[keep])]
        scale = max(0.35, min(image.shape[:2]) / 700)
        line = int(22 * scale / 0.5)
        width = int(max(len(class_names[c]) for c in order) * 10 * scale / 0.5) + line + 8
        h = line * len(order) + 6
        if h < out.shape[0] and width < out.shape[1]:
            box = out[:h, :width].astype(np.float32)
            out[:h, :width] = (box * 0.4).astype(np.uint8)
            for i, c in enumerate(order):
                y = 3 + i * line
                cv2.rectangle(out, (4, y + 2), (4 + line - 6, y + line - 4), tuple(int(v) for v in palette[c]), -1)
                cv2.putText(out, class_names[c], (line + 2, y + line - 6), cv2.FONT_HERSHEY_SIMPLEX,
                            scale, (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
    return out


def plot_confusion(matrix: np.ndarray, class_names, path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix (true class per row) as a PNG."""
    import matplotlib

    matrix = np.asarray(matrix, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.nan_to_num(matrix / matrix.sum(axis=1, keepdims=True))
    k = len(class_names)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(5.0, 0.45 * k + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), class_names, rotation=60, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{100 * norm[i, j]:.0f}", ha="center", va="center", fontsize=8,
                        color="white" if norm[i, j] > 0.5 else "black")  # fmt: skip
    if title:
        import textwrap

        ax.set_title("\n".join(textwrap.wrap(title, 50)), fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
