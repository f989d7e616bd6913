"""Training and evaluation loops, and checkpoints that carry their own metadata."""

from __future__ import annotations

import datetime
import json
import logging
import random
import re
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sceneparse.data.base import DatasetInfo
from sceneparse.errors import ConfigError, InputError, NotFoundError, OutputError
from sceneparse.io import atomic_write, file_destination
from sceneparse.metrics import ConfusionMatrix
from sceneparse.models.base import model_cfg
from sceneparse.models.pyramid import uv_statistics  # noqa: F401  (moved next to the pyramid; kept importable)
from sceneparse.registry import create_model

__all__ = [
    "CHECKPOINT_FORMAT",
    "save_checkpoint",
    "load_checkpoint",
    "model_from_checkpoint",
    "export_checkpoint",
    "average_checkpoints",
    "train_one_epoch",
    "evaluate",
    "build_optimizer",
    "build_scheduler",
    "SCHEDULES",
    "load_scheduler_state",
    "replay_scheduler",
    "resolve_device",
    "seed_everything",
    "MAX_SEED",
    "code_revision",
    "json_safe",
    "json_text",
    "write_json",
    "rss_mb",
]

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "sceneparse-checkpoint-v1"


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """The device ``device`` names: "auto" (CUDA when available, else the CPU), "cpu", "cuda",
    "cuda:N" or "mps" (or such a ``torch.device``).

    Raises:
        ConfigError: any other name ("gpu", "meta", "xla", " cpu"), or a device this machine
            lacks (CUDA without a GPU, a GPU index past the last, MPS off Apple silicon): named
            here, not later by a failing tensor copy deep inside torch.
    """
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):
        name = "cpu" if device.type == "cpu" else str(device)  # torch.device("cpu", 0) is the one CPU
    else:
        name = device
    if not isinstance(name, str) or not re.fullmatch(r"cpu|mps|cuda(:\d+)?", name):
        raise ConfigError(f"unknown device {device!r}: give cpu, cuda, cuda:N, mps or auto")
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not count:
            raise ConfigError(f"device {name!r} was asked for, but PyTorch sees no CUDA GPU here (use cpu or auto)")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"device {name!r} was asked for, but PyTorch sees {count} CUDA GPU(s): "
                              f"cuda:0 to cuda:{count - 1}")  # fmt: skip
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' was asked for, but this PyTorch has no MPS (Apple silicon) device (use cpu)")
    return device


#: The seeds NumPy's legacy generator takes (``np.random.seed``): 0 to 2**32 - 1.
MAX_SEED = 2**32 - 1


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's (CPU and CUDA) generators with ``seed``.

    Raises:
        ConfigError: ``seed`` is not an integer from 0 to :data:`MAX_SEED`.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed must be an integer from 0 to {MAX_SEED}, got {seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed))
    torch.manual_seed(int(seed))


def code_revision() -> str:
    """Git revision of the sceneparse source tree, or "unknown" outside a checkout of it.

    A package installed inside another project's git tree (a virtual environment in the
    project's folder) is not part of that tree: its files are untracked there, and the
    project's revision is not sceneparse's.
    """
    here = Path(__file__).resolve().parent
    try:
        tracked = subprocess.run(
            ["git", "ls-files", "--error-unmatch", "--", Path(__file__).name], cwd=here, capture_output=True,
            text=True, timeout=5,
        )  # fmt: skip
        if tracked.returncode != 0:
            return "unknown"
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here, capture_output=True, text=True, timeout=5,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if rev.returncode != 0:
        return "unknown"
    return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


# ---------------------------------------------------------------------------- checkpoints


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    model_name: str,
    model_args: dict,
    info: DatasetInfo,
    train_config: dict | None = None,
    metrics: dict | None = None,
    extra: dict | None = None,
    revision: str | None = None,
    training: dict | None = None,
) -> Path:
    """Write a self-describing checkpoint atomically (a failed write leaves the old file).

    Everything about the model comes from its declared metadata
    (:meth:`~sceneparse.models.base.SegmentationModel.pretrained_cfg`): the arguments it must
    carry beyond ``model_args`` (fitted input statistics), its normalisation and input.

    Args:
        path: the file to write.
        model: a registered model.
        model_name: its registered name.
        model_args: the keyword arguments it was created with.
        info: class names and colours of its outputs.
        train_config: the resolved training options.
        metrics: validation scores.
        extra: more top-level entries (optimizer and scheduler state of a resumable run).
        revision: the code revision the run started from (default: the current one).
        training: facts of the run beyond its options (``world_size``: the number of processes).
    """
    cfg = model_cfg(model)
    if cfg.num_classes != info.num_classes:
        raise InputError(f"model has {cfg.num_classes} outputs but {info.num_classes} class names")
    path = Path(path)  # its folder is made by _save (atomic_write)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "model": model_name,
        "model_args": {**model_args, **cfg.checkpoint_args},
        "state_dict": state,
        "meta": {
            "dataset": info.name,
            "class_names": list(info.class_names),
            "colors": [list(c) for c in info.colors],
            "ignore_index": info.ignore_index,
            "pretrained_cfg": cfg.as_dict(),
            # The keys of the first checkpoints, kept for their readers.
            "normalization": cfg.normalization,
            "levels": cfg.levels,
            "in_channels": cfg.in_channels,
            "train_config": train_config or {},
            "training": training or {},
            "metrics": metrics or {},
            "code_revision": revision or code_revision(),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "torch_version": torch.__version__,
        },
    }
    if extra:
        ckpt.update(extra)
    return _save(ckpt, path)


def _save(ckpt: dict, path: str | Path) -> Path:
    """``torch.save`` of ``ckpt`` to ``path`` atomically; an OutputError naming the file where it
    cannot be written (a folder of that name, no such place, a full disk), not torch's
    "[enforce fail at inline_container.cc]" or a rename of a temporary file."""
    path = file_destination(path, "checkpoint", ".pt")
    try:
        return atomic_write(path, lambda p: torch.save(ckpt, p))
    except (OSError, RuntimeError) as err:
        reason = " ".join(str(err).split())
        raise OutputError(f"cannot write the checkpoint {path}: {reason}") from err


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`, with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types for a damaged file
        reason = f"{type(err).__name__}: {err}"
        raise InputError(f"{path}: not a readable checkpoint, truncated or corrupt ({reason})") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path}: not a sceneparse checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
    kinds = {"model": str, "model_args": dict, "state_dict": dict, "meta": dict}
    bad = [key for key, kind in kinds.items() if not isinstance(ckpt.get(key), kind)]
    meta = ckpt.get("meta") if isinstance(ckpt.get("meta"), dict) else {}
    bad += [f"meta[{key!r}]" for key in ("dataset", "class_names", "colors") if key not in meta]
    if bad:
        raise InputError(f"{path}: a damaged sceneparse checkpoint: {', '.join(bad)} missing or of the wrong type")
    return ckpt


def model_from_checkpoint(ckpt: dict) -> tuple[torch.nn.Module, DatasetInfo]:
    """Rebuild the model (in eval mode) and its class metadata from a loaded checkpoint.

    The model is rebuilt from its registered name and arguments alone, then given the saved
    weights and buffers; its declared metadata must agree with the class names.
    """
    meta = ckpt["meta"]
    try:
        model = create_model(ckpt["model"], **ckpt["model_args"])
    except TypeError as err:  # an argument the registered factory does not take
        raise InputError(f"checkpoint of model {ckpt['model']!r} does not fit this code: {err}") from err
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:  # missing, unexpected or misshapen tensors
        detail = " ".join(str(err).split())
        raise InputError(f"checkpoint of model {ckpt['model']!r}: its weights do not fit the model ({detail})") from err
    model.eval()
    info = DatasetInfo(
        name=meta["dataset"],
        class_names=tuple(meta["class_names"]),
        colors=tuple(tuple(c) for c in meta["colors"]),
        ignore_index=meta.get("ignore_index", 255),
    )
    num_classes = model_cfg(model).num_classes
    if num_classes != info.num_classes:
        raise InputError(f"checkpoint's model has {num_classes} outputs but {info.num_classes} class names")
    return model, info


def export_checkpoint(src: str | Path, dst: str | Path, half: bool = True) -> Path:
    """Copy a checkpoint without its training state (optimizer, RNG), floats stored as float16
    when ``half`` (they load back into float32 models), for shipping inside the package."""
    ckpt = load_checkpoint(src)
    keep = {k: ckpt[k] for k in ("format", "model", "model_args", "state_dict", "meta")}
    if half:
        keep["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in keep["state_dict"].items()}
    keep["meta"] = dict(keep["meta"], exported_from=str(src), stored_as="float16" if half else "float32")
    return _save(keep, dst)


def average_checkpoints(srcs, dst: str | Path, weights=None) -> Path:
    """Write the (weighted) mean of the weights of checkpoints ``srcs`` to ``dst``: a "model
    soup" (Wortsman et al. 2022). It is a model only where the runs share their start, e.g.
    runs of ``init_from`` with ``init_head`` from one checkpoint. Batch-norm running statistics
    are averaged like the weights; integer tensors come from the first. The result has no
    training state and no metrics of its own (``meta["averaged_from"]`` names its sources).

    Raises:
        InputError: fewer than two checkpoints, or checkpoints of other models, arguments,
            classes or tensors than the first's; weights that do not match them.
    """
    srcs = [Path(s) for s in srcs]
    if len(srcs) < 2:
        raise InputError(f"averaging takes at least two checkpoints, got {len(srcs)}")
    weights = [1.0] * len(srcs) if weights is None else [float(w) for w in weights]
    if len(weights) != len(srcs) or any(not w >= 0 for w in weights) or not sum(weights) > 0:
        raise InputError(f"weights {weights}: one non-negative weight per checkpoint ({len(srcs)}), not all zero")
    ckpts = [load_checkpoint(p) for p in srcs]
    first = ckpts[0]

    def identity(c: dict) -> tuple:
        shapes = {k: tuple(v.shape) for k, v in c["state_dict"].items()}
        return c["model"], c["model_args"], c["meta"].get("class_names"), shapes

    expected = identity(first)
    for path, c in zip(srcs[1:], ckpts[1:]):
        if identity(c) != expected:
            raise InputError(f"{path}: not the same model as {srcs[0]} (model, arguments, classes or tensors differ)")
    total = sum(weights)
    state = {}
    for k, v in first["state_dict"].items():
        if v.is_floating_point():
            state[k] = sum(w / total * c["state_dict"][k].float() for w, c in zip(weights, ckpts))
        else:
            state[k] = v.clone()
    meta = {k: v for k, v in first["meta"].items() if k not in ("metrics", "exported_from", "stored_as")}
    meta["averaged_from"] = [{"path": str(p), "weight": w / total} for p, w in zip(srcs, weights)]
    out = {"format": CHECKPOINT_FORMAT, "model": first["model"], "model_args": first["model_args"], "state_dict": state,
           "meta": meta}  # fmt: skip
    return _save(out, dst)


# ---------------------------------------------------------------------------- optimisation


def build_optimizer(model: torch.nn.Module, name: str, lr: float, weight_decay: float, momentum: float = 0.9):
    """SGD (Nesterov) or AdamW; no weight decay on biases and normalisation parameters."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=True)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}; use 'sgd' or 'adamw'")


SCHEDULES = ("cosine", "poly", "constant")


def build_scheduler(optimizer, name: str, total_steps: int, warmup_steps: int = 0):
    """Per-step learning-rate schedule from torch's schedulers, stepped once per batch.

    A linear warm-up (``LinearLR``: factor (step + 1) / warmup_steps) for ``warmup_steps``
    steps, then over the remaining steps "cosine" (``CosineAnnealingLR`` down to 0), "poly"
    (``PolynomialLR``, power 0.9, down to 0) or "constant" (``ConstantLR`` at factor 1).

    Args:
        optimizer: the optimizer whose learning rates it sets.
        name: "cosine", "poly" or "constant".
        total_steps: steps of the whole run, warm-up included.
        warmup_steps: steps of linear warm-up.
    """
    lr = torch.optim.lr_scheduler
    if name not in SCHEDULES:
        raise ConfigError(f"unknown schedule {name!r}; use {', '.join(map(repr, SCHEDULES))}")
    if total_steps < 1 or warmup_steps < 0:
        raise ConfigError(f"need total_steps >= 1 and warmup_steps >= 0, got {total_steps} and {warmup_steps}")
    decay_steps = max(1, total_steps - warmup_steps)
    if name == "cosine":
        main = lr.CosineAnnealingLR(optimizer, T_max=decay_steps, eta_min=0.0)
    elif name == "poly":
        main = lr.PolynomialLR(optimizer, total_iters=decay_steps, power=0.9)
    else:
        main = lr.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if warmup_steps == 0:
        return main
    # LinearLR gives start + (1 - start) * step / total_iters: with start = 1 / warmup_steps
    # and total_iters = warmup_steps - 1 that is (step + 1) / warmup_steps.
    warmup = lr.LinearLR(optimizer, 1.0 / warmup_steps, 1.0, total_iters=max(1, warmup_steps - 1))
    return lr.SequentialLR(optimizer, [warmup, main], milestones=[warmup_steps])


def load_scheduler_state(scheduler, state: dict) -> None:
    """Restore a scheduler of :func:`build_scheduler` for resuming, also from the ``LambdaLR``
    state that runs saved before it used torch's schedulers (replayed step by step).

    Call it on the freshly built scheduler, after the optimizer's state has been loaded.
    """
    if "lr_lambdas" not in state:
        scheduler.load_state_dict(state)
        return
    replay_scheduler(scheduler, state["last_epoch"])


def replay_scheduler(scheduler, steps: int) -> None:
    """Bring a freshly built scheduler of :func:`build_scheduler` to step ``steps``, setting the
    optimizer's learning rates to its rates there.

    Resuming uses it where the saved state does not fit the schedule: a state of the old
    ``LambdaLR`` kind, or a run whose epochs were extended (the schedule then spans the new
    length, so the rate at the resumed step is that of the longer plan).
    """
    # The fresh schedule's first learning rates, then its steps up to where the run stopped:
    # torch's schedulers compute each rate from the previous one.
    for group, start in zip(scheduler.optimizer.param_groups, scheduler.get_last_lr()):
        group["lr"] = start
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step\\(\\)` before", UserWarning)
        for _ in range(steps):
            scheduler.step()


def _model_input(batch: dict, device: torch.device) -> torch.Tensor:
    x = batch["image"].to(device, non_blocking=True)
    if "depth" in batch:
        x = torch.cat([x, batch["depth"].to(device, non_blocking=True)], dim=1)
    return x


def train_one_epoch(
    model, loader, loss_fn, optimizer, scheduler, device, scaler=None, amp_dtype=None, epoch: int = 0,
    grad_clip: float = 0.0, progress: bool = True,
) -> dict:  # fmt: skip
    """One pass over ``loader``; returns the mean loss and the seconds it took."""
    model.train()
    total, n = 0.0, 0
    start = time.perf_counter()
    bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not progress, dynamic_ncols=True)
    for batch in bar:
        x = _model_input(batch, device)
        y = batch["label"].to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            loss = loss_fn(model(x).float(), y)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch}; lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        scheduler.step()
        total += loss.item() * x.shape[0]
        n += x.shape[0]
        bar.set_postfix(loss=f"{total / n:.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
    return {"loss": total / max(n, 1), "seconds": time.perf_counter() - start}


@torch.inference_mode()
def evaluate(model, loader, num_classes: int, device, ignore_index: int = 255, progress: bool = True,
             desc: str = "evaluate") -> tuple[ConfusionMatrix, dict]:  # fmt: skip
    """Confusion matrix over ``loader`` and timing (seconds per image, forward pass only)."""
    model.eval()
    cm = ConfusionMatrix(num_classes, ignore_index)
    seconds, images = 0.0, 0
    for batch in tqdm(loader, desc=desc, leave=False, disable=not progress, dynamic_ncols=True):
        x = _model_input(batch, device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        pred = model(x).argmax(1)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - t
        images += x.shape[0]
        cm.update(pred, batch["label"].to(device))
    return cm, {"seconds_per_image": seconds / max(images, 1), "images": images}


def json_safe(data):
    """``data`` with every float NaN or infinity as None (JSON's null), numpy scalars and arrays as
    Python numbers and lists: what :func:`json.dumps` writes as standard JSON (``allow_nan=False``);
    a bare ``NaN`` is not JSON, and other readers (browsers, jq, pandas' strict mode) refuse it."""
    if isinstance(data, dict):
        return {k: json_safe(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_safe(v) for v in data]
    if isinstance(data, np.ndarray):
        return json_safe(data.tolist())
    if isinstance(data, np.generic):
        data = data.item()
    if isinstance(data, float) and not np.isfinite(data):
        return None
    return data


def json_text(data, indent: int | None = None) -> str:
    """``data`` as standard JSON: NaN and infinities as null (:func:`json_safe`), other objects as text."""
    return json.dumps(json_safe(data), indent=indent, default=str, allow_nan=False)


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of process ``pid`` (this one by default) in MB, from Linux's ``/proc``;
    NaN where there is none (another system, a process that is gone). For the memory figures of
    the benchmark tools."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_json(path: str | Path, data) -> None:
    """Write JSON atomically; figures that are not numbers (NaN: a class absent from the images) as null."""
    atomic_write(path, lambda p: p.write_text(json_text(data, indent=2) + "\n"))
