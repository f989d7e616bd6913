"""Seeing inside a trained model (Zeiler & Fergus, ECCV 2014): first-layer filters, feature maps
per pyramid scale, occlusion sensitivity per class, and per-pixel confidence and entropy.

Each view is a function that returns arrays (for tests and notebooks) and a function that draws
them as a labelled PNG (matplotlib, titles and colour bars); :func:`explain` writes them all:

>>> from sceneparse import SceneParser
>>> from sceneparse.explain import explain
>>> parser = SceneParser.from_pretrained("stanford-background")
>>> paths = explain(parser, np.zeros((60, 80, 3), np.uint8), "out/", patch=16, stride=8)  # doctest: +SKIP

Occlusion sensitivity: a grey square (RGB 0.5; the depth of an RGB-D model is left as it is)
is slid over the image; at every position the drop in a class's probability is averaged over
**the pixels the model gives to that class on the unoccluded image** (``region="class"``, the
default; a class the model gives no pixel falls back to the whole image), or over the whole
image (``region="image"``). A large drop means the model needs what the patch hid to call
those pixels that class. Each pixel of the drawn map is the mean drop of the patch positions
that cover it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sceneparse.errors import ConfigError, InputError, did_you_mean

__all__ = [
    "first_layer_filters",
    "feature_maps",
    "OcclusionResult",
    "occlusion_sensitivity",
    "confidence_entropy",
    "plot_filters",
    "plot_feature_maps",
    "plot_occlusion",
    "plot_confidence",
    "explain",
    "GREY",
]

log = logging.getLogger(__name__)

#: Value of the occluding patch, RGB in [0, 1] (Zeiler & Fergus's grey square).
GREY = 0.5
#: Pixels of occluded copies run through the network at once at most: the batch is made smaller for
#: large images (about 110 bytes a pixel on the CPU: 16 copies of a 12-megapixel photo took 20 GB).
MAX_BATCH_PIXELS = 8_000_000


def _model_kind(model: torch.nn.Module) -> str:
    """ "multiscale", "encdec" or "lraspp": the architectures whose insides these views know how
    to reach."""
    from sceneparse.models.encdec import EncoderDecoder
    from sceneparse.models.lraspp import LRASPP
    from sceneparse.models.multiscale import MultiscaleConvNet

    if isinstance(model, MultiscaleConvNet):
        return "multiscale"
    if isinstance(model, EncoderDecoder):
        return "encdec"
    if isinstance(model, LRASPP):
        return "lraspp"
    raise InputError(
        f"explain knows the insides of MultiscaleConvNet, EncoderDecoder and LRASPP models, not "
        f"{type(model).__name__} (an ONNX model has no weights to show: give the .pt checkpoint)"
    )


def _input_channel_names(model: torch.nn.Module) -> list[str]:
    """Names of what the first convolution sees, channel by channel."""
    depth = ["depth (LCN)" if _model_kind(model) == "multiscale" else "depth"] * (model.in_channels - 3)
    if _model_kind(model) == "multiscale":
        return ["Y (LCN)", "U", "V"] + depth
    return ["R", "G", "B"] + depth


def first_layer_filters(model: torch.nn.Module) -> tuple[np.ndarray, list[str]]:
    """Weights of the model's first convolution, OxIxKxK float32, and the names of its I input
    channels (a multiscale model's first layer sees locally normalised Y, then U and V, then
    depth; the encoder-decoder's sees normalised R, G, B, then depth).

    Example:
        >>> from sceneparse import create_model
        >>> w, names = first_layer_filters(create_model("msconvnet", num_classes=8))
        >>> w.shape, names
        ((24, 3, 3, 3), ['Y (LCN)', 'U', 'V'])
    """
    names = _input_channel_names(model)
    conv = next((m for m in model.modules() if isinstance(m, torch.nn.Conv2d)), None)
    if conv is None:  # every registered architecture has one; a clear word for one that has not
        raise InputError(f"{type(model).__name__} has no convolution to show")
    w = conv.weight.detach().float().cpu().numpy()
    if w.shape[1] != len(names):
        raise InputError(f"the first convolution takes {w.shape[1]} channels, the model {len(names)}")
    return w, names


def _as_batch(rgb: np.ndarray, depth: np.ndarray | None) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float().div_(255)
    if depth is not None:
        x = torch.cat([x, torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))[None, None]], dim=1)
    return x


@torch.inference_mode()
def feature_maps(parser, rgb: np.ndarray, depth: np.ndarray | None = None) -> list[dict]:
    """Feature maps of ``rgb`` at every scale the model looks at.

    A multiscale model: one entry per pyramid scale, finest first, with the scale's network
    input (``input``: its locally normalised Y, HsxWs) and the shared encoder's output there
    (``maps``: CxH'xW', stride 4 of the scale). The encoder-decoder: one entry per encoder
    stage (stride 2, 4, 8, ...), ``input`` None; LR-ASPP: its backbone's low-level (stride 8)
    and high-level (stride 16) features.

    Returns:
        dicts with ``name`` (e.g. "scale 1 (1/2)"), ``input`` and ``maps`` (float32 arrays).
    """
    model = parser.model
    kind = _model_kind(model)
    rgb, depth = parser.check_inputs(rgb, depth)  # the parser's own input checks
    device = next(model.parameters()).device
    x = _as_batch(rgb, depth).to(device)
    from sceneparse.models.pyramid import pad_to_multiple

    x, _ = pad_to_multiple(x, model.size_divisor)
    out = []
    if kind == "multiscale":
        for i, scale in enumerate(model.pyramid(x)):
            maps = model.encoder(scale)[0].float().cpu().numpy()
            out.append({"name": f"scale {i} (1/{2**i})", "input": scale[0, 0].float().cpu().numpy(), "maps": maps})
    else:
        if kind == "encdec":
            stages = [(f"stage {i} (stride {2 ** (i + 1)})", stage) for i, stage in enumerate(model.encoder)]
        else:  # LR-ASPP: the backbone up to its low-level features, then the rest of it
            stages = [("low-level features (stride 8)", model.low), ("high-level features (stride 16)", model.high)]
        z = model.normalized(x)  # the single-scale models' own input normalisation
        for name, stage in stages:
            z = stage(z)
            out.append({"name": name, "input": None, "maps": z[0].float().cpu().numpy()})
    return out


@dataclass
class OcclusionResult:
    """What :func:`occlusion_sensitivity` measured.

    Attributes:
        classes: the class indices explained.
        class_names: their names.
        drops: NxGyxGx drop of each class's probability per patch position (N classes).
        maps: NxHxW the drops at pixel resolution (mean over the positions covering a pixel).
        positions_y, positions_x: top-left corner of the patch at each grid row and column.
        patch, stride: the patch's side and step in pixels.
        region: "class" or "image", what each drop is averaged over.
        base: N probabilities of the classes on the unoccluded image, averaged over the region.
        pixels: N number of pixels of each class's region (the model's labels on the unoccluded image).
        peaks: N (y, x) centres of the patch of the largest drop.
        labels: HxW the model's labels on the unoccluded image (the classes' regions).
    """

    classes: list[int]
    class_names: list[str]
    drops: np.ndarray
    maps: np.ndarray
    positions_y: np.ndarray
    positions_x: np.ndarray
    patch: int
    stride: int
    region: str
    base: np.ndarray
    pixels: np.ndarray
    peaks: list[tuple[int, int]] = field(default_factory=list)
    labels: np.ndarray | None = None


def _positions(size: int, patch: int, stride: int) -> np.ndarray:
    """Top-left corners of patches of ``patch`` pixels every ``stride``, the last flush with the edge."""
    pos = list(range(0, size - patch + 1, stride))
    if pos[-1] != size - patch:
        pos.append(size - patch)
    return np.asarray(pos)


def _check_positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return value


@torch.inference_mode()
def occlusion_sensitivity(
    parser,
    rgb: np.ndarray,
    depth: np.ndarray | None = None,
    classes=None,
    patch: int = 32,
    stride: int = 16,
    region: str = "class",
    batch_size: int = 16,
    progress: bool = True,
    min_fraction: float = 0.01,
) -> OcclusionResult:
    """Drop in each class's probability as a grey square hides each part of ``rgb``.

    Args:
        parser: a :class:`~sceneparse.pipeline.SceneParser`.
        rgb: HxWx3 uint8 image.
        depth: HxW metres, for RGB-D models (not occluded).
        classes: class indices or names to explain; None: the classes the model gives at least
            ``min_fraction`` of the pixels, most pixels first.
        patch: side of the grey square in pixels (clipped to the image's shorter side).
        stride: step between patch positions in pixels.
        region: "class": average each class's drop over the pixels the model labels that class
            on the unoccluded image (the whole image for a class without pixels); "image": over
            the whole image.
        batch_size: occluded copies run through the network at once (fewer for a large image: at
            most :data:`MAX_BATCH_PIXELS` pixels in all).
        progress: show a progress bar.
        min_fraction: see ``classes``.
    """
    _check_positive("patch", patch)
    _check_positive("stride", stride)
    _check_positive("batch_size", batch_size)
    if region not in ("class", "image"):
        raise ConfigError(f"region must be 'class' or 'image', got {region!r}")
    model = parser.model
    rgb, depth = parser.check_inputs(rgb, depth)  # the parser's own input checks
    device = next(model.parameters()).device
    x = _as_batch(rgb, depth).to(device)
    h, w = rgb.shape[:2]
    patch = min(patch, h, w)

    base = torch.softmax(model(x).float(), dim=1)[0]  # KxHxW
    labels = base.argmax(0)
    cls = _pick_classes(parser, labels, classes, min_fraction)
    masks = torch.stack([labels == c for c in cls]).float()  # NxHxW
    pixels = masks.flatten(1).sum(1)
    if region == "image":
        masks = torch.ones_like(masks)
    masks[masks.flatten(1).sum(1) == 0] = 1.0  # a class without pixels: the whole image
    weights = masks / masks.flatten(1).sum(1)[:, None, None]
    base_mean = (base[cls] * weights).flatten(1).sum(1)  # N

    ys, xs = _positions(h, patch, stride), _positions(w, patch, stride)
    grid = [(i, j) for i in range(len(ys)) for j in range(len(xs))]
    fits = max(1, MAX_BATCH_PIXELS // (h * w))
    if batch_size > fits:
        log.info("occlusion: %d occluded copies of the %dx%d image per network call, not %d (memory)", fits, w, h,
                 batch_size)  # fmt: skip
        batch_size = fits
    if len(grid) > 2000:
        log.warning("occlusion: %d network passes of the %dx%d image (%d x %d patch positions); a larger "
                    "stride (and patch) takes fewer", len(grid), w, h, len(ys), len(xs))  # fmt: skip
    drops = torch.zeros(len(cls), len(ys), len(xs))
    bar = tqdm(total=len(grid), desc="occlusion", unit="patch", leave=False, disable=not progress, dynamic_ncols=True)
    try:
        for start in range(0, len(grid), batch_size):
            chunk = grid[start : start + batch_size]
            xb = x.repeat(len(chunk), 1, 1, 1)
            for b, (i, j) in enumerate(chunk):
                xb[b, :3, ys[i] : ys[i] + patch, xs[j] : xs[j] + patch] = GREY
            probs = torch.softmax(model(xb).float(), dim=1)[:, cls]  # BxNxHxW
            means = (probs * weights).flatten(2).sum(2)  # BxN
            for b, (i, j) in enumerate(chunk):
                drops[:, i, j] = (base_mean - means[b]).cpu()
            bar.update(len(chunk))
    finally:
        bar.close()

    drops_np = drops.numpy()
    total = np.zeros((len(cls), h, w), np.float64)
    count = np.zeros((h, w), np.float64)
    for i, y in enumerate(ys):
        for j, x0 in enumerate(xs):
            total[:, y : y + patch, x0 : x0 + patch] += drops_np[:, i, j, None, None]
            count[y : y + patch, x0 : x0 + patch] += 1
    peaks = []
    for n in range(len(cls)):
        i, j = np.unravel_index(int(np.argmax(drops_np[n])), drops_np[n].shape)
        peaks.append((int(ys[i] + patch // 2), int(xs[j] + patch // 2)))
    return OcclusionResult(
        classes=cls,
        class_names=[parser.class_names[c] for c in cls],
        drops=drops_np,
        maps=(total / np.maximum(count, 1)).astype(np.float32),
        positions_y=ys,
        positions_x=xs,
        patch=patch,
        stride=stride,
        region=region,
        base=base_mean.cpu().numpy(),
        pixels=pixels.cpu().numpy().astype(np.int64),
        peaks=peaks,
        labels=labels.cpu().numpy().astype(np.int64),
    )


def _pick_classes(parser, labels: torch.Tensor, classes, min_fraction: float) -> list[int]:
    names = list(parser.class_names)
    if classes is None:
        counts = torch.bincount(labels.flatten(), minlength=len(names)).cpu().numpy()
        order = np.argsort(-counts, kind="stable")
        picked = [int(c) for c in order if counts[c] >= max(1, min_fraction * labels.numel())]
        return picked or [int(order[0])]
    out = []
    for c in [classes] if isinstance(classes, (str, int)) else classes:
        if isinstance(c, str):
            if c in names:
                c = names.index(c)
            elif c.strip().isdigit():  # an index from the command line (--classes 3)
                c = int(c)
            else:
                raise ConfigError(f"unknown class {c!r}{did_you_mean(c, names)}; the model's classes: "
                                  f"{', '.join(names)} (or their indices, 0 to {len(names) - 1})")  # fmt: skip
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= c < len(names):
            raise ConfigError(f"class index must be 0 to {len(names) - 1}, got {c!r}")
        if int(c) not in out:  # a class given twice (sky sky, or sky and its index) is explained once
            out.append(int(c))
    if not out:
        raise ConfigError("no class to explain")
    return out


def confidence_entropy(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel confidence (the largest class probability) and entropy (nats; at most
    log K for K classes) of KxHxW probabilities.

    Example:
        >>> c, e = confidence_entropy(np.full((4, 2, 3), 0.25, np.float32))
        >>> float(c[0, 0]), round(float(e[0, 0]), 4)
        (0.25, 1.3863)
    """
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 3:
        raise InputError(f"probs must be KxHxW, got shape {probs.shape}")
    p = np.clip(probs, 1e-12, 1.0)
    return probs.max(0), -(probs * np.log(p)).sum(0)


# ---------------------------------------------------------------------------------- drawing


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path, dpi: int = 100) -> Path:
    plt = _plt()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def plot_filters(model: torch.nn.Module, path: str | Path, max_filters: int = 64) -> Path:
    """The first layer's filters as a grid: one column per filter (up to ``max_filters``), one
    row per input channel, blue negative and red positive on one scale per filter."""
    plt = _plt()
    w, names = first_layer_filters(model)
    w = w[:max_filters]
    o, i = w.shape[:2]
    fig, axes = plt.subplots(i, o, figsize=(max(4.0, 0.45 * o + 1.2), 0.5 * i + 1.1), squeeze=False)
    for f in range(o):
        lim = float(np.abs(w[f]).max()) or 1.0
        for c in range(i):
            ax = axes[c, f]
            im = ax.imshow(w[f, c], cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if f == 0:
                ax.set_ylabel(names[c], rotation=0, ha="right", va="center", fontsize=8)
            if c == 0:
                ax.set_title(str(f), fontsize=7)
    k = w.shape[-1]
    fig.suptitle(f"{type(model).__name__}: first-layer filters ({o} of {k}x{k}; columns: filter, rows: input "
                 "channel; each filter on its own symmetric scale)", fontsize=9)  # fmt: skip
    fig.colorbar(im, ax=axes, fraction=0.02, pad=0.01, ticks=[]).set_label("- weight +", fontsize=8)
    return _save(fig, path, dpi=110)


def _top_channels(views: list[dict], k: int) -> list[int]:
    """The ``k`` channels most active (mean absolute response) over all scales, the same for
    every scale: the encoder is shared, so a channel is the same detector at each scale."""
    score = sum(np.abs(v["maps"]).mean(axis=(1, 2)) for v in views if v["maps"].shape[0] == views[0]["maps"].shape[0])
    return [int(c) for c in np.argsort(-score, kind="stable")[:k]]


def plot_feature_maps(views: list[dict], path: str | Path, channels: int = 6, title: str = "") -> Path:
    """Feature maps of :func:`feature_maps` as a grid: a row per scale (or stage), its network
    input first where there is one, then ``channels`` channels, each with its colour bar."""
    plt = _plt()
    shared = len({v["maps"].shape[0] for v in views}) == 1
    chans = _top_channels(views, channels) if shared else None
    has_input = views[0]["input"] is not None
    cols = channels + int(has_input)
    fig, axes = plt.subplots(len(views), cols, figsize=(2.3 * cols, 1.9 * len(views) + 0.6), squeeze=False)
    for r, v in enumerate(views):
        picks = chans if chans is not None else _top_channels([v], channels)
        panels = [("input Y (LCN)", v["input"], "gray")] if has_input else []
        panels += [(f"channel {c}", v["maps"][c], "viridis") for c in picks if c < v["maps"].shape[0]]
        for col in range(cols):
            ax = axes[r, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= len(panels):
                ax.axis("off")
                continue
            name, img, cmap = panels[col]
            im = ax.imshow(img, cmap=cmap)
            ax.set_title(f"{name}  {img.shape[0]}x{img.shape[1]}", fontsize=7)
            bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
            bar.ax.tick_params(labelsize=6)
            if col == 0:
                ax.set_ylabel(v["name"], fontsize=8)
    what = "the same channels of the shared encoder at every scale" if shared and has_input else "per stage"
    fig.suptitle(title or f"feature maps ({what}, most active first)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _grey(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32).mean(axis=2) / 255


def plot_occlusion(rgb: np.ndarray, result: OcclusionResult, path: str | Path, columns: int = 4) -> Path:
    """Occlusion maps over the grey image, one panel per class: red where hiding the patch
    lowers the class's probability, blue where it raises it; the class's region outlined and
    the strongest drop marked with a cross."""
    plt = _plt()
    n = len(result.classes)
    cols = min(columns, n)
    rows = math.ceil(n / cols)
    h, w = rgb.shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols * max(w / h, 0.75) / 1.33 + 0.8, 3.1 * rows + 0.5),
                             squeeze=False)  # fmt: skip
    for k in range(rows * cols):
        ax = axes[k // cols, k % cols]
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= n:
            ax.axis("off")
            continue
        ax.imshow(_grey(rgb), cmap="gray", vmin=0, vmax=1)
        lim = float(np.abs(result.maps[k]).max()) or 1e-6  # each class on its own symmetric scale
        im = ax.imshow(result.maps[k], cmap="RdBu_r", vmin=-lim, vmax=lim, alpha=0.6)
        if result.labels is not None and (result.labels == result.classes[k]).any():  # the class's region
            ax.contour(result.labels == result.classes[k], levels=[0.5], colors="black", linewidths=0.8)
        y, x = result.peaks[k]
        ax.plot([x], [y], marker="x", color="black", markersize=9, mew=2)
        ax.set_title(f"{result.class_names[k]}: {100 * result.pixels[k] / (h * w):.0f}% of pixels,\n"
                     f"p={result.base[k]:.2f}, max drop {result.drops[k].max():.2f}", fontsize=8)  # fmt: skip
        bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
        bar.ax.tick_params(labelsize=6)
    over = "the class's own pixels" if result.region == "class" else "the whole image"
    fig.suptitle(f"occlusion sensitivity: drop in p(class), averaged over {over}, as a grey {result.patch}x"
                 f"{result.patch} patch slides every {result.stride} px (x: strongest drop; line: the class's "
                 "pixels)", fontsize=9)  # fmt: skip
    fig.tight_layout()
    return _save(fig, path)


def plot_confidence(rgb: np.ndarray, probs: np.ndarray, palette: np.ndarray, class_names, path: str | Path) -> Path:
    """Four panels: the image, the labels with a legend, per-pixel confidence (max probability)
    and entropy (nats, up to log K), each map with its colour bar."""
    plt = _plt()
    from matplotlib.patches import Patch

    conf, ent = confidence_entropy(probs)
    labels = probs.argmax(0)
    k = probs.shape[0]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    axes[0].imshow(rgb)
    axes[0].set_title("image", fontsize=9)
    axes[1].imshow(np.asarray(palette, np.uint8)[labels])
    axes[1].set_title("labels (raw convnet)", fontsize=9)
    present = [c for c in np.unique(labels)]
    axes[1].legend(handles=[Patch(color=np.asarray(palette[c]) / 255, label=class_names[c]) for c in present],
                   fontsize=6, loc="lower left", framealpha=0.7)  # fmt: skip
    im = axes[2].imshow(conf, cmap="magma", vmin=0, vmax=1)
    axes[2].set_title(f"confidence: max probability (mean {conf.mean():.2f})", fontsize=9)
    fig.colorbar(im, ax=axes[2], fraction=0.046, pad=0.02)
    im = axes[3].imshow(ent, cmap="inferno", vmin=0, vmax=math.log(k))
    axes[3].set_title(f"entropy, nats (max log {k} = {math.log(k):.2f})", fontsize=9)
    fig.colorbar(im, ax=axes[3], fraction=0.046, pad=0.02)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return _save(fig, path)


def explain(
    parser,
    rgb: np.ndarray,
    out: str | Path,
    depth: np.ndarray | None = None,
    classes=None,
    patch: int = 32,
    stride: int = 16,
    region: str = "class",
    channels: int = 6,
    batch_size: int = 16,
    progress: bool = True,
) -> dict[str, Path]:
    """Write the four views of ``parser``'s model on ``rgb`` into folder ``out``.

    ``filters.png`` (first-layer filters), ``features.png`` (feature maps per pyramid scale),
    ``occlusion.png`` (occlusion sensitivity of ``classes``; see :func:`occlusion_sensitivity`
    for ``classes``, ``patch``, ``stride``, ``region`` and ``batch_size``), ``confidence.png``
    (image, labels, confidence, entropy) and ``explain.npz`` with the arrays behind them.

    Returns:
        the path of each file by its view's name.
    """
    out = Path(out)
    _model_kind(parser.model)  # a clear error before any work
    rgb, depth = parser.check_inputs(rgb, depth)
    if classes is not None:  # unknown names fail before any file is written
        _pick_classes(parser, torch.zeros(1, dtype=torch.long), classes, 0.0)
    paths = {"filters": plot_filters(parser.model, out / "filters.png")}
    views = feature_maps(parser, rgb, depth)
    name = parser.name or type(parser.model).__name__
    paths["features"] = plot_feature_maps(
        views, out / "features.png", channels,
        title=f"{name}: feature maps per {'pyramid scale' if views[0]['input'] is not None else 'encoder stage'} "
        "(the most active channels; each panel on its own scale)",
    )  # fmt: skip
    occ = occlusion_sensitivity(parser, rgb, depth, classes, patch, stride, region, batch_size, progress)
    paths["occlusion"] = plot_occlusion(rgb, occ, out / "occlusion.png")
    probs = parser.predict_probs(rgb, depth)
    paths["confidence"] = plot_confidence(rgb, probs, parser.palette, parser.class_names, out / "confidence.png")
    conf, ent = confidence_entropy(probs)
    filters, _ = first_layer_filters(parser.model)
    np.savez_compressed(
        out / "explain.npz", filters=filters, confidence=conf, entropy=ent,
        occlusion_maps=occ.maps, occlusion_drops=occ.drops, occlusion_classes=np.asarray(occ.classes),
        occlusion_peaks=np.asarray(occ.peaks).reshape(-1, 2),
        **{f"features_{i}": v["maps"] for i, v in enumerate(views)},
    )  # fmt: skip
    paths["arrays"] = out / "explain.npz"
    return paths
