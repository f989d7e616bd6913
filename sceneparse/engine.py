"""Training and evaluation loops, and checkpoints that carry their own metadata."""

from __future__ import annotations

import datetime
import json
import logging
import math
import random
import subprocess
import time
from pathlib import Path

import kornia
import numpy as np
import torch
from tqdm import tqdm

from sceneparse.data.base import DatasetInfo
from sceneparse.io import atomic_write
from sceneparse.metrics import ConfusionMatrix
from sceneparse.registry import create_model

__all__ = [
    "CHECKPOINT_FORMAT",
    "save_checkpoint",
    "load_checkpoint",
    "model_from_checkpoint",
    "export_checkpoint",
    "train_one_epoch",
    "evaluate",
    "build_optimizer",
    "build_scheduler",
    "uv_statistics",
    "resolve_device",
    "seed_everything",
    "code_revision",
]

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "sceneparse-checkpoint-v1"


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """ "auto" picks CUDA when available; a CUDA request without CUDA is an error."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for, but PyTorch sees no CUDA GPU here")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def code_revision() -> str:
    """Git revision of the sceneparse source tree, or "unknown" outside a checkout."""
    here = Path(__file__).resolve().parent
    try:
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


def uv_statistics(dataset, max_samples: int = 200) -> tuple[list[float], list[float]]:
    """Mean and standard deviation of U and V over (up to ``max_samples``) raw samples."""
    n = min(len(dataset), max_samples)
    idx = np.linspace(0, len(dataset) - 1, n).round().astype(int)
    s1 = torch.zeros(2, dtype=torch.float64)
    s2 = torch.zeros(2, dtype=torch.float64)
    count = 0
    for i in idx:
        img = torch.from_numpy(np.ascontiguousarray(dataset[int(i)]["image"])).permute(2, 0, 1)
        uv = kornia.color.rgb_to_yuv(img[None].float() / 255)[0, 1:].reshape(2, -1).double()
        s1 += uv.sum(1)
        s2 += (uv * uv).sum(1)
        count += uv.shape[1]
    mean = s1 / count
    std = (s2 / count - mean * mean).clamp_min(1e-8).sqrt()
    return mean.tolist(), std.tolist()


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
) -> Path:
    """Write a self-describing checkpoint atomically (a failed write leaves the old file).

    ``revision`` is the code revision the run started from (default: the current one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "model": model_name,
        "model_args": dict(model_args),
        "state_dict": state,
        "meta": {
            "dataset": info.name,
            "class_names": list(info.class_names),
            "colors": [list(c) for c in info.colors],
            "ignore_index": info.ignore_index,
            "normalization": {
                "input": "RGB in [0, 1] -> YUV; Y locally contrast normalised per scale",
                "uv_mean": model.pyramid.uv_mean.flatten().tolist(),
                "uv_std": model.pyramid.uv_std.flatten().tolist(),
                "depth": "metres, locally contrast normalised per scale" if model.in_channels == 4 else None,
            },
            "levels": model.levels,
            "in_channels": model.in_channels,
            "train_config": train_config or {},
            "metrics": metrics or {},
            "code_revision": revision or code_revision(),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "torch_version": torch.__version__,
        },
    }
    if extra:
        ckpt.update(extra)
    return atomic_write(path, lambda p: torch.save(ckpt, p))


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`, with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types for a damaged file
        raise ValueError(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a sceneparse checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
    return ckpt


def model_from_checkpoint(ckpt: dict) -> tuple[torch.nn.Module, DatasetInfo]:
    """Rebuild the model and its class metadata from a loaded checkpoint."""
    meta = ckpt["meta"]
    model = create_model(ckpt["model"], **ckpt["model_args"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    info = DatasetInfo(
        name=meta["dataset"],
        class_names=tuple(meta["class_names"]),
        colors=tuple(tuple(c) for c in meta["colors"]),
        ignore_index=meta.get("ignore_index", 255),
    )
    return model, info


def export_checkpoint(src: str | Path, dst: str | Path, half: bool = True) -> Path:
    """Copy a checkpoint without its training state (optimizer, RNG), floats stored as float16
    when ``half`` (they load back into float32 models), for shipping inside the package."""
    ckpt = load_checkpoint(src)
    keep = {k: ckpt[k] for k in ("format", "model", "model_args", "state_dict", "meta")}
    if half:
        keep["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in keep["state_dict"].items()}
    keep["meta"] = dict(keep["meta"], exported_from=str(src), stored_as="float16" if half else "float32")
    return atomic_write(dst, lambda p: torch.save(keep, p))


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


def build_scheduler(optimizer, name: str, total_steps: int, warmup_steps: int = 0):
    """Per-step learning-rate schedule: "cosine", "poly" (power 0.9) or "constant", after a
    linear warm-up."""
    if name not in ("cosine", "poly", "constant"):
        raise ValueError(f"unknown schedule {name!r}; use 'cosine', 'poly' or 'constant'")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        t = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        if name == "cosine":
            return 0.5 * (1 + math.cos(math.pi * t))
        if name == "poly":
            return (1 - t) ** 0.9
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


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


def write_json(path: str | Path, data) -> None:
    """Write JSON atomically."""
    atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=2, default=str) + "\n"))
