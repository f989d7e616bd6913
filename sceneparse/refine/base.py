"""What every refiner shares: the call signature, parameter checks and the registry."""

from __future__ import annotations

import hashlib
import inspect
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sceneparse.errors import ConfigError, InputError, NotFoundError, did_you_mean
from sceneparse.io import per_file_version

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "Refiner",
    "REFINERS",
    "register_refiner",
    "build_refiner",
    "build_refiners",
    "bind_refiners",
    "load_refine_config",
    "merge_refine_configs",
    "shipped_refine_config",
    "REFINER_WEIGHTS",
    "resize_chw",
    "class_argmax",
    "check_depth",
    "check_probs",
    "model_fingerprint",
]

#: Refiner classes by name (``superpixels``, ``tree``, ``crf``, ...).
REFINERS: dict[str, type] = {}
#: What the package ships for its models' refiners: region classifiers (``NAME-tree.pt``),
#: boundary-offset heads (``NAME-offsets.pt``) and parameters chosen per model (``NAME-refine.yaml``).
REFINER_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "refiners"


def register_refiner(cls: type) -> type:
    REFINERS[cls.name] = cls
    return cls


class Refiner:
    """A step after the convnet: ``refiner(rgb, probs, depth=None) -> probs``.

    ``rgb`` is HxWx3 uint8, ``probs`` CxHxW float32 class probabilities, ``depth`` HxW metres or
    None. The result has the same shape and sums to 1 over the classes at every pixel.
    Parameters are keyword arguments of the constructor; :meth:`params` lists them.
    """

    name = "refiner"

    def __call__(self, rgb: np.ndarray, probs: np.ndarray, depth: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def params(self) -> dict:
        return {k: getattr(self, k) for k in inspect.signature(type(self)).parameters}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params().items())})"


def model_fingerprint(model: nn.Module, classifier: bool = False) -> str:
    """A hash of the weights that the model's features depend on (all but the classifier; with
    ``classifier``, all of them: what its probabilities depend on), at float16 precision, so that
    a checkpoint and its float16 export share it."""
    sha = hashlib.sha1()
    for key, value in sorted(model.state_dict().items()):
        if key.startswith("classifier.") and not classifier:
            continue
        value = value.detach().cpu()
        value = value.half() if value.is_floating_point() else value
        sha.update(key.encode())
        sha.update(value.contiguous().numpy().tobytes())
    return sha.hexdigest()[:16]


def bind_refiners(refiners, parser) -> list:
    """``refiners`` with their per-model parts bound to ``parser`` (the tree's region
    classifier, the boundary-offset head): what :meth:`SceneParser.parse` does before using
    them, for code that calls refiners itself."""
    refiners = list(refiners)
    for refiner in refiners:
        if hasattr(refiner, "bind"):
            refiner.bind(parser)
    return refiners


def _name_params(spec) -> tuple[str, dict]:
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, dict):
        params = dict(spec)
        if "name" not in params:
            raise ConfigError(f"a refiner mapping needs a 'name' (one of {', '.join(sorted(REFINERS))}); got {spec!r}")
        return params.pop("name"), params
    if _is_pair(spec):
        return spec[0], dict(spec[1])
    raise ConfigError(f"a refiner is a name, a mapping with 'name', (name, params) or a Refiner; got {spec!r}")


def _is_pair(spec) -> bool:
    """``spec`` is one (name, params) pair, such as ``("crf", {"iterations": 10})``; not two
    refiners, such as ``("tree", {"name": "crf"})``."""
    return (isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[0], str)
            and isinstance(spec[1], dict) and "name" not in spec[1])  # fmt: skip


def build_refiner(spec) -> Refiner:
    """A refiner from a name, a ``{"name": ..., **params}`` mapping, a (name, params) pair or an instance.

    Raises:
        ConfigError: an unknown name or parameter (the known ones listed), or a bad value.
    """
    if isinstance(spec, Refiner):
        return spec
    name, params = _name_params(spec)
    if name not in REFINERS:
        raise ConfigError(
            f"unknown refiner {name!r}{did_you_mean(name, REFINERS)}; available: {', '.join(sorted(REFINERS))}"
        )
    cls = REFINERS[name]
    known = set(inspect.signature(cls).parameters)
    unknown = sorted(set(params) - known, key=str)
    if unknown:
        hint = did_you_mean(unknown[0], known) if len(unknown) == 1 else ""
        raise ConfigError(f"refiner {name!r} has no parameter(s) {', '.join(map(str, unknown))}{hint}; "
                          f"known: {', '.join(sorted(known))}")  # fmt: skip
    try:
        return cls(**params)
    except ConfigError as err:  # a bad value: say whose
        raise ConfigError(f"refiner {name!r}: {err}") from None


def build_refiners(refine, config: dict | None = None) -> tuple[Refiner, ...]:
    """Refiners applied in order: None, one spec, or a sequence of specs (see :func:`build_refiner`).

    ``config`` maps refiner names to parameters (as :func:`load_refine_config` reads them): a
    refiner given by name takes its parameters from there, one given with parameters takes
    them under its own. Instances are used as they are.
    """
    if refine is None:
        return ()
    if isinstance(refine, (str, dict, Refiner)) or _is_pair(refine):
        refine = (refine,)  # one refiner: "crf", {"name": "crf", ...} or ("crf", {...})
    try:  # any iterable of specs: a tuple, a list, a generator
        refine = tuple(refine)
    except TypeError:
        raise ConfigError(f"refine must be a refiner or a sequence of refiners (names, mappings, (name, params) "
                          f"pairs, Refiner instances), got {type(refine).__name__} {refine!r}") from None  # fmt: skip
    config = config or {}
    refiners = []
    for spec in refine:
        if not isinstance(spec, Refiner):
            name, params = _name_params(spec)
            spec = (name, config.get(name, {}) | params)
        refiners.append(build_refiner(spec))
    return tuple(refiners)


def merge_refine_configs(*configs: dict) -> dict:
    """One ``{name: params}`` table from several, the later ones' parameters winning."""
    merged: dict = {}
    for config in configs:
        for name, params in (config or {}).items():
            merged[name] = merged.get(name, {}) | params
    return merged


def load_refine_config(path) -> dict:
    """``{name: params}`` from a YAML file with a ``refiners:`` mapping (see configs/refine.yaml);
    no path (None or ""): ``{}``, every refiner with its own defaults."""
    from sceneparse.config import read_yaml_mapping

    if not path:
        return {}
    data = read_yaml_mapping(path, "refiner config")
    table = data.get("refiners", data)
    if not isinstance(table, dict) or not all(isinstance(v, dict) or v is None for v in table.values()):
        raise ConfigError(f"{path}: expected 'refiners:' mapping each refiner name to its parameters")
    for name, params in table.items():
        try:  # unknown names, parameters and bad values fail here, naming the file and the refiner
            build_refiner((str(name), params or {}))
        except (ValueError, FileNotFoundError) as err:  # the error names the refiner, this the file
            raise (NotFoundError if isinstance(err, FileNotFoundError) else ConfigError)(f"{path}: {err}") from None
    return {name: dict(params or {}) for name, params in table.items()}


def shipped_refine_config(model_name: str | None) -> dict:
    """The refiner parameters chosen for the shipped model ``model_name`` on its own tuning
    images (``weights/refiners/NAME-refine.yaml``, read as :func:`load_refine_config` reads a
    file), or ``{}``: :meth:`SceneParser.refiners` puts them under the parameters it is given."""
    path = REFINER_WEIGHTS / f"{model_name}-refine.yaml"
    if not model_name or not path.is_file():
        return {}
    return merge_refine_configs(_read_refine_config(path))  # a copy of the cached


@per_file_version()
def _read_refine_config(path: str) -> dict:
    return load_refine_config(path)


def check_probs(probs: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """``probs`` as float32 CxHxW class probabilities of the HxWx3 uint8 image ``rgb``, what every
    refiner takes; an :class:`~sceneparse.errors.InputError` naming the problem otherwise."""
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        what = f"{rgb.dtype} array of shape {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise InputError(f"a refiner's rgb must be an HxWx3 uint8 image, got a {what}")
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 3 or probs.shape[1:] != rgb.shape[:2]:
        raise InputError(f"probs must be CxHxW with HxW = {rgb.shape[:2]} (the image's), got {probs.shape}")
    if not np.isfinite(probs).all():
        raise InputError("probs hold NaN or infinite values: refiners take class probabilities (a softmax)")
    return probs


def check_depth(depth, rgb: np.ndarray) -> np.ndarray | None:
    """``depth`` (HxW metres or None) of the image ``rgb`` as float32, readings that are not
    finite taken for none (0), as :meth:`SceneParser.parse` takes them: pydensecrf's lattice
    crashes the process on a NaN. An :class:`~sceneparse.errors.InputError` for another size."""
    if depth is None:
        return None
    depth = np.asarray(depth, dtype=np.float32)
    if depth.shape != rgb.shape[:2]:
        raise InputError(f"depth must be HxW = {rgb.shape[:2]} (the image's), got {depth.shape}")
    if not np.isfinite(depth).all():
        depth = np.nan_to_num(depth, nan=0.0, posinf=0.0, neginf=0.0)
    return depth


#: The largest Gaussian pre-smoothing (pixels) of the superpixels: wider blurs every image flat,
#: and scikit-image allocates the kernel (sigma 1e9: 60 GB).
MAX_SIGMA = 50.0


def check_sigma(sigma) -> float:
    """Felzenszwalb's ``sigma``, checked: non-negative and at most :data:`MAX_SIGMA`."""
    sigma = positive("sigma", sigma, zero=True)
    if sigma > MAX_SIGMA:
        raise ConfigError(f"sigma (the blur before the superpixels, pixels) must be at most {MAX_SIGMA:g}, got {sigma}")
    return sigma


def positive(name: str, value, integer: bool = False, zero: bool = False):
    """``value`` checked to be a positive (or non-negative) number; a clear error otherwise."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and (value >= 0 if zero else value > 0)
    ok = ok and (not integer or float(value).is_integer())
    if not ok:
        kind = "integer" if integer else "number"
        raise ConfigError(f"{name} must be a {'non-negative' if zero else 'positive'} {kind}, got {value!r}")
    return int(value) if integer else float(value)


def resize_chw(values: np.ndarray, shape: tuple[int, int], mode: str) -> np.ndarray:
    """CxHxW ``values`` resized to ``shape`` ("area" down, "bilinear" up) without a transpose."""
    import torch
    import torch.nn.functional as F

    if values.shape[1:] == tuple(shape):
        return values
    t = torch.from_numpy(np.ascontiguousarray(values))[None]
    kw = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(t, size=tuple(shape), mode=mode, **kw)[0].numpy()


def class_argmax(probs: np.ndarray) -> np.ndarray:
    """Index of the largest of C x ... ``probs`` over its first axis, as uint8 (uint16 above 256
    classes): compact, and what OpenCV's remap and morphology take. torch.max over the class axis
    is several times faster than numpy's argmax there."""
    import torch

    index = torch.max(torch.from_numpy(np.ascontiguousarray(probs)), dim=0).indices.numpy()
    return index.astype(np.uint8 if len(probs) <= 256 else np.uint16)
