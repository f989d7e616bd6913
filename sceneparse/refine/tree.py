"""Optimal purity cover of a segmentation tree (Farabet et al., PAMI 2013, section 4.2).

1. A **segmentation tree**: fine graph-based superpixels (Felzenszwalb-Huttenlocher) are merged
   two at a time, most similar first (Ward linkage on mean Lab colour, raised by the strength of
   the image gradient along their shared boundary), until one region covers the image. Every
   merge is a node, so the tree is binary with 2N - 1 nodes for N superpixels.
2. A **class distribution per node**: a small 2-layer network reads the node's features (mean
   and spread of the convnet's class scores in the region, its colour, size and place) and
   predicts the distribution of true classes in it. It is trained on regions of training
   images (:func:`train_region_classifier`); without one, the node's mean convnet distribution
   is used.
3. The **optimal cover**: the set of nodes that covers every pixel exactly once and minimises the
   summed impurity (area x entropy of the node's distribution, plus a small cost per node), found
   exactly by dynamic programming from the leaves up. Each pixel takes its covering node's
   distribution.
"""

from __future__ import annotations

import heapq
import logging
from pathlib import Path

import cv2
import numpy as np
import skimage.segmentation
import torch
from torch import nn

from sceneparse.errors import ConfigError, InputError, NotFoundError
from sceneparse.io import per_file_version
from sceneparse.refine.base import (
    REFINER_WEIGHTS,
    Refiner,
    check_probs,
    check_sigma,
    model_fingerprint,
    positive,
    register_refiner,
)

__all__ = ["SegmentationTree", "build_tree", "optimal_cover", "RegionClassifier", "PurityTree",
           "node_features", "shipped_classifier", "train_region_classifier"]  # fmt: skip

log = logging.getLogger(__name__)
#: (classifier path, model fingerprint) pairs already warned about as not belonging together.
_STALE_WARNED: set[tuple[str, str]] = set()


def shipped_classifier(model_name: str | None) -> Path | None:
    """The region classifier shipped for the shipped model ``model_name``, if there is one."""
    path = REFINER_WEIGHTS / f"{model_name}-tree.pt"
    return path if model_name and path.is_file() else None


class SegmentationTree:
    """A binary merge tree over the superpixels ``leaves`` (HxW ids 0..N-1).

    Nodes 0..N-1 are the leaves; node N + i is the i-th merge, of ``children[N + i]``; the last
    node is the root. ``parent[k]`` is -1 for the root.
    """

    def __init__(self, leaves: np.ndarray, merges: list[tuple[int, int]]) -> None:
        self.leaves = leaves
        self.num_leaves = int(leaves.max()) + 1
        n = self.num_leaves + len(merges)
        self.children = np.full((n, 2), -1, np.int64)
        self.parent = np.full(n, -1, np.int64)
        for i, (a, b) in enumerate(merges):
            k = self.num_leaves + i
            self.children[k] = (a, b)
            self.parent[a] = self.parent[b] = k

    @property
    def num_nodes(self) -> int:
        return len(self.parent)

    def accumulate(self, leaf_values: np.ndarray) -> np.ndarray:
        """Per-node sums of additive per-leaf values (N x D -> num_nodes x D)."""
        out = np.zeros((self.num_nodes, *leaf_values.shape[1:]), dtype=np.float64)
        out[: self.num_leaves] = leaf_values
        for k in range(self.num_leaves, self.num_nodes):
            a, b = self.children[k]
            out[k] = out[a] + out[b]
        return out


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32) * np.float32([100 / 255, 1, 1]) - [0, 128, 128]


def build_tree(rgb: np.ndarray, scale: float = 20.0, sigma: float = 0.5, min_size: int = 10,
               boundary_weight: float = 2.0) -> SegmentationTree:  # fmt: skip
    """Segmentation tree of ``rgb``: Felzenszwalb superpixels merged pairwise, most similar first."""
    leaves = skimage.segmentation.felzenszwalb(rgb, scale=scale, sigma=sigma, min_size=min_size).astype(np.int64)
    n = int(leaves.max()) + 1
    flat = leaves.ravel()
    lab = _lab(rgb).reshape(-1, 3)
    area = np.bincount(flat, minlength=n).astype(np.float64)
    mean = np.stack([np.bincount(flat, weights=lab[:, i], minlength=n) for i in range(3)], 1) / area[:, None]
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    grad = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)) / 255.0

    # boundary length and summed gradient of every pair of adjacent superpixels
    pairs, strength = [], []
    for a, b, g in (
        (leaves[:, :-1], leaves[:, 1:], grad[:, :-1] + grad[:, 1:]),
        (leaves[:-1], leaves[1:], grad[:-1] + grad[1:]),
    ):
        diff = a != b
        lo, hi = np.minimum(a[diff], b[diff]), np.maximum(a[diff], b[diff])
        pairs.append(lo * n + hi)
        strength.append(g[diff] / 2)
    keys, inverse = np.unique(np.concatenate(pairs), return_inverse=True)
    length = np.bincount(inverse).astype(np.float64)
    gsum = np.bincount(inverse, weights=np.concatenate(strength))

    nodes_area = list(area)
    nodes_mean = list(mean)
    neighbours: list[dict[int, list[float]]] = [{} for _ in range(n)]
    for key, ln, gs in zip(keys.tolist(), length.tolist(), gsum.tolist()):
        a, b = divmod(key, n)
        neighbours[a][b] = neighbours[b][a] = [ln, gs]

    def weight(a: int, b: int) -> float:
        ln, gs = neighbours[a][b]
        na, nb = nodes_area[a], nodes_area[b]
        colour = float(np.sum((nodes_mean[a] - nodes_mean[b]) ** 2))
        edge = boundary_weight * 100 * gs / ln
        return na * nb / (na + nb) * (colour + edge * edge)

    heap = [(weight(a, b), a, b) for a in range(n) for b in neighbours[a] if a < b]
    heapq.heapify(heap)
    alive = set(range(n))
    merges: list[tuple[int, int]] = []
    while heap:
        _, a, b = heapq.heappop(heap)
        if a not in alive or b not in alive:
            continue
        m = n + len(merges)
        merges.append((a, b))
        alive -= {a, b}
        alive.add(m)
        na, nb = nodes_area[a], nodes_area[b]
        nodes_area.append(na + nb)
        nodes_mean.append((nodes_mean[a] * na + nodes_mean[b] * nb) / (na + nb))
        joined: dict[int, list[float]] = {}
        for side in (a, b):
            for c, (ln, gs) in neighbours[side].items():
                if c in (a, b):
                    continue
                acc = joined.setdefault(c, [0.0, 0.0])
                acc[0] += ln
                acc[1] += gs
                del neighbours[c][side]
            neighbours[side] = {}
        neighbours.append(joined)
        for c, stats in joined.items():
            neighbours[c][m] = stats
            heapq.heappush(heap, (weight(m, c), m, c))
    roots = sorted(alive)
    while len(roots) > 1:  # disconnected regions cannot happen on an image grid, but stay safe
        a, b = roots.pop(0), roots.pop(0)
        merges.append((a, b))
        roots.append(n + len(merges) - 1)
    return SegmentationTree(leaves, merges)


def optimal_cover(tree: SegmentationTree, cost: np.ndarray) -> np.ndarray:
    """Nodes of the cover of minimal total ``cost``, every leaf covered exactly once (exact DP)."""
    best = np.asarray(cost, dtype=np.float64).copy()
    take = np.ones(tree.num_nodes, bool)
    for k in range(tree.num_leaves, tree.num_nodes):
        a, b = tree.children[k]
        split = best[a] + best[b]
        if split < best[k]:
            best[k], take[k] = split, False
    cover, stack = [], [tree.num_nodes - 1]
    while stack:
        k = stack.pop()
        if take[k]:
            cover.append(k)
        else:
            stack.extend(tree.children[k].tolist())
    return np.asarray(sorted(cover), dtype=np.int64)


def node_features(tree: SegmentationTree, rgb: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """num_nodes x (2C + 9) features: mean and standard deviation of the class scores, mean Lab
    colour and its spread, log area and centroid of every node."""
    c, h, w = probs.shape
    flat = tree.leaves.ravel()
    n = tree.num_leaves
    p = probs.reshape(c, -1)
    lab = _lab(rgb).reshape(-1, 3) / 100.0
    ys, xs = np.divmod(np.arange(h * w), w)
    cols = [np.ones(h * w), ys / h, xs / w, *p, *(p * p), *lab.T, *(lab * lab).T]
    sums = np.stack([np.bincount(flat, weights=v, minlength=n) for v in cols], 1)
    node = tree.accumulate(sums)
    area = node[:, :1]
    m = node[:, 1:] / area
    cy, cx = m[:, 0:1], m[:, 1:2]
    pm, pv = m[:, 2 : 2 + c], m[:, 2 + c : 2 + 2 * c]
    lm, lv = m[:, 2 + 2 * c : 5 + 2 * c], m[:, 5 + 2 * c :]
    pstd = np.sqrt(np.maximum(pv - pm * pm, 0))
    lstd = np.sqrt(np.maximum(lv - lm * lm, 0))
    return np.concatenate([pm, pstd, lm, lstd, np.log(area / (h * w)), cy, cx], 1).astype(np.float32)


class RegionClassifier(nn.Module):
    """The 2-layer network of Farabet et al.: node features -> class distribution (logits).

    It learns a correction to the region's mean convnet distribution (the first C features):
    the logits are its log plus the network's output, which starts at zero, so an untrained
    classifier is the plain mean and training only has to learn where the convnet errs.
    """

    def __init__(self, num_classes: int, hidden: int = 64) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.net = nn.Sequential(nn.Linear(2 * num_classes + 9, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(x[:, : self.num_classes].clamp_min(1e-6)) + self.net(x)


@per_file_version()
def _read_classifier(path: str) -> tuple[RegionClassifier, tuple[str, ...], str | None]:
    """The region classifier in ``path`` (in eval mode), its class names and the fingerprint of
    the model whose probabilities trained it."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: pickle, zip and torch errors alike
        raise InputError(f"{path}: not a readable sceneparse region classifier ({type(err).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != "sceneparse-region-classifier-v1":
        raise InputError(f"{path}: not a sceneparse region classifier")
    net = RegionClassifier(len(ckpt["class_names"]), ckpt["hidden"])
    net.load_state_dict({k: v.float() for k, v in ckpt["state_dict"].items()})
    return net.eval(), tuple(ckpt["class_names"]), ckpt.get("fingerprint")


def _entropy(d: np.ndarray) -> np.ndarray:
    return -(d * np.log(np.clip(d, 1e-12, 1))).sum(1)


@register_refiner
class PurityTree(Refiner):
    """``refine="tree"``: label by the optimal purity cover of a segmentation tree.

    Args:
        scale, sigma, min_size: Felzenszwalb parameters of the tree's leaves.
        boundary_weight: how much image gradient along a shared boundary delays a merge.
        node_cost: cost of each node of the cover, relative to the image area (favours fewer,
            larger regions).
        classifier: path of a trained region classifier (see :func:`train_region_classifier`),
            "auto" (the one shipped for the parser's model, if any), or "none" (mean scores).
        blend: weight of the cover's distribution against the pixel's own (1: cover only).
    """

    name = "tree"

    def __init__(self, scale: float = 20.0, sigma: float = 0.5, min_size: int = 10, boundary_weight: float = 2.0,
                 node_cost: float = 0.002, classifier: str = "auto", blend: float = 1.0) -> None:  # fmt: skip
        self.scale, self.sigma = positive("scale", scale), check_sigma(sigma)
        self.min_size = positive("min_size", min_size, integer=True)
        self.boundary_weight = positive("boundary_weight", boundary_weight, zero=True)
        self.node_cost = positive("node_cost", node_cost, zero=True)
        self.blend = positive("blend", blend, zero=True)
        if self.blend > 1:
            raise ConfigError(f"blend must be in [0, 1], got {blend}")
        self.classifier = str(classifier)
        self._net: RegionClassifier | None = None
        self._net_names: tuple[str, ...] | None = None
        self._fingerprint: str | None = None
        if self.classifier not in ("auto", "none"):
            self._load(Path(self.classifier))

    def _load(self, path: Path) -> None:
        if not path.is_file():
            raise NotFoundError(f"region classifier not found: {path}")
        self._net, self._net_names, self._fingerprint = _read_classifier(path)

    def bind(self, parser) -> None:
        """Pick the shipped classifier of ``parser``'s model when ``classifier="auto"``."""
        if self.classifier != "auto" or self._net is not None:
            return
        path = shipped_classifier(getattr(parser, "name", None))
        if path is not None:
            self._load(path)
        if self._net_names is not None and self._net_names != tuple(parser.class_names):
            raise ConfigError(
                f"region classifier classes {self._net_names} differ from the model's {tuple(parser.class_names)}"
            )
        model = getattr(parser, "model", None)
        if self._fingerprint and isinstance(model, nn.Module):
            stale = (str(path), model_fingerprint(model, True))
            # It still works (same classes), only less well: the model's probabilities changed. Said
            # once per classifier and model, not at every frame (refiners named in parse() bind anew).
            if stale[1] != self._fingerprint and stale not in _STALE_WARNED:
                _STALE_WARNED.add(stale)
                log.warning("the region classifier %s was trained on another model's probabilities; train one for "
                            "this model with tools/train_region_classifier.py", path)  # fmt: skip

    def distributions(self, tree: SegmentationTree, rgb: np.ndarray, probs: np.ndarray) -> np.ndarray:
        feats = node_features(tree, rgb, probs)
        c = probs.shape[0]
        if self._net is None:
            return feats[:, :c] / feats[:, :c].sum(1, keepdims=True)
        if self._net.num_classes != c:
            raise ValueError(f"region classifier predicts {self._net.num_classes} classes, the model {c}")
        with torch.inference_mode():
            return torch.softmax(self._net(torch.from_numpy(feats)), 1).numpy()

    def __call__(self, rgb: np.ndarray, probs: np.ndarray, depth: np.ndarray | None = None) -> np.ndarray:
        probs = check_probs(probs, rgb)
        tree = build_tree(rgb, self.scale, self.sigma, self.min_size, self.boundary_weight)
        dist = self.distributions(tree, rgb, probs)
        area = tree.accumulate(np.bincount(tree.leaves.ravel(), minlength=tree.num_leaves)[:, None].astype(float))[:, 0]
        cost = area / tree.leaves.size * _entropy(dist) + self.node_cost
        cover = optimal_cover(tree, cost)
        leaf_node = np.empty(tree.num_leaves, np.int64)
        for k in cover:  # every leaf under a cover node takes that node
            stack = [k]
            while stack:
                j = stack.pop()
                if j < tree.num_leaves:
                    leaf_node[j] = k
                else:
                    stack.extend(tree.children[j].tolist())
        out = dist[leaf_node][tree.leaves].transpose(2, 0, 1).astype(np.float32)
        if self.blend < 1:
            out = self.blend * out + (1 - self.blend) * probs
        return out


def train_region_classifier(
    parser, dataset, out: str | Path, tree_params: dict | None = None, epochs: int = 30, hidden: int = 64,
    lr: float = 0.003, weight_decay: float = 0.01, balance_power: float = 0.5, seed: int = 0, progress: bool = True,
) -> dict:  # fmt: skip
    """Train the region classifier of :class:`PurityTree` for ``parser`` on ``dataset``'s regions.

    Every node of every image's tree is a sample: its features in, the distribution of its true
    (labelled) pixels as the soft target, weighted by the log of its labelled area. Classes are
    weighted (median frequency / frequency) ** ``balance_power``, as the convnet's loss, so that
    the classifier does not trade rare classes for frequent ones. Writes ``out`` and returns the
    training log.
    """
    from tqdm import tqdm

    from sceneparse.io import atomic_write
    from sceneparse.losses import balanced_class_weights

    tree_params = dict(tree_params or {})
    refiner = PurityTree(**tree_params, classifier="none")
    c = parser.num_classes
    ignore = parser.info.ignore_index
    feats, targets, weights = [], [], []
    class_pixels = np.zeros(c)
    for i in tqdm(range(len(dataset)), desc="regions", disable=not progress, dynamic_ncols=True):
        sample = dataset[i]
        rgb, label = sample["image"], np.asarray(sample["label"]).astype(np.int64)
        probs = parser.predict_probs(rgb, depth=sample.get("depth"))
        tree = build_tree(rgb, refiner.scale, refiner.sigma, refiner.min_size, refiner.boundary_weight)
        valid = label != ignore
        class_pixels += np.bincount(label[valid], minlength=c)[:c]
        onehot = np.zeros((label.size, c))
        onehot[np.flatnonzero(valid), label[valid]] = 1
        counts = np.stack([np.bincount(tree.leaves.ravel(), weights=onehot[:, k], minlength=tree.num_leaves)
                           for k in range(c)], 1)  # fmt: skip
        node_counts = tree.accumulate(counts)
        total = node_counts.sum(1)
        keep = total > 0
        feats.append(node_features(tree, rgb, probs)[keep])
        targets.append((node_counts[keep] / total[keep, None]).astype(np.float32))
        weights.append(np.log1p(total[keep]).astype(np.float32))
    x, y, w = (torch.from_numpy(np.concatenate(a)) for a in (feats, targets, weights))
    freqs = class_pixels / class_pixels.sum()
    class_w = balanced_class_weights(freqs, balance_power) if balance_power else torch.ones(c)
    torch.manual_seed(seed)
    net = RegionClassifier(c, hidden)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    history = []
    for epoch in range(epochs):
        perm = torch.randperm(len(x))
        total_loss = 0.0
        for start in range(0, len(x), 4096):
            idx = perm[start : start + 4096]
            loss = (-(y[idx] * class_w * torch.log_softmax(net(x[idx]), 1)).sum(1) * w[idx]).sum() / w[idx].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total_loss += loss.item() * len(idx)
        history.append(total_loss / len(x))
        log.info("region classifier epoch %d: loss %.4f", epoch, history[-1])
    state = {
        "format": "sceneparse-region-classifier-v1",
        "class_names": list(parser.class_names),
        "hidden": hidden,
        "tree_params": tree_params,
        "state_dict": {k: v.half() for k, v in net.state_dict().items()},
        "samples": len(x),
        "balance_power": balance_power,
        "fingerprint": model_fingerprint(parser.model, True) if isinstance(parser.model, nn.Module) else None,
        "loss": history,
    }
    atomic_write(out, lambda p: torch.save(state, p))
    return {"samples": len(x), "loss": history}
