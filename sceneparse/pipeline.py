"""``SceneParser``: a trained model plus refiners, from a numpy frame to per-pixel labels.

Example:
    >>> from sceneparse import SceneParser
    >>> parser = SceneParser.from_pretrained("stanford-background")
    >>> result = parser.parse(np.zeros((60, 80, 3), np.uint8))
    >>> result.labels.shape, result.probs.shape
    ((60, 80), (8, 60, 80))
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import logging
import math
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from sceneparse.data.base import DatasetInfo
from sceneparse.data.depth import fill_depth
from sceneparse.engine import load_checkpoint, model_from_checkpoint, resolve_device
from sceneparse.errors import ConfigError, InputError, did_you_mean
from sceneparse.models.base import SegmentationModel, model_cfg
from sceneparse.refine import (
    REFINERS,
    Refiner,
    bind_refiners,
    build_refiners,
    load_refine_config,
    merge_refine_configs,
    shipped_refine_config,
)
from sceneparse.refine.base import class_argmax, positive
from sceneparse.tta import TestTimeAugmentation

#: Where a stream's temporal smoothing runs (``parse_stream(smooth_at=...)``): on the network's
#: output (its stride) or on the frame's full size.
SMOOTH_AT = ("network", "frame")

__all__ = ["SceneParser", "ParseResult", "SMOOTH_AT", "list_pretrained", "pretrained_path", "resolve_model",
           "REFINERS"]  # fmt: skip

log = logging.getLogger(__name__)

#: Input sizes whose calls are counted before tracing (a size is traced at its second call).
_SIZES_COUNTED = 256

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

#: Depth beyond this many metres is taken for a unit mistake (millimetres given as metres).
MAX_DEPTH_METRES = 100.0
#: How RGB-D models see missing depth readings (:attr:`SceneParser.depth_fill`).
DEPTH_FILLS = ("nearest", "inpaint", "none")


def list_pretrained() -> list[str]:
    """Names of the models shipped inside the package."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.pt"))


def pretrained_path(name: str) -> Path:
    path = WEIGHTS_DIR / f"{name}.pt"
    if not path.is_file():
        known = ", ".join(list_pretrained()) or "none"
        raise ConfigError(
            f"unknown pretrained model {name!r}{did_you_mean(name, list_pretrained())}; shipped models: {known} "
            "(or give a .pt path; "
            "the commands also take an exported .onnx)"
        )
    return path


def resolve_model(spec: str | Path) -> tuple[Path, str | None]:
    """(checkpoint path, shipped name or None) of ``spec``, a shipped model's name or a checkpoint
    path: an existing file, or anything that looks like a path (a ``.pt`` suffix or a folder
    separator), is a path; else a shipped name (an unknown one lists the shipped models). The
    one rule of every option that takes either (``--model``, ``distill_from``, ...)."""
    path = Path(spec)
    if path.is_file() or path.suffix == ".pt" or len(path.parts) > 1:
        return path, None
    return pretrained_path(str(spec)), str(spec)


@dataclass
class ParseResult:
    """Labels and class probabilities of one frame.

    Attributes:
        labels: HxW int64 class indices, the input's size.
        probs: CxHxW float32 class probabilities (they sum to 1 over C).
        class_names: the class of each index.
        palette: Cx3 uint8 class colours.
    """

    labels: np.ndarray
    probs: np.ndarray
    class_names: tuple[str, ...]
    palette: np.ndarray
    #: Position and time (seconds) of the frame in its stream (``parse_stream`` only).
    index: int | None = None
    timestamp: float | None = None
    #: Seconds the frame took in the parse step, and the temporal smoothing's part of them
    #: (``parse_stream`` only).
    seconds: float | None = None
    smoothing_seconds: float | None = None

    def colorize(self) -> np.ndarray:
        """HxWx3 uint8 colour image of the labels."""
        from sceneparse.visualize import colorize

        return colorize(self.labels, self.palette)

    def overlay(self, image: np.ndarray, alpha: float = 0.55, legend: bool = True) -> np.ndarray:
        """The labels blended over ``image`` with a legend."""
        from sceneparse.visualize import overlay

        return overlay(image, self.labels, self.palette, self.class_names, alpha, legend)


class SceneParser:
    """A trained model and the refiners applied after it.

    Args:
        model: a registered model (:class:`sceneparse.models.SegmentationModel`): BxKxHxW logits
            for BxC_inxHxW input, RGB in [0, 1] (+ depth in metres).
        info: class names and colours of the model's outputs.
        device: "cpu" (default), "cuda", "cuda:N" or "auto".

    Attributes:
        depth_fill: how RGB-D models see missing depth readings (0): "nearest" (default) fills
            them with the closest reading, as the hole-filled depth of NYU's labelled set they
            were trained on; "inpaint" smooths them in; "none" passes the zeros on.
        max_refine_pixels: refiners and smoothers see frames shrunk to at most this many
            pixels (4 MP; the probabilities are upsampled back), so that any photo fits in
            memory; 0 refines at full size.
        tta: test-time augmentation (:class:`sceneparse.tta.TestTimeAugmentation`): None
            (default) or the copies of each frame whose class probabilities are averaged,
            set from a string such as ``"flip,0.75,1.25,1.5"``.

    Threads: :meth:`parse`, :meth:`parse_file` and :meth:`predict_probs` may run in several
    threads at once on one parser (each builds its own refiners; the network's traces are
    made under a lock); set the attributes above before sharing it. A :meth:`parse_stream`
    generator, and the temporal smoother inside it, belong to one stream in one thread; while
    it runs it shares PyTorch's (process-wide) threads out between its network workers.
    """

    _depth_fill: str = "nearest"
    #: Refiners and smoothers run on frames of at most this many pixels: larger ones are shrunk
    #: for them and their probabilities upsampled back (a 24-megapixel photo with "crf" needed
    #: about 9 GB at full size). Frames up to it are refined at full size; 0: always full size.
    _max_refine_pixels: int = 4_000_000
    #: On the CPU, run the network as a frozen, optimised ``torch.jit`` trace (about a third
    #: faster here), traced for an input size the second time that size comes (about half a
    #: second, once per size) and dropped when the weights change (online adaptation). Models
    #: that are not ``traceable`` (ONNX Runtime) always run as they are. False: never trace.
    jit: bool = True
    #: Traces kept (input sizes), the least recently traced dropped first; per test-time scale.
    jit_cache_size: int = 4
    _tta: TestTimeAugmentation | None = None

    def __init__(self, model: torch.nn.Module, info: DatasetInfo, device: str | torch.device = "cpu") -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.info = info
        #: Checkpoint metadata (training config, code revision, ...); empty for a bare model.
        self.meta: dict = {}
        #: Name of the shipped model (None for a checkpoint file or a bare model).
        self.name: str | None = None
        self._told_working_size = False
        cfg = model_cfg(model)  # what the model declares about itself (models/base.py)
        self.in_channels = cfg.in_channels
        self.output_stride = cfg.output_stride
        self._traces: dict = {}  # (coarse, input shape) -> frozen trace
        self._trace_uses: dict = {}  # (coarse, input shape) -> calls seen
        self._traced_weights = None  # the weights' version when the traces were made
        self._trace_lock = threading.Lock()  # network workers: one traces, the others wait
        if cfg.num_classes != info.num_classes:
            raise ConfigError(f"model has {cfg.num_classes} outputs but {info.num_classes} class names")

    @classmethod
    def from_pretrained(cls, name: str = "stanford-background", device: str | torch.device = "cpu") -> SceneParser:
        """A shipped model by name (see :func:`list_pretrained`) or a checkpoint path."""
        path, parser_name = resolve_model(name)
        parser = cls.from_checkpoint(path, device)
        parser.name = parser_name
        return parser

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu") -> SceneParser:
        ckpt = load_checkpoint(path)
        model, info = model_from_checkpoint(ckpt)
        parser = cls(model, info, device)
        parser.meta = ckpt["meta"]
        return parser

    @classmethod
    def from_onnx(cls, path: str | Path, threads: int | None = None, providers=None) -> SceneParser:
        """A model exported by ``sceneparse export`` (:func:`sceneparse.export.export_onnx`), run
        with ONNX Runtime (the ``onnx`` extra) behind the same parse, refiners, smoothers and
        sinks; ``threads``: ONNX Runtime's (None: PyTorch's number)."""
        from sceneparse.export import OnnxSegmentationModel

        model = OnnxSegmentationModel(path, threads, providers)
        parser = cls(model, model.info, "cpu")
        parser.meta = model.metadata.get("meta") or {}
        parser.name = model.metadata.get("model_name")
        return parser

    @property
    def tta(self) -> TestTimeAugmentation | None:
        return self._tta

    @tta.setter
    def tta(self, spec) -> None:
        tta = TestTimeAugmentation.parse(spec)
        self._tta = None if tta is not None and tta.copies == 1 else tta  # the frame alone: the plain path

    @property
    def depth_fill(self) -> str:
        return self._depth_fill

    @depth_fill.setter
    def depth_fill(self, method: str) -> None:
        if method not in DEPTH_FILLS:  # checked here: a hole-free frame would never reach the fill
            raise ConfigError(f"depth_fill must be one of {', '.join(DEPTH_FILLS)}, got {method!r}")
        self._depth_fill = method

    @property
    def max_refine_pixels(self) -> int:
        return self._max_refine_pixels

    @max_refine_pixels.setter
    def max_refine_pixels(self, pixels: int | None) -> None:
        pixels = positive("max_refine_pixels", 0 if pixels is None else pixels, integer=True, zero=True)  # 4e6 is fine
        if 0 < pixels < 64:
            raise ConfigError(f"max_refine_pixels must be 0 (full size) or at least 64 (8x8), got {pixels}")
        self._max_refine_pixels = pixels

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.info.class_names

    @property
    def palette(self) -> np.ndarray:
        return self.info.palette()

    @property
    def num_classes(self) -> int:
        return self.info.num_classes

    # ------------------------------------------------------------------ input checks

    def _check_rgb(self, rgb) -> np.ndarray:
        rgb = _as_array(rgb, "rgb", "an HxWx3 uint8 RGB image")
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise InputError(f"rgb must have shape HxWx3, got {rgb.shape}{_shape_hint(rgb.shape)}")
        if rgb.dtype != np.uint8:
            raise InputError(f"rgb must be uint8 in [0, 255], got dtype {rgb.dtype}{_dtype_hint(rgb.dtype)}")
        if min(rgb.shape[:2]) < 8:
            raise InputError(f"image of {rgb.shape[0]}x{rgb.shape[1]} pixels is too small to parse (8x8 at least)")
        return rgb

    def _check_depth(self, depth, shape) -> np.ndarray | None:
        if depth is None:
            if self.in_channels == 4:
                raise InputError(f"no depth given, but {self.name or 'this model'} is an RGB-D model: pass depth "
                                 "(HxW, metres) to parse(), or a folder of depth images to label --depth")  # fmt: skip
            return None
        if self.in_channels != 4:
            raise InputError("depth was given, but this model takes RGB only (use an RGB-D model)")
        depth = _as_array(depth, "depth", "an HxW float array of metres")
        if depth.ndim == 3 and depth.shape[2] == 1:  # HxWx1, as some readers give a one-channel image
            depth = depth[..., 0]
        if depth.shape != tuple(shape):
            raise InputError(f"depth must be HxW = {tuple(shape)} like the image, got {depth.shape}")
        if not np.issubdtype(depth.dtype, np.floating):
            raise InputError(
                f"depth must be float metres, got dtype {depth.dtype} (16-bit millimetres? divide by 1000)"
            )
        depth = np.nan_to_num(depth.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        if depth.min() < 0:
            raise InputError("depth has negative values; expected metres, 0 for no reading")
        if depth.max() > MAX_DEPTH_METRES:
            raise InputError(f"depth reaches {depth.max():.0f}, too far for metres: millimetres? divide by 1000")
        if self.depth_fill != "none" and not depth.all():
            depth = fill_depth(depth, self.depth_fill)
        return depth

    # ------------------------------------------------------------------ parsing

    def check_inputs(self, rgb, depth=None) -> tuple[np.ndarray, np.ndarray | None]:
        """``rgb`` (HxWx3 uint8) and ``depth`` (HxW metres or None) as :meth:`parse` takes them,
        checked against this model (a clear :class:`~sceneparse.errors.InputError` otherwise)."""
        rgb = self._check_rgb(rgb)
        return rgb, self._check_depth(depth, rgb.shape[:2])

    def network_input(self, rgb, depth=None) -> torch.Tensor:
        """The network's 1xC_inxHxW input for one frame, after :meth:`check_inputs`: RGB in [0, 1],
        then depth in metres, on :attr:`device`; what :meth:`logits` takes."""
        rgb, depth = self.check_inputs(rgb, depth)
        return self._input_tensor([rgb], [depth])

    def _probs(self, rgb: np.ndarray, depth: np.ndarray | None) -> torch.Tensor:
        return self._probs_batch([rgb], [depth])[0]

    def _probs_batch(self, rgbs: list[np.ndarray], depths: list, coarse: bool = False) -> torch.Tensor:
        """NxCxHxW probabilities of checked frames of one size (depths all None or all arrays);
        with ``coarse``, at the network's output stride (see :meth:`_coarse_result`); with
        :attr:`tta`, the mean over its copies of the frames (never coarse)."""
        x = self._input_tensor(rgbs, depths)
        if self._tta is not None:
            return self._tta.probs(self.logits, x)
        net = self._network(x, coarse)
        with torch.inference_mode():
            logits = net(x)
            if coarse:  # the cells that cover the frame (the padding's own are dropped)
                s = self.output_stride
                logits = logits[..., : -(-x.shape[2] // s), : -(-x.shape[3] // s)]
            return torch.softmax(logits.float(), dim=1)

    def _input_tensor(self, rgbs: list[np.ndarray], depths: list) -> torch.Tensor:
        """The network's NxC_inxHxW input on the device: RGB in [0, 1], then depth in metres."""
        x = torch.from_numpy(np.stack(rgbs)).to(self.device).permute(0, 3, 1, 2).float().div_(255)
        if depths[0] is not None:
            x = torch.cat([x, torch.from_numpy(np.stack(depths)).to(self.device)[:, None]], dim=1)
        return x

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """NxCxHxW class scores of the network (no test-time augmentation) for an input as
        :meth:`network_input` gives it."""
        net = self._network(x)  # outside inference mode: it may trace
        with torch.inference_mode():
            return net(x)

    @property
    def has_coarse(self) -> bool:
        """The model gives its logits before the final upsampling (``forward_coarse``)."""
        method = getattr(type(self.model), "forward_coarse", None)
        return method is not None and method is not SegmentationModel.forward_coarse

    def _coarse_result(self, probs: np.ndarray, shape: tuple[int, int]) -> ParseResult:
        """The result at the frame's ``shape`` from CxH'xW' probabilities at the output stride:
        the probabilities upsampled as ``forward`` upsamples the logits (bilinear, then cropped),
        and their argmax."""
        s = self.output_stride
        c, hc, wc = probs.shape
        full = np.empty((c, hc * s, wc * s), np.float32)
        for k in range(c):  # OpenCV's bilinear, a channel at a time: several times torch's speed
            cv2.resize(probs[k], (wc * s, hc * s), dst=full[k], interpolation=cv2.INTER_LINEAR)
        full = full[:, : shape[0], : shape[1]]
        # Where the 3x3 cells around a cell share one winning class, each pixel of the cell (a
        # convex combination of its 4 nearest cells) has that class too: the argmax over classes,
        # the costly part, runs only on the pixels near a change of class.
        coarse = class_argmax(probs)
        kernel = np.ones((3, 3), np.uint8)
        mixed = cv2.dilate(coarse, kernel) != cv2.erode(coarse, kernel)
        labels = cv2.resize(coarse, (wc * s, hc * s), interpolation=cv2.INTER_NEAREST)[: shape[0], : shape[1]]
        mixed = cv2.resize(mixed.astype(np.uint8), (wc * s, hc * s), interpolation=cv2.INTER_NEAREST)
        mixed = mixed[: shape[0], : shape[1]].astype(bool)
        if mixed.any():
            labels[mixed] = class_argmax(full[:, mixed])
        return ParseResult(labels.astype(np.int64), np.ascontiguousarray(full), self.class_names, self.palette)

    def _network(self, x: torch.Tensor, coarse: bool = False):
        """The callable that runs the network on ``x``: a frozen trace for its size on the CPU
        (see :attr:`jit`), else the model itself (``forward_coarse`` with ``coarse``)."""
        model = self.model
        eager = model.forward_coarse if coarse else model
        if not (self.jit and self.device.type == "cpu" and getattr(model, "traceable", False)) or model.training:
            return eager
        weights = sum(t._version for t in itertools.chain(model.parameters(), model.buffers()))
        if weights != self._traced_weights:
            if self._traces:  # the weights change between calls (online adaptation): stay eager
                log.debug("the model's weights changed after tracing: running it untraced from now on")
                self._traces.clear()
                self.jit = False
                return eager
            self._traced_weights = weights
        key = (coarse, tuple(x.shape), x.dtype)
        with self._trace_lock:
            net = self._traces.get(key)
            if net is not None:
                return net
            if not self.jit:
                return eager
            uses = self._trace_uses.pop(key, 0) + 1
            if uses < 2:  # a size seen once (a single photo) is not worth half a second of tracing
                self._trace_uses[key] = uses
                if len(self._trace_uses) > _SIZES_COUNTED:  # photos of many sizes: forget the oldest
                    self._trace_uses.pop(next(iter(self._trace_uses)))
                return eager
            try:
                net = _trace(model, x, coarse)
            except Exception as err:  # a model the tracer cannot follow: run it as it is
                log.warning("tracing %s failed, running it untraced: %s", type(model).__name__, err)
                self.jit = False
                return eager
            if len(self._traces) >= self.jit_cache_size * (len(self._tta.scales) if self._tta else 1):
                self._traces.pop(next(iter(self._traces)))
            self._traces[key] = net
            return net

    def _result(self, rgb: np.ndarray, depth: np.ndarray | None, probs_t: torch.Tensor, refiners) -> ParseResult:
        """The labels of one frame from its convnet probabilities, after ``refiners``."""
        if not refiners:
            # torch.max over the class axis is several times faster than numpy's or torch's
            # argmax there (measured: 1.6 ms against 3.2 and 16 ms for 8x240x320 on 2 threads).
            labels = torch.max(probs_t, dim=0).indices.cpu().numpy()
            return ParseResult(labels, probs_t.cpu().numpy(), self.class_names, self.palette)
        return self._labelled(self._refined(self._working(rgb, depth), probs_t, refiners)[0])

    def _working_size(self, shape: tuple[int, int]) -> tuple[int, int] | None:
        """(H, W) at which refiners and smoothers run on a frame of ``shape``: None (full size)
        up to :attr:`max_refine_pixels`, else the frame shrunk to that many pixels."""
        h, w = shape
        if not self.max_refine_pixels or h * w <= self.max_refine_pixels:
            return None
        scale = math.sqrt(self.max_refine_pixels / (h * w))
        return max(8, int(h * scale)), max(8, int(w * scale))

    def _working(self, rgb: np.ndarray, depth: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """The image and depth that refiners and smoothers see: the frame itself, or above
        :attr:`max_refine_pixels` the frame shrunk (area average; depth: nearest reading)."""
        size = self._working_size(rgb.shape[:2])
        if size is None:
            return rgb, depth
        if not self._told_working_size:
            log.info("refining %dx%d images at %dx%d (max_refine_pixels=%d), the probabilities upsampled to the "
                     "full size: memory stays bounded for any photo", rgb.shape[1], rgb.shape[0], size[1], size[0],
                     self.max_refine_pixels)  # fmt: skip
            self._told_working_size = True
        small = cv2.resize(rgb, size[::-1], interpolation=cv2.INTER_AREA)
        return small, None if depth is None else cv2.resize(depth, size[::-1], interpolation=cv2.INTER_NEAREST)

    @staticmethod
    def _refined(work, probs_t: torch.Tensor, refiners, smoother=None) -> tuple[np.ndarray, float | None]:
        """(CxHxW probabilities at the frame's size, seconds of the smoothing or None) after
        ``refiners`` and ``smoother``, run on ``work`` (the :meth:`_working` image and depth)
        with the probabilities shrunk to its size and the result upsampled (bilinear) back."""
        rgb, depth = work
        full = tuple(probs_t.shape[1:])
        shrunk = rgb.shape[:2] != full
        if shrunk:
            probs_t = torch.nn.functional.interpolate(probs_t[None], size=rgb.shape[:2], mode="area")[0]
        probs = probs_t.cpu().numpy()
        for refiner in refiners:
            probs = refiner(rgb, probs, depth=depth)
        seconds = None
        if smoother is not None:
            t = time.perf_counter()
            probs = smoother.update(rgb, probs, depth)
            seconds = time.perf_counter() - t
        if shrunk:
            small = torch.from_numpy(np.ascontiguousarray(probs, dtype=np.float32))[None]
            probs = torch.nn.functional.interpolate(small, size=full, mode="bilinear", align_corners=False)[0].numpy()
        return probs, seconds

    def _labelled(self, probs: np.ndarray) -> ParseResult:
        labels = torch.max(torch.from_numpy(probs), dim=0).indices.numpy()
        return ParseResult(labels, probs, self.class_names, self.palette)

    def refiners(self, refine, config: dict | None = None) -> tuple[Refiner, ...]:
        """``refine`` (names, mappings, (name, params) pairs or instances; see :meth:`parse`) as
        refiners bound to this model (its shipped region classifier, boundary-offset head, ...).

        A refiner given by name or with parameters takes, under its own parameters and those of
        ``config`` (a :func:`~sceneparse.refine.load_refine_config` table, or the YAML file's
        path), the parameters chosen
        for this shipped model (:func:`~sceneparse.refine.shipped_refine_config`), then its
        defaults; an instance is used as it is.
        """
        if not refine:
            return ()
        if isinstance(config, (str, Path)):  # a refiner config file's path
            config = load_refine_config(config)
        elif config is not None and not isinstance(config, dict):
            raise ConfigError(f"config must be a {{name: params}} table or a refiner config file, got {config!r}")
        table = merge_refine_configs(shipped_refine_config(self.name), config)
        return tuple(bind_refiners(build_refiners(refine, table), self))

    def predict_probs(self, rgb: np.ndarray, depth: np.ndarray | None = None) -> np.ndarray:
        """CxHxW float32 class probabilities of the raw convnet (no refinement)."""
        return self._probs(*self.check_inputs(rgb, depth)).cpu().numpy()

    def parse(self, rgb: np.ndarray, depth: np.ndarray | None = None, refine=()) -> ParseResult:
        """Label every pixel of ``rgb`` (HxWx3 uint8, RGB order).

        Args:
            rgb: the image: a numpy array, a PIL image or a CPU torch tensor, HxWx3 uint8, in RGB
                order (OpenCV's ``imread`` gives BGR: ``sceneparse.io.read_image`` reads RGB).
            depth: HxW float metres (0 = no reading), for RGB-D models only.
            refine: refiners applied in order after the convnet: names (see :data:`REFINERS`),
                ``{"name": ..., **params}`` mappings or refiner instances.
        """
        refiners = self.refiners(refine)
        rgb, depth = self.check_inputs(rgb, depth)
        return self._result(rgb, depth, self._probs(rgb, depth), refiners)

    def parse_stream(self, frames, temporal=True, refine=(), batch_size: int | None = None, smooth_at: str = "network",
                     workers: int | None = None, **temporal_params):  # fmt: skip
        """Label a stream of frames in order, with causal temporal smoothing.

        Args:
            frames: an iterable of HxWx3 uint8 RGB arrays, of (rgb, depth) pairs, or of
                :class:`sceneparse.sources.Frame` (see :func:`sceneparse.sources.open_source`).
                With ``workers`` or ``batch_size`` above 1, frames are taken ahead of the results
                (the network runs on the next while the previous is smoothed): yield a new array
                per frame, never one buffer refilled in place.
            temporal: a smoother's name (see :func:`sceneparse.refine.temporal.list_smoothers`):
                True is :data:`~sceneparse.refine.temporal.DEFAULT_METHOD` ("flow-superpixels":
                superpixel voting, then optical-flow propagation), "flow" (the fastest),
                "superpixels" (Couprie et al.'s matching of superpixels over time); False or
                "none" for per-frame parsing; or a smoother instance.
            refine: per-frame refiners, applied before the temporal smoothing.
            batch_size: frames run through the convnet at once (consecutive frames of one size;
                the smoothing stays in frame order). None: 8 on a GPU, 1 on the CPU, where
                batches do not raise the throughput and only add latency. A batch waits for its
                frames, so keep 1 for the lowest latency on a live camera.
            smooth_at: where the temporal smoothing runs: ``"network"`` (default), on the class
                probabilities at the network's output stride (a quarter of the frame's size for
                the multiscale models), upsampled to the frame's size once smoothed; or
                ``"frame"``, on the probabilities upsampled to the frame's size first (several
                times the work, the labels within a tenth of a point of mean IoU of each other
                on CamVid: ``docs/BENCHMARKS.md``). Models without ``forward_coarse`` and
                streams with per-frame ``refine`` are smoothed at the frame's size.
            workers: frames (runs of ``batch_size``) in the network at once, each in its own thread
                with PyTorch's threads shared out between them, while the frames before them
                are smoothed in order. None: 2 on a CPU with 2 threads or more (on 2 cores, two
                single-threaded network calls side by side leave fewer threads idle than one call
                on two threads beside the smoothing, decoding and encoding), 1 on a GPU. The
                labels are the same, in the same order; the probabilities differ by float
                rounding (about 1e-6: convolutions summed on fewer threads, in another order).
                PyTorch's thread count is the process's: while such a stream runs, other
                PyTorch work in the process gets the workers' share.
            temporal_params: parameters of the smoother (see :mod:`sceneparse.refine.temporal`).

        Yields a :class:`ParseResult` per frame, with ``index`` and ``timestamp`` set. A frame's
        result depends only on it and the frames before it.
        """
        for _, result in self.parse_frames(frames, temporal, refine, batch_size, smooth_at=smooth_at, workers=workers,
                                           **temporal_params):  # fmt: skip
            yield result

    def parse_frames(self, frames, temporal=True, refine=(), batch_size: int | None = None, on_error=None,
                     smooth_at: str = "network", workers: int | None = None, **temporal_params):  # fmt: skip
        """The parse step of the frame loop: ``(frame, result)`` per frame, in order.

        As :meth:`parse_stream` (same arguments), and: the smoother starts afresh where a
        frame's ``sequence`` differs from the previous frame's; each result carries the seconds
        its frame took (its share of the convnet batch, the refiners and the smoothing) in
        ``seconds`` and the smoothing's own in ``smoothing_seconds``. ``on_error(frame, err)``,
        when given, receives the frames whose input is invalid (wrong shape, too small, depth
        of the wrong scale; an RGB-D model's frame whose depth could not be read, see
        ``Frame.extra["depth_error"]``) and the loop goes on; without it they raise. An RGB
        model parses frames without their depth, logging a warning once. The smoother is closed
        (its threads joined) when the frames end or the generator is closed.
        """
        from sceneparse.refine.temporal import build_smoother

        _check_frames_iterable(frames)
        smoother = build_smoother(temporal, **temporal_params)
        refiners = self.refiners(refine)
        if batch_size is None:
            batch_size = 8 if self.device.type == "cuda" else 1
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        if smooth_at not in SMOOTH_AT:
            raise ConfigError(f"smooth_at must be one of {', '.join(SMOOTH_AT)}, got {smooth_at!r}")
        # smoothing at the network's output stride: the probabilities reach the frame's size once
        coarse = smoother is not None and not refiners and smooth_at == "network" and self.has_coarse and not self.tta
        items = self._checked_frames(frames, on_error)
        workers = self._network_workers(workers)
        threads = torch.get_num_threads()
        pool = concurrent.futures.ThreadPoolExecutor(workers, "sceneparse-network") if workers > 1 else None
        pending: collections.deque = collections.deque()  # runs in the network, oldest first

        def network(rgbs, depths):  # (probabilities, seconds) of one run of frames
            t = time.perf_counter()
            probs = self._probs_batch(rgbs, depths, coarse)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            return probs, time.perf_counter() - t

        def submit(run):
            # what refiners and smoothers see: the frame, shrunk if it is very large
            works = [self._working(rgb, depth) if smoother else None for _, rgb, depth in run]
            if smoother is not None:
                for work in works:
                    smoother.prepare(work[0])  # superpixels etc. while the convnet runs
            args = ([f[1] for f in run], [f[2] for f in run])
            pending.append((run, works, pool.submit(network, *args) if pool else network(*args)))

        sequence = object()  # the sequence the smoother's memory belongs to

        def finish(run, works, job):  # the results of a run, in frame order
            nonlocal sequence
            probs, seconds = job.result() if pool else job
            share = seconds / len(run)
            for (frame, rgb, depth), probs_t, work in zip(run, probs, works):
                t = time.perf_counter()
                if smoother is None:
                    result = self._result(rgb, depth, probs_t, refiners)
                else:  # labels only once, after the smoothing
                    if frame.sequence != sequence:
                        smoother.reset()
                        sequence = frame.sequence
                    if coarse:
                        t_smooth = time.perf_counter()
                        smoothed = smoother.update(work[0], probs_t.cpu().numpy(), work[1])
                        smoothing = time.perf_counter() - t_smooth
                        result = self._coarse_result(smoothed, rgb.shape[:2])
                    else:
                        smoothed, smoothing = self._refined(work, probs_t, refiners, smoother)
                        result = self._labelled(smoothed)
                    result.smoothing_seconds = smoothing
                result.index, result.timestamp = frame.index, frame.timestamp
                result.seconds = share + time.perf_counter() - t
                yield frame, result

        try:
            if pool is not None:  # the workers share the threads: one network call each at once
                torch.set_num_threads(max(1, threads // workers))
            while batch := list(itertools.islice(items, batch_size)):
                for run in _same_size_runs(batch):  # one convnet call per run of same-sized frames
                    submit(run)
                    while len(pending) >= workers:
                        yield from finish(*pending.popleft())
            while pending:
                yield from finish(*pending.popleft())
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)  # none may outlive the stream
                torch.set_num_threads(threads)
            if smoother is not None:
                smoother.close()  # join its threads: none may outlive the stream

    def _network_workers(self, workers: int | None) -> int:
        """Frames in the network at once (see :meth:`parse_stream`'s ``workers``)."""
        if workers is None:
            return 2 if self.device.type == "cpu" and torch.get_num_threads() >= 2 else 1
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"workers must be a positive integer, got {workers!r}")
        return workers

    def _checked_frames(self, frames, on_error):
        """(frame, checked rgb, checked depth or None) of each item of ``frames``."""
        from sceneparse.sources import Frame

        warned = False
        for i, item in enumerate(frames):
            if not isinstance(item, Frame):
                pair = isinstance(item, (tuple, list)) and len(item) == 2  # (rgb, depth), [rgb, depth]
                rgb, depth = item if pair else (item, None)
                item = Frame(rgb, i, float(i), depth)
            # an RGB model on an RGB-D stream: the depth is not for it
            depth = item.depth if self.in_channels == 4 else None
            lost = item.extra.get("depth_error") if item.depth is None else None
            try:
                if lost and self.in_channels == 4:
                    raise InputError(f"no depth, which this RGB-D model needs: {lost}")
                if lost and not warned:
                    log.warning("%s (the RGB model parses the frame without it; further frames without their "
                                "depth are counted, not logged)", lost)  # fmt: skip
                    warned = True
                rgb, depth = self.check_inputs(item.image, depth)
            except ValueError as err:
                if on_error is None:
                    raise
                on_error(item, err)
                continue
            yield item, rgb, depth

    def parse_file(self, path: str | Path, refine=()) -> ParseResult:
        """:meth:`parse` of an image file."""
        from sceneparse.io import read_image

        return self.parse(read_image(path), refine=refine)


class _Coarse(torch.nn.Module):
    """``model.forward_coarse`` as a module's forward (what ``torch.jit.trace`` records)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_coarse(x)


def _trace(model: torch.nn.Module, x: torch.Tensor, coarse: bool):
    """A frozen, inference-optimised ``torch.jit`` trace of ``model`` (its ``forward_coarse``
    with ``coarse``) for inputs of ``x``'s shape: batch norm folded into the convolutions and
    oneDNN's fused kernels, the same outputs up to float rounding (about 1e-5)."""
    target = (_Coarse(model) if coarse else model).eval()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        # the tracer warns of every Python branch on a shape: they are constants for one size
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(target, x.clone(), check_trace=False)
        return torch.jit.optimize_for_inference(torch.jit.freeze(traced))


def _same_size_runs(items: list) -> list[list]:
    """``items`` ((frame, rgb, depth) tuples) split into runs of consecutive frames of one size."""
    return [list(run) for _, run in itertools.groupby(items, key=lambda f: f[1].shape)]


def _check_frames_iterable(frames) -> None:
    """``frames`` can be a stream: not one image (whose rows would be taken for frames) and
    not something that cannot be iterated; an :class:`InputError` otherwise."""
    if isinstance(frames, (np.ndarray, torch.Tensor)) and frames.ndim < 4:
        raise InputError(f"parse_stream takes an iterable of frames, got one array of shape {tuple(frames.shape)}: "
                         "parse() labels one image; pass [rgb] or a list of frames")  # fmt: skip
    if isinstance(frames, (str, Path)):
        raise InputError(f"parse_stream takes an iterable of frames, got the path {str(frames)!r}: "
                         "open it with sceneparse.open_source(path)")  # fmt: skip
    try:
        iter(frames)
    except TypeError:
        raise InputError(
            f"parse_stream takes an iterable of frames (arrays, (rgb, depth) pairs or Frames), "
            f"got {type(frames).__name__}"
        ) from None


def _as_array(value, name: str, what: str) -> np.ndarray:
    """``value`` as a numpy array: an array as it is, a CPU torch tensor or a PIL image converted
    (no copy where it can be avoided); anything else an :class:`InputError` naming it."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, (str, Path)):
        raise InputError(f"{name} must be {what}, got the path {str(value)!r}: read it first "
                         "(sceneparse.io.read_image, or parser.parse_file(path))")  # fmt: skip
    if hasattr(value, "__array_interface__") or hasattr(value, "__array__"):  # PIL images and other arrays
        try:
            return np.asarray(value)
        except Exception as err:  # an object that only claims to be an array
            raise InputError(f"{name} must be {what}; {type(value).__name__} did not convert: {err}") from None
    raise InputError(f"{name} must be {what} (a numpy array), got {type(value).__name__}")


def _shape_hint(shape: tuple) -> str:
    """What an image of ``shape`` (not HxWx3) probably is, and the fix."""
    if len(shape) == 2 or (len(shape) == 3 and shape[2] == 1):
        return " (a grey image? stack it to 3 channels: np.dstack([grey] * 3))"
    if len(shape) == 3 and shape[2] == 4:
        return " (RGBA? drop the alpha channel: rgb[..., :3])"
    if len(shape) == 3 and shape[0] in (1, 3, 4) and shape[2] > 4:
        return " (channels first? use rgb.transpose(1, 2, 0))"
    if len(shape) == 4 and shape[0] == 1:
        return " (a batch of one? pass rgb[0]; parse_stream takes many frames)"
    return ""


def _dtype_hint(dtype: np.dtype) -> str:
    """The likely mix-up behind an image of ``dtype`` (not uint8), and the fix."""
    if dtype == np.uint16:
        return " (16-bit? scale it to 8 bits: (rgb // 257).astype(np.uint8))"
    if np.issubdtype(dtype, np.floating):
        return " (floats in [0, 1]? convert: (rgb * 255).round().astype(np.uint8))"
    if dtype == np.bool_:
        return " (a mask? parse the photo itself)"
    return ""
