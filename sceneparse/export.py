"""ONNX export of a :class:`~sceneparse.pipeline.SceneParser`'s network, and the ONNX Runtime
model that runs it behind the same ``SceneParser`` (refiners, smoothers, sinks unchanged).

The graph takes ``image``: Bx3xHxW float32 RGB in [0, 1] (Bx4xHxW with depth in metres for an
RGB-D model) of any batch, height and width, and returns ``logits``: BxKxHxW float32 of the
same size. The padding to the network's ``size_divisor`` (reflection at the bottom and right)
and the crop back are inside the graph, so any runtime can feed it any size of ``min_side``
pixels a side or more (in the metadata: 17 for the 3-scale models, 33 for the 4-scale ones,
whose coarsest scale of a 32-pixel side is too small to reflect; see :func:`graph_min_side`).
Smaller sides are edge-padded to 32 (or ``min_side``) by :class:`OnnxSegmentationModel`: the
traced graph reflects where PyTorch replicates at such sizes, so the labels of these tiny
images differ from PyTorch's (often most of them). Softmax and argmax are left to the caller,
as for the PyTorch models.

Everything the model declares (``pretrained_cfg()``), its class names and colours, its name
and the checkpoint's metadata (training configuration, validation figures) travel in the ONNX
``metadata_props`` as JSON strings under the keys of :data:`METADATA_KEYS`, so that
``SceneParser.from_onnx(path)`` needs no other file.

Example:
    >>> OPSET
    17
"""

from __future__ import annotations

import copy
import json
import logging
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sceneparse.data.base import DatasetInfo
from sceneparse.errors import ConfigError, InputError, NotFoundError, OutputError
from sceneparse.models.base import PretrainedCfg, SegmentationModel, model_cfg

__all__ = [
    "OPSET",
    "MIN_OPSET",
    "max_opset",
    "check_opset",
    "METADATA_KEYS",
    "MIN_SIDE",
    "graph_min_side",
    "export_onnx",
    "quantize_onnx",
    "read_onnx_metadata",
    "OnnxSegmentationModel",
    "compare_parsers",
    "require",
]

log = logging.getLogger(__name__)

#: The ONNX opset the graphs are written with (pinned: the same graph from every torch version
#: that can write it; ONNX Runtime 1.14 and newer run it).
OPSET = 17
#: The opsets the graph can be written with: 12 brings Einsum (the pyramid's blur); the newest is
#: the newest of torch's TorchScript exporter.
MIN_OPSET = 12


def max_opset() -> int:
    """The newest opset torch's TorchScript exporter writes here."""
    try:
        from torch.onnx._constants import ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET

        return int(ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET)
    except (ImportError, AttributeError, TypeError, ValueError):
        return 20


def check_opset(opset) -> int:
    """``opset`` if the graph can be written with it, else a one-line ConfigError."""
    top = max_opset()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= top:
        raise ConfigError(f"opset {opset!r} is not supported: give {MIN_OPSET} to {top} (default {OPSET})")
    return opset


#: Sides below this many pixels are edge-padded to :data:`SMALL_SIDE_PAD` by
#: :class:`OnnxSegmentationModel` (see above): the graph's reflections need them. The
#: smallest side of a graph of 3 scales; a graph's own is :func:`graph_min_side`.
MIN_SIDE = 17
#: The local contrast normalisation's radius the graphs written before ``min_side`` was
#: computed per model have (every shipped model's 9x9 window).
_SHIPPED_LCN_RADIUS = 4
SMALL_SIDE_PAD = 32
#: Version of the metadata layout below.
METADATA_FORMAT = "1"
#: metadata_props keys (values are JSON strings).
METADATA_KEYS = (
    "sceneparse_format",
    "model_name",
    "architecture",
    "dataset",
    "class_names",
    "colors",
    "ignore_index",
    "in_channels",
    "input",
    "normalization",
    "levels",
    "size_divisor",
    "min_side",
    "pretrained_cfg",
    "meta",
)


def require(module: str, extra: str):
    """Import ``module``, or fail with the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ConfigError(
            f"{module} is not installed: pip install 'sceneparse[{extra}]' (or pip install {module})"
        ) from err


def graph_min_side(size_divisor: int, levels: int | None, radius: int = _SHIPPED_LCN_RADIUS) -> int:
    """The smallest side the traced graph runs on: the padding to ``size_divisor`` must be
    shorter than the side, and every scale of the pyramid of ``levels`` longer than the blurs'
    radius (``radius`` of the local normalisation, 2 of the pyramid's 5-tap kernel), as PyTorch
    reflects only then (it replicates below, which a trace at a larger size does not record).

    Example:
        >>> graph_min_side(16, 3), graph_min_side(32, 4), graph_min_side(8, None)
        (17, 33, 5)
    """
    d, levels = max(1, int(size_divisor or 1)), int(levels or 0)
    for side in range(1, 1 << 16):
        padded = -(-side // d) * d
        if padded - side >= side:
            continue
        ok, scale = True, padded
        for level in range(levels):
            ok &= scale > radius and (level == levels - 1 or scale > 2)
            scale = -(-scale // 2)
        if ok:
            return side
    raise ConfigError(f"no input size fits size_divisor {size_divisor} and {levels} levels")


def _lcn_radius(model: torch.nn.Module) -> int:
    """The radius of the model's local normalisation window (0 for a model without a pyramid)."""
    from sceneparse.models.pyramid import LaplacianPyramid

    pyramids = [m for m in model.modules() if isinstance(m, LaplacianPyramid)]
    return max((p.lcn.kernel_size // 2 for p in pyramids), default=0)


class _PaddedGraph(torch.nn.Module):
    """The model with its padding written as graph operations (the model's own padding branches
    on Python values, which a trace would freeze at the example's size)."""

    def __init__(self, model: torch.nn.Module, divisor: int) -> None:
        super().__init__()
        self.model = model
        self.divisor = divisor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        ph = (self.divisor - h % self.divisor) % self.divisor
        pw = (self.divisor - w % self.divisor) % self.divisor
        x = F.pad(x, (0, pw, 0, ph), mode="reflect")
        return self.model(x)[..., :h, :w]


def _metadata(parser) -> dict[str, str]:
    cfg = model_cfg(parser.model)
    meta = parser.meta or {}
    name = parser.name or meta.get("exported_from") or type(parser.model).__name__
    values = {
        "sceneparse_format": METADATA_FORMAT,
        "model_name": name,
        "architecture": parser.meta.get("train_config", {}).get("model") or type(parser.model).__name__,
        "dataset": parser.info.name,
        "class_names": list(parser.class_names),
        "colors": [list(map(int, c)) for c in parser.info.colors],
        "ignore_index": parser.info.ignore_index,
        "in_channels": cfg.in_channels,
        "input": f"image: Bx{cfg.in_channels}xHxW float32, {cfg.input}; output logits: BxKxHxW float32",
        "normalization": cfg.normalization,
        "levels": cfg.levels,
        "size_divisor": cfg.size_divisor,
        "min_side": graph_min_side(cfg.size_divisor, cfg.levels, _lcn_radius(parser.model)),
        "pretrained_cfg": cfg.as_dict(),
        "meta": meta,
    }
    return {k: json.dumps(v, default=str) for k, v in values.items()}


def _destination(path: str | Path) -> Path:
    """``path`` with its folder made, checked before any work: an OutputError naming it where a
    folder of that name is in the way or the folder cannot be made."""
    from sceneparse.io import file_destination

    path = file_destination(path, "ONNX graph", ".onnx")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err} ({err.filename or path.parent})") from err
    return path


def export_onnx(parser, path: str | Path, opset: int = OPSET) -> Path:
    """Write ``parser``'s network as an ONNX graph with dynamic batch, height and width, its
    metadata in ``metadata_props``, and check it with ``onnx.checker``.

    Args:
        parser: a :class:`~sceneparse.pipeline.SceneParser` (its PyTorch model).
        path: the ``.onnx`` file to write (atomically).
        opset: the ONNX opset (default :data:`OPSET`).
    """
    onnx = require("onnx", "onnx")
    from sceneparse.io import atomic_write

    check_opset(opset)
    path = _destination(path)
    cfg = model_cfg(parser.model)
    # a CPU copy: Module.to and eval act in place, and a parser on a GPU would be left with its
    # model on the CPU (its next parse failing on mismatched devices)
    model = copy.deepcopy(parser.model).to("cpu").eval()
    graph = _PaddedGraph(model, max(1, cfg.size_divisor)).eval()
    # An example large enough that every blur of the pyramid reflects (as at any size >= min_side).
    side = graph_min_side(cfg.size_divisor, cfg.levels, _lcn_radius(model))
    example = torch.rand(1, cfg.in_channels, max(96, 3 * side), max(128, 4 * side))
    if cfg.in_channels == 4:
        example[:, 3] = 0.5 + 4 * example[:, 3]  # metres
    t = time.perf_counter()
    tmp = path.with_name(f".{path.name}.trace.onnx")
    try:
        with warnings.catch_warnings():
            # The tracer's notes on Python values (sizes, kernel taps) are what we expect here.
            warnings.simplefilter("ignore")
            # The TorchScript exporter: it writes this graph in about 1 s; the dynamo exporter
            # takes about 55 s on 2 CPU threads for the same graph (same outputs).
            torch.onnx.export(graph, (example,), str(tmp), opset_version=opset, dynamo=False,
                              input_names=["image"], output_names=["logits"],
                              dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                            "logits": {0: "batch", 2: "height", 3: "width"}})  # fmt: skip
        proto = onnx.load(str(tmp))
    except OSError as err:  # a place that takes no files (/proc), a full disk
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from err
    finally:
        tmp.unlink(missing_ok=True)
    _drop_weight_identities(proto)
    model_name = json.loads(_metadata(parser)["model_name"])
    proto.doc_string = f"sceneparse {model_name}: scene parsing logits; metadata_props hold the classes"
    _set_metadata(proto, _metadata(parser))
    onnx.checker.check_model(proto, full_check=True)
    try:
        out = atomic_write(path, lambda p: onnx.save(proto, str(p)))
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from err
    log.info("wrote %s (opset %d, %.1f s, %.1f MB)", out, opset, time.perf_counter() - t, out.stat().st_size / 1e6)
    return out


def _drop_weight_identities(proto) -> None:
    """Remove the Identity nodes the exporter puts between a shared weight (the encoder runs on
    every pyramid scale) and its second and later users: those users then name the weight
    itself, which int8 quantisation needs (it quantises initializers only)."""
    graph = proto.graph
    weights = {init.name for init in graph.initializer}
    alias = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity" and n.input[0] in weights}
    outputs = {o.name for o in graph.output}
    alias = {k: v for k, v in alias.items() if k not in outputs}
    keep = [n for n in graph.node if not (n.op_type == "Identity" and n.output[0] in alias)]
    for node in keep:
        for i, name in enumerate(node.input):
            if name in alias:
                node.input[i] = alias[name]
    del graph.node[:]
    graph.node.extend(keep)


def _set_metadata(proto, values: dict[str, str]) -> None:
    del proto.metadata_props[:]
    for key, value in values.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def quantize_onnx(src: str | Path, dst: str | Path, per_channel: bool = True) -> Path:
    """Int8 dynamic quantisation of an exported graph (weights int8, activations quantised per
    call) of the convolutions with ONNX Runtime's ``quantize_dynamic``, per output channel
    unless ``per_channel`` is False; the metadata is carried over."""
    onnx = require("onnx", "onnx")
    require("onnxruntime", "onnx")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from sceneparse.io import atomic_write

    src, dst = Path(src), _destination(dst)
    tmp = dst.with_name(f".{dst.name}.quant.onnx")
    try:
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantiser logs a line per tensor it leaves in float
        try:
            # Convolutions only: the rest of the graph (pyramid, padding, resizing) is cheap.
            quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
                             per_channel=per_channel)  # fmt: skip
        finally:
            root.setLevel(level)
        proto = onnx.load(str(tmp))
    finally:
        tmp.unlink(missing_ok=True)
    _set_metadata(proto, read_onnx_metadata(src, raw=True))
    onnx.checker.check_model(proto)
    return atomic_write(dst, lambda p: onnx.save(proto, str(p)))


def read_onnx_metadata(path: str | Path, raw: bool = False) -> dict:
    """The sceneparse metadata of an exported graph (values decoded from JSON unless ``raw``)."""
    onnx = require("onnx", "onnx")
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"ONNX model not found: {path}")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf raises several types for a damaged file
        raise InputError(f"{path}: not a readable ONNX model ({type(err).__name__}: {err})") from err
    props = {p.key: p.value for p in proto.metadata_props}
    if "sceneparse_format" not in props:
        raise InputError(f"{path}: not exported by sceneparse (no sceneparse metadata; see sceneparse export)")
    return props if raw else {k: json.loads(v) for k, v in props.items()}


class OnnxSegmentationModel(SegmentationModel):
    """A :class:`~sceneparse.models.SegmentationModel` whose forward runs an exported graph with
    ONNX Runtime, so that ``SceneParser(model, model.info)`` parses, refines, smooths and writes
    as with the PyTorch model (CPU tensors in and out).

    Args:
        path: an ``.onnx`` file written by :func:`export_onnx` (or :func:`quantize_onnx`).
        threads: ONNX Runtime's intra-op threads (None: as many as PyTorch uses).
        providers: ONNX Runtime execution providers (default: the CPU one).

    Attributes:
        info: class names and colours; metadata: the decoded ``metadata_props``.
    """

    def __init__(self, path: str | Path, threads: int | None = None, providers=None) -> None:
        super().__init__()
        ort = require("onnxruntime", "onnx")
        self.path = Path(path)
        self.metadata = read_onnx_metadata(self.path)
        md = self.metadata
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.path), options, providers=providers or ["CPUExecutionProvider"])
        self._cfg = PretrainedCfg(**md["pretrained_cfg"])
        self.num_classes = self._cfg.num_classes
        self.in_channels = self._cfg.in_channels
        # Graphs written before min_side was computed per model say 17 whatever their scales.
        self.min_side = max(int(md.get("min_side", MIN_SIDE)), graph_min_side(self._cfg.size_divisor, self._cfg.levels))
        colors = tuple(tuple(c) for c in md["colors"])
        self.info = DatasetInfo(md["dataset"], tuple(md["class_names"]), colors, md["ignore_index"])

    def pretrained_cfg(self) -> PretrainedCfg:
        return self._cfg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        h, w = x.shape[-2:]
        arr = x.detach().cpu().float().numpy()
        if min(h, w) < self.min_side:
            side = max(SMALL_SIDE_PAD, self.min_side)
            arr = np.pad(arr, ((0, 0), (0, 0), (0, max(0, side - h)), (0, max(0, side - w))), mode="edge")
        logits = self.session.run(["logits"], {"image": np.ascontiguousarray(arr)})[0]
        return torch.from_numpy(logits[..., :h, :w])


def compare_parsers(reference, other, images, repeats: int = 1) -> dict:
    """How ``other`` (e.g. the ONNX parser) agrees with ``reference`` on ``images`` (HxWx3 uint8,
    or dataset samples with ``image``, ``label`` and, for RGB-D models, ``depth``): the share of
    pixels with the same label, the largest probability difference, the seconds per image of each (best of ``repeats``)
    and, where labels are given, each one's pixel accuracy."""
    same = total = 0
    max_diff = 0.0
    times = {"reference": [], "other": []}
    correct = {"reference": 0, "other": 0}
    labelled = 0
    for item in images:
        rgb = item["image"] if isinstance(item, dict) else item
        depth = item.get("depth") if isinstance(item, dict) else None  # RGB-D models need the sample's depth
        results = {}
        for key, parser in (("reference", reference), ("other", other)):
            best = float("inf")
            for _ in range(max(1, repeats)):
                t = time.perf_counter()
                results[key] = parser.parse(rgb, depth)
                best = min(best, time.perf_counter() - t)
            times[key].append(best)
        a, b = results["reference"], results["other"]
        same += int((a.labels == b.labels).sum())
        total += a.labels.size
        max_diff = max(max_diff, float(np.abs(a.probs - b.probs).max()))
        if isinstance(item, dict) and "label" in item:
            truth = np.asarray(item["label"]).astype(np.int64)
            valid = truth != reference.info.ignore_index
            labelled += int(valid.sum())
            for key in correct:
                correct[key] += int((results[key].labels == truth)[valid].sum())
    out = {
        "images": len(times["reference"]),
        "pixels": total,
        "label_agreement": same / total if total else float("nan"),
        "max_prob_diff": max_diff,
        "ms_per_image_reference": 1000 * float(np.median(times["reference"])),
        "ms_per_image_other": 1000 * float(np.median(times["other"])),
    }
    if labelled:
        out["pixel_accuracy_reference"] = correct["reference"] / labelled
        out["pixel_accuracy_other"] = correct["other"] / labelled
    return out
