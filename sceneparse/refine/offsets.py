"""Boundary offsets: labels near a class boundary taken from inside their own region.

After SegFix (Yuan, Xie, Chen, Wang, ECCV 2020). A small head reads the model's own multiscale
features (frozen) and the image, and predicts for every pixel whether it lies within a few
pixels of a class boundary, and in which of 8 directions the interior of its own region lies.
It is trained from ground-truth label maps alone (the distance transform of each class's mask),
never from the convnet's predictions, so it does not learn the convnet's over-confidence on the
images the convnet was trained on. At parse time every pixel the head puts on a boundary takes
the class probabilities of the pixel ``distance`` pixels away towards that interior, where the
convnet's labels are reliable: a label that spills across a boundary is pulled back.

The head is tied to the features of the model it was trained with (a fingerprint of that
model's weights is in its file); :func:`train_offset_head` trains one for any multiscale model.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from sceneparse.errors import ConfigError, InputError, NotFoundError
from sceneparse.io import per_file_version
from sceneparse.refine.base import REFINER_WEIGHTS, Refiner, check_probs, model_fingerprint, positive, register_refiner

__all__ = ["BoundaryOffsets", "OffsetHead", "offset_targets", "model_fingerprint", "shipped_head", "train_offset_head"]

log = logging.getLogger(__name__)

FORMAT = "sceneparse-offset-head-v1"
DIRECTIONS = 8
#: Unit vectors (dy, dx) of the direction bins, counter-clockwise from +x (image axes).
_ANGLES = np.arange(DIRECTIONS) * 2 * np.pi / DIRECTIONS
UNIT = np.stack([np.sin(_ANGLES), np.cos(_ANGLES)], 1).astype(np.float32)


class OffsetHead(nn.Module):
    """Boundary logit and 8 direction logits per pixel, at the image's size, from the model's
    features (at its output stride) and the image itself.

    ``image_layers`` 3x3 convolutions (16 channels) read the image at full resolution; after the
    fusion, one 3x3 convolution per entry of ``dilations`` widens the full-resolution view.
    """

    def __init__(self, in_features: int, width: int = 32, fused: int = 24, stride: int = 4, image_layers: int = 1,
                 dilations: tuple[int, ...] = (2,)) -> None:  # fmt: skip
        super().__init__()
        self.in_features, self.width, self.fused, self.stride = in_features, width, fused, stride
        self.image_layers, self.dilations = int(image_layers), tuple(int(d) for d in dilations)
        if self.image_layers < 1 or any(d < 1 for d in self.dilations):
            raise ValueError(f"image_layers and dilations must be >= 1, got {image_layers} and {dilations}")

        def block(cin, cout, k=3, dilation=1):
            pad = dilation * (k // 2)
            conv = nn.Conv2d(cin, cout, k, padding=pad, dilation=dilation, bias=False)
            return [conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.reduce = nn.Sequential(*block(in_features, width, 1), *block(width, width))
        self.image = nn.Sequential(*block(3, 16), *(m for _ in range(self.image_layers - 1) for m in block(16, 16)))
        widen = (m for d in self.dilations for m in block(fused, fused, dilation=d))
        self.fuse = nn.Sequential(*block(width + 16, fused), *widen, nn.Conv2d(fused, 1 + DIRECTIONS, 1))

    def forward(self, rgb: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """``rgb`` Nx3xHxW in [0, 1], ``features`` NxFx(H/stride)x(W/stride) (rounded up)."""
        h, w = rgb.shape[-2:]
        g = F.interpolate(self.reduce(features), scale_factor=self.stride, mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([g[..., :h, :w], self.image(rgb - 0.45)], 1))


def offset_targets(label: np.ndarray, ignore_index: int = 255, band: float = 4, direction_band: float = 8):
    """The head's targets from an HxW label map: (boundary, direction), uint8 HxW each.

    ``boundary`` is 1 within ``band`` pixels of another class (the distance transform of the
    pixel's class mask), 0 elsewhere, ``ignore_index`` where unlabelled. ``direction`` is the bin
    (0..7, see :data:`UNIT`) of the gradient of that distance, which points into the region,
    within ``direction_band`` pixels of a boundary; ``ignore_index`` elsewhere.
    """
    h, w = label.shape
    dist = np.full((h, w), np.inf, np.float32)
    dy, dx = np.zeros((h, w), np.float32), np.zeros((h, w), np.float32)
    for c in np.unique(label):
        if c == ignore_index:
            continue
        mask = (label == c).astype(np.uint8)
        d = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
        gy, gx = np.gradient(cv2.GaussianBlur(d, (5, 5), 0))
        inside = mask > 0
        dist[inside], dy[inside], dx[inside] = d[inside], gy[inside], gx[inside]
    labelled = label != ignore_index
    boundary = np.where(labelled, dist <= band, ignore_index).astype(np.uint8)
    bins = np.round(np.arctan2(dy, dx) / (2 * np.pi / DIRECTIONS)).astype(np.int64) % DIRECTIONS
    defined = labelled & (dist <= direction_band) & (np.hypot(dx, dy) > 1e-3)
    return boundary, np.where(defined, bins, ignore_index).astype(np.uint8)


def _for_inference(head: OffsetHead) -> OffsetHead:
    """``head`` in eval mode with each batch norm folded into its convolution, in channels-last
    layout: the same outputs (to 1e-5), about half the time on the CPU (35 to 18 ms at 320x240)."""
    head.eval()
    for name in ("reduce", "image", "fuse"):
        layers, folded = list(getattr(head, name)), []
        for layer in layers:
            if isinstance(layer, nn.BatchNorm2d) and folded and isinstance(folded[-1], nn.Conv2d):
                folded[-1] = fuse_conv_bn_eval(folded[-1], layer)
            else:
                folded.append(layer)
        setattr(head, name, nn.Sequential(*folded))
    return head.to(memory_format=torch.channels_last)


def shipped_head(model_name: str | None) -> Path | None:
    """The boundary-offset head shipped for the shipped model ``model_name``, if there is one."""
    path = REFINER_WEIGHTS / f"{model_name}-offsets.pt"
    return path if model_name and path.is_file() else None


@per_file_version()
def _read_head(path: str, device: str) -> tuple[OffsetHead, str, str | None]:
    """The head in ``path`` ready for inference on ``device``, its model's fingerprint and name."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: pickle, zip and torch errors alike
        raise InputError(f"{path}: not a readable sceneparse boundary-offset head ({type(err).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise InputError(f"{path}: not a sceneparse boundary-offset head")
    net = OffsetHead(**ckpt["head"])
    net.load_state_dict({k: v.float() for k, v in ckpt["state_dict"].items()})
    return _for_inference(net).to(device), ckpt["fingerprint"], ckpt.get("model")


def _model_features(parser, rgb: np.ndarray, depth: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The image as the head takes it (1x3xHxW in [0, 1]) and the model's frozen features."""
    from sceneparse.models.pyramid import pad_to_multiple

    model = parser.model
    x = parser.network_input(rgb, depth if parser.in_channels == 4 else None)  # RGB models ignore depth
    h, w = -(-x.shape[2] // parser.output_stride), -(-x.shape[3] // parser.output_stride)
    with torch.inference_mode():
        features = model.features(pad_to_multiple(x, model.size_divisor)[0])[..., :h, :w]
    return x[:, :3].clone(), features.clone()


def _check_model(parser) -> None:
    model = parser.model
    if not (callable(getattr(model, "features", None)) and hasattr(model, "size_divisor")):
        onnx = " (an exported ONNX graph gives class scores only: run the .pt model for offsets)"
        raise InputError(f"boundary offsets read a multiscale model's features; {type(model).__name__} has none"
                         + (onnx if "Onnx" in type(model).__name__ else ""))  # fmt: skip


@register_refiner
class BoundaryOffsets(Refiner):
    """Pixels on a predicted class boundary take the probabilities ``distance`` pixels inside
    their own region (see the module's docstring).

    Args:
        distance: how far (pixels) towards the region's interior a boundary pixel looks.
        threshold: the head's boundary probability above which a pixel moves.
        flip: average the head's boundary probability and direction over the image and its
            mirror image (the head runs twice: about twice the time).
        head: the trained head (see :func:`train_offset_head`): a path, or "auto", the one
            shipped for the parser's model. The refiner must be bound to the parser whose
            model's features the head reads: ``parser.parse(rgb, refine=["offsets"])`` does it.
    """

    name = "offsets"

    def __init__(self, distance: float = 3.0, threshold: float = 0.3, flip: bool = True, head: str = "auto") -> None:
        self.distance = positive("distance", distance)
        if not isinstance(flip, bool):
            raise ConfigError(f"flip must be true or false, got {flip!r}")
        self.flip = flip
        self.threshold = positive("threshold", threshold, zero=True)
        if self.threshold >= 1:
            raise ConfigError(f"threshold must be in [0, 1), got {threshold}")
        self.head = str(head)
        self._net: OffsetHead | None = None
        self._fingerprint: str | None = None
        self._model_name: str | None = None  # the model the head was trained for
        self._path: Path | None = None  # the head's file
        self._parser = None
        if self.head != "auto":
            self._load(Path(self.head))

    def _load(self, path: Path, device: str | torch.device = "cpu") -> None:
        if not path.is_file():
            raise NotFoundError(f"boundary-offset head not found: {path}")
        self._path = path
        self._net, self._fingerprint, self._model_name = _read_head(path, str(torch.device(device)))

    def bind(self, parser) -> None:
        """Read ``parser``'s model's features; with ``head="auto"``, load its shipped head."""
        _check_model(parser)
        path = self._path
        if self.head == "auto" and (self._net is None or self._model_name != parser.name):
            path = shipped_head(parser.name)
            if path is None:
                raise ConfigError(f"no boundary-offset head is shipped for model {parser.name or 'from a file'}: "
                                 "train one with tools/train_offsets.py and pass head=PATH (on the command line: "
                                 "--refine-config FILE with offsets: {head: PATH})")  # fmt: skip
        self._load(path, parser.device)  # the cached head for the parser's device
        if model_fingerprint(parser.model) != self._fingerprint:
            raise ConfigError(f"the boundary-offset head was trained on the features of another model "
                             f"({self._model_name}); train one for this model with tools/train_offsets.py")  # fmt: skip
        self._parser = parser

    def predict(self, rgb: np.ndarray, depth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """HxW boundary probability and HxWx2 unit direction (dy, dx) into the pixel's region."""
        if self._parser is None:
            raise RuntimeError("boundary offsets read the model's features: bind the refiner to the parser "
                               "(parser.parse(rgb, refine=['offsets']) does it)")  # fmt: skip
        boundary, direction = self._predict(rgb, depth)
        if self.flip:  # the mirror image's answer, mirrored back (its direction's x negated)
            mirror = (np.ascontiguousarray(a[:, ::-1]) if a is not None else None for a in (rgb, depth))
            b, d = self._predict(*mirror)
            boundary, direction = (boundary + b[:, ::-1]) / 2, direction + d[:, ::-1] * np.float32([1, -1])
            direction /= np.linalg.norm(direction, axis=2, keepdims=True) + 1e-6
        return boundary, direction

    def _predict(self, rgb: np.ndarray, depth: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        image, features = _model_features(self._parser, rgb, depth)
        image, features = (t.contiguous(memory_format=torch.channels_last) for t in (image, features))
        with torch.inference_mode():
            out = self._net(image, features)[0].float().cpu()
        boundary = torch.sigmoid(out[0]).numpy()
        # the expected direction over the 8 bins, normalised: smoother than the arg-max bin
        v = torch.einsum("khw,kd->hwd", torch.softmax(out[1:], 0), torch.from_numpy(UNIT)).numpy()
        return boundary, v / (np.linalg.norm(v, axis=2, keepdims=True) + 1e-6)

    def __call__(self, rgb: np.ndarray, probs: np.ndarray, depth: np.ndarray | None = None) -> np.ndarray:
        probs = check_probs(probs, rgb)
        boundary, direction = self.predict(rgb, depth)
        h, w = boundary.shape
        ys, xs = np.nonzero(boundary > self.threshold)
        ty = np.clip(np.round(ys + self.distance * direction[ys, xs, 0]), 0, h - 1).astype(np.int64)
        tx = np.clip(np.round(xs + self.distance * direction[ys, xs, 1]), 0, w - 1).astype(np.int64)
        out = probs.copy()
        out[:, ys, xs] = probs[:, ty, tx]
        return out


def train_offset_head(parser, dataset, out: str | Path, epochs: int = 8, lr: float = 3e-3, weight_decay: float = 1e-4,
                      accumulate: int = 4, boundary_weight: float = 3.0, flip: bool = True, seed: int = 0,
                      width: int = 32, fused: int = 24, image_layers: int = 1, dilations: tuple[int, ...] = (2,),
                      progress: bool = True) -> dict:  # fmt: skip
    """Train the :class:`BoundaryOffsets` head of ``parser``'s model on ``dataset``'s label maps.

    The model stays frozen: its features of every image (and of its mirror image, with
    ``flip``) are computed once and kept in memory as float16 (about 2 MB per 320x240 image
    for the 192 features of the default network, with the image and targets). Loss per image:
    the boundary's binary cross-entropy (boundary pixels weighted ``boundary_weight``) plus the
    direction's cross-entropy near boundaries (:func:`offset_targets`); AdamW with a one-cycle
    schedule, the gradient summed over ``accumulate`` images. ``width`` and ``fused`` are the
    head's channels, ``image_layers`` and ``dilations`` its full-resolution layers
    (:class:`OffsetHead`). Writes ``out`` and returns the training log.
    """
    from tqdm import tqdm

    from sceneparse.io import atomic_write

    _check_model(parser)
    parser.model.eval()
    ignore = parser.info.ignore_index
    samples = []
    for i in tqdm(range(len(dataset)), desc="features", disable=not progress, dynamic_ncols=True):
        s = dataset[i]
        rgb, label, depth = np.asarray(s["image"]), np.asarray(s["label"]), s.get("depth")
        views = [(rgb, label, depth)]
        if flip:
            views.append((rgb[:, ::-1], label[:, ::-1], None if depth is None else depth[:, ::-1]))
        for r, lab, d in views:
            r, lab = np.ascontiguousarray(r), np.ascontiguousarray(lab).astype(np.int64)
            lab = np.where((lab >= 0) & (lab < parser.num_classes), lab, ignore).astype(np.uint8)
            _, features = _model_features(parser, r, None if d is None else np.ascontiguousarray(d))
            boundary, direction = offset_targets(lab, ignore)
            # compact in memory: the image and targets as uint8, the features as float16
            samples.append((torch.from_numpy(r), features.half().cpu(), torch.from_numpy(boundary),
                            torch.from_numpy(direction)))  # fmt: skip
    torch.manual_seed(seed)
    net = OffsetHead(samples[0][1].shape[1], width=width, fused=fused, stride=parser.output_stride,
                     image_layers=image_layers, dilations=dilations)  # fmt: skip
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * len(samples) // accumulate + 1)
    rng = np.random.default_rng(seed)
    history = []
    for epoch in range(epochs):
        net.train()
        total = 0.0
        order = rng.permutation(len(samples))
        bar = tqdm(order, desc=f"offset head, epoch {epoch + 1}/{epochs}", disable=not progress, dynamic_ncols=True)
        for j, k in enumerate(bar):
            rgb, features, boundary, direction = samples[k]
            image = rgb.permute(2, 0, 1)[None].float().div_(255)
            boundary, direction = boundary.long(), direction.long()
            logits = net(image, features.float())[0]
            known = boundary != ignore
            weight = torch.where(boundary[known] == 1, boundary_weight, 1.0)
            loss = F.binary_cross_entropy_with_logits(logits[0][known], boundary[known].float(), weight=weight)
            loss = loss + F.cross_entropy(logits[None, 1:], direction[None], ignore_index=ignore)
            (loss / accumulate).backward()
            total += loss.item()
            if j % accumulate == accumulate - 1:
                opt.step()
                opt.zero_grad()
                sched.step()
        history.append(total / len(samples))
        log.info("offset head epoch %d: loss %.4f", epoch, history[-1])
    recipe = dict(epochs=epochs, lr=lr, weight_decay=weight_decay, accumulate=accumulate,
                  boundary_weight=boundary_weight, flip=flip, seed=seed)  # fmt: skip
    shape = dict(in_features=net.in_features, width=net.width, fused=net.fused, stride=net.stride,
                 image_layers=net.image_layers, dilations=list(net.dilations))  # fmt: skip
    state = {
        "format": FORMAT,
        "model": parser.name or parser.meta.get("train_config", {}).get("name"),
        "fingerprint": model_fingerprint(parser.model),
        "head": shape,
        "state_dict": {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()},
        "images": len(samples),
        "train": recipe,
        "loss": history,
    }
    atomic_write(out, lambda p: torch.save(state, p))
    return {"images": len(samples), "loss": history}
