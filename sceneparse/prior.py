"""The class-frequency regime of a trained model, chosen after training (logit adjustment).

A loss weighted by class frequency (``balance_power``) trades pixel accuracy for the accuracy
of rare classes, as Farabet et al.'s "natural" and "balanced" regimes do; which trade is wanted
is often known only after training. Adding ``gamma * log(frequency)`` to every pixel's logits
moves a trained model along that trade without retraining: gamma > 0 towards the natural
frequencies (pixel accuracy), gamma < 0 towards balanced classes (class accuracy) (the logit
adjustment of Menon et al., ICLR 2021, as a post-hoc correction).

The shift is the same for every pixel, so it is folded into the bias of the model's last layer
(:meth:`~sceneparse.models.SegmentationModel.output_bias`): the adjusted checkpoint is an
ordinary one, and ``parse``, ``evaluate``, ONNX export and the refiners see the adjusted
probabilities without any code of their own. ``tools/adjust_prior.py`` chooses gamma on the
tuning half of a model's held-out images and writes the adjusted checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sceneparse.errors import ConfigError, InputError

__all__ = ["CRITERIA", "prior_bias", "PriorShift", "regime_table", "choose_gamma", "rank_key", "adjust_checkpoint"]

#: How :func:`choose_gamma` ranks the rows of a :func:`regime_table`.
CRITERIA = ("miou", "pixel+class", "targets")


def prior_bias(frequencies, gamma: float) -> np.ndarray:
    """``gamma * log(frequency)`` per class, float32, centred on zero (a constant changes neither
    the probabilities nor the labels); classes never seen in training count as frequency 1e-6."""
    try:
        f = np.asarray(frequencies, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"class frequencies must be a vector of numbers, got {frequencies!r}") from None
    if f.ndim != 1 or not len(f) or not np.isfinite(f).all() or (f < 0).any():
        raise ConfigError(f"class frequencies must be a finite non-negative vector, got {f.tolist()}")
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float, np.number)) or not np.isfinite(gamma):
        raise ConfigError(f"gamma must be a finite number, got {gamma!r}")
    b = gamma * np.log(np.maximum(f / max(f.sum(), 1e-12), 1e-6))
    return (b - b.mean()).astype(np.float32)


class PriorShift:
    """A refiner (``probs -> probs``) that applies a per-class logit shift to probabilities, so that
    :func:`sceneparse.evaluate.score_refiners` can score candidate shifts on cached predictions."""

    def __init__(self, bias) -> None:
        self.bias = np.asarray(bias, dtype=np.float32)[:, None, None]

    def __call__(self, rgb, probs: np.ndarray, depth=None) -> np.ndarray:
        if len(probs) != len(self.bias):
            raise InputError(f"a prior shift of {len(self.bias)} classes for probabilities of {len(probs)}")
        logits = np.log(np.maximum(probs, 1e-12)) + self.bias
        return torch.softmax(torch.from_numpy(logits), dim=0).numpy()


def regime_table(cached, frequencies, gammas, num_classes: int, ignore_index: int = 255) -> list[dict]:
    """Pixel / class accuracy, mean IoU and boundary accuracy (percent) of the cached
    predictions (:func:`sceneparse.evaluate.cached_predictions`) shifted by each gamma."""
    from sceneparse.evaluate import score_refiners

    rows = []
    for g in gammas:
        s = score_refiners(cached, num_classes, [PriorShift(prior_bias(frequencies, g))], ignore_index)
        rows.append({"gamma": float(g)} | {k: s[k] for k in ("pixel", "class", "miou", "boundary")})
    return rows


def choose_gamma(rows: list[dict], criterion: str = "miou", targets: tuple[float, float] | None = None) -> dict:
    """The row of :func:`regime_table` that ``criterion`` ranks first: "miou" the highest mean
    IoU, "pixel+class" the highest mean of pixel and class accuracy, "targets" the highest
    min(pixel / targets[0], class / targets[1]) (the row nearest to reaching both). Ties go to
    the gamma nearest zero."""
    if criterion not in CRITERIA:
        raise ConfigError(f"unknown criterion {criterion!r}; use one of {', '.join(CRITERIA)}")
    if not rows:
        raise ConfigError("no gamma to choose from")
    return max(sorted(rows, key=lambda r: abs(r["gamma"])), key=rank_key(criterion, targets))


def rank_key(criterion: str, targets: tuple[float, float] | None = None):
    """The score by which ``criterion`` ranks a row of figures (``pixel``, ``class``, ``miou``,
    percent), the higher the better: "miou"; "pixel"; "pixel+class" their mean; "targets"
    min(pixel / targets[0], class / targets[1]) (the row nearest to reaching both)."""
    if criterion == "targets":
        if not targets or min(targets) <= 0:
            raise ConfigError("criterion 'targets' needs two positive targets: pixel and class accuracy")
        return lambda r: min(r["pixel"] / targets[0], r["class"] / targets[1])
    keys = {"miou": lambda r: r["miou"], "pixel": lambda r: r["pixel"],
            "pixel+class": lambda r: (r["pixel"] + r["class"]) / 2}  # fmt: skip
    if criterion not in keys:
        raise ConfigError(f"unknown criterion {criterion!r}; use one of {', '.join([*keys, 'targets'])}")
    return keys[criterion]


def adjust_checkpoint(src: str | Path, dst: str | Path, frequencies, gamma: float, note: dict | None = None) -> Path:
    """Write ``src`` with ``prior_bias(frequencies, gamma)`` added to its model's output bias
    (in the checkpoint's own float type) and ``meta["class_prior"]`` recording it. A checkpoint
    adjusted before is refused: adjust the original, so that gammas never add up unseen."""
    from sceneparse.engine import atomic_write, load_checkpoint, model_from_checkpoint

    bias = torch.from_numpy(prior_bias(frequencies, gamma))  # checked before the checkpoint is read
    ckpt = load_checkpoint(src)
    if "class_prior" in ckpt["meta"]:
        raise InputError(f"{src}: already adjusted (gamma {ckpt['meta']['class_prior']['gamma']}); adjust the original")
    model, info = model_from_checkpoint(ckpt)
    if len(frequencies) != info.num_classes:
        raise ConfigError(f"{len(frequencies)} class frequencies for a model of {info.num_classes} classes")
    param = model.output_bias()
    name = next(n for n, p in model.named_parameters() if p is param)
    stored = ckpt["state_dict"][name]
    ckpt["state_dict"][name] = (stored.float() + bias).to(stored.dtype)
    ckpt["meta"] = dict(ckpt["meta"], class_prior={
        "gamma": float(gamma),
        "frequencies": [float(f) for f in frequencies],
        "adjusted_from": str(src),
    } | (note or {}))  # fmt: skip
    return atomic_write(dst, lambda p: torch.save(ckpt, p))
