"""Pictures of labellings: colour maps, overlays with a legend, confusion matrices."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from sceneparse.errors import ConfigError, InputError

__all__ = ["LEGEND_POSITIONS", "colorize", "confusion_figure", "overlay", "plot_confusion"]

LEGEND_POSITIONS = ("auto", "top-left", "top-right", "bottom-left", "bottom-right", "off")
#: The legend covers at most this share of the image's width and of its height.
LEGEND_MAX_SHARE = 0.25
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_LINE = 34  # height of a line of Hershey simplex text at scale 1, ascent plus descent, in pixels


def colorize(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """HxW class indices -> HxWx3 uint8 colours.

    Example:
        >>> colorize(np.array([[0, 1]]), np.array([[255, 0, 0], [0, 0, 255]], np.uint8)).tolist()
        [[[255, 0, 0], [0, 0, 255]]]
    """
    palette = np.asarray(palette, dtype=np.uint8)
    labels = np.asarray(labels)
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_):
        if not np.issubdtype(labels.dtype, np.floating) or not np.all(
            np.isfinite(labels) & (labels == np.round(labels))
        ):
            raise InputError(f"labels must be integer class indices, got dtype {labels.dtype} with non-integer values")
        labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= len(palette)):
        raise InputError(f"labels outside [0, {len(palette) - 1}] for a palette of {len(palette)} colours")
    if labels.ndim == 2 and len(palette) <= 256 and palette.shape[1:] == (3,):
        # OpenCV's table lookup: several times numpy's fancy indexing on a video frame
        lut = np.zeros((256, 1, 3), np.uint8)
        lut[: len(palette), 0] = palette
        small = labels.astype(np.uint8)
        return cv2.LUT(cv2.merge([small, small, small]), lut)
    return palette[labels]


def _legend_position(legend) -> str:
    if isinstance(legend, (bool, np.bool_)) or legend is None:
        return "auto" if legend else "off"
    if isinstance(legend, str) and legend in LEGEND_POSITIONS:
        return legend
    raise ConfigError(f"legend={legend!r}: expected one of {', '.join(LEGEND_POSITIONS)} (or True/False)")


def overlay(
    image: np.ndarray,
    labels: np.ndarray,
    palette: np.ndarray,
    class_names=None,
    alpha: float = 0.55,
    legend: bool | str = "auto",
) -> np.ndarray:
    """Blend the class colours over ``image`` (HxWx3 uint8 RGB), with class boundaries drawn
    and a legend of the largest classes present.

    Args:
        legend: where the legend goes: ``"top-left"``, ``"top-right"``, ``"bottom-left"``,
            ``"bottom-right"``, ``"auto"`` (the corner crossed by the fewest class boundaries)
            or ``"off"``; ``True`` is ``"auto"``, ``False`` is ``"off"``. Its font follows the
            image's size and it covers at most ``LEGEND_MAX_SHARE`` of the width and of the
            height, listing as many classes, largest first, as fit.
    """
    position = _legend_position(legend)
    image, labels = _image(image), np.asarray(labels)
    if image.shape[:2] != labels.shape:
        raise InputError(f"image {image.shape[:2]} and labels {labels.shape} differ in size")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.number)) or not 0 <= alpha <= 1:
        raise ConfigError(f"alpha (the opacity of the colours) must be in [0, 1], got {alpha!r}")
    if class_names is not None and len(class_names) < len(palette):
        raise InputError(f"{len(class_names)} class names for a palette of {len(palette)} colours")
    colour = colorize(labels, palette)
    out = cv2.addWeighted(image, 1 - alpha, colour, alpha, 0)
    lab = labels.astype(np.uint8 if len(palette) <= 256 else np.int32)  # smaller: faster to compare
    edges = np.zeros(labels.shape, bool)
    edges[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    edges[1:, :] |= lab[1:, :] != lab[:-1, :]
    out[edges] = (255, 255, 255)
    if position != "off" and class_names is not None:
        _draw_legend(out, lab, np.asarray(palette, np.uint8), class_names, position, edges)
    return out


def _image(image) -> np.ndarray:
    """``image`` as the HxWx3 uint8 RGB picture that overlays are drawn on: a grey image stacked
    to 3 channels, an RGBA one without its alpha; anything else an :class:`InputError`."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.dtype != np.uint8:
        raise InputError(f"the image under an overlay must be uint8, got dtype {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[..., :3])
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"the image under an overlay must be HxWx3 RGB (or grey, or RGBA), got shape {image.shape}")
    return image


def _draw_legend(out, labels, palette, class_names, position, edges) -> None:
    h, w = labels.shape
    counts = np.bincount(labels.ravel(), minlength=len(palette))
    order = np.argsort(-counts, kind="stable")
    # Specks below half a percent of the image would only crowd the legend.
    order = order[counts[order] >= 0.005 * labels.size]
    line = max(12, round(min(h, w) / 30))
    pad = max(2, line // 6)
    max_w, max_h = int(LEGEND_MAX_SHARE * w), int(LEGEND_MAX_SHARE * h)
    order = order[: max(0, (max_h - 2 * pad) // line)]
    scale = 0.85 * line / _FONT_LINE
    thick = max(1, round(line / 30))
    swatch = line - 2 * pad
    text_x = pad + swatch + pad + max(1, pad // 2)
    avail = max_w - text_x - pad
    names = []
    for c in order:
        name = str(class_names[c])
        while name and cv2.getTextSize(name, _FONT, scale, thick)[0][0] > avail:
            name = name[:-2] + "." if len(name) > 2 else ""  # shorten from the end, marked with a dot
        if name:
            names.append((c, name))
    if not names:
        return
    bw = text_x + max(cv2.getTextSize(n, _FONT, scale, thick)[0][0] for _, n in names) + pad
    bh = 2 * pad + line * len(names)
    corners = {
        "top-left": (0, 0),
        "top-right": (0, w - bw),
        "bottom-left": (h - bh, 0),
        "bottom-right": (h - bh, w - bw),
    }
    if position == "auto":
        # The corner with the least detail, crossed by the fewest class boundaries (the first on a tie).
        detail = {k: np.count_nonzero(edges[y : y + bh, x : x + bw]) for k, (y, x) in corners.items()}
        position = min(detail, key=detail.get)
    y0, x0 = corners[position]
    box = out[y0 : y0 + bh, x0 : x0 + bw]
    box[:] = cv2.convertScaleAbs(box, alpha=0.4)
    baseline = round(0.075 * line + 27 * scale)  # text centred in its line: 27 is the ascent at scale 1
    for i, (c, name) in enumerate(names):
        y = y0 + pad + i * line
        colour = tuple(int(v) for v in palette[c])
        cv2.rectangle(out, (x0 + pad, y + pad), (x0 + pad + swatch - 1, y + line - pad - 1), colour, -1)
        cv2.rectangle(out, (x0 + pad, y + pad), (x0 + pad + swatch - 1, y + line - pad - 1), (160, 160, 160), 1)
        cv2.putText(out, name, (x0 + text_x, y + baseline), _FONT, scale, (255, 255, 255), thick, cv2.LINE_AA)


def confusion_figure(matrix: np.ndarray, class_names, title: str = ""):
    """Row-normalised confusion matrix (true class per row) as a matplotlib figure: each cell
    and the colour bar in percent of the pixels of the row's true class (0-100)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (len(class_names), len(class_names)):
        raise InputError(f"a confusion matrix of {len(class_names)} classes must be {len(class_names)}x"
                         f"{len(class_names)}, got shape {matrix.shape}")  # fmt: skip
    with np.errstate(invalid="ignore", divide="ignore"):
        percent = np.nan_to_num(100 * matrix / matrix.sum(axis=1, keepdims=True))
    k = len(class_names)
    size = max(5.0, 0.45 * k + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    im = ax.imshow(percent, cmap="Blues", vmin=0, vmax=100)
    ax.set_xticks(range(k), class_names, rotation=60, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{percent[i, j]:.0f}", ha="center", va="center", fontsize=8,
                        color="white" if percent[i, j] > 50 else "black")  # fmt: skip
    if title:
        import textwrap

        ax.set_title("\n".join(textwrap.wrap(title, 50)), fontsize=10)
    bar = fig.colorbar(im, ax=ax, fraction=0.046)
    bar.set_label("% of the true class's pixels (rows sum to 100)")
    fig.tight_layout()
    return fig


def plot_confusion(matrix: np.ndarray, class_names, path: str | Path, title: str = "") -> Path:
    """``confusion_figure`` saved as a PNG at ``path``."""
    import matplotlib.pyplot as plt

    fig = confusion_figure(matrix, class_names, title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
